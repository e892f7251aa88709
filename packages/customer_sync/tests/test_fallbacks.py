"""Data rule B: the sync never invents a value. What Clientify only shows in place of an empty
field (the company where a contact has no name), and a placeholder NIF it was never sent, do
not come back to FactuSOL as a change. Tables, then the round trip as a property."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cs_contact_sim import apply_contact_changes
from customer_sync import (
    TEXT_FIELDS,
    ConflictPolicy,
    Customer,
    SideValues,
    agreed_values,
    client_changes,
    contact_changes,
    customer_from_client,
    customer_from_contact,
    customer_from_row,
    merge_customer,
    next_base,
)
from hypothesis import given
from hypothesis import strategies as st
from test_roundtrip import PROFILE, customer

CET = timezone(timedelta(hours=1))
FS_TIME = datetime(2026, 3, 10, 9, 0, tzinfo=CET)
CL_TIME = datetime(2026, 3, 10, 18, 0, tzinfo=CET)  # Clientify "changed" later: it would win


def f2c_create(client: Customer) -> tuple[dict, dict[str, str]]:
    """target-clientify creating the contact: the contact, and the ledger's agreed values."""
    contact = apply_contact_changes(None, contact_changes(None, client, tag="factusol"))
    contact["id"] = 1
    read, _ = customer_from_contact(contact, region="ES")
    return contact, agreed_values(client, read)


def c2f_desired(row: dict, contact: dict, base: dict[str, str] | None, policy: str) -> Customer:
    """target-factusol's merge of the pair: what FactuSOL is to be written."""
    factusol, f_issues = customer_from_row(row, region="ES")
    clientify, c_issues = customer_from_contact(contact, region="ES")
    result = merge_customer(
        SideValues.read(factusol, f_issues, FS_TIME),
        SideValues.read(clientify, c_issues, CL_TIME),
        base=base,
        policy=ConflictPolicy(default=policy),
    )
    return result.desired("factusol")


ROW = {
    "CODCLI": 7,
    "NOFCLI": "",
    "NOCCLI": "Bar Manolo",
    "NIFCLI": "00000000T",
    "DOMCLI": "",
    "POBCLI": "",
    "CPOCLI": "",
    "PROCLI": "",
    "PAICLI": "",
    "TELCLI": "",
    "MOVCLI": "",
    "EMACLI": "manolo@barmanolo.es",
}


@pytest.mark.parametrize("with_ledger", [True, False])
@pytest.mark.parametrize("policy", ["newest", "clientify", "factusol"])
def test_a_blank_fiscal_name_is_not_filled_with_the_trade_name(with_ledger, policy):
    client, _ = customer_from_row(ROW, region="ES")
    contact, agreed = f2c_create(client)
    assert contact["company_name"] == "Bar Manolo"
    assert contact["first_name"] == ""
    desired = c2f_desired(ROW, contact, agreed if with_ledger else None, policy)
    assert desired.name is None  # nothing to write: nobody edited the name in Clientify
    assert client_changes(ROW, desired).is_noop


def test_a_name_typed_in_clientify_later_does_reach_factusol():
    client, _ = customer_from_row(ROW, region="ES")
    contact, agreed = f2c_create(client)
    contact["first_name"] = "Manuel García"
    desired = c2f_desired(ROW, contact, agreed, "newest")
    assert client_changes(ROW, desired).row == {"CODCLI": 7, "NOFCLI": "Manuel García"}


def test_a_placeholder_nif_is_never_sent_to_clientify():
    client, issues = customer_from_client(
        {"code": 7, "fiscal_name": "Bar Manolo", "nif": "00000000-T"}, region="ES"
    )
    assert (client.nif, issues) == ("00000000T", [])  # FactuSOL keeps what it holds
    create = contact_changes(None, client)
    assert create.create_body is not None
    assert "taxpayer_identification_number" not in create.create_body
    assert "nif" not in {d.field for d in create.diffs}
    # an existing contact: neither cleared nor set to the placeholder
    for held in ("", "B12345674"):
        existing = {
            "id": 1,
            "first_name": "Bar Manolo",
            "taxpayer_identification_number": held,
            "custom_fields": [{"field": "factusol_id", "value": "7"}],
        }
        assert contact_changes(existing, client).is_noop


@pytest.mark.parametrize("with_ledger", [True, False])
def test_the_placeholder_stays_in_factusol_until_a_real_nif_is_typed_in_clientify(with_ledger):
    client, _ = customer_from_row(ROW, region="ES")
    contact, agreed = f2c_create(client)
    base = agreed if with_ledger else None
    assert c2f_desired(ROW, contact, base, "newest").nif is None  # not cleared
    contact["taxpayer_identification_number"] = "B12345674"
    assert c2f_desired(ROW, contact, base, "newest").nif == "B12345674"


def blank(c: Customer, fields: set[str]) -> Customer:
    return c.replace(**{name: "" for name in fields})


@PROFILE
@given(customer(), st.sets(st.sampled_from(TEXT_FIELDS)), st.sampled_from(["newest", "clientify"]))
def test_nothing_created_from_factusol_comes_back_as_a_change(c, blanks, policy):
    """For any client (any fields blank): create its contact, record the agreed values, then
    merge both ways, with and without the ledger: neither side is to be written."""
    row = client_changes(None, blank(c.replace(factusol_id=7), blanks)).row
    client, _ = customer_from_row(row, region="ES")
    contact, agreed = f2c_create(client)
    for base in (agreed, None):
        desired = c2f_desired(row, contact, base, policy)
        assert client_changes(row, desired).is_noop, desired
        # and the f2c direction of the same merge writes nothing to the contact either
        clientify, c_issues = customer_from_contact(contact, region="ES")
        result = merge_customer(
            SideValues.read(client, [], FS_TIME),
            SideValues.read(clientify, c_issues, CL_TIME),
            base=base,
            policy=ConflictPolicy(default=policy),
        )
        assert contact_changes(contact, result.desired("clientify"), tag="factusol").is_noop
        after = next_base(
            result, written="clientify", source=client, written_after=clientify, base=base
        )
        assert client_changes(row, c2f_desired(row, contact, after, policy)).is_noop
