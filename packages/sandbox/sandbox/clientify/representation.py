"""The contact as the API shows it: the detail and list-item shapes of §3, custom fields and
their definitions, rendered from the stored document for one request's base URL and switches.
"""

from __future__ import annotations

from typing import Any

from sandbox.clientify.storage import Store
from sandbox.clientify.timeutil import render

__all__ = ["Renderer"]


class Renderer:
    """Builds the detail and list-item shapes of §3 for one request (base URL, switches)."""

    def __init__(self, store: Store, switches: dict[str, Any], base: str) -> None:
        self.store = store
        self.switches = switches
        self.base = base  # e.g. "http://127.0.0.1:8766/v1/"
        self._fields: dict[str, dict[str, Any]] | None = None

    def contact_url(self, contact_id: int) -> str:
        return f"{self.base}contacts/{contact_id}/"

    def custom_fields(self, doc: dict[str, Any]) -> list[dict[str, Any]]:
        shape = self.switches["custom_fields_shape"]  # §3: extra keys vary
        out = []
        for item in doc.get("custom_fields", []):
            if shape == "plain":
                out.append({"field": item["field"], "value": item["value"]})
            elif shape == "detail":
                if self._fields is None:
                    self._fields = {
                        f["name"]: f for f in self.store.custom_fields() if f["model"] == "contacts"
                    }
                definition = self._fields.get(item["field"])
                detail = (
                    {
                        "id": definition["id"],
                        "name": definition["name"],
                        "field_type": definition["field_type"],
                    }
                    if definition
                    else None
                )
                out.append({"field": item["field"], "value": item["value"], "field_detail": detail})
            else:
                out.append({"id": item["id"], "field": item["field"], "value": item["value"]})
        return out

    def _company(self, doc: dict[str, Any], names: dict[int, str]) -> tuple[Any, Any, Any]:
        company_id = doc.get("company_id")
        if company_id is None:
            return None, None, None
        url = f"{self.base}companies/{company_id}/"
        name = names.get(company_id, "")
        return url, name, {"url": url, "id": company_id, "name": name}

    def detail(self, doc: dict[str, Any], names: dict[int, str] | None = None) -> dict[str, Any]:
        if names is None:
            names = self.store.company_names([doc.get("company_id")])
        company, company_name, company_details = self._company(doc, names)
        return {
            "url": self.contact_url(doc["id"]),
            "id": doc["id"],
            "owner": doc["owner"],
            "owner_id": doc["owner_id"],
            "owner_name": doc["owner_name"],
            "first_name": doc["first_name"],
            "last_name": doc["last_name"],
            "status": doc["status"],
            "title": doc["title"],
            "company": company,
            "company_name": company_name,
            "company_details": company_details,
            "contact_type": doc["contact_type"],
            "contact_source": doc["contact_source"],
            "emails": [dict(e) for e in doc["emails"]],
            "phones": [dict(p) for p in doc["phones"]],
            "addresses": [dict(a) for a in doc["addresses"]],
            "custom_fields": self.custom_fields(doc),
            "tags": [t["name"] for t in doc["tags"]],
            "websites": [dict(w) for w in doc["websites"]],
            "description": doc["description"],
            "remarks": doc["remarks"],
            "summary": doc["summary"],
            "taxpayer_identification_number": doc["taxpayer_identification_number"],
            "country": doc["country"],
            "created": render(doc["_created_us"]),
            "modified": render(doc["_modified_us"]),
            "last_contact": None,
            "birthday": doc["birthday"],
            "gdpr_accept": doc["gdpr_accept"],
            "channel": doc["channel"],
            "picture_url": None,
            "other_companies": [],
            "deals": [],
            "related_tasks": [],
            "integrations": [],
            "unsubscribed": False,
            "lead_scoring": 0,
            "medium": doc["medium"],
            "linkedin_url": doc["linkedin_url"],
            "facebook_url": doc["facebook_url"],
            "twitter_url": doc["twitter_url"],
            "skype_username": doc["skype_username"],
            "google_id": None,
        }

    def list_item(self, doc: dict[str, Any], names: dict[int, str]) -> dict[str, Any]:
        """§3 list item: shorter than the detail (no country, description, websites...)."""
        company, company_name, _ = self._company(doc, names)
        item = {
            "url": self.contact_url(doc["id"]),
            "id": doc["id"],
            "owner": doc["owner"],
            "owner_name": doc["owner_name"],
            "first_name": doc["first_name"],
            "last_name": doc["last_name"],
            "status": doc["status"],
            "title": doc["title"],
            "company": company,
            "company_name": company_name,
            "taxpayer_identification_number": doc["taxpayer_identification_number"],
            "medium": doc["medium"],
            "channel": doc["channel"],
            "contact_source": doc["contact_source"],
            "emails": [dict(e) for e in doc["emails"]],
            "phones": [dict(p) for p in doc["phones"]],
            "addresses": [dict(a) for a in doc["addresses"]],
            "picture_url": None,
            "custom_fields": self.custom_fields(doc),
            "tags": [t["name"] for t in doc["tags"]],
            "created": render(doc["_created_us"]),
            "modified": render(doc["_modified_us"]),
            "last_contact": None,
            "birthday": doc["birthday"],
            "gdpr_accept": doc["gdpr_accept"],
            "gdpr_acceptance_date": None,
            "gdpr_revoke_date": None,
            "disclaimer": None,
        }
        if not self.switches["list_addresses"]:  # older accounts' list items (§3)
            del item["addresses"]
        return item

    def list_items(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        names = self.store.company_names(d.get("company_id") for d in docs)
        return [self.list_item(d, names) for d in docs]

    def custom_field_definition(self, field: dict[str, Any], company: str) -> dict[str, Any]:
        """§5 shape; the contact label is localised (switch `content_type_label`)."""
        if field["model"] == "contacts":
            label = self.switches["content_type_label"]
        else:
            label = field.get("label") or f"{field['model']} | {field['model'].rstrip('s')}"
        field_type = field["field_type"]
        return {
            "url": f"{self.base}custom-fields/{field['id']}/",
            "id": field["id"],
            "user_company": company,
            "content_type": label,
            "name": field["name"],
            "help_text": field.get("help_text", ""),
            "field_type": field_type,
            "field_type_display": {1: "Dropdown", 3: "Text"}.get(field_type, "Other"),
            "default_value": field.get("default_value", ""),
            "dropdown_choices": field.get("dropdown_choices", []),
            "visible": field.get("visible", False),
        }
