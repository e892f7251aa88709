"""One `meltano run` for one company: its environment, its directories, its report.

No Dagster here (the Dagster definitions wrap `run_sync`), so this module is tested and usable
on its own. Per company, under `<work_dir>/<company>/` (mode 0700):

    output/plans|rejects|reports/<target>.*   the targets' plan, reject and report files
    output/cache/clientify-contacts.sqlite    the Clientify contact index of the company
    logs/<time>-<job>-<run>.log               each run's Meltano output (secrets redacted)
    meltano.db                                Meltano's system DB, only without MELTANO_DATABASE_URI
    run/<run>/                                the run's private Meltano system dir (removed after)

Meltano runs with the company directory as its working directory (the project is found through
MELTANO_PROJECT_ROOT), so any relative path a plugin defaults to also lands in the company's own
directory, and with umask 077, so every file it writes is readable by its owner only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .tenants import PLUGIN_PREFIXES, Company, Tenants, Value

__all__ = [
    "DIRECTIONS",
    "HELD",
    "CompanyPaths",
    "Direction",
    "MissingSecretError",
    "SyncResult",
    "build_env",
    "company_paths",
    "dotenv_plugin_settings",
    "meltano_command",
    "meltano_executable",
    "run_sync",
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
INSTALLED_KINDS = ("extractors", "loaders", "mappers", "utilities")
_LEVEL = re.compile(r"\[(warning|error|critical)")
_LOCKED = "pipeline is already running"
# A target that finds its job lock held (sync_ledger.lock) logs a line with these words and
# exits 0 without syncing: another run of the job is doing the work.
HELD = "held by another run"
# An API refusing a credential, as the connectors and API clients word it: retrying cannot
# help, and the company is told at once.
_REFUSED = re.compile(
    r"AuthError|login failed|rejected the API key|API key rejected|did not receive the API key"
    r"|refused access|token refused",
    re.IGNORECASE,
)
_TAIL_LINES = 60


@dataclass(frozen=True)
class Direction:
    name: str  # factusol_to_clientify
    job: str  # the modified job of meltano.yml; `<job>-full` is the full one
    tap: str
    target: str

    def meltano_job(self, *, full: bool) -> str:
        return f"{self.job}-full" if full else self.job

    def state_id(self, environment: str, company_id: str, *, full: bool) -> str:
        """Meltano's state id of this job for a company (`--state-id-suffix <company>`)."""
        tap = f"{self.tap}--full" if full else self.tap
        return f"{environment}:{tap}-to-{self.target}:{company_id}"


DIRECTIONS: dict[str, Direction] = {
    d.name: d
    for d in (
        Direction(
            "factusol_to_clientify", "factusol-to-clientify", "tap-factusol", "target-clientify"
        ),
        Direction(
            "clientify_to_factusol", "clientify-to-factusol", "tap-clientify", "target-factusol"
        ),
    )
}


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


def meltano_executable(tenants: Tenants, environ: Mapping[str, str] | None = None) -> str:
    """The tenants file's `meltano`, else FCSYNC_MELTANO, else the one beside this Python."""
    environ = os.environ if environ is None else environ
    configured = tenants.meltano or environ.get("FCSYNC_MELTANO")
    if configured:
        path = Path(configured)
        if not path.is_absolute() and os.sep in configured:
            return str((tenants.project_dir / path).resolve())
        return configured
    beside = Path(sys.executable).with_name("meltano")
    if beside.exists():
        return str(beside)
    return shutil.which("meltano") or "meltano"


def meltano_command(
    tenants: Tenants, company: Company, direction: Direction, *, full: bool, run_id: str
) -> list[str]:
    return [
        meltano_executable(tenants),
        f"--environment={company.environment}",
        "run",
        direction.meltano_job(full=full),
        "--state-id-suffix",
        company.id,
        "--run-id",
        run_id,
    ]


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


def _private_sys_dir(project_dir: Path, run_dir: Path) -> None:
    """A Meltano system dir of its own for one run, sharing the installed plugins.

    Meltano writes each plugin's catalog and incoming state to `.meltano/run/<plugin>/` (fixed
    names): two companies running at once in one system dir would read each other's files.
    """
    installed = project_dir / ".meltano"
    if not (installed / "extractors").is_dir() or not (installed / "loaders").is_dir():
        raise RuntimeError(
            f"no installed plugins in {installed}: run `meltano install` in {project_dir}"
        )
    run_dir.mkdir(mode=0o700, parents=True)
    for kind in INSTALLED_KINDS:
        if (installed / kind).is_dir():
            (run_dir / kind).symlink_to(installed / kind, target_is_directory=True)


def _redactor(secrets: list[str]) -> Callable[[str], str]:
    def redact(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    return redact


def _stop_group(proc: subprocess.Popen[str], grace: float = 10.0) -> None:
    """SIGTERM the run's process group (meltano and its plugins), SIGKILL what is left after
    `grace`. A plugin may outlive meltano, so the group is waited for, not only meltano."""
    if proc.poll() is not None:
        return
    deadline = time.monotonic() + grace
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    while _group_exists(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    while _group_exists(proc.pid) and time.monotonic() < deadline + grace:
        time.sleep(0.05)  # SIGKILLed members leaving (a zombie until reaped still counts)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class SyncResult:
    """What one company's `meltano run` did."""

    company: str
    direction: str
    full: bool
    meltano_job: str
    state_id: str
    run_id: str
    returncode: int
    seconds: float
    log_path: Path
    report_path: Path
    reject_path: Path
    report: dict[str, Any] | None
    errors: list[str] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)
    timed_out: bool = False
    held: bool = False  # the target found the job held by another run and did nothing

    @property
    def ok(self) -> bool:
        """It succeeded, or found its job held by another run (a success: nothing to redo)."""
        return (self.returncode == 0 or self.held) and not self.timed_out

    @property
    def credentials_refused(self) -> bool:
        """An API refused a credential (retrying cannot help)."""
        return not self.ok and any(_REFUSED.search(line) for line in self.errors)

    @property
    def locked(self) -> bool:
        """Meltano refused: another run of the same state id was running."""
        return any(_LOCKED in line for line in self.tail)

    @property
    def counts(self) -> dict[str, int]:
        """created, linked, updated, unchanged, rejected, conflicts (0 when no report)."""
        report = self.report or {}
        nested = report.get("counts")
        source: dict[str, Any] = nested if isinstance(nested, dict) else report
        keys = ("created", "linked", "updated", "unchanged", "rejected", "conflicts", "warnings")
        return {key: int(source.get(key, 0) or 0) for key in keys}

    @property
    def api_calls(self) -> dict[str, int]:
        calls = (self.report or {}).get("api_calls")
        if not isinstance(calls, dict):
            return {}
        return {str(k): int(v) for k, v in sorted(calls.items())}


@dataclass
class _Outcome:
    returncode: int
    tail: list[str]
    errors: list[str]
    timed_out: bool
    held: bool = False


def _run_logged(
    command: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    redact: Callable[[str], str],
    on_line: Callable[[str], None] | None,
    timeout: float,
) -> _Outcome:
    """Run `command` in its own process group, its output redacted into `log_path` (0600)."""
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    errors: list[str] = []
    held = False
    timed_out = threading.Event()
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with (
        os.fdopen(fd, "w", encoding="utf-8") as log,
        subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            umask=0o077,
            start_new_session=True,  # its own process group: stopped as a whole
        ) as proc,
    ):

        def on_timeout() -> None:
            timed_out.set()
            _stop_group(proc)

        timer = threading.Timer(timeout, on_timeout)
        timer.daemon = True
        timer.start()
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = redact(raw.rstrip("\n"))
                log.write(line + "\n")
                tail.append(line)
                held = held or HELD in line
                match = _LEVEL.search(line)
                if match:
                    if match.group(1) != "warning":
                        errors.append(line[-500:])
                    if on_line is not None:
                        on_line(line)
            returncode = proc.wait()
        except BaseException:
            # Dagster stopping the run (or any error here) stops meltano and its plugins.
            _stop_group(proc)
            raise
        finally:
            timer.cancel()
    return _Outcome(returncode, list(tail), errors, timed_out.is_set(), held)


def prune_logs(
    logs: Path, *, days: int, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> list[Path]:
    """Delete run logs older than the company's retention (they name customers in warnings)."""
    cutoff = (now() - timedelta(days=days)).timestamp()
    gone = []
    for path in sorted(logs.glob("*.log")):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                gone.append(path)
        except OSError:
            continue  # another run pruning the same directory
    return gone


def run_sync(
    tenants: Tenants,
    company: Company,
    direction: Direction,
    *,
    full: bool,
    run_id: str,
    environ: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SyncResult:
    """Run one company's job to its end; never raises for a failed run (see `SyncResult.ok`).

    Raises MissingSecretError before starting anything when a named variable is unset.
    `on_line` receives each warning/error line of the output (secrets redacted).
    """
    environ = os.environ if environ is None else environ
    paths = company_paths(tenants, company)
    paths.create()
    sys_dir = paths.runs / f"{run_id}-{uuid.uuid4().hex[:8]}"
    env, secrets = build_env(tenants, company, environ=environ, sys_dir=sys_dir)
    report_path = paths.report(direction.target)
    report_path.unlink(missing_ok=True)  # a report left by an earlier run is not this run's
    job = direction.meltano_job(full=full)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    log_path = paths.logs / f"{stamp}-{job}-{run_id[:8]}.log"
    command = meltano_command(tenants, company, direction, full=full, run_id=run_id)
    started = clock()
    _private_sys_dir(tenants.project_dir, sys_dir)
    try:
        outcome = _run_logged(
            command,
            cwd=paths.root,
            env=env,
            log_path=log_path,
            redact=_redactor(secrets),
            on_line=on_line,
            timeout=tenants.run_timeout_minutes * 60,
        )
    finally:
        shutil.rmtree(sys_dir, ignore_errors=True)  # plugin configs and state of this run
        prune_logs(paths.logs, days=company.retention_days)
    report: dict[str, Any] | None = None
    if report_path.exists():
        try:
            loaded = json.loads(report_path.read_text(encoding="utf-8"))
            report = loaded if isinstance(loaded, dict) else None
        except (OSError, ValueError):
            report = None
    return SyncResult(
        company=company.id,
        direction=direction.name,
        full=full,
        meltano_job=job,
        state_id=direction.state_id(company.environment, company.id, full=full),
        run_id=run_id,
        returncode=outcome.returncode,
        seconds=round(clock() - started, 3),
        log_path=log_path,
        report_path=report_path,
        reject_path=paths.rejects(direction.target),
        report=report,
        errors=outcome.errors[-20:],
        tail=outcome.tail,
        timed_out=outcome.timed_out,
        held=outcome.held,
    )
