"""Claims: the links a run has made (or, in a dry run, planned) that the contact index does not
show yet, so later records of the run see them exactly as a real run would. One place for the
claim state in both targets (it sat in target-clientify's decider and target-factusol's finder).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Mapping
from typing import Any

from clientify_api import ContactIndex, custom_field_text, link_key


def _id_key(contact_id: object) -> str:
    # The contact id as the dicts this replaced told them apart: 7 and "7" are two ids.
    return json.dumps(contact_id)


class Claims:
    """Client code <-> contact id, for the rest of the run (thread-safe: writers release).

    Kept in a private SQLite temporary file (deleted on close), not in dicts: a run that creates
    85,000 clients claims 85,000 codes (~15 MB of dicts), and memory must stay flat in N.
    Contact ids are ints, str or None (a dry run's placeholders are negative ints).
    """

    def __init__(self, link_field: str, index: Callable[[], ContactIndex]) -> None:
        self._link_field = link_field
        self._index = index
        self._lock = threading.Lock()
        # "" = a private temporary on-disk database; code -> contact id, one row per code
        self._db = sqlite3.connect("", check_same_thread=False, isolation_level=None)
        self._db.execute("CREATE TABLE claim (code TEXT PRIMARY KEY, contact TEXT NOT NULL)")
        # contact id -> code: the latest claim of that contact (what the dict kept)
        self._db.execute("CREATE TABLE claimant (contact TEXT PRIMARY KEY, code TEXT NOT NULL)")

    def claim(self, code: object, contact_id: object) -> bool:
        """Link client ``code`` to ``contact_id``; False when this run had already claimed it."""
        key, cid = link_key(code), _id_key(contact_id)
        with self._lock:
            if self._db.execute("SELECT 1 FROM claim WHERE code = ?", (key,)).fetchone():
                return False
            self._db.execute("INSERT INTO claim (code, contact) VALUES (?, ?)", (key, cid))
            self._db.execute(
                "INSERT OR REPLACE INTO claimant (contact, code) VALUES (?, ?)", (cid, key)
            )
            return True

    def release(self, code: object) -> None:
        """A refused write: forget the claim (later batches decide afresh)."""
        key = link_key(code)
        with self._lock:
            row = self._db.execute("SELECT contact FROM claim WHERE code = ?", (key,)).fetchone()
            if row is None:
                return
            self._db.execute("DELETE FROM claim WHERE code = ?", (key,))
            if row[0] != "null":  # a None contact id never had its reverse entry removed
                self._db.execute(
                    "DELETE FROM claimant WHERE contact = ? AND code = ?", (row[0], key)
                )

    def claimed(self, code: object) -> object | None:
        """The contact id this run linked to client ``code``, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT contact FROM claim WHERE code = ?", (link_key(code),)
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def contact_of(self, code: object) -> str | None:
        """The contact linked to client ``code``: claimed in this run, else in Clientify."""
        claimed = self.claimed(code)
        if claimed is not None:
            return str(claimed)
        linked = self._index().by_factusol_id(link_key(code))
        return str(linked[0].get("id")) if linked else None

    def client_of(self, contact: Mapping[str, Any]) -> str | None:
        """The client a contact is linked to: claimed in this run, else its link field (any
        text there counts as a link: such a contact is never adopted by matching)."""
        with self._lock:
            row = self._db.execute(
                "SELECT code FROM claimant WHERE contact = ?", (_id_key(contact.get("id")),)
            ).fetchone()
        if row is not None:
            return str(row[0])
        value = custom_field_text(contact, self._link_field)
        return None if value is None else link_key(value)
