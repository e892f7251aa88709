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
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.pool import NullPool, StaticPool

from clientify_api.contacts import as_texts, contact_emails, custom_field_value, link_key
from clientify_api.paging import batches

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


# The index's tables (SQLAlchemy Core: one description for SQLite and PostgreSQL). Names and
# types are those of the hand-written schema they replace, so a kept cache stays readable.
_TABLES = sa.MetaData()
_CONTACT = sa.Table(
    "contact_index_contact",
    _TABLES,
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("pk", sa.Text, primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Index("contact_index_contact_seq", "scope", "seq"),
)
_KEY = sa.Table(
    "contact_index_key",
    _TABLES,
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("pk", sa.Text, nullable=False),
    sa.Index("contact_index_key_lookup", "scope", "kind", "key"),
    sa.Index("contact_index_key_contact", "scope", "pk"),
)
_META = sa.Table(
    "contact_index_meta",
    _TABLES,
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
_OLD_TABLES = ("contact", "contact_key", "meta")  # schema 1-2 (SQLite only)

# The statements of the hot paths, built once: SQLAlchemy then reuses their compiled form.
_SCOPE: sa.BindParameter[str] = sa.bindparam("scope", type_=sa.Text)
_PK: sa.BindParameter[str] = sa.bindparam("pk", type_=sa.Text)
_ADD_CONTACT = _CONTACT.insert()
_ADD_KEY = _KEY.insert()
_DROP_CONTACT = _CONTACT.delete().where(_CONTACT.c.scope == _SCOPE, _CONTACT.c.pk == _PK)
_DROP_KEYS = _KEY.delete().where(_KEY.c.scope == _SCOPE, _KEY.c.pk == _PK)
_BODY = sa.select(_CONTACT.c.body).where(_CONTACT.c.scope == _SCOPE, _CONTACT.c.pk == _PK)
_LOOKUP = (
    sa.select(_CONTACT.c.body)
    .join(_KEY, sa.and_(_KEY.c.scope == _CONTACT.c.scope, _KEY.c.pk == _CONTACT.c.pk))
    .where(
        _KEY.c.scope == _SCOPE,
        _KEY.c.kind == sa.bindparam("kind"),
        _KEY.c.key == sa.bindparam("key"),
    )
    .order_by(_CONTACT.c.seq)
)


def _engine(target: str | Path | None) -> sa.Engine:
    """PostgreSQL through psycopg for a URL; else one SQLite connection to a file, or to a
    private temporary file (``""``: on disk, deleted on close, so memory stays flat)."""
    if is_database_url(target):
        _scheme, _, rest = str(target).partition("://")
        url = sa.make_url(f"postgresql+psycopg://{rest}")
        return sa.create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 30})
    path = "" if target is None else str(target)

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        try:
            conn.execute("PRAGMA synchronous=OFF")  # a cache: a torn file is rebuilt
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    return sa.create_engine("sqlite://", creator=connect, poolclass=StaticPool)


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
        self._json_extract = True  # SQLite's JSON1, until it proves missing
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                # contact data: readable by its owner only, from the moment it exists
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._engine = _engine(self.url if postgres else self.path)
        try:
            self._db = self._engine.connect()
        except BaseException:
            self._engine.dispose()
            raise
        try:
            if not postgres:
                for old in _OLD_TABLES:
                    self._db.exec_driver_sql(f"DROP TABLE IF EXISTS {old}")
            _TABLES.create_all(self._db)
            if self._meta("field") != field or self._meta("version") != version:
                self.clear()
                self._set_meta("field", field)
                self._set_meta("version", version)
            self._db.commit()
            newest = sa.select(sa.func.coalesce(sa.func.max(_CONTACT.c.seq), 0))
            self._seq = int(self._db.scalar(newest.where(_CONTACT.c.scope == scope)) or 0)
        except BaseException:
            self._db.close()
            self._engine.dispose()
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
        for chunk in batches(contacts, 100):
            index.add_many(chunk)
        return index

    def __len__(self) -> int:
        count = sa.select(sa.func.count()).select_from(_CONTACT)
        with self._lock:
            return int(self._db.scalar(count.where(_CONTACT.c.scope == self.scope)) or 0)

    def __contains__(self, contact_id: object) -> bool:
        with self._lock:
            return self._body(_pk(contact_id)) is not None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for body in self._column(_CONTACT.c.body, page=500):
            yield json.loads(body)

    def ids(self) -> Iterator[str]:
        """Every indexed contact's id, as stored (text), in insertion order, read in pages."""
        for pk in self._column(_CONTACT.c.pk, page=5000):
            yield str(pk)

    def _column(self, column: sa.Column[Any], *, page: int) -> Iterator[Any]:
        """One column of every contact, in insertion order, ``page`` rows per query."""
        last = 0
        while True:
            query = (
                sa.select(_CONTACT.c.seq, column)
                .where(_CONTACT.c.scope == self.scope, _CONTACT.c.seq > last)
                .order_by(_CONTACT.c.seq)
                .limit(page)
            )
            with self._lock:
                rows = self._db.execute(query).all()
            if not rows:
                return
            last = rows[-1][0]
            yield from (value for _, value in rows)

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
                _ADD_CONTACT, {"scope": self.scope, "pk": pk, "seq": self._seq, "body": body}
            )
            keys = [
                {"scope": self.scope, "kind": kind, "key": key, "pk": pk}
                for kind, key in self._keys(contact)
            ]
            if keys:
                self._db.execute(_ADD_KEY, keys)
            if self.autocommit:
                self._db.commit()

    def add_many(self, contacts: Iterable[dict[str, Any]]) -> int:
        """:meth:`add` for a page of contacts, in a few statements (a scan indexes 100 at a
        time: one insert per contact and per key cost most of a scan's time); how many."""
        rows: dict[str, str] = {}
        keys: list[dict[str, str]] = []
        for contact in contacts:
            contact_id = contact.get("id")
            if contact_id is None:
                raise ValueError("cannot index a contact without an id")
            pk = _pk(contact_id)
            if pk in rows:  # the later version wins, last in order, as with add()
                keys = [key for key in keys if key["pk"] != pk]
                del rows[pk]
            rows[pk] = json.dumps(contact, default=str, separators=(",", ":"))
            keys += [
                {"scope": self.scope, "kind": kind, "key": key, "pk": pk}
                for kind, key in self._keys(contact)
            ]
        if not rows:
            return 0
        with self._lock:
            for table in (_CONTACT, _KEY):
                self._db.execute(
                    table.delete().where(table.c.scope == self.scope, table.c.pk.in_(list(rows)))
                )
            added = []
            for pk, body in rows.items():
                self._seq += 1
                added.append({"scope": self.scope, "pk": pk, "seq": self._seq, "body": body})
            self._db.execute(_ADD_CONTACT, added)
            if keys:
                self._db.execute(_ADD_KEY, keys)
            if self.autocommit:
                self._db.commit()
        return len(rows)

    def remove(self, contact: Mapping[str, Any] | int | str) -> None:
        """Forget a contact (given as a dict or its id); unknown ids are ignored."""
        contact_id = contact.get("id") if isinstance(contact, Mapping) else contact
        with self._lock:
            self._discard(_pk(contact_id))
            if self.autocommit:
                self._db.commit()

    def _discard(self, pk: str) -> None:
        for statement in (_DROP_CONTACT, _DROP_KEYS):
            self._db.execute(statement, {"scope": self.scope, "pk": pk})

    def clear(self) -> None:
        """Forget every contact and the sync state (the cache is rebuilt from scratch)."""
        with self._lock:
            for table in (_CONTACT, _KEY):
                self._db.execute(table.delete().where(table.c.scope == self.scope))
            self._db.execute(
                _META.delete().where(
                    _META.c.scope == self.scope, _META.c.name.in_(("full_scan_at", "watermark"))
                )
            )

    def get(self, contact_id: Any) -> dict[str, Any] | None:
        """The indexed contact with this id, if any."""
        with self._lock:
            body = self._body(_pk(contact_id))
        return None if body is None else dict(json.loads(body))

    def modified_of(self, contact_ids: Iterable[object]) -> dict[object, object]:
        """The ``modified`` value of each of these contacts that is indexed (as stored: the
        API's text); ids not indexed are left out. A few queries per call, not one per id."""
        wanted = {_pk(cid): cid for cid in contact_ids}
        found: dict[object, object] = {}
        pks = list(wanted)
        for start in range(0, len(pks), 500):  # SQLite's bound-parameter limit
            for pk, value in self._modified_rows(pks[start : start + 500]):
                found[wanted[str(pk)]] = value
        return found

    def _modified_rows(self, pks: list[str]) -> list[tuple[str, object]]:
        where = sa.and_(_CONTACT.c.scope == self.scope, _CONTACT.c.pk.in_(pks))
        if self.url is None and self._json_extract:
            # SQLite reads the one value: 100,000 contacts noted in 2.3 CPU-s, not 3.9
            value = sa.func.json_extract(_CONTACT.c.body, "$.modified")
            query = sa.select(_CONTACT.c.pk, value).where(where)
            try:
                with self._lock:
                    return [(pk, found) for pk, found in self._db.execute(query)]
            except sa_exc.OperationalError as exc:
                if "no such function" not in str(exc):
                    raise
                self._json_extract = False  # an SQLite built without JSON1
        # PostgreSQL too: a cast to jsonb would refuse a body holding \u0000
        with self._lock:
            rows = self._db.execute(sa.select(_CONTACT.c.pk, _CONTACT.c.body).where(where)).all()
        return [(pk, json.loads(body).get("modified")) for pk, body in rows]

    def _body(self, pk: str) -> str | None:
        body = self._db.scalar(_BODY, {"scope": self.scope, "pk": pk})
        return None if body is None else str(body)

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
            bodies = self._db.scalars(
                _LOOKUP, {"scope": self.scope, "kind": kind, "key": key}
            ).all()
        return [json.loads(body) for body in bodies]

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
            self._engine.dispose()

    def _meta(self, name: str) -> str | None:
        found = sa.select(_META.c.value).where(_META.c.scope == self.scope, _META.c.name == name)
        value = self._db.scalar(found)
        return None if value is None else str(value)

    def _set_meta(self, name: str, value: str) -> None:
        # an upsert: runs sharing a PostgreSQL cache may set the same name at once
        insert = pg_insert if self.url is not None else sqlite_insert
        statement = insert(_META).values(scope=self.scope, name=name, value=value)
        self._db.execute(
            statement.on_conflict_do_update(
                index_elements=["scope", "name"], set_={"value": statement.excluded.value}
            )
        )


def cache_errors(target: str | Path | None) -> tuple[type[Exception], ...]:
    """The errors a cache at ``target`` can raise when locked or unreachable (a run then scans
    on its own; a damaged SQLite file is rebuilt before that)."""
    if is_database_url(target):
        return (sa_exc.OperationalError,)
    return (sa_exc.OperationalError, sqlite3.OperationalError)


def damaged_cache_errors() -> tuple[type[Exception], ...]:
    """What opening a SQLite file that is not a database raises (the cache is rebuilt)."""
    return (sa_exc.DatabaseError, sqlite3.DatabaseError)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _pk(contact_id: object) -> str:
    # 1 and "1" stay distinct, as they were as dict keys.
    return json.dumps(contact_id)
