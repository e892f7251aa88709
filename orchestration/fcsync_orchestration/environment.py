"""The environment of one company's `meltano run`: its directories and its variables.

`build_env` maps the company's credentials onto the variables every plugin reads, drops
whatever belongs to another company or to the host, and names the secrets to redact;
`CompanyPaths` is where that run's plans, rejects, reports, logs and state live.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .tenants import PLUGIN_PREFIXES, Company, Tenants, Value

__all__ = [
    "CLIENTIFY_KEY_VARIABLES",
    "CLIENTIFY_URL_VARIABLES",
    "DROPPED_NAMES",
    "DROPPED_PREFIXES",
    "FACTUSOL_PREFIXES",
    "PROD_VARIABLES",
    "TARGETS",
    "CompanyPaths",
    "MissingSecretError",
    "build_env",
    "company_paths",
    "dotenv_plugin_settings",
]


# The credential variables every plugin's config in meltano.yml reads (one per credential).
PROD_VARIABLES = (
    "FACTUSOL_CODIGO_FABRICANTE",
    "FACTUSOL_CODIGO_CLIENTE",
    "FACTUSOL_BASE_DATOS",
    "FACTUSOL_PASSWORD",
    "CLIENTIFY_API_KEY",
)
# Never inherited by a company's run: another company's (or the host's) plugin settings and
# credentials, Meltano's per-run variables, and the orchestrator's own secrets.
DROPPED_PREFIXES = (*PLUGIN_PREFIXES, "DAGSTER_")
DROPPED_NAMES = (
    *PROD_VARIABLES,
    "MELTANO_RUN_ID",
    "MELTANO_RUN_STATE_ID_SUFFIX",
    "MELTANO_SYS_DIR_ROOT",
    "MELTANO_PROJECT_ROOT",
    "MELTANO_ENVIRONMENT",
    "MELTANO_STATE_BACKEND_URI",
)
TARGETS = ("target-clientify", "target-factusol")
# The plugins' own setting variables for the company's credentials and API URLs.
FACTUSOL_PREFIXES = ("TAP_FACTUSOL", "TARGET_FACTUSOL", "TARGET_CLIENTIFY_FACTUSOL")
CLIENTIFY_KEY_VARIABLES = (
    "TAP_CLIENTIFY_API_KEY",
    "TARGET_CLIENTIFY_API_KEY",
    "TARGET_FACTUSOL_CLIENTIFY_API_KEY",
)
CLIENTIFY_URL_VARIABLES = (
    "TAP_CLIENTIFY_API_URL",
    "TARGET_CLIENTIFY_API_URL",
    "TARGET_FACTUSOL_CLIENTIFY_API_URL",
)


class MissingSecretError(RuntimeError):
    """A variable the tenants file names is unset; the message names it, never a value."""


@dataclass(frozen=True)
class CompanyPaths:
    root: Path

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def runs(self) -> Path:
        return self.root / "run"

    @property
    def index_cache_file(self) -> Path:
        return self.output / "cache" / "clientify-contacts.sqlite"

    def plan(self, target: str) -> Path:
        return self.output / "plans" / f"{target}.jsonl"

    def rejects(self, target: str) -> Path:
        return self.output / "rejects" / f"{target}.jsonl"

    def report(self, target: str) -> Path:
        return self.output / "reports" / f"{target}.json"

    def create(self) -> None:
        """The company's directories, owner-only (plans, rejects and reports hold customer data)."""
        for path in (self.root, self.output, self.logs, self.runs):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.chmod(0o700)


def company_paths(tenants: Tenants, company: Company) -> CompanyPaths:
    return CompanyPaths(tenants.work_dir / company.id)


def _format_uri(template: str, company: Company, paths: CompanyPaths) -> str:
    return template.replace("{company_dir}", str(paths.root)).replace("{company}", company.id)


def _uri_password(uri: str) -> str | None:
    try:
        password = urlsplit(uri).password
    except ValueError:
        return None
    return unquote(password) if password else None


def build_env(
    tenants: Tenants,
    company: Company,
    *,
    environ: Mapping[str, str],
    sys_dir: Path,
) -> tuple[dict[str, str], list[str]]:
    """The environment of one company's `meltano run`, and the secret values in it (to redact).

    Credentials: the company's variables are mapped onto the five variables every plugin's config
    in meltano.yml reads and onto the plugins' own settings variables, which outrank anything in
    the project's `.env` or in another environment of meltano.yml.
    """
    paths = company_paths(tenants, company)
    others = tenants.env_names
    env = {
        key: value
        for key, value in environ.items()
        if not key.startswith(DROPPED_PREFIXES) and key not in DROPPED_NAMES and key not in others
    }
    env.update(
        {
            "MELTANO_PROJECT_ROOT": str(tenants.project_dir),
            "MELTANO_SYS_DIR_ROOT": str(sys_dir),
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
    )
    secrets: list[str] = []
    if not env.get("MELTANO_DATABASE_URI"):
        # No shared system database: the company keeps its state in its own SQLite file.
        env["MELTANO_DATABASE_URI"] = f"sqlite:///{paths.root / 'meltano.db'}"
    elif password := _uri_password(env["MELTANO_DATABASE_URI"]):
        secrets.append(password)

    fs, cl = company.factusol, company.clientify
    missing: list[str] = []

    def need(value: Value) -> str:
        resolved = value.resolve(environ)
        if resolved is None:
            missing.append(value.env or "?")
            return ""
        if value.env is not None:
            secrets.append(resolved)
        return resolved

    fabricante = need(fs.codigo_fabricante)
    cliente = need(fs.codigo_cliente)
    base_datos = need(fs.base_datos)
    password = need(Value(env=fs.password_env))
    api_key = need(Value(env=cl.api_key_env))
    # The targets' settings: `ledger_uri`, and `index_cache_file` (a SQLite path or a
    # PostgreSQL URL) for the tenants file's index_cache_uri.
    uris: dict[str, str] = {}
    given = {"LEDGER_URI": company.ledger_uri, "INDEX_CACHE_FILE": company.index_cache_uri}
    for key, value in given.items():
        if value is not None:
            template = need(value)
            if template:
                value.check_per_company(
                    template, "ledger_uri" if key == "LEDGER_URI" else "index_cache_uri"
                )
            uri = _format_uri(template, company, paths)
            uris[key] = uri
            if pw := _uri_password(uri):
                secrets.append(pw)
    if missing:
        raise MissingSecretError(
            f"company {company.id}: environment variable(s) {', '.join(sorted(set(missing)))} "
            "named in the tenants file are not set"
        )

    env.update(company.settings)
    env.update(
        {
            "FACTUSOL_CODIGO_FABRICANTE": fabricante,
            "FACTUSOL_CODIGO_CLIENTE": cliente,
            "FACTUSOL_BASE_DATOS": base_datos,
            "FACTUSOL_PASSWORD": password,
            "CLIENTIFY_API_KEY": api_key,
            **dict.fromkeys(CLIENTIFY_KEY_VARIABLES, api_key),
        }
    )
    # Each plugin setting that holds a FactuSOL credential (target-clientify reads FactuSOL
    # too, for first-run matching), and each API URL setting (orchestration/tests checks
    # these lists against meltano.yml).
    for prefix in FACTUSOL_PREFIXES:
        env[f"{prefix}_CODIGO_FABRICANTE"] = fabricante
        env[f"{prefix}_CODIGO_CLIENTE"] = cliente
        env[f"{prefix}_BASE_DATOS"] = base_datos
        env[f"{prefix}_PASSWORD"] = password
    if fs.api_url:
        for prefix in FACTUSOL_PREFIXES:
            env[f"{prefix}_API_URL"] = fs.api_url
    if cl.api_url:
        for name in CLIENTIFY_URL_VARIABLES:
            env[name] = cl.api_url
    for target in TARGETS:
        prefix = target.upper().replace("-", "_")
        env[f"{prefix}_PLAN_FILE"] = str(paths.plan(target))
        env[f"{prefix}_REJECT_FILE"] = str(paths.rejects(target))
        env[f"{prefix}_REPORT_FILE"] = str(paths.report(target))
        env[f"{prefix}_INDEX_CACHE_FILE"] = str(paths.index_cache_file)
        env.setdefault(f"{prefix}_RETENTION_DAYS", str(company.retention_days))
        # Only when given (else the ledger's relative default lands in the company directory).
        for key, uri in uris.items():
            env[f"{prefix}_{key}"] = uri
    # Longest first, so that a secret containing another is redacted whole.
    redact = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
    return env, redact


def dotenv_plugin_settings(project_dir: Path) -> list[str]:
    """Plugin settings in the project's `.env`, which Meltano applies to every company.

    Meltano reads that file itself: a variable there that a company's run does not set (say
    TARGET_CLIENTIFY_DRY_RUN) applies to all companies. Plugin settings belong in the tenants
    file; `.env` holds the companies' secrets.
    """
    path = project_dir / ".env"
    if not path.is_file():
        return []
    names = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        name = line.strip().removeprefix("export ").partition("=")[0].strip()
        if name.startswith(PLUGIN_PREFIXES) or name in PROD_VARIABLES:
            names.append(name)
    return sorted(set(names))
