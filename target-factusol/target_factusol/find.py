"""Find: read each contact, and what both systems hold about it, once per batch.

Everything the decision needs is read here, before anything is decided: the F_CLI rows of the
batch (one read per 1,000 codes), the creation markers, the FactuSOL key census and the
Clientify contact index (both the runtime's, loaded at their first use) and the ledger entries.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from clientify_api import contact_emails, custom_field_text, parse_api_datetime
from customer_sync import (
    Customer,
    FieldIssue,
    MatchCandidate,
    MatchDecision,
    RecordRejected,
    contact_candidate,
    customer_from_contact,
    decide_match,
    link_code,
)
from sync_ledger import LedgerEntry
from target_runtime import SyncRun
from target_runtime.matching import match_contact

from target_factusol.markers import MarkerIndex, MarkerView, load_markers


@dataclass
class Item:
    """One contact of a batch, read once."""

    record: dict[str, Any]
    contact_id: int
    customer: Customer
    code: int | None = None  # the client its link names
    modified: dt.datetime | None = None
    issues: list[FieldIssue] = field(default_factory=list)  # what the mapping could not read
    marker_codes: list[int] = field(default_factory=list)  # clients created for it earlier
    match: MatchDecision | None = None  # first-run matching, for a contact without a link


def is_id(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _known(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record without null keys: tap-clientify emits null for "unknown", never "empty"."""
    return {key: value for key, value in record.items() if value is not None}


@dataclass
class Found:
    """What the decisions of one batch read."""

    rows: Mapping[int, Mapping[str, Any]]
    entries: Mapping[int, LedgerEntry]


class Finder:
    """The reads of one run, shared by its batches (thread-safe where the writers update)."""

    def __init__(self, run: SyncRun) -> None:
        assert run.factusol is not None
        self.run = run
        self.fs = run.factusol
        self.region = run.region
        self.link_field = run.link_field
        self.match_keys = list(run.settings.match_keys)
        self.log = run.log
        self._lock = threading.RLock()
        self._markers: dict[int, list[int]] | None = None  # this run's, once F_CLI's are read
        self._marker_index: MarkerIndex | None = None  # F_CLI's, in a temporary file

    # ------------------------------------------------------------------ one contact

    def read(self, record: dict[str, Any]) -> Item:
        """The contact as the decision needs it; RecordRejected when it cannot be read."""
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
        self.run.warn(contact_id, warnings, "field left unchanged")
        return Item(
            record=record,
            contact_id=contact_id,
            customer=customer,
            code=code,
            modified=parse_api_datetime(record.get("modified")),  # raw: the sink parses no date
            issues=warnings,
        )

    # ------------------------------------------------------------------ links

    def claimants(self, code: int, batch: Mapping[int, int | None]) -> list[int]:
        """Every contact that names client ``code``: the index's, corrected by this batch's
        fresher records (``batch``: contact id -> the code it names now)."""
        found = {
            int(c["id"])
            for c in self.run.contact_index().by_factusol_id(code)
            if is_id(c.get("id"))
        }
        found = {cid for cid in found if batch.get(cid, code) == code}
        found.update(cid for cid, named in batch.items() if named == code)
        return sorted(found)

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
        keys = self.run.census()
        index = self.run.contact_index()

        def contacts_holding(kind: str, key: str) -> int:
            found = index.by_nif(key) if kind == "nif" else index.by_email(key)
            return len({c.get("id") for c in found} | {item.contact_id})

        def clients_holding(kind: str, key: str) -> list[MatchCandidate]:
            return [
                MatchCandidate(code, keys.nif_of(code), self.run.claims.contact_of(code))
                for code in keys.holders(kind, key)
            ]

        def contacts_as_candidates(kind: str, key: str) -> list[MatchCandidate]:
            found = index.by_nif(key) if kind == "nif" else index.by_email(key)
            unique = {int(c["id"]): c for c in found if is_id(c.get("id"))}
            return [contact_candidate(c, self.run.claims.client_of(c)) for c in unique.values()]

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

        nif = item.customer.nif or item.record.get("taxpayer_identification_number")
        emails = [item.customer.email, *contact_emails(item.record)]
        holders = (contacts_holding, clients_holding)
        return match_contact(
            self.match_keys, nif, emails, *holders, self_key=item.contact_id, confirm=confirm
        )

    def markers(self) -> MarkerView:
        """Creation markers by contact: F_CLI's (read in keyset pages once per run, only when
        a batch has contacts without a link, kept in a temporary file) and this run's."""
        with self._lock:
            if self._markers is None:
                index = load_markers(self.fs)
                self._marker_index = index
                self._markers = {}  # markers written in this run (note_marker)
                self.log.info("creation markers found for %d contacts", len(index))
            assert self._marker_index is not None
            return MarkerView(self._marker_index, self._markers)

    def close(self) -> None:
        """Release the markers' temporary file."""
        with self._lock:
            if self._marker_index is not None:
                self._marker_index.close()
            self._marker_index = self._markers = None

    def note_marker(self, contact_id: int, code: int) -> None:
        with self._lock:
            if self._markers is not None:
                self._markers.setdefault(contact_id, []).append(code)

    def remember_client(self, code: int, customer: Customer) -> None:
        """A client created in this run: visible to later matches of the run."""
        self.run.census_add(code, customer.nif, customer.email)

    def forget_client(self, code: int) -> None:
        self.run.census_remove(code)

    def index_contact(self, contact: dict[str, Any]) -> None:
        """Keep the index current after a write (ContactIndex has its own lock)."""
        self.run.contact_index().add(contact)

    # ------------------------------------------------------------------ rows

    def batch(self, items: list[Item]) -> Found:
        """Creation markers and matches of the unlinked contacts, then the F_CLI rows every
        contact may need (one read per 1,000 codes) and the ledger entries of the linked."""
        unlinked = [item for item in items if item.code is None]
        for item in unlinked:
            self.find_candidates(item)
        wanted = {item.code for item in items if item.code is not None}
        for item in unlinked:
            wanted.update(item.marker_codes)
            if item.match is not None and item.match.candidate is not None:
                wanted.add(int(item.match.candidate.key))
        rows = self.rows(wanted)
        linked = [item.code for item in items if item.code is not None]
        ledger = self.run.ledger
        entries = ledger.get_many(linked) if ledger is not None and linked else {}
        return Found(rows, entries)

    def rows(self, codes: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The F_CLI rows of these codes: one read per 1,000 codes."""
        wanted = set(codes)
        if not wanted:
            return {}
        return {int(row["CODCLI"]): row for row in self.fs.get_clients(wanted, batch_size=1000)}
