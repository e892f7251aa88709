"""Pure helpers over contact dicts: custom fields, keys, client-side filter checks, ContactIndex.

No HTTP here. Contacts are the dicts the API returns (list item or detail); a missing key means
"unknown", so every helper tolerates absent or null keys.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from clientify_api.timeutil import parse_api_datetime

# The app part of a localised content_type ("contacts | contacto"), or a bare old-style label.
CONTACT_CONTENT_TYPES = frozenset({"contact", "contacts", "contacto", "contactos"})

_NIF_JUNK = re.compile(r"[\s.\-]+")
_NIF_SEPARATORS = re.compile(r"[\s.\-/_]+")
_UNPADDED_DNI = re.compile(r"(?:ES)?(\d{6,7})([A-Z])")
_UNPADDED_NIE = re.compile(r"(?:ES)?([XYZ])(\d{5,6})([A-Z])")
_NON_DIGITS = re.compile(r"\D+")
# Shortest number we accept as a suffix match ("600111222" vs "+34 600 111 222").
_MIN_PHONE_SUFFIX = 6


def content_type_app(content_type: object) -> str:
    """``"contacts | contacto"`` -> ``"contacts"``; ``"contact"`` -> ``"contact"``."""
    if not isinstance(content_type, str):
        return ""
    return content_type.split(" | ", 1)[0].strip().casefold()


def is_contact_field_definition(definition: Mapping[str, Any]) -> bool:
    """True when a custom-field definition belongs to contacts (any localisation)."""
    return content_type_app(definition.get("content_type")) in CONTACT_CONTENT_TYPES


def _custom_field_entries(contact: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    entries = contact.get("custom_fields")
    if not isinstance(entries, list):
        return
    for entry in entries:
        if isinstance(entry, Mapping):
            yield entry


def custom_field_value(contact: Mapping[str, Any], name: str) -> Any:
    """Raw value of the custom field ``name`` on a contact (string, list or None)."""
    wanted = name.strip()
    for entry in _custom_field_entries(contact):
        # Read shapes vary: {field, value}, {id, field, value}, {field, value, field_detail}.
        if str(entry.get("field", entry.get("name", ""))).strip() == wanted:
            return entry.get("value")
    return None


def _as_texts(value: Any) -> list[str]:
    if value is None or isinstance(value, bool):
        return []
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            out.extend(_as_texts(item))
        return out
    if isinstance(value, Mapping):
        return _as_texts(value.get("value", value.get("name")))
    text = str(value).strip()
    return [text] if text else []


def custom_field_text(contact: Mapping[str, Any], name: str) -> str | None:
    """The custom field as one stripped string, or None when absent or empty.

    A dropdown value may be a list: its first non-empty element is used.
    """
    texts = _as_texts(custom_field_value(contact, name))
    return texts[0] if texts else None


def custom_field_matches(contact: Mapping[str, Any], name: str, value: object) -> bool:
    """Exact (stripped) match of a custom field value, or of any element of a list value."""
    wanted = str(value).strip()
    return bool(wanted) and wanted in _as_texts(custom_field_value(contact, name))


def link_key(value: object) -> str:
    """A link value as the client code it names: stripped, a whole number without leading
    zeros ("0010001" -> "10001"); any other text stays as it is (it names no client)."""
    text = str(value).strip()
    if text.isascii() and text.isdigit():
        return str(int(text))
    return text


def is_database_url(value: object) -> bool:
    """True for a PostgreSQL URL (the cache's other home); a path or str otherwise is SQLite."""
    return isinstance(value, str) and value.startswith(("postgresql", "postgres:"))


def compact_nif(value: object) -> str:
    """Uppercase, without spaces, dashes, dots and slashes. No validation (customer_sync's job),
    but the same compact form as its NIF identity, so a lookup by that identity finds the contact.
    """
    if not isinstance(value, str):
        return ""
    compact = _NIF_SEPARATORS.sub("", value).upper()
    # "ES" + a 9-character NIF is the same NIF (EU VAT form); customer_sync strips it too.
    if len(compact) == 11 and compact.startswith("ES"):
        return compact[2:]
    # A DNI or NIE typed without its leading zeros ("5837261E"): customer_sync pads it.
    if match := _UNPADDED_DNI.fullmatch(compact):
        return match[1].zfill(8) + match[2]
    if match := _UNPADDED_NIE.fullmatch(compact):
        return match[1] + match[2].zfill(7) + match[3]
    return compact


def normalize_email(value: object) -> str:
    """Lower-cased, stripped e-mail ('' when not a string)."""
    return value.strip().lower() if isinstance(value, str) else ""


def contact_emails(contact: Mapping[str, Any]) -> list[str]:
    """Every e-mail of a contact, normalized (``emails[]`` plus a flat ``email`` if present)."""
    found: list[str] = []
    items = contact.get("emails")
    for item in items if isinstance(items, list) else []:
        raw = item.get("email") if isinstance(item, Mapping) else item
        if email := normalize_email(raw):
            found.append(email)
    if email := normalize_email(contact.get("email")):
        found.append(email)
    return list(dict.fromkeys(found))


def contact_phones(contact: Mapping[str, Any]) -> list[str]:
    """Every phone of a contact, verbatim (the API never normalizes them)."""
    found: list[str] = []
    items = contact.get("phones")
    for item in items if isinstance(items, list) else []:
        raw = item.get("phone") if isinstance(item, Mapping) else item
        if isinstance(raw, str) and raw.strip():
            found.append(raw.strip())
    flat = contact.get("phone")
    if isinstance(flat, str) and flat.strip():
        found.append(flat.strip())
    return found


def contact_tags(contact: Mapping[str, Any]) -> list[str]:
    """Tag names (list items carry strings; tolerate ``{"name": ...}`` objects too)."""
    items = contact.get("tags")
    names: list[str] = []
    for item in items if isinstance(items, list) else []:
        raw = item.get("name") if isinstance(item, Mapping) else item
        if isinstance(raw, str) and raw.strip():
            names.append(raw.strip())
    return names


def phone_matches(stored: str, wanted: str) -> bool:
    """Same digits, or one is the other with a country/trunk prefix (``+34 600…`` vs ``600…``)."""
    a, b = _NON_DIGITS.sub("", stored), _NON_DIGITS.sub("", wanted)
    if not a or not b:
        return False
    if a == b:
        return True
    short, long_ = sorted((a, b), key=len)
    return len(short) >= _MIN_PHONE_SUFFIX and long_.endswith(short)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def query_matches(contact: Mapping[str, Any], query: str) -> bool:
    """Loose check for the fuzzy ``query`` filter: every word appears somewhere in the contact.

    Accent- and case-insensitive, also against a compacted copy (a NIF typed with dashes).
    Loose on purpose: it only has to catch a server that ignored the filter and answered with
    the whole account, not second-guess the server's fuzzy matching.
    """
    haystack = _fold(" ".join(_strings(dict(contact))))
    compact = _NIF_JUNK.sub("", haystack)
    terms = [_fold(t) for t in query.split()]
    return all(t in haystack or _NIF_JUNK.sub("", t) in compact for t in terms)


def datetime_bound_matches(contact: Mapping[str, Any], key: str, op: str, bound: datetime) -> bool:
    """Check ``contact[key] <op> bound``; a missing or unparseable value passes (unknown)."""
    value = parse_api_datetime(contact.get(key))
    if value is None:
        return True
    if op == "gte":
        return value >= bound
    if op == "gt":
        return value > bound
    if op == "lte":
        return value <= bound
    if op == "lt":
        return value < bound
    raise ValueError(f"unknown comparison {op!r}")


class _Store:
    """The index's database behind one small DB-API surface: ``sqlite3`` for a file (or a
    private temporary file), ``psycopg`` for PostgreSQL. SQL is written with ``?`` markers."""

    def __init__(self, target: str | Path | None) -> None:
        self.postgres = is_database_url(target)
        if self.postgres:
            import psycopg  # optional: only a PostgreSQL cache needs it

            assert isinstance(target, str)
            _scheme, _, rest = target.partition("://")
            self._conn: Any = psycopg.connect(f"postgresql://{rest}", connect_timeout=30)
            self.errors: tuple[type[Exception], ...] = (psycopg.Error,)
            self.locked: tuple[type[Exception], ...] = (psycopg.OperationalError,)
        else:
            path = "" if target is None else str(target)
            self._conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
            self.errors = (sqlite3.DatabaseError,)
            self.locked = (sqlite3.OperationalError,)
            try:
                self._conn.execute("PRAGMA synchronous=OFF")  # a cache: a torn file is rebuilt
            except sqlite3.DatabaseError:
                self._conn.close()
                raise

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(self._sql(sql), tuple(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        if self.postgres:
            with self._conn.cursor() as cursor:
                cursor.executemany(self._sql(sql), rows)
        else:
            self._conn.executemany(sql, rows)

    def commit(self) -> None:
        self._conn.commit()

    def close(self) -> None:
        self._conn.close()


class ContactIndex:
    """Lookup of contacts by link custom field, compacted NIF and e-mail, stored in SQL.

    Built from one paged scan (``ClientifyClient.load_contact_index``) and kept current with
    :meth:`add` / :meth:`remove`, so a target never scans the account once per record. The
    contacts live in a database, not in Python objects, so memory stays flat whatever the
    account's size: a private temporary SQLite file by default, or ``path``, a cache kept
    between runs (see :meth:`sync_state`): a SQLite file, or a PostgreSQL URL
    (``postgresql+psycopg://…``) shared by many companies, whose rows ``scope`` keeps apart.
    Changes to a kept index are durable after :meth:`commit`, or at once with
    :attr:`autocommit`. Thread-safe: a target may update it from several writer threads.
    Lookups return copies (several matches are the caller's ambiguity to report), in
    insertion order.
    """

    # 3: scoped tables (one PostgreSQL for many accounts), link keys; 4: NIFs zero-padded
    SCHEMA_VERSION = "4"

    def __init__(
        self, *, field: str = "factusol_id", path: str | Path | None = None, scope: str = "local"
    ) -> None:
        self.field = field
        self.scope = scope
        postgres = is_database_url(path)
        self.path = Path(path) if path is not None and not postgres else None
        self.url = path if postgres else None
        # Commit every add/remove at once: another run sharing the cache never waits long
        # for the write lock (cheap: the SQLite file is written without fsync).
        self.autocommit = False
        self._lock = threading.RLock()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                # contact data: readable by its owner only, from the moment it exists
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = _Store(self.url if postgres else self.path)
        try:
            if not self._db.postgres:
                for old in ("contact", "contact_key", "meta"):  # schema 1-2 tables
                    self._db.execute(f"DROP TABLE IF EXISTS {old}")
            for statement in _INDEX_SCHEMA:
                self._db.execute(statement)
            if self._meta("field") != field or self._meta("version") != self.SCHEMA_VERSION:
                self.clear()
                self._set_meta("field", field)
                self._set_meta("version", self.SCHEMA_VERSION)
            self._db.commit()
            row = self._db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM contact_index_contact WHERE scope = ?",
                (scope,),
            ).fetchone()
            self._seq = int(row[0])
        except self._db.errors:
            self._db.close()
            raise

    @classmethod
    def build(
        cls, contacts: Iterable[dict[str, Any]], *, field: str = "factusol_id"
    ) -> ContactIndex:
        """Index every contact of an iterable (typically ``client.iter_contacts()``)."""
        index = cls(field=field)
        for contact in contacts:
            index.add(contact)
        return index

    def __len__(self) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM contact_index_contact WHERE scope = ?", (self.scope,)
            ).fetchone()
            return int(row[0])

    def __contains__(self, contact_id: object) -> bool:
        with self._lock:
            found = self._db.execute(
                "SELECT 1 FROM contact_index_contact WHERE scope = ? AND pk = ?",
                (self.scope, _pk(contact_id)),
            ).fetchone()
            return found is not None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        last = 0
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT seq, body FROM contact_index_contact WHERE scope = ? AND seq > ? "
                    "ORDER BY seq LIMIT 500",
                    (self.scope, last),
                ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            for _, body in rows:
                yield json.loads(body)

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path is not None else ""
        if self.url is not None:
            where = ", postgresql"  # never the URL: it may hold a password
        return f"ContactIndex(field={self.field!r}, contacts={len(self)}{where})"

    def _keys(self, contact: Mapping[str, Any]) -> list[tuple[str, str]]:
        keys = [
            ("link", link_key(link)) for link in _as_texts(custom_field_value(contact, self.field))
        ]
        if nif := compact_nif(contact.get("taxpayer_identification_number")):
            keys.append(("nif", nif))
        keys.extend(("email", email) for email in contact_emails(contact))
        # a lone surrogate (hostile input) has no UTF-8 form to store: such a key finds nobody
        return [key for key in dict.fromkeys(keys) if _encodable(key[1])]

    def add(self, contact: dict[str, Any]) -> None:
        """Index a contact, replacing any earlier version with the same ``id``."""
        contact_id = contact.get("id")
        if contact_id is None:
            raise ValueError("cannot index a contact without an id")
        pk = _pk(contact_id)
        body = json.dumps(contact, default=str, separators=(",", ":"))
        with self._lock:
            self._discard(pk)
            self._seq += 1
            self._db.execute(
                "INSERT INTO contact_index_contact (scope, pk, seq, body) VALUES (?, ?, ?, ?)",
                (self.scope, pk, self._seq, body),
            )
            self._db.executemany(
                "INSERT INTO contact_index_key (scope, kind, key, pk) VALUES (?, ?, ?, ?)",
                [(self.scope, kind, key, pk) for kind, key in self._keys(contact)],
            )
            if self.autocommit:
                self._db.commit()

    def remove(self, contact: Mapping[str, Any] | int | str) -> None:
        """Forget a contact (given as a dict or its id); unknown ids are ignored."""
        contact_id = contact.get("id") if isinstance(contact, Mapping) else contact
        with self._lock:
            self._discard(_pk(contact_id))
            if self.autocommit:
                self._db.commit()

    def _discard(self, pk: str) -> None:
        self._db.execute(
            "DELETE FROM contact_index_contact WHERE scope = ? AND pk = ?", (self.scope, pk)
        )
        self._db.execute(
            "DELETE FROM contact_index_key WHERE scope = ? AND pk = ?", (self.scope, pk)
        )

    def clear(self) -> None:
        """Forget every contact and the sync state (the cache is rebuilt from scratch)."""
        with self._lock:
            for table in ("contact_index_contact", "contact_index_key"):
                self._db.execute(f"DELETE FROM {table} WHERE scope = ?", (self.scope,))  # noqa: S608 (fixed names)
            self._db.execute(
                "DELETE FROM contact_index_meta WHERE scope = ? AND name IN "
                "('full_scan_at', 'watermark')",
                (self.scope,),
            )

    def get(self, contact_id: Any) -> dict[str, Any] | None:
        """The indexed contact with this id, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM contact_index_contact WHERE scope = ? AND pk = ?",
                (self.scope, _pk(contact_id)),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def by_factusol_id(self, value: object) -> list[dict[str, Any]]:
        """Contacts whose link custom field names ``value``: " 10001 ", "0010001" and 10001
        are one client code (stripped; a whole number without its leading zeros)."""
        return self._lookup("link", link_key(value) if value is not None else "")

    def by_nif(self, nif: object) -> list[dict[str, Any]]:
        """Contacts whose compacted ``taxpayer_identification_number`` equals the compacted nif."""
        return self._lookup("nif", compact_nif(nif))

    def by_email(self, email: object) -> list[dict[str, Any]]:
        """Contacts having this e-mail among ``emails[]`` (case-insensitive)."""
        return self._lookup("email", normalize_email(email))

    def _lookup(self, kind: str, key: str) -> list[dict[str, Any]]:
        if not key:
            return []
        with self._lock:
            rows = self._db.execute(
                "SELECT c.body FROM contact_index_key k JOIN contact_index_contact c "
                "ON c.scope = k.scope AND c.pk = k.pk "
                "WHERE k.scope = ? AND k.kind = ? AND k.key = ? ORDER BY c.seq",
                (self.scope, kind, key),
            ).fetchall()
        return [json.loads(body) for (body,) in rows]

    # ------------------------------------------------------------------ kept between runs

    def sync_state(self, account: str) -> tuple[datetime, datetime] | None:
        """``(last full scan, watermark)`` of a cache built for ``account``, else None.

        ``account`` identifies the Clientify account (e.g. a hash of URL and key): a cache
        built for another one is cleared here. The watermark is the server time at which the
        last refresh started: contacts modified since then are not in the cache yet.
        """
        with self._lock:
            if self._meta("account") != account:
                self.clear()
                self._set_meta("account", account)
                return None
            full, mark = self._meta("full_scan_at"), self._meta("watermark")
        if not full or not mark:
            return None
        return datetime.fromisoformat(full), datetime.fromisoformat(mark)

    def set_sync_state(self, *, full_scan_at: datetime, watermark: datetime) -> None:
        """Record a finished refresh (durable at the next :meth:`commit`)."""
        with self._lock:
            self._set_meta("full_scan_at", full_scan_at.isoformat())
            self._set_meta("watermark", watermark.isoformat())

    def commit(self) -> None:
        """Make every change so far durable (only meaningful for a kept index)."""
        with self._lock:
            self._db.commit()

    def close(self, *, commit: bool = False) -> None:
        """Close the database; uncommitted changes are dropped unless ``commit``."""
        with self._lock:
            if commit:
                self._db.commit()
            self._db.close()

    def _meta(self, name: str) -> str | None:
        row = self._db.execute(
            "SELECT value FROM contact_index_meta WHERE scope = ? AND name = ?",
            (self.scope, name),
        ).fetchone()
        return str(row[0]) if row else None

    def _set_meta(self, name: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO contact_index_meta (scope, name, value) VALUES (?, ?, ?) "
            "ON CONFLICT (scope, name) DO UPDATE SET value = excluded.value",
            (self.scope, name, value),
        )


_INDEX_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS contact_index_contact (scope TEXT NOT NULL, pk TEXT NOT NULL, "
    "seq BIGINT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (scope, pk))",
    "CREATE INDEX IF NOT EXISTS contact_index_contact_seq ON contact_index_contact (scope, seq)",
    "CREATE TABLE IF NOT EXISTS contact_index_key (scope TEXT NOT NULL, kind TEXT NOT NULL, "
    "key TEXT NOT NULL, pk TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS contact_index_key_lookup ON contact_index_key (scope, kind, key)",
    "CREATE INDEX IF NOT EXISTS contact_index_key_contact ON contact_index_key (scope, pk)",
    "CREATE TABLE IF NOT EXISTS contact_index_meta (scope TEXT NOT NULL, name TEXT NOT NULL, "
    "value TEXT NOT NULL, PRIMARY KEY (scope, name))",
)


def cache_errors(target: str | Path | None) -> tuple[type[Exception], ...]:
    """The errors a cache at ``target`` can raise when locked or unreachable (a run then scans
    on its own; a damaged SQLite file is rebuilt before that)."""
    if is_database_url(target):
        import psycopg

        return (psycopg.OperationalError,)
    return (sqlite3.OperationalError,)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _pk(contact_id: object) -> str:
    # 1 and "1" stay distinct, as they were as dict keys.
    return json.dumps(contact_id)
