"""Decide: per contact, update / link / create / reject, and the merged values to write.

Runs on the main thread, in record order, so everything that depends on earlier records (a
client claimed by an earlier contact, a client created for one, the next CODCLI) is decided
one record after the other and the outcome never depends on thread timing. The rules
themselves live in customer_sync: the matching rule (``decide_match``) and the three-way merge
(``merge_customer``); this module only feeds them what was found.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from customer_sync import (
    MergeResult,
    RecordRejected,
    SideValues,
    customer_from_row,
    merge_customer,
    user_change_time,
)
from sync_ledger import LedgerEntry, Mark
from target_runtime import Plan, SyncRun, factusol_time

from target_factusol.codes import CodeAllocator
from target_factusol.find import Finder, Found, Item
from target_factusol.markers import marker_ids

#: actions decided from the ledger's marks, before the contact's client is read
SETTLED = ("skip", "kept_deleted")


@dataclass
class ContactPlan(Plan):
    """What was decided for one contact; the write phase only carries it out."""

    item: Item | None = None  # None until the contact is read
    code: int | None = None  # the client written (allocated for a creation)
    row: Mapping[str, Any] | None = None  # the existing row (update, link)
    merge: MergeResult | None = None  # update, link: the merged values
    ledger: LedgerEntry | None = None  # the pair's entry (update)
    how: str = ""  # why a link (creation marker, same nif, …)
    fixed: bool = False  # create under the link's own code (missing_client: recreate)
    claimed: bool = False  # planning marked ``code`` as linked for this contact
    inserted: bool = False  # the FactuSOL row exists (ours), even if the write-back failed

    @property
    def group(self) -> object:
        return ("code", self.code)  # plans on one CODCLI run in one task, in order

    def read(self, item: Item) -> ContactPlan:
        self.item, self.target_id = item, item.code
        return self

    def decided(self, action: str, code: int | None, **fields: Any) -> ContactPlan:
        self.action, self.code = action, code
        for name, value in fields.items():
            setattr(self, name, value)
        return self


class Decider:
    """The decisions of one run (state shared across batches: claims, the code counter)."""

    def __init__(self, run: SyncRun, finder: Finder, codes: CodeAllocator) -> None:
        self.finder = finder
        self.codes = codes
        self.claims = run.claims  # links made in this run, not in the index yet
        self.region = run.region
        self.tz = run.tz
        self.policy = run.settings.policy
        self.link_field = run.link_field
        self.missing_client = str(run.config.get("missing_client") or "reject")
        self.ambiguous_match = run.settings.ambiguous_match
        self.memory = run.memory
        self.said: set[int] = set()  # deletions this run already reported (a contact seen twice)
        self._contacts: tuple[object, dict[str, Mark]] = (None, {})

    def _by_contact(self, marks: Mapping[int, Mark]) -> dict[str, Mark]:
        """The marks by contact id, built once per load of the marks (not once per contact)."""
        if self._contacts[0] is not marks:
            by_id = {m.contact_id: m for m in marks.values() if m.contact_id is not None}
            self._contacts = (marks, by_id)
        return self._contacts[1]

    def kept(self, plan: ContactPlan) -> ContactPlan:
        """A decision kept in the ledger's marks, before anything is read for the contact.

        A contact linked to a client marked ``forgotten``, or to a deletion already reported,
        is skipped quietly (``skip``: no write, no line). A deletion marked but never reported
        (a run stopped before its report) is reported now. A contact without a link that a
        mark names (its link cleared since) stays skipped: relink lifts it.
        """
        item = plan.item
        assert item is not None
        marks = self.memory.marks
        mark = marks.get(item.code) if item.code is not None else None
        if mark is None and item.code is None:
            mark = self._by_contact(marks).get(str(item.contact_id))
            if mark is not None and mark.kind in ("forgotten", "deleted_in_factusol"):
                return plan.decided("skip", mark.code)
            return plan
        if mark is None or mark.kind == "deleted_in_clientify":
            return plan  # the contact side's mark: a contact linked to it by hand syncs
        if mark.kind == "deleted_in_factusol" and not mark.reported and mark.code not in self.said:
            self.said.add(mark.code)
            return plan.decided("kept_deleted", mark.code)
        return plan.decided("skip", mark.code)

    def shared_link(self, plan: ContactPlan, batch: Mapping[int, int | None]) -> ContactPlan:
        """Several contacts naming one client: all of them rejected, nothing written to it.

        Which one owns the client cannot be known (a copied or hand-typed factusol_id); the
        claimants are counted over the whole account, with this batch's fresher records
        (``batch``: contact id -> the code it names now).
        """
        item = plan.item
        assert item is not None
        claimants = [] if item.code is None else self.finder.claimants(item.code, batch)
        if len(claimants) > 1:
            others = [c for c in claimants if c != item.contact_id]
            raise RecordRejected(
                f"{self.link_field} {item.code} is also on contact(s) "
                f"{', '.join(map(str, others))}: one FactuSOL client cannot be linked "
                "to several contacts; nothing was written to that client. Keep the "
                f"{self.link_field} on the right contact only (merge the duplicates)",
                code="claimed_by_several",
                candidates=claimants,
            )
        return plan

    def plan(self, plan: ContactPlan, found: Found) -> ContactPlan:
        """Fill ``plan``: update, link or create; or raise RecordRejected."""
        item, rows, ledger = plan.item, found.rows, found.entries
        assert item is not None
        if item.code is not None:
            return self._linked(plan, item, rows, ledger)
        if item.marker_codes:
            if self._by_marker(plan, item, rows):
                return plan
        else:
            # Again, now: an earlier contact of this run may have claimed a candidate or be
            # planned to create a client with the same NIF / e-mail.
            item.match = self.finder.match(item)
        match = item.match
        if match is not None and match.action == "link" and match.candidate is not None:
            code = int(match.candidate.key)
            if _forgotten(self.memory.marks, code):
                return plan.decided("skip", code)  # the same person again: not brought back
            row = rows.get(code)
            if row is not None and self.claims.claim(code, item.contact_id):
                merge = self._merge(item, row, None)
                return plan.decided("link", code, row=row, how=match.how, claimed=True, merge=merge)
        if match is not None and match.action == "ambiguous" and self.ambiguous_match != "create":
            raise RecordRejected(
                f"not linked: several FactuSOL clients could be this contact ({match.how}); "
                f"set {self.link_field} on the contact by hand to the right one "
                "(or ambiguous_match: create)",
                code="ambiguous_match",
                candidates=match.candidate_keys,
            )
        return self._create(plan, item)

    def _linked(
        self,
        plan: ContactPlan,
        item: Item,
        rows: Mapping[int, Mapping[str, Any]],
        ledger: Mapping[int, LedgerEntry],
    ) -> ContactPlan:
        assert item.code is not None
        row = rows.get(item.code)
        if row is not None:
            entry = ledger.get(item.code)
            if entry is not None and not entry.belongs_to(item.contact_id):
                entry = None  # the link moved to this contact: the old base is not its own
            merge = self._merge(item, row, entry)
            return plan.decided("update", item.code, row=row, ledger=entry, merge=merge)
        entry = ledger.get(item.code)
        if entry is not None and entry.belongs_to(item.contact_id):
            # The pair was synced before: a user deleted the client in FactuSOL. The decision
            # is kept (never re-created, whatever missing_client says); said once.
            self.said.add(item.code)
            return plan.decided("kept_deleted", item.code, ledger=entry)
        if self.missing_client == "recreate":
            self._check_creatable(item)
            self.finder.remember_client(item.code, item.customer)
            return plan.decided("create", item.code, fixed=True)
        raise RecordRejected(
            f"{self.link_field} {item.code} names a FactuSOL client that does not exist "
            "(missing_client: reject)",
            code="missing_client",
        )

    def _by_marker(
        self, plan: ContactPlan, item: Item, rows: Mapping[int, Mapping[str, Any]]
    ) -> bool:
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
            return False
        self.claims.claim(code, item.contact_id)
        merge = self._merge(item, row, None)
        plan.decided("link", code, row=row, how="creation marker", claimed=True, merge=merge)
        return True

    def _create(self, plan: ContactPlan, item: Item) -> ContactPlan:
        self._check_creatable(item)
        code = self.codes.next()
        self.claims.claim(code, item.contact_id)
        self.finder.remember_client(code, item.customer)
        return plan.decided("create", code, claimed=True)

    @staticmethod
    def _check_creatable(item: Item) -> None:
        if not (item.customer.name or item.customer.trade_name):
            raise RecordRejected(
                "contact has no name and no company name to create a client", code="no_name"
            )

    def _merge(self, item: Item, row: Mapping[str, Any], entry: LedgerEntry | None) -> MergeResult:
        factusol, issues = customer_from_row(row, region=self.region)
        fs_modified, date_only = factusol_time(row.get("FUMCLI"), self.tz)
        # the sync's own write moves the contact's modified: not a user's change time
        cl_modified = user_change_time(
            item.modified, None if entry is None else entry.clientify_written_at
        )
        return merge_customer(
            SideValues.read(factusol, issues, fs_modified, date_only),
            SideValues.read(item.customer, item.issues, cl_modified),
            base=None if entry is None else entry.base,
            pending=None if entry is None else entry.pending,
            policy=self.policy,
            tz=self.tz,
        )


def _forgotten(marks: Mapping[int, Mark], code: int) -> bool:
    mark = marks.get(code)
    return mark is not None and mark.kind == "forgotten"
