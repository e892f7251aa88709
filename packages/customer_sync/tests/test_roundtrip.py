"""Properties: normalization is idempotent, both round trips hold, a second pass is a no-op."""

import phonenumbers
from cs_contact_sim import apply_contact_changes
from customer_sync import (
    F_CLI_SIZES,
    FIELD_COLUMNS,
    Customer,
    client_changes,
    contact_changes,
    country_name_es,
    customer_from_contact,
    customer_from_row,
    fit_factusol_text,
    is_placeholder_nif,
    normalize_customer,
)
from customer_sync.mapping import FREE_TEXT_FIELDS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum.es import cif as es_cif

settings.register_profile(
    "customer_sync",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
PROFILE = settings.get_profile("customer_sync")

DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
FIELD_NAMES = ["factusol_id", *FIELD_COLUMNS]
REGIONS = ["ES", "ES", "ES", "FR", "PT", "GB"]

# letters people type in Spanish customer data, a few FactuSOL cannot store, and noise
LETTERS = "abcdefghijklmnñopqrstuvwxyzABCDEFGHIJKLMNÑOPQRSTUVWXYZáéíóúüÁÉÍÓÚÜçÇàèòâêßøåæ"
ODD = "ŁłŞşȘțőŐ東€&.,'-/º()\u0301\u200b"
NOISE = " \t\n\x00\x07"


def text(max_size: int) -> st.SearchStrategy[str]:
    plain = LETTERS + "0123456789 "
    return st.one_of(
        st.text(alphabet=plain, max_size=max_size),
        st.text(alphabet=plain + ODD + NOISE, max_size=max_size),
        # long enough to overflow FactuSOL's column (max_size is chosen above the size)
        st.text(alphabet=plain, min_size=max_size - 35, max_size=max_size),
    )


@st.composite
def dni(draw):
    n = draw(st.integers(0, 99_999_999))
    return f"{n:08d}{DNI_LETTERS[n % 23]}"


@st.composite
def nie(draw):
    prefix = draw(st.sampled_from("XYZ"))
    n = draw(st.integers(0, 9_999_999))
    return f"{prefix}{n:07d}{DNI_LETTERS[int(str('XYZ'.index(prefix)) + f'{n:07d}') % 23]}"


@st.composite
def cif(draw):
    letter = draw(st.sampled_from("ABCDEFGHJUV"))
    body = f"{letter}{draw(st.integers(0, 9_999_999)):07d}"
    return body + es_cif.calc_check_digits(body)[0]


EU_VAT = ["FR40303265045", "DE136695976", "PT501964843", "IT00743110157", "NL004495445B01"]


@st.composite
def nif(draw):
    value = draw(st.one_of(dni(), nie(), cif()))
    value = draw(st.sampled_from(["", "ES", "es", "ES-"])) + value
    value = draw(st.one_of(st.just(value), st.sampled_from(EU_VAT)))
    return draw(st.sampled_from([value, value.lower(), f" {value} "]))


@st.composite
def phone(draw, region):
    kind = draw(
        st.sampled_from(
            [phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE]
        )
    )
    number_region = draw(st.sampled_from([region, region, "ES", "FR", "DE", "GB", "US", "MX"]))
    example = phonenumbers.example_number_for_type(number_region, kind)
    # vary the last digits so numbers differ, then check it is still a real number
    digits = str(example.national_number)
    tail = str(draw(st.integers(0, 99))).zfill(2)
    candidate = phonenumbers.parse(f"+{example.country_code}{digits[:-2]}{tail}", None)
    if not phonenumbers.is_valid_number(candidate):
        candidate = example
    fmt = draw(
        st.sampled_from(
            [
                phonenumbers.PhoneNumberFormat.E164,
                phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                phonenumbers.PhoneNumberFormat.NATIONAL,
            ]
        )
    )
    if fmt == phonenumbers.PhoneNumberFormat.NATIONAL and number_region != region:
        fmt = phonenumbers.PhoneNumberFormat.INTERNATIONAL
    return phonenumbers.format_number(candidate, fmt)


# addresses Django's EmailValidator (Clientify's) accepts: dot-atoms, labels without edge hyphens
email_atom = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789_+-", min_size=1, max_size=8
)
email_local = st.lists(email_atom, min_size=1, max_size=3).map(".".join)
email_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@st.composite
def email(draw):
    labels = draw(st.lists(email_label, min_size=1, max_size=3))
    tld = draw(st.sampled_from(["es", "com", "ES", "cat", "eus", "org", "info"]))
    value = f"{draw(email_local)}@{'.'.join([*labels, tld])}"
    return draw(st.sampled_from([value, value.upper(), f"  {value} "]))


@st.composite
def address_part(draw):
    country = draw(st.sampled_from(["", "ES", "ES", "FR", "PT", "DE", "GB"]))
    if country in ("ES", ""):
        code = f"{draw(st.integers(1, 52)):02d}{draw(st.integers(0, 999)):03d}"
        if code.startswith("0") and draw(st.booleans()):
            code = code[1:]  # as old data has it: "8001"
    else:
        code = draw(st.sampled_from(["75001", "1000-001", "10115", "SW1A 1AA", ""]))
    country_text = draw(
        st.sampled_from(
            [country, country.lower(), country_name_es(country), country_name_es(country).upper()]
        )
    )
    return country_text, code


@st.composite
def raw_customer(draw, region="ES"):
    """A customer typed by a person: valid values in any format, noise, accents, long text."""
    country, postal = draw(address_part())
    maybe = lambda strategy: st.one_of(st.just(""), strategy)  # noqa: E731
    return Customer(
        factusol_id=draw(st.one_of(st.none(), st.integers(1, 10_000_000))),
        name=draw(text(130)),
        trade_name=draw(text(110)),
        nif=draw(maybe(nif())),
        email=draw(maybe(email())),
        phone=draw(maybe(phone(region))),
        mobile=draw(maybe(phone(region))),
        address=draw(text(120)),
        city=draw(text(40)),
        postal_code=postal if region == "ES" or country not in ("", "es") else "",
        province=draw(text(50)),
        country=country,
    )


@st.composite
def customer(draw, region="ES"):
    raw = draw(raw_customer(region))
    normalized, issues = normalize_customer(raw, region=region)
    assert [i.problem for i in issues] == []
    return normalized


def fits_factusol(c: Customer) -> bool:
    return all(
        fit_factusol_text(getattr(c, name), F_CLI_SIZES[FIELD_COLUMNS[name]])[0] == getattr(c, name)
        for name in FREE_TEXT_FIELDS
    )


def contact_read_back(c: Customer) -> Customer:
    """What a contact created from ``c`` reads back as: ``c``, but a placeholder NIF is never
    sent (README)."""
    return c.replace(nif="") if c.nif and is_placeholder_nif(c.nif) else c


@PROFILE
@given(raw_customer())
def test_normalizing_twice_changes_nothing(raw):
    once, _ = normalize_customer(raw, region="ES")
    assert normalize_customer(once, region="ES") == (once, [])


@PROFILE
@given(st.sampled_from(REGIONS).flatmap(lambda r: st.tuples(st.just(r), customer(r))))
def test_contact_round_trip(region_and_customer):
    region, c = region_and_customer
    contact = apply_contact_changes(None, contact_changes(None, c, tag="factusol"))
    assert customer_from_contact(contact, region=region) == (contact_read_back(c), [])
    assert contact_changes(contact, c, tag="factusol", region=region).is_noop


@PROFILE
@given(st.sampled_from(REGIONS).flatmap(lambda r: st.tuples(st.just(r), customer(r))))
def test_factusol_round_trip(region_and_customer):
    region, c = region_and_customer
    changes = client_changes(None, c, region=region)
    back, issues = customer_from_row(changes.row, region=region)
    assert issues == []
    if fits_factusol(c):
        assert back == c
        assert changes.issues == []
    else:
        # the FactuSOL-fitted value is canonical: reading it back and writing again is a no-op
        assert {i.field for i in changes.issues} <= set(FREE_TEXT_FIELDS)
        assert client_changes(None, back, region=region).row == changes.row
    assert client_changes(changes.row, c, region=region).is_noop
    assert client_changes(changes.row, back, region=region).is_noop


@PROFILE
@given(customer())
def test_full_cycle_converges(c):
    """FactuSOL → Clientify → FactuSOL, and back: nothing is rewritten on either side."""
    row = client_changes(None, c).row
    from_factusol, _ = customer_from_row(row, region="ES")
    contact = apply_contact_changes(None, contact_changes(None, from_factusol, tag="factusol"))
    from_clientify, _ = customer_from_contact(contact, region="ES")
    assert client_changes(row, from_clientify).is_noop
    assert contact_changes(contact, from_factusol, tag="factusol").is_noop
    assert contact_changes(contact, from_clientify, tag="factusol").is_noop


@PROFILE
@given(customer())
def test_clientify_text_kept_when_factusol_holds_the_fitted_copy(c):
    """Clientify → FactuSOL (fitted) → Clientify: the longer Clientify text is not rewritten."""
    contact = apply_contact_changes(None, contact_changes(None, c, tag=None))
    from_clientify, _ = customer_from_contact(contact, region="ES")
    row = client_changes(None, from_clientify).row
    from_factusol, _ = customer_from_row(row, region="ES")
    assert contact_changes(contact, from_factusol, tag=None).is_noop
    assert client_changes(row, from_clientify).is_noop


@st.composite
def messy_contact(draw):
    """A contact holding ``c`` but typed differently by a person in Clientify."""
    c = draw(customer())
    contact = apply_contact_changes(None, contact_changes(None, c, tag="factusol"))
    if c.name and " " in c.name and draw(st.booleans()):
        first, last = c.name.split(" ", 1)
        contact["first_name"], contact["last_name"] = f" {first}", f"{last}  "
    for item in contact["phones"]:
        number = phonenumbers.parse(item["phone"], None)
        fmt = draw(st.sampled_from([phonenumbers.PhoneNumberFormat.INTERNATIONAL, "national"]))
        if fmt == "national" and phonenumbers.region_code_for_number(number) == "ES":
            item["phone"] = phonenumbers.format_number(
                number, phonenumbers.PhoneNumberFormat.NATIONAL
            )
        else:
            item["phone"] = phonenumbers.format_number(
                number, phonenumbers.PhoneNumberFormat.INTERNATIONAL
            )
    for item in contact["emails"]:
        item["email"] = draw(st.sampled_from([item["email"].upper(), f" {item['email']} "]))
    for item in contact["addresses"]:
        if c.country:
            item["country"] = draw(
                st.sampled_from([c.country, c.country.lower(), item["country"].upper()])
            )
        if item["postal_code"].startswith("0") and c.country in ("ES", ""):
            item["postal_code"] = item["postal_code"][1:]
    if c.nif and c.nif[0].isdigit():
        contact["taxpayer_identification_number"] = "ES" + c.nif.lower()
    return c, contact


@PROFILE
@given(messy_contact())
def test_equivalent_contact_formats_are_unchanged(case):
    c, contact = case
    assert contact_changes(contact, c, tag="factusol").is_noop


@st.composite
def messy_row(draw):
    c = draw(customer())
    row = client_changes(None, c).row
    if row["TELCLI"] and not row["TELCLI"].startswith("+"):
        n = phonenumbers.parse(row["TELCLI"], "ES")
        row["TELCLI"] = phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.NATIONAL)
    if row["MOVCLI"]:
        n = phonenumbers.parse(row["MOVCLI"], "ES")
        row["MOVCLI"] = phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    if row["PAICLI"]:
        row["PAICLI"] = draw(
            st.sampled_from([row["PAICLI"], country_name_es(c.country or "").upper()])
        )
    if c.nif and c.nif[0].isalpha() and not c.nif[1].isalpha():
        row["NIFCLI"] = f"{c.nif[0]}-{c.nif[1:]}"
    row["NOFCLI"] = f"  {row['NOFCLI']}\t"
    row["EMACLI"] = row["EMACLI"].upper()
    return c, row


@PROFILE
@given(messy_row())
def test_equivalent_row_formats_are_unchanged(case):
    c, row = case
    assert client_changes(row, c).is_noop


@PROFILE
@given(customer(), customer(), st.sets(st.sampled_from(FIELD_NAMES)))
def test_unset_fields_are_never_written(before, after, unset):
    """Fields unset in the desired customer (invalid at the source) are left as they are."""
    desired = after.replace(**{name: None for name in unset})
    contact = apply_contact_changes(None, contact_changes(None, before, tag=None))
    changes = contact_changes(contact, desired, tag=None)
    assert {d.field for d in changes.diffs}.isdisjoint(unset)
    updated = apply_contact_changes(contact, changes)
    read, _ = customer_from_contact(updated, region="ES")
    read_before, _ = customer_from_contact(contact, region="ES")
    kept = set(unset)
    if read.country != read_before.country:
        kept -= {"postal_code"}  # kept as text, but its validity follows the country
    for name in kept:
        assert getattr(read, name) == getattr(read_before, name)
    assert contact_changes(updated, desired, tag=None).is_noop

    row = client_changes(None, before).row
    row_changes = client_changes(row, desired)
    assert {d.field for d in row_changes.diffs}.isdisjoint(unset)
    assert set(row_changes.row).isdisjoint({FIELD_COLUMNS[n] for n in unset if n in FIELD_COLUMNS})
    assert client_changes(row | row_changes.row, desired).is_noop
