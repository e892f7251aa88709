"""Readings of what the reference leaves open: a 409 on a duplicate NIF at create, and list
items without ``addresses`` (clientify-api.md §3)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clientify_api import (
    ClientifyClient,
    ClientifyConflictError,
    ClientifyNotFoundError,
    ClientifyValidationError,
    addresses_known,
)
from sandbox.launcher import SandboxProcess

API = "https://api.test/v1"
CONTACTS = f"{API}/contacts/"
BODY = {"first_name": "Ana", "taxpayer_identification_number": "B12345674"}


@pytest.mark.parametrize(
    ("status", "answer", "field"),
    [
        # the sandbox's (and the v2 report's) 409: a detail text naming the NIF
        (
            409,
            {"detail": "A contact with this taxpayer identification number already exists."},
            "taxpayer_identification_number",
        ),
        (409, {"taxpayer_identification_number": ["Ya existe."]}, "taxpayer_identification_number"),
        (409, {"detail": "Conflict."}, None),  # a duplicate of something it does not name
        # DRF's unique validator answers 400 with the field
        (
            400,
            {"taxpayer_identification_number": ["contact with this tin already exists."]},
            "taxpayer_identification_number",
        ),
    ],
)
def test_a_duplicate_value_at_create_is_a_conflict_naming_the_field(
    client, rsps, status, answer, field
):
    rsps.post(CONTACTS, status=status, json=answer)
    with pytest.raises(ClientifyConflictError) as info:
        client.create_contact(BODY, dedupe_field=None)
    err = info.value
    assert err.field == field
    assert err.status == status
    assert isinstance(err, ClientifyValidationError)  # a record problem, as before
    assert "B12345674" not in str(err)  # never the body sent
    assert len(rsps.calls) == 1  # a refusal is not retried


def test_other_refusals_stay_plain_validation_errors(client, rsps):
    rsps.post(CONTACTS, status=400, json={"emails": ["Enter a valid email address."]})
    with pytest.raises(ClientifyValidationError) as info:
        client.create_contact(BODY, dedupe_field=None)
    assert not isinstance(info.value, ClientifyConflictError)


def item(cid: int, **extra: object) -> dict:
    return {"id": cid, "first_name": "Ana", "emails": [], "phones": [], **extra}


ADDRESS = {"id": 7, "type": 5, "street": "Calle Mayor 1", "city": "Madrid", "postal_code": "28001"}


def test_addresses_are_read_only_when_the_list_item_lacks_them(client, rsps):
    rsps.get(
        f"{CONTACTS}5/addresses/",
        json={"count": 1, "next": None, "previous": None, "results": [ADDRESS]},
    )
    known = item(4, addresses=[])
    assert client.complete_addresses(known) == known  # empty is known: no call
    assert len(rsps.calls) == 0
    completed = client.complete_addresses(item(5))
    assert completed["addresses"] == [ADDRESS]
    assert addresses_known(completed)
    assert not addresses_known(item(5))
    assert [c.request.url.split("?")[0] for c in rsps.calls] == [f"{CONTACTS}5/addresses/"]
    assert client.calls["read"] == 1


def test_addresses_come_from_the_detail_when_the_sub_resource_is_missing(client, rsps):
    rsps.get(f"{CONTACTS}5/addresses/", status=404, body="<html>Not Found</html>")
    rsps.get(f"{CONTACTS}5/", json={**item(5), "addresses": [ADDRESS], "company": None})
    completed = client.complete_addresses(item(5, company_name="ACME"))
    assert completed["addresses"] == [ADDRESS]
    assert completed["company_name"] == "ACME"  # only the addresses come from the detail


def test_a_contact_gone_meanwhile_raises_not_found(client, rsps):
    rsps.get(f"{CONTACTS}5/addresses/", status=404, json={"detail": "Not found."})
    rsps.get(f"{CONTACTS}5/", status=404, json={"detail": "Not found."})
    with pytest.raises(ClientifyNotFoundError):
        client.complete_addresses(item(5))


# --------------------------------------------------------------------------- against the sandbox


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    proc = SandboxProcess("clientify", tmp_path_factory.mktemp("clientify"))
    proc.seed("--contacts", "0")
    with proc.start():
        yield proc


def test_the_sandbox_409_reading_is_a_conflict_on_the_nif(sandbox: SandboxProcess) -> None:
    sandbox.configure(switches={"duplicate_tin_on_create": "409"})
    client = ClientifyClient("sandbox-api-key", api_url=sandbox.api_url, rate_limit=None)
    body = {"first_name": "Sucursal", "taxpayer_identification_number": "B12345674"}
    first = client.create_contact(body, dedupe_field=None)
    with pytest.raises(ClientifyConflictError) as info:
        client.create_contact({**body, "first_name": "Otra sucursal"}, dedupe_field=None)
    assert info.value.field == "taxpayer_identification_number"
    # what a target does with it: the same create without that field goes through
    retry = {k: v for k, v in body.items() if k != info.value.field}
    second = client.create_contact({**retry, "first_name": "Otra sucursal"}, dedupe_field=None)
    assert second["id"] != first["id"]
    assert second["taxpayer_identification_number"] == ""


def test_the_sandbox_list_without_addresses_is_completed(sandbox: SandboxProcess) -> None:
    sandbox.admin("POST", "seed", {"contacts": 3})
    sandbox.configure(switches={"list_addresses": False, "duplicate_tin_on_create": "allow"})
    client = ClientifyClient("sandbox-api-key", api_url=sandbox.api_url, rate_limit=None)
    details = {c["id"]: c["addresses"] for c in sandbox.admin("GET", "contacts")["contacts"]}
    listed = list(client.iter_contacts())
    assert not any(addresses_known(c) for c in listed)
    assert {c["id"]: client.complete_addresses(c)["addresses"] for c in listed} == details
