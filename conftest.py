"""Fixtures shared by every test tree: PostgreSQL for Meltano's system database and Dagster.

FCSYNC_TEST_PG_URI names a server and a role that may create schemas and databases, as
`postgresql+psycopg://user:password@host:port/database`. `.ci/run` starts a throwaway server
and sets it (scripts/throwaway_pg.sh); without it the PostgreSQL tests are skipped, except
under CI, where they fail: there they must run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest

PG_URI_ENV = "FCSYNC_TEST_PG_URI"


@dataclass(frozen=True)
class PgDatabase:
    """One fresh PostgreSQL database (for Dagster's storage), by its connection parts."""

    host: str
    port: int
    user: str
    password: str
    name: str


def _server_uri() -> str:
    uri = os.environ.get(PG_URI_ENV, "").strip()
    if uri:
        return uri
    reason = (
        f"{PG_URI_ENV} is not set: the PostgreSQL tests need a server (.ci/run starts one; "
        "or `scripts/throwaway_pg.sh start DIR` and export the URI in DIR/uri)"
    )
    if os.environ.get("CI"):
        pytest.fail(reason + "; under CI they must run")
    pytest.skip(reason)


def _libpq(uri: str) -> str:
    """The same URI for psycopg itself (no SQLAlchemy driver suffix)."""
    scheme, rest = uri.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgresql") else uri


@pytest.fixture
def pg_schemas() -> Iterator[Callable[[str], str]]:
    """`make(name)`: a fresh, empty schema on the test server (all dropped afterwards), as a URI
    whose `search_path` is that schema (psycopg 3 `options`)."""
    import psycopg

    server = _server_uri()
    made: list[str] = []

    def make(name: str) -> str:
        with psycopg.connect(_libpq(server), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        made.append(name)
        sep = "&" if "?" in server else "?"
        return f"{server}{sep}options={quote(f'-csearch_path={name}')}"

    try:
        yield make
    finally:
        if made:
            with psycopg.connect(_libpq(server), autocommit=True) as conn:
                for name in made:
                    conn.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture
def pg_meltano_uri(pg_schemas: Callable[[str], str]) -> str:
    """Meltano's system database in a fresh, empty schema of its own (dropped afterwards).

    The layout the README recommends when Meltano shares a server with Dagster: both create
    `runs` and `alembic_version`, so each keeps its own schema or database.
    """
    return pg_schemas(f"meltano_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def pg_database() -> Iterator[PgDatabase]:
    """A fresh database on the test server (dropped afterwards), e.g. for Dagster's storage."""
    from urllib.parse import unquote, urlsplit

    import psycopg

    server = _server_uri()
    parts = urlsplit(server)
    name = f"dagster_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(server), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PgDatabase(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            name=name,
        )
    finally:
        with psycopg.connect(_libpq(server), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
