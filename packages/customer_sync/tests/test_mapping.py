"""Table tests for the mapping: readers of both sides and the change builders."""

import pytest
from cs_contact_sim import apply_contact_changes
from customer_sync import (
    AddAddress,
    AddEmail,
    AddPhone,
    AddTag,
    Customer,
    DeleteAddress,
    DeleteEmail,
    DeletePhone,
    FieldDiff,
    client_changes,
    contact_changes,
    customer_from_client,
    customer_from_contact,
    customer_from_row,
)

FULL = Customer(
    factusol_id=42,
    name="Ferretería López SL",
    trade_name="Ferretería Pepe",
    nif="B12345674",
    email="facturas@ferrelopez.es",
    phone="+34912345678",
    mobile="+34600112233",
    address="Calle Mayor 1, 2º B",
    city="Madrid",
    postal_code="28001",
    province="Madrid",
    country="ES",
)

CLIENT_RECORD = {
    "code": 42,
    "fiscal_name": "  Ferretería   López SL ",
    "trade_name": "Ferretería Pepe",
    "nif": "ES-B12345674",
    "address": "Calle Mayor 1,  2º B",
    "city": "Madrid",
    "postal_code": "28001",
    "province": "Madrid",
    "country_code": "724",
    "phone": "91 234 56 78",
    "mobile": "600-11-22-33",
    "fax": "",
    "email": " Facturas@FerreLopez.ES ",
    "modified": "2025-03-01T00:00:00+01:00",
}

ROW = {
    "CODCLI": 42,
    "NOFCLI": "Ferretería López SL",
    "NOCCLI": "Ferretería Pepe",
    "NIFCLI": "B12345674",
    "DOMCLI": "Calle Mayor 1, 2º B",
    "POBCLI": "Madrid",
    "CPOCLI": "28001",
    "PROCLI": "Madrid",
    "PAICLI": "724",
    "TELCLI": "912345678",
    "MOVCLI": "600112233",
    "EMACLI": "facturas@ferrelopez.es",
}


def contact_of(customer: Customer, **extra):
    """A contact as Clientify would hold it after creating ``customer``."""
    contact = apply_contact_changes(None, contact_changes(None, customer, tag="factusol"))
    contact.update(extra)
    return contact


# --------------------------------------------------------------------------- readers


def test_customer_from_client_normalizes_every_field():
    assert customer_from_client(CLIENT_RECORD, region="ES") == (FULL, [])


def test_customer_from_row_reads_raw_columns():
    assert customer_from_row(ROW, region="ES") == (FULL, [])


def test_customer_from_row_reads_old_country_names_and_short_postal_codes():
    row = ROW | {"PAICLI": "ESPAÑA", "CPOCLI": "8001", "TELCLI": "934 56 78 90"}
    customer, issues = customer_from_row(row, region="ES")
    assert (customer.country, customer.postal_code, customer.phone) == (
        "ES",
        "08001",
        "+34934567890",
    )
    assert issues == []


def test_null_columns_are_empty_and_missing_columns_are_unset():
    customer, issues = customer_from_client({"code": 3, "fiscal_name": None}, region="ES")
    assert customer == Customer(factusol_id=3, name="")
    assert issues == []


@pytest.mark.parametrize(
    ("field", "raw", "problem"),
    [
        ("phone", "12", "not a valid phone number"),
        ("mobile", "móvil", "not a phone number"),
        ("nif", "12345678A", "not a valid NIF/CIF/NIE or EU VAT number"),
        ("email", "foo@bar", "not a valid email address"),
        ("postal_code", "99999", "not a Spanish postal code (province 01-52)"),
        ("country_code", "Narnia", "unknown country"),
        ("code", "A-12", "factusol_id is not an integer"),
    ],
)
def test_invalid_values_are_unset_with_an_issue(field, raw, problem):
    customer, issues = customer_from_client(CLIENT_RECORD | {field: raw}, region="ES")
    name = {"country_code": "country", "code": "factusol_id"}.get(field, field)
    assert getattr(customer, name) is None
    assert [(i.field, i.problem) for i in issues] == [(name, problem)]
    assert issues[0].value_hint == raw
    # everything else is still read
    assert customer.replace(**{name: getattr(FULL, name)}) == FULL


def test_issue_never_carries_the_record():
    record = CLIENT_RECORD | {"address": "x" * 300, "phone": "9" * 80, "email": "no-at-" * 40}
    _, issues = customer_from_client(record, region="ES")
    assert {i.field for i in issues} == {"phone", "email"}
    for issue in issues:
        text = str(issue)
        assert len(issue.value_hint) <= 20
        assert "Ferretería" not in text
        assert "B12345674" not in text


def test_phone_extension_is_a_warning_not_a_reject():
    customer, issues = customer_from_client({"phone": "912345678 ext. 12"}, region="ES")
    assert customer.phone == "+34912345678"
    assert [(i.field, i.problem) for i in issues] == [("phone", "extension dropped")]


LIST_ITEM = {
    "url": "https://api.clientify.net/v1/contacts/9/",
    "id": 9,
    "owner": "user@example.com",
    "first_name": "Ferretería",
    "last_name": "López SL",
    "status": "client",
    "company": "https://api.clientify.net/v1/companies/5/",
    "company_name": "Ferretería Pepe",
    "taxpayer_identification_number": "esb12345674",
    "emails": [
        {"id": 1, "type": 1, "email": "work@ferrelopez.es"},
        {"id": 2, "type": 4, "email": "FACTURAS@ferrelopez.es"},
    ],
    "phones": [
        {"id": 3, "type": 3, "phone": "+34 915 55 55 55", "unsubscribed": False},
        {"id": 4, "type": 1, "phone": "91 234 56 78", "unsubscribed": False},
        {"id": 5, "type": 2, "phone": "+34 600 11 22 33", "unsubscribed": False},
    ],
    "addresses": [
        {
            "id": 6,
            "type": 1,
            "street": "Polígono 3",
            "city": "Getafe",
            "state": "",
            "country": "",
            "postal_code": "28901",
        },
        {
            "id": 7,
            "type": 5,
            "street": "Calle Mayor 1, 2º B",
            "city": "Madrid",
            "state": "Madrid",
            "country": "Spain",
            "postal_code": "28001",
        },
    ],
    "custom_fields": [{"field": "otro", "value": "x"}, {"field": "factusol_id", "value": "42"}],
    "tags": ["vip"],
    "factusol_id": "42",
    "modified": "2025-11-18T08:36:13.023747+01:00",
}


def test_customer_from_contact_list_item():
    assert customer_from_contact(LIST_ITEM, region="ES") == (FULL, [])


def test_customer_from_contact_falls_back_to_first_email_and_first_address():
    contact = LIST_ITEM | {
        "emails": [
            {"id": 1, "type": 1, "email": "work@x.es"},
            {"id": 2, "type": 2, "email": "p@x.es"},
        ],
        "addresses": [
            {"id": 6, "type": 2, "street": "Sol 2", "country": "FR", "postal_code": "75001"}
        ],
    }
    customer, issues = customer_from_contact(contact, region="ES")
    assert issues == []
    assert customer.email == "work@x.es"
    assert (customer.address, customer.city, customer.country, customer.postal_code) == (
        "Sol 2",
        "",
        "FR",
        "75001",
    )


def test_customer_from_contact_phones_are_typed_not_fallback():
    contact = LIST_ITEM | {"phones": [{"id": 3, "type": 4, "phone": "912345678"}]}
    customer, _ = customer_from_contact(contact, region="ES")
    assert (customer.phone, customer.mobile) == ("", "")


def test_customer_from_contact_detail_shape_and_missing_keys():
    detail = {
        "id": 1,
        "first_name": "John",
        "last_name": "Doe",
        "company": None,
        "company_details": None,
        "emails": [{"id": 104000001, "type": 4, "email": "john.doe@empresa.es"}],
        "phones": [{"id": 94000001, "type": 1, "phone": "+1234567890", "unsubscribed": False}],
        "custom_fields": [],
        "tags": ["some tag"],
        "taxpayer_identification_number": "",
    }
    customer, issues = customer_from_contact(detail, region="ES")
    assert customer == Customer(
        name="John Doe", trade_name="", nif="", email="john.doe@empresa.es", mobile=""
    )
    # "+1234567890" is not a real number: reported, left unset; addresses unknown (no key)
    assert [(i.field, i.problem) for i in issues] == [("phone", "not a valid phone number")]


def test_customer_from_contact_name_is_its_own_value_not_the_company_shown_for_it():
    contact = LIST_ITEM | {"first_name": "", "last_name": None}
    customer = customer_from_contact(contact, region="ES")[0]
    assert (customer.name, customer.trade_name) == ("", "Ferretería Pepe")


@pytest.mark.parametrize(
    ("custom_fields", "top_level", "expected", "issue"),
    [
        ([{"field": "factusol_id", "value": "42"}], None, 42, None),
        ([{"id": 1, "field": "factusol_id", "value": " 00042 "}], None, 42, None),
        ([{"field": "factusol_id", "value": ["42"], "field_detail": {}}], None, 42, None),
        ([], "42", 42, None),
        ([{"field": "factusol_id", "value": ""}], None, None, None),
        ([], None, None, None),
        ([{"field": "factusol_id", "value": "abc"}], None, None, "factusol_id is not an integer"),
        ([{"field": "factusol_id", "value": "-3"}], None, None, "factusol_id is not an integer"),
        (
            [{"field": "factusol_id", "value": "0"}],
            None,
            None,
            "factusol_id is not a positive integer",
        ),
    ],
)
def test_factusol_id_link(custom_fields, top_level, expected, issue):
    contact = {"id": 1, "custom_fields": custom_fields, "factusol_id": top_level}
    customer, issues = customer_from_contact(contact, region="ES")
    assert customer.factusol_id == expected
    assert [i.problem for i in issues] == ([issue] if issue else [])


def test_custom_link_field_name():
    contact = {"custom_fields": [{"field": "Código FactuSOL", "value": "7"}]}
    customer, _ = customer_from_contact(contact, region="ES", link_field="Código FactuSOL")
    assert customer.factusol_id == 7


# -------------------------------------------------------------------- contact_changes


def test_create_body():
    changes = contact_changes(None, FULL, tag="factusol")
    assert changes.create_body == {
        "first_name": "Ferretería López SL",
        "last_name": "",
        "taxpayer_identification_number": "B12345674",
        "company": "Ferretería Pepe",
        "emails": [{"email": "facturas@ferrelopez.es", "type": 4}],
        "phones": [{"phone": "+34912345678", "type": 1}, {"phone": "+34600112233", "type": 2}],
        "addresses": [
            {
                "type": 5,
                "street": "Calle Mayor 1, 2º B",
                "city": "Madrid",
                "postal_code": "28001",
                "state": "Madrid",
                "country": "España",
            }
        ],
        "custom_fields": [{"field": "factusol_id", "value": "42"}],
        "tags": ["factusol"],
    }
    assert changes.is_create
    assert not changes.is_noop
    assert FieldDiff("email", None, "facturas@ferrelopez.es") in changes.diffs


def test_create_body_has_no_blank_strings():
    sparse = Customer(name="Bar Manolo", trade_name="", nif="", email="", phone="", mobile="")
    body = contact_changes(None, sparse, tag=None).create_body
    assert body == {"first_name": "Bar Manolo", "last_name": ""}


def test_create_body_leaves_unset_fields_out():
    body = contact_changes(None, Customer(name=None, email="a@b.es"), tag=None).create_body
    assert body == {"emails": [{"email": "a@b.es", "type": 4}]}


def test_equivalent_formats_are_unchanged():
    # same customer, every value written differently by a person in Clientify
    assert contact_changes(LIST_ITEM, FULL, tag="vip").is_noop


def test_contact_created_from_customer_is_unchanged():
    changes = contact_changes(contact_of(FULL), FULL, tag="factusol")
    assert changes.is_noop
    assert changes.diffs == []
    assert changes.issues == []


def test_email_change_replaces_only_the_owned_email():
    desired = FULL.replace(email="nuevo@ferrelopez.es")
    changes = contact_changes(LIST_ITEM, desired, tag="vip")
    assert changes.update_body == {}
    assert changes.operations == [DeleteEmail(2), AddEmail("nuevo@ferrelopez.es", 4)]
    assert changes.diffs == [FieldDiff("email", "facturas@ferrelopez.es", "nuevo@ferrelopez.es")]
    after = apply_contact_changes(LIST_ITEM, changes)
    assert {e["email"] for e in after["emails"]} == {"work@ferrelopez.es", "nuevo@ferrelopez.es"}
    assert contact_changes(after, desired, tag="vip").is_noop


def test_fallback_email_is_shadowed_not_deleted():
    contact = LIST_ITEM | {"emails": [{"id": 1, "type": 1, "email": "work@ferrelopez.es"}]}
    changes = contact_changes(contact, FULL, tag="vip")
    assert changes.operations == [AddEmail("facturas@ferrelopez.es", 4)]
    assert contact_changes(apply_contact_changes(contact, changes), FULL, tag="vip").is_noop


def test_clearing_email_deletes_owned_type_only():
    cleared = FULL.replace(email="")
    assert contact_changes(LIST_ITEM, cleared, tag="vip").operations == [DeleteEmail(2)]
    contact = LIST_ITEM | {"emails": [{"id": 1, "type": 1, "email": "work@ferrelopez.es"}]}
    changes = contact_changes(contact, cleared, tag="vip")
    assert changes.is_noop
    assert [i.field for i in changes.issues] == ["email"]


def test_phone_and_mobile_changes_leave_other_phones_alone():
    desired = FULL.replace(phone="+34934567890", mobile="")
    changes = contact_changes(LIST_ITEM, desired, tag="vip")
    assert changes.operations == [DeletePhone(4), DeletePhone(5), AddPhone("+34934567890", 1)]
    after = apply_contact_changes(LIST_ITEM, changes)
    assert next(p["id"] for p in after["phones"]) == 3  # the work phone stays
    assert contact_changes(after, desired, tag="vip").is_noop


def test_mobile_added_when_missing():
    contact = LIST_ITEM | {"phones": [LIST_ITEM["phones"][1]]}
    changes = contact_changes(contact, FULL, tag="vip")
    assert changes.operations == [AddPhone("+34600112233", 2)]


def test_address_change_replaces_the_main_address_keeping_its_other_parts():
    desired = FULL.replace(city="Alcalá de Henares", postal_code="28801", address=None)
    changes = contact_changes(LIST_ITEM, desired, tag="vip")
    assert changes.operations == [
        DeleteAddress(7),
        AddAddress(
            {
                "type": 5,
                "street": "Calle Mayor 1, 2º B",
                "city": "Alcalá de Henares",
                "postal_code": "28801",
                "state": "Madrid",
                "country": "Spain",
            }
        ),
    ]
    assert [d.field for d in changes.diffs] == ["city", "postal_code"]
    after = apply_contact_changes(LIST_ITEM, changes)
    assert after["addresses"][0]["id"] == 6  # the work address stays
    assert contact_changes(after, desired, tag="vip").is_noop


def test_country_change_writes_spanish_name():
    desired = FULL.replace(country="FR", postal_code="75001", province="", city="Paris")
    changes = contact_changes(LIST_ITEM, desired, tag="vip")
    added = [op for op in changes.operations if isinstance(op, AddAddress)]
    assert added[0].address["country"] == "Francia"
    assert added[0].address["postal_code"] == "75001"
    assert "state" not in added[0].address


def test_address_unknown_on_old_list_items():
    contact = {k: v for k, v in LIST_ITEM.items() if k != "addresses"}
    changes = contact_changes(contact, FULL, tag="vip")
    assert changes.is_noop
    assert [i.field for i in changes.issues] == ["address"]


def test_top_level_changes_go_to_the_put_body():
    desired = FULL.replace(name="Ferretería López Hermanos SL", nif="47384951Y", trade_name="Pepe")
    changes = contact_changes(LIST_ITEM, desired, tag="vip")
    assert changes.update_body == {
        "first_name": "Ferretería López Hermanos SL",
        "last_name": "",
        "company": "Pepe",
        "taxpayer_identification_number": "47384951Y",
    }
    assert changes.operations == []


def test_empty_trade_name_never_sends_company():
    changes = contact_changes(LIST_ITEM, FULL.replace(trade_name=""), tag="vip")
    assert "company" not in changes.update_body
    assert changes.is_noop


def test_link_field_written_alone_and_only_when_different():
    contact = LIST_ITEM | {"custom_fields": [{"field": "otro", "value": "x"}], "factusol_id": None}
    changes = contact_changes(contact, FULL, tag="vip")
    assert changes.update_body == {"custom_fields": [{"field": "factusol_id", "value": "42"}]}
    after = apply_contact_changes(contact, changes)
    assert {"field": "otro", "value": "x"} in after["custom_fields"]
    assert contact_changes(after, FULL, tag="vip").is_noop


def test_unset_fields_are_left_as_they_are():
    desired = Customer(factusol_id=42)
    assert contact_changes(LIST_ITEM, desired, tag=None).is_noop


def test_tag_added_once():
    assert contact_changes(LIST_ITEM, FULL, tag="FactuSOL").operations == [AddTag("FactuSOL")]
    assert contact_changes(LIST_ITEM, FULL, tag="VIP").is_noop
    assert contact_changes(LIST_ITEM, FULL, tag=None).is_noop


def test_contact_with_only_a_company_keeps_its_empty_name():
    contact = contact_of(FULL, first_name="", last_name="")
    from_contact, _ = customer_from_contact(contact, region="ES")
    assert from_contact.name == ""
    assert contact_changes(contact, from_contact, tag="factusol").is_noop
    # and FactuSOL does not get its empty fiscal name filled either
    row = ROW | {"NOFCLI": ""}
    assert client_changes(row, from_contact).is_noop


def test_longer_clientify_text_is_kept_when_factusol_holds_its_fitted_copy():
    long_name = "Sociedad Cooperativa " * 8
    contact = contact_of(FULL.replace(name=long_name.strip()))
    from_contact, _ = customer_from_contact(contact, region="ES")
    row = client_changes(None, from_contact).row
    assert len(row["NOFCLI"]) <= 100
    from_factusol, _ = customer_from_row(row, region="ES")
    assert contact_changes(contact, from_factusol, tag="factusol").is_noop
    assert client_changes(row, from_contact).is_noop


def test_split_name_is_unchanged_when_the_join_equals():
    contact = contact_of(FULL, first_name="Ferretería", last_name=" López  SL")
    assert contact_changes(contact, FULL, tag="factusol").is_noop


def test_owned_item_without_id_is_not_duplicated():
    contact = LIST_ITEM | {"emails": [{"type": 4, "email": "old@x.es"}]}
    changes = contact_changes(contact, FULL, tag="vip")
    assert changes.is_noop
    assert [i.problem for i in changes.issues] == ["owned item has no id; fetch detail"]


# --------------------------------------------------------------------- client_changes


def test_client_create_row_has_every_owned_column():
    changes = client_changes(None, FULL)
    assert changes.row == ROW
    assert changes.is_create
    assert not changes.is_noop
    assert changes.issues == []


def test_client_create_without_code():
    row = client_changes(None, FULL.replace(factusol_id=None)).row
    assert "CODCLI" not in row
    assert row["NOFCLI"] == FULL.name


def test_client_equivalent_formats_are_unchanged():
    messy = {
        "CODCLI": 42,
        "NOFCLI": "  Ferretería  López SL",
        "NOCCLI": "Ferretería Pepe",
        "NIFCLI": "ES-B12345674",
        "DOMCLI": "Calle Mayor 1, 2º B",
        "POBCLI": "Madrid",
        "CPOCLI": "28001",
        "PROCLI": "Madrid",
        "PAICLI": "ESPAÑA",
        "TELCLI": "91 234 56 78",
        "MOVCLI": "+34 600 11 22 33",
        "EMACLI": "Facturas@FerreLopez.ES",
        "OBSCLI": "no es nuestro",
    }
    assert client_changes(messy, FULL).is_noop


def test_client_update_writes_only_changed_columns():
    desired = FULL.replace(email="nuevo@ferrelopez.es", mobile="+33612345678", postal_code="08001")
    changes = client_changes(ROW, desired)
    assert changes.row == {
        "CODCLI": 42,
        "EMACLI": "nuevo@ferrelopez.es",
        "MOVCLI": "+33612345678",
        "CPOCLI": "08001",
    }
    assert [d.field for d in changes.diffs] == ["postal_code", "mobile", "email"]


def test_client_unset_fields_left_alone():
    assert client_changes(ROW, Customer(factusol_id=42, phone=None)).is_noop


def test_client_text_is_fitted_with_issues_and_converges():
    desired = FULL.replace(name="Łukasz " + "x" * 120, city="Ciudad " * 10)
    changes = client_changes(ROW, desired)
    assert changes.row["NOFCLI"].startswith("?ukasz x")
    assert len(changes.row["NOFCLI"]) == 100
    assert len(changes.row["POBCLI"]) <= 30
    assert {(i.field, i.problem) for i in changes.issues} == {
        ("name", "1 character(s) FactuSOL (cp1252) cannot store were replaced"),
        ("name", "truncated to 100 chars"),
        ("city", "truncated to 30 chars"),
    }
    written = ROW | changes.row
    assert client_changes(written, desired).is_noop


def test_client_structured_value_that_cannot_be_stored_is_not_mangled():
    desired = FULL.replace(email="имя@пример.рф")
    changes = client_changes(ROW, desired)
    assert changes.is_noop
    assert [i.field for i in changes.issues] == ["email"]


def test_client_foreign_country_numeric():
    desired = FULL.replace(country="BE", postal_code="1000")
    changes = client_changes(ROW, desired)
    assert changes.row == {"CODCLI": 42, "PAICLI": "056", "CPOCLI": "1000"}


def test_client_account_region_sets_the_national_form():
    changes = client_changes(None, FULL.replace(phone="+33123456789"), region="FR")
    assert changes.row["TELCLI"] == "123456789"
    assert changes.row["MOVCLI"] == "+34600112233"


def test_customer_diff_ignores_unset_fields():
    other = FULL.replace(email="x@y.es", phone=None, factusol_id=43)
    assert FULL.diff(other) == [
        FieldDiff("factusol_id", "42", "43"),
        FieldDiff("email", "facturas@ferrelopez.es", "x@y.es"),
    ]
    assert FULL.diff(FULL) == []


def test_empty_contact_name_with_a_changing_company_gets_the_name_in_one_pass():
    contact = contact_of(FULL, first_name="", last_name="")  # shows "Ferretería Pepe"
    desired = FULL.replace(name="Ferretería Pepe", trade_name="Otra SL")
    changes = contact_changes(contact, desired, tag="factusol")
    assert changes.update_body == {
        "company": "Otra SL",
        "first_name": "Ferretería Pepe",
        "last_name": "",
    }
    assert contact_changes(apply_contact_changes(contact, changes), desired, tag="factusol").is_noop


# ------------------------------------------------------------- invalid values survive round trips


@pytest.mark.parametrize(
    ("column", "raw", "field"),
    [("TELCLI", "12", "phone"), ("EMACLI", "info@@x.es", "email"), ("NIFCLI", "12345678A", "nif")],
)
def test_empty_value_never_clears_an_invalid_factusol_value(column, raw, field):
    # The invalid value was left out of Clientify with a warning, so the contact is empty there;
    # that empty must not travel back and wipe what FactuSOL holds.
    row = {**ROW, column: raw}
    changes = client_changes(row, FULL.replace(**{field: ""}))
    assert column not in changes.row
    assert changes.is_noop


def test_a_real_value_still_replaces_an_invalid_factusol_value():
    changes = client_changes({**ROW, "TELCLI": "12"}, FULL)
    assert changes.row["TELCLI"] == "912345678"


def test_empty_value_never_clears_an_invalid_clientify_value():
    contact = contact_of(FULL)
    contact["emails"] = [{"id": 7, "type": 4, "email": "not-an-email"}]
    changes = contact_changes(contact, FULL.replace(email=""))
    assert not any(d.field == "email" for d in changes.diffs)
