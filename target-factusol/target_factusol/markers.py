"""The creation marker: a line ``clientifyid <contact id>`` in F_CLI.OBSCLI.

FactuSOL returns no id on insert and has no external-id column (reference §7.4). The marker makes
creation idempotent across crashes: a client created for a contact whose write-back never
happened is found by its marker on the next run and linked instead of created again. OBSCLI (the
observations memo) is visible and harmless; MEMCLI is never used because the desktop pops it up.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from factusol_api import FactusolError, sql_int

MARKER_WORD = "clientifyid"
# Only letters inside the LIKE pattern: the server's SQL dialect is unknown (Access or SQL
# Server), and `[`, `#` or `_` may be wildcards there. The exact line is checked in code.
MARKER_QUERY = f"SELECT CODCLI, OBSCLI FROM F_CLI WHERE OBSCLI LIKE '%{MARKER_WORD}%'"  # noqa: S608
# One answer held at a time: every marked client in one answer took ~90 MB at 95,000 markers.
MARKER_PAGE_SIZE = 5000
_MARKER_RE = re.compile(rf"^[ \t]*{MARKER_WORD}[ \t]+([0-9]+)[ \t]*$", re.MULTILINE | re.IGNORECASE)


def marker_line(contact_id: int) -> str:
    """The OBSCLI line that marks a client as created for ``contact_id``."""
    return f"{MARKER_WORD} {int(contact_id)}"


def marker_ids(obscli: object) -> set[int]:
    """Contact ids whose marker line appears in an OBSCLI value."""
    if not isinstance(obscli, str):
        return set()
    return {int(m) for m in _MARKER_RE.findall(obscli.replace("\r\n", "\n").replace("\r", "\n"))}


def with_marker(obscli: object, contact_id: int) -> str:
    """OBSCLI with the marker line appended (unchanged when it is already there)."""
    text = obscli if isinstance(obscli, str) else ""
    if int(contact_id) in marker_ids(text):
        return text
    line = marker_line(contact_id)
    return f"{text.rstrip()}\r\n{line}" if text.strip() else line


def markers_by_contact(rows: Iterable[Mapping[str, Any]]) -> dict[int, list[int]]:
    """``{contact id: [CODCLI, …]}`` from rows of ``MARKER_QUERY``."""
    found: dict[int, set[int]] = {}
    for row in rows:
        try:
            code = int(row["CODCLI"])
        except (KeyError, TypeError, ValueError):
            continue
        for contact_id in marker_ids(row.get("OBSCLI")):
            found.setdefault(contact_id, set()).add(code)
    return {contact_id: sorted(codes) for contact_id, codes in found.items()}


def marker_page_query(after_code: int, page_size: int = MARKER_PAGE_SIZE) -> str:
    """One keyset page of ``MARKER_QUERY``: marked clients after CODCLI ``after_code``."""
    last, size = int(sql_int(after_code)), int(sql_int(page_size))  # ints only reach the SQL
    if size < 1:
        raise ValueError("page_size must be a positive integer")
    return f"SELECT TOP {size} CODCLI, OBSCLI FROM F_CLI WHERE OBSCLI LIKE '%{MARKER_WORD}%' AND CODCLI > {last} ORDER BY CODCLI"  # noqa: E501, S608


class Queryable(Protocol):
    def query(self, sql: str) -> list[dict[str, Any]]: ...


class MarkerIndex:
    """``{contact id: [CODCLI, …]}`` in a private SQLite temporary file (deleted on close), so
    memory stays flat whatever the number of marked clients. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # "" = a private temporary on-disk database
        self._db = sqlite3.connect("", check_same_thread=False, isolation_level=None)
        self._db.execute(
            "CREATE TABLE marker (n INTEGER PRIMARY KEY, contact INTEGER NOT NULL, "
            "code INTEGER NOT NULL)"
        )
        self._db.execute("CREATE INDEX marker_contact ON marker (contact, n)")
        self._contacts = 0

    def add_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Index the markers of rows of ``MARKER_QUERY`` (rows in ascending CODCLI order)."""
        pairs = sorted(markers_by_contact(rows).items())
        with self._lock:
            self._db.execute("BEGIN")
            for contact_id, codes in pairs:
                self._add(contact_id, codes)
            self._db.execute("COMMIT")

    def add(self, contact_id: int, code: int) -> None:
        with self._lock:
            self._add(contact_id, [code])

    def _add(self, contact_id: int, codes: list[int]) -> None:
        if not self._db.execute(
            "SELECT 1 FROM marker WHERE contact = ? LIMIT 1", (contact_id,)
        ).fetchone():
            self._contacts += 1
        self._db.executemany(
            "INSERT INTO marker (contact, code) VALUES (?, ?)",
            [(contact_id, code) for code in codes],
        )

    def get(self, contact_id: int) -> list[int] | None:
        """The codes marked for ``contact_id`` in the order indexed, or None."""
        with self._lock:
            rows = self._db.execute(
                "SELECT code FROM marker WHERE contact = ? ORDER BY n", (int(contact_id),)
            ).fetchall()
        return [int(code) for (code,) in rows] or None

    def __len__(self) -> int:
        """How many contacts have a marker."""
        return self._contacts

    def close(self) -> None:
        with self._lock:
            self._db.close()


def load_markers(fs: Queryable, *, page_size: int = MARKER_PAGE_SIZE) -> MarkerIndex:
    """Every creation marker of F_CLI, read in keyset pages by CODCLI (one page in memory)."""
    index = MarkerIndex()
    last = 0
    try:
        while True:
            rows = fs.query(marker_page_query(last, page_size))
            if not rows:
                break
            high = max(int(sql_int(row.get("CODCLI"))) for row in rows)
            if high <= last:
                raise FactusolError(
                    f"keyset paging of the creation markers did not advance past CODCLI {last}"
                )
            index.add_rows(rows)
            if len(rows) < page_size:
                break
            last = high
    except BaseException:
        index.close()
        raise
    return index


class MarkerView:
    """F_CLI's markers (``index``) followed by those this run wrote (``written``)."""

    def __init__(self, index: MarkerIndex, written: Mapping[int, list[int]]) -> None:
        self.index, self.written = index, written

    def get(self, contact_id: int) -> list[int] | None:
        codes = [*(self.index.get(contact_id) or []), *self.written.get(contact_id, [])]
        return codes or None
