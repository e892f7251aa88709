"""KeyIndex: one side's records by identity key, for the matching rule's census and lookups.

The matching rule needs to know how many records on a side hold a NIF or an e-mail, and which.
Held in dicts, every client's keys grew a target by ~120 MB at 190,000 clients; rows in a private
SQLite temporary file keep memory flat whatever the size of the books. Stored with SQLAlchemy
Core, as the sync's other state (the ledger, the contact index).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from .identity import email_identity, nif_identity

__all__ = ["KeyIndex"]

RecordId = int | str

_TABLES = sa.MetaData()
_RECORD_KEY = sa.Table(
    "record_key",
    _TABLES,
    sa.Column("n", sa.Integer, primary_key=True),  # insertion order
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("id", sa.Text, nullable=False),
    sa.Index("record_key_lookup", "kind", "key"),
    sa.Index("record_key_id", "id"),
)
_ID: sa.BindParameter[str] = sa.bindparam("id", type_=sa.Text)
_KIND: sa.BindParameter[str] = sa.bindparam("kind", type_=sa.Text)
_ADD = _RECORD_KEY.insert()
_DROP = _RECORD_KEY.delete().where(_RECORD_KEY.c.id == _ID)
_HOLDERS = (
    sa.select(_RECORD_KEY.c.id)
    .where(_RECORD_KEY.c.kind == _KIND, _RECORD_KEY.c.key == sa.bindparam("key"))
    .group_by(_RECORD_KEY.c.id)
    .order_by(sa.func.min(_RECORD_KEY.c.n))
)
_KEYS_OF = (
    sa.select(_RECORD_KEY.c.key)
    .where(_RECORD_KEY.c.id == _ID, _RECORD_KEY.c.kind == _KIND)
    .order_by(_RECORD_KEY.c.n)
)


def _private_file() -> sqlite3.Connection:
    # "" = a private temporary on-disk database, deleted on close (memory stays flat)
    return sqlite3.connect("", check_same_thread=False)


class KeyIndex:
    """Record ids by NIF identity and by e-mail identity (placeholders and invalid values are
    never keys). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engine = sa.create_engine("sqlite://", creator=_private_file, poolclass=StaticPool)
        self._db = self._engine.connect()
        _TABLES.create_all(self._db)
        self.records = 0

    def add(self, record_id: RecordId, *, nif: object, emails: Iterable[object]) -> None:
        """Index a record's keys (replacing what it had)."""
        keys = self.keys(nif=nif, emails=emails)
        rid = json.dumps(record_id)
        with self._lock:
            removed = self._db.execute(_DROP, {"id": rid}).rowcount
            if keys:
                self._db.execute(_ADD, [{"kind": k, "key": v, "id": rid} for k, v in keys])
            self.records += bool(keys) - bool(removed)

    @staticmethod
    def keys(*, nif: object, emails: Iterable[object]) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        if identity := nif_identity(nif):
            found.append(("nif", identity))
        for value in emails:
            if address := email_identity(value):
                found.append(("email", address))
        return list(dict.fromkeys(found))

    def remove(self, record_id: RecordId) -> None:
        with self._lock:
            removed = self._db.execute(_DROP, {"id": json.dumps(record_id)}).rowcount
            self.records -= bool(removed)

    def holders(self, kind: str, key: str) -> list[RecordId]:
        """Ids of the records holding ``key`` (a normalized identity), in insertion order."""
        if not key:
            return []
        with self._lock:
            rows = self._db.scalars(_HOLDERS, {"kind": kind, "key": key}).all()
        ids: list[RecordId] = [json.loads(rid) for rid in rows]
        return ids

    def count(self, kind: str, key: str) -> int:
        return len(self.holders(kind, key))

    def nif_of(self, record_id: RecordId) -> str | None:
        found = self._keys_of(record_id, "nif")
        return found[0] if found else None

    def emails_of(self, record_id: RecordId) -> list[str]:
        return self._keys_of(record_id, "email")

    def _keys_of(self, record_id: RecordId, kind: str) -> list[str]:
        with self._lock:
            rows = self._db.scalars(_KEYS_OF, {"id": json.dumps(record_id), "kind": kind}).all()
        return [str(key) for key in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._engine.dispose()
