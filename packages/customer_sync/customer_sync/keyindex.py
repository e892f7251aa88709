"""KeyIndex: one side's records by identity key, for the matching rule's census and lookups.

The matching rule needs to know how many records on a side hold a NIF or an e-mail, and which.
Held in dicts, every client's keys grew a target by ~120 MB at 190,000 clients; rows in a private
SQLite temporary file keep memory flat whatever the size of the books.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable

from .identity import email_identity, nif_identity

__all__ = ["KeyIndex"]

RecordId = int | str


class KeyIndex:
    """Record ids by NIF identity and by e-mail identity (placeholders and invalid values are
    never keys). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # "" = a private temporary on-disk database, deleted on close.
        self._db = sqlite3.connect("", check_same_thread=False)
        self._db.executescript(
            """
            CREATE TABLE record_key (kind TEXT NOT NULL, key TEXT NOT NULL, id TEXT NOT NULL);
            CREATE INDEX record_key_lookup ON record_key (kind, key);
            CREATE INDEX record_key_id ON record_key (id);
            """
        )
        self.records = 0

    def add(self, record_id: RecordId, *, nif: object, emails: Iterable[object]) -> None:
        """Index a record's keys (replacing what it had)."""
        keys = self.keys(nif=nif, emails=emails)
        rid = json.dumps(record_id)
        with self._lock:
            removed = self._db.execute("DELETE FROM record_key WHERE id = ?", (rid,)).rowcount
            self._db.executemany(
                "INSERT INTO record_key (kind, key, id) VALUES (?, ?, ?)",
                [(kind, key, rid) for kind, key in keys],
            )
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
            removed = self._db.execute(
                "DELETE FROM record_key WHERE id = ?", (json.dumps(record_id),)
            ).rowcount
            self.records -= bool(removed)

    def holders(self, kind: str, key: str) -> list[RecordId]:
        """Ids of the records holding ``key`` (a normalized identity), in insertion order."""
        if not key:
            return []
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT id FROM record_key WHERE kind = ? AND key = ? ORDER BY rowid",
                (kind, key),
            ).fetchall()
        ids: list[RecordId] = [json.loads(rid) for (rid,) in rows]
        return ids

    def count(self, kind: str, key: str) -> int:
        return len(self.holders(kind, key))

    def nif_of(self, record_id: RecordId) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT key FROM record_key WHERE id = ? AND kind = 'nif'",
                (json.dumps(record_id),),
            ).fetchone()
        return str(row[0]) if row else None

    def emails_of(self, record_id: RecordId) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key FROM record_key WHERE id = ? AND kind = 'email' ORDER BY rowid",
                (json.dumps(record_id),),
            ).fetchall()
        return [str(key) for (key,) in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
