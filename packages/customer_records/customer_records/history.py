"""The ledger's history in the shape the report page's customer pages read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sync_ledger import CustomerHistory, SyncLedger
from sync_report.customers import HistorySource

__all__ = ["history_source"]


def history_source(ledger: SyncLedger) -> HistorySource:
    """``render_report_page(history=...)``: each mentioned client's steps, oldest first."""
    log = CustomerHistory(ledger)

    def steps(codes: set[int]) -> Mapping[int, Sequence[Mapping[str, Any]]]:
        found: dict[int, list[dict[str, Any]]] = {}
        for event in log.events(codes=codes):
            if event.code is None:
                continue
            found.setdefault(event.code, []).append(
                {
                    "at": event.at,
                    "reason": event.reason,
                    "run_id": event.run_id,
                    "side": event.side,
                    "field": event.field,
                    "before": event.before,
                    "after": event.after,
                    "detail": dict(event.detail),
                }
            )
        return found

    return steps
