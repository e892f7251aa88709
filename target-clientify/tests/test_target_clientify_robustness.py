"""Regressions of the reliability bugs: a record without its key, an unparseable `modified`,
and the link-field creation (the only setup write) deferred to the first batch with records."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from sandbox.launcher import SandboxProcess

from .conftest import RunTarget, fixture_text
from .test_target_clientify_sandbox import by_code, one, writes

SCHEMA_LINE = fixture_text("new_clients.singer").splitlines()[0]


def singer(*records: dict[str, Any]) -> str:
    lines = [SCHEMA_LINE]
    lines += [json.dumps({"type": "RECORD", "stream": "clients", "record": r}) for r in records]
    lines.append(json.dumps({"type": "STATE", "value": {"bookmarks": {"clients": {"at": 1}}}}))
    return "\n".join(lines) + "\n"


def client(code: int | None, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "code": code,
        "fiscal_name": f"Cliente {code} S.L.",
        "email": f"c{code}@example.org",
        "modified": "2026-01-10T00:00:00+01:00",
        **extra,
    }
    if code is None:
        del record["code"]
    return record


# ---------------------------------------------------------------------------- key property


def test_record_without_code_is_rejected_and_the_batch_goes_on(
    clientify: SandboxProcess, run_target: RunTarget, caplog: pytest.LogCaptureFixture
) -> None:
    no_code = client(None, fiscal_name="Sin Código")
    with caplog.at_level(logging.INFO):
        out = run_target(singer(client(901), no_code, client(902)), max_reject_percent=50)

    assert set(by_code(clientify)) == {901, 902}
    assert out.report["counts"]["created"] == 2
    assert out.report["counts"]["rejected"] == 1
    assert out.report["status"] == "ok"
    assert out.states[-1]["bookmarks"]["clients"]
    # replayable: the SCHEMA, then the record exactly as it was sent (no key added, no marker)
    assert [m["type"] for m in out.rejects] == ["SCHEMA", "RECORD"]
    assert out.rejects[1]["record"] == no_code
    reason = out.rejects[1]["_reject"]["reason"]
    assert "no code" in reason
    assert [p["reason"] for p in out.plan if p["action"] == "reject"] == [reason]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("rejected" in e and "no code" in e for e in errors)
    assert not any("Sin Código" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------------- bad modified


@pytest.mark.parametrize("bad", ["not a date", "0000-00-00", "2024-02-30T00:00:00"])
def test_unparseable_modified_is_synced_as_unknown_with_a_warning(
    clientify: SandboxProcess, run_target: RunTarget, caplog: pytest.LogCaptureFixture, bad: str
) -> None:
    with caplog.at_level(logging.WARNING):
        out = run_target(singer(client(911, modified=bad), client(912)))

    assert set(by_code(clientify)) == {911, 912}  # a new contact has nothing to conflict with
    assert out.report["counts"]["created"] == 2
    assert out.report["counts"]["rejected"] == 0
    assert out.report["counts"]["warnings"] == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("client 911" in w and "modified" in w and "unknown" in w for w in warnings)
    assert not any(bad in r.getMessage() for r in caplog.records)  # no value in any log line


def test_unknown_modified_still_carries_a_factusol_only_change(
    clientify: SandboxProcess, run_target: RunTarget
) -> None:
    run_target(singer(client(921)))

    run_target(singer(client(921, fiscal_name="Nombre Nuevo S.L.", modified="0000-00-00")))

    # only FactuSOL changed since the ledger: the dates are not asked
    assert one(clientify, 921)["first_name"] == "Nombre Nuevo S.L."


@pytest.mark.parametrize(("policy", "name"), [("newest", "Del CRM"), ("factusol", "Nuevo SL")])
def test_unknown_modified_loses_conflicts_to_clientify(
    clientify: SandboxProcess, run_target: RunTarget, policy: str, name: str
) -> None:
    run_target(singer(client(921)))
    clientify.admin("PATCH", f"contacts/{one(clientify, 921)['id']}", {"first_name": "Del CRM"})
    clientify.clear_requests()

    out = run_target(
        singer(client(921, fiscal_name="Nuevo SL", modified="0000-00-00")), conflict_policy=policy
    )

    # both changed: an unknown time loses to Clientify's; FactuSOL as the authority ignores it
    assert one(clientify, 921)["first_name"] == name
    assert out.report["counts"]["conflicts"] == 1


def test_reject_file_keeps_an_unparseable_date_as_it_was_sent(
    clientify: SandboxProcess, run_target: RunTarget
) -> None:
    out = run_target(singer(client(-5, modified="0000-00-00")), max_reject_percent=100)
    assert out.rejects[1]["record"]["modified"] == "0000-00-00"
    assert "__target_clientify" not in json.dumps(out.rejects)


# ---------------------------------------------------------------------------- setup writes


def test_idle_run_makes_no_api_call(clientify: SandboxProcess, run_target: RunTarget) -> None:
    # A SCHEMA and no record (nothing changed, or the tap died on its own credentials): no
    # login, no account or custom-field check, no index; the checks wait for a first record.
    out = run_target(singer())

    assert clientify.requests_log() == []
    assert out.plan == []
    assert out.report["status"] == "ok"
    assert out.report["counts"]["api_calls"] == 0


def test_missing_link_field_is_planned_by_a_dry_run_and_created_by_the_real_run(
    clientify: SandboxProcess, run_target: RunTarget, tmp_path: Any
) -> None:
    dry = run_target(singer(client(931)), dry_run=True, plan_file=str(tmp_path / "dry.jsonl"))

    assert writes(clientify) == []  # not even the custom field
    assert dry.plan[0]["action"] == "create"
    assert dry.plan[0]["key"] == "factusol_id"
    real = run_target(singer(client(931)))

    assert [w["path"] for w in writes(clientify)].count("/v1/custom-fields/") == 1
    assert real.plan == [
        {**line, "target_id": real.plan[i]["target_id"]} for i, line in enumerate(dry.plan)
    ]
    one(clientify, 931)
    # now it exists: the next run neither creates nor plans it
    again = run_target(singer(client(931)))
    assert [p["key"] for p in again.plan] == [931]
