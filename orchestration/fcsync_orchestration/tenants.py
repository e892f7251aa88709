"""The tenants file: one entry per company (a FactuSOL database and its Clientify account).

Secrets are never written in the file: each one is given as the NAME of an environment variable
(`password_env: ACME_FACTUSOL_PASSWORD`), read when a run starts. See the README section
"Running many companies" and `tenants.example.yaml` for the format.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "JOB_KINDS",
    "MODIFIED_JOBS",
    "AlertSettings",
    "ClientifyAccount",
    "Company",
    "FactusolAccount",
    "Retries",
    "Tenants",
    "TenantsError",
    "load_tenants",
    "modified_crons",
    "parse_tenants",
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
def _mapping(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TenantsError(f"{where}: expected a mapping, got {type(raw).__name__}")
    return raw


def _check_keys(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in raw:
        if key in allowed:
            continue
        hint = ""
        if key in {"password", "api_key"} or any(w.lower() in str(key) for w in SECRET_WORDS):
            hint = (
                f"; secrets are never written in the tenants file: give the name of the "
                f"environment variable holding it, e.g. {key}_env: ACME_{str(key).upper()}"
            )
        raise TenantsError(f"{where}: unknown key {key!r}{hint}")


def _text(raw: Any, where: str) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise TenantsError(f"{where}: expected text, got {type(raw).__name__}")
    text = str(raw).strip()
    if not text:
        raise TenantsError(f"{where}: empty")
    return text


def _env_name(raw: Any, where: str) -> str:
    name = _text(raw, where)
    if not ENV_NAME.match(name):
        raise TenantsError(f"{where}: {name!r} is not an environment variable name")
    return name


def _value(raw: Mapping[str, Any], key: str, where: str, *, required: bool) -> Value | None:
    literal, env = raw.get(key), raw.get(f"{key}_env")
    if literal is not None and env is not None:
        raise TenantsError(f"{where}: give {key} or {key}_env, not both")
    if env is not None:
        return Value(env=_env_name(env, f"{where}.{key}_env"))
    if literal is not None:
        return Value(literal=_text(literal, f"{where}.{key}"))
    if required:
        raise TenantsError(f"{where}: {key} (or {key}_env) is required")
    return None


def _required(raw: Mapping[str, Any], key: str, where: str) -> Value:
    value = _value(raw, key, where, required=True)
    if value is None:  # pragma: no cover - _value raised
        raise TenantsError(f"{where}: {key} (or {key}_env) is required")
    return value


def _account(raw: Any, default: str, where: str) -> str:
    account = default if raw is None else _text(raw, where)
    if not ACCOUNT.match(account):
        raise TenantsError(f"{where}: {account!r} must be 1-63 of A-Z a-z 0-9 _ . -")
    return account


def _url(raw: Any, where: str) -> str | None:
    if raw is None:
        return None
    url = _text(raw, where)
    if not url.startswith(("http://", "https://")):
        raise TenantsError(f"{where}: {url!r} is not an http(s) URL")
    return url


def _factusol(raw: Any, where: str, company_id: str) -> FactusolAccount:
    data = _mapping(raw, where)
    keys = {"codigo_fabricante", "codigo_cliente", "base_datos"}
    _check_keys(
        data,
        {*keys, *(f"{k}_env" for k in keys), "password_env", "api_url", "account"},
        where,
    )
    if "password_env" not in data:
        raise TenantsError(f"{where}: password_env (the variable holding the password) is required")
    fabricante = _required(data, "codigo_fabricante", where)
    cliente = _required(data, "codigo_cliente", where)
    base_datos = _required(data, "base_datos", where)
    # The API account is the DELSOL customer (its licence, codigo_cliente): every company
    # database it holds shares it. When the code comes from the environment, the company is
    # its own account unless the file names the shared one.
    return FactusolAccount(
        codigo_fabricante=fabricante,
        codigo_cliente=cliente,
        base_datos=base_datos,
        password_env=_env_name(data["password_env"], f"{where}.password_env"),
        account=_account(data.get("account"), cliente.literal or company_id, f"{where}.account"),
        api_url=_url(data.get("api_url"), f"{where}.api_url"),
    )


def _clientify(raw: Any, where: str, company_id: str) -> ClientifyAccount:
    data = _mapping(raw, where)
    _check_keys(data, {"api_key_env", "api_url", "account"}, where)
    if "api_key_env" not in data:
        raise TenantsError(f"{where}: api_key_env (the variable holding the API key) is required")
    return ClientifyAccount(
        api_key_env=_env_name(data["api_key_env"], f"{where}.api_key_env"),
        account=_account(data.get("account"), company_id, f"{where}.account"),
        api_url=_url(data.get("api_url"), f"{where}.api_url"),
    )


def _schedules(raw: Any, where: str) -> dict[str, list[str]]:
    data = _mapping(raw, where)
    _check_keys(data, set(JOB_KINDS), where)
    out: dict[str, list[str]] = {}
    for job, crons in data.items():
        if crons is None or crons == []:
            out[job] = []
            continue
        items = [crons] if isinstance(crons, str) else crons
        if not isinstance(items, list) or not all(isinstance(c, str) for c in items):
            raise TenantsError(f"{where}.{job}: a cron string or a list of them")
        for cron in items:
            if len(cron.split()) != 5:
                raise TenantsError(f"{where}.{job}: {cron!r} is not a 5-field cron expression")
        out[job] = list(items)
    return out


def modified_crons(every: int) -> dict[str, list[str]]:
    """The modified jobs' crons for a sync every `every` minutes: Clientify->FactuSOL runs half
    an interval after FactuSOL->Clientify, so a company's two directions do not start together."""
    if every == 1:
        return {job: ["* * * * *"] for job in MODIFIED_JOBS}
    if every == 60:
        return {MODIFIED_JOBS[0]: ["0 * * * *"], MODIFIED_JOBS[1]: ["30 * * * *"]}
    return {
        MODIFIED_JOBS[0]: [f"*/{every} * * * *"],
        MODIFIED_JOBS[1]: [f"{every // 2}-59/{every} * * * *"],
    }


def _days(raw: Any, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise TenantsError(f"{where}: a whole number of days >= 1")
    return raw


def _minutes(raw: Any, where: str, allowed: tuple[int, ...] | None = None) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise TenantsError(f"{where}: a whole number of minutes >= 1")
    if allowed is not None and raw not in allowed:
        raise TenantsError(
            f"{where}: {raw} does not divide the hour; one of {', '.join(map(str, allowed))}"
        )
    return raw


EMAIL = re.compile(r"^[^@\s,<>]+@[^@\s,<>]+\.[^@\s,<>]+$")


def _emails(raw: Any, where: str) -> tuple[str, ...]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        raise TenantsError(f"{where}: an e-mail address or a list of them")
    out = []
    for item in items:
        text = _text(item, where)
        if not EMAIL.match(text):
            raise TenantsError(f"{where}: {text!r} is not an e-mail address")
        out.append(text)
    return tuple(out)


def _alerts(raw: Any, where: str) -> AlertSettings | None:
    if raw is None:
        return None
    data = _mapping(raw, where)
    _check_keys(data, {"email", "webhook", "timeout_seconds"}, where)
    if not data.get("email") and not data.get("webhook"):
        raise TenantsError(f"{where}: give email:, webhook: or both")
    kwargs: dict[str, Any] = {}
    timeout = data.get("timeout_seconds", 10)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise TenantsError(f"{where}.timeout_seconds: a number > 0")
    kwargs["timeout"] = float(timeout)
    if data.get("email"):
        mail = _mapping(data["email"], f"{where}.email")
        here = f"{where}.email"
        _check_keys(
            mail, {"host", "port", "security", "username", "password_env", "from", "to"}, here
        )
        for key in ("host", "from", "to"):
            if key not in mail:
                raise TenantsError(f"{here}: {key} is required")
        security = str(mail.get("security", "starttls"))
        if security not in ("starttls", "ssl", "none"):
            raise TenantsError(f"{here}.security: starttls, ssl or none")
        port = mail.get("port", 465 if security == "ssl" else 587)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise TenantsError(f"{here}.port: a TCP port")
        kwargs.update(
            smtp_host=_text(mail["host"], f"{here}.host"),
            smtp_port=port,
            smtp_security=security,
            smtp_username=None
            if mail.get("username") is None
            else _text(mail["username"], f"{here}.username"),
            smtp_password_env=None
            if mail.get("password_env") is None
            else _env_name(mail["password_env"], f"{here}.password_env"),
            mail_from=_emails(mail["from"], f"{here}.from")[0],
            mail_to=_emails(mail["to"], f"{here}.to"),
        )
    if data.get("webhook"):
        hook = _mapping(data["webhook"], f"{where}.webhook")
        _check_keys(hook, {"url", "url_env"}, f"{where}.webhook")
        value = _value(hook, "url", f"{where}.webhook", required=True)
        if value is not None and value.literal is not None:
            _url(value.literal, f"{where}.webhook.url")
        kwargs["webhook"] = value
    return AlertSettings(**kwargs)


#: The taps' own probes, by direction, for `change_probe: true`.
DEFAULT_PROBES = {
    "factusol_to_clientify": "tap_factusol.probe:has_changes",
    "clientify_to_factusol": "tap_clientify.probe:has_changes",
}
_PROBE_JOBS = {
    "factusol-to-clientify": "factusol_to_clientify",
    "clientify-to-factusol": "clientify_to_factusol",
}


def _probe_path(raw: Any, where: str) -> str:
    text = _text(raw, where)
    if not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", text):
        raise TenantsError(f"{where}: true, false or module:function")
    return text


def _probes(raw: Any, where: str) -> dict[str, str]:
    """`change_probe`: true (both modified jobs, the taps' probes), false, `module:function`
    (the FactuSOL -> Clientify job, as before), or per job: {factusol-to-clientify: true, ...}."""
    if raw is None or raw is False:
        return {}
    if raw is True:
        return dict(DEFAULT_PROBES)
    if not isinstance(raw, Mapping):
        return {"factusol_to_clientify": _probe_path(raw, where)}
    probes: dict[str, str] = {}
    for job, value in raw.items():
        direction = _PROBE_JOBS.get(str(job))
        if direction is None:
            raise TenantsError(f"{where}: {job!r} is not a modified job ({', '.join(_PROBE_JOBS)})")
        if value is True:
            probes[direction] = DEFAULT_PROBES[direction]
        elif value is not None and value is not False:
            probes[direction] = _probe_path(value, f"{where}.{job}")
    return probes


def _setting_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    if isinstance(value, list | dict):
        return json.dumps(value)
    raise TenantsError(f"{where}: unsupported value {value!r}")


def _settings(raw: Any, where: str) -> dict[str, str]:
    data = _mapping(raw, where)
    out: dict[str, str] = {}
    for name, value in data.items():
        key = _env_name(name, where)
        here = f"{where}.{key}"
        if not key.startswith(PLUGIN_PREFIXES):
            raise TenantsError(
                f"{here}: settings are plugin settings by environment variable, starting "
                f"with one of {', '.join(PLUGIN_PREFIXES)}"
            )
        if any(word in key for word in SECRET_WORDS):
            raise TenantsError(f"{here}: a secret is never written in the tenants file")
        if key.endswith(MANAGED_SUFFIXES):
            raise TenantsError(
                f"{here}: set per company by the orchestrator (credentials, api_url, paths, "
                "ledger_uri, index_cache_uri have their own keys)"
            )
        out[key] = _setting_value(value, here)
    return out


def _retries(raw: Any, where: str, base: Retries) -> Retries:
    data = _mapping(raw, where)
    _check_keys(data, {"max_retries", "delay_seconds"}, where)
    max_retries = data.get("max_retries", base.max_retries)
    delay = data.get("delay_seconds", base.delay_seconds)
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise TenantsError(f"{where}.max_retries: an integer >= 0")
    if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
        raise TenantsError(f"{where}.delay_seconds: a number >= 0")
    return Retries(max_retries=max_retries, delay_seconds=float(delay))


def _uri(raw: Mapping[str, Any], key: str, where: str, *, shared: bool) -> Value | None:
    value = _value(raw, key, where, required=False)
    if value is None:
        return None
    if value.literal is not None:
        if ":" not in value.literal:
            raise TenantsError(f"{where}.{key}: {value.literal!r} is not a SQLAlchemy URL")
        if shared and not any(p in value.literal for p in URI_PLACEHOLDERS):
            raise TenantsError(
                f"{where}.{key}: a URI shared by every company must contain {{company}} or "
                "{company_dir}, so that each company keeps its own"
            )
    return Value(literal=value.literal, env=value.env, shared=shared)


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
