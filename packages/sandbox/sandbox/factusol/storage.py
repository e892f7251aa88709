"""SQLite storage: one database file per (baseDatosCliente, ejercicio) under the data dir (§2, §6).

Every call opens its own connection (the server is threaded); writes to one file are serialised
with a lock, reads run in parallel (WAL).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sandbox.factusol import sql
from sandbox.factusol.schema import DATE, F_CLI, PRIMARY_KEYS, TABLES

_BASE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_YEAR = re.compile(r"^\d{4}$")
_FILE = re.compile(r"^(?P<base>[A-Za-z0-9][A-Za-z0-9_-]*)_(?P<year>\d{4})\.sqlite3$")

Rows = list[tuple[Any, ...]]


class AlreadyExists(Exception):
    """Insert with a primary key that is already there (→ BDExisteRegistro)."""


def valid_base(base: str) -> bool:
    return bool(_BASE.match(base))


def valid_year(year: str) -> bool:
    return bool(_YEAR.match(year))


class Store:
    """The company databases of one data dir."""

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._locks: dict[Path, threading.Lock] = {}
        self._ready: set[Path] = set()
        self._guard = threading.Lock()

    # -- files -------------------------------------------------------------------------------
    def path(self, base: str, year: str) -> Path:
        if not valid_base(base) or not valid_year(year):
            raise ValueError(f"bad database name {base!r}/{year!r}")
        return self.data_dir / f"{base}_{year}.sqlite3"

    def exists(self, base: str, year: str) -> bool:
        return self.path(base, year).exists()

    def years_on_disk(self, base: str) -> list[int]:
        years = []
        for item in self.data_dir.glob("*.sqlite3"):
            match = _FILE.match(item.name)
            if match and match.group("base") == base:
                years.append(int(match.group("year")))
        return sorted(years)

    def _lock(self, path: Path) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(path, threading.Lock())

    @contextlib.contextmanager
    def connect(self, base: str, year: str) -> Iterator[sqlite3.Connection]:
        """A connection to the company/year database, created with an empty F_CLI if needed."""
        path = self.path(base, year)
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            if path not in self._ready:
                with self._lock(path):
                    conn.execute("PRAGMA journal_mode = WAL")
                    conn.execute(_create_table_sql("F_CLI"))
                self._ready.add(path)
            sql.register_functions(conn)
            yield conn
        finally:
            conn.close()

    # -- reads -------------------------------------------------------------------------------
    def select(self, base: str, year: str, query: str) -> tuple[list[str], Rows]:
        """Run one read-only statement; raise sql.SqlError on any SQLite error."""
        with self.connect(base, year) as conn:
            conn.set_authorizer(sql.authorizer("read"))
            try:
                cursor = conn.execute(query)
                rows = cursor.fetchall()
            except (sqlite3.Error, sqlite3.Warning, ValueError, OverflowError) as exc:
                raise sql.SqlError(str(exc)) from exc
            names = [d[0] for d in cursor.description or ()]
        return names, rows

    def rows_as_dicts(
        self, base: str, year: str, where: str = "1=1", params: Sequence[Any] = ()
    ) -> list[dict[str, Any]]:
        """F_CLI rows as {column: value} (admin routes; `where` is trusted here)."""
        if not self.exists(base, year):
            return []
        with self.connect(base, year) as conn:
            query = f"SELECT * FROM F_CLI WHERE {where} ORDER BY CODCLI"  # noqa: S608 - trusted
            cursor = conn.execute(query, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def max_code(self, base: str, year: str) -> int:
        with self.connect(base, year) as conn:
            value = conn.execute("SELECT MAX(CODCLI) FROM F_CLI").fetchone()[0]
        return int(value or 0)

    # -- writes ------------------------------------------------------------------------------
    def delete_where(self, base: str, year: str, table: str, query: str) -> int:
        with self.connect(base, year) as conn, self._lock(self.path(base, year)):
            conn.set_authorizer(sql.authorizer("delete", table))
            try:
                cursor = conn.execute(query)
            except (sqlite3.Error, sqlite3.Warning, ValueError, OverflowError) as exc:
                raise sql.SqlError(str(exc)) from exc
            return cursor.rowcount

    def insert(self, base: str, year: str, table: str, values: dict[str, Any]) -> None:
        names = list(values)
        statement = (
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"  # noqa: S608 - names are schema columns, values are bound
        )
        with self.connect(base, year) as conn, self._lock(self.path(base, year)):
            try:
                conn.execute(statement, [values[n] for n in names])
            except sqlite3.IntegrityError as exc:
                raise AlreadyExists(str(exc)) from exc

    def update(
        self, base: str, year: str, table: str, key: dict[str, Any], values: dict[str, Any]
    ) -> int:
        """Update the row with primary key `key`; return the number of rows found (0 or 1)."""
        where = " AND ".join(f"{k} = ?" for k in key)
        with self.connect(base, year) as conn, self._lock(self.path(base, year)):
            if not values:
                found = conn.execute(
                    f"SELECT COUNT(*) FROM {table} WHERE {where}",  # noqa: S608 - schema names
                    list(key.values()),
                )
                return int(found.fetchone()[0])
            sets = ", ".join(f"{n} = ?" for n in values)
            cursor = conn.execute(
                f"UPDATE {table} SET {sets} WHERE {where}",  # noqa: S608 - schema names
                [*values.values(), *key.values()],
            )
            return cursor.rowcount

    def delete_key(self, base: str, year: str, code: int) -> int:
        with self.connect(base, year) as conn, self._lock(self.path(base, year)):
            return conn.execute("DELETE FROM F_CLI WHERE CODCLI = ?", [code]).rowcount

    def restyle_dates(self, base: str, year: str, style: str) -> None:
        """Rewrite the stored date text of F_CLI in the form of switch `date_values`.

        `datetime`: `YYYY-MM-DDTHH:MM:SS` (what writes and the seed store). `bare_date`: a date
        without a time of day is stored bare, `YYYY-MM-DD`. `text_dmy`: `DD/MM/YYYY HH:MM:SS`
        text. SQLite compares and sorts all of them as text, which is the point of the switch.
        """
        if not self.exists(base, year):
            return
        with self.connect(base, year) as conn, self._lock(self.path(base, year)):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for column in _DATE_COLUMNS:
                    for statement in _restyle_sql(column, style):
                        conn.execute(statement)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def replace_all(self, base: str, year: str, rows: Iterable[Sequence[Any]]) -> int:
        """Replace every F_CLI row by `rows` (full column tuples), in one bulk transaction."""
        names = [c.name for c in F_CLI]
        marks = ", ".join("?" * len(names))
        statement = f"INSERT INTO F_CLI ({', '.join(names)}) VALUES ({marks})"  # noqa: S608
        with self.connect(base, year) as conn, self._lock(self.path(base, year)):
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM F_CLI")
                cursor = conn.executemany(statement, rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return cursor.rowcount


# Stored date text per switch `date_values` (see Store.restyle_dates); GLOB patterns, not LIKE:
# LIKE is the slow Python function registered by sql.register_functions.
_DATE_COLUMNS = tuple(c.name for c in F_CLI if c.kind == DATE)


# {c} is a schema column name (never client input); the GLOB patterns are ISO date-time,
# bare ISO date and DD/MM/YYYY HH:MM:SS text.
_TO_ISO = (
    "UPDATE F_CLI SET {c} = {c} || 'T00:00:00' WHERE {c} GLOB "
    "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'",
    "UPDATE F_CLI SET {c} = substr({c}, 7, 4) || '-' || substr({c}, 4, 2) || '-' || "
    "substr({c}, 1, 2) || 'T' || substr({c}, 12, 8) WHERE {c} GLOB "
    "'[0-9][0-9]/[0-9][0-9]/[0-9][0-9][0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]'",
)
_FROM_ISO = {
    "bare_date": "UPDATE F_CLI SET {c} = substr({c}, 1, 10) WHERE {c} GLOB "
    "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T00:00:00'",
    "text_dmy": "UPDATE F_CLI SET {c} = substr({c}, 9, 2) || '/' || substr({c}, 6, 2) || '/' || "
    "substr({c}, 1, 4) || ' ' || substr({c}, 12, 8) WHERE {c} GLOB "
    "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]'",
}


def _restyle_sql(column: str, style: str) -> list[str]:
    """UPDATEs that turn `column` into ISO date-times, then into `style`."""
    templates = [*_TO_ISO, *([_FROM_ISO[style]] if style in _FROM_ISO else [])]
    return [template.replace("{c}", column) for template in templates]


def _create_table_sql(table: str) -> str:
    keys = PRIMARY_KEYS[table]
    cols = ",\n  ".join(c.ddl(primary_key=c.name in keys) for c in TABLES[table])
    return f"CREATE TABLE IF NOT EXISTS {table} (\n  {cols}\n)"
