"""What a tenants file holds once read: its constants, the companies and their accounts.

The dataclasses here are immutable; reading and checking the file is `tenants` and
`tenants_fields`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "ACCOUNT",
    "COMPANY_ID",
    "DEFAULT_EVERY_MINUTES",
    "DEFAULT_RETENTION_DAYS",
    "DEFAULT_SCHEDULES",
    "DEFAULT_STALE_AFTER_MINUTES",
    "ENV_NAME",
    "EVERY_MINUTES",
    "JOB_KINDS",
    "MANAGED_SUFFIXES",
    "MODIFIED_JOBS",
    "PLUGIN_PREFIXES",
    "SECRET_WORDS",
    "URI_PLACEHOLDERS",
    "AlertSettings",
    "ClientifyAccount",
    "Company",
    "FactusolAccount",
    "Retries",
    "Tenants",
    "TenantsError",
    "Value",
]

# The Meltano jobs of meltano.yml a company can schedule (direction, full).
JOB_KINDS: dict[str, tuple[str, bool]] = {
    "factusol-to-clientify": ("factusol_to_clientify", False),
    "clientify-to-factusol": ("clientify_to_factusol", False),
    "factusol-to-clientify-full": ("factusol_to_clientify", True),
    "clientify-to-factusol-full": ("clientify_to_factusol", True),
}
# The full jobs' weekly crons; the modified jobs' crons follow `sync_every_minutes`.
DEFAULT_SCHEDULES: dict[str, list[str]] = {
    "factusol-to-clientify-full": ["0 3 * * 0"],
    "clientify-to-factusol-full": ["30 3 * * 0"],
}
MODIFIED_JOBS = ("factusol-to-clientify", "clientify-to-factusol")
DEFAULT_EVERY_MINUTES = 5
# Divisors of 60 only: `*/7` would run at :56 and again at :00.
EVERY_MINUTES = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)
DEFAULT_STALE_AFTER_MINUTES = 30
DEFAULT_RETENTION_DAYS = 90  # what a Spanish SMB's data-protection policy accepts for logs
COMPANY_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ACCOUNT = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")
PLUGIN_PREFIXES = ("TAP_FACTUSOL", "TAP_CLIENTIFY", "TARGET_CLIENTIFY", "TARGET_FACTUSOL")
SECRET_WORDS = ("PASSWORD", "API_KEY", "SECRET", "TOKEN")
# Settings the orchestrator sets per company itself: a `settings:` entry may not override them.
MANAGED_SUFFIXES = (
    "_PLAN_FILE",
    "_REJECT_FILE",
    "_REPORT_FILE",
    "_INDEX_CACHE_FILE",
    "_INDEX_CACHE_URI",
    "_LEDGER_URI",
    "_API_URL",
    "_CODIGO_FABRICANTE",
    "_CODIGO_CLIENTE",
    "_BASE_DATOS",
)
URI_PLACEHOLDERS = ("{company}", "{company_dir}")


class TenantsError(ValueError):
    """The tenants file is invalid; the message names the entry and the key."""


@dataclass(frozen=True)
class Value:
    """A setting given either literally or by the name of an environment variable."""

    literal: str | None = None
    env: str | None = None
    shared: bool = False  # given in `defaults`: one value for every company

    def check_per_company(self, resolved: str, what: str) -> None:
        """A shared URI must name the company, or every company would use the same one."""
        if self.shared and not any(p in resolved for p in URI_PLACEHOLDERS):
            source = f"variable {self.env}" if self.env else "defaults"
            raise TenantsError(
                f"{what} from {source} is shared by every company and must contain "
                "{company} or {company_dir}"
            )

    def resolve(self, environ: Mapping[str, str]) -> str | None:
        """The value; None when the named variable is unset or empty."""
        if self.env is not None:
            return environ.get(self.env) or None
        return self.literal


@dataclass(frozen=True)
class FactusolAccount:
    codigo_fabricante: Value
    codigo_cliente: Value
    base_datos: Value
    password_env: str
    account: str
    api_url: str | None = None


@dataclass(frozen=True)
class ClientifyAccount:
    api_key_env: str
    account: str
    api_url: str | None = None


@dataclass(frozen=True)
class Retries:
    """Dagster RetryPolicy of a sync: exponential backoff, delay * (2**attempt - 1)."""

    max_retries: int = 3
    delay_seconds: float = 60.0


@dataclass(frozen=True)
class AlertSettings:
    """Where incident alerts go (the tenants file's `alerts:`); secrets by variable name."""

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_security: str = "starttls"  # starttls | ssl | none
    smtp_username: str | None = None
    smtp_password_env: str | None = None
    mail_from: str | None = None
    mail_to: tuple[str, ...] = ()
    webhook: Value | None = None  # a webhook URL usually holds a token: `url_env`
    timeout: float = 10.0

    @property
    def env_names(self) -> list[str]:
        names = [self.smtp_password_env] if self.smtp_password_env else []
        if self.webhook is not None and self.webhook.env:
            names.append(self.webhook.env)
        return names


@dataclass(frozen=True)
class Company:
    id: str
    name: str
    factusol: FactusolAccount
    clientify: ClientifyAccount
    environment: str = "prod"
    active: bool = True
    schedules: dict[str, list[str]] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    ledger_uri: Value | None = None
    index_cache_uri: Value | None = None
    retries: Retries = Retries()
    sync_every_minutes: int = DEFAULT_EVERY_MINUTES
    stale_after_minutes: int = DEFAULT_STALE_AFTER_MINUTES
    # Days the company's run files (logs, plans, rejects, reports) and the ledger's history
    # are kept: the targets' retention_days and the age of the run logs pruned after each run.
    retention_days: int = DEFAULT_RETENTION_DAYS
    alert_to: tuple[str, ...] = ()  # extra alert e-mail recipients for this company
    # Direction name -> `module:function` of its change probe: that modified job then runs
    # when the probe says so (and daily), from a sensor instead of its schedule.
    change_probes: dict[str, str] = field(default_factory=dict)

    def change_probe(self, direction: str) -> str | None:
        """The change probe of a direction (`factusol_to_clientify`, ...), None without one."""
        return self.change_probes.get(direction)

    @property
    def run_tags(self) -> dict[str, str]:
        """Tags every run of this company carries (the run queue's concurrency keys)."""
        return {
            "company": self.id,
            "factusol_account": self.factusol.account,
            "clientify_account": self.clientify.account,
        }

    @property
    def secret_env_names(self) -> list[str]:
        names = [self.factusol.password_env, self.clientify.api_key_env]
        for value in (
            self.factusol.codigo_fabricante,
            self.factusol.codigo_cliente,
            self.factusol.base_datos,
            self.ledger_uri,
            self.index_cache_uri,
        ):
            if value is not None and value.env is not None:
                names.append(value.env)
        return names


@dataclass(frozen=True)
class Tenants:
    """The whole file, with paths resolved and defaults applied to each company."""

    path: Path
    project_dir: Path
    work_dir: Path
    companies: tuple[Company, ...]
    timezone: str = "Europe/Madrid"
    meltano: str | None = None
    run_timeout_minutes: float = 120.0
    alerts: AlertSettings | None = None

    def company(self, company_id: str) -> Company:
        for company in self.companies:
            if company.id == company_id:
                return company
        raise KeyError(company_id)

    @property
    def env_names(self) -> set[str]:
        """Every environment variable named by any company or by `alerts:` (kept out of runs)."""
        names = {name for company in self.companies for name in company.secret_env_names}
        return names | set(self.alerts.env_names if self.alerts else [])


# -- parsing ------------------------------------------------------------------------------------
