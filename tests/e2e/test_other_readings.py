"""Issue 23.4, end to end: the whole cycle (full and modified, both ways, then a quiet cycle that
writes nothing) with every sandbox switch on a non-default reading a real account could have.

Left on their default, and why:
- FactuSOL `timezone`: not a reading of the API but the office's zone, which the `timezone`
  setting of the sync names (a different zone is a different configuration, not a different
  API); the other tests cover a zone against the host's.
- Every other switch of both tables is on a non-default reading below. `custom_field_create:
  reject` (a key that may not create definitions) is only compatible with a working sync when
  the link field exists: it is created by hand first, as the error message tells a user to.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import requests
from customer_sync import customer_from_row

from .conftest import Project, link_of
from .test_two_way import codes, contact_id_for, cycle, disagreements, edit_client, linked_contacts

CLIENTIFY_READINGS: dict[str, Any] = {
    "default_page_size": 7,
    "page_size_above_max": "400",
    "order": "modified",
    "unknown_filter": "400",
    "cf_filter": True,
    "filter_match": "exact",
    "naive_filter_tz": "UTC",
    "list_addresses": False,
    "custom_fields_shape": "detail",
    "custom_fields_on_update": "replace",
    "empty_custom_value": "ignore",
    "unknown_custom_field": "autocreate",
    "content_type_label": "contacts | contacto",
    "custom_field_create": "reject",
    "flat_on_update": "replace_main",
    "lists_on_update": "replace",
    "subresource_moves_modified": False,
    "duplicate_tin_on_create": "409",
    "unknown_body_keys": "400",
}
FACTUSOL_READINGS: dict[str, Any] = {
    "stamp_fumcli_on_write": True,
    "fumcli_has_time": True,
    "update_missing_key": "error",
    "overlong_text": "truncate",
    "non_cp1252": "error",
    "null_sort": "high",
    "date_values": "text_dmy",
    "ko_rate": 0.03,
    "token_ttl_seconds": 60,
    "ejercicios": [dt.date.today().year],
}


def create_link_field_by_hand(project: Project) -> None:
    """What a user does in Clientify's settings when the key may not create definitions."""
    response = requests.post(
        f"{project.clientify.api_url}/custom-fields/",
        json={"name": "factusol_id", "content_type": "contacts", "field_type": 3},
        headers={"Authorization": "Token sandbox-api-key"},
        timeout=30,
    )
    response.raise_for_status()


def test_full_cycle_with_every_other_reading_then_a_quiet_cycle(project: Project) -> None:
    create_link_field_by_hand(project)
    applied = project.clientify.configure(switches=CLIENTIFY_READINGS)["switches"]
    assert {k: applied[k] for k in CLIENTIFY_READINGS} == CLIENTIFY_READINGS
    applied = project.factusol.configure(switches=FACTUSOL_READINGS)["switches"]
    assert {k: applied[k] for k in FACTUSOL_READINGS} == FACTUSOL_READINGS
    # a branch: a second client under one NIF, so Clientify's 409 on a duplicate NIF is met
    nif = next(
        nif
        for row in project.clients().values()
        if (nif := customer_from_row(row, region="ES")[0].nif)
    )
    project.factusol.admin("POST", "clients", {"NOFCLI": "Sucursal Norte", "NIFCLI": nif})

    project.run("factusol-to-clientify-full")
    retried = [
        p
        for p in project.lines("plans", "target-clientify")
        if p["action"] == "create" and "without taxpayer_identification_number" in str(p["reason"])
    ]
    assert len(retried) == 1, retried
    project.run("clientify-to-factusol-full")
    cycle(project, full=True)

    for target in ("target-clientify", "target-factusol"):
        assert project.report(target)["status"] == "ok", project.report(target)
    clients, contacts = project.clients(), linked_contacts(project)
    assert sorted(contacts) == sorted(clients)  # every client has one contact, no duplicate
    assert disagreements(project) == []

    # edits on both sides, a new client and a new contact, read by modified runs
    first, second = codes(project)[2:4]
    edit_client(project, first, {"DOMCLI": "Calle Nueva, 7", "TELCLI": "600 111 222"})
    contact = contact_id_for(project, second)
    project.clientify.admin("PATCH", f"contacts/{contact}", {"first_name": "Ana Belén Ruiz"})
    project.factusol.admin("POST", "clients", {"NOFCLI": "Nueva Ferretería Soria, S.L."})
    project.clientify.admin(
        "POST", "contacts", {"first_name": "Jorge", "last_name": "Llorente", "email": "jl@ej.es"}
    )

    cycle(project)
    cycle(project)

    assert project.clients()[second]["NOFCLI"] == "Ana Belén Ruiz"
    streets = [a.get("street") for a in linked_contacts(project)[first]["addresses"]]
    assert streets == ["Calle Nueva, 7"]
    assert sorted(linked_contacts(project)) == sorted(project.clients())
    assert disagreements(project) == []
    links = [link_of(c) for c in project.contacts().values() if link_of(c)]
    assert len(links) == len(set(links))

    project.factusol.clear_requests()
    project.clientify.clear_requests()
    cycle(project)
    cycle(project, full=True)
    assert project.writes(project.factusol) == []
    assert project.writes(project.clientify) == []
