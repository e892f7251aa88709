"""Normalization of single values: one canonical form per value, so both sides compare equal.

Every ``normalize_*`` function is idempotent and returns ``None`` for an invalid value (the caller
turns that into a :class:`~customer_sync.model.FieldIssue` and leaves the field unset). The empty
string is a valid value meaning "empty".
"""

from __future__ import annotations

import email.utils
import functools
import gettext
import logging
import re
import unicodedata

import phonenumbers
import pycountry
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator
from stdnum import exceptions as stdnum_exceptions
from stdnum.es import nif as es_nif
from stdnum.eu import vat as eu_vat

logger = logging.getLogger(__name__)

__all__ = [
    "NO_NIF_TEXTS",
    "InvalidValue",
    "clean_text",
    "country_alpha2",
    "country_name_es",
    "country_numeric",
    "fit_factusol_text",
    "is_public_email_domain",
    "is_valid_email",
    "normalize_email",
    "normalize_nif",
    "normalize_phone",
    "normalize_postal_code",
    "phone_for_factusol",
]


class InvalidValue(ValueError):
    """A value that cannot be normalized; ``str(err)`` is a short reason without the value."""


# --------------------------------------------------------------------------------------- text


def clean_text(value: str) -> str:
    """Strip, collapse internal whitespace, drop control/format characters (NUL included), NFC.

    NFC last, so accents typed decomposed ("e" + U+0301) compare equal to precomposed ones.
    """
    chars = []
    for ch in value:
        if ch.isspace():
            chars.append(" ")
        elif unicodedata.category(ch)[0] != "C":
            chars.append(ch)
    return unicodedata.normalize("NFC", " ".join("".join(chars).split()))


def _to_cp1252(value: str) -> tuple[str, int]:
    """Replace characters cp1252 cannot store: NFKD → cp1252 where possible, else "?"."""
    out: list[str] = []
    replaced = 0
    for ch in value:
        try:
            ch.encode("cp1252")
        except UnicodeEncodeError:
            replaced += 1
            decomposed = "".join(
                c
                for c in unicodedata.normalize("NFKD", ch)
                if not unicodedata.combining(c) and _cp1252_ok(c)
            )
            out.append(decomposed or "?")
        else:
            out.append(ch)
    return "".join(out), replaced


def _cp1252_ok(ch: str) -> bool:
    try:
        ch.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def fits_cp1252(value: str) -> bool:
    """True when FactuSOL (cp1252) can store ``value`` exactly."""
    return all(_cp1252_ok(ch) for ch in value)


def fit_factusol_text(value: str, size: int) -> tuple[str, list[str]]:
    """Fit a cleaned text into a FactuSOL text column of ``size`` characters.

    Returns the fitted text and the problems met (empty when it fitted as it was). Fitting a
    fitted text changes nothing, which is what makes a second sync pass a no-op.
    """
    problems: list[str] = []
    text = clean_text(value)
    text, replaced = _to_cp1252(text)
    if replaced:
        # a replacement like "˘" → " " can leave double spaces behind
        text = clean_text(text)
        problems.append(f"{replaced} character(s) FactuSOL (cp1252) cannot store were replaced")
    if len(text) > size:
        text = text[:size].rstrip()
        problems.append(f"truncated to {size} chars")
    return text, problems


# ------------------------------------------------------------------------------------- phones


def _parse_phone(value: str, region: str) -> tuple[phonenumbers.PhoneNumber, bool]:
    """The number, and whether it was found inside other text (a note, a second number)."""
    text = clean_text(value)
    try:
        number = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException:
        number = None
    if number is not None and phonenumbers.is_valid_number(number):
        return number, False
    # A phone field often holds a note or two numbers ("912345678 (oficina)",
    # "600 11 22 33 / 955 12 34 56"): the first valid number in it is the customer's phone.
    for match in phonenumbers.PhoneNumberMatcher(
        text, region.upper(), leniency=phonenumbers.Leniency.VALID
    ):
        return match.number, True
    raise InvalidValue("not a valid phone number" if number is not None else "not a phone number")


def check_phone(value: str, region: str) -> tuple[str, list[str]]:
    """E.164 form of ``value`` (default region ``region``) and warnings; raises InvalidValue."""
    if not clean_text(value):
        return "", []
    number, found_in_text = _parse_phone(value, region)
    warnings = ["extension dropped"] if number.extension else []
    if found_in_text:
        warnings.append("the first number of the field kept, the rest of it dropped")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), warnings


def normalize_phone(value: str, region: str) -> str | None:
    """Canonical E.164 ("+34912345678"); "" for empty; None when invalid."""
    try:
        return check_phone(value, region)[0]
    except InvalidValue:
        return None


def phone_for_factusol(e164: str, region: str) -> str:
    """How FactuSOL keeps a phone: national number for the default region, else E.164."""
    if not e164:
        return ""
    number = phonenumbers.parse(e164, None)
    if phonenumbers.region_code_for_number(number) == region.upper():
        national = phonenumbers.national_significant_number(number)
        # keep E.164 where the bare national number would not read back as the same number
        if normalize_phone(national, region) == e164:
            return national
    return e164


# --------------------------------------------------------------------------------------- NIFs


# What people type where a NIF is required and there is none (compacted, upper case): read as
# empty, so they neither warn on every run nor travel as if they were a number.
NO_NIF_TEXTS = frozenset(
    {
        "0",
        "NA",
        "NIF",
        "SN",
        "SINNIF",
        "SINCIF",
        "SINDNI",
        "NOTIENE",
        "NOTIENENIF",
        "NINGUNO",
        "PENDIENTE",
        "DESCONOCIDO",
        "XXX",
        "?",
    }
)


def check_nif(value: str) -> str:
    """Compact NIF/CIF/NIE (Spanish, "ES" prefix stripped) or EU VAT number; raises InvalidValue.

    A "no NIF" text (``SIN NIF``, ``N/A``, ``-``) reads as empty.
    """
    text = re.sub(r"[\s.\-/_]", "", clean_text(value)).upper()
    if not text or text in NO_NIF_TEXTS:
        return ""
    try:
        # es.nif covers DNI, NIE and CIF and strips an "ES" prefix itself
        return str(es_nif.validate(text))
    except stdnum_exceptions.ValidationError:
        pass
    if padded := _zero_padded(text):
        return padded
    if len(text) > 2 and text[:2].isalpha() and not text.startswith("ES"):
        try:
            return str(eu_vat.validate(text))
        except stdnum_exceptions.ValidationError:
            pass
    raise InvalidValue("not a valid NIF/CIF/NIE or EU VAT number")


# A DNI or NIE typed without its leading zeros ("5837261E" for 05837261E): common on paper,
# refused by the AEAT. Taken only when the padded number passes the check letter.
_UNPADDED_DNI = re.compile(r"(?:ES)?(\d{6,7})([A-Z])")
_UNPADDED_NIE = re.compile(r"(?:ES)?([XYZ])(\d{5,6})([A-Z])")


def _zero_padded(text: str) -> str | None:
    if match := _UNPADDED_DNI.fullmatch(text):
        candidate = match[1].zfill(8) + match[2]
    elif match := _UNPADDED_NIE.fullmatch(text):
        candidate = match[1] + match[2].zfill(7) + match[3]
    else:
        return None
    try:
        return str(es_nif.validate(candidate))
    except stdnum_exceptions.ValidationError:
        return None


def normalize_nif(value: str) -> str | None:
    """Compact upper-case NIF ("B12345674", "FR40303265045"); "" for empty; None when invalid."""
    try:
        return check_nif(value)
    except InvalidValue:
        return None


# ------------------------------------------------------------------------------------- emails

# Clientify is a Django REST Framework service: its e-mail fields run Django's EmailValidator,
# so an address it refuses makes it refuse the whole contact. We run the same validator (not a
# look-alike) and the limits around it: 254 characters (Django's EmailField) and a 64-character
# local part (RFC 5321; the real API refuses longer ones, reported in issue 15).
_DJANGO_EMAIL = EmailValidator()
_EMAIL_MAX = 254
_LOCAL_PART_MAX = 64
# FactuSOL's EMACLI often holds several addresses ("a@x.es; b@x.es"): the first valid one is
# the customer's e-mail.
_EMAIL_SEPARATORS = re.compile(r"[;,\s]+")
_SPACES_AROUND_AT = re.compile(r"\s*@\s*")  # "ana @ x.es", typed by hand


def _bare_address(text: str) -> str:
    """The address without a display name, angle brackets or a ``mailto:`` prefix."""
    if "<" in text or ">" in text:
        _name, address = email.utils.parseaddr(text)
        text = address or text.strip("<> ")
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:") :]
    # the full stop or comma of the sentence the address was copied from
    return text.strip().rstrip(".,;:")


# Domains that are not on the public Internet: special-use names (RFC 6761: test, example,
# invalid, localhost; RFC 6762: local; RFC 7686: onion; RFC 8375: home.arpa). Django's validator
# lets ``x@localhost`` through; the CRM would keep an address nobody can write to. The
# documentation domains example.com/.net/.org are real public names, so they are left alone.
_SPECIAL_USE_TLDS = frozenset({"test", "example", "invalid", "localhost", "local", "onion"})
_SPECIAL_USE_DOMAINS = frozenset({"home.arpa"})


def is_public_email_domain(domain: str) -> bool:
    """False for a bare host (no dot) or a special-use name (and its subdomains); compared
    case-insensitively, a trailing dot ignored."""
    labels = domain.strip().rstrip(".").casefold().split(".")
    if len(labels) < 2 or labels[-1] in _SPECIAL_USE_TLDS:
        return False
    return not any(".".join(labels[i:]) in _SPECIAL_USE_DOMAINS for i in range(len(labels) - 1))


def _email_problem(address: str) -> str | None:
    """Why Clientify refuses ``address`` or nobody can receive mail there; None when usable."""
    if len(address) > _EMAIL_MAX or len(address.rpartition("@")[0]) > _LOCAL_PART_MAX:
        return "not a valid email address"
    try:
        _DJANGO_EMAIL(address)
    except DjangoValidationError:
        return "not a valid email address"
    if not is_public_email_domain(address.rpartition("@")[2]):
        return "not a public email domain (special-use or a bare host name)"
    return None


def is_valid_email(address: str) -> bool:
    """True when Clientify (Django's EmailValidator) accepts ``address`` as written and its
    domain is a public one (:func:`is_public_email_domain`)."""
    return _email_problem(address) is None


def check_email(value: str) -> tuple[str, list[str]]:
    """Lower-cased address Clientify accepts, and warnings; raises InvalidValue.

    A display name (``Ana <ana@x.es>``), angle brackets and ``mailto:`` are stripped before
    checking. Of several addresses in one value, the first valid one is kept (with a warning).
    """
    text = _SPACES_AROUND_AT.sub("@", clean_text(value))
    if not text:
        return "", []
    single = _bare_address(text).lower()
    problem = _email_problem(single)
    if problem is None:
        return single, []
    parts = [_bare_address(p).lower() for p in _EMAIL_SEPARATORS.split(text) if "@" in p]
    valid = [p for p in parts if is_valid_email(p)]
    if len(parts) > 1 and valid:
        return valid[0], [f"{len(parts)} addresses in one value: only the first valid one syncs"]
    raise InvalidValue(problem if len(parts) <= 1 else "not a valid email address")


def normalize_email(value: str) -> str | None:
    """Trimmed, lower-cased email; "" for empty; None when Clientify would refuse it."""
    try:
        return check_email(value)[0]
    except InvalidValue:
        return None


# -------------------------------------------------------------------------------- postal code


# "E-28001", "ES 28001": the country prefix of postal addresses, then separators people type
# ("43.001", "28 001", "28-001").
_ES_POSTAL_PREFIX = re.compile(r"^(?:ES|E)[\s\-.]*(?=\d)", re.IGNORECASE)
_POSTAL_SEPARATORS = re.compile(r"[\s.\-]")
# "C.P. 28001", "CP: 28001", "28001 Madrid", "28001 (Madrid)": the label before the code and the
# town after it, as typed into a postal code field.
_POSTAL_LABEL = re.compile(r"^(?:c\.?\s*p\.?|c/p|c[oó]digo\s+postal)\s*:?\s*", re.IGNORECASE)
_POSTAL_TOWN_AFTER = re.compile(r"^(\d{1,2}[\s.\-]?\d{3})[\s,\-(]+[^\d\s].*$")


def check_postal_code(value: str, country: str) -> str:
    """Spanish codes as five digits with a province prefix 01-52; others cleaned as given."""
    text = clean_text(value)
    if country.upper() != "ES" or not text:
        return text
    code = _ES_POSTAL_PREFIX.sub("", _POSTAL_LABEL.sub("", text))
    if town_after := _POSTAL_TOWN_AFTER.match(code):
        code = town_after[1]
    digits = _POSTAL_SEPARATORS.sub("", code)
    if not digits.isascii() or not digits.isdigit() or len(digits) not in (4, 5):
        raise InvalidValue("not a Spanish postal code (5 digits)")
    digits = digits.zfill(5)
    if not 1 <= int(digits[:2]) <= 52:
        raise InvalidValue("not a Spanish postal code (province 01-52)")
    return digits


def normalize_postal_code(value: str, country: str) -> str | None:
    """Postal code for ``country`` (alpha-2; callers pass the account region when unknown)."""
    try:
        return check_postal_code(value, country)
    except InvalidValue:
        return None


# ---------------------------------------------------------------------------------- countries


def _fold(text: str) -> str:
    """Case-, accent- and punctuation-insensitive key for country names."""
    decomposed = unicodedata.normalize("NFKD", clean_text(text).casefold())
    letters = "".join(c if c.isalnum() else " " for c in decomposed if not unicodedata.combining(c))
    return " ".join(letters.split())


# common spellings that are not in ISO 3166 (old FactuSOL data, users typing freely)
_ALIASES = {
    "uk": "GB",
    "usa": "US",
    "eeuu": "US",
    "ee uu": "US",
    "u s a": "US",
    "holanda": "NL",
    "inglaterra": "GB",
    "england": "GB",
    "gran bretana": "GB",
    "great britain": "GB",
    "rusia": "RU",
    "russia": "RU",
    "republica checa": "CZ",
    "deutschland": "DE",
    "estados unidos de america": "US",
    "vaticano": "VA",
}


@functools.cache
def _spanish() -> gettext.NullTranslations:
    return gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["es"], fallback=True)


@functools.cache
def _country_index() -> dict[str, str]:
    index: dict[str, str] = {}
    translate = _spanish().gettext
    countries = list(pycountry.countries)
    # codes first, then names; setdefault keeps the first (most specific) meaning of a key
    for c in countries:
        index.setdefault(c.alpha_2.casefold(), c.alpha_2)
        index.setdefault(c.alpha_3.casefold(), c.alpha_2)
        index.setdefault(str(int(c.numeric)), c.alpha_2)
    for c in countries:
        for attr in ("name", "common_name", "official_name"):
            name = getattr(c, attr, None)
            if name:
                index.setdefault(_fold(name), c.alpha_2)
                index.setdefault(_fold(translate(name)), c.alpha_2)
    for alias, alpha2 in _ALIASES.items():
        index.setdefault(alias, alpha2)
    # "Bolivia, Estado plurinacional de" is written "Bolivia": index the head when unambiguous
    heads: dict[str, set[str]] = {}
    for c in countries:
        for attr in ("name", "official_name"):
            name = getattr(c, attr, None)
            for variant in (name, translate(name)) if name else ():
                if ", " in variant:
                    heads.setdefault(_fold(variant.split(", ")[0]), set()).add(c.alpha_2)
    for head, codes in heads.items():
        if len(codes) == 1:
            index.setdefault(head, codes.pop())
    return index


def country_alpha2(value: str | int) -> str | None:
    """ISO alpha-2 from alpha-2/alpha-3/numeric/English or Spanish name; "" empty; None unknown."""
    text = clean_text(str(value))
    if not text:
        return ""
    key = str(int(text)) if text.isascii() and text.isdigit() else _fold(text)
    return _country_index().get(key)


def country_numeric(alpha2: str) -> str | None:
    """ISO numeric code as FactuSOL's PAICLI holds it ("724"); "" for empty; None unknown."""
    if not alpha2:
        return ""
    country = pycountry.countries.get(alpha_2=alpha2.upper())
    return None if country is None else str(country.numeric)


def country_name_es(alpha2: str) -> str:
    """Spanish country name written to Clientify's free-text address country ("España")."""
    if not alpha2:
        return ""
    country = pycountry.countries.get(alpha_2=alpha2.upper())
    if country is None:
        return alpha2
    return str(_spanish().gettext(getattr(country, "common_name", None) or country.name))
