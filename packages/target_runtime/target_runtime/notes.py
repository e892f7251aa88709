"""Conflict notes: one plan line, one log line and one count per field both sides changed."""

from __future__ import annotations

import logging
from typing import Literal

from customer_sync import FieldDiff, MergeResult, RunSummary

from target_runtime.lines import RecordLines
from target_runtime.plan import Plan

Side = Literal["factusol", "clientify"]
_NAMES = {"factusol": "FactuSOL", "clientify": "Clientify"}
_NOUNS = {"factusol": "client", "clientify": "contact"}  # a record of each side
_CONFLICT = "conflict: %s %s, %s %s, field %s: %s wins (%s)"
_IN_PLAN = "every one is a conflict line of the plan file"


def note_conflicts(
    plan: Plan,
    merge: MergeResult,
    *,
    written: Side,
    target_id: object,
    summary: RunSummary,
    logger: logging.Logger | RecordLines,
) -> None:
    """Note the merge's conflicts on ``plan``; ``written`` is the side this target writes.
    With ``logger`` a run's ``RecordLines`` (``SyncRun.lines``), the first conflict lines are
    warnings and the rest DEBUG (every one is a plan line).

    Without a ledger entry there is no base to tell who changed: when the side the record comes
    from wins, its value is simply applied, which is no conflict to report.
    """
    source: Side = "clientify" if written == "factusol" else "factusol"
    for m in merge.conflicts:
        if m.rule == "no-ledger" and m.winner == source:
            continue
        summary.add("conflicts")
        side = _NAMES["factusol" if m.winner == "factusol" else "clientify"]
        rule = "no ledger entry yet" if m.rule == "no-ledger" else "changed on both sides"
        before = m.factusol if written == "factusol" else m.clientify
        args = (_NOUNS[source], plan.key, _NOUNS[written], target_id, m.field, side, rule)
        if isinstance(logger, RecordLines):
            logger.log("conflict", logging.WARNING, _CONFLICT, *args, where=_IN_PLAN)
        else:
            logger.warning(_CONFLICT, *args)
        plan.note(
            "conflict",
            plan.key,
            target_id=target_id,
            diffs=[FieldDiff(m.field, before, m.value)],
            reason=f"{m.field}: {rule}; {side} wins",
            winner=m.winner,
            values={"factusol": m.factusol, "clientify": m.clientify},
        )
