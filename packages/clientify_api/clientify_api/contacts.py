"""Pure helpers over contact dicts: custom fields, link keys, client-side filter checks.

No HTTP here. Contacts are the dicts the API returns (list item or detail); a missing key means
"unknown", so every helper tolerates absent or null keys.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from clientify_api.timeutil import parse_api_datetime

# The app part of a localised content_type ("contacts | contacto"), or a bare old-style label.
CONTACT_CONTENT_TYPES = frozenset({"contact", "contacts", "contacto", "contactos"})

# separators a NIF is typed with, for the loose ``query`` filter check only
_NIF_JUNK = re.compile(r"[\s.\-]+")
_NON_DIGITS = re.compile(r"\D+")
# Shortest number we accept as a suffix match ("600111222" vs "+34 600 111 222").
_MIN_PHONE_SUFFIX = 6


def content_type_app(content_type: object) -> str:
    """``"contacts | contacto"`` -> ``"contacts"``; ``"contact"`` -> ``"contact"``."""
    if not isinstance(content_type, str):
        return ""
    return content_type.split(" | ", 1)[0].strip().casefold()


def is_contact_field_definition(definition: Mapping[str, Any]) -> bool:
    """True when a custom-field definition belongs to contacts (any localisation)."""
    return content_type_app(definition.get("content_type")) in CONTACT_CONTENT_TYPES


def _custom_field_entries(contact: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    entries = contact.get("custom_fields")
    if not isinstance(entries, list):
        return
    for entry in entries:
        if isinstance(entry, Mapping):
            yield entry


def custom_field_value(contact: Mapping[str, Any], name: str) -> Any:
    """Raw value of the custom field ``name`` on a contact (string, list or None)."""
    wanted = name.strip()
    for entry in _custom_field_entries(contact):
        # Read shapes vary: {field, value}, {id, field, value}, {field, value, field_detail}.
        if str(entry.get("field", entry.get("name", ""))).strip() == wanted:
            return entry.get("value")
    return None


def as_texts(value: Any) -> list[str]:
    if value is None or isinstance(value, bool):
        return []
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            out.extend(as_texts(item))
        return out
    if isinstance(value, Mapping):
        return as_texts(value.get("value", value.get("name")))
    text = str(value).strip()
    return [text] if text else []


def custom_field_text(contact: Mapping[str, Any], name: str) -> str | None:
    """The custom field as one stripped string, or None when absent or empty.

    A dropdown value may be a list: its first non-empty element is used.
    """
    texts = as_texts(custom_field_value(contact, name))
    return texts[0] if texts else None


def custom_field_matches(contact: Mapping[str, Any], name: str, value: object) -> bool:
    """Exact (stripped) match of a custom field value, or of any element of a list value."""
    wanted = str(value).strip()
    return bool(wanted) and wanted in as_texts(custom_field_value(contact, name))


def link_key(value: object) -> str:
    """A link value as the client code it names: stripped, a whole number without leading
    zeros ("0010001" -> "10001"); any other text stays as it is (it names no client)."""
    text = str(value).strip()
    if text.isascii() and text.isdigit():
        return str(int(text))
    return text


def fold_email(value: object) -> str:
    """An e-mail folded for comparing two copies of one address (stripped, lower-case; '' when
    not a string). Not an identity: which address identifies a customer is customer_sync's
    ``email_identity``, the key :class:`~clientify_api.ContactIndex` is given."""
    return value.strip().lower() if isinstance(value, str) else ""


def addresses_known(contact: Mapping[str, Any]) -> bool:
    """False for a contact shape without ``addresses`` (older accounts' list items): its
    addresses are unknown, not empty (``ClientifyClient.complete_addresses`` reads them)."""
    return isinstance(contact.get("addresses"), list)


def contact_emails(contact: Mapping[str, Any]) -> list[str]:
    """Every e-mail of a contact, normalized (``emails[]`` plus a flat ``email`` if present)."""
    found: list[str] = []
    items = contact.get("emails")
    for item in items if isinstance(items, list) else []:
        raw = item.get("email") if isinstance(item, Mapping) else item
        if email := fold_email(raw):
            found.append(email)
    if email := fold_email(contact.get("email")):
        found.append(email)
    return list(dict.fromkeys(found))


def contact_phones(contact: Mapping[str, Any]) -> list[str]:
    """Every phone of a contact, verbatim (the API never normalizes them)."""
    found: list[str] = []
    items = contact.get("phones")
    for item in items if isinstance(items, list) else []:
        raw = item.get("phone") if isinstance(item, Mapping) else item
        if isinstance(raw, str) and raw.strip():
            found.append(raw.strip())
    flat = contact.get("phone")
    if isinstance(flat, str) and flat.strip():
        found.append(flat.strip())
    return found


def contact_tags(contact: Mapping[str, Any]) -> list[str]:
    """Tag names (list items carry strings; tolerate ``{"name": ...}`` objects too)."""
    items = contact.get("tags")
    names: list[str] = []
    for item in items if isinstance(items, list) else []:
        raw = item.get("name") if isinstance(item, Mapping) else item
        if isinstance(raw, str) and raw.strip():
            names.append(raw.strip())
    return names


def phone_matches(stored: str, wanted: str) -> bool:
    """Same digits, or one is the other with a country/trunk prefix (``+34 600…`` vs ``600…``)."""
    a, b = _NON_DIGITS.sub("", stored), _NON_DIGITS.sub("", wanted)
    if not a or not b:
        return False
    if a == b:
        return True
    short, long_ = sorted((a, b), key=len)
    return len(short) >= _MIN_PHONE_SUFFIX and long_.endswith(short)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def query_matches(contact: Mapping[str, Any], query: str) -> bool:
    """Loose check for the fuzzy ``query`` filter: every word appears somewhere in the contact.

    Accent- and case-insensitive, also against a compacted copy (a NIF typed with dashes).
    Loose on purpose: it only has to catch a server that ignored the filter and answered with
    the whole account, not second-guess the server's fuzzy matching.
    """
    haystack = _fold(" ".join(_strings(dict(contact))))
    compact = _NIF_JUNK.sub("", haystack)
    terms = [_fold(t) for t in query.split()]
    return all(t in haystack or _NIF_JUNK.sub("", t) in compact for t in terms)


def datetime_bound_matches(contact: Mapping[str, Any], key: str, op: str, bound: datetime) -> bool:
    """Check ``contact[key] <op> bound``; a missing or unparseable value passes (unknown)."""
    value = parse_api_datetime(contact.get(key))
    if value is None:
        return True
    if op == "gte":
        return value >= bound
    if op == "gt":
        return value > bound
    if op == "lte":
        return value <= bound
    if op == "lt":
        return value < bound
    raise ValueError(f"unknown comparison {op!r}")
