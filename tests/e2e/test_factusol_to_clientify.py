"""FactuSOL -> Clientify through `meltano run` against both sandboxes (4 meltano runs in all)."""

from __future__ import annotations

import json
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


def test_record_clientify_refuses_lands_in_reject_file_and_the_rest_sync(
    project: Project,
) -> None:
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

    project.run("factusol-to-clientify-full")

    rejects = [r for r in project.lines("rejects", TARGET) if r["type"] == "RECORD"]
    assert [r["record"]["code"] for r in rejects] == [code]
    assert "409" in rejects[0]["_reject"]["reason"]
    contacts = linked_contacts(project)
    others = {c for c, row in clients.items() if c != code}
    rejected_too = {  # other clients sharing that NIF hit the same refusal
        c for c in others if customer_from_row(clients[c], region="ES")[0].nif == nif
    }
    assert set(contacts) == others - rejected_too
    assert project.report(TARGET)["counts"]["rejected"] == 1 + len(rejected_too)

    # Fix the rejected record (drop the NIF the account refuses) and replay the reject file.
    lines = project.lines("rejects", TARGET)
    for line in lines:
        if line["type"] == "RECORD" and line["record"]["code"] == code:
            line["record"]["nif"] = ""
    replay = "\n".join(
        json.dumps(line) for line in lines if line.get("record", {}).get("code", code) == code
    )
    project.meltano("invoke", TARGET, stdin=replay + "\n")
    assert code in linked_contacts(project)
