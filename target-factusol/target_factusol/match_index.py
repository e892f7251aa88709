"""FactuSOL clients by compacted NIF and e-mail, for first-run matching, in a SQLite temp file.

Python dicts of every client's NIF and e-mail grew the target by ~120 MB at 190,000 clients;
rows on disk keep its memory flat whatever the size of F_CLI.
"""

from __future__ import annotations

import sqlite3
import threading


class ClientMatchIndex:
    """Codes by NIF key and by e-mail, in insertion order; one row per indexed client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # "" = a private temporary on-disk database, deleted on close.
        self._db = sqlite3.connect("", check_same_thread=False)
        self._db.executescript(
            """
            CREATE TABLE client (code INTEGER NOT NULL, nif TEXT, email TEXT);
            CREATE INDEX client_nif ON client (nif);
            CREATE INDEX client_email ON client (email);
            CREATE INDEX client_code ON client (code);
            """
        )
        self.nifs = 0
        self.emails = 0

    def add(self, code: int, nif: str | None, email: str | None) -> None:
        """Index a client (empty keys are not indexed)."""
        if not nif and not email:
            return
        with self._lock:
            self._db.execute(
                "INSERT INTO client (code, nif, email) VALUES (?, ?, ?)",
                (code, nif or None, email or None),
            )
            self.nifs += bool(nif)
            self.emails += bool(email)

    def remove(self, code: int, nif: str | None, email: str | None) -> None:
        """Undo :meth:`add` with the same values."""
        with self._lock:
            self._db.execute(
                "DELETE FROM client WHERE code = ? AND nif IS ? AND email IS ?",
                (code, nif or None, email or None),
            )

    def by_nif(self, nif: str) -> list[int]:
        return self._codes("nif", nif)

    def by_email(self, email: str) -> list[int]:
        return self._codes("email", email)

    def nif_of(self, code: int) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT nif FROM client WHERE code = ? AND nif IS NOT NULL "
                "ORDER BY rowid DESC LIMIT 1",
                (code,),
            ).fetchone()
        return str(row[0]) if row else None

    def _codes(self, column: str, key: str) -> list[int]:
        if not key:
            return []
        with self._lock:
            rows = self._db.execute(
                f"SELECT code FROM client WHERE {column} = ? ORDER BY rowid",  # noqa: S608 (fixed names)
                (key,),
            ).fetchall()
        return [int(code) for (code,) in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
