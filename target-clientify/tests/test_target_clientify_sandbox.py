"""Behaviour of target-clientify against the Clientify sandbox (real HTTP on loopback).

Each test feeds a `.singer` fixture named after the behaviour and checks the end state in the
sandbox, its request log, the plan/reject/report files and the logs.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sandbox.launcher import SandboxProcess
from target_clientify.sinks import TargetClientifyError

from .conftest import API_KEY, RunTarget, fixture_text


def writes(proc: SandboxProcess) -> list[dict[str, Any]]:
    return [r for r in proc.requests_log() if r["method"] in {"POST", "PUT", "PATCH", "DELETE"}]


def by_code(proc: SandboxProcess) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for contact in proc.admin("GET", "contacts")["contacts"]:
        for item in contact.get("custom_fields") or []:
            if item.get("field") == "factusol_id" and item.get("value"):
                out.setdefault(int(item["value"]), []).append(contact)
    return out


def one(proc: SandboxProcess, code: int) -> dict[str, Any]:
    found = by_code(proc).get(code, [])
    assert len(found) == 1, f"client {code}: {len(found)} contacts"
    return found[0]


def phones(contact: dict[str, Any]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for p in contact["phones"]:
        out.setdefault(p["type"], []).append(p["phone"])
    return out


def admin_contact(proc: SandboxProcess, **body: Any) -> dict[str, Any]:
    """A contact created by a CRM user in the web app."""
    created: dict[str, Any] = proc.admin("POST", "contacts", body)
    return created


# ---------------------------------------------------------------------------- create, no-op


def test_new_clients_are_created_once_with_normalized_fields(
    clientify: SandboxProcess, run_target: RunTarget
) -> None:
    out = run_target("new_clients.singer")

    posts = [w for w in writes(clientify) if w["path"] == "/v1/contacts/"]
    assert len(posts) == 3  # one POST per client, everything in it
    assert [w["path"] for w in writes(clientify)].count("/v1/custom-fields/") == 1
    assert len(writes(clientify)) == 4
    c = one(clientify, 101)
    assert c["first_name"] == "Talleres Pérez S.L."
    assert c["taxpayer_identification_number"] == "B12345674"
    assert [e["email"] for e in c["emails"]] == ["info@talleresperez.es"]
    assert phones(c) == {1: ["+34912345678"], 2: ["+34600111222"]}
    assert c["addresses"][0]["postal_code"] == "28013"
    assert c["addresses"][0]["country"] == "España"
    assert "factusol" in [t if isinstance(t, str) else t["name"] for t in c["tags"]]
    assert one(clientify, 102)["addresses"][0]["postal_code"] == "08019"
    assert phones(one(clientify, 103)) == {1: ["+33142600000"]}  # foreign number kept as is
    assert out.report["counts"]["created"] == 3
    assert out.report["created"] == 3
    # the link field was missing: created at the first batch, and planned like a record
    assert (out.plan[0]["action"], out.plan[0]["key"]) == ("create", "factusol_id")
    assert [p["action"] for p in out.plan[1:]] == ["create"] * 3
    assert out.states[-1]["bookmarks"]["clients"]["replication_key_value"]


def test_second_run_on_unchanged_data_makes_zero_writes(
    clientify: SandboxProcess, run_target: RunTarget
) -> None:
    run_target("new_clients.singer")
    clientify.clear_requests()

    out = run_target("new_clients.singer")

    assert writes(clientify) == []
    # credentials + link field + the cache's window since the last run + its count check;
    # never one search per record
    assert len(clientify.requests_log()) == 4
    assert out.report["counts"]["unchanged"] == 3
    assert out.report["counts"]["api_calls"] == 4
    assert {p["action"] for p in out.plan} == {"unchanged"}


def test_same_code_twice_in_a_batch_keeps_the_last(
    clientify: SandboxProcess, run_target: RunTarget
) -> None:
    out = run_target("same_code_twice.singer")

    c = one(clientify, 501)
    assert c["first_name"] == "Segunda Versión"
    assert [e["email"] for e in c["emails"]] == ["v2@example.com"]
    assert out.report["counts"]["created"] == 1


# ---------------------------------------------------------------------------- updates


def test_edited_client_updates_only_its_contact_and_only_changed_fields(
    clientify: SandboxProcess, run_target: RunTarget
) -> None:
    run_target("new_clients.singer")
    c102 = one(clientify, 102)
    # a CRM user adds things the sync does not own
    base = f"contacts/{c102['id']}"
    clientify.admin("PATCH", base, {"tags": ["factusol", "vip"]})
    c102 = clientify.admin("GET", base)
    emails_before = [e["email"] for e in c102["emails"]]
    clientify.admin(
        "PATCH",
        base,
        {
            "emails": [*c102["emails"], {"email": "otra@example.com", "type": 1}],
            "phones": [*c102["phones"], {"phone": "+34 600 999 888", "type": 6}],
        },
    )
    clientify.clear_requests()

    out = run_target("edited_client.singer")

    paths = {w["path"] for w in writes(clientify)}
    assert all(p.startswith(f"/v1/contacts/{c102['id']}/") for p in paths), paths
    after = one(clientify, 102)
    assert phones(after)[1] == ["+34933444555"]
    assert phones(after)[6] == ["+34 600 999 888"]  # not ours: kept
    assert sorted(e["email"] for e in after["emails"]) == sorted(
        [*emails_before, "otra@example.com"]
    )
    assert {t if isinstance(t, str) else t["name"] for t in after["tags"]} == {"factusol", "vip"}
    assert after["addresses"][0]["city"] == "Badalona"
    assert after["first_name"] == c102["first_name"]
    assert out.report["counts"] == {**out.report["counts"], "updated": 1, "unchanged": 2}
    (update,) = [p for p in out.plan if p["action"] == "update"]
    assert {d["field"] for d in update["diffs"]} == {"phone", "city", "postal_code"}
    # no PUT: name, NIF and the link did not change; only phone and address sub-resources
    assert not any(w["method"] == "PUT" for w in writes(clientify))


def test_clientify_only_change_is_kept_whatever_the_dates(
    clientify: SandboxProcess, run_target: RunTarget
) -> None:
    run_target("new_clients.singer")
    c101 = one(clientify, 101)
    clientify.admin("PATCH", f"contacts/{c101['id']}", {"first_name": "Talleres Pérez (CRM)"})
    clientify.clear_requests()

    out = run_target("new_clients.singer")

    # only Clientify changed since the ledger: its value stays (and travels the other way)
    assert writes(clientify) == []
    assert one(clientify, 101)["first_name"] == "Talleres Pérez (CRM)"
    assert out.report["counts"]["conflicts"] == 0


@pytest.mark.parametrize(
    ("settings", "winner"),
    [({}, "clientify"), ({"field_authority": {"name": "factusol"}}, "factusol")],
)
def test_change_on_both_sides_is_a_conflict_settled_by_the_policy_and_logged(
    clientify: SandboxProcess,
    run_target: RunTarget,
    caplog: pytest.LogCaptureFixture,
    settings: dict[str, Any],
    winner: str,
) -> None:
    run_target("new_clients.singer")
    c101 = one(clientify, 101)
    # edited in Clientify now, and in FactuSOL on 2026-01-10 (FUMCLI): Clientify is newer
    clientify.admin("PATCH", f"contacts/{c101['id']}", {"first_name": "Talleres Pérez (CRM)"})
    renamed = fixture_text("new_clients.singer").replace(
        "Talleres Pérez S.L.", "Talleres Pérez e Hijos S.L."
    )
    values = {"factusol": "Talleres Pérez e Hijos S.L.", "clientify": "Talleres Pérez (CRM)"}
    clientify.clear_requests()

    with caplog.at_level(logging.INFO):
        out = run_target(renamed, **settings)

    assert one(clientify, 101)["first_name"] == values[winner]
    assert bool(writes(clientify)) is (winner == "factusol")
    assert out.report["counts"]["conflicts"] == 1
    conflict = [p for p in out.plan if p["action"] == "conflict"]
    assert conflict[0]["key"] == 101
    assert conflict[0]["diffs"][0]["field"] == "name"
    assert conflict[0]["winner"] == winner
    assert conflict[0]["values"] == values
    line = next(r.getMessage() for r in caplog.records if "field name:" in r.getMessage())
    assert "conflict: client 101, contact" in line
    assert "Talleres" not in line  # no values at INFO
    # settled once: the next run finds nothing to decide
    clientify.clear_requests()
    again = run_target(renamed, **settings)
    assert again.report["counts"]["conflicts"] == 0
    assert writes(clientify) == []


# ---------------------------------------------------------------------------- bad values


def test_invalid_values_are_synced_without_that_field_and_warned(
    clientify: SandboxProcess, run_target: RunTarget, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        out = run_target("invalid_values.singer")

    assert out.report["counts"]["created"] == 3
    assert out.report["counts"]["rejected"] == 0
    assert one(clientify, 201)["phones"] == []
    assert one(clientify, 201)["emails"][0]["email"] == "ok201@example.com"
    assert one(clientify, 202)["emails"] == []
    assert one(clientify, 202)["phones"][0]["phone"] == "+34600111333"
    assert one(clientify, 203)["taxpayer_identification_number"] == ""
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("client 201" in w and "phone" in w for w in warnings)
    assert any("client 202" in w and "email" in w for w in warnings)
    assert any("client 203" in w and "nif" in w for w in warnings)
    assert not any("no-es-un-email" in w for w in warnings)  # field and problem, not the value


def test_invalid_phone_alone(clientify: SandboxProcess, run_target: RunTarget) -> None:
    out = run_target("invalid_phone.singer")
    assert one(clientify, 211)["phones"] == []
    assert out.report["counts"]["warnings"] == 1


def test_duplicate_factusol_id_is_rejected_and_neither_contact_updated(
    clientify: SandboxProcess, run_target: RunTarget
) -> None:
    a = admin_contact(
        clientify, first_name="Uno", custom_fields=[{"field": "factusol_id", "value": "301"}]
    )
    b = admin_contact(
        clientify, first_name="Dos", custom_fields=[{"field": "factusol_id", "value": "301"}]
    )
    clientify.clear_requests()

    out = run_target("duplicate_factusol_id.singer", max_reject_percent=100)

    assert out.report["counts"]["rejected"] == 1
    assert out.report["counts"]["created"] == 1  # 302 syncs
    (reject,) = [r for r in out.rejects if r["type"] == "RECORD"]
    assert reject["record"]["code"] == 301
    assert str(a["id"]) in reject["_reject"]["reason"]
    assert str(b["id"]) in reject["_reject"]["reason"]
    assert out.rejects[0]["type"] == "SCHEMA"  # replayable
    assert not any(
        str(a["id"]) in w["path"] or str(b["id"]) in w["path"] for w in writes(clientify)
    )


# ---------------------------------------------------------------------------- first-run matching


def test_matching_links_unique_candidates_and_creates_the_rest(
    clientify: SandboxProcess, run_target: RunTarget
) -> None:
    by_nif = admin_contact(
        clientify,
        first_name="Por NIF",
        taxpayer_identification_number="b-87654323",
        emails=[{"email": "crm401@example.com", "type": 1}],
        tags=["cliente"],
    )
    by_email = admin_contact(
        clientify, first_name="Por Email", emails=[{"email": "match402@example.com", "type": 4}]
    )
    # one NIF on two contacts identifies neither; an e-mail of a contact linked elsewhere
    # makes it no candidate: both clients are created, never lost, nothing merged
    twin_a = admin_contact(clientify, first_name="A", taxpayer_identification_number="A58818501")
    twin_b = admin_contact(clientify, first_name="B", taxpayer_identification_number="A58818501")
    other = admin_contact(
        clientify,
        first_name="Ya enlazado",
        emails=[{"email": "linked404@example.com", "type": 4}],
        custom_fields=[{"field": "factusol_id", "value": "9999"}],
    )
    clientify.clear_requests()

    out = run_target("match_by_nif_or_email.singer")

    assert one(clientify, 401)["id"] == by_nif["id"]
    assert one(clientify, 402)["id"] == by_email["id"]
    linked = one(clientify, 401)
    assert {t if isinstance(t, str) else t["name"] for t in linked["tags"]} == {
        "cliente",
        "factusol",
    }
    assert "crm401@example.com" in [e["email"] for e in linked["emails"]]  # other email kept
    for code in (403, 404, 405):
        assert len(by_code(clientify)[code]) == 1, code  # created once
        assert one(clientify, code)["id"] not in {twin_a["id"], twin_b["id"], other["id"]}
    main = [p["action"] for p in out.plan if p["key"] in (401, 402) and p["action"] != "conflict"]
    assert main == ["link", "link"]
    # no ledger entry yet and both hold a name: the CRM contacts changed after FUMCLI (newest)
    assert {p["key"] for p in out.plan if p["action"] == "conflict"} == {401, 402}
    assert linked["first_name"] == "Por NIF"
    counts = out.report["counts"]
    assert (counts["linked"], counts["created"], counts["rejected"]) == (2, 3, 0)

    # empty match_fallback: link by factusol_id only
    clientify.clear_requests()
    out = run_target("match_by_nif_or_email.singer", match_fallback=[])
    assert out.report["counts"]["created"] == 0  # all five are linked now


def test_ambiguous_match_is_rejected_with_its_candidates_or_created(
    clientify: SandboxProcess, run_target: RunTarget
) -> None:
    nif_one = admin_contact(clientify, first_name="X", taxpayer_identification_number="A58818501")
    mail_one = admin_contact(
        clientify, first_name="Y", emails=[{"email": "ambiguo@example.com", "type": 4}]
    )
    text = fixture_text("match_by_nif_or_email.singer").replace(
        '"email": "", "web": ""', '"email": "ambiguo@example.com", "web": ""', 1
    )
    lines = [x for x in text.splitlines() if '"code": 4' not in x or '"code": 403' in x]
    clientify.clear_requests()

    out = run_target("\n".join(lines) + "\n", max_reject_percent=100)

    reject = next(p for p in out.plan if p["action"] == "reject")
    assert reject["key"] == 403
    assert reject["code"] == "ambiguous_match"
    assert reject["candidates"] == [nif_one["id"], mail_one["id"]]
    assert [w for w in writes(clientify) if "/contacts/" in w["path"]] == []
    out = run_target("\n".join(lines) + "\n", ambiguous_match="create")
    assert [p["action"] for p in out.plan] == ["create"]


# ---------------------------------------------------------------------------- dry run


def test_dry_run_writes_nothing_and_plans_what_the_real_run_does(
    clientify: SandboxProcess, run_target: RunTarget, tmp_path: Any
) -> None:
    admin_contact(
        clientify, first_name="Por Email", emails=[{"email": "match402@example.com", "type": 4}]
    )
    run_target("new_clients.singer")
    clientify.clear_requests()
    dry_plan = str(tmp_path / "dry-plan.jsonl")

    dry = run_target(
        "match_by_nif_or_email.singer", dry_run=True, plan_file=dry_plan, max_reject_percent=100
    )
    assert writes(clientify) == []
    real = run_target("match_by_nif_or_email.singer", max_reject_percent=100)

    def actions(plan: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted((p["action"], p["key"], tuple(d["field"] for d in p["diffs"])) for p in plan)

    assert actions(dry.plan) == actions(real.plan)
    assert dry.report["dry_run"] is True
    assert {k: v for k, v in dry.report["counts"].items() if k != "api_calls"} == {
        k: v for k, v in real.report["counts"].items() if k != "api_calls"
    }
    link = next(p for p in dry.plan if p["action"] == "link")
    assert {"field": "factusol_id", "before": None, "after": "402"} in link["diffs"]


# ---------------------------------------------------------------------------- failures


# A 409 on a duplicate NIF is retried without it: test_target_clientify_lifecycle.py


def test_reject_ratio_above_threshold_fails_loudly_without_state(
    clientify: SandboxProcess, run_target: RunTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(TargetClientifyError, match="2 of 3 records rejected"):
        run_target("mostly_bad_codes.singer")
    assert capsys.readouterr().out.strip() == ""  # no STATE line
    assert one(clientify, 601)  # the good one was still written


def test_unknown_stream_is_a_clear_error_naming_it(run_target: RunTarget) -> None:
    with pytest.raises(TargetClientifyError, match="'invoices'"):
        run_target("unknown_stream.singer")


def test_a_stream_map_alias_makes_another_stream_name_usable(
    clientify: SandboxProcess, run_target: RunTarget
) -> None:
    run_target("aliased_stream.singer", stream_maps={"customers": {"__alias__": "clients"}})
    assert one(clientify, 801)["first_name"] == "Alias SL"


def test_wrong_api_key_fails_at_start_naming_the_key(
    clientify: SandboxProcess, run_target: RunTarget
) -> None:
    with pytest.raises(TargetClientifyError, match="API key") as err:
        run_target("new_clients.singer", api_key="wrong-key-123")
    assert "wrong-key-123" not in str(err.value)
    assert writes(clientify) == []


def test_link_field_that_cannot_be_created_stops_with_instructions(
    clientify: SandboxProcess, run_target: RunTarget
) -> None:
    clientify.configure(switches={"custom_field_create": "reject"})
    with pytest.raises(TargetClientifyError, match="by hand"):
        run_target("new_clients.singer")
    assert [w for w in writes(clientify) if w["path"] == "/v1/contacts/"] == []


def test_api_key_never_in_logs_even_at_debug(
    clientify: SandboxProcess, run_target: RunTarget, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        run_target("new_clients.singer")
        run_target("edited_client.singer")
        with pytest.raises(TargetClientifyError):
            run_target("new_clients.singer", api_key=API_KEY + "x")
    text = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert len(caplog.records) > 20
    assert API_KEY not in text


def test_cli_run_and_one_line_failure(
    clientify: SandboxProcess, config: dict[str, Any], tmp_path: Any
) -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    exe = str(Path(sys.executable).with_name("target-clientify"))
    good = tmp_path / "good.json"
    good.write_text(json.dumps(config))
    ok = subprocess.run(
        [exe, "--config", str(good)],
        input=fixture_text("new_clients.singer"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert '"bookmarks"' in ok.stdout
    assert "3 created" in ok.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**config, "api_key": "nope"}))
    failed = subprocess.run(
        [exe, "--config", str(bad)],
        input=fixture_text("new_clients.singer"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert "Traceback" not in failed.stderr
    errors = [line for line in failed.stderr.splitlines() if "ERROR" in line]
    assert any("API key" in line for line in errors), failed.stderr[-2000:]


def test_empty_company_on_a_newer_contact_is_filled_not_a_repeating_conflict(
    clientify: SandboxProcess, run_target: RunTarget
) -> None:
    # A contact linked by the sync, edited in the CRM later, that has no company: its empty
    # company cannot flow back to FactuSOL (the sync never clears a company), so FactuSOL's
    # trade name fills it instead of being reported as a conflict on every run.
    run_target("new_clients.singer")
    c102 = one(clientify, 102)
    clientify.admin("PATCH", f"contacts/{c102['id']}", {"title": "Gerente"})  # newer, unsynced
    first = run_target("trade_name_added.singer")
    again = run_target("trade_name_added.singer")

    assert one(clientify, 102)["company_name"] == "Estudio García"
    assert first.report["counts"]["conflicts"] == 0
    assert again.report["counts"]["updated"] == 0
    assert again.report["counts"]["conflicts"] == 0
