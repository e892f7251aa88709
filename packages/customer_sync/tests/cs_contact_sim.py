"""A tiny pure simulation of the Clientify contact API, enough to apply ContactChanges."""

from __future__ import annotations

import copy
import itertools
from typing import Any

from customer_sync import (
    AddAddress,
    AddEmail,
    AddPhone,
    AddTag,
    ContactChanges,
    DeleteAddress,
    DeleteEmail,
    DeletePhone,
)

_ids = itertools.count(1000)
_ADDRESS_KEYS = ("street", "city", "state", "country", "postal_code")


def _address(item: dict[str, Any]) -> dict[str, Any]:
    # the server answers every key; a missing one is stored empty
    return {"id": next(_ids), "type": item.get("type", 5)} | {
        k: item.get(k, "") for k in _ADDRESS_KEYS
    }


def _company(contact: dict[str, Any], name: str) -> None:
    contact["company"] = f"https://api.clientify.net/v1/companies/{abs(hash(name)) % 10**6}/"
    contact["company_name"] = name


def apply_contact_changes(
    contact: dict[str, Any] | None, changes: ContactChanges
) -> dict[str, Any]:
    """The contact (list-item shape) after the API applied ``changes``."""
    if changes.create_body is not None:
        body = changes.create_body
        for key in ("emails", "phones", "tags"):
            for item in body.get(key, []):
                value = item if isinstance(item, str) else item.get(key[:-1])
                assert value, f"blank string in {key}"
        new: dict[str, Any] = {
            "id": next(_ids),
            "first_name": body.get("first_name", ""),
            "last_name": body.get("last_name", ""),
            "company": None,
            "company_name": "",
            "taxpayer_identification_number": body.get("taxpayer_identification_number", ""),
            "emails": [{"id": next(_ids), **e} for e in body.get("emails", [])],
            "phones": [
                {"id": next(_ids), "unsubscribed": False, **p} for p in body.get("phones", [])
            ],
            "addresses": [_address(a) for a in body.get("addresses", [])],
            "custom_fields": [dict(cf) for cf in body.get("custom_fields", [])],
            "tags": list(body.get("tags", [])),
        }
        if body.get("company"):
            _company(new, body["company"])
        return new
    assert contact is not None
    result = copy.deepcopy(contact)
    for key, value in changes.update_body.items():
        if key == "custom_fields":
            fields = {cf["field"]: cf for cf in result.get("custom_fields", [])}
            for cf in value:
                assert cf["value"] not in (None, "")
                fields[cf["field"]] = dict(cf)
            result["custom_fields"] = list(fields.values())
        elif key == "company":
            _company(result, value)
        else:
            result[key] = value
    for op in changes.operations:
        if isinstance(op, AddEmail):
            result["emails"].append({"id": next(_ids), "type": op.type, "email": op.email})
        elif isinstance(op, DeleteEmail):
            result["emails"] = [e for e in result["emails"] if e["id"] != op.email_id]
        elif isinstance(op, AddPhone):
            result["phones"].append({"id": next(_ids), "type": op.type, "phone": op.phone})
        elif isinstance(op, DeletePhone):
            result["phones"] = [p for p in result["phones"] if p["id"] != op.phone_id]
        elif isinstance(op, AddAddress):
            result["addresses"].append(_address(op.address))
        elif isinstance(op, DeleteAddress):
            result["addresses"] = [a for a in result["addresses"] if a["id"] != op.address_id]
        elif isinstance(op, AddTag):
            result["tags"].append(op.name)
        else:  # pragma: no cover
            raise AssertionError(op)
    return result
