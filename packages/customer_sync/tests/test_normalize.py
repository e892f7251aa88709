"""Table tests for single-value normalization (real-world Spanish data)."""

import pycountry
import pytest
from customer_sync import (
    clean_text,
    country_alpha2,
    country_name_es,
    country_numeric,
    customer_from_client,
    fit_factusol_text,
    normalize_email,
    normalize_nif,
    normalize_phone,
    normalize_postal_code,
    phone_for_factusol,
)
from customer_sync.normalize import check_phone


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("91 234 56 78", "ES", "+34912345678"),
        ("912345678", "ES", "+34912345678"),
        ("912 34 56 78", "ES", "+34912345678"),
        ("(91) 234-56-78", "ES", "+34912345678"),
        ("+34 600 11 22 33", "ES", "+34600112233"),
        ("+34600112233", "ES", "+34600112233"),
        ("0034600112233", "ES", "+34600112233"),
        ("0034 600 11 22 33", "ES", "+34600112233"),
        ("600-11-22-33", "ES", "+34600112233"),
        ("600.11.22.33", "ES", "+34600112233"),
        ("  600112233\t", "ES", "+34600112233"),
        ("934 56 78 90", "ES", "+34934567890"),
        ("971 12 34 56", "ES", "+34971123456"),
        ("722 12 34 56", "ES", "+34722123456"),
        ("900 123 456", "ES", "+34900123456"),
        ("+33 1 23 45 67 89", "ES", "+33123456789"),
        ("0033 1 23 45 67 89", "ES", "+33123456789"),
        ("+351 912 345 678", "ES", "+351912345678"),
        ("+44 20 7946 0958", "ES", "+442079460958"),
        ("+49 30 1234567", "ES", "+49301234567"),
        ("+1 (202) 555-0143", "ES", "+12025550143"),
        ("+52 55 1234 5678", "ES", "+525512345678"),
        ("01 23 45 67 89", "FR", "+33123456789"),
        ("912345678", "PT", "+351912345678"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("", "ES", ""),
        ("   ", "ES", ""),
        ("12", "ES", None),
        ("abc", "ES", None),
        ("123456789", "ES", None),
        ("+34 12345", "ES", None),
        ("91234567", "ES", None),
        # a note or a second number in the field: the first valid number is the phone
        ("912345678 / 600112233", "ES", "+34912345678"),
        ("912345678 (oficina)", "ES", "+34912345678"),
        ("Oficina: 955 12 34 56; móvil 600 11 22 33", "ES", "+34955123456"),
        ("no tiene", "ES", None),
        ("DNI 48123456G", "ES", None),
        ("+1234567890", "ES", None),
        ("0", "ES", None),
    ],
)
def test_normalize_phone(raw, region, expected):
    assert normalize_phone(raw, region) == expected
    if expected:
        assert normalize_phone(expected, region) == expected


def test_a_phone_taken_out_of_other_text_says_so():
    assert check_phone("912345678 / 600112233", "ES") == (
        "+34912345678",
        ["the first number of the field kept, the rest of it dropped"],
    )
    assert check_phone("912 345 678", "ES") == ("+34912345678", [])


@pytest.mark.parametrize(
    ("e164", "region", "stored"),
    [
        ("+34912345678", "ES", "912345678"),
        ("+34600112233", "ES", "600112233"),
        ("+33123456789", "ES", "+33123456789"),
        ("+33123456789", "FR", "123456789"),
        ("+34912345678", "FR", "+34912345678"),
        ("", "ES", ""),
    ],
)
def test_phone_for_factusol(e164, region, stored):
    assert phone_for_factusol(e164, region) == stored
    assert normalize_phone(stored, region) == e164


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12345678Z", "12345678Z"),
        ("12345678z", "12345678Z"),
        ("12.345.678-Z", "12345678Z"),
        (" 12345678 Z ", "12345678Z"),
        ("ES12345678Z", "12345678Z"),
        ("es12345678z", "12345678Z"),
        ("ES-12345678Z", "12345678Z"),
        ("B-12345674", "B12345674"),
        ("B12345674", "B12345674"),
        ("b12345674", "B12345674"),
        ("ESB12345674", "B12345674"),
        ("ES B-12345674", "B12345674"),
        ("A58818501", "A58818501"),
        ("X1234567L", "X1234567L"),
        ("x-1234567-l", "X1234567L"),
        ("ESX1234567L", "X1234567L"),
        ("Y1234567X", "Y1234567X"),
        ("K1234567L", "K1234567L"),
        ("FR40303265045", "FR40303265045"),
        ("FR 40 303 265 045", "FR40303265045"),
        ("DE136695976", "DE136695976"),
        ("PT501964843", "PT501964843"),
        ("IT00743110157", "IT00743110157"),
        ("NL004495445B01", "NL004495445B01"),
        ("EL094259216", "EL094259216"),
        ("", ""),
        ("  ", ""),
        ("12345678A", None),
        ("1234567Z", None),
        ("B12345678", None),
        ("X1234567A", None),
        ("ES12345678A", None),
        ("FR00000000000", None),
        ("GB980780684", None),
        # what people type for "no NIF" reads as empty (never synced as a number, no warning)
        ("N/A", ""),
        ("SIN NIF", ""),
        ("-", ""),
        ("123", None),
        # a DNI or NIE written without its leading zeros, when the check letter agrees
        ("5837261E", "05837261E"),
        ("5.837.261-e", "05837261E"),
        ("ES5837261E", "05837261E"),
        ("837261S", "00837261S"),
        ("X123456J", None),
        ("X-0123456-S", "X0123456S"),
        ("X123456S", "X0123456S"),
        ("5837261F", None),
        ("61S", None),
    ],
)
def test_normalize_nif(raw, expected):
    assert normalize_nif(raw) == expected
    if expected:
        assert normalize_nif(expected) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Foo@Bar.ES ", "foo@bar.es"),
        ("foo@bar.es", "foo@bar.es"),
        ("FACTURAS@EMPRESA.COM", "facturas@empresa.com"),
        ("nombre.apellido+crm@sub.dominio.es", "nombre.apellido+crm@sub.dominio.es"),
        ("mailto:Info@Tienda.es", "info@tienda.es"),
        # Django's EmailValidator (the real Clientify's) refuses a non-ASCII local part
        ("josé@correo.es", None),
        ("ana@ñandú.es", "ana@ñandú.es"),
        ("a@b.co\x00", "a@b.co"),
        ("", ""),
        ("   ", ""),
        ("foo", None),
        ("foo@bar", None),
        ("@bar.es", None),
        ("foo@@bar.es", None),
        ("foo bar@baz.es", None),
        ("foo@bar.es; otro@bar.es", "foo@bar.es"),
        ("nada; otro@bar.es", None),
        ("a@bar.es, b@bar.es", "a@bar.es"),
        ("<x@dominio.es>", "x@dominio.es"),
        ("Ana Pérez <Ana@Dominio.ES>", "ana@dominio.es"),
        ('"Pérez, Ana" <ana@dominio.es>', "ana@dominio.es"),
        # refused by Django's validator or its length limits (issue 15's real-data cases)
        ("x@dominio.e", None),
        ("x@-dominio.es", None),
        ("x@dominio-.es", None),
        ("a" * 65 + "@dominio.es", None),
        ("a" * 64 + "@dominio.es", "a" * 64 + "@dominio.es"),
        ("a@" + "b" * 250 + ".es", None),
        ("<x@dominio.e>", None),
        ("foo@.es", None),
        ("foo@bar..es", None),
        # typed by hand: the sentence's full stop or comma, spaces around the @
        ("foo@bar.es.", "foo@bar.es"),
        ("ana@x.es, ", "ana@x.es"),
        ("Ana <ana@x.es>.", "ana@x.es"),
        ("juan @ empresa.es", "juan@empresa.es"),
        ("@empresa.es", None),
        ("juan@", None),
    ],
)
def test_normalize_email(raw, expected):
    assert normalize_email(raw) == expected
    if expected:
        assert normalize_email(expected) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # special-use and non-public domains (RFC 6761/6762/7686/8375)
        ("ana@localhost", None),
        ("ana@LOCALHOST", None),
        ("ana@intranet", None),  # a bare host: no dot
        ("ana@empresa.test", None),
        ("ana@empresa.example", None),
        ("ana@empresa.invalid", None),
        ("ana@impresora.local", None),
        ("ana@servidor.localhost", None),
        ("ana@router.home.arpa", None),
        ("ana@abc.onion", None),
        # public domains, documentation ones included (they exist and resolve)
        ("ana@example.com", "ana@example.com"),
        ("ana@mail.example.net", "ana@mail.example.net"),
        ("ana@example.es", "ana@example.es"),
        ("ana@myexample.com", "ana@myexample.com"),
        ("ana@example.com.es", "ana@example.com.es"),
        ("ana@local.es", "ana@local.es"),
        ("ana@testing.es", "ana@testing.es"),
        ("ana@localhost.es", "ana@localhost.es"),
        # in a list: the first address at a public domain is the customer's
        ("ana@localhost; ana@empresa.es", "ana@empresa.es"),
    ],
)
def test_email_at_a_special_use_domain_is_not_a_customers(raw, expected):
    assert normalize_email(raw) == expected


def test_a_special_use_domain_is_reported_as_such():
    customer, issues = customer_from_client({"code": 1, "email": "ana@localhost"}, region="ES")
    assert customer.email is None  # unset: the target leaves the field as it is
    assert [(i.field, i.problem) for i in issues] == [
        ("email", "not a public email domain (special-use or a bare host name)")
    ]
    assert issues[0].value_hint == "ana@localhost"


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("8001", "ES", "08001"),
        ("08001", "ES", "08001"),
        (" 28001 ", "ES", "28001"),
        ("28 001", "ES", "28001"),
        ("1001", "ES", "01001"),
        ("52001", "ES", "52001"),
        ("35001", "es", "35001"),
        ("99999", "ES", None),
        ("53001", "ES", None),
        ("00123", "ES", None),
        ("123", "ES", None),
        ("280010", "ES", None),
        ("28OO1", "ES", None),
        ("E-28001", "ES", "28001"),
        ("ES-08001", "ES", "08001"),
        ("43.001", "ES", "43001"),
        ("28-001", "ES", "28001"),
        ("E-2800", "ES", "02800"),
        ("EX-28001", "ES", None),
        # the label before the code and the town after it, typed into the field
        ("C.P. 28001", "ES", "28001"),
        ("cp: 8001", "ES", "08001"),
        ("Código postal 28001", "ES", "28001"),
        ("28001 Madrid", "ES", "28001"),
        ("28001-Madrid", "ES", "28001"),
        ("43.001 (Tarragona)", "ES", "43001"),
        ("28001 28002", "ES", None),
        ("28001-1", "ES", None),
        ("Madrid 28001", "ES", None),
        ("", "ES", ""),
        ("75001", "FR", "75001"),
        ("SW1A 1AA", "GB", "SW1A 1AA"),
        ("  1000-001 ", "PT", "1000-001"),
        ("99999", "FR", "99999"),
        ("8001", "CH", "8001"),
    ],
)
def test_normalize_postal_code(raw, country, expected):
    assert normalize_postal_code(raw, country) == expected
    if expected:
        assert normalize_postal_code(expected, country) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("724", "ES"),
        ("0724", "ES"),
        (724, "ES"),
        ("ES", "ES"),
        ("es", "ES"),
        ("ESP", "ES"),
        ("España", "ES"),
        ("ESPAÑA", "ES"),
        ("espana", "ES"),
        ("Spain", "ES"),
        ("  spain ", "ES"),
        ("Francia", "FR"),
        ("France", "FR"),
        ("250", "FR"),
        ("056", "BE"),
        ("56", "BE"),
        ("Bélgica", "BE"),
        ("belgica", "BE"),
        ("Alemania", "DE"),
        ("Reino Unido", "GB"),
        ("United Kingdom", "GB"),
        ("UK", "GB"),
        ("Estados Unidos", "US"),
        ("EE.UU.", "US"),
        ("USA", "US"),
        ("Países Bajos", "NL"),
        ("Holanda", "NL"),
        ("Portugal", "PT"),
        ("Marruecos", "MA"),
        ("México", "MX"),
        ("Mexico", "MX"),
        ("Suiza", "CH"),
        ("Bolivia", "BO"),
        ("Rusia", "RU"),
        ("Corea del Sur", "KR"),
        ("", ""),
        ("Narnia", None),
        ("999", None),
        ("XX", None),
    ],
)
def test_country_alpha2(raw, expected):
    assert country_alpha2(raw) == expected


def test_every_country_reads_back_from_its_spanish_name_and_codes():
    for country in pycountry.countries:
        a2 = country.alpha_2
        assert country_alpha2(country_name_es(a2)) == a2
        assert country_alpha2(country_numeric(a2) or "") == a2
        assert country_alpha2(country.alpha_3) == a2
        assert country_alpha2(country.name) == a2


@pytest.mark.parametrize(
    ("alpha2", "numeric", "spanish"),
    [
        ("ES", "724", "España"),
        ("FR", "250", "Francia"),
        ("DE", "276", "Alemania"),
        ("PT", "620", "Portugal"),
        ("BE", "056", "Bélgica"),
        ("GB", "826", "Reino Unido"),
        ("", "", ""),
    ],
)
def test_country_numeric_and_spanish_name(alpha2, numeric, spanish):
    assert country_numeric(alpha2) == numeric
    assert country_name_es(alpha2) == spanish


def test_country_numeric_unknown():
    assert country_numeric("XX") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ferretería   López  ", "Ferretería López"),
        ("A\tB\nC\r\nD", "A B C D"),
        ("Nul\x00l", "Null"),
        ("x\x07y", "xy"),
        ("zero\u200bwidth", "zerowidth"),
        ("a \x00 b", "a b"),
        ("Jose\u0301", "José"),
        ("\u00a0nbsp\u00a0", "nbsp"),
        ("", ""),
    ],
)
def test_clean_text(raw, expected):
    assert clean_text(raw) == expected
    assert clean_text(expected) == expected


@pytest.mark.parametrize(
    ("raw", "size", "expected", "problems"),
    [
        ("Ferretería López", 100, "Ferretería López", []),
        ("Müller & Söhne €", 100, "Müller & Söhne €", []),
        ("Łódź", 100, "?ódz", ["2 character(s) FactuSOL (cp1252) cannot store were replaced"]),
        ("Ștefan", 100, "Stefan", ["1 character(s) FactuSOL (cp1252) cannot store were replaced"]),
        ("ﬁrma", 100, "firma", ["1 character(s) FactuSOL (cp1252) cannot store were replaced"]),
        ("東京", 100, "??", ["2 character(s) FactuSOL (cp1252) cannot store were replaced"]),
        ("abcdef", 3, "abc", ["truncated to 3 chars"]),
        ("ab cdef", 3, "ab", ["truncated to 3 chars"]),
        ("x" * 120, 100, "x" * 100, ["truncated to 100 chars"]),
    ],
)
def test_fit_factusol_text(raw, size, expected, problems):
    assert fit_factusol_text(raw, size) == (expected, problems)
    assert fit_factusol_text(expected, size) == (expected, [])
