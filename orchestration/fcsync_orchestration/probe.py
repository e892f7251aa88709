"""Start a company's modified job only when its source system has changes.

A change probe (`probe(config, state) -> bool`: `tap_factusol.probe.has_changes` for
FactuSOL -> Clientify, `tap_clientify.probe.has_changes` for Clientify -> FactuSOL) asks the
source, with one to three cheap calls, whether anything changed since the job's bookmark. The
sensor built from this module polls it every `sync_every_minutes` and requests a run when it
says so, or when the job has not been requested for a day (a safety net for a probe that misses
something), or when the probe fails (the run then surfaces the error, and the alerts follow).

No `meltano` subprocess per poll: the bookmark is read straight from Meltano's system database
(table `state`, JSON text: the partial state merged onto the completed one, as Meltano merges
them), through one SQLAlchemy engine per database kept for the life of the process
(`StateReader`), or with the standard library's sqlite3 for a SQLite file (`read_sqlite_state`,
for `fcsync-changed`, whose every call is a new process). SQLAlchemy is imported lazily.
"""

from __future__ import annotations

import importlib
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from .tenants import DEFAULT_PROBES, Company, TenantsError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = [
    "DEFAULT_PROBE",
    "DEFAULT_PROBES",
    "Probe",
    "StateReader",
    "load_probe",
    "merge_state",
    "probe_config",
    "read_sqlite_state",
    "singer_state_of",
]

logger = logging.getLogger(__name__)

Probe = Callable[[dict[str, Any], dict[str, Any] | None], bool]
DEFAULT_PROBE = DEFAULT_PROBES["factusol_to_clientify"]
_STATE_SQL = "SELECT partial_state, completed_state FROM state WHERE state_id = :state_id"


def load_probe(path: str) -> Probe:
    """The probe callable named `module:function` (installed in Dagster's Python)."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise TenantsError(f"change_probe {path!r}: expected module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TenantsError(
            f"change_probe {path!r}: cannot import {module_name} ({exc}); install the tap "
            "into this Python (pip install ./packages/factusol_api ./tap-factusol, or "
            "./packages/clientify_api ./tap-clientify)"
        ) from None
    probe = getattr(module, attribute, None)
    if not callable(probe):
        raise TenantsError(f"change_probe {path!r}: {attribute} is not a function of {module_name}")
    return probe  # type: ignore[no-any-return]


def merge_state(src: Mapping[str, Any], dest: dict[str, Any]) -> dict[str, Any]:
    """`src` merged onto `dest` at depth (Meltano's `utils.merge`)."""
    for key, value in src.items():
        if isinstance(value, Mapping):
            node = dest.get(key)
            if not isinstance(node, dict):
                node = dest[key] = {}
            merge_state(value, node)
        else:
            dest[key] = value
    return dest


def _json(value: object) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str | bytes) and value:
        loaded = json.loads(value)
        return loaded if isinstance(loaded, dict) else {}
    return {}


def singer_state_of(partial: object, completed: object) -> dict[str, Any] | None:
    """The Singer state of a `state` row: partial merged onto completed, as Meltano does."""
    merged = merge_state(_json(partial), _json(completed))
    state = merged.get("singer_state")
    return state if isinstance(state, dict) and state else None


def _no_table(exc: Exception) -> bool:
    return "no such table" in str(exc) or "does not exist" in str(exc)


def read_sqlite_state(uri: str, state_id: str) -> dict[str, Any] | None:
    """`StateReader.singer_state` for a `sqlite:///path` URI with the standard library only
    (no SQLAlchemy import: a short-lived process pays for every import). A missing file: None."""
    # sqlite:///relative.db and sqlite:////absolute.db, as SQLAlchemy reads them
    path = unquote(urlsplit(uri).path).removeprefix("/")
    if not path or path == ":memory:":
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.OperationalError:
        return None  # no database yet: no run so far
    try:
        row = conn.execute(_STATE_SQL.replace(":state_id", "?"), (state_id,)).fetchone()
    except sqlite3.OperationalError as exc:
        if _no_table(exc):
            return None
        raise
    finally:
        conn.close()
    return None if row is None else singer_state_of(row[0], row[1])


class StateReader:
    """Meltano job state from its system database; one engine per database URI, reused."""

    def __init__(self) -> None:
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()

    def _engine(self, uri: str) -> Engine:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        with self._lock:
            engine = self._engines.get(uri)
            if engine is None:
                if uri.startswith("sqlite"):
                    # A file per company: no connection kept open between polls.
                    engine = create_engine(uri, poolclass=NullPool)
                else:
                    engine = create_engine(uri, pool_size=1, max_overflow=2, pool_pre_ping=True)
                self._engines[uri] = engine
            return engine

    def singer_state(self, uri: str, state_id: str) -> dict[str, Any] | None:
        """The job's Singer state (`{"bookmarks": ...}`), None when it has none yet."""
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self._engine(uri).connect() as conn:
                row = conn.execute(text(_STATE_SQL), {"state_id": state_id}).first()
        except SQLAlchemyError as exc:
            if _no_table(exc):
                return None  # Meltano has not created its tables yet: no run so far
            raise
        return None if row is None else singer_state_of(row[0], row[1])

    def close(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


def probe_config(
    company: Company, environ: Mapping[str, str], direction: str = "factusol_to_clientify"
) -> dict[str, Any]:
    """The source tap's config for the company's probe of `direction`: its credentials and
    API URL, and the company's own TAP_FACTUSOL_* / TAP_CLIENTIFY_* settings (lower-cased, as
    Meltano names them)."""
    config: dict[str, Any]
    if direction == "clientify_to_factusol":
        cl = company.clientify
        config = {"api_key": environ.get(cl.api_key_env) or None}
        api_url, prefix = cl.api_url, "TAP_CLIENTIFY_"
    else:
        fs = company.factusol
        config = {
            "codigo_fabricante": fs.codigo_fabricante.resolve(environ),
            "codigo_cliente": fs.codigo_cliente.resolve(environ),
            "base_datos": fs.base_datos.resolve(environ),
            "password": environ.get(fs.password_env) or None,
        }
        api_url, prefix = fs.api_url, "TAP_FACTUSOL_"
    missing = [key for key, value in config.items() if not value]
    if missing:
        raise TenantsError(
            f"company {company.id}: the probe lacks {', '.join(missing)} (a variable the tenants "
            "file names is unset)"
        )
    if api_url:
        config["api_url"] = api_url
    for name, value in company.settings.items():
        if name.startswith(prefix) and not name.startswith(prefix + "_"):
            config[name.removeprefix(prefix).lower()] = value
    return config
