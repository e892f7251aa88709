"""A client deleted in FactuSOL, end to end through `meltano run` (issue 25): its contact is
kept and marked, the deletion is reported once, the client is never created again, and the
next cycle writes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import Project, link_of

TARGET = "target-factusol"
TAG = "factusol-deleted"


def cycle(project: Project) -> None:
    project.run("factusol-to-clientify-full")
    project.run("clientify-to-factusol-full")


def tags(contact: dict[str, object]) -> list[str]:
    items = contact.get("tags") or []
    assert isinstance(items, list)
    return [t if isinstance(t, str) else str(t.get("name")) for t in items]


def history(project: Project, query: str) -> str:
    ledger = project.sync_state_uri or str(project.workdir / "output/ledger/sync-ledger.sqlite")
    command = Path(sys.executable).with_name("fcsync-history")
    done = subprocess.run(
        [str(command), query, "--ledger-uri", ledger], capture_output=True, text=True, check=True
    )
    return done.stdout


def test_client_deleted_in_factusol_is_kept_marked_reported_once_never_recreated(
    project: Project,
) -> None:
    cycle(project)  # every client linked to a contact; the ledger knows each pair
    contacts = {int(link): c for c in project.contacts().values() if (link := link_of(c))}
    code = sorted(contacts)[2]
    contact_id = int(contacts[code]["id"])

    project.factusol.admin("DELETE", f"clients/{code}")  # a desktop user deletes it
    project.run("clientify-to-factusol-full")

    plan = project.lines("plans", TARGET)
    kept = [line for line in plan if line["action"] == "kept_deleted"]
    assert [(k["key"], k["target_id"]) for k in kept] == [(contact_id, code)]
    assert not [line for line in plan if line["key"] == contact_id and line is not kept[0]]
    report = project.report(TARGET)
    assert report["counts"]["kept_deleted"] == 1
    assert report["counts"]["rejected"] == 0
    assert project.lines("rejects", TARGET) == []
    assert code not in project.clients()  # not created again
    contact = project.contacts()[contact_id]  # kept, its link as the user left it, and marked
    assert link_of(contact) == str(code)
    assert TAG in tags(contact)
    page = (project.workdir / "output" / "report.html").read_text(encoding="utf-8")
    assert 'data-action="kept_deleted"' in page
    assert f'href="customers/{code}.html"' in page
    assert "deleted in FactuSOL: contact kept and marked" in history(project, str(code))

    # The next cycles: quiet, nothing written on either side, still not created.
    project.factusol.clear_requests()
    project.clientify.clear_requests()
    cycle(project)
    project.run("clientify-to-factusol")  # the incremental run sees the tagged contact too
    assert project.writes(project.factusol) == []
    assert project.writes(project.clientify) == []
    assert not [line for line in project.lines("plans", TARGET) if line["key"] == contact_id]
    assert "kept_deleted" not in project.report(TARGET)["counts"]
    assert code not in project.clients()
    assert contact_id in project.contacts()
