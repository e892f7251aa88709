"""Switches: one per INFERRED point of the reference (clientify-api.md §10), defaults as given."""

from __future__ import annotations

from typing import Any

DEFAULT_SWITCHES: dict[str, Any] = {
    # §2 default page size unknown; max 100 confirmed, above it INFERRED clamped.
    "default_page_size": 20,
    "page_size_above_max": "clamp",  # clamp | 400
    # §2 order unknown (INFERRED newest first).
    "order": "-id",  # id | -id | created | -created | modified | -modified
    # §2 unknown/unsupported query parameters: 200 with the whole account (CONFIRMED) or a 400.
    "unknown_filter": "ignore",  # ignore | 400
    # §2/§5 `cf_<name>=<value>` documented 2nd-hand, never seen working: off = ignored.
    "cf_filter": False,
    # §2 exactness of email/phone/tag filters INFERRED partial.
    "filter_match": "partial",  # partial | exact
    # §2 naive date filter values INFERRED Europe/Madrid.
    "naive_filter_tz": "Europe/Madrid",
    # §3 older accounts' list items lacked `addresses`.
    "list_addresses": True,
    # §3 custom_fields[] on read: extra keys vary.
    "custom_fields_shape": "id",  # id {id,field,value} | plain {field,value} | detail
    # §3 custom_fields[] on write: INFERRED merge by name, fields left out kept.
    "custom_fields_on_update": "merge",  # merge | replace
    # §3 empty custom field value.
    "empty_custom_value": "reject",  # reject | ignore | store
    # §5 a value for a field with no definition.
    "unknown_custom_field": "reject",  # reject | ignore | autocreate
    # §5 localised content_type label of contact field definitions.
    "content_type_label": "contacts | contact",
    # §5 creating a definition: body unknown; 403 when the account may not.
    "custom_field_create": "accept",  # accept | reject
    # §4 flat email/phone on PUT when the contact already has one.
    "flat_on_update": "append",  # append | replace_main
    # §4 emails/phones/addresses lists in PUT.
    "lists_on_update": "append",  # append | replace
    # §3 "modified moves on every write": sub-resource writes unknown (sandbox: yes).
    "subresource_moves_modified": True,
    # §3 409 on a duplicate NIF reported for v2 only.
    "duplicate_tin_on_create": "allow",  # allow | 409
    # §3 unknown body keys INFERRED ignored.
    "unknown_body_keys": "ignore",  # ignore | 400
}

CHOICES: dict[str, tuple[Any, ...]] = {
    "page_size_above_max": ("clamp", "400"),
    "order": ("id", "-id", "created", "-created", "modified", "-modified"),
    "unknown_filter": ("ignore", "400"),
    "cf_filter": (True, False),
    "filter_match": ("partial", "exact"),
    "list_addresses": (True, False),
    "custom_fields_shape": ("id", "plain", "detail"),
    "custom_fields_on_update": ("merge", "replace"),
    "empty_custom_value": ("reject", "ignore", "store"),
    "unknown_custom_field": ("reject", "ignore", "autocreate"),
    "custom_field_create": ("accept", "reject"),
    "flat_on_update": ("append", "replace_main"),
    "lists_on_update": ("append", "replace"),
    "subresource_moves_modified": (True, False),
    "duplicate_tin_on_create": ("allow", "409"),
    "unknown_body_keys": ("ignore", "400"),
}


def validate_switches(values: dict[str, Any]) -> list[str]:
    """Problems with a partial switch map (unknown names, values outside the choices)."""
    problems = []
    for key, value in values.items():
        if key not in DEFAULT_SWITCHES:
            problems.append(f"unknown switch {key!r}")
        elif key in CHOICES and value not in CHOICES[key]:
            problems.append(f"switch {key!r} must be one of {list(CHOICES[key])}, not {value!r}")
        elif key == "default_page_size" and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            problems.append("switch 'default_page_size' must be a positive integer")
        elif key in ("naive_filter_tz", "content_type_label") and not isinstance(value, str):
            problems.append(f"switch {key!r} must be a string")
    return problems
