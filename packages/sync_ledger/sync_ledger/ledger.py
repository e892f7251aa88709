"""The sync ledger: per linked pair, the values both systems last agreed on.

The three-way merge (customer_sync.merge) needs a base to tell a user's change from the sync's
own write. This module only stores it: a SQL table reached by a SQLAlchemy URL, so the same code
runs on an embedded SQLite file (the default, nothing to install) and on PostgreSQL (many
companies, a server that gets replaced).

Rows are keyed by ``scope`` (one Clientify account: the namespace of its ``factusol_id`` links)
and the FactuSOL client code; the contact id says which contact the base belongs to. A write
that may not finish is announced first (:meth:`SyncLedger.begin`) and settled by
:meth:`SyncLedger.record`, so a crash between a write and the ledger update neither loses nor
repeats a change.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    MetaData,
    String,
    Table,
    Text,
    case,
    create_engine,
    delete,
    event,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Engine, make_url

__all__ = ["LedgerEntry", "SyncLedger", "ledger_url"]

SIDES = ("factusol", "clientify")
_CODES_PER_QUERY = 500

metadata = MetaData()
pairs = Table(
    "sync_ledger_pair",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("code", BigInteger, primary_key=True, autoincrement=False),
    Column("contact_id", String(64), nullable=False),
    Column("base", Text, nullable=False),  # JSON {field: value}
    Column("pending", Text, nullable=True),  # JSON {field: [side, value]}
    Column("clientify_written_at", String(40), nullable=True),  # ISO, the server's time
    Column("updated_at", String(40), nullable=False),
)
Index("sync_ledger_pair_contact", pairs.c.scope, pairs.c.contact_id)


@dataclass(frozen=True)
class LedgerEntry:
    """One linked pair's agreed values (and writes started but not settled)."""

    code: int
    contact_id: str
    base: dict[str, str] = field(default_factory=dict)
    pending: dict[str, tuple[str, str]] = field(default_factory=dict)
    clientify_written_at: datetime | None = None

    def belongs_to(self, contact_id: object) -> bool:
        """Whether this base is that contact's (a link moved to another contact has none)."""
        return self.contact_id == str(contact_id)


def ledger_url(value: str) -> URL:
    """A SQLAlchemy URL from a setting: a URL, or a bare file path meaning SQLite.

    ``postgresql://`` is read as psycopg 3 (SQLAlchemy 2.0 would pick psycopg2), so the same
    setting means the same driver in every virtualenv.
    """
    text = value.strip()
    if "://" not in text:
        return URL.create("sqlite", database=text)
    url = make_url(text)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class SyncLedger:
    """The ledger of one scope (one Clientify account) in a SQLite file or PostgreSQL.

    Thread-safe: a target's writer threads record pairs concurrently. ``repr`` never shows the
    URL's password.
    """

    def __init__(self, url: str | URL, *, scope: str) -> None:
        self.url = ledger_url(url) if isinstance(url, str) else url
        if not scope:
            raise ValueError("a ledger needs a scope (the Clientify account it belongs to)")
        self.scope = scope
        self._lock = threading.Lock()
        self.engine = self._engine(self.url)
        metadata.create_all(self.engine)

    @staticmethod
    def _engine(url: URL) -> Engine:
        if url.get_backend_name() != "sqlite":
            return create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=8)
        database = url.database or ""
        if database and database != ":memory:":
            path = Path(database)
            path.parent.mkdir(parents=True, exist_ok=True)
            # customer data: readable by its owner only, from the moment it exists
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine

    def __repr__(self) -> str:
        return (
            f"SyncLedger({self.url.render_as_string(hide_password=True)!r}, scope={self.scope!r})"
        )

    # ------------------------------------------------------------------ reads

    def get(self, code: int) -> LedgerEntry | None:
        return self.get_many([code]).get(int(code))

    def get_many(self, codes: Iterable[int]) -> dict[int, LedgerEntry]:
        """Entries by code (codes without one are absent)."""
        wanted = sorted({int(code) for code in codes})
        found: dict[int, LedgerEntry] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), _CODES_PER_QUERY):
                chunk = wanted[start : start + _CODES_PER_QUERY]
                rows = conn.execute(
                    select(pairs).where(pairs.c.scope == self.scope, pairs.c.code.in_(chunk))
                )
                for row in rows:
                    entry = _entry(row._mapping)
                    found[entry.code] = entry
        return found

    def by_contact(self, contact_id: object) -> list[LedgerEntry]:
        """Entries naming this contact (normally one)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(pairs).where(
                    pairs.c.scope == self.scope, pairs.c.contact_id == str(contact_id)
                )
            )
            return [_entry(row._mapping) for row in rows]

    def __len__(self) -> int:
        with self.engine.connect() as conn:
            count = conn.execute(
                select(func.count()).select_from(pairs).where(pairs.c.scope == self.scope)
            ).scalar_one()
        return int(count)

    def __iter__(self) -> Iterator[LedgerEntry]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(pairs).where(pairs.c.scope == self.scope).order_by(pairs.c.code)
            ).fetchall()
        for row in rows:
            yield _entry(row._mapping)

    # ------------------------------------------------------------------ writes

    def begin(self, code: int, contact_id: object, side: str, values: Mapping[str, str]) -> None:
        """Announce a write of ``values`` to ``side`` for this pair, before making it.

        Kept only when the pair already has an entry: a new pair has no base to protect.
        """
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}")
        if not values:
            return
        with self._lock, self.engine.begin() as conn:
            row = conn.execute(
                select(pairs.c.pending, pairs.c.contact_id).where(
                    pairs.c.scope == self.scope, pairs.c.code == int(code)
                )
            ).first()
            if row is None or row.contact_id != str(contact_id):
                return
            pending = json.loads(row.pending) if row.pending else {}
            pending.update({name: [side, value] for name, value in values.items()})
            conn.execute(
                pairs.update()
                .where(pairs.c.scope == self.scope, pairs.c.code == int(code))
                .values(pending=json.dumps(pending, ensure_ascii=False), updated_at=_now())
            )

    def record(
        self,
        code: int,
        contact_id: object,
        base: Mapping[str, str],
        *,
        clientify_written_at: datetime | None = None,
        keep_pending: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        """Store the pair's agreed values; settle its pending writes (except ``keep_pending``).

        ``clientify_written_at`` is when the sync last wrote the contact (the server's time): a
        contact ``modified`` not later than it is the sync's own write, not a user's.
        """
        values: dict[str, Any] = {
            "contact_id": str(contact_id),
            "base": json.dumps(dict(base), ensure_ascii=False, sort_keys=True),
            "pending": (
                json.dumps({k: list(v) for k, v in keep_pending.items()}, ensure_ascii=False)
                if keep_pending
                else None
            ),
            "updated_at": _now(),
        }
        written = clientify_written_at.astimezone(UTC).isoformat() if clientify_written_at else None
        insert = (
            postgresql.insert(pairs)
            if self.engine.dialect.name == "postgresql"
            else sqlite.insert(pairs)
        )
        statement = insert.values(
            scope=self.scope, code=int(code), clientify_written_at=written, **values
        )
        update: dict[str, Any] = {k: statement.excluded[k] for k in values}
        if written is None:
            # the last write time stays while the pair keeps its contact (SET reads the old row)
            update["clientify_written_at"] = case(
                (pairs.c.contact_id == str(contact_id), pairs.c.clientify_written_at), else_=None
            )
        else:
            update["clientify_written_at"] = statement.excluded.clientify_written_at
        with self._lock, self.engine.begin() as conn:
            conn.execute(
                statement.on_conflict_do_update(index_elements=["scope", "code"], set_=update)
            )

    def forget(self, code: int) -> None:
        with self._lock, self.engine.begin() as conn:
            conn.execute(delete(pairs).where(pairs.c.scope == self.scope, pairs.c.code == code))

    def close(self) -> None:
        self.engine.dispose()


def _entry(row: Any) -> LedgerEntry:
    pending = json.loads(row["pending"]) if row["pending"] else {}
    written = row["clientify_written_at"]
    return LedgerEntry(
        code=int(row["code"]),
        contact_id=str(row["contact_id"]),
        base=dict(json.loads(row["base"])),
        pending={name: (str(v[0]), str(v[1])) for name, v in pending.items()},
        clientify_written_at=datetime.fromisoformat(written) if written else None,
    )
