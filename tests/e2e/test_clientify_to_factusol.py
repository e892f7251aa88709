"""End-to-end: `meltano run clientify-to-factusol` (tap-clientify -> target-factusol) against both
sandboxes as real processes."""

from __future__ import annotations

import re
from typing import Any

from .conftest import Project, link_of

JOB = "clientify-to-factusol"
TARGET = "target-factusol"
CRASH_HOOK = "FCSYNC_TEST_CRASH_AFTER_INSERT"
_MARKER = re.compile(r"^\s*clientifyid\s+([0-9]+)\s*$", re.MULTILINE | re.IGNORECASE)


def marked(clients: dict[int, dict[str, Any]], contact_id: int) -> list[int]:
    """Codes of the FactuSOL clients carrying the creation marker of `contact_id`."""
    return [
        code
        for code, row in clients.items()
        if str(contact_id) in _MARKER.findall(str(row.get("OBSCLI") or ""))
    ]


def new_contact(project: Project, **extra: Any) -> int:
    body = {
        "first_name": "Nerea",
        "last_name": "Olaizola Azkue",
        "taxpayer_identification_number": "44556677L",
        "emails": [{"email": "nerea.olaizola@example.es", "type": 4}],
        "phones": [{"phone": "+34 655 443 322", "type": 1}],
        "addresses": [
            {
                "type": 5,
                "street": "Calle Urbieta 12",
                "city": "Donostia",
                "state": "Gipuzkoa",
                "country": "España",
                "postal_code": "20006",
            }
        ],
        **extra,
    }
    created: dict[str, Any] = project.clientify.admin("POST", "contacts", body)
    return int(created["id"])


def test_created_contact_appears_once_then_no_writes_then_edit_updates(project: Project) -> None:
    contact_id = new_contact(project)
    before = project.clients()

    project.run(JOB)

    clients = project.clients()
    codes = marked(clients, contact_id)
    assert len(codes) == 1
    code = codes[0]
    assert code not in before
    assert clients[code]["NIFCLI"] == "44556677L"
    assert clients[code]["TELCLI"] == "655443322"
    assert link_of(project.contacts()[contact_id]) == str(code)
    report = project.report(TARGET)
    assert report["status"] == "ok"
    assert report["counts"]["created"] >= 1
    assert any(
        p["action"] == "create" and p["key"] == contact_id for p in project.lines("plans", TARGET)
    )

    # Second run: everything already in step.
    project.factusol.clear_requests()
    project.clientify.clear_requests()
    project.run(JOB)
    assert project.writes(project.factusol) == []
    assert project.writes(project.clientify) == []
    assert project.report(TARGET)["counts"]["created"] == 0

    # A CRM user edits the contact: only its client changes, only the changed column.
    project.clientify.admin(
        "PATCH",
        f"contacts/{contact_id}",
        {"phones": [{"phone": "+34 611 000 111", "type": 1}]},
    )
    phones = project.contacts()[contact_id]["phones"]
    assert any(p["phone"] == "+34 611 000 111" for p in phones)
    before = project.clients()
    project.factusol.clear_requests()

    project.run(JOB)

    after = project.clients()
    assert {c: r for c, r in after.items() if c != code} == {
        c: r for c, r in before.items() if c != code
    }
    assert after[code]["TELCLI"] != before[code]["TELCLI"]
    changed = {k for k in after[code] if after[code][k] != before[code][k]}
    assert changed <= {"TELCLI", "FUMCLI"}
    writes = project.writes(project.factusol)
    assert [w["path"] for w in writes] == ["/admin/ActualizarRegistro"]


def test_killed_between_create_and_write_back_leaves_one_linked_client(project: Project) -> None:
    contact_id = new_contact(project)

    project.extra_env[CRASH_HOOK] = "1"
    failed = project.run(JOB, check=False)
    assert failed.returncode != 0
    crashed = project.clients()
    orphans = [c for c, row in crashed.items() if "clientifyid" in str(row.get("OBSCLI") or "")]
    assert len(orphans) == 1  # the first creation landed, its write-back never happened

    del project.extra_env[CRASH_HOOK]
    project.run(JOB)

    clients = project.clients()
    contacts = project.contacts()
    assert len(marked(clients, contact_id)) == 1
    # Every contact the target created a client for has exactly one, and is linked to it.
    for cid, contact in contacts.items():
        codes = marked(clients, cid)
        assert len(codes) <= 1, cid
        if codes:
            assert link_of(contact) == str(codes[0]), cid
    plan = project.lines("plans", TARGET)
    assert sum(1 for p in plan if p["action"] == "link" and p["reason"] == "creation marker") == 1
