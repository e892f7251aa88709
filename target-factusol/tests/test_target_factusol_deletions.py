"""A client deleted in FactuSOL, a person forgotten: decisions the sync keeps (issue 25).

Against both sandboxes: a linked pair is synced once (the ledger knows it), then the client is
deleted in FactuSOL as a desktop user would.
"""

from __future__ import annotations

from typing import Any

import pytest
from customer_records.cli import open_scope, relink_main
from sync_ledger import CustomerHistory
from target_factusol.write import DELETED_TAG
from target_factusol_testlib import Harness, messages
from test_target_factusol_sandbox import CONTACT, old_client_501

CODE = 501


def synced_then_deleted(harness: Harness) -> list[dict[str, Any]]:
    """Client 501 linked to CONTACT and synced once, then deleted in FactuSOL."""
    old_client_501(harness)
    msgs = messages("linked_contact_changed")
    harness.put_contacts(msgs)
    assert harness.run(msgs).plan[0]["action"] == "update"
    harness.fs.admin("DELETE", f"clients/{CODE}")
    harness.clear_logs()
    return harness.current_messages()


def marks(harness: Harness) -> dict[int, Any]:
    try:
        ledger = open_scope(str(harness.tmp / "ledger.sqlite"), None)
    except SystemExit:  # no account in the ledger yet: nothing kept
        return {}
    try:
        return CustomerHistory(ledger).marks()
    finally:
        ledger.close()


def tags(harness: Harness) -> list[str]:
    return [t if isinstance(t, str) else t["name"] for t in harness.contacts()[CONTACT]["tags"]]


@pytest.mark.parametrize("missing_client", ["reject", "recreate"])
def test_deleted_client_kept_marked_reported_once_never_recreated(
    harness: Harness, missing_client: str
) -> None:
    msgs = synced_then_deleted(harness)

    first = harness.run(msgs, missing_client=missing_client)

    assert [(p["action"], p["key"], p["target_id"]) for p in first.plan] == [
        ("kept_deleted", CONTACT, CODE)
    ]
    assert "fcsync-relink --client 501" in first.plan[0]["reason"]
    assert first.report["counts"]["kept_deleted"] == 1
    assert first.report["counts"]["rejected"] == 0
    assert first.rejects == []
    assert CODE not in harness.clients()
    assert harness.writes()["factusol"] == []
    assert [m for m, _ in harness.writes()["clientify"]] == ["POST"]  # the tag, added
    assert DELETED_TAG in tags(harness)
    mark = marks(harness)[CODE]
    assert (mark.kind, mark.contact_id) == ("deleted_in_factusol", str(CONTACT))
    assert mark.reported

    # The next runs are quiet: no line, no count, no write, nothing created.
    harness.clear_logs()
    again = harness.run(harness.current_messages(), missing_client=missing_client)
    assert again.plan == []
    assert "kept_deleted" not in again.report["counts"]
    assert again.report["counts"]["rejected"] == 0
    assert harness.writes() == {"factusol": [], "clientify": []}
    assert CODE not in harness.clients()


def test_dry_run_plans_the_deletion_and_keeps_nothing(harness: Harness) -> None:
    msgs = synced_then_deleted(harness)

    dry = harness.run(msgs, dry_run=True)

    assert [p["action"] for p in dry.plan] == ["kept_deleted"]
    assert harness.writes() == {"factusol": [], "clientify": []}
    assert CODE not in marks(harness)
    # the real run still reports it
    assert [p["action"] for p in harness.run(msgs).plan] == ["kept_deleted"]


def test_a_mark_not_reported_yet_is_reported_by_the_next_run(harness: Harness) -> None:
    msgs = synced_then_deleted(harness)
    ledger = open_scope(str(harness.tmp / "ledger.sqlite"), None)
    CustomerHistory(ledger).mark(CODE, "deleted_in_factusol", contact_id=CONTACT)
    ledger.close()  # marked by a run that stopped before its report

    out = harness.run(msgs)

    assert [p["action"] for p in out.plan] == ["kept_deleted"]
    assert DELETED_TAG in tags(harness)
    assert marks(harness)[CODE].reported


def test_link_without_a_synced_pair_stays_a_missing_client_reject(harness: Harness) -> None:
    msgs = messages("missing_client")  # a hand-typed factusol_id: the ledger knows no pair
    harness.put_contacts(msgs)

    out = harness.run(msgs, max_reject_percent=100)

    assert out.plan[0]["code"] == "missing_client"
    assert marks(harness) == {}


def test_relink_lifts_the_mark_then_missing_client_decides(harness: Harness) -> None:
    msgs = synced_then_deleted(harness)
    harness.run(msgs)
    ledger = str(harness.tmp / "ledger.sqlite")

    assert relink_main(["--client", str(CODE), "--ledger-uri", ledger]) == 0

    assert CODE not in marks(harness)
    rejected = harness.run(harness.current_messages(), max_reject_percent=100)
    assert [(p["action"], p.get("code")) for p in rejected.plan] == [("reject", "missing_client")]
    assert CODE not in marks(harness)  # a hand-typed link now: not marked again

    recreated = harness.run(harness.current_messages(), missing_client="recreate")
    assert [(p["action"], p["target_id"]) for p in recreated.plan] == [("create", CODE)]
    assert harness.clients()[CODE]["NOFCLI"]


def test_forgotten_client_is_skipped_quietly(harness: Harness) -> None:
    old_client_501(harness)
    msgs = messages("linked_contact_changed")
    harness.put_contacts(msgs)
    harness.run(msgs)
    ledger = open_scope(str(harness.tmp / "ledger.sqlite"), None)
    CustomerHistory(ledger).mark(CODE, "forgotten", contact_id=CONTACT)
    ledger.close()
    harness.cl.admin("PATCH", f"contacts/{CONTACT}", {"first_name": "Otra"})
    harness.clear_logs()

    out = harness.run(harness.current_messages())

    assert out.plan == []
    assert out.report["counts"]["rejected"] == 0
    assert harness.writes() == {"factusol": [], "clientify": []}


def test_detecting_the_deletion_costs_no_extra_read(harness: Harness) -> None:
    old_client_501(harness)
    msgs = messages("linked_contact_changed")
    harness.put_contacts(msgs)
    harness.run(msgs)
    steady = harness.run(harness.current_messages()).report["api_calls"]
    harness.fs.admin("DELETE", f"clients/{CODE}")

    deleted = harness.run(harness.current_messages()).report["api_calls"]

    # the batch's rows are read by code anyway: a missing one is the deletion
    assert deleted.get("factusol_read", 0) <= steady.get("factusol_read", 0)
    assert deleted.get("factusol_query", 0) <= steady.get("factusol_query", 0)
    assert deleted.get("factusol_write", 0) == 0
