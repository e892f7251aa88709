"""The Clientify side of the mapping table: contacts read into a :class:`Customer`, and what
to send so a contact holds a desired one (top-level fields, then sub-resource calls).

A Customer read from a contact holds each field's own value: what Clientify only *shows* in
place of an empty field (the company where a contact has no name) is never read as that
field's value, so a value that travelled FactuSOL -> Clientify as a fallback cannot come back
as a change (README, "Fallbacks never travel back").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .identity import is_placeholder_nif
from .mapping import (
    ADDRESS_KEYS,
    ADDRESS_MAIN,
    EMAIL_MAIN,
    FREE_TEXT_FIELDS,
    PHONE_MAIN,
    PHONE_MOBILE,
    Normalized,
    field_size,
    normalize_raw,
)
from .model import TEXT_FIELDS, Customer, FieldDiff, FieldIssue
from .normalize import clean_text, country_name_es, fit_factusol_text

__all__ = [
    "AddAddress",
    "AddEmail",
    "AddPhone",
    "AddTag",
    "ContactChanges",
    "DeleteAddress",
    "DeleteEmail",
    "DeletePhone",
    "SubResourceOp",
    "contact_changes",
    "customer_from_contact",
]


@dataclass(frozen=True)
class SubResourceOp:
    """One call on a contact's sub-resource; ``kind`` names the clientify_api method."""

    kind: ClassVar[str] = ""


@dataclass(frozen=True)
class AddEmail(SubResourceOp):
    kind: ClassVar[str] = "add_email"
    email: str
    type: int = EMAIL_MAIN


@dataclass(frozen=True)
class DeleteEmail(SubResourceOp):
    kind: ClassVar[str] = "delete_email"
    email_id: int | str


@dataclass(frozen=True)
class AddPhone(SubResourceOp):
    kind: ClassVar[str] = "add_phone"
    phone: str
    type: int = PHONE_MAIN


@dataclass(frozen=True)
class DeletePhone(SubResourceOp):
    kind: ClassVar[str] = "delete_phone"
    phone_id: int | str


@dataclass(frozen=True)
class AddAddress(SubResourceOp):
    kind: ClassVar[str] = "add_address"
    address: dict[str, Any]


@dataclass(frozen=True)
class DeleteAddress(SubResourceOp):
    kind: ClassVar[str] = "delete_address"
    address_id: int | str


@dataclass(frozen=True)
class AddTag(SubResourceOp):
    kind: ClassVar[str] = "add_tag"
    name: str


@dataclass
class ContactChanges:
    """What to send to Clientify.

    ``create_body`` for POST /contacts/ when there is no contact yet; otherwise ``update_body``
    (partial PUT, {} = nothing) and ``operations`` in order (deletes before adds, so a failed
    add leaves no duplicate behind and the next pass simply adds).
    """

    create_body: dict[str, Any] | None = None
    update_body: dict[str, Any] = field(default_factory=dict)
    operations: list[SubResourceOp] = field(default_factory=list)
    diffs: list[FieldDiff] = field(default_factory=list)
    issues: list[FieldIssue] = field(default_factory=list)

    @property
    def is_create(self) -> bool:
        return self.create_body is not None

    @property
    def is_noop(self) -> bool:
        return self.create_body is None and not self.update_body and not self.operations


def _item_type(item: Mapping[str, Any]) -> int | None:
    try:
        return int(item.get("type"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _items(contact: Mapping[str, Any], key: str) -> list[Mapping[str, Any]] | None:
    value = contact.get(key)
    if key not in contact:
        return None
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _first(items: list[Mapping[str, Any]] | None, wanted: int, *, fallback: bool) -> Any:
    if not items:
        return None
    for item in items:
        if _item_type(item) == wanted:
            return item
    return items[0] if fallback else None


def _text(value: object) -> str:
    return "" if value is None else clean_text(str(value))


@dataclass
class _ContactView:
    """The parts of a contact the sync owns, found once."""

    normalized: Normalized
    name_join: str | None  # first + last, without the company fallback
    emails: list[Mapping[str, Any]] | None
    phones: list[Mapping[str, Any]] | None
    addresses: list[Mapping[str, Any]] | None
    email_item: Mapping[str, Any] | None
    phone_item: Mapping[str, Any] | None
    mobile_item: Mapping[str, Any] | None
    address_item: Mapping[str, Any] | None
    tags: list[str] | None


def _company_name(contact: Mapping[str, Any]) -> str | None:
    if "company_name" in contact:
        return _text(contact["company_name"])
    details = contact.get("company_details")
    if isinstance(details, Mapping) and details.get("name"):
        return _text(details["name"])
    if "company" in contact and contact["company"] is None:
        return ""
    return None  # detail shape with a company URL only: unknown


def _link_value(contact: Mapping[str, Any], link_field: str) -> object:
    for item in _items(contact, "custom_fields") or []:
        if item.get("field") == link_field:
            value = item.get("value")
            # a dropdown value may come as a list
            if isinstance(value, list):
                value = value[0] if value else None
            return value
    return contact.get("factusol_id")


def _view(contact: Mapping[str, Any], *, region: str, link_field: str) -> _ContactView:
    raw: dict[str, object] = {}
    join: str | None = None
    company = _company_name(contact)
    if "first_name" in contact or "last_name" in contact:
        parts = (_text(contact.get("first_name")), _text(contact.get("last_name")))
        join = " ".join(p for p in parts if p)
        # the name's own value: the company Clientify shows for an empty name is not it
        raw["name"] = join
    if company is not None:
        raw["trade_name"] = company
    if "taxpayer_identification_number" in contact:
        raw["nif"] = contact["taxpayer_identification_number"]
    link = _link_value(contact, link_field)
    if link is not None:
        raw["factusol_id"] = link

    emails = _items(contact, "emails")
    email_item = _first(emails, EMAIL_MAIN, fallback=True)
    if emails is not None:
        raw["email"] = email_item.get("email") if email_item else ""
    phones = _items(contact, "phones")
    phone_item = _first(phones, PHONE_MAIN, fallback=False)
    mobile_item = _first(phones, PHONE_MOBILE, fallback=False)
    if phones is not None:
        raw["phone"] = phone_item.get("phone") if phone_item else ""
        raw["mobile"] = mobile_item.get("phone") if mobile_item else ""
    addresses = _items(contact, "addresses")
    address_item = _first(addresses, ADDRESS_MAIN, fallback=True)
    if addresses is not None:
        for name, key in ADDRESS_KEYS.items():
            # inside an item that exists, a missing key is an empty value
            raw[name] = address_item.get(key) if address_item else ""

    tags: list[str] | None = None
    if isinstance(contact.get("tags"), list):
        tags = [
            _text(t.get("name") if isinstance(t, Mapping) else t)
            for t in contact["tags"]
            if t is not None
        ]
    return _ContactView(
        normalize_raw(raw, region=region),
        join,
        emails,
        phones,
        addresses,
        email_item,
        phone_item,
        mobile_item,
        address_item,
        tags,
    )


def customer_from_contact(
    contact: Mapping[str, Any], *, region: str, link_field: str = "factusol_id"
) -> tuple[Customer, list[FieldIssue]]:
    """Customer from a Clientify contact (list item or detail); missing keys stay unset."""
    normalized = _view(contact, region=region, link_field=link_field).normalized
    return normalized.customer, normalized.issues


def _same_text(before: str | None, after: str, name: str) -> bool:
    """Equal, or equal once fitted into FactuSOL when ``after`` is itself a FactuSOL value.

    Clientify keeps the longer / non-cp1252 text; FactuSOL holds its fitted copy; the two are in
    sync and neither is rewritten (convergence rule, see README).
    """
    if before is None:
        return False
    if before == after:
        return True
    if name not in FREE_TEXT_FIELDS:
        return False
    size = field_size(name)
    fitted_after = fit_factusol_text(after, size)[0]
    return fitted_after == after and fit_factusol_text(before, size)[0] == after


def _address_body(values: Mapping[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {"type": ADDRESS_MAIN}
    for name, key in ADDRESS_KEYS.items():
        value = values.get(name, "")
        if name == "country":
            value = country_name_es(value)
        if value:
            body[key] = value
    return body


def _create_body(desired: Customer, *, link_field: str, tag: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if desired.name is not None:
        # the fiscal name is one string; splitting it would invent a first/last name
        body["first_name"] = desired.name
        body["last_name"] = ""
    if desired.nif and not is_placeholder_nif(desired.nif):
        body["taxpayer_identification_number"] = desired.nif
    if desired.trade_name:
        body["company"] = desired.trade_name
    if desired.email:
        body["emails"] = [{"email": desired.email, "type": EMAIL_MAIN}]
    phones = [
        {"phone": number, "type": kind}
        for number, kind in ((desired.phone, PHONE_MAIN), (desired.mobile, PHONE_MOBILE))
        if number
    ]
    if phones:
        body["phones"] = phones
    address = {name: desired.get(name) or "" for name in ADDRESS_KEYS}
    if any(address.values()):
        body["addresses"] = [_address_body(address)]
    if desired.factusol_id is not None:
        body["custom_fields"] = [{"field": link_field, "value": str(desired.factusol_id)}]
    if tag:
        body["tags"] = [tag]
    return body


def contact_changes(
    existing: Mapping[str, Any] | None,
    desired: Customer,
    *,
    link_field: str = "factusol_id",
    tag: str | None = None,
    region: str = "ES",
) -> ContactChanges:
    """What to send so the contact holds ``desired``; touches only the items the sync owns.

    ``region`` is the account country, used to read phones stored without a prefix.
    """
    if existing is None:
        body = _create_body(desired, link_field=link_field, tag=tag)
        diffs = [
            FieldDiff(name, None, value)
            for name in ("factusol_id", *TEXT_FIELDS)
            if (value := desired.get(name)) and not (name == "nif" and is_placeholder_nif(value))
        ]
        return ContactChanges(create_body=body, diffs=diffs)

    view = _view(existing, region=region, link_field=link_field)
    desired = view.normalized.keep_invalid(desired)
    before = view.normalized.comparable
    changes = ContactChanges()
    deletes: list[SubResourceOp] = []
    adds: list[SubResourceOp] = []

    # company: a name that links or creates a company, so only when wanted and different
    company = before.get("trade_name")
    if desired.trade_name and not _same_text(company, desired.trade_name, "trade_name"):
        changes.update_body["company"] = company = desired.trade_name
        changes.diffs.append(FieldDiff("trade_name", before.get("trade_name"), desired.trade_name))

    # name: compared after joining first + last; an empty one shows the company (after this
    # pass's change), so that counts as equal too
    if desired.name is not None and view.name_join is not None:
        wanted = desired.name
        same = _same_text(view.name_join, wanted, "name") or (
            view.name_join == "" and _same_text(company, wanted, "name")
        )
        if not same:
            changes.update_body["first_name"] = wanted
            changes.update_body["last_name"] = ""
            changes.diffs.append(FieldDiff("name", before.get("name"), wanted))

    nif = desired.nif
    if nif and is_placeholder_nif(nif):
        nif = None  # identifies nobody (00000000T): never sent, whatever the contact holds
    if nif is not None and before.get("nif") != nif and (nif or before.get("nif") is not None):
        changes.update_body["taxpayer_identification_number"] = nif
        changes.diffs.append(FieldDiff("nif", before.get("nif"), nif))

    if desired.factusol_id is not None and before.get("factusol_id") != str(desired.factusol_id):
        changes.update_body["custom_fields"] = [
            {"field": link_field, "value": str(desired.factusol_id)}
        ]
        changes.diffs.append(
            FieldDiff("factusol_id", before.get("factusol_id"), str(desired.factusol_id))
        )

    def replace_item(
        name: str,
        items: list[Mapping[str, Any]] | None,
        item: Mapping[str, Any] | None,
        owned_type: int,
        make_add: Callable[[str], SubResourceOp],
        make_delete: Callable[[Any], SubResourceOp],
    ) -> None:
        wanted = desired.get(name)
        if wanted is None:
            return
        if items is None:
            if wanted:
                changes.issues.append(FieldIssue(name, "not on this contact shape; fetch detail"))
            return
        if before.get(name) == wanted:
            return
        if item is not None:
            if _item_type(item) != owned_type:
                # a fallback item the sync did not create: never deleted, only shadowed
                if not wanted:
                    changes.issues.append(
                        FieldIssue(name, f"not cleared: item is not of type {owned_type}")
                    )
                    return
            elif item.get("id") is None:
                # without an id the old item cannot go; adding would pile up duplicates
                changes.issues.append(FieldIssue(name, "owned item has no id; fetch detail"))
                return
            else:
                deletes.append(make_delete(item["id"]))
        if wanted:
            adds.append(make_add(wanted))
        changes.diffs.append(FieldDiff(name, before.get(name), wanted))

    replace_item(
        "email",
        view.emails,
        view.email_item,
        EMAIL_MAIN,
        lambda v: AddEmail(v, EMAIL_MAIN),
        DeleteEmail,
    )
    replace_item(
        "phone",
        view.phones,
        view.phone_item,
        PHONE_MAIN,
        lambda v: AddPhone(v, PHONE_MAIN),
        DeletePhone,
    )
    replace_item(
        "mobile",
        view.phones,
        view.mobile_item,
        PHONE_MOBILE,
        lambda v: AddPhone(v, PHONE_MOBILE),
        DeletePhone,
    )
    _address_changes(desired, view, changes, deletes, adds)

    if tag and view.tags is not None and tag.casefold() not in {t.casefold() for t in view.tags}:
        adds.append(AddTag(tag))
    changes.operations = deletes + adds
    return changes


def _address_changes(
    desired: Customer,
    view: _ContactView,
    changes: ContactChanges,
    deletes: list[SubResourceOp],
    adds: list[SubResourceOp],
) -> None:
    """Replace the owned address (first of type Main, else the first) when any part differs."""
    wanted = {name: desired.get(name) for name in ADDRESS_KEYS}
    if all(v is None for v in wanted.values()):
        return
    if view.addresses is None:
        if any(wanted.values()):
            changes.issues.append(FieldIssue("address", "not on this contact shape; fetch detail"))
        return
    before = view.normalized.comparable
    item = view.address_item
    body: dict[str, Any] = {"type": ADDRESS_MAIN}
    diffs: list[FieldDiff] = []
    for name, key in ADDRESS_KEYS.items():
        value = wanted[name]
        old = before.get(name)
        if value is None or _same_text(old, value, name):
            # keep the contact's own text (richer, or a value the sync must not touch)
            text = _text(item.get(key)) if item is not None else ""
        else:
            text = country_name_es(value) if name == "country" else value
            diffs.append(FieldDiff(name, old, value))
        if text:
            body[key] = text
    if not diffs:
        return
    owned = item is not None and _item_type(item) == ADDRESS_MAIN
    if item is not None and not owned and len(body) == 1:
        changes.issues.append(
            FieldIssue("address", f"not cleared: item is not of type {ADDRESS_MAIN}")
        )
        return
    if owned and item is not None and item.get("id") is not None:
        deletes.append(DeleteAddress(item["id"]))
    if len(body) > 1:
        adds.append(AddAddress(body))
    changes.diffs.extend(diffs)
