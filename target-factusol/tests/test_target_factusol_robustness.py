"""Regressions of the reliability bugs: a contact without its id, values kept out of the logs,
the link-field creation deferred to the first batch with records, and clientify_rate_limit."""

from __future__ import annotations

import copy
import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import responses
from target_factusol.markers import marker_ids
from target_factusol.target import TargetFactusol
from target_factusol_testlib import Harness, messages

CONTACT = 135000001


def marked(clients: dict[int, dict[str, Any]], contact_id: int) -> list[int]:
    return [code for code, row in clients.items() if contact_id in marker_ids(row.get("OBSCLI"))]


def with_records(*records: dict[str, Any]) -> list[dict[str, Any]]:
    schema = messages("new_contact")[0]
    return [schema, *({"type": "RECORD", "stream": "contacts", "record": r} for r in records)]


def new_contact(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = copy.deepcopy(messages("new_contact")[1]["record"])
    record.update(changes)
    return record


# ----------------------------------------------------------------------------- key property


def test_contacts_without_id_are_rejected_each_and_the_batch_goes_on(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.put_contacts(messages("new_contact"))
    first, second = new_contact(first_name="Sin Id"), new_contact(first_name="Otro Sin Id")
    first.pop("id")
    second.pop("id")

    with caplog.at_level(logging.INFO):
        out = harness.run(with_records(first, second, new_contact()), max_reject_percent=100)

    assert len(marked(harness.clients(), CONTACT)) == 1  # the valid contact was written
    assert out.report["status"] == "ok"
    assert out.report["counts"]["created"] == 1
    assert out.report["counts"]["rejected"] == 2  # never merged into one
    records = [m for m in out.rejects if m["type"] == "RECORD"]
    dates = ("created", "modified")  # re-serialized by the SDK's date parsing

    def sent(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if k not in dates}

    # as sent: no id added, no marker left
    assert [sent(r["record"]) for r in records] == [sent(first), sent(second)]
    assert all("record has no id" in r["_reject"]["reason"] for r in records)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert sum("rejected: record has no id" in e for e in errors) == 2


# ----------------------------------------------------------------------------- logs


def test_field_warnings_log_contact_field_and_problem_never_the_value(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.put_contacts(messages("new_contact"))
    record = new_contact(
        taxpayer_identification_number="QX-NOT-A-NIF-77",  # a mapping warning (read)
        first_name="Zq" * 60,  # a FactuSOL fit warning (NOFCLI holds 100 characters)
    )

    # INFO and up: the SDK's own DEBUG line "Processed record: {context}" dumps the batch
    with caplog.at_level(logging.INFO):
        out = harness.run(with_records(record))

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"contact {CONTACT}: nif: " in w for w in warnings), warnings
    assert any(f"contact {CONTACT}: name: truncated to 100 chars" in w for w in warnings)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "QX-NOT" not in text
    assert "ZqZq" not in text
    assert out.report["counts"]["warnings"] >= 2


# ----------------------------------------------------------------------------- setup writes


def test_idle_run_makes_no_api_call(harness: Harness) -> None:
    # A SCHEMA and no record (nothing changed, or the tap died on its own credentials): no
    # FactuSOL login, no account, custom-field or census read; the checks wait for a record.
    harness.cl.admin("POST", "seed", {"contacts": 0, "with_link_field": False})
    harness.clear_logs()

    out = harness.run(with_records())

    assert harness.fs.requests_log() == []
    assert harness.cl.requests_log() == []
    assert out.plan == []
    assert out.report["status"] == "ok"
    assert out.report["counts"]["api_calls"] == 0


def test_missing_link_field_is_planned_by_a_dry_run_then_created_by_the_real_run(
    harness: Harness,
) -> None:
    msgs = messages("new_contact")
    harness.cl.admin("POST", "seed", {"contacts": 0, "with_link_field": False})
    harness.put_contacts(msgs)
    harness.clear_logs()

    dry = harness.run(msgs, dry_run=True)

    assert harness.writes() == {"factusol": [], "clientify": []}
    assert dry.plan[0]["action"] == "create"
    assert dry.plan[0]["key"] == "factusol_id"
    real = harness.run(msgs)
    assert [p for p in real.plan if p["key"] == "factusol_id"] == [dry.plan[0]]
    assert ("POST", "/v1/custom-fields/") in harness.writes()["clientify"]
    assert len(marked(harness.clients(), CONTACT)) == 1


# ----------------------------------------------------------------------------- settings

FS = "https://fs.example"
CL = "https://cl.example/v1"


def _unit_config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "api_url": FS,
        "codigo_fabricante": "1",
        "codigo_cliente": "2",
        "base_datos": "FS001",
        "password": "pw",
        "ejercicio": "2026",
        "clientify_api_url": CL,
        "clientify_api_key": "key",
        "plan_file": str(tmp_path / "plan.jsonl"),
        "reject_file": str(tmp_path / "rejects.jsonl"),
        "report_file": str(tmp_path / "report.json"),
        "index_cache_file": str(tmp_path / "contacts.sqlite"),
        **extra,
    }


@responses.activate
@pytest.mark.parametrize(("extra", "rate"), [({}, 5.0), ({"clientify_rate_limit": 12}, 12.0)])
def test_clientify_rate_limit_reaches_the_client(
    tmp_path: Path, extra: dict[str, Any], rate: float
) -> None:
    envelope = {"respuesta": "OK"}
    responses.post(f"{FS}/login/Autenticar", json={**envelope, "resultado": "tok"})
    responses.post(
        f"{FS}/admin/LanzarConsulta",
        json={**envelope, "resultado": [[{"columna": "CODCLI", "dato": 1}]]},
    )
    responses.get(f"{CL}/settings/my-account/", json={"results": [{"country": "ES"}]})
    responses.get(
        f"{CL}/custom-fields/",
        json={"count": 0, "next": None, "results": []},  # missing: still nothing written
    )

    target = TargetFactusol(config=_unit_config(tmp_path, **extra))
    target.listen(io.StringIO(json.dumps(messages("new_contact")[0]) + "\n"))

    assert target.run.clientify.rate_limiter.rate == rate
    assert not responses.calls  # a SCHEMA without records: no call at all


def _region(tmp_path: Path, account_country: str | None, **extra: Any) -> str:
    """The region a run settles on at its start, against a mocked account."""
    with responses.RequestsMock() as rsps:
        ok = {"respuesta": "OK"}
        rsps.post(f"{FS}/login/Autenticar", json={**ok, "resultado": "tok"})
        rsps.post(f"{FS}/admin/LanzarConsulta", json={**ok, "resultado": []})
        rsps.get(f"{CL}/settings/my-account/", json={"results": [{"country": account_country}]})
        rsps.get(f"{CL}/custom-fields/", json={"count": 0, "next": None, "results": []})
        config = _unit_config(tmp_path, ledger_uri=str(tmp_path / "ledger.sqlite"), **extra)
        run = TargetFactusol(config=config, parse_env_config=False).run
        run.start()
        run.close()
        return run.region


def test_country_setting_overrides_the_account_country(tmp_path: Path) -> None:
    # The same rule as target-clientify (target_runtime.RunSettings); it used to be a fallback
    # here, behind the account's country.
    assert _region(tmp_path, "PT", country="it") == "IT"  # an explicit setting wins
    assert _region(tmp_path, "PT") == "PT"  # else the account's country
    assert _region(tmp_path, None) == "ES"  # else ES
