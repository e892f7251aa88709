"""Start a company's modified FactuSOL -> Clientify job only when FactuSOL has changes.

A change probe (`probe(config, state) -> bool`, e.g. `tap_factusol.probe.has_changes`) asks
FactuSOL, with one cheap call, whether anything changed since the job's bookmark. The sensor
built from this module polls it every `sync_every_minutes` and requests a run when it says so,
or when the job has not been requested for a day (a safety net for a probe that misses
something), or when the probe fails (the run then surfaces the error, and the alerts follow).

No `meltano` subprocess per poll: the bookmark is read straight from Meltano's system database
(table `state`, JSON text: the partial state merged onto the completed one, as Meltano merges
them), through one SQLAlchemy engine per database kept for the life of the process.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from .tenants import Company, TenantsError

__all__ = ["DEFAULT_PROBE", "Probe", "StateReader", "load_probe", "merge_state", "probe_config"]

logger = logging.getLogger(__name__)

Probe = Callable[[dict[str, Any], dict[str, Any] | None], bool]
DEFAULT_PROBE = "tap_factusol.probe:has_changes"
_STATE_SQL = text("SELECT partial_state, completed_state FROM state WHERE state_id = :state_id")


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
            "into Dagster's Python (pip install ./packages/factusol_api ./tap-factusol)"
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


class StateReader:
    """Meltano job state from its system database; one engine per database URI, reused."""

    def __init__(self) -> None:
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()

    def _engine(self, uri: str) -> Engine:
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
        try:
            with self._engine(uri).connect() as conn:
                row = conn.execute(_STATE_SQL, {"state_id": state_id}).first()
        except SQLAlchemyError as exc:
            if "no such table" in str(exc) or "does not exist" in str(exc):
                return None  # Meltano has not created its tables yet: no run so far
            raise
        if row is None:
            return None
        merged = merge_state(_json(row[0]), _json(row[1]))
        state = merged.get("singer_state")
        return state if isinstance(state, dict) and state else None

    def close(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


def probe_config(company: Company, environ: Mapping[str, str]) -> dict[str, Any]:
    """tap-factusol's config for the company's probe: its credentials and API URL, and the
    company's own TAP_FACTUSOL_* settings (lower-cased, as Meltano names them)."""
    fs = company.factusol
    config: dict[str, Any] = {
        "codigo_fabricante": fs.codigo_fabricante.resolve(environ),
        "codigo_cliente": fs.codigo_cliente.resolve(environ),
        "base_datos": fs.base_datos.resolve(environ),
        "password": environ.get(fs.password_env) or None,
    }
    missing = [key for key, value in config.items() if not value]
    if missing:
        raise TenantsError(
            f"company {company.id}: the probe lacks {', '.join(missing)} (a variable the tenants "
            "file names is unset)"
        )
    if fs.api_url:
        config["api_url"] = fs.api_url
    prefix = "TAP_FACTUSOL_"
    for name, value in company.settings.items():
        if name.startswith(prefix) and not name.startswith(prefix + "_"):
            config[name.removeprefix(prefix).lower()] = value
    return config
