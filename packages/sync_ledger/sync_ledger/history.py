"""Each customer's life with the sync: what the sync changed and why, and the decisions it keeps.

Two tables beside the pairs, in the same database and scope:

- ``sync_ledger_history``: one row per step the sync took for a customer (a field written, a
  first-run link, a deletion respected, a person brought back): when, which run, which side was
  written, which field, before -> after, and why. ``fcsync-history`` reads it.
- ``sync_ledger_mark``: decisions a user made that the sync must keep making (a contact deleted
  in Clientify is not created again, a client deleted in FactuSOL is not created again, a person
  forgotten is not pulled back). A mark holds keys only (client code, contact id), no personal
  data, so it outlives a forget.

Storage only: the targets decide what to record.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, delete, or_, select

from .ledger import SyncLedger, metadata

__all__ = [
    "MARK_KINDS",
    "REASONS",
    "CustomerHistory",
    "HistoryEvent",
    "Mark",
]

#: Why the sync took a step. A field written because a user changed it on the other side is
#: ``user_edit``; both sides changed it is ``conflict`` (``detail`` says who won and the rule).
REASONS = (
    "user_edit",
    "conflict",
    "first_link",
    "created",
    "deleted_in_clientify",
    "deleted_in_factusol",
    "relinked",
    "forgotten",
)
#: A decision the sync keeps: the contact or client was deleted, or the person was forgotten.
MARK_KINDS = ("deleted_in_clientify", "deleted_in_factusol", "forgotten")

history = Table(
    "sync_ledger_history",
    metadata,
    # BIGINT on PostgreSQL; SQLite autoincrements only an INTEGER PRIMARY KEY
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("scope", String(64), nullable=False),
    Column("code", BigInteger, nullable=True),
    Column("contact_id", String(64), nullable=True),
    Column("at", String(40), nullable=False),  # ISO 8601, UTC
    Column("run_id", String(64), nullable=True),
    Column("side", String(16), nullable=True),  # the system written: factusol, clientify
    Column("field", String(64), nullable=True),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
    Column("reason", String(32), nullable=False),
    Column("detail", Text, nullable=True),  # JSON: the key of a link, the winner of a conflict
)
Index("sync_ledger_history_code", history.c.scope, history.c.code)
Index("sync_ledger_history_contact", history.c.scope, history.c.contact_id)
Index("sync_ledger_history_at", history.c.scope, history.c.at)

marks = Table(
    "sync_ledger_mark",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("code", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(32), nullable=False),
    Column("contact_id", String(64), nullable=True),
    Column("at", String(40), nullable=False),
    Column("reported_at", String(40), nullable=True),  # the run report said it once
)


@dataclass(frozen=True)
class HistoryEvent:
    """One step of a customer's life with the sync."""

    reason: str
    code: int | None = None
    contact_id: str | None = None
    side: str | None = None
    field: str | None = None
    before: str | None = None
    after: str | None = None
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    run_id: str | None = None
    at: datetime | None = None

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"reason must be one of {REASONS}")


@dataclass(frozen=True)
class Mark:
    code: int
    kind: str
    contact_id: str | None
    at: datetime
    reported: bool


def _iso(moment: datetime | None) -> str:
    return (moment or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")


def _text(value: object) -> str | None:
    return None if value is None else str(value)


class CustomerHistory:
    """History and marks of one ledger's scope (same database, same scope as the pairs)."""

    def __init__(self, ledger: SyncLedger) -> None:
        self.ledger = ledger
        self.scope = ledger.scope
        self.engine = ledger.engine
        metadata.create_all(self.engine, tables=[history, marks])

    # ------------------------------------------------------------------ history

    def record(self, events: Iterable[HistoryEvent]) -> int:
        """Append events; returns how many."""
        rows = [
            {
                "scope": self.scope,
                "code": None if event.code is None else int(event.code),
                "contact_id": _text(event.contact_id),
                "at": _iso(event.at),
                "run_id": event.run_id,
                "side": event.side,
                "field": event.field,
                "before": _text(event.before),
                "after": _text(event.after),
                "reason": event.reason,
                "detail": json.dumps(dict(event.detail), ensure_ascii=False, sort_keys=True)
                if event.detail
                else None,
            }
            for event in events
        ]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(history.insert(), rows)
        return len(rows)

    def events(
        self, *, codes: Iterable[int] = (), contact_ids: Iterable[object] = ()
    ) -> list[HistoryEvent]:
        """Every event naming one of these clients or contacts, oldest first."""
        wanted_codes = sorted({int(code) for code in codes})
        wanted_contacts = sorted({str(contact) for contact in contact_ids})
        if not wanted_codes and not wanted_contacts:
            return []
        statement = (
            select(history)
            .where(
                history.c.scope == self.scope,
                or_(history.c.code.in_(wanted_codes), history.c.contact_id.in_(wanted_contacts)),
            )
            .order_by(history.c.at, history.c.id)
        )
        with self.engine.connect() as conn:
            return [_event(row._mapping) for row in conn.execute(statement)]

    def codes_with_value(self, value: str) -> set[int]:
        """Clients whose history or agreed values hold this exact value (a NIF, an e-mail)."""
        found: set[int] = set()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(history.c.code).where(
                    history.c.scope == self.scope,
                    history.c.code.is_not(None),
                    or_(history.c.before == value, history.c.after == value),
                )
            )
            found.update(int(row.code) for row in rows)
        for entry in self.ledger:
            if value in entry.base.values():
                found.add(entry.code)
        return found

    def prune(self, *, older_than: datetime) -> int:
        """Drop history older than the retention (the pairs' agreed values are kept)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(history).where(
                    history.c.scope == self.scope, history.c.at < _iso(older_than)
                )
            )
        return int(result.rowcount or 0)

    def erase(self, *, codes: Iterable[int] = (), contact_ids: Iterable[object] = ()) -> int:
        """Remove every history row naming these clients or contacts (a person forgotten)."""
        wanted_codes = sorted({int(code) for code in codes})
        wanted_contacts = sorted({str(contact) for contact in contact_ids})
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(history).where(
                    history.c.scope == self.scope,
                    or_(
                        history.c.code.in_(wanted_codes), history.c.contact_id.in_(wanted_contacts)
                    ),
                )
            )
        return int(result.rowcount or 0)

    # ------------------------------------------------------------------ marks

    def mark(
        self, code: int, kind: str, *, contact_id: object = None, at: datetime | None = None
    ) -> bool:
        """Keep a decision for this client; False when it was already marked so."""
        if kind not in MARK_KINDS:
            raise ValueError(f"kind must be one of {MARK_KINDS}")
        with self.engine.begin() as conn:
            current = conn.execute(
                select(marks.c.kind).where(marks.c.scope == self.scope, marks.c.code == int(code))
            ).first()
            if current is not None and current.kind == kind:
                return False
            if current is not None:
                conn.execute(
                    marks.update()
                    .where(marks.c.scope == self.scope, marks.c.code == int(code))
                    .values(kind=kind, contact_id=_text(contact_id), at=_iso(at), reported_at=None)
                )
            else:
                conn.execute(
                    marks.insert().values(
                        scope=self.scope,
                        code=int(code),
                        kind=kind,
                        contact_id=_text(contact_id),
                        at=_iso(at),
                    )
                )
        return True

    def marks(self) -> dict[int, Mark]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(marks).where(marks.c.scope == self.scope))
            return {int(row.code): _mark(row._mapping) for row in rows}

    def marked_reported(self, codes: Iterable[int], *, at: datetime | None = None) -> None:
        """Note that a run report named these marks, so later runs stay quiet about them."""
        wanted = sorted({int(code) for code in codes})
        if not wanted:
            return
        with self.engine.begin() as conn:
            conn.execute(
                marks.update()
                .where(marks.c.scope == self.scope, marks.c.code.in_(wanted))
                .values(reported_at=_iso(at))
            )

    def unmark(self, code: int) -> Mark | None:
        """Lift the decision (a person brings the customer back on purpose)."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(marks).where(marks.c.scope == self.scope, marks.c.code == int(code))
            ).first()
            if row is None:
                return None
            conn.execute(
                delete(marks).where(marks.c.scope == self.scope, marks.c.code == int(code))
            )
            return _mark(row._mapping)


def _event(row: Any) -> HistoryEvent:
    return HistoryEvent(
        reason=row["reason"],
        code=None if row["code"] is None else int(row["code"]),
        contact_id=row["contact_id"],
        side=row["side"],
        field=row["field"],
        before=row["before"],
        after=row["after"],
        detail=json.loads(row["detail"]) if row["detail"] else {},
        run_id=row["run_id"],
        at=datetime.fromisoformat(row["at"]),
    )


def _mark(row: Any) -> Mark:
    return Mark(
        code=int(row["code"]),
        kind=row["kind"],
        contact_id=row["contact_id"],
        at=datetime.fromisoformat(row["at"]),
        reported=row["reported_at"] is not None,
    )
