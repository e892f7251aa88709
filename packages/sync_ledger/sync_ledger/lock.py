"""One run of a job at a time, whatever starts it (a schedule, cron, a person, a retry).

The lock lives where the ledger lives, so that every run sharing a ledger shares the lock:

- PostgreSQL ledger: a *session* advisory lock (``pg_try_advisory_lock``) held by one open
  connection for the whole run. The server releases it when that session ends, however it ends:
  a SIGKILLed holder's socket is closed by the kernel and its backend exits at once.
- SQLite ledger (or none): an ``fcntl.flock`` on a file beside the ledger file. The kernel drops
  it when the holder's descriptor closes, so a killed holder leaves a file but no lock.

Nothing is ever waited for: a run that finds its job held learns it at once
(:class:`JobLockHeld`, whose message says so in one line) and should exit 0 without syncing,
since the other run is doing the work. ::

    with job_lock(config.get("ledger_uri"), f"target-clientify:{scope}"):
        ...  # the run

    lock = JobLock.acquire(uri, name)   # or by hand, when a with-block cannot span the run
    ...
    lock.release()                       # idempotent
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import NullPool

from .ledger import DEFAULT_LEDGER, ledger_url

__all__ = ["HELD", "JobLock", "JobLockHeld", "job_lock", "lock_key"]

#: The words every "held" message contains (an orchestrator may look for them in a run's log).
HELD = "held by another run"


class JobLockHeld(RuntimeError):
    """Another run holds the job's lock; ``str()`` is the one line to log before exiting 0."""

    def __init__(self, name: str, where: str, holder: str = "") -> None:
        self.name = name
        self.where = where
        self.holder = holder
        detail = f"{where}; {holder}" if holder else where
        super().__init__(
            f"job {name} is {HELD} ({detail}): this run exits without syncing, nothing was done"
        )


# Who holds an advisory lock (a bigint key is split into classid, objid; objsubid 1).
_HOLDER_SQL = text(
    "SELECT a.pid, a.backend_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
    " AND l.classid = ((:k >> 32) & 4294967295)::oid AND l.objid = (:k & 4294967295)::oid"
)


def lock_key(namespace: str, name: str) -> int:
    """The signed 64-bit advisory lock key of ``name`` within ``namespace`` (a schema)."""
    digest = hashlib.blake2b(f"fcsync-job\0{namespace}\0{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _slug(name: str) -> str:
    short = hashlib.blake2b(name.encode(), digest_size=4).hexdigest()
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)[:60]}-{short}"


class JobLock:
    """A held job lock. Get one with :meth:`acquire` or :func:`job_lock`."""

    def __init__(self, name: str, where: str) -> None:
        self.name = name
        self.where = where  # the lock file, or the advisory lock and its schema
        self._fd: int | None = None
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self._key: int | None = None

    def __repr__(self) -> str:
        state = "held" if self.held else "released"
        return f"JobLock({self.name!r}, {self.where!r}, {state})"

    @property
    def held(self) -> bool:
        return self._fd is not None or self._conn is not None

    @classmethod
    def acquire(cls, uri: str | URL | None, name: str) -> JobLock:
        """Take the lock of job ``name`` for the ledger ``uri`` (a ledger_uri setting: None
        means the default file, empty means no ledger, i.e. a lock file where the default
        ledger would be). Raises :class:`JobLockHeld` at once when another run holds it."""
        if not name:
            raise ValueError("a job lock needs a name")
        value: str | URL = DEFAULT_LEDGER if uri is None or uri == "" else uri
        url = ledger_url(value) if isinstance(value, str) else value
        backend = url.get_backend_name()
        if backend == "postgresql":
            return cls._acquire_pg(url, name)
        if backend != "sqlite":
            raise ValueError(f"no job lock for a {backend} ledger (SQLite or PostgreSQL only)")
        database = url.database or ""
        beside = Path(DEFAULT_LEDGER if database in ("", ":memory:") else database)
        return cls._acquire_file(beside.with_name(f"{beside.name}.{_slug(name)}.lock"), name)

    @classmethod
    def _acquire_file(cls, path: Path, name: str) -> JobLock:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # not inherited by child processes
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            raise JobLockHeld(name, f"lock file {path}", holder) from None
        except BaseException:
            os.close(fd)
            raise
        # Who holds it, for the message another run will print (diagnostics only).
        os.ftruncate(fd, 0)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        os.pwrite(fd, f"pid {os.getpid()} since {stamp}\n".encode(), 0)
        lock = cls(name, str(path))
        lock._fd = fd
        return lock

    @classmethod
    def _acquire_pg(cls, url: URL, name: str) -> JobLock:
        # One dedicated connection, outside any pool: the lock lives as long as this session.
        # TCP keepalives let the server notice a holder whose host vanished.
        connect_args: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 30}
        if url.get_driver_name() != "psycopg":
            connect_args = {}
        engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
        try:
            conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except BaseException:
            engine.dispose()
            raise
        try:
            # Keyed by schema too: companies whose ledgers are schemas of one database have
            # their own locks.
            schema = conn.execute(text("SELECT current_schema()")).scalar() or ""
            key = lock_key(str(schema), name)
            where = f"PostgreSQL advisory lock {key} in schema {schema}"
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            if not got:
                row = conn.execute(_HOLDER_SQL, {"k": key}).first()
                who = f"server pid {row[0]} since {row[1]:%Y-%m-%dT%H:%M:%S%z}" if row else ""
                raise JobLockHeld(name, where, who)
        except BaseException:
            conn.close()
            engine.dispose()
            raise
        lock = cls(name, where)
        lock._engine, lock._conn, lock._key = engine, conn, key
        return lock

    def release(self) -> None:
        """Give the lock back (safe to call twice, and after the connection was lost)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):  # a dead session released it already
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            with contextlib.suppress(Exception):
                conn.close()
        if self._engine is not None:
            engine, self._engine = self._engine, None
            engine.dispose()

    def __enter__(self) -> JobLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def job_lock(uri: str | URL | None, name: str) -> Iterator[JobLock]:
    """Hold job ``name``'s lock for the ledger ``uri`` during the block (see the module doc).

    Raises :class:`JobLockHeld` on entry, without waiting, when another run holds it.
    """
    lock = JobLock.acquire(uri, name)
    try:
        yield lock
    finally:
        lock.release()
