"""The one mapping table between FactuSOL F_CLI rows and Clientify contacts: the tables, the
normalization of a side's raw values, and the FactuSOL side (readers, ``client_changes``).

Readers turn either side into a normalized :class:`Customer` (plus FieldIssues); the change
builders compare a desired Customer with what a system holds, always between normalized values,
and say what to write. The Clientify side is :mod:`customer_sync.contact_mapping`. The README
has the table in prose; keep the two in step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .identity import is_placeholder_nif, parse_link_code
from .model import TEXT_FIELDS, Customer, FieldDiff, FieldIssue, value_hint
from .normalize import (
    InvalidValue,
    check_email,
    check_nif,
    check_phone,
    check_postal_code,
    clean_text,
    country_alpha2,
    country_numeric,
    fit_factusol_text,
    fits_cp1252,
    phone_for_factusol,
)

logger = logging.getLogger(__name__)

__all__ = [
    "CLIENT_RECORD_FIELDS",
    "FIELD_COLUMNS",
    "F_CLI_OWNED_COLUMNS",
    "F_CLI_SIZES",
    "ClientChanges",
    "client_changes",
    "customer_from_client",
    "customer_from_row",
    "normalize_customer",
]

# Clientify item types (reference §3)
EMAIL_MAIN = 4
PHONE_MAIN = 1
PHONE_MOBILE = 2
ADDRESS_MAIN = 5

# Customer field -> F_CLI column, and the columns' sizes (reference §7.1)
FIELD_COLUMNS: dict[str, str] = {
    "name": "NOFCLI",
    "trade_name": "NOCCLI",
    "nif": "NIFCLI",
    "address": "DOMCLI",
    "city": "POBCLI",
    "postal_code": "CPOCLI",
    "province": "PROCLI",
    "country": "PAICLI",
    "phone": "TELCLI",
    "mobile": "MOVCLI",
    "email": "EMACLI",
}
F_CLI_OWNED_COLUMNS: tuple[str, ...] = tuple(FIELD_COLUMNS.values())
F_CLI_SIZES: dict[str, int] = {
    "NOFCLI": 100,
    "NOCCLI": 100,
    "NIFCLI": 18,
    "DOMCLI": 100,
    "POBCLI": 30,
    "CPOCLI": 10,
    "PROCLI": 40,
    "PAICLI": 50,
    "TELCLI": 50,
    "MOVCLI": 50,
    "EMACLI": 255,
}
# Customer field -> `clients` stream field (tap-factusol)
CLIENT_RECORD_FIELDS: dict[str, str] = {
    "factusol_id": "code",
    "name": "fiscal_name",
    "trade_name": "trade_name",
    "nif": "nif",
    "address": "address",
    "city": "city",
    "postal_code": "postal_code",
    "province": "province",
    "country": "country_code",
    "phone": "phone",
    "mobile": "mobile",
    "email": "email",
}
# free text is fitted (replaced/cut) into FactuSOL; structured values are never mangled
FREE_TEXT_FIELDS = ("name", "trade_name", "address", "city", "province")
# Clientify address keys for the Customer's address fields
ADDRESS_KEYS: dict[str, str] = {
    "address": "street",
    "city": "city",
    "postal_code": "postal_code",
    "province": "state",
    "country": "country",
}


def field_size(field_name: str) -> int:
    return F_CLI_SIZES[FIELD_COLUMNS[field_name]]


# ------------------------------------------------------------------------------ normalization


@dataclass
class Normalized:
    customer: Customer
    # per field: the normalized value, or for an invalid value its cleaned raw text (so it still
    # compares unequal to any valid value); None when unknown
    comparable: dict[str, str | None]
    issues: list[FieldIssue]
    invalid: set[str]  # fields whose value is present but invalid

    def keep_invalid(self, desired: Customer) -> Customer:
        """Unset the desired fields that are empty where this side holds an invalid value.

        The other side is empty there because the invalid value could not travel to it (it
        was left out with a warning); clearing this side in return would destroy the value.
        """
        keep = {name: None for name in self.invalid if desired.get(name) == ""}
        return desired.replace(**keep) if keep else desired


def normalize_raw(raw: Mapping[str, object], *, region: str) -> Normalized:
    """Normalize raw values keyed by Customer field; a missing key means unknown."""
    values: dict[str, Any] = {}
    comparable: dict[str, str | None] = {}
    issues: list[FieldIssue] = []
    invalid: set[str] = set()

    def run(name: str, check: Callable[[str], str]) -> None:
        if name not in raw:
            return
        text = "" if raw[name] is None else str(raw[name])
        try:
            values[name] = comparable[name] = check(text)
        except InvalidValue as err:
            comparable[name] = clean_text(text)
            invalid.add(name)
            issues.append(FieldIssue(name, str(err), value_hint(text)))

    if raw.get("factusol_id") not in (None, ""):
        try:
            values["factusol_id"] = parse_link_code(raw["factusol_id"])
            comparable["factusol_id"] = str(values["factusol_id"])
        except InvalidValue as err:
            comparable["factusol_id"] = clean_text(str(raw["factusol_id"]))
            issues.append(FieldIssue("factusol_id", str(err), value_hint(raw["factusol_id"])))

    def check_country(text: str) -> str:
        alpha2 = country_alpha2(text)
        if alpha2 is None:
            raise InvalidValue("unknown country")
        return alpha2

    def check_phone_noting(name: str) -> Callable[[str], str]:
        def check(text: str) -> str:
            e164, warnings = check_phone(text, region)
            issues.extend(FieldIssue(name, w, value_hint(text)) for w in warnings)
            return e164

        return check

    def check_email_noting(text: str) -> str:
        address, warnings = check_email(text)
        issues.extend(FieldIssue("email", w, value_hint(text)) for w in warnings)
        return address

    for name in FREE_TEXT_FIELDS:
        run(name, clean_text)
    run("nif", check_nif)
    run("email", check_email_noting)
    run("phone", check_phone_noting("phone"))
    run("mobile", check_phone_noting("mobile"))
    run("country", check_country)
    # postal codes follow the address country; an empty or unknown one means the account's
    postal_country = values.get("country") or region
    run("postal_code", lambda text: check_postal_code(text, postal_country))
    return Normalized(Customer(**values), comparable, issues, invalid)


def normalize_customer(customer: Customer, *, region: str) -> tuple[Customer, list[FieldIssue]]:
    """Normalize a Customer built from raw strings (unset fields stay unset)."""
    raw = {name: getattr(customer, name) for name in ("factusol_id", *TEXT_FIELDS)}
    result = normalize_raw({k: v for k, v in raw.items() if v is not None}, region=region)
    return result.customer, result.issues


# ------------------------------------------------------------------------------------- FactuSOL


def _row_raw(row: Mapping[str, Any], keys: Mapping[str, str]) -> dict[str, object]:
    # FactuSOL has no "unknown": a NULL text column is an empty one
    return {
        name: ("" if row[key] is None else row[key]) for name, key in keys.items() if key in row
    }


def customer_from_client(
    record: Mapping[str, Any], *, region: str
) -> tuple[Customer, list[FieldIssue]]:
    """Customer from a tap-factusol `clients` record (snake_case fields, ``code`` = CODCLI)."""
    result = normalize_raw(_row_raw(record, CLIENT_RECORD_FIELDS), region=region)
    return result.customer, result.issues


def customer_from_row(row: Mapping[str, Any], *, region: str) -> tuple[Customer, list[FieldIssue]]:
    """Customer from a raw F_CLI row (CODCLI, NOFCLI, … as FactuSOL returns them)."""
    result = normalize_raw(_row_raw(row, {"factusol_id": "CODCLI", **FIELD_COLUMNS}), region=region)
    return result.customer, result.issues


@dataclass
class ClientChanges:
    """What to write to F_CLI: ``row`` is ready for insert_client/update_client."""

    row: dict[str, Any]
    is_create: bool
    diffs: list[FieldDiff] = field(default_factory=list)
    issues: list[FieldIssue] = field(default_factory=list)

    @property
    def is_noop(self) -> bool:
        return not self.is_create and not (set(self.row) - {"CODCLI"})


def _factusol_form(
    name: str, value: str, region: str, issues: list[FieldIssue]
) -> tuple[str, str] | None:
    """(column value, canonical value it reads back as), or None when it cannot be stored."""
    size = field_size(name)
    if name in FREE_TEXT_FIELDS:
        fitted, problems = fit_factusol_text(value, size)
        issues.extend(FieldIssue(name, p, value_hint(value)) for p in problems)
        return fitted, fitted
    if name in ("phone", "mobile"):
        return phone_for_factusol(value, region), value
    if name == "country":
        numeric = country_numeric(value)
        if numeric is None:
            issues.append(FieldIssue(name, "no ISO numeric code", value_hint(value)))
            return None
        return numeric, value
    # nif, email, postal_code: cutting or replacing would store a different identifier
    if len(value) > size or not fits_cp1252(value):
        issues.append(
            FieldIssue(name, f"does not fit FactuSOL (max {size} cp1252 chars)", value_hint(value))
        )
        return None
    return value, value


def client_changes(
    existing_row: Mapping[str, Any] | None, desired: Customer, *, region: str = "ES"
) -> ClientChanges:
    """F_CLI columns to write so the row holds ``desired``; only changed columns on update.

    ``region`` is the account country: numbers of that country are written in national form.
    """
    issues: list[FieldIssue] = []
    existing = (
        None
        if existing_row is None
        else normalize_raw(
            _row_raw(existing_row, {"factusol_id": "CODCLI", **FIELD_COLUMNS}), region=region
        )
    )
    if existing is not None:
        desired = existing.keep_invalid(desired)
    forms: dict[str, tuple[str, str]] = {}
    for name, _column in FIELD_COLUMNS.items():
        value = desired.get(name)
        if value is not None:
            form = _factusol_form(name, value, region, issues)
            if form is not None:
                forms[name] = form

    if existing_row is None or existing is None:
        row: dict[str, Any] = {}
        if desired.factusol_id is not None:
            row["CODCLI"] = desired.factusol_id
        row.update({FIELD_COLUMNS[name]: form[0] for name, form in forms.items()})
        diffs = [FieldDiff(name, None, form[1]) for name, form in forms.items() if form[1]]
        return ClientChanges(row, True, diffs, issues)

    code = existing_row.get("CODCLI", desired.factusol_id)
    row = {"CODCLI": code}
    diffs = []
    trade = forms["trade_name"][1] if "trade_name" in forms else None
    for name, (column_value, canonical) in forms.items():
        before = existing.comparable.get(name)
        if before == canonical:
            continue
        # an empty fiscal name shows as the trade name on the Clientify side (see README)
        if name == "name" and before == "" and canonical and canonical == trade:
            continue
        # a placeholder NIF never went to Clientify: its empty NIF there is the same "no NIF"
        if name == "nif" and not canonical and before and is_placeholder_nif(before):
            continue
        row[FIELD_COLUMNS[name]] = column_value
        diffs.append(FieldDiff(name, before, canonical))
    return ClientChanges(row, False, diffs, issues)
