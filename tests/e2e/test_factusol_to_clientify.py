"""FactuSOL -> Clientify through `meltano run` against both sandboxes (4 meltano runs in all)."""

from __future__ import annotations

from typing import Any

from customer_sync import customer_from_client, customer_from_contact, customer_from_row

from .conftest import FACTUSOL_CLIENTS, Project, link_of

TARGET = "target-clientify"


def linked_contacts(project: Project) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for contact in project.contacts().values():
        code = link_of(contact)
        if code is not None:
            out.setdefault(int(code), []).append(contact)
    return out


def test_full_run_creates_each_client_once_then_no_op_then_edit_updates_only_its_contact(
    project: Project,
) -> None:
    project.run("factusol-to-clientify-full")

    clients = project.clients()
    assert len(clients) == FACTUSOL_CLIENTS
    contacts = linked_contacts(project)
    report = project.report(TARGET)
    rejected = {r["record"]["code"] for r in project.lines("rejects", TARGET) if "record" in r}
    assert set(contacts) | rejected == set(clients)
    assert all(len(found) == 1 for found in contacts.values())  # never two per factusol_id
    assert report["counts"]["created"] + report["counts"]["linked"] == len(contacts)
    for code, (contact,) in contacts.items():
        want, _ = customer_from_row(clients[code], region="ES")
        have, _ = customer_from_contact(contact, region="ES")
        assert have.factusol_id == code
        for name in ("nif", "email", "phone", "mobile", "postal_code"):
            # invalid values were left out (with a warning), never written half-normalized
            if want.get(name) and report["counts"]["linked"] == 0:
                assert have.get(name) == want.get(name), (code, name)

    # second run on unchanged data: zero writes
    project.clientify.clear_requests()
    project.run("factusol-to-clientify-full")
    assert project.writes(project.clientify) == []
    assert project.report(TARGET)["counts"]["unchanged"] == len(contacts)

    # a client edited in FactuSOL updates only its contact, through the modified job
    code = min(contacts)
    (contact,) = contacts[code]
    project.factusol.admin("PATCH", f"clients/{code}", {"TELCLI": "934 567 890"})
    project.clientify.clear_requests()
    project.run("factusol-to-clientify")
    touched = {w["path"] for w in project.writes(project.clientify)}
    assert touched
    assert all(path.startswith(f"/v1/contacts/{contact['id']}/") for path in touched), touched
    (after,) = linked_contacts(project)[code]
    assert customer_from_contact(after, region="ES")[0].phone == "+34934567890"
    assert project.report(TARGET)["counts"]["updated"] == 1


def test_a_nif_clientify_refuses_as_taken_is_left_out_and_the_customer_still_synced(
    project: Project,
) -> None:
    """A 409 on a duplicate NIF at create (an account reading, clientify-api.md §3): the
    contact is created without the NIF, with a warning and the reason in the plan; nobody is
    rejected. (Until issue 23 such a client was rejected on every run and never synced.)"""
    clients = project.clients()
    code, nif = next(
        (code, customer.nif)
        for code, row in sorted(clients.items())
        if (customer := customer_from_client({"nif": row["NIFCLI"]}, region="ES")[0]).nif
    )
    # someone else's contact already holds that NIF, and this account refuses a second one
    project.clientify.admin(
        "POST", "contacts", {"first_name": "Otra empresa", "taxpayer_identification_number": nif}
    )
    project.clientify.configure(switches={"duplicate_tin_on_create": "409"})
    project.extra_env["TARGET_CLIENTIFY_MATCH_FALLBACK"] = "[]"  # create, do not link

    run = project.run("factusol-to-clientify-full")

    assert [r for r in project.lines("rejects", TARGET) if r["type"] == "RECORD"] == []
    assert set(linked_contacts(project)) == set(clients)
    created = {
        line["key"]: line for line in project.lines("plans", TARGET) if line["action"] == "create"
    }
    assert "created without taxpayer_identification_number" in (created[code]["reason"] or "")
    assert f"client {code}: taxpayer_identification_number" in run.output
    assert project.report(TARGET)["counts"]["rejected"] == 0
