"""Contact endpoints: reads with client-side filter checks, writes, sub-resources.

Clientify answers 200 with the whole account to a filter it ignores, so every filter is also
checked here on every record. POSTs go through :meth:`Transport._create` (never resent blindly).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from clientify_api.contacts import (
    addresses_known,
    contact_emails,
    contact_phones,
    contact_tags,
    custom_field_matches,
    datetime_bound_matches,
    fold_email,
    phone_matches,
    query_matches,
)
from clientify_api.errors import ClientifyError, ClientifyNotFoundError
from clientify_api.timeutil import format_filter_datetime
from clientify_api.transport import Kind, PageInfo, Transport, object_id

logger = logging.getLogger("clientify_api.client")


class ContactResources(Transport):
    """``/contacts/`` and its sub-resources (``emails``, ``phones``, ``addresses``, ``tags``)."""

    # ------------------------------------------------------------------ contacts: reads

    def iter_contacts(
        self,
        *,
        modified_gte: datetime | None = None,
        modified_gt: datetime | None = None,
        modified_lte: datetime | None = None,
        modified_lt: datetime | None = None,
        created_gte: datetime | None = None,
        created_gt: datetime | None = None,
        created_lte: datetime | None = None,
        created_lt: datetime | None = None,
        email: str | None = None,
        phone: str | None = None,
        query: str | None = None,
        tag: str | None = None,
        on_page: Callable[[PageInfo], None] | None = None,
        read_ahead: int = 1,
        **filters: str,
    ) -> Iterator[dict[str, Any]]:
        """Every contact (list-item shape), optionally filtered, all pages (``read_ahead`` at a
        time once the first page says how many: see ``Transport._iter_pages``).

        Clientify silently ignores filters it does not support (200 with the whole account), so
        every filter is also checked here on every record and non-matching ones are dropped:
        dates exactly, ``email`` exactly (case-insensitive, any of ``emails[]``), ``phone`` by
        digits (a country prefix may differ), ``tag`` exactly, ``cf_<name>`` exactly, ``query``
        loosely (every word appears somewhere). Other ``**filters`` are sent as given and
        cannot be verified. Records without the date being filtered on are kept (unknown).
        """
        params: list[tuple[str, str]] = []
        checks: list[Callable[[dict[str, Any]], bool]] = []
        bounds = {
            ("modified", "gte"): modified_gte,
            ("modified", "gt"): modified_gt,
            ("modified", "lte"): modified_lte,
            ("modified", "lt"): modified_lt,
            ("created", "gte"): created_gte,
            ("created", "gt"): created_gt,
            ("created", "lte"): created_lte,
            ("created", "lt"): created_lt,
        }
        for (field, op), bound in bounds.items():
            if bound is None:
                continue
            params.append(
                (f"{field}[{op}]", format_filter_datetime(bound, round_up=op in ("lte", "lt")))
            )
            checks.append(
                lambda c, f=field, o=op, b=bound: datetime_bound_matches(c, f, o, b)  # type: ignore[misc]
            )
        lookup = False
        if email is not None:
            wanted_email = fold_email(email)
            params.append(("email", email.strip()))
            checks.append(lambda c: wanted_email in contact_emails(c))
            lookup = True
        if phone is not None:
            params.append(("phone", phone.strip()))
            checks.append(lambda c: any(phone_matches(p, phone) for p in contact_phones(c)))
            lookup = True
        if query is not None:
            params.append(("query", query.strip()))
            checks.append(lambda c: query_matches(c, query))
            lookup = True
        if tag is not None:
            wanted_tag = tag.strip().casefold()
            params.append(("tag", tag.strip()))
            checks.append(lambda c: wanted_tag in {t.casefold() for t in contact_tags(c)})
            lookup = True
        for key, value in filters.items():
            params.append((key, str(value)))
            if key.startswith("cf_") and len(key) > 3:
                checks.append(lambda c, n=key[3:], v=value: custom_field_matches(c, n, v))  # type: ignore[misc]
                lookup = True
            else:
                logger.debug("filter %s is sent but cannot be verified client-side", key)
        yield from self._filtered(
            "/contacts/",
            params,
            checks,
            kind="lookup" if lookup else "read",
            on_page=on_page,
            read_ahead=read_ahead,
        )

    def _filtered(
        self,
        path: str,
        params: list[tuple[str, str]],
        checks: list[Callable[[dict[str, Any]], bool]],
        *,
        kind: Kind,
        on_page: Callable[[PageInfo], None] | None = None,
        read_ahead: int = 1,
    ) -> Iterator[dict[str, Any]]:
        received = kept_total = 0
        pages = self._iter_pages(path, params, kind=kind, read_ahead=read_ahead)
        for number, page in enumerate(pages, start=1):
            items = [r for r in page["results"] if isinstance(r, dict)]
            kept = [r for r in items if all(check(r) for check in checks)]
            received += len(items)
            kept_total += len(kept)
            if on_page is not None:
                count = page.get("count")
                on_page(
                    PageInfo(
                        page=number,
                        results=len(items),
                        kept=len(kept),
                        total_kept=kept_total,
                        count=count if isinstance(count, int) else None,
                    )
                )
            yield from kept
        if received != kept_total:
            logger.info(
                "Clientify GET %s: dropped %d of %d records outside the filter "
                "(the server ignored or loosened it)",
                path,
                received - kept_total,
                received,
            )

    def get_contact(self, contact_id: int | str) -> dict[str, Any]:
        """The contact detail (``GET /contacts/{id}/``); ClientifyNotFoundError when absent."""
        result: dict[str, Any] = self._request(
            "GET", self._url(f"/contacts/{object_id(contact_id)}/"), kind="read"
        )
        return result

    def find_by_custom_field(
        self, name: str, value: object, *, scan_if_ignored: bool = True
    ) -> list[dict[str, Any]]:
        """Contacts whose custom field ``name`` equals ``value`` exactly.

        Sends ``cf_<name>=<value>`` (documented, never confirmed live) and checks the value on
        every result. When the server ignores that filter it answers with the whole account:
        the results are still correct, but it is a full scan, so it is logged once and
        :attr:`custom_field_filter_supported` turns False (use :class:`ContactIndex` then).
        With ``scan_if_ignored=False`` a :class:`ClientifyError` is raised instead of scanning.
        """
        wanted = str(value).strip() if value is not None else ""
        if not wanted:
            raise ValueError("find_by_custom_field needs a non-empty value")
        if self._cf_filter_supported is False and not scan_if_ignored:
            raise self._cf_ignored_error(name)
        found: list[dict[str, Any]] = []
        pages = self._iter_pages("/contacts/", [(f"cf_{name}", wanted)], kind="lookup")
        for number, page in enumerate(pages, start=1):
            items = [r for r in page["results"] if isinstance(r, dict)]
            matching = [r for r in items if custom_field_matches(r, name, wanted)]
            if number == 1:
                self._note_cf_filter(name, honoured=len(matching) == len(items))
                if self._cf_filter_supported is False and not scan_if_ignored:
                    raise self._cf_ignored_error(name)
            found.extend(matching)
        return found

    def _note_cf_filter(self, name: str, *, honoured: bool) -> None:
        with self._lock:
            previous = self._cf_filter_supported
            if honoured:
                if previous is None:
                    self._cf_filter_supported = True
                return
            self._cf_filter_supported = False
        if previous is not False:
            logger.warning(
                "Clientify ignored the filter cf_%s (it answered with non-matching contacts): "
                "each find_by_custom_field is now a verified full scan; use ContactIndex",
                name,
            )

    def _cf_ignored_error(self, name: str) -> ClientifyError:
        return ClientifyError(
            f"GET /contacts/?cf_{name}=: Clientify ignores custom-field filters on this account; "
            "look contacts up with ContactIndex instead",
            method="GET",
            path="/contacts/",
        )

    @property
    def custom_field_filter_supported(self) -> bool | None:
        """Whether ``cf_<name>=`` filtered on the server (None until first tried)."""
        return self._cf_filter_supported

    def create_contact(
        self, body: Mapping[str, Any], *, dedupe_field: str | None = "factusol_id"
    ) -> dict[str, Any]:
        """``POST /contacts/``; returns the created detail (keep its ``id`` at once).

        A repeated POST creates a second contact, so after a 5xx/timeout the client looks the
        contact up by ``dedupe_field`` (when the body sets that custom field) before resending;
        without it a :class:`ClientifyRetryError` with ``maybe_applied=True`` is raised.
        """
        recheck = after_resend = None
        link = self._custom_field_in_body(body, dedupe_field) if dedupe_field else None
        if dedupe_field and link:

            def recheck() -> dict[str, Any] | None:
                found = self.find_by_custom_field(dedupe_field, link)
                return found[0] if len(found) == 1 else None

            def after_resend(created: dict[str, Any]) -> dict[str, Any]:
                # The first POST may have landed after the recheck: keep the older contact,
                # delete the one the resend has just made (both carry this run's link).
                found = self.find_by_custom_field(dedupe_field, link)
                others = [c for c in found if c.get("id") != created.get("id")]
                if not others or created.get("id") is None:
                    return created
                logger.warning(
                    "Clientify POST /contacts/: the first attempt was applied late; deleting "
                    "the duplicate %s the resend created, keeping %s",
                    created.get("id"),
                    others[0].get("id"),
                )
                self.delete_contact(created["id"])
                return others[0]

        return self._create("/contacts/", body, recheck=recheck, after_resend=after_resend)

    @staticmethod
    def _custom_field_in_body(body: Mapping[str, Any], name: str) -> str | None:
        for entry in body.get("custom_fields") or []:
            if isinstance(entry, Mapping) and entry.get("field") == name:
                value = entry.get("value")
                return str(value).strip() or None if value is not None else None
        return None

    def update_contact(self, contact_id: int | str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /contacts/{id}/``: a partial update in v1 (fields left out are kept).

        Do not send ``emails``/``phones``/``addresses`` lists here (append or replace is
        unknown); use the sub-resource methods.
        """
        result: dict[str, Any] = self._request(
            "PUT", self._url(f"/contacts/{object_id(contact_id)}/"), kind="write", body=body
        )
        return result

    def delete_contact(self, contact_id: int | str) -> None:
        """``DELETE /contacts/{id}/``."""
        self._delete(f"/contacts/{object_id(contact_id)}/")

    def _sub(self, contact_id: int | str, name: str, item_id: int | str | None = None) -> str:
        path = f"/contacts/{object_id(contact_id)}/{name}/"
        return path + f"{object_id(item_id)}/" if item_id is not None else path

    def _sub_list(self, contact_id: int | str, name: str) -> list[dict[str, Any]]:
        return list(self._iter_results(self._sub(contact_id, name), kind="read"))

    def list_emails(self, contact_id: int | str) -> list[dict[str, Any]]:
        """``GET /contacts/{id}/emails/`` (all pages)."""
        return self._sub_list(contact_id, "emails")

    def list_phones(self, contact_id: int | str) -> list[dict[str, Any]]:
        """``GET /contacts/{id}/phones/`` (all pages)."""
        return self._sub_list(contact_id, "phones")

    def list_addresses(self, contact_id: int | str) -> list[dict[str, Any]]:
        """``GET /contacts/{id}/addresses/`` (all pages)."""
        return self._sub_list(contact_id, "addresses")

    def list_tags(self, contact_id: int | str) -> list[dict[str, Any]]:
        """``GET /contacts/{id}/tags/`` (all pages)."""
        return self._sub_list(contact_id, "tags")

    def _add_sub(
        self,
        contact_id: int | str,
        name: str,
        body: dict[str, Any],
        same: Callable[[dict[str, Any]], bool],
    ) -> dict[str, Any]:
        def recheck() -> dict[str, Any] | None:
            return next((i for i in self._sub_list(contact_id, name) if same(i)), None)

        return self._create(self._sub(contact_id, name), body, recheck=recheck)

    def add_email(self, contact_id: int | str, email: str, type: int = 4) -> dict[str, Any]:
        """Add an e-mail (types: 1 Work, 2 Personal, 3 Other, 4 Main); returns it with its id."""
        wanted = fold_email(email)
        return self._add_sub(
            contact_id,
            "emails",
            {"email": email, "type": type},
            lambda i: fold_email(i.get("email")) == wanted,
        )

    def delete_email(self, contact_id: int | str, email_id: int | str) -> None:
        """Delete one e-mail of a contact."""
        self._delete(self._sub(contact_id, "emails", email_id))

    def add_phone(self, contact_id: int | str, phone: str, type: int = 1) -> dict[str, Any]:
        """Add a phone (types: 1 Main, 2 Mobile, 3 Work, 4 Home, 5 Fax, 6 Other)."""
        return self._add_sub(
            contact_id,
            "phones",
            {"phone": phone, "type": type},
            lambda i: str(i.get("phone", "")).strip() == phone.strip(),
        )

    def delete_phone(self, contact_id: int | str, phone_id: int | str) -> None:
        """Delete one phone of a contact."""
        self._delete(self._sub(contact_id, "phones", phone_id))

    def add_address(self, contact_id: int | str, address: Mapping[str, Any]) -> dict[str, Any]:
        """Add an address ``{type, street, city, state, country, postal_code}``."""
        body = dict(address)
        keys = ("street", "city", "postal_code", "country")

        def same(item: dict[str, Any]) -> bool:
            return all(str(item.get(k) or "") == str(body.get(k) or "") for k in keys)

        return self._add_sub(contact_id, "addresses", body, same)

    def delete_address(self, contact_id: int | str, address_id: int | str) -> None:
        """Delete one address of a contact."""
        self._delete(self._sub(contact_id, "addresses", address_id))

    def add_tag(self, contact_id: int | str, name: str) -> dict[str, Any]:
        """Add a tag by name."""
        wanted = name.strip()
        return self._add_sub(
            contact_id,
            "tags",
            {"name": wanted},
            lambda i: str(i.get("name", "")).strip().casefold() == wanted.casefold(),
        )

    def delete_tag(self, contact_id: int | str, tag_id: int | str) -> None:
        """Remove one tag (by the id ``list_tags`` gives) from a contact."""
        self._delete(self._sub(contact_id, "tags", tag_id))

    def complete_addresses(self, contact: Mapping[str, Any]) -> dict[str, Any]:
        """The contact with its ``addresses`` read, when its shape lacks them.

        Older accounts' list items have no ``addresses`` key (clientify-api.md §3): their
        addresses are unknown, not empty. Such a contact gets them from
        ``GET /contacts/{id}/addresses/`` (one call, all pages); a contact that has the key,
        even an empty list, is returned as it is (a copy) with no call. When the sub-resource
        is missing (404), the detail's ``addresses`` are used instead.
        """
        completed = dict(contact)
        if addresses_known(contact):
            return completed
        contact_id = contact.get("id")
        if contact_id is None:
            raise ValueError("cannot read the addresses of a contact without an id")
        try:
            completed["addresses"] = self.list_addresses(contact_id)
        except ClientifyNotFoundError:
            detail = self.get_contact(contact_id)  # the contact itself missing raises again
            if addresses_known(detail):
                completed["addresses"] = detail["addresses"]
        return completed
