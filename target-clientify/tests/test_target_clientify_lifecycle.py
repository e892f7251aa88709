"""Deletions respected, merged-away contacts, forgotten people (issue 25) and the two
Clientify readings (issue 23.4: list items without addresses, 409 on a duplicate NIF), against
the Clientify sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from customer_records.cli import open_scope, relink_main
from sandbox.launcher import SandboxProcess
from sync_ledger import CustomerHistory
from target_runtime import SyncRun

from .conftest import RunTarget, fixture_text
from .test_target_clientify_sandbox import admin_contact, by_code, one, writes


def marks(config: dict[str, Any]) -> dict[int, Any]:
    ledger = open_scope(config["ledger_uri"], None)
    try:
        return CustomerHistory(ledger).marks()
    finally:
        ledger.close()


def kept(plan: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
    return [(p["key"], p["target_id"]) for p in plan if p["action"] == "kept_deleted"]


@pytest.fixture
def synced(clientify: SandboxProcess, run_target: RunTarget) -> dict[int, Any]:
    """new_clients.singer synced once: 101, 102, 103 each with its contact."""
    run_target("new_clients.singer")
    return {code: one(clientify, code)["id"] for code in (101, 102, 103)}


def test_contact_deleted_in_clientify_is_not_recreated_reported_once_then_quiet(
    clientify: SandboxProcess,
    run_target: RunTarget,
    synced: dict[int, Any],
    config: dict[str, Any],
) -> None:
    gone = synced[101]
    clientify.admin("DELETE", f"contacts/{gone}")
    clientify.clear_requests()

    first = run_target("new_clients.singer")

    assert 101 not in by_code(clientify)
    assert writes(clientify) == []
    assert kept(first.plan) == [(101, gone)]
    assert (
        "not re-created" in next(p for p in first.plan if p["action"] == "kept_deleted")["reason"]
    )
    assert first.report["counts"]["kept_deleted"] == 1
    mark = marks(config)[101]
    assert (mark.kind, mark.contact_id, mark.reported) == ("deleted_in_clientify", str(gone), True)

    # later runs, modified or full (no cache: one paged scan), are quiet about it
    clientify.clear_requests()
    second = run_target("new_clients.singer")
    full = run_target("new_clients.singer", index_cache_file=None)
    for out in (second, full):
        assert kept(out.plan) == []
        assert "kept_deleted" not in out.report["counts"]
        assert {p["action"] for p in out.plan} == {"unchanged"}
    assert writes(clientify) == []
    assert 101 not in by_code(clientify)


def test_an_edit_in_factusol_after_the_deletion_does_not_bring_it_back(
    clientify: SandboxProcess, run_target: RunTarget, synced: dict[int, Any]
) -> None:
    clientify.admin("DELETE", f"contacts/{synced[101]}")
    run_target("new_clients.singer")
    edited = fixture_text("new_clients.singer").replace("Calle Mayor, 1", "Calle Mayor, 99")

    out = run_target(edited)

    assert 101 not in by_code(clientify)
    assert kept(out.plan) == []


def test_a_contact_deleted_during_the_run_is_found_by_the_write(
    clientify: SandboxProcess,
    run_target: RunTarget,
    synced: dict[int, Any],
    config: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # deleted after the run indexed the contacts, before it writes to it
    load = SyncRun.contact_index

    def index_then_delete(run: SyncRun) -> Any:
        index = load(run)
        # once, while it exists (the setup's three creates run in parallel: 101's contact is
        # not always the first one listed)
        if any(c["id"] == synced[101] for c in clientify.admin("GET", "contacts")["contacts"]):
            clientify.admin("DELETE", f"contacts/{synced[101]}")
        return index

    monkeypatch.setattr(SyncRun, "contact_index", index_then_delete)
    edited = fixture_text("new_clients.singer").replace("Calle Mayor, 1", "Calle Mayor, 99")

    out = run_target(edited)

    assert 101 not in by_code(clientify)
    assert kept(out.plan) == [(101, synced[101])]
    assert [r for r in out.rejects if r["type"] == "RECORD"] == []
    assert marks(config)[101].kind == "deleted_in_clientify"
    monkeypatch.undo()
    again = run_target(edited)
    assert kept(again.plan) == []
    assert 101 not in by_code(clientify)


def test_merged_away_contact_moves_the_link_to_the_contact_carrying_it(
    clientify: SandboxProcess,
    run_target: RunTarget,
    synced: dict[int, Any],
    config: dict[str, Any],
) -> None:
    # Clientify's merge of duplicates: the synced contact is gone, the survivor carries the link
    survivor = admin_contact(
        clientify,
        first_name="Talleres Pérez (fusionado)",
        custom_fields=[{"field": "factusol_id", "value": "101"}],
    )
    clientify.admin("DELETE", f"contacts/{synced[101]}")

    out = run_target("new_clients.singer")

    assert [c["id"] for c in by_code(clientify)[101]] == [survivor["id"]]
    assert kept(out.plan) == []
    assert 101 not in marks(config)
    lines = [p for p in out.plan if p["key"] == 101]
    assert {p["target_id"] for p in lines} == {survivor["id"]}
    assert "create" not in {p["action"] for p in lines}


def test_merged_away_without_a_survivor_carrying_the_link_is_a_deletion(
    clientify: SandboxProcess,
    run_target: RunTarget,
    synced: dict[int, Any],
    config: dict[str, Any],
) -> None:
    # merged into a contact that kept its own (empty) link field
    admin_contact(clientify, first_name="Talleres Pérez", emails=[{"email": "x@example.org"}])
    clientify.admin("DELETE", f"contacts/{synced[101]}")

    out = run_target("new_clients.singer")

    assert kept(out.plan) == [(101, synced[101])]
    assert marks(config)[101].kind == "deleted_in_clientify"


def test_a_contact_linked_again_by_hand_lifts_the_mark(
    clientify: SandboxProcess,
    run_target: RunTarget,
    synced: dict[int, Any],
    config: dict[str, Any],
) -> None:
    clientify.admin("DELETE", f"contacts/{synced[101]}")
    run_target("new_clients.singer")
    assert marks(config)[101].kind == "deleted_in_clientify"
    again = admin_contact(
        clientify,
        first_name="Talleres Pérez S.L.",
        custom_fields=[{"field": "factusol_id", "value": "101"}],
    )

    run_target("new_clients.singer")

    assert 101 not in marks(config)
    assert one(clientify, 101)["id"] == again["id"]
    ledger = open_scope(config["ledger_uri"], None)
    try:
        reasons = [e.reason for e in CustomerHistory(ledger).events(codes=[101])]
    finally:
        ledger.close()
    assert reasons.index("deleted_in_clientify") < reasons.index("relinked")


def test_relink_brings_the_client_back_and_the_dry_run_shows_it(
    clientify: SandboxProcess,
    run_target: RunTarget,
    synced: dict[int, Any],
    config: dict[str, Any],
    tmp_path: Path,
) -> None:
    clientify.admin("DELETE", f"contacts/{synced[101]}")
    run_target("new_clients.singer")
    dry_plan = str(tmp_path / "dry.jsonl")
    dry_report = str(tmp_path / "dry.json")

    marked = run_target(
        "new_clients.singer", dry_run=True, plan_file=dry_plan, report_file=dry_report
    )
    (line,) = [p for p in marked.plan if p["action"] == "kept_deleted"]
    assert "fcsync-relink --client 101" in line["reason"]

    assert relink_main(["--client", "101", "--ledger-uri", config["ledger_uri"]]) == 0
    assert 101 not in marks(config)
    dry = run_target("new_clients.singer", dry_run=True, plan_file=dry_plan, report_file=dry_report)
    assert [p["action"] for p in dry.plan if p["key"] == 101] == ["create"]
    assert 101 not in by_code(clientify)

    real = run_target("new_clients.singer")

    assert [p["action"] for p in real.plan if p["key"] == 101] == ["create"]
    assert one(clientify, 101)["id"] != synced[101]
    again = run_target("new_clients.singer")
    assert {p["action"] for p in again.plan} == {"unchanged"}


def test_dry_run_marks_nothing_but_plans_what_would_be(
    clientify: SandboxProcess,
    run_target: RunTarget,
    synced: dict[int, Any],
    config: dict[str, Any],
    tmp_path: Path,
) -> None:
    clientify.admin("DELETE", f"contacts/{synced[101]}")
    clientify.clear_requests()

    dry = run_target(
        "new_clients.singer",
        dry_run=True,
        plan_file=str(tmp_path / "dry.jsonl"),
        report_file=str(tmp_path / "dry.json"),
    )

    assert writes(clientify) == []
    (line,) = [p for p in dry.plan if p["action"] == "kept_deleted"]
    assert "would be marked" in line["reason"]
    assert dry.report["counts"]["kept_deleted"] == 1
    assert marks(config) == {}

    real = run_target("new_clients.singer")  # the real run is the one that reports it
    assert kept(real.plan) == [(101, synced[101])]
    assert real.report["counts"]["kept_deleted"] == 1


def test_forgotten_client_is_skipped_quietly(
    clientify: SandboxProcess,
    run_target: RunTarget,
    synced: dict[int, Any],
    config: dict[str, Any],
) -> None:
    ledger = open_scope(config["ledger_uri"], None)
    try:  # what fcsync-forget leaves: no pair, a forgotten mark
        ledger.forget(101)
        CustomerHistory(ledger).mark(101, "forgotten", contact_id=synced[101])
        CustomerHistory(ledger).mark(102, "forgotten")  # never pulled back, even unlinked
        ledger.forget(102)
    finally:
        ledger.close()
    clientify.admin("DELETE", f"contacts/{synced[101]}")
    clientify.admin("DELETE", f"contacts/{synced[102]}")
    clientify.clear_requests()

    out = run_target("new_clients.singer")

    assert writes(clientify) == []
    assert sorted(by_code(clientify)) == [103]
    assert [p["key"] for p in out.plan] == [103]
    assert "kept_deleted" not in out.report["counts"]


# ---------------------------------------------------------------------------- the two readings


def test_list_items_without_addresses_still_get_a_street_edited_in_factusol(
    clientify: SandboxProcess, run_target: RunTarget, synced: dict[int, Any]
) -> None:
    clientify.configure(switches={"list_addresses": False})
    edited = fixture_text("new_clients.singer").replace("Calle Mayor, 1", "Calle Mayor, 99")

    out = run_target(edited)

    streets = [a["street"] for a in one(clientify, 101)["addresses"]]
    assert streets == ["Calle Mayor, 99"]
    line = next(p for p in out.plan if p["key"] == 101)
    assert line["action"] == "update"
    # the unchanged ones were read, not rewritten: a quiet run after it
    clientify.clear_requests()
    again = run_target(edited)
    assert writes(clientify) == []
    assert {p["action"] for p in again.plan} == {"unchanged"}


def test_duplicate_nif_409_on_create_is_retried_without_it_and_reported(
    clientify: SandboxProcess, run_target: RunTarget, caplog: pytest.LogCaptureFixture
) -> None:
    admin_contact(clientify, first_name="Dueño del NIF", taxpayer_identification_number="B12345674")
    clientify.configure(switches={"duplicate_tin_on_create": "409"})

    out = run_target("duplicate_nif_refused.singer", match_fallback=[])

    assert out.rejects == [] or all(r["type"] != "RECORD" for r in out.rejects)
    created = one(clientify, 701)
    assert created["taxpayer_identification_number"] in ("", None)
    assert sorted(by_code(clientify)) == [701, 702, 703, 704, 705]
    line = next(p for p in out.plan if p["key"] == 701)
    assert line["action"] == "create"
    assert "without taxpayer_identification_number" in line["reason"]
    assert out.report["counts"]["rejected"] == 0
    assert out.report["counts"]["warnings"] >= 1
    assert "taxpayer_identification_number: refused by Clientify" in caplog.text
