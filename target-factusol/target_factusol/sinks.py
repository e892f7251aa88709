"""ContactsSink and FactusolRun: what target-factusol does around the shared runtime.

The runtime runs the lifecycle (start at the first record, batches, report, finish); this
module names the stream and fills the hooks with find (find.py), decide (decide.py) and
write (write.py). Plan and reject lines are written in record order once the batch is
written, so a dry run's plan equals the real one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import partial
from typing import Any

from sync_ledger import LedgerEntry
from target_runtime import RuntimeSink, SyncRun, TargetStop
from target_runtime.plan import Plan

from target_factusol.codes import CodeAllocator
from target_factusol.decide import SETTLED, ContactPlan, Decider
from target_factusol.find import Finder, Item
from target_factusol.write import Writer

FatalRunError = TargetStop  # the name this target's tests and users know


class FactusolRun(SyncRun):
    """Clientify `contacts` -> FactuSOL clients, with the link written back to the contact."""

    name, stream, noun = "target-factusol", "contacts", "contact"
    direction, max_retries, clientify_prefix = "Clientify -> FactuSOL", 5, "clientify_"
    stream_completes_index = True  # a full run streams every contact of the account

    def prepare(self) -> None:
        assert self.factusol is not None
        self.finder = Finder(self)
        self.codes = CodeAllocator(self.factusol.max_client_code)
        self.decider = Decider(self, self.finder, self.codes)
        self.writer = Writer(self, self.finder, self.codes)

    def expected_total(self) -> int | None:
        # every contact in Clientify: the stream holds these or fewer
        return len(self.contact_index()) or None

    def plan_batch(self, records: list[dict[str, Any]]) -> list[Plan]:
        # find: each contact read once, then what the batch needs from both systems
        plans = [self._read(record) for record in records]
        batch = {item.contact_id: item.code for _, item in _live(plans)}
        # the decisions the ledger keeps (deleted in FactuSOL, forgotten): nothing else is read
        for plan, _ in _live(plans):
            self.decide(plan, partial(self.decider.kept, plan))
        for plan, _ in _live(plans):
            self.decide(plan, partial(self.decider.shared_link, plan, batch))
        live = _live(plans)
        found = self.finder.batch([item for _, item in live])
        if self.decider.missing_client == "recreate":
            # A recreation keeps its own code: never hand it to a new contact of this run.
            linked = {item.code for _, item in live if item.code is not None}
            self.codes.reserved.update(c for c in linked if c not in found.rows)
        # decide: main thread, record order
        for plan, _ in live:
            self.decide(plan, partial(self.decider.plan, plan, found))
        # before any write: what the contact cache's end-of-run check compares
        self.note_contacts(records, _written_at(found.entries.values()))
        return plans

    def _read(self, record: dict[str, Any]) -> Plan:
        plan = ContactPlan(record, record.get("id"), "create")
        rejection = self.admit(plan.key, record)
        if rejection is not None:
            return self.rejected(plan, rejection)
        return self.decide(plan, lambda: plan.read(self.finder.read(record)))

    def write(self, plan: Plan) -> None:
        assert isinstance(plan, ContactPlan)
        self.writer.apply(plan)

    def close_own(self) -> None:
        if hasattr(self, "finder"):
            self.finder.close()

    def write_report(self, status: str) -> None:
        super().write_report(status)
        # the report has named these deletions: later runs stay quiet about them
        self.memory.reported(self.writer.kept if self.started else ())


def _written_at(entries: Iterable[LedgerEntry]) -> dict[int, dt.datetime]:
    """Contact id -> when the sync last wrote it, from the batch's ledger entries."""
    return {
        int(e.contact_id): e.clientify_written_at
        for e in entries
        if e.clientify_written_at is not None and e.contact_id.isdigit()
    }


def _live(plans: list[Plan]) -> list[tuple[ContactPlan, Item]]:
    """The plans still to decide, with their contact."""
    return [
        (p, p.item)
        for p in plans
        if isinstance(p, ContactPlan)
        and p.rejection is None
        and p.item is not None
        and p.action not in SETTLED
    ]


class ContactsSink(RuntimeSink):
    """Upserts the `contacts` stream (tap-clientify) into FactuSOL F_CLI.

    Batches let the target read every existing row a batch needs in one call (`CODCLI IN (…)`)
    instead of one read per record; the writes themselves are one call per changed record.
    """
