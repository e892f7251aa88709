"""The plan contract both targets share: what was decided for one record, then carried out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from customer_sync import RecordRejected


@dataclass
class Plan:
    """One record's decision; each target subclasses it with what its writer needs.

    ``key`` names the record in logs, plan and reject lines (a client code, a contact id);
    ``group`` is what two writes must never share at once (plans of one group run in one task,
    in order); ``rejection`` is set when deciding or writing refused the record. Plan-file lines
    are collected in ``lines`` and written by the main thread in record order, so a dry run's
    plan equals the real one whatever the thread timing.
    """

    record: dict[str, Any]
    key: Any
    action: str  # create | link | update | reject
    rejection: RecordRejected | None = None
    target_id: Any = None  # the other side's key, on reject lines
    done: bool = False  # the write phase ran to the end (written or refused)
    lines: list[tuple[str, object, dict[str, Any]]] = field(default_factory=list)

    @property
    def group(self) -> object:
        return ("record", id(self))

    def note(self, action: str, key: object, **fields: Any) -> None:
        """A plan-file line, written after the batch in record order."""
        self.lines.append((action, key, fields))

    def refuse(self, rejection: RecordRejected) -> None:
        self.rejection = rejection
