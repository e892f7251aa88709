"""ClientsSink and ClientifyRun: what target-clientify does around the shared runtime.

The runtime runs the lifecycle (start at the first record, batches, report, finish); this
module names the stream and fills the hooks with find (find.py), decide (decide.py) and
write (write.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from factusol_api import FactusolError
from target_runtime import RuntimeSink, SyncRun, TargetStop
from target_runtime.plan import Plan

from target_clientify.decide import ClientPlan, Decider
from target_clientify.find import Finder
from target_clientify.write import Writer

TargetClientifyError = TargetStop  # the name this target's tests and users know


class ClientifyRun(SyncRun):
    """FactuSOL `clients` -> Clientify contacts."""

    name, stream, noun = "target-clientify", "clients", "client"
    direction, max_retries = "FactuSOL -> Clientify", 6
    # FactuSOL is read only, and optional: the census of first-run matching
    factusol_prefix, factusol_required = "factusol_", False

    def prepare(self) -> None:
        self.finder = Finder(self)
        self.decider = Decider(self)
        self.writer = Writer(self, self.decider)

    def expected_total(self) -> int | None:
        if self.factusol is None:
            return None
        try:
            rows = self.factusol.query("SELECT COUNT(CODCLI) AS N FROM F_CLI")
            return int(rows[0]["N"]) if rows else None
        except (FactusolError, KeyError, TypeError, ValueError):
            return None  # progress without a total

    def plan_batch(self, records: list[dict[str, Any]]) -> Iterator[Plan]:
        # A generator: each contact's write starts while the next clients are decided.
        found = self.finder.batch(records)
        for record in records:
            plan = ClientPlan(record, record.get("code"), "create")
            rejection = self.admit(plan.key, record)
            if rejection is not None:
                yield self.rejected(plan, rejection)
                continue

            def decide(plan: ClientPlan = plan) -> ClientPlan:
                plan.desired, plan.issues = self.finder.read(plan.record)
                return self.decider.plan(plan, found.index, found.entries)

            yield self.decide(plan, decide)

    def write(self, plan: Plan) -> None:
        assert isinstance(plan, ClientPlan)
        self.writer.apply(plan)

    def close_own(self) -> None:
        if hasattr(self, "decider"):
            self.decider.close()


class ClientsSink(RuntimeSink):
    """Batches `clients` records (deduplicated by code, the last one wins) for ClientifyRun."""
