"""The tenants file: one entry per company (a FactuSOL database and its Clientify account).

Secrets are never written in the file: each one is given as the NAME of an environment variable
(`password_env: ACME_FACTUSOL_PASSWORD`), read when a run starts. See the README section
"Running many companies" and `tenants.example.yaml` for the format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .tenants_fields import (
    DEFAULT_PROBES,
    EMAIL,
    _alerts,
    _check_keys,
    _clientify,
    _days,
    _emails,
    _factusol,
    _mapping,
    _minutes,
    _probes,
    _retries,
    _schedules,
    _settings,
    _text,
    _uri,
    modified_crons,
)
from .tenants_model import (
    ACCOUNT,
    COMPANY_ID,
    DEFAULT_EVERY_MINUTES,
    DEFAULT_RETENTION_DAYS,
    DEFAULT_SCHEDULES,
    DEFAULT_STALE_AFTER_MINUTES,
    ENV_NAME,
    EVERY_MINUTES,
    JOB_KINDS,
    MANAGED_SUFFIXES,
    MODIFIED_JOBS,
    PLUGIN_PREFIXES,
    SECRET_WORDS,
    URI_PLACEHOLDERS,
    AlertSettings,
    ClientifyAccount,
    Company,
    FactusolAccount,
    Retries,
    Tenants,
    TenantsError,
    Value,
)

# The data model and the value parsers live in their own modules; every public name stays
# importable from here.
__all__ = [
    "ACCOUNT",
    "COMPANY_ID",
    "COMPANY_KEYS",
    "DEFAULT_EVERY_MINUTES",
    "DEFAULT_KEYS",
    "DEFAULT_PROBES",
    "DEFAULT_RETENTION_DAYS",
    "DEFAULT_SCHEDULES",
    "DEFAULT_STALE_AFTER_MINUTES",
    "EMAIL",
    "ENV_NAME",
    "EVERY_MINUTES",
    "JOB_KINDS",
    "MANAGED_SUFFIXES",
    "MODIFIED_JOBS",
    "PLUGIN_PREFIXES",
    "SECRET_WORDS",
    "TOP_KEYS",
    "URI_PLACEHOLDERS",
    "AlertSettings",
    "ClientifyAccount",
    "Company",
    "FactusolAccount",
    "Retries",
    "Tenants",
    "TenantsError",
    "Value",
    "load_tenants",
    "modified_crons",
    "parse_tenants",
]


COMPANY_KEYS = {
    "id",
    "name",
    "factusol",
    "clientify",
    "environment",
    "active",
    "schedules",
    "settings",
    "ledger_uri",
    "ledger_uri_env",
    "index_cache_uri",
    "index_cache_uri_env",
    "retries",
    "sync_every_minutes",
    "stale_after_minutes",
    "retention_days",
    "alert_to",
    "change_probe",
}
DEFAULT_KEYS = COMPANY_KEYS - {"id", "name", "factusol", "clientify", "alert_to"}
TOP_KEYS = {
    "version",
    "project_dir",
    "work_dir",
    "timezone",
    "meltano",
    "run_timeout_minutes",
    "defaults",
    "companies",
    "alerts",
}


def parse_tenants(raw: Any, *, path: Path) -> Tenants:
    """Validate a loaded tenants document; `path` anchors its relative directories."""
    top = _mapping(raw, str(path))
    _check_keys(top, TOP_KEYS, str(path))
    if top.get("version", 1) != 1:
        raise TenantsError(f"{path}: version {top.get('version')!r} is not supported (1)")
    base_dir = path.resolve().parent
    project_dir = (base_dir / str(top.get("project_dir", "."))).resolve()
    work_dir = (project_dir / str(top.get("work_dir", "output/tenants"))).resolve()
    defaults = _mapping(top.get("defaults"), "defaults")
    _check_keys(defaults, DEFAULT_KEYS, "defaults")
    default_retries = _retries(defaults.get("retries"), "defaults.retries", Retries())
    default_every = _minutes(
        defaults.get("sync_every_minutes", DEFAULT_EVERY_MINUTES),
        "defaults.sync_every_minutes",
        EVERY_MINUTES,
    )
    default_schedules = {
        **DEFAULT_SCHEDULES,
        **modified_crons(default_every),
        **_schedules(defaults.get("schedules"), "defaults.schedules"),
    }
    default_stale = _minutes(
        defaults.get("stale_after_minutes", DEFAULT_STALE_AFTER_MINUTES),
        "defaults.stale_after_minutes",
    )
    default_settings = _settings(defaults.get("settings"), "defaults.settings")
    default_ledger = _uri(defaults, "ledger_uri", "defaults", shared=True)
    default_cache = _uri(defaults, "index_cache_uri", "defaults", shared=True)
    raw_companies = top.get("companies")
    if not isinstance(raw_companies, list) or not raw_companies:
        raise TenantsError(f"{path}: companies: a non-empty list is required")
    companies: list[Company] = []
    seen: set[str] = set()
    for index, item in enumerate(raw_companies):
        data = _mapping(item, f"companies[{index}]")
        company_id = _text(data.get("id", ""), f"companies[{index}].id")
        where = f"companies[{index}] ({company_id})"
        if not COMPANY_ID.match(company_id):
            raise TenantsError(
                f"{where}: id must be 1-40 of a-z 0-9 _, starting with a letter (it names "
                "the Meltano state suffix, the Dagster jobs and the company's directory)"
            )
        if company_id in seen:
            raise TenantsError(f"{where}: duplicate id")
        seen.add(company_id)
        _check_keys(data, COMPANY_KEYS, where)
        factusol = _factusol(data.get("factusol"), f"{where}.factusol", company_id)
        environment = _text(
            data.get("environment", defaults.get("environment", "prod")), f"{where}.environment"
        )
        active = data.get("active", defaults.get("active", True))
        if not isinstance(active, bool):
            raise TenantsError(f"{where}.active: true or false")
        # The company's one place for its pace: its interval outranks the defaults' crons of
        # the modified jobs; only its own `schedules:` outrank it.
        every = default_every
        schedules = dict(default_schedules)
        if "sync_every_minutes" in data:
            every = _minutes(
                data["sync_every_minutes"], f"{where}.sync_every_minutes", EVERY_MINUTES
            )
            schedules.update(modified_crons(every))
        schedules.update(_schedules(data.get("schedules"), f"{where}.schedules"))
        # Unset: 30 minutes, or three intervals when that is longer.
        stale = (
            default_stale
            if "stale_after_minutes" in defaults
            else max(DEFAULT_STALE_AFTER_MINUTES, 3 * every)
        )
        if "stale_after_minutes" in data:
            stale = _minutes(data["stale_after_minutes"], f"{where}.stale_after_minutes")
        if stale < every:
            raise TenantsError(
                f"{where}: stale_after_minutes ({stale}) is shorter than sync_every_minutes "
                f"({every}): every company would be reported as not synced"
            )
        companies.append(
            Company(
                id=company_id,
                name=_text(data.get("name", company_id), f"{where}.name"),
                factusol=factusol,
                clientify=_clientify(data.get("clientify"), f"{where}.clientify", company_id),
                environment=environment,
                active=active,
                schedules=schedules,
                settings={**default_settings, **_settings(data.get("settings"), where)},
                ledger_uri=_uri(data, "ledger_uri", where, shared=False) or default_ledger,
                index_cache_uri=_uri(data, "index_cache_uri", where, shared=False) or default_cache,
                retries=_retries(data.get("retries"), f"{where}.retries", default_retries),
                sync_every_minutes=every,
                stale_after_minutes=stale,
                retention_days=_days(
                    data.get("retention_days", defaults.get("retention_days", 90)),
                    f"{where}.retention_days",
                ),
                alert_to=()
                if data.get("alert_to") is None
                else _emails(data["alert_to"], f"{where}.alert_to"),
                change_probes=_probes(
                    data.get("change_probe", defaults.get("change_probe")),
                    f"{where}.change_probe",
                ),
            )
        )
    for key in ("ledger_uri", "index_cache_uri"):
        # A URI written for one company without a placeholder must not be another's too.
        owners: dict[str, str] = {}
        for company in companies:
            value: Value | None = getattr(company, key)
            literal = value.literal if value is not None else None
            if literal is None or any(p in literal for p in URI_PLACEHOLDERS):
                continue
            if literal in owners:
                raise TenantsError(
                    f"companies {owners[literal]} and {company.id}: the same {key}; each "
                    "company keeps its own"
                )
            owners[literal] = company.id
    timeout = top.get("run_timeout_minutes", 120)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise TenantsError(f"{path}: run_timeout_minutes: a number > 0")
    meltano = top.get("meltano")
    return Tenants(
        path=path.resolve(),
        project_dir=project_dir,
        work_dir=work_dir,
        companies=tuple(companies),
        timezone=_text(top.get("timezone", "Europe/Madrid"), "timezone"),
        meltano=None if meltano is None else _text(meltano, "meltano"),
        run_timeout_minutes=float(timeout),
        alerts=_alerts(top.get("alerts"), "alerts"),
    )


def load_tenants(path: str | Path) -> Tenants:
    """Read and validate a tenants YAML file."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise TenantsError(f"cannot read tenants file {source}: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TenantsError(f"{source}: not valid YAML: {exc}") from exc
    return parse_tenants(raw, path=source)
