"""Many FactuSOL companies, one Meltano project, Dagster as the orchestrator.

`tenants` reads the tenants file, `runner` runs one company's `meltano run`, `definitions`
builds the Dagster assets, jobs and schedules, `changed` is `fcsync-changed` for cron users.
This package imports no connector and no library of the sync: it only calls the `meltano`
executable, and a tap's change probe by name when asked to.

The names below are imported on first use (PEP 562): `fcsync-changed` starts a process per
poll and pays only for the modules it uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runner import DIRECTIONS, MissingSecretError, SyncResult, run_sync
    from .tenants import Company, Tenants, TenantsError, load_tenants, parse_tenants

__all__ = [
    "DIRECTIONS",
    "Company",
    "MissingSecretError",
    "SyncResult",
    "Tenants",
    "TenantsError",
    "load_tenants",
    "parse_tenants",
    "run_sync",
]
_MODULES = {
    "DIRECTIONS": "runner",
    "MissingSecretError": "runner",
    "SyncResult": "runner",
    "run_sync": "runner",
    "Company": "tenants",
    "Tenants": "tenants",
    "TenantsError": "tenants",
    "load_tenants": "tenants",
    "parse_tenants": "tenants",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
