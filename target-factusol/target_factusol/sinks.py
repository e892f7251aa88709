"""ContactsSink and FactusolRun: what target-factusol does around the shared runtime.

The runtime runs the lifecycle (start at the first record, batches, report, finish); this
module names the stream and fills the hooks with find (find.py), decide (decide.py) and
write (write.py). Plan and reject lines are written in record order once the batch is
written, so a dry run's plan equals the real one.
"""

from __future__ import annotations

from typing import Any

from target_runtime import RuntimeSink, SyncRun, TargetStop
from target_runtime.plan import Plan

from target_factusol.codes import CodeAllocator
from target_factusol.decide import ContactPlan, Decider
from target_factusol.find import Finder
from target_factusol.write import Writer

FatalRunError = TargetStop  # the name this target's tests and users know


class FactusolRun(SyncRun):
    """Clientify `contacts` -> FactuSOL clients, with the link written back to the contact."""

    name = "target-factusol"
    stream = "contacts"
    noun = "contact"
    direction = "Clientify -> FactuSOL"
    max_retries = 5
    clientify_prefix = "clientify_"

    def prepare(self) -> None:
        assert self.factusol is not None
        self.finder = Finder(self)
        self.codes = CodeAllocator(self.factusol.max_client_code)
        self.decider = Decider(
            self.finder,
            self.codes,
            region=self.region,
            tz=self.tz,
            policy=self.settings.policy,
            link_field=self.link_field,
            missing_client=str(self.config.get("missing_client") or "reject"),
            ambiguous_match=self.settings.ambiguous_match,
        )
        self.writer = Writer(
            factusol=self.factusol,
            clientify=self.clientify,
            finder=self.finder,
            codes=self.codes,
            ledger=self.ledger,
            summary=self.summary,
            region=self.region,
            tz=self.tz,
            link_field=self.link_field,
            tag=self.settings.tag or "",
            dry_run=self.dry_run,
            logger=self.log,
            warn=self.warn,
            received_at=lambda: self.received_at,
        )

    def expected_total(self) -> int | None:
        # every contact in Clientify: the stream holds these or fewer
        return len(self.contact_index()) or None

    def plan_batch(self, records: list[dict[str, Any]]) -> list[Plan]:
        # find: each contact read once, then what the batch needs from both systems
        plans: list[Plan] = []
        for record in records:
            plan = ContactPlan(record, record.get("id"), "create")
            rejection = self.admit(plan.key, record)
            if rejection is not None:
                plans.append(self.rejected(plan, rejection))
                continue
            plans.append(self.decide(plan, lambda p=plan: p.read(self.finder.read(p.record))))
        batch = {p.item.contact_id: p.item.code for p in _live(plans)}
        for plan in _live(plans):
            self.decide(plan, lambda p=plan: self.decider.shared_link(p, batch))
        live = _live(plans)
        found = self.finder.batch([p.item for p in live if p.item is not None])
        if self.decider.missing_client == "recreate":
            # A recreation keeps its own code: never hand it to a new contact of this run.
            linked = {p.item.code for p in live if p.item is not None and p.item.code is not None}
            self.codes.reserved.update(c for c in linked if c not in found.rows)
        # decide: main thread, record order
        for plan in live:
            self.decide(plan, lambda p=plan: self.decider.plan(p, found))
        return plans

    def write(self, plan: Plan) -> None:
        assert isinstance(plan, ContactPlan)
        self.writer.apply(plan)


def _live(plans: list[Plan]) -> list[ContactPlan]:
    return [p for p in plans if isinstance(p, ContactPlan) and p.rejection is None and p.item]


class ContactsSink(RuntimeSink):
    """Upserts the `contacts` stream (tap-clientify) into FactuSOL F_CLI.

    Batches let the target read every existing row a batch needs in one call (`CODCLI IN (…)`)
    instead of one read per record; the writes themselves are one call per changed record.
    """
