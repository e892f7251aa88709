"""ContactIndex: contacts by link value, NIF and e-mail, stored in SQL (flat memory).

The NIF and e-mail keys are not computed here: they are the matching rule's identity functions
(``customer_sync.IDENTITY_KEYS``), given as ``keys`` or imported from customer_sync when not
given, so a contact is keyed exactly as matching looks it up. No HTTP here.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from clientify_api.contacts import as_texts, contact_emails, custom_field_value, link_key

__all__ = [
    "ContactIndex",
    "IdentityKeys",
    "cache_errors",
    "default_identity_keys",
    "is_database_url",
]


class IdentityKeys(Protocol):
    """The key functions of a :class:`ContactIndex`: what NIF and e-mail key a value gets (None:
    it identifies nobody and is not indexed). ``version`` names the functions' behaviour: a
    kept cache built with another version is rebuilt."""

    @property
    def version(self) -> str: ...

    @property
    def nif(self) -> Callable[[object], str | None]: ...

    @property
    def email(self) -> Callable[[object], str | None]: ...


def default_identity_keys() -> IdentityKeys:
    """``customer_sync.IDENTITY_KEYS``: the functions the matching rule itself uses."""
    try:
        from customer_sync import IDENTITY_KEYS
    except ImportError as exc:  # pragma: no cover - the targets always have customer_sync
        raise RuntimeError(
            "ContactIndex needs keys=: pass customer_sync.IDENTITY_KEYS "
            "(or install fcsync-customer-sync)"
        ) from exc
    keys: IdentityKeys = IDENTITY_KEYS
    return keys


def is_database_url(value: object) -> bool:
    """True for a PostgreSQL URL (the cache's other home); a path or str otherwise is SQLite."""
    return isinstance(value, str) and value.startswith(("postgresql", "postgres:"))


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

    # 3: scoped tables (one PostgreSQL for many accounts), link keys; 4: NIFs zero-padded;
    # 5: NIF and e-mail keys from the caller's IdentityKeys (their version is stored beside)
    SCHEMA_VERSION = "5"

    def __init__(
        self,
        *,
        field: str = "factusol_id",
        path: str | Path | None = None,
        scope: str = "local",
        keys: IdentityKeys | None = None,
    ) -> None:
        self.field = field
        self.scope = scope
        self.keys = keys if keys is not None else default_identity_keys()
        version = f"{self.SCHEMA_VERSION}/{self.keys.version}"
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
            if self._meta("field") != field or self._meta("version") != version:
                self.clear()
                self._set_meta("field", field)
                self._set_meta("version", version)
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
        cls,
        contacts: Iterable[dict[str, Any]],
        *,
        field: str = "factusol_id",
        keys: IdentityKeys | None = None,
    ) -> ContactIndex:
        """Index every contact of an iterable (typically ``client.iter_contacts()``)."""
        index = cls(field=field, keys=keys)
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
            ("link", link_key(link)) for link in as_texts(custom_field_value(contact, self.field))
        ]
        if nif := self.keys.nif(contact.get("taxpayer_identification_number")):
            keys.append(("nif", nif))
        for email in contact_emails(contact):
            if identity := self.keys.email(email):
                keys.append(("email", identity))
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
        """Contacts whose ``taxpayer_identification_number`` has this NIF's identity (none for
        a placeholder or an invalid NIF: those identify nobody)."""
        return self._lookup("nif", self.keys.nif(nif))

    def by_email(self, email: object) -> list[dict[str, Any]]:
        """Contacts having this e-mail's identity among ``emails[]``."""
        return self._lookup("email", self.keys.email(email))

    def _lookup(self, kind: str, key: str | None) -> list[dict[str, Any]]:
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
