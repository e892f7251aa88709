"""Many FactuSOL companies, one Meltano project, Dagster as the orchestrator.

`tenants` reads the tenants file, `runner` runs one company's `meltano run`, `definitions`
builds the Dagster assets, jobs and schedules. This package imports no connector and no
library of the sync: it only calls the `meltano` executable.
"""

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
