"""Switching the sync on over existing data: first-run matching by NIF and e-mail in both
directions, a dry-run plan that equals the real run, and nothing ever merged or guessed."""

from __future__ import annotations

from typing import Any

from customer_sync import customer_from_row

from .conftest import Project, link_of

CLIENTIFY = "target-clientify"
FACTUSOL = "target-factusol"


def identifiable(project: Project) -> list[tuple[int, str, str]]:
    """(code, NIF, e-mail) of seeded clients whose NIF and e-mail are both valid."""
    out = []
    for code, row in sorted(project.clients().items()):
        customer, _ = customer_from_row(row, region="ES")
        if customer.nif and customer.email:
            out.append((code, customer.nif, customer.email))
    return out


def add_contact(project: Project, **body: Any) -> int:
    created = project.clientify.admin("POST", "contacts", {"first_name": "Existente", **body})
    return int(created["id"])


def actions(plan: list[dict[str, Any]]) -> dict[str, str]:
    return {str(line["key"]): line["action"] for line in plan}


def test_first_full_sync_links_unique_matches_creates_the_rest_and_lists_ambiguities(
    project: Project,
) -> None:
    (
        (by_nif, nif1, _),
        (by_email, _, email2),
        (shared, nif3, _),
        (taken, nif4, _),
        (
            ambiguous,
            nif5,
            email5,
        ),
    ) = identifiable(project)[:5]
    spaced = f"ES-{nif1[:4]} {nif1[4:]}"  # the same NIF as typed by a CRM user
    nif_match = add_contact(project, taxpayer_identification_number=spaced)
    email_match = add_contact(project, email=email2.upper())
    # one NIF on two contacts identifies neither: the client gets its own contact
    twins = [add_contact(project, taxpayer_identification_number=nif3) for _ in range(2)]
    # a contact linked to another client is no candidate
    elsewhere = add_contact(
        project,
        taxpayer_identification_number=nif4,
        custom_fields=[{"field": "factusol_id", "value": "99999"}],
    )
    # the NIF points to one contact, the e-mail to another: a listed ambiguity
    by_nif5 = add_contact(project, taxpayer_identification_number=nif5)
    by_email5 = add_contact(project, email=email5)
    before = set(project.contacts())

    project.extra_env["TARGET_CLIENTIFY_DRY_RUN"] = "true"
    project.run("factusol-to-clientify-full")
    assert set(project.contacts()) == before  # a dry run writes nothing
    planned = actions(project.lines("plans", CLIENTIFY))

    del project.extra_env["TARGET_CLIENTIFY_DRY_RUN"]
    project.run("factusol-to-clientify-full")
    done = actions(project.lines("plans", CLIENTIFY))
    assert done == planned

    contacts = project.contacts()
    assert link_of(contacts[nif_match]) == str(by_nif)
    assert link_of(contacts[email_match]) == str(by_email)
    assert done[str(by_nif)] == done[str(by_email)] == "link"
    assert all(link_of(contacts[twin]) is None for twin in twins)
    assert link_of(contacts[elsewhere]) == "99999"
    assert done[str(shared)] == done[str(taken)] == "create"
    assert done[str(ambiguous)] == "reject"
    reject = next(
        line["_reject"]
        for line in project.lines("rejects", CLIENTIFY)
        if line["type"] == "RECORD" and line["record"]["code"] == ambiguous
    )
    assert (reject["code"], reject["candidates"]) == ("ambiguous_match", [by_nif5, by_email5])
    # no duplicate: every client is linked to at most one contact, and matches were not created
    links = [link_of(c) for c in contacts.values() if link_of(c)]
    assert len(links) == len(set(links))
    assert str(ambiguous) not in links
    assert "factusol" in contacts[nif_match]["tags"]


def test_first_sync_from_clientify_adopts_existing_clients(project: Project) -> None:
    (by_nif, nif1, _), (by_email, _, email2), (dup, nif3, _) = identifiable(project)[:3]
    # FactuSOL NIFs are not unique: a second client with the same NIF (a branch) makes the NIF
    # identify neither, so the contact gets its own client instead of adopting one
    twin = project.factusol.admin("POST", "clients", {"NOFCLI": "Duplicado", "NIFCLI": nif3})
    nif_contact = add_contact(project, taxpayer_identification_number=nif1.lower())
    email_contact = add_contact(project, email=f"  {email2}  ")
    branch_contact = add_contact(project, taxpayer_identification_number=nif3)
    clients_before = set(project.clients())

    project.run("clientify-to-factusol-full")

    contacts = project.contacts()
    assert link_of(contacts[nif_contact]) == str(by_nif)
    assert link_of(contacts[email_contact]) == str(by_email)
    done = actions(project.lines("plans", FACTUSOL))
    assert done[str(nif_contact)] == done[str(email_contact)] == "link"
    assert done[str(branch_contact)] == "create"
    new_code = int(link_of(contacts[branch_contact]))
    assert new_code not in {dup, int(twin["CODCLI"])}
    # the other (unmatched) seeded contacts became new clients; the matched ones did not
    created = set(project.clients()) - clients_before
    assert len(created) == project.report(FACTUSOL)["counts"]["created"]
