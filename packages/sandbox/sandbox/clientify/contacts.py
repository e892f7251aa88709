"""The contact: validation of writes (DRF-style 400 maps) and its stored document.

The three read shapes of §3 are built by `Renderer` (in `representation`, re-exported here).

Internal document (stored as JSON): the detail's writable fields, with `tags` kept as
`[{"id", "name"}]` (the tags sub-resource deletes by id), the company as `company_id`, and custom
field values as `[{"id", "field", "value"}]`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator

from sandbox.clientify.representation import Renderer as Renderer  # importable from here
from sandbox.clientify.storage import Store

STATUSES = (
    "visitor",
    "not-qualified-lead",
    "cold-lead",
    "warm-lead",
    "hot-lead",
    "in-deal",
    "lost-lead",
    "client",
    "lost-client",
    "other",
)
EMAIL_TYPES = (1, 2, 3, 4)  # 1 Work, 2 Personal, 3 Other, 4 Main (§3)
PHONE_TYPES = (1, 2, 3, 4, 5, 6)  # 1 Main, 2 Mobile, 3 Work, 4 Home, 5 Fax, 6 Other
ADDRESS_TYPES = (1, 2, 3, 4, 5)  # 1 Work, 2 Home, 3 Billing, 4 Other, 5 Main
WEBSITE_TYPES = (1, 2, 3, 4)
MAIN_EMAIL, MAIN_PHONE = 4, 1  # flat `email` / `phone` land with these types (§3)

TEXT_FIELDS = (
    "first_name",
    "last_name",
    "title",
    "description",
    "remarks",
    "summary",
    "taxpayer_identification_number",
    "country",
    "medium",
    "linkedin_url",
    "facebook_url",
    "twitter_url",
    "skype_username",
)
ADDRESS_TEXT = ("street", "city", "state", "country", "postal_code")
WRITABLE = {
    *TEXT_FIELDS,
    "email",
    "phone",
    "emails",
    "phones",
    "addresses",
    "websites",
    "custom_fields",
    "tags",
    "status",
    "company",
    "contact_type",
    "contact_source",
    "birthday",
    "owner",
    "gdpr_accept",
}
# Keys of the detail that a client may echo back: read-only, silently ignored like DRF does.
READ_ONLY = {
    "url",
    "id",
    "owner_id",
    "owner_name",
    "company_details",
    "company_name",
    "created",
    "modified",
    "last_contact",
    "channel",
    "picture_url",
    "other_companies",
    "deals",
    "related_tasks",
    "integrations",
    "unsubscribed",
    "lead_scoring",
    "gdpr_acceptance_date",
    "gdpr_revoke_date",
    "disclaimer",
    "google_id",
}

REQUIRED = "This field is required."
NULL = "This field may not be null."
BLANK = "This field may not be blank."
NOT_STRING = "Not a valid string."
BAD_EMAIL = "Enter a valid email address."
BAD_DATE = "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
# The real service is Django REST Framework: its EmailField runs Django's EmailValidator and
# DRF's CharField trims the text first; the model field holds 254 characters. The reference
# also reports refusals of local parts over 64 characters (RFC 5321).
_DJANGO_EMAIL = EmailValidator()


def valid_email(text: str) -> bool:
    if len(text) > 254 or len(text.rpartition("@")[0]) > 64:
        return False
    try:
        _DJANGO_EMAIL(text)
    except DjangoValidationError:
        return False
    return True


class ValidationError(Exception):
    """400 with a DRF field map body."""

    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__("validation error")
        self.errors = errors


def not_choice(value: Any) -> str:
    return f'"{value}" is not a valid choice.'


def not_list(value: Any) -> str:
    return f'Expected a list of items but got type "{type(value).__name__}".'


def not_dict(value: Any) -> str:
    return f"Invalid data. Expected a dictionary, but got {type(value).__name__}."


def _text(value: Any, *, allow_blank: bool = True) -> tuple[str | None, str | None]:
    """DRF CharField: returns (value, error). Numbers become text; bool/list/dict do not."""
    if value is None:
        return None, NULL
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None, NOT_STRING
    text = str(value).strip()
    if not text and not allow_blank:
        return None, BLANK
    return text, None


def _choice(value: Any, choices: tuple[int, ...]) -> tuple[int | None, str | None]:
    if isinstance(value, bool):
        return None, not_choice(value)
    for choice in choices:
        if str(value) == str(choice):
            return choice, None
    return None, not_choice(value)


# -- sub-resource items (shared by the contact body and the sub-resource routes) --------------
def clean_email(item: Any, default_type: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:
    if not isinstance(item, dict):
        return {}, {"non_field_errors": [not_dict(item)]}
    errors: dict[str, Any] = {}
    out: dict[str, Any] = {}
    if "email" not in item:
        errors["email"] = [REQUIRED]
    else:
        text, err = _text(item["email"], allow_blank=False)
        if err is None and text is not None and not valid_email(text):
            err = BAD_EMAIL
        if err:
            errors["email"] = [err]
        out["email"] = text
    out["type"], err = _choice(item.get("type", default_type), EMAIL_TYPES)
    if err:
        errors["type"] = [err]
    return {"type": out["type"], "email": out.get("email")}, errors  # §3 key order


def clean_phone(item: Any, default_type: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:
    if not isinstance(item, dict):
        return {}, {"non_field_errors": [not_dict(item)]}
    errors: dict[str, Any] = {}
    out: dict[str, Any] = {}
    phone = item.get("phone")
    if "phone" not in item:
        errors["phone"] = [REQUIRED]
    elif phone is None:
        errors["phone"] = [NULL]
    elif not isinstance(phone, str | int) or isinstance(phone, bool):
        errors["phone"] = [NOT_STRING]
    elif not str(phone).strip():
        errors["phone"] = [BLANK]
    else:
        out["phone"] = str(phone)  # verbatim: the server never normalizes phones (§3)
    out["type"], err = _choice(item.get("type", default_type), PHONE_TYPES)
    if err:
        errors["type"] = [err]
    out["unsubscribed"] = bool(item.get("unsubscribed", False))
    return {
        "type": out["type"],
        "phone": out.get("phone"),
        "unsubscribed": out["unsubscribed"],
    }, errors


def clean_address(item: Any, default_type: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:
    if not isinstance(item, dict):
        return {}, {"non_field_errors": [not_dict(item)]}
    errors: dict[str, Any] = {}
    out: dict[str, Any] = {}
    out["type"], err = _choice(item.get("type", default_type), ADDRESS_TYPES)
    if err:
        errors["type"] = [err]
    for key in ADDRESS_TEXT:
        value = item.get(key, "")
        text, err = _text("" if value is None else value)
        if err:
            errors[key] = [err]
        out[key] = text or ""  # free text, "Spain"/"España" as typed (§3)
    return out, errors


def clean_website(item: Any, default_type: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:
    if isinstance(item, str):
        item = {"website": item}
    if not isinstance(item, dict):
        return {}, {"non_field_errors": [not_dict(item)]}
    out: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    text, err = _text(item.get("website"), allow_blank=False)
    if err:
        errors["website"] = [err]
    out["website"] = text
    out["type"], err = _choice(item.get("type", default_type), WEBSITE_TYPES)
    if err:
        errors["type"] = [err]
    return {"type": out["type"], "website": out["website"]}, errors


def clean_tag_name(value: Any) -> tuple[str | None, str | None]:
    return _text(value, allow_blank=False)


Cleaner = Callable[[Any, int], tuple[dict[str, Any], dict[str, Any]]]
LISTS: dict[str, tuple[str, Cleaner]] = {
    "emails": ("email", clean_email),
    "phones": ("phone", clean_phone),
    "addresses": ("address", clean_address),
    "websites": ("website", clean_website),
}


# -- writes ----------------------------------------------------------------------------------
class ContactWriter:
    """Validate a create/update body completely, then apply it to a document.

    mode: "create" | "update" (API, switches apply) | "admin_create" | "admin_update" (a CRM user
    in the web app: lists replace, flat values replace the main one, custom field definitions
    appear on demand, an empty custom value clears the field).
    """

    def __init__(self, store: Store, switches: dict[str, Any], mode: str) -> None:
        self.store = store
        self.switches = switches
        self.mode = mode
        self.admin = mode.startswith("admin")
        self.creating = mode.endswith("create")

    def apply(self, doc: dict[str, Any], body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ValidationError({"non_field_errors": [not_dict(body)]})
        errors: dict[str, Any] = {}
        staged: dict[str, Any] = {}
        if self.switches["unknown_body_keys"] == "400" and not self.admin:
            for key in body:
                if key not in WRITABLE and key not in READ_ONLY:
                    errors[key] = ["Unknown field."]
        for key in TEXT_FIELDS:
            if key in body:
                text, err = _text(body[key])
                if err:
                    errors[key] = [err]
                staged[key] = text
        if "status" in body:
            if body["status"] in STATUSES:
                staged["status"] = body["status"]
            else:
                errors["status"] = [not_choice(body["status"])]
        for key in ("contact_type",):
            if key in body and body[key] is not None:
                text, err = _text(body[key])
                if err:
                    errors[key] = [err]
                staged[key] = text or None
            elif key in body:
                staged[key] = None
        if "contact_source" in body:
            source = body["contact_source"]
            if isinstance(source, dict):
                source = source.get("name")
            if source in (None, ""):
                staged["contact_source"] = None
            else:
                text, err = _text(source)
                if err:
                    errors["contact_source"] = [err]
                staged["contact_source"] = {"name": text}
        if "birthday" in body:
            value = body["birthday"]
            if value in (None, ""):
                staged["birthday"] = None
            else:
                try:
                    staged["birthday"] = dt.date.fromisoformat(str(value)).isoformat()
                    if len(str(value)) != 10:
                        raise ValueError(value)
                except ValueError:
                    errors["birthday"] = [BAD_DATE]
        if "gdpr_accept" in body:
            if isinstance(body["gdpr_accept"], bool):
                staged["gdpr_accept"] = body["gdpr_accept"]
            else:
                errors["gdpr_accept"] = ["Must be a valid boolean."]
        if "company" in body:
            value = body["company"]
            if value in (None, ""):
                staged["company"] = None
            else:
                text, err = _text(value)
                if err:
                    errors["company"] = [err]
                staged["company"] = text
        flat_cleaners: tuple[tuple[str, Cleaner, int], ...] = (
            ("email", clean_email, MAIN_EMAIL),
            ("phone", clean_phone, MAIN_PHONE),
        )
        for flat, flat_cleaner, main in flat_cleaners:
            if body.get(flat) not in (None, ""):  # an empty flat value means "none given"
                flat_item, flat_err = flat_cleaner({flat: body[flat], "type": main}, main)
                if flat_err:
                    errors[flat] = flat_err[flat]
                staged[flat] = flat_item
        for key, (_, cleaner) in LISTS.items():
            if key not in body:
                continue
            value = body[key]
            if not isinstance(value, list):
                errors[key] = [not_list(value)]
                continue
            items: list[dict[str, Any]] = []
            item_errors: list[dict[str, Any]] = []
            for raw in value:
                cleaned, item_err = cleaner(raw, 1)
                items.append(cleaned)
                item_errors.append(item_err)
            if any(item_errors):
                errors[key] = item_errors
            staged[key] = items
        if "tags" in body:
            value = body["tags"]
            if not isinstance(value, list):
                errors["tags"] = [not_list(value)]
            else:
                names, tag_errors = [], {}
                for index, raw in enumerate(value):
                    if isinstance(raw, dict):  # tolerate [{"name": ...}]
                        raw = raw.get("name")
                    name, err = clean_tag_name(raw)
                    if err:
                        tag_errors[str(index)] = [err]
                    names.append(name)
                if tag_errors:
                    errors["tags"] = tag_errors
                staged["tags"] = names
        if "custom_fields" in body:
            values, err_list = self._clean_custom_fields(body["custom_fields"])
            if err_list is not None:
                errors["custom_fields"] = err_list
            staged["custom_fields"] = values
        if errors:
            raise ValidationError(errors)
        if (
            self.mode == "create"
            and self.switches["duplicate_tin_on_create"] == "409"
            and staged.get("taxpayer_identification_number")
            and self.store.tin_exists(staged["taxpayer_identification_number"])
        ):
            raise DuplicateTinError()
        self._write(doc, staged)
        return doc

    def _clean_custom_fields(self, value: Any) -> tuple[list[tuple[str, Any]], Any]:
        """[(name, value)] to write (value None = clear), and errors (None when valid)."""
        if not isinstance(value, list):
            return [], [not_list(value)]
        out: list[tuple[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for raw in value:
            err: dict[str, Any] = {}
            errors.append(err)
            if not isinstance(raw, dict):
                err["non_field_errors"] = [not_dict(raw)]
                continue
            name, name_err = _text(raw.get("field"), allow_blank=False)
            if "field" not in raw:
                name_err = REQUIRED
            if name_err:
                err["field"] = [name_err]
            if "value" not in raw:
                err["value"] = [REQUIRED]
                continue
            val = raw["value"]
            if val is None:
                # §3: null values are rejected.
                err["value"] = [NULL]
                continue
            if isinstance(val, int | float) and not isinstance(val, bool):
                val = str(val)
            elif isinstance(val, str):
                val = val.strip()
            elif not isinstance(val, list):  # a dropdown value may be a list (§3)
                err["value"] = [NOT_STRING]
                continue
            if name_err:
                continue
            assert name is not None
            if val in ("", []):
                if self.admin:
                    out.append((name, None))
                    continue
                policy = self.switches["empty_custom_value"]  # §3 INFERRED
                if policy == "reject":
                    err["value"] = [BLANK]
                    continue
                if policy == "ignore":
                    continue
            if self.store.find_custom_field(name) is None:
                policy = "autocreate" if self.admin else self.switches["unknown_custom_field"]
                if policy == "reject":  # §5 INFERRED
                    err["field"] = [f'Custom field "{name}" does not exist.']
                    continue
                if policy == "ignore":
                    continue
            out.append((name, val))
        return out, (errors if any(errors) else None)

    def _write(self, doc: dict[str, Any], staged: dict[str, Any]) -> None:
        store = self.store
        for key in (*TEXT_FIELDS, "status", "contact_type", "contact_source", "birthday"):
            if key in staged:
                doc[key] = staged[key]
        if "gdpr_accept" in staged:
            doc["gdpr_accept"] = staged["gdpr_accept"]
        if "company" in staged:
            name = staged["company"]
            # §3: writing a company name links, or creates, a company as a side effect.
            doc["company_id"] = store.company_for_name(name) if name else None
        replace_lists = self.admin or self.switches["lists_on_update"] == "replace"
        for key, (kind, _) in LISTS.items():
            if key not in staged:
                continue
            items = [{"id": store.next_id(kind), **item} for item in staged[key]]
            if self.creating or not replace_lists:
                doc[key] = [*doc.get(key, []), *items]
            else:
                doc[key] = items
        replace_main = not self.creating and (
            self.admin or self.switches["flat_on_update"] == "replace_main"
        )
        for flat, key, kind, main in (
            ("email", "emails", "email", MAIN_EMAIL),
            ("phone", "phones", "phone", MAIN_PHONE),
        ):
            if flat not in staged:
                continue
            item = staged[flat]
            current = doc.setdefault(key, [])
            target = next((x for x in current if x.get("type") == main), None)
            if replace_main and target is not None:
                target[flat] = item[flat]
            else:
                current.append({"id": store.next_id(kind), **item})
        if "tags" in staged:  # tags in a PUT replace (§4)
            old = {t["name"]: t["id"] for t in doc.get("tags", [])}
            tags = []
            for name in dict.fromkeys(staged["tags"]):
                tags.append({"id": old.get(name) or store.next_id("tag"), "name": name})
            doc["tags"] = tags
        if "custom_fields" in staged:
            self._write_custom(doc, staged["custom_fields"])

    def _write_custom(self, doc: dict[str, Any], values: list[tuple[str, Any]]) -> None:
        store = self.store
        replace = (
            not self.admin
            and not self.creating
            and self.switches["custom_fields_on_update"] == "replace"
        )
        current: list[dict[str, Any]] = [] if replace else list(doc.get("custom_fields", []))
        for name, value in values:
            if store.find_custom_field(name) is None:
                store.add_custom_field("contacts", name)  # autocreate (switch or admin)
            existing = next((c for c in current if c["field"] == name), None)
            if value is None:
                current = [c for c in current if c["field"] != name]
            elif existing is not None:
                existing["value"] = value
            else:
                current.append({"id": store.next_id("custom_value"), "field": name, "value": value})
        doc["custom_fields"] = current


class DuplicateTinError(Exception):
    """409 when `duplicate_tin_on_create` is on."""


def new_document(owner: dict[str, Any]) -> dict[str, Any]:
    """An empty contact as the API creates it (defaults from the §3 detail example)."""
    return {
        "owner": owner["email"],
        "owner_id": owner["id"],
        "owner_name": owner["name"],
        "first_name": "",
        "last_name": "",
        "status": "cold-lead",
        "title": "",
        "company_id": None,
        "contact_type": None,
        "contact_source": None,
        "emails": [],
        "phones": [],
        "addresses": [],
        "custom_fields": [],
        "tags": [],
        "websites": [],
        "description": "",
        "remarks": "",
        "summary": "",
        "taxpayer_identification_number": "",
        "country": "",
        "birthday": None,
        "gdpr_accept": False,
        "channel": "integrations-api",
        "medium": "",
        "linkedin_url": "",
        "facebook_url": "",
        "twitter_url": "",
        "skype_username": "",
    }
