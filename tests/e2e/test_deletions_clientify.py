"""Issue 25, FactuSOL -> Clientify side, end to end through `meltano run`: a contact deleted in
Clientify stays deleted (its FactuSOL client left as it is), a contact merged away moves the
link, and `fcsync-history` tells each step of a customer with its reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from customer_sync import customer_from_row

from .conftest import Project
from .test_two_way import codes, contact_id_for, cycle, edit_client, linked_contacts

CLIENTIFY = "target-clientify"
HISTORY = str(Path(sys.executable).with_name("fcsync-history"))


def kept(project: Project) -> list[tuple[Any, Any]]:
    plan = project.lines("plans", CLIENTIFY)
    return [(p["key"], p["target_id"]) for p in plan if p["action"] == "kept_deleted"]


def ledger_uri(project: Project) -> str:
    return project.sync_state_uri or str(project.workdir / "output/ledger/sync-ledger.sqlite")


def history(project: Project, query: str) -> str:
    proc = subprocess.run(
        [HISTORY, query, "--ledger-uri", ledger_uri(project)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return proc.stdout


def quiet(project: Project) -> None:
    project.factusol.clear_requests()
    project.clientify.clear_requests()


# The deletion rule depends on the ledger (the pair, the mark): on PostgreSQL too when a server
# is given (FCSYNC_TEST_PG_URI; skipped without one).
@pytest.mark.parametrize("system_db", ["sqlite", "postgresql"], indirect=True)
def test_contact_deleted_in_clientify_stays_deleted_through_modified_and_full_runs(
    project: Project,
) -> None:
    cycle(project, full=True)
    code = codes(project)[2]
    gone = contact_id_for(project, code)
    project.clientify.admin("DELETE", f"contacts/{gone}")
    # an edit in FactuSOL after the deletion: the modified run reads this client
    edit_client(project, code, {"TELCLI": "600 123 456"})
    row = project.clients()[code]
    quiet(project)

    cycle(project)

    assert code not in linked_contacts(project)
    assert kept(project) == [(code, gone)]
    assert project.report(CLIENTIFY)["counts"]["kept_deleted"] == 1
    assert project.clients()[code] == row  # the FactuSOL client is left exactly as it is
    assert project.writes(project.clientify) == []
    assert project.writes(project.factusol) == []
    assert f"client {code}" in history(project, str(code))
    assert "deleted in Clientify: not re-created" in history(project, str(code))

    cycle(project, full=True)  # every client read again: still deleted, and quiet about it

    assert code not in linked_contacts(project)
    assert kept(project) == []
    assert "kept_deleted" not in project.report(CLIENTIFY)["counts"]
    assert project.clients()[code] == row
    assert project.writes(project.clientify) == []
    assert project.writes(project.factusol) == []

    cycle(project)  # the next cycle writes nothing
    assert project.writes(project.clientify) == []
    assert project.writes(project.factusol) == []
    assert kept(project) == []


def test_merged_away_contact_moves_the_link_and_nothing_is_recreated(project: Project) -> None:
    cycle(project, full=True)
    code = codes(project)[4]
    merged = contact_id_for(project, code)
    # Clientify's merge of duplicates: the survivor holds the merged contact's values and link
    detail = project.clientify.admin("GET", f"contacts/{merged}")
    body = {
        name: detail.get(name)
        for name in ("first_name", "last_name", "taxpayer_identification_number", "title")
        if detail.get(name)
    }
    body["emails"] = [{"email": e["email"], "type": e.get("type", 1)} for e in detail["emails"]]
    body["phones"] = [{"phone": p["phone"], "type": p.get("type", 1)} for p in detail["phones"]]
    body["addresses"] = [
        {k: v for k, v in a.items() if k not in ("id",)} for a in detail["addresses"]
    ]
    body["custom_fields"] = [{"field": "factusol_id", "value": str(code)}]
    survivor = int(project.clientify.admin("POST", "contacts", body)["id"])
    project.clientify.admin("DELETE", f"contacts/{merged}")
    row = project.clients()[code]

    cycle(project)
    cycle(project)

    assert int(linked_contacts(project)[code]["id"]) == survivor
    assert kept(project) == []
    assert project.clients()[code] == row
    assert len(project.clients()) == len(set(project.clients()))
    quiet(project)
    cycle(project)
    assert project.writes(project.clientify) == []
    assert project.writes(project.factusol) == []


def test_history_after_a_first_run_link_and_a_conflict_shows_each_step_with_its_reason(
    project: Project,
) -> None:
    code, nif = next(
        (code, customer.nif)
        for code, row in sorted(project.clients().items())
        for customer in [customer_from_row(row, region="ES")[0]]
        if customer.nif and customer.email
    )
    existing = int(
        project.clientify.admin(
            "POST", "contacts", {"first_name": "Existente", "taxpayer_identification_number": nif}
        )["id"]
    )
    day = 86_400
    for proc in (project.factusol, project.clientify):
        proc.configure(clock_offset_seconds=-5 * day)
    cycle(project, full=True)
    for proc in (project.factusol, project.clientify):
        proc.configure(clock_offset_seconds=0)
    assert int(linked_contacts(project)[code]["id"]) == existing
    # FactuSOL edited two days ago, Clientify now: a conflict the newest change wins
    edit_client(project, code, {"TELCLI": "911 000 001"}, days_ago=2)
    project.clientify.admin(
        "PATCH", f"contacts/{existing}", {"phones": [{"phone": "+34 911 000 002", "type": 1}]}
    )

    cycle(project, full=True)

    steps = history(project, str(code)).splitlines()
    link = [s for s in steps if "first run: linked by a shared key" in s]
    conflict = [s for s in steps if "changed on both sides: the conflict rule chose" in s]
    assert link, steps
    assert "nif" in link[0].split("(key=")[-1]
    phone = [s for s in conflict if ".phone" in s and "winner=clientify" in s]
    assert phone, steps
    assert steps.index(link[0]) < steps.index(phone[0])  # the link run, then the conflict
    assert all(f"client {code}" in s or f"contact {existing}" in s for s in steps)
    # a contact id names the same customer
    assert history(project, str(existing)).splitlines() == steps
