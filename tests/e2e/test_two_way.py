"""Two-way guarantees, end to end through `meltano run` on both sandboxes: convergence without
ping-pong, the conflict rule, idempotence, missed schedules, and customers only."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from customer_sync import TEXT_FIELDS, customer_from_contact, customer_from_row

from .conftest import Project, link_of

DAY = 86_400
SYNCED = tuple(f for f in TEXT_FIELDS if f != "trade_name")


def cycle(project: Project, *, full: bool = False) -> None:
    suffix = "-full" if full else ""
    project.run(f"factusol-to-clientify{suffix}")
    project.run(f"clientify-to-factusol{suffix}")


def linked_contacts(project: Project) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for contact in project.contacts().values():
        link = link_of(contact)
        if link is not None:
            assert int(link) not in out, f"two contacts linked to client {link}"
            out[int(link)] = contact
    return out


def disagreements(project: Project) -> list[str]:
    """Synced fields on which a linked client and contact differ, compared as the sync does."""
    problems = []
    contacts = linked_contacts(project)
    for code, row in project.clients().items():
        contact = contacts.get(code)
        if contact is None:
            problems.append(f"client {code} has no contact")
            continue
        client, _ = customer_from_row(row, region="ES")
        crm, _ = customer_from_contact(contact, region="ES")
        for field in SYNCED:
            a, b = client.get(field), crm.get(field)
            if a is not None and b is not None and a != b:
                problems.append(f"client {code} {field}: {a!r} != {b!r}")
    return problems


def contact_id_for(project: Project, code: int) -> int:
    return int(linked_contacts(project)[code]["id"])


def codes(project: Project) -> list[int]:
    """Seeded client codes (the seed leaves gaps, like deleted clients)."""
    return sorted(project.clients())


def initial_sync_days_ago(project: Project, days: int) -> None:
    """Full sync in both directions with both sandboxes' clocks `days` in the past, so that
    later edits happen after the sync's own writes, as they would in real time."""
    for proc in (project.factusol, project.clientify):
        proc.configure(clock_offset_seconds=-days * DAY)
    cycle(project, full=True)
    for proc in (project.factusol, project.clientify):
        proc.configure(clock_offset_seconds=0)


def edit_client(project: Project, code: int, body: dict[str, Any], *, days_ago: int = 0) -> None:
    """Edit a FactuSOL client as a desktop user would, `days_ago` days in the past."""
    project.factusol.configure(clock_offset_seconds=-days_ago * DAY)
    project.factusol.admin("PATCH", f"clients/{code}", body)
    project.factusol.configure(clock_offset_seconds=0)


def test_edits_on_both_sides_converge_then_a_cycle_writes_nothing(project: Project) -> None:
    seeded = project.clients()
    cycle(project, full=True)
    # Round trip: every seeded client (invalid values included) comes back byte-identical.
    after = project.clients()
    assert [code for code, row in seeded.items() if after[code] != row] == []
    assert disagreements(project) == []
    assert len(linked_contacts(project)) == len(project.clients())

    first, second = codes(project)[2:4]
    edit_client(project, first, {"TELCLI": "600 111 222"})
    project.factusol.admin("POST", "clients", {"NOFCLI": "Nueva Ferretería Soria, S.L."})
    contact = contact_id_for(project, second)
    project.clientify.admin("PATCH", f"contacts/{contact}", {"first_name": "Ana Belén Ruiz"})
    project.clientify.admin(
        "POST", "contacts", {"first_name": "Jorge", "last_name": "Llorente", "email": "jl@ej.es"}
    )

    cycle(project)
    cycle(project)
    assert disagreements(project) == []
    assert project.clients()[second]["NOFCLI"] == "Ana Belén Ruiz"
    assert project.clients()[first]["TELCLI"].replace(" ", "") == "600111222"

    project.factusol.clear_requests()
    project.clientify.clear_requests()
    cycle(project)
    cycle(project, full=True)
    assert project.writes(project.factusol) == []
    assert project.writes(project.clientify) == []


def test_newest_change_wins_and_the_losing_change_is_logged(project: Project) -> None:
    initial_sync_days_ago(project, 5)
    code = codes(project)[3]
    contact = contact_id_for(project, code)
    # FactuSOL edited two days ago, Clientify edited now: Clientify is the most recent change.
    edit_client(project, code, {"TELCLI": "911 000 001"}, days_ago=2)
    project.clientify.admin(
        "PATCH", f"contacts/{contact}", {"phones": [{"phone": "+34 911 000 002", "type": 1}]}
    )

    cycle(project, full=True)

    assert project.clients()[code]["TELCLI"].replace(" ", "") == "911000002"
    assert disagreements(project) == []
    report = project.report("target-clientify")
    assert report["counts"]["conflicts"] >= 1
    conflicts = [p for p in project.lines("plans", "target-clientify") if p["action"] == "conflict"]
    assert any(str(p.get("key")) == str(code) for p in conflicts), conflicts


def test_same_day_edits_on_both_sides_factusol_wins(project: Project) -> None:
    initial_sync_days_ago(project, 5)
    code = codes(project)[4]
    contact = contact_id_for(project, code)
    project.clientify.admin(
        "PATCH", f"contacts/{contact}", {"phones": [{"phone": "+34 922 000 002", "type": 1}]}
    )
    # FUMCLI holds only a date: a same-day FactuSOL change cannot be ordered, FactuSOL wins.
    edit_client(project, code, {"TELCLI": "922 000 001"})

    cycle(project)

    assert project.clients()[code]["TELCLI"].replace(" ", "") == "922000001"
    phones = [p["phone"] for p in project.contacts()[contact]["phones"] if p.get("type") == 1]
    assert phones[:1] == ["+34922000001"]


def test_first_modified_run_takes_the_last_24h_and_a_stale_bookmark_loses_nothing(
    project: Project,
) -> None:
    initial_sync_days_ago(project, 6)
    old, recent, late = codes(project)[5:8]
    edit_client(project, old, {"POBCLI": "Alcalá de Henares"}, days_ago=3)
    edit_client(project, recent, {"POBCLI": "Dos Hermanas"})

    project.run("factusol-to-clientify")  # no state yet: the last 24 h only
    contacts = linked_contacts(project)
    assert contacts[recent]["addresses"][0]["city"] == "Dos Hermanas"
    assert all(a.get("city") != "Alcalá de Henares" for a in contacts[old]["addresses"])

    # A schedule that missed four days: the bookmark is four days old, the change two days old.
    state_id = "dev:tap-factusol-to-target-clientify"
    stale = (dt.datetime.now(dt.UTC) - dt.timedelta(days=4)).isoformat()
    bookmark = {"replication_key": "modified", "replication_key_value": stale}
    state = {"singer_state": {"bookmarks": {"clients": bookmark}}}
    project.meltano("state", "set", "--force", state_id, json.dumps(state))
    edit_client(project, late, {"POBCLI": "Torrelodones"}, days_ago=2)

    project.run("factusol-to-clientify")
    contacts = linked_contacts(project)
    assert contacts[late]["addresses"][0]["city"] == "Torrelodones"
    assert contacts[old]["addresses"][0]["city"] == "Alcalá de Henares"  # 3 days old: in the gap
    assert project.state(state_id)["singer_state"]["bookmarks"]["clients"]


def test_only_customers_are_read_or_written(project: Project) -> None:
    cycle(project, full=True)
    factusol_routes = {r["path"].lower().rstrip("/") for r in project.factusol.requests_log()}
    assert factusol_routes <= {
        "/login/autenticar",
        "/admin/cargatabla",
        "/admin/lanzarconsulta",
        "/admin/escribirregistro",
        "/admin/actualizarregistro",
    }
    for request in project.clientify.requests_log():
        path = request["path"]
        assert path.startswith(("/v1/contacts/", "/v1/custom-fields/", "/v1/settings/")), path
