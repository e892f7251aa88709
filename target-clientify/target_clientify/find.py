"""Find: what a batch of FactuSOL clients needs, read once per batch before anything is decided.

The contact index (the cache file: only what changed since the last run; else one paged
scan), the ledger entries of the batch's codes, and the FactuSOL key census for first-run
matching (the runtime's ``census``: one keyset scan, or the clients streamed in this run).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clientify_api import ContactIndex
from customer_sync import Customer, FieldIssue, RecordRejected, customer_from_client, link_code
from sync_ledger import LedgerEntry
from target_runtime import SyncRun


@dataclass
class Found:
    """What the decisions of one batch read."""

    index: ContactIndex
    entries: Mapping[int, LedgerEntry]


class Finder:
    """The reads of one run."""

    def __init__(self, run: SyncRun) -> None:
        self.run = run

    def batch(self, records: list[dict[str, Any]]) -> Found:
        run = self.run
        index = run.contact_index()
        if run.factusol is None:  # the census is what the run has streamed
            for record in records:
                if isinstance(record.get("code"), int):
                    run.census_add(record["code"], record.get("nif"), record.get("email"))
        codes = [c for r in records if (c := link_code(r.get("code"))) is not None]
        ledger = run.ledger
        entries = ledger.get_many(codes) if ledger is not None and codes else {}
        return Found(index, entries)

    def read(self, record: Mapping[str, Any]) -> tuple[Customer, list[FieldIssue]]:
        """The client as a Customer; RecordRejected when it has no usable code."""
        code = record.get("code")
        try:
            desired, issues = customer_from_client(record, region=self.run.region)
        except Exception as exc:  # a mapping bug must not stop the other records
            raise RecordRejected(f"mapping failed: {exc}") from None
        if desired.factusol_id is None:
            problem = next((str(i) for i in issues if i.field == "factusol_id"), "code missing")
            raise RecordRejected(f"no usable client code ({problem})")
        self.run.warn(code, [i for i in issues if i.field != "factusol_id"], "synced without it")
        return desired, issues
