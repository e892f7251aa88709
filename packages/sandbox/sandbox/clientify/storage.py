"""SQLite storage: contacts as JSON documents plus indexed columns for the list filters.

One connection shared by the server's threads behind a lock (the sandbox is not a throughput
benchmark of SQLite); WAL journal so a crash leaves a usable file. Times are integer microseconds
since the epoch (UTC); they are rendered in Europe/Madrid on the way out.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

DB_NAME = "clientify.sqlite3"

# First ids of each kind: large like the real service's (§3 example), so clients never assume
# small or dense ids.
ID_STARTS = {
    "contact": 135_000_001,
    "email": 104_000_001,
    "phone": 94_000_001,
    "address": 31_000_001,
    "website": 12_000_001,
    "tag": 7_000_001,
    "custom_value": 250_000_001,
    "custom_field": 476_001,
    "company": 22_000_001,
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS contacts (
    id INTEGER PRIMARY KEY,
    created_us INTEGER NOT NULL,
    modified_us INTEGER NOT NULL,
    search TEXT NOT NULL,
    emails TEXT NOT NULL,
    phones TEXT NOT NULL,
    tags TEXT NOT NULL,
    tin TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS contacts_modified ON contacts (modified_us);
CREATE INDEX IF NOT EXISTS contacts_created ON contacts (created_us);
CREATE INDEX IF NOT EXISTS contacts_tin ON contacts (tin);
CREATE TABLE IF NOT EXISTS custom_fields (
    id INTEGER PRIMARY KEY,
    model TEXT NOT NULL,
    name TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS companies (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
"""

ORDERS = {
    "id": "id ASC",
    "-id": "id DESC",
    "created": "created_us ASC, id ASC",
    "-created": "created_us DESC, id DESC",
    "modified": "modified_us ASC, id ASC",
    "-modified": "modified_us DESC, id DESC",
}
_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def fold(text: str) -> str:
    """Lower case without accents, for the fuzzy `query` filter."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclasses.dataclass
class ContactFilter:
    """The list filters of §2, already parsed."""

    query: list[str] = dataclasses.field(default_factory=list)  # folded tokens, all must match
    email: str | None = None
    phone: str | None = None
    tag: str | None = None
    exact: bool = False  # email/phone/tag: exact item instead of substring
    contact_type: str | None = None
    contact_source: str | None = None
    created: list[tuple[str, int]] = dataclasses.field(default_factory=list)  # (op, us)
    modified: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    custom: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (field, value)

    def sql(self) -> tuple[str, list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        for token in self.query:
            where.append("instr(search, ?) > 0")
            params.append(token)
        for column, value in (("emails", self.email), ("phones", self.phone), ("tags", self.tag)):
            if value is None:
                continue
            if self.exact:
                where.append(f"instr(char(10) || {column} || char(10), ?) > 0")
                params.append("\n" + value.lower() + "\n")
            else:
                where.append(f"instr({column}, ?) > 0")
                params.append(value.lower())
        if self.contact_type is not None:
            where.append("json_extract(doc, '$.contact_type') = ?")
            params.append(self.contact_type)
        if self.contact_source is not None:
            where.append("json_extract(doc, '$.contact_source.name') = ?")
            params.append(self.contact_source)
        for column, bounds in (("created_us", self.created), ("modified_us", self.modified)):
            for op, us in bounds:
                where.append(f"{column} {_OPS[op]} ?")
                params.append(us)
        for name, value in self.custom:
            where.append(
                "EXISTS (SELECT 1 FROM json_each(doc, '$.custom_fields') AS cf "
                "WHERE json_extract(cf.value, '$.field') = ? "
                "AND CAST(json_extract(cf.value, '$.value') AS TEXT) = ?)"
            )
            params.extend([name, value])
        return (" WHERE " + " AND ".join(where)) if where else "", params


def _index_columns(doc: dict[str, Any]) -> tuple[str, str, str, str, str]:
    emails = [str(e.get("email", "")) for e in doc.get("emails", [])]
    phones = [str(p.get("phone", "")) for p in doc.get("phones", [])]
    tin = str(doc.get("taxpayer_identification_number") or "")
    search = " ".join([doc.get("first_name") or "", doc.get("last_name") or "", *emails, tin])
    return (
        fold(search),
        "\n".join(e.lower() for e in emails),
        "\n".join(p.lower() for p in phones),
        "\n".join(str(t["name"]).lower() for t in doc.get("tags", [])),
        normalize_tin(tin),
    )


def normalize_tin(tin: str) -> str:
    return "".join(ch for ch in tin.upper() if ch.isalnum())


class Store:
    """Thread-safe persistent store of one emulated Clientify account."""

    def __init__(self, data_dir: str | Path) -> None:
        path = Path(data_dir)
        path.mkdir(parents=True, exist_ok=True)
        self.path = path / DB_NAME
        self._lock: threading.RLock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    @property
    def lock(self) -> threading.RLock:
        """Hold it around a read-modify-write so concurrent writers do not lose updates."""
        return self._lock

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- ids -----------------------------------------------------------------------------
    def next_id(self, kind: str, count: int = 1) -> int:
        """Reserve `count` ids of `kind`; return the first."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (kind,)).fetchone()
            first = row[0] if row else ID_STARTS[kind]
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (kind, first + count)
            )
            return int(first)

    # -- contacts ------------------------------------------------------------------------
    @staticmethod
    def _row_to_doc(row: tuple[Any, ...]) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(row[3])
        doc["id"], doc["_created_us"], doc["_modified_us"] = row[0], row[1], row[2]
        return doc

    def get_contact(self, contact_id: int) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, created_us, modified_us, doc FROM contacts WHERE id = ?",
                (contact_id,),
            ).fetchone()
        return self._row_to_doc(row) if row else None

    def _params(self, doc: dict[str, Any]) -> tuple[Any, ...]:
        body = {k: v for k, v in doc.items() if not k.startswith("_") and k != "id"}
        return (
            doc["id"],
            doc["_created_us"],
            doc["_modified_us"],
            *_index_columns(doc),
            json.dumps(body, ensure_ascii=False),
        )

    def put_contact(self, doc: dict[str, Any]) -> None:
        """Insert or replace a contact (doc carries id, _created_us, _modified_us)."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO contacts "
                "(id, created_us, modified_us, search, emails, phones, tags, tin, doc) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self._params(doc),
            )

    def put_contacts(self, docs: Iterable[dict[str, Any]]) -> None:
        """Bulk insert in one transaction (seeding)."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO contacts "
                    "(id, created_us, modified_us, search, emails, phones, tags, tin, doc) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (self._params(d) for d in docs),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def delete_contact(self, contact_id: int) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM contacts WHERE id = ?", (contact_id,))
            return cur.rowcount > 0

    def count_contacts(self, flt: ContactFilter | None = None) -> int:
        where, params = (flt or ContactFilter()).sql()
        with self._lock:
            row = self._db.execute(f"SELECT COUNT(*) FROM contacts{where}", params).fetchone()  # noqa: S608
        return int(row[0])

    def list_contacts(
        self, flt: ContactFilter | None, order: str, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        where, params = (flt or ContactFilter()).sql()
        sql = (
            f"SELECT id, created_us, modified_us, doc FROM contacts{where} "  # noqa: S608
            f"ORDER BY {ORDERS[order]} LIMIT ? OFFSET ?"
        )
        with self._lock:
            rows = self._db.execute(sql, [*params, limit, offset]).fetchall()
        return [self._row_to_doc(r) for r in rows]

    def iter_contacts(self) -> Iterator[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, created_us, modified_us, doc FROM contacts ORDER BY id"
            ).fetchall()
        for row in rows:
            yield self._row_to_doc(row)

    def tin_exists(self, tin: str) -> bool:
        key = normalize_tin(tin)
        if not key:
            return False
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM contacts WHERE tin = ? LIMIT 1", (key,)
            ).fetchone()
        return row is not None

    # -- custom field definitions ---------------------------------------------------------
    def custom_fields(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, model, doc FROM custom_fields ORDER BY id"
            ).fetchall()
        out = []
        for row in rows:
            doc = json.loads(row[2])
            doc["id"], doc["model"] = row[0], row[1]
            out.append(doc)
        return out

    def find_custom_field(self, name: str, model: str = "contacts") -> dict[str, Any] | None:
        for field in self.custom_fields():
            if field["model"] == model and field["name"] == name:
                return field
        return None

    def add_custom_field(self, model: str, name: str, **attrs: Any) -> dict[str, Any]:
        with self._lock:
            field_id = self.next_id("custom_field")
            doc = {
                "name": name,
                "label": attrs.pop("label", None),
                "help_text": attrs.pop("help_text", ""),
                "field_type": attrs.pop("field_type", 3),
                "default_value": attrs.pop("default_value", ""),
                "dropdown_choices": attrs.pop("dropdown_choices", []),
                "visible": attrs.pop("visible", False),
            }
            self._db.execute(
                "INSERT INTO custom_fields (id, model, name, doc) VALUES (?, ?, ?, ?)",
                (field_id, model, name, json.dumps(doc, ensure_ascii=False)),
            )
        doc["id"], doc["model"] = field_id, model
        return doc

    # -- companies -------------------------------------------------------------------------
    def company_for_name(self, name: str) -> int:
        """The id of the company called `name`, created when missing (§3 `company` on write)."""
        with self._lock:
            row = self._db.execute("SELECT id FROM companies WHERE name = ?", (name,)).fetchone()
            if row:
                return int(row[0])
            company_id = self.next_id("company")
            self._db.execute("INSERT INTO companies (id, name) VALUES (?, ?)", (company_id, name))
            return company_id

    def company_names(self, ids: Iterable[int | None]) -> dict[int, str]:
        wanted = sorted({i for i in ids if i is not None})
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, name FROM companies WHERE id IN ({marks})",  # noqa: S608
                wanted,
            ).fetchall()
        return {int(r[0]): str(r[1]) for r in rows}

    def put_companies(self, companies: dict[str, int]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO companies (id, name) VALUES (?, ?)",
                [(cid, name) for name, cid in companies.items()],
            )

    def set_counters(self, counters: dict[str, int]) -> None:
        """Set the next id of each kind (after a bulk seed that numbered items itself)."""
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(counters.items())
            )

    # -- whole account -----------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything (reseeding replaces the data)."""
        with self._lock:
            self._db.execute("BEGIN")
            for table in ("meta", "contacts", "custom_fields", "companies"):
                self._db.execute(f"DELETE FROM {table}")  # noqa: S608
            self._db.execute("COMMIT")
