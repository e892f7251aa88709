"""Decide: per contact, update / link / create / reject, and the merged values to write.

Runs on the main thread, in record order, so everything that depends on earlier records (a
client claimed by an earlier contact, a client created for one, the next CODCLI) is decided
one record after the other and the outcome never depends on thread timing. The rules
themselves live in customer_sync: the matching rule (``decide_match``) and the three-way merge
(``merge_customer``); this module only feeds them what was found.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from customer_sync import (
    ConflictPolicy,
    MergeResult,
    RecordRejected,
    SideValues,
    customer_from_row,
    merge_customer,
)
from sync_ledger import LedgerEntry

from target_factusol.codes import CodeAllocator
from target_factusol.find import Finder, Item
from target_factusol.markers import marker_ids

Action = Literal["update", "link", "create", "reject"]


@dataclass
class Plan:
    """What was decided for one contact; the write phase only carries it out."""

    item: Item
    action: Action
    code: int | None  # the client written (allocated for a creation)
    row: Mapping[str, Any] | None = None  # the existing row (update, link)
    merge: MergeResult | None = None  # update, link: the merged values
    ledger: LedgerEntry | None = None  # the pair's entry (update)
    how: str = ""  # why a link (creation marker, same nif, …)
    fixed: bool = False  # create under the link's own code (missing_client: recreate)
    claimed: bool = False  # planning marked ``code`` as linked for this contact
    reject: RecordRejected | None = None
    done: bool = False  # the write phase ran to the end (written or refused)
    inserted: bool = False  # the FactuSOL row exists (ours), even if the write-back failed
    # Plan-file lines (action, key, fields), written by the main thread in record order.
    lines: list[tuple[str, object, dict[str, Any]]] = field(default_factory=list)

    def note(self, action: str, key: object, **fields: Any) -> None:
        self.lines.append((action, key, fields))


def fumcli(row: Mapping[str, Any], tz: ZoneInfo) -> tuple[dt.datetime | None, bool]:
    """FUMCLI as an aware time of the company's zone, and whether it carries only a date."""
    value = row.get("FUMCLI")
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        try:
            moment = dt.datetime.fromisoformat(value.strip().replace(" ", "T", 1))
        except ValueError:
            return None, False
    else:
        return None, False
    date_only = moment.time() == dt.time(0, 0)
    return (moment if moment.tzinfo else moment.replace(tzinfo=tz)), date_only


class Decider:
    """The decisions of one run (state shared across batches: claims, the code counter)."""

    def __init__(
        self,
        finder: Finder,
        codes: CodeAllocator,
        *,
        region: str,
        tz: ZoneInfo,
        policy: ConflictPolicy,
        link_field: str,
        missing_client: str,
        ambiguous_match: str,
    ) -> None:
        self.finder = finder
        self.codes = codes
        self.region = region
        self.tz = tz
        self.policy = policy
        self.link_field = link_field
        self.missing_client = missing_client
        self.ambiguous_match = ambiguous_match

    def plan(
        self,
        item: Item,
        rows: Mapping[int, Mapping[str, Any]],
        ledger: Mapping[int, LedgerEntry],
    ) -> Plan:
        if item.code is not None:
            return self._linked(item, rows, ledger)
        if item.marker_codes:
            plan = self._by_marker(item, rows)
            if plan is not None:
                return plan
        else:
            # Again, now: an earlier contact of this run may have claimed a candidate or be
            # planned to create a client with the same NIF / e-mail.
            item.match = self.finder.match(item)
        match = item.match
        if match is not None and match.action == "link" and match.candidate is not None:
            code = int(match.candidate.key)
            row = rows.get(code)
            if row is not None and self.finder.claim(code, item.contact_id):
                plan = Plan(item, "link", code, row=row, how=match.how, claimed=True)
                plan.merge = self._merge(item, row, None)
                return plan
        if match is not None and match.action == "ambiguous" and self.ambiguous_match != "create":
            raise RecordRejected(
                f"not linked: several FactuSOL clients could be this contact ({match.how}); "
                f"set {self.link_field} on the contact by hand to the right one "
                "(or ambiguous_match: create)",
                code="ambiguous_match",
                candidates=match.candidate_keys,
            )
        return self._create(item)

    def _linked(
        self, item: Item, rows: Mapping[int, Mapping[str, Any]], ledger: Mapping[int, LedgerEntry]
    ) -> Plan:
        assert item.code is not None
        row = rows.get(item.code)
        if row is not None:
            entry = ledger.get(item.code)
            if entry is not None and not entry.belongs_to(item.contact_id):
                entry = None  # the link moved to this contact: the old base is not its own
            plan = Plan(item, "update", item.code, row=row, ledger=entry)
            plan.merge = self._merge(item, row, entry)
            return plan
        if self.missing_client == "recreate":
            self._check_creatable(item)
            self.finder.remember_client(item.code, item.customer)
            return Plan(item, "create", item.code, fixed=True)
        raise RecordRejected(
            f"{self.link_field} {item.code} names a FactuSOL client that does not exist "
            "(missing_client: reject)",
            code="missing_client",
        )

    def _by_marker(self, item: Item, rows: Mapping[int, Mapping[str, Any]]) -> Plan | None:
        if len(item.marker_codes) > 1:
            raise RecordRejected(
                "several FactuSOL clients carry this contact's creation marker: "
                + ", ".join(map(str, item.marker_codes)),
                code="ambiguous_match",
                candidates=item.marker_codes,
            )
        code = item.marker_codes[0]
        row = rows.get(code)
        if row is None or item.contact_id not in marker_ids(row.get("OBSCLI")):
            return None
        self.finder.claim(code, item.contact_id)
        plan = Plan(item, "link", code, row=row, how="creation marker", claimed=True)
        plan.merge = self._merge(item, row, None)
        return plan

    def _create(self, item: Item) -> Plan:
        self._check_creatable(item)
        code = self.codes.next()
        self.finder.claim(code, item.contact_id)
        self.finder.remember_client(code, item.customer)
        return Plan(item, "create", code, claimed=True)

    @staticmethod
    def _check_creatable(item: Item) -> None:
        if not (item.customer.name or item.customer.trade_name):
            raise RecordRejected(
                "contact has no name and no company name to create a client", code="no_name"
            )

    def _merge(self, item: Item, row: Mapping[str, Any], entry: LedgerEntry | None) -> MergeResult:
        factusol, issues = customer_from_row(row, region=self.region)
        fs_modified, date_only = fumcli(row, self.tz)
        cl_modified = item.modified
        if (
            entry is not None
            and entry.clientify_written_at is not None
            and cl_modified is not None
            and cl_modified <= entry.clientify_written_at
        ):
            cl_modified = None  # the sync's own write moved it: no user change to date
        return merge_customer(
            SideValues.read(factusol, issues, fs_modified, date_only),
            SideValues.read(item.customer, item.issues, cl_modified),
            base=None if entry is None else entry.base,
            pending=None if entry is None else entry.pending,
            policy=self.policy,
            tz=self.tz,
        )
