"""Custom-field definitions and values, and the account's settings (country, time zone)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clientify_api.contacts import custom_field_text, is_contact_field_definition
from clientify_api.errors import (
    ClientifyAuthError,
    ClientifyCustomFieldError,
    ClientifyNotFoundError,
    ClientifyValidationError,
    format_messages,
)
from clientify_api.resources import ContactResources

logger = logging.getLogger("clientify_api.client")

TEXT_FIELD_TYPE = 3


class AccountResources(ContactResources):
    """``/custom-fields/`` and ``/settings/my-account/``."""

    # ------------------------------------------------------------------ custom fields

    def list_custom_fields(self) -> list[dict[str, Any]]:
        """Every custom-field definition of the account (all pages, all content types)."""
        return list(self._iter_results("/custom-fields/", kind="read"))

    def list_contact_custom_fields(self) -> list[dict[str, Any]]:
        """Definitions on contacts (content_type ``contact``/``contacts``/``contacto``…)."""
        return [d for d in self.list_custom_fields() if is_contact_field_definition(d)]

    def ensure_custom_field(self, name: str = "factusol_id") -> dict[str, Any]:
        """The contact custom-field definition ``name``, created as a text field when missing.

        Creating a definition through the API is undocumented: on a 4xx a
        :class:`ClientifyCustomFieldError` tells the user to create it by hand.
        """
        name = name.strip()
        if not name:
            raise ValueError("custom field name is empty")
        with self._cf_lock:  # several writer threads must not create it twice
            if name in self._cf_definitions:
                return self._cf_definitions[name]
            definition = self._find_definition(name)
            if definition is None:
                definition = self._create_definition(name)
            self._cf_definitions[name] = definition
            return definition

    def _find_definition(self, name: str) -> dict[str, Any] | None:
        definitions = self.list_contact_custom_fields()
        for definition in definitions:
            if str(definition.get("name", "")).strip() == name:
                self._warn_if_not_text(definition)
                return definition
        for definition in definitions:
            if str(definition.get("name", "")).strip().casefold() == name.casefold():
                logger.warning(
                    "custom field %r not found; using %r (same name, other case)",
                    name,
                    definition.get("name"),
                )
                return definition
        return None

    @staticmethod
    def _warn_if_not_text(definition: Mapping[str, Any]) -> None:
        field_type = definition.get("field_type")
        if field_type not in (TEXT_FIELD_TYPE, str(TEXT_FIELD_TYPE), "text", None):
            logger.warning(
                "custom field %r has field_type %r, not text (3): values may be rejected",
                definition.get("name"),
                field_type,
            )

    def _create_definition(self, name: str) -> dict[str, Any]:
        body = {"name": name, "content_type": "contacts", "field_type": TEXT_FIELD_TYPE}
        manual = (
            f"Create a text custom field named '{name}' on contacts by hand in Clientify "
            "(Settings > Custom fields), then run again."
        )
        try:
            created = self._create(
                "/custom-fields/", body, recheck=lambda: self._find_definition(name)
            )
        except (ClientifyValidationError, ClientifyNotFoundError, ClientifyAuthError) as exc:
            # A 401 would have failed the listing just before; a 403 here means this key may
            # read but not define fields, which the user can fix by hand.
            if isinstance(exc, ClientifyAuthError) and exc.status != 403:
                raise
            reason = (
                format_messages(exc.messages)
                if isinstance(exc, ClientifyValidationError)
                else str(exc)
            )
            raise ClientifyCustomFieldError(
                f"Could not create the contact custom field '{name}' "
                f"(POST /custom-fields/ -> {exc.status}: {reason}). {manual}",
                method="POST",
                path=exc.path,
                status=exc.status,
            ) from None
        logger.info("created the contact custom field %r (text)", name)
        if not isinstance(created, dict) or not created.get("name"):
            created = {"name": name, "content_type": "contacts", "field_type": TEXT_FIELD_TYPE}
        return created

    def set_custom_field(self, contact_id: int | str, name: str, value: object) -> dict[str, Any]:
        """Write one custom-field value (``PUT custom_fields=[{field, value}]``, merged by name).

        The API rejects null and (probably) empty values, so those raise ValueError here.
        """
        text = str(value).strip() if value is not None else ""
        if not text:
            raise ValueError("custom field values must be non-empty (the API rejects null/empty)")
        return self.update_contact(contact_id, {"custom_fields": [{"field": name, "value": text}]})

    def get_custom_field(self, contact: Mapping[str, Any] | int | str, name: str) -> str | None:
        """A custom field's text value, from a contact dict or (given an id) its detail."""
        record = contact if isinstance(contact, Mapping) else self.get_contact(contact)
        return custom_field_text(record, name)

    # ------------------------------------------------------------------ account

    def my_account(self) -> dict[str, Any] | None:
        """``results[0]`` of ``GET /settings/my-account/`` (also a credentials check)."""
        data = self._request("GET", self._url("/settings/my-account/"), kind="read")
        results = data.get("results") if isinstance(data, dict) else None
        if isinstance(results, list) and results and isinstance(results[0], dict):
            first: dict[str, Any] = results[0]
            return first
        return None

    def account_country(self) -> str | None:
        """The account's ISO alpha-2 country (what phones are normalized by), or None.

        None when the endpoint has no usable answer: the caller falls back (users' country,
        then its ``country`` setting). Auth errors propagate.
        """
        if self._country_known:
            return self._country
        account = self._account_settings()
        country = account.get("country") if account else None
        value = country.strip().upper() if isinstance(country, str) else ""
        self._country = value if len(value) == 2 and value.isalpha() else None
        self._country_known = True
        return self._country

    def account_time_zone(self) -> str | None:
        """The account's IANA time zone (``results[0].time_zone``, e.g. "Europe/Madrid"), or
        None when the answer has none or names no zone this machine knows."""
        account = self._account_settings()
        value = account.get("time_zone") if account else None
        if not isinstance(value, str) or not value.strip():
            return None
        try:
            return ZoneInfo(value.strip()).key
        except (ZoneInfoNotFoundError, ValueError):
            logger.warning("account time zone %r is not an IANA zone; ignored", value[:40])
            return None

    def _account_settings(self) -> dict[str, Any] | None:
        """``my_account()`` read once per client; None when it has no usable answer."""
        if self._account_known:
            return self._account
        try:
            self._account = self.my_account()
        except (ClientifyNotFoundError, ClientifyValidationError) as exc:
            logger.warning("account settings unavailable: %s", exc)
            self._account = None
        self._account_known = True
        return self._account
