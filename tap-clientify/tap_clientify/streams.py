"""The `contacts` stream."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from clientify_api import (
    ClientifyNotFoundError,
    addresses_known,
    custom_field_text,
    parse_api_datetime,
    to_utc_iso,
)
from singer_sdk import typing as th
from singer_sdk.helpers.types import Context
from typing_extensions import override

from tap_clientify import window
from tap_clientify.client import ClientifyStream
from tap_clientify.window import BOOKMARK_OVERLAP, parse_config_datetime

__all__ = ["BOOKMARK_OVERLAP", "CONTACT_SCHEMA", "ContactsStream"]

_ID = th.IntegerType
_TEXT = th.StringType

EMAIL = th.ObjectType(
    th.Property("id", _ID),
    th.Property("type", _ID, description="1 Work, 2 Personal, 3 Other, 4 Main"),
    th.Property("email", _TEXT),
    additional_properties=True,
)
PHONE = th.ObjectType(
    th.Property("id", _ID),
    th.Property("type", _ID, description="1 Main, 2 Mobile, 3 Work, 4 Home, 5 Fax, 6 Other"),
    th.Property("phone", _TEXT, description="verbatim, never normalized by Clientify"),
    th.Property("unsubscribed", th.BooleanType),
    additional_properties=True,
)
ADDRESS = th.ObjectType(
    th.Property("id", _ID),
    th.Property("type", _ID, description="1 Work, 2 Home, 3 Billing, 4 Other, 5 Main"),
    th.Property("street", _TEXT),
    th.Property("city", _TEXT),
    th.Property("state", _TEXT),
    th.Property("country", _TEXT, description="free text (Spain, España), not ISO"),
    th.Property("postal_code", _TEXT),
    additional_properties=True,
)
CUSTOM_FIELD = th.ObjectType(
    th.Property("id", _ID),
    th.Property("field", _TEXT, description="the definition's name"),
    th.Property(
        "value",
        # Text fields give a string, dropdowns may give a list; null when unset.
        th.CustomType({"type": ["string", "array", "null"], "items": {"type": ["string"]}}),
    ),
    th.Property("field_detail", th.ObjectType(additional_properties=True)),
    additional_properties=True,
)

CONTACT_SCHEMA = th.PropertiesList(
    th.Property("id", _ID, required=True),
    th.Property("url", _TEXT),
    th.Property("owner", _TEXT),
    th.Property("owner_name", _TEXT),
    th.Property("first_name", _TEXT),
    th.Property("last_name", _TEXT),
    th.Property("status", _TEXT),
    th.Property("title", _TEXT),
    th.Property("company", _TEXT, description="company URL (read); null when none"),
    th.Property("company_name", _TEXT),
    th.Property("taxpayer_identification_number", _TEXT, description="NIF/CIF; '' when empty"),
    th.Property("medium", _TEXT),
    th.Property("channel", _TEXT),
    th.Property(
        "contact_source",
        th.ObjectType(th.Property("name", _TEXT), additional_properties=True),
        description="{name} or null (a plain string is wrapped as {name})",
    ),
    th.Property("emails", th.ArrayType(EMAIL)),
    th.Property("phones", th.ArrayType(PHONE)),
    th.Property("addresses", th.ArrayType(ADDRESS), description="missing in older accounts"),
    th.Property("custom_fields", th.ArrayType(CUSTOM_FIELD)),
    th.Property("tags", th.ArrayType(_TEXT)),
    th.Property("picture_url", _TEXT),
    th.Property("created", th.DateTimeType, description="UTC"),
    th.Property("modified", th.DateTimeType, description="UTC; the replication key"),
    th.Property("last_contact", _TEXT),
    th.Property("birthday", _TEXT, description="YYYY-MM-DD"),
    th.Property("gdpr_accept", th.BooleanType),
    th.Property("gdpr_acceptance_date", _TEXT),
    th.Property("gdpr_revoke_date", _TEXT),
    th.Property("disclaimer", th.CustomType({"type": ["boolean", "string", "null"]})),
    th.Property(
        "factusol_id",
        _TEXT,
        description="value of the custom field named by link_field (null when unset)",
    ),
).to_dict()


class ContactsStream(ClientifyStream):
    """Clientify contacts in the API's list-item shape, plus `factusol_id`."""

    name = "contacts"
    primary_keys = ("id",)
    replication_key = "modified"
    # The API's order is unknown: unsorted, so the SDK keeps the max `modified` in progress
    # markers and caps the final bookmark at the signpost (the time this run started).
    is_sorted = False
    schema = CONTACT_SCHEMA

    def window_start(self, context: Context | None) -> datetime | None:
        """Earliest `modified` to read, or None in full mode (``window.window_start``: the
        bookmark minus BOOKMARK_OVERLAP, else start_date, else the last lookback_hours)."""
        return window.window_start(self.config, self.get_context_state(context), datetime.now(UTC))

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        start = self.window_start(context)
        if start is None:
            self.logger.info("contacts: full read of every contact")
        else:
            self.logger.info("contacts: reading contacts modified since %s", to_utc_iso(start))
        count = completed = 0
        for contact in self.api.iter_contacts(modified_gte=start, on_page=self.log_progress):
            count += 1
            if not addresses_known(contact):
                # older accounts' list items lack `addresses`: unknown, not empty (§3)
                contact, read = self._with_addresses(contact)
                completed += read
            yield contact
        if completed:
            self.logger.info("contacts: addresses read one by one for %d contacts", completed)
        self.logger.info("contacts: %d records read; API calls %s", count, dict(self.api.calls))
        if start is not None and count == 0:
            self._advance_empty_bookmark(context)

    def _with_addresses(self, contact: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """The contact with its addresses, and 1 when they were read (0: it vanished since
        the page was read, and is emitted without them, i.e. unknown)."""
        try:
            return self.api.complete_addresses(contact), 1
        except ClientifyNotFoundError:
            self.logger.warning(
                "contact %s: deleted while being read; emitted without addresses",
                contact.get("id"),
            )
            return contact, 0

    def _advance_empty_bookmark(self, context: Context | None) -> None:
        # With no records the SDK leaves the bookmark where it was (or absent): a first run
        # that finds nothing would make the next run fall back to lookback_hours and skip the
        # time in between. Nothing changed up to this run's start, so bookmark that.
        signpost = self.get_replication_key_signpost(context)
        if not isinstance(signpost, datetime):
            return
        state = self.get_context_state(context)
        previous = state.get("replication_key_value")
        value = to_utc_iso(signpost)
        if previous and state.get("replication_key") == self.replication_key:
            value = max(value, to_utc_iso(parse_config_datetime(str(previous), "the bookmark")))
        state["replication_key"] = self.replication_key
        state["replication_key_value"] = value

    @override
    def post_process(
        self, row: dict[str, Any], context: Context | None = None
    ) -> dict[str, Any] | None:
        record = dict(row)
        for key in ("created", "modified"):
            if key in record:
                parsed = parse_api_datetime(record[key])
                if parsed is None and record[key] not in (None, ""):
                    self.logger.warning(
                        "contact %s: unparseable %s, emitted as null", record.get("id"), key
                    )
                # UTC with microseconds: bookmarks compare as strings in the SDK.
                record[key] = to_utc_iso(parsed) if parsed else None
        source = record.get("contact_source")
        if isinstance(source, str):  # webhooks and some accounts send a plain name
            record["contact_source"] = {"name": source} if source else None
        company = record.get("company")
        if isinstance(company, Mapping):
            record["company"] = company.get("url") or company.get("name")
        tags = record.get("tags")
        if isinstance(tags, list):
            record["tags"] = [
                t.get("name") if isinstance(t, Mapping) else t
                for t in tags
                if isinstance(t, (str, Mapping))
            ]
        fields = record.get("custom_fields")
        if isinstance(fields, list):
            record["custom_fields"] = [
                _clean_custom_field(f) for f in fields if isinstance(f, Mapping)
            ]
        record["factusol_id"] = custom_field_text(
            record, self.config.get("link_field") or "factusol_id"
        )
        return record


def _clean_custom_field(entry: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(entry)
    value = out.get("value")
    # The schema says string, list of strings or null: numbers/booleans become text.
    if isinstance(value, list):
        out["value"] = [v if isinstance(v, str) else str(v) for v in value if v is not None]
    elif value is not None and not isinstance(value, str):
        out["value"] = str(value)
    return out
