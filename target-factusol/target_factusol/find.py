"""Find: read each contact, and what both systems hold about it, once per batch.

Everything the decision needs is read here, before anything is decided: the F_CLI rows of the
batch (one read per 1,000 codes), the creation markers, the FactuSOL key census (one keyset
scan of CODCLI/NIFCLI/EMACLI per run, only when a contact has no link), the Clientify contact
index (the cache file: only what changed since the last run) and the ledger entries.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from clientify_api import ClientifyClient, ContactIndex, custom_field_text, parse_api_datetime
from customer_sync import (
    Customer,
    FieldIssue,
    KeyIndex,
    MatchCandidate,
    MatchDecision,
    RecordRejected,
    customer_from_contact,
    decide_match,
    link_code,
    nif_identity,
)
from factusol_api import FactusolClient

from target_factusol.markers import MARKER_QUERY, markers_by_contact
from target_factusol.records import INVALID_KEY, MISSING_KEYS

MATCH_SCAN_PAGE_SIZE = 5000  # rows of CODCLI, NIFCLI, EMACLI per call (about 400 kB)


@dataclass
class Item:
    """One contact of a batch, read once."""

    record: dict[str, Any]
    contact_id: int
    customer: Customer
    code: int | None = None  # the client its link names
    modified: dt.datetime | None = None
    warnings: int = 0  # field warnings logged while reading it
    issues: list[FieldIssue] = field(default_factory=list)  # what the mapping could not read
    marker_codes: list[int] = field(default_factory=list)  # clients created for it earlier
    match: MatchDecision | None = None  # first-run matching, for a contact without a link


def is_id(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _known(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record without null keys: tap-clientify emits null for "unknown", never "empty"."""
    return {key: value for key, value in record.items() if value is not None}


def _modified(value: object) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str):
        return parse_api_datetime(value)
    return None


def contact_emails(record: Mapping[str, Any]) -> list[str]:
    """Every address of a contact (main first), raw: the identities are taken by customer_sync."""
    found: list[str] = []
    for item in record.get("emails") or []:
        value = item.get("email") if isinstance(item, Mapping) else item
        if isinstance(value, str) and value.strip():
            found.append(value)
    return found


class Finder:
    """The reads of one run, shared by its batches (thread-safe where the writers update)."""

    def __init__(
        self,
        *,
        factusol: FactusolClient,
        clientify: ClientifyClient,
        config: Mapping[str, Any],
        region: str,
        link_field: str,
        match_keys: list[str],
        logger: logging.Logger,
    ) -> None:
        self.fs = factusol
        self.cl = clientify
        self.config = config
        self.region = region
        self.link_field = link_field
        self.match_keys = match_keys
        self.log = logger
        self._lock = threading.RLock()
        self._index_lock = threading.Lock()
        self._markers: dict[int, list[int]] | None = None
        self._client_keys: KeyIndex | None = None
        self._index: ContactIndex | None = None
        # clients linked in this run (or planned to be): code -> contact id, and back
        self._claimed: dict[int, int] = {}
        self._claimed_contacts: dict[int, int] = {}

    # ------------------------------------------------------------------ one contact

    def read(self, record: dict[str, Any]) -> Item:
        """The contact as the decision needs it; RecordRejected when it cannot be read."""
        invalid = record.pop(INVALID_KEY, None)
        for key in record.pop(MISSING_KEYS, None) or ():
            record.pop(key, None)  # filled in by the sink for the SDK's key check
        if invalid:
            raise RecordRejected(str(invalid))
        contact_id = record.get("id")
        if not is_id(contact_id):
            raise RecordRejected("contact id is not an integer")
        known = _known(record)
        raw_link = custom_field_text(known, self.link_field)
        if raw_link is None and isinstance(known.get("factusol_id"), str | int):
            raw_link = str(known["factusol_id"]).strip() or None
        code: int | None = None
        if raw_link is not None:
            code = link_code(raw_link)
            if code is None:
                raise RecordRejected(
                    f"{self.link_field} {raw_link[:20]!r} is not a positive integer client code"
                )
        try:
            customer, issues = customer_from_contact(
                known, region=self.region, link_field=self.link_field
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise RecordRejected(f"mapping failed: {type(exc).__name__}: {exc}") from None
        warnings = [issue for issue in issues if issue.field != "factusol_id"]
        for issue in warnings:
            # contact id, field and problem only: the value is personal data
            self.log.warning(
                "contact %s: %s: %s (field left unchanged)", contact_id, issue.field, issue.problem
            )
        return Item(
            record=record,
            contact_id=contact_id,
            customer=customer,
            code=code,
            modified=_modified(record.get("modified")),
            warnings=len(warnings),
            issues=warnings,
        )

    # ------------------------------------------------------------------ links

    def claimants(self, code: int, batch: Mapping[int, int | None]) -> list[int]:
        """Every contact that names client ``code``: the index's, corrected by this batch's
        fresher records (``batch``: contact id -> the code it names now)."""
        found = {
            int(c["id"]) for c in self.contact_index().by_factusol_id(code) if is_id(c.get("id"))
        }
        found = {cid for cid in found if batch.get(cid, code) == code}
        found.update(cid for cid, named in batch.items() if named == code)
        return sorted(found)

    def linked_to(self, code: int) -> str | None:
        """The contact linked to client ``code`` (in Clientify, or claimed in this run)."""
        with self._lock:
            claimed = self._claimed.get(code)
        if claimed is not None:
            return str(claimed)
        contacts = self.contact_index().by_factusol_id(code)
        return str(contacts[0].get("id")) if contacts else None

    def claim(self, code: int, contact_id: int) -> bool:
        """Mark client ``code`` linked to ``contact_id`` for the rest of the run; False when
        this run had already claimed it."""
        with self._lock:
            if code in self._claimed:
                return False
            self._claimed[code] = contact_id
            self._claimed_contacts[contact_id] = code
            return True

    def release(self, code: int) -> None:
        with self._lock:
            contact_id = self._claimed.pop(code, None)
            if contact_id is not None and self._claimed_contacts.get(contact_id) == code:
                del self._claimed_contacts[contact_id]

    def contact_link(self, contact: Mapping[str, Any]) -> str | None:
        """The client a contact is linked to (its link field, or a claim of this run)."""
        contact_id = contact.get("id")
        with self._lock:
            claimed = self._claimed_contacts.get(contact_id) if is_id(contact_id) else None
        if claimed is not None:
            return str(claimed)
        code = link_code(custom_field_text(contact, self.link_field))
        return None if code is None else str(code)

    # ------------------------------------------------------------------ matching

    def find_candidates(self, item: Item) -> None:
        """Creation marker first (a crash between insert and write-back), then matching."""
        codes = self.markers().get(item.contact_id)
        if codes:
            item.marker_codes = list(codes)
            return
        item.match = self.match(item)

    def match(self, item: Item) -> MatchDecision:
        """The matching rule of customer_sync, with this run's census of both sides."""
        if not self.match_keys:
            return MatchDecision("create")
        keys = self.client_keys()
        index = self.contact_index()

        def contacts_holding(kind: str, key: str) -> int:
            found = index.by_nif(key) if kind == "nif" else index.by_email(key)
            return len({c.get("id") for c in found} | {item.contact_id})

        def clients_holding(kind: str, key: str) -> list[MatchCandidate]:
            return [
                MatchCandidate(code, keys.nif_of(code), self.linked_to(int(code)))
                for code in keys.holders(kind, key)
            ]

        def contacts_as_candidates(kind: str, key: str) -> list[MatchCandidate]:
            found = index.by_nif(key) if kind == "nif" else index.by_email(key)
            unique = {int(c["id"]): c for c in found if is_id(c.get("id"))}
            return [
                MatchCandidate(
                    cid,
                    nif_identity(c.get("taxpayer_identification_number")),
                    self.contact_link(c),
                )
                for cid, c in unique.items()
            ]

        def confirm(client: MatchCandidate) -> MatchDecision:
            # the same rule from the client's side: it must find this contact, and only it
            return decide_match(
                nif=keys.nif_of(client.key),
                emails=keys.emails_of(client.key),
                source_holders=keys.count,
                destination_holders=contacts_as_candidates,
                keys=self.match_keys,
                source="FactuSOL",
                destination="Clientify",
                self_key=client.key,
            )

        return decide_match(
            nif=item.customer.nif or item.record.get("taxpayer_identification_number"),
            emails=[item.customer.email, *contact_emails(item.record)],
            source_holders=contacts_holding,
            destination_holders=clients_holding,
            keys=self.match_keys,
            source="Clientify",
            destination="FactuSOL",
            self_key=item.contact_id,
            confirm=confirm,
        )

    def markers(self) -> dict[int, list[int]]:
        with self._lock:
            if self._markers is None:
                # One query per run, only when a batch has contacts without a link.
                self._markers = markers_by_contact(self.fs.query(MARKER_QUERY))
                self.log.info("creation markers found for %d contacts", len(self._markers))
            return self._markers

    def note_marker(self, contact_id: int, code: int) -> None:
        with self._lock:
            if self._markers is not None:
                self._markers.setdefault(contact_id, []).append(code)

    def client_keys(self) -> KeyIndex:
        """F_CLI by NIF and e-mail identity: one keyset scan of three columns per run."""
        with self._lock:
            if self._client_keys is None:
                keys = KeyIndex()
                columns = ["CODCLI", "NIFCLI", "EMACLI"]
                for row in self.fs.iter_clients(columns=columns, page_size=MATCH_SCAN_PAGE_SIZE):
                    keys.add(int(row["CODCLI"]), nif=row.get("NIFCLI"), emails=[row.get("EMACLI")])
                self._client_keys = keys
                self.log.info("matching: %d FactuSOL clients with a NIF or e-mail", keys.records)
            return self._client_keys

    def remember_client(self, code: int, customer: Customer) -> None:
        """A client created in this run: visible to later matches of the run."""
        with self._lock:
            if self._client_keys is not None:
                self._client_keys.add(code, nif=customer.nif, emails=[customer.email])

    def forget_client(self, code: int) -> None:
        with self._lock:
            if self._client_keys is not None:
                self._client_keys.remove(code)

    def contact_index(self) -> ContactIndex:
        """Clientify's contacts by link, NIF and e-mail (the link claimants and the census).

        Loaded once, at the first use: from the cache file when configured (only what changed
        since the last run is read), else one paged scan.
        """
        with self._index_lock:
            if self._index is None:
                cache = str(self.config.get("index_cache_file") or "").strip() or None
                hours = int(self.config.get("index_rescan_hours", 168))
                self._index = self.cl.load_contact_index(
                    field=self.link_field, cache=cache, rescan_after=dt.timedelta(hours=hours)
                )
                self.log.info("%d Clientify contacts indexed", len(self._index))
            return self._index

    def index_contact(self, contact: dict[str, Any]) -> None:
        """Keep the index current after a write (ContactIndex has its own lock)."""
        if self._index is not None:
            self._index.add(contact)

    # ------------------------------------------------------------------ rows

    def rows(self, codes: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The F_CLI rows of these codes: one read per 1,000 codes."""
        wanted = set(codes)
        if not wanted:
            return {}
        return {int(row["CODCLI"]): row for row in self.fs.get_clients(wanted, batch_size=1000)}

    def close(self) -> None:
        with self._lock:
            if self._client_keys is not None:
                self._client_keys.close()
                self._client_keys = None
        with self._index_lock:
            if self._index is not None:
                self._index.close()  # a cache file keeps what this run wrote
                self._index = None
