"""A person's life with the sync, end to end through `meltano run` (issue 25): each step in
`fcsync-history` with its reason, the report page linking the customer to its page, then
`fcsync-forget`: no trace of the person under the output directory (bytes, databases included,
and the ledger), and the next cycles do not bring the person back.

Runs with a SQLite ledger, and with a PostgreSQL one when FCSYNC_TEST_PG_URI names a server
(there "no trace" in the ledger is checked with SELECTs over its tables).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .conftest import Project, link_of

DAY = 86_400
LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
NIF = f"48123456{LETTERS[48123456 % 23]}"
EMAIL = "lucia.fernandez.gil@example.es"
FIRST, LAST = "Lucía", "Fernández Gil"
NAME = f"{FIRST} {LAST}"
PHONES = ("687123459", "687000111", "687000222")
LEDGER_TABLES = ("sync_ledger_pair", "sync_ledger_history", "sync_ledger_mark")


def command(name: str, *args: str, project: Project) -> subprocess.CompletedProcess[str]:
    ledger = project.sync_state_uri or str(project.workdir / "output/ledger/sync-ledger.sqlite")
    return subprocess.run(
        [str(Path(sys.executable).with_name(name)), *args, "--ledger-uri", ledger],
        capture_output=True,
        text=True,
        check=False,
    )


def cycle(project: Project) -> None:
    project.run("factusol-to-clientify-full")
    project.run("clientify-to-factusol-full")


def needles() -> list[bytes]:
    """The person's values as any file may hold them: UTF-8, JSON-escaped, spaced phones."""
    texts = [NIF, EMAIL, NAME, LAST, *PHONES]
    texts += [f"{p[:3]} {p[3:6]} {p[6:]}" for p in PHONES]
    out: set[bytes] = set()
    for text in texts:
        out.add(text.encode())
        out.add(json.dumps(text)[1:-1].encode())
    return sorted(out)


def traces(root: Path, *, skip: tuple[str, ...] = ()) -> list[str]:
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.name.startswith(skip):
            continue
        data = path.read_bytes()
        found += [f"{path.relative_to(root)}: {n!r}" for n in needles() if n in data]
    return found


def pg_traces(uri: str, tables: tuple[str, ...]) -> list[str]:
    import psycopg

    found = []
    with psycopg.connect("postgresql://" + uri.split("://", 1)[1]) as conn:
        for table in tables:
            rows = conn.execute(f"SELECT t::text FROM {table} t").fetchall()
            for (row,) in rows:
                raw = row.encode()
                found += [f"{table}: {n!r}" for n in needles() if n in raw]
    return found


def person(project: Project) -> tuple[int, int]:
    """The person in both systems (unlinked), created five days ago, as (code, contact id)."""
    for proc in (project.factusol, project.clientify):
        proc.configure(clock_offset_seconds=-5 * DAY)
    row = project.factusol.admin(
        "POST",
        "clients",
        {"NOFCLI": NAME, "NIFCLI": NIF, "EMACLI": EMAIL, "TELCLI": PHONES[0], "POBCLI": "Burgos"},
    )
    contact = project.clientify.admin(
        "POST",
        "contacts",
        {
            "first_name": FIRST,
            "last_name": LAST,
            "taxpayer_identification_number": NIF,
            "emails": [{"email": EMAIL, "type": 4}],
            "phones": [{"phone": f"+34{PHONES[0]}", "type": 1}],
        },
    )
    return int(row["CODCLI"]), int(contact["id"])


def synced_with_a_conflict(project: Project) -> tuple[int, int]:
    """The person linked on the first run (by NIF), then a conflict on the phone: FactuSOL
    changed it two days ago, Clientify now."""
    code, contact_id = person(project)
    cycle(project)  # five days ago: the first run links the two by their NIF
    for proc in (project.factusol, project.clientify):
        proc.configure(clock_offset_seconds=0)
    assert link_of(project.contacts()[contact_id]) == str(code)
    project.factusol.configure(clock_offset_seconds=-2 * DAY)
    project.factusol.admin("PATCH", f"clients/{code}", {"TELCLI": PHONES[1]})
    project.factusol.configure(clock_offset_seconds=0)
    phone = [{"phone": f"+34 {PHONES[2][:3]} {PHONES[2][3:6]} {PHONES[2][6:]}", "type": 1}]
    project.clientify.admin("PATCH", f"contacts/{contact_id}", {"phones": phone})
    cycle(project)
    assert project.clients()[code]["TELCLI"].replace(" ", "") == PHONES[2]
    return code, contact_id


def forget(project: Project, code: int, contact_id: int) -> None:
    output = project.workdir / "output"
    forgot = command("fcsync-forget", NIF, "--output-dir", str(output), project=project)
    assert forgot.returncode == 0, forgot.stdout + forgot.stderr
    assert f"client {code} is untouched" in forgot.stdout  # what to do in FactuSOL
    assert f"contact {contact_id} is untouched" in forgot.stdout
    assert traces(output) == []
    if project.sync_state_uri:
        tables = (*LEDGER_TABLES, "contact_index_contact", "contact_index_key")
        assert pg_traces(project.sync_state_uri, tables) == []


def test_history_shows_each_step_then_forget_leaves_no_trace_and_the_mark_holds(
    project: Project,
) -> None:
    code, contact_id = synced_with_a_conflict(project)

    # fcsync-history, by each key a person may know: every step with its reason.
    for query in (str(code), str(contact_id), NIF, EMAIL):
        shown = command("fcsync-history", query, project=project)
        assert shown.returncode == 0, (query, shown.stderr)
        assert "first run: linked by a shared key" in shown.stdout, (query, shown.stdout)
        assert "changed on both sides: the conflict rule chose" in shown.stdout, query
        assert "winner=clientify" in shown.stdout, query
    # The report page links the customer to its own page.
    output = project.workdir / "output"
    page = (output / "report.html").read_text(encoding="utf-8")
    assert f'href="customers/{code}.html"' in page
    assert (output / "customers" / f"{code}.html").is_file()
    assert traces(output)  # the test's needles do find the person before the forget

    forget(project, code, contact_id)
    assert "forgotten on request" in command("fcsync-history", str(code), project=project).stdout

    # The person is still in both systems (the user has not acted yet): the next
    # clientify-to-factusol run leaves them out, quietly. The contact cache mirrors Clientify,
    # which still holds the person: it is the only store that may hold them now.
    before = project.clients()[code]
    project.factusol.clear_requests()
    project.run("clientify-to-factusol-full")
    assert project.writes(project.factusol) == []
    assert project.clients()[code] == before
    plan = project.lines("plans", "target-factusol")
    assert not [line for line in plan if line["key"] == contact_id]
    assert traces(output, skip=("clientify-contacts.sqlite",)) == []
    if project.sync_state_uri:
        assert pg_traces(project.sync_state_uri, LEDGER_TABLES) == []


def test_forgotten_person_is_not_brought_back_into_clientify(project: Project) -> None:
    code, contact_id = synced_with_a_conflict(project)
    forget(project, code, contact_id)

    # The user deletes the contact in Clientify as told (the invoices keep the client): the
    # next cycle does not bring the person back into Clientify, and nothing holds them.
    project.clientify.admin("DELETE", f"contacts/{contact_id}")
    project.clientify.clear_requests()
    cycle(project)

    creates = [r for r in project.clientify.requests_log() if r["method"] == "POST"]
    assert creates == [], "the forgotten person was brought back into Clientify"
    assert not [c for c in project.contacts().values() if _holds_person(c)]
    assert traces(project.workdir / "output") == []


def _holds_person(contact: dict[str, Any]) -> bool:
    return contact.get("taxpayer_identification_number") == NIF or any(
        e.get("email") == EMAIL for e in contact.get("emails") or []
    )
