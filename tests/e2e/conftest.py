"""End-to-end harness: both emulators as real processes on loopback, `meltano run` as a subprocess.

Each test gets fresh seeded sandboxes, its own Meltano system database (so its own state) and its
own output directory (plans, rejects, reports). Plugins are installed once into the project's
`.meltano/` by `make setup`; the harness installs them if they are missing.

The tests in ON_POSTGRESQL run with every store of record in PostgreSQL when a server is given
(FCSYNC_TEST_PG_URI; always under CI, where `.ci/run` starts one): Meltano's system database (so
its state) in one fresh schema (`pg_meltano_uri` in the root conftest.py), the targets' sync
ledger and contact cache in another. Without a server they run on the default SQLite files,
which every other e2e test uses too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sandbox.launcher import SandboxProcess, meltano_env

ROOT = Path(__file__).resolve().parents[2]
MELTANO = str(Path(sys.executable).with_name("meltano"))
FACTUSOL_CLIENTS = 30
CLIENTIFY_CONTACTS = 12

pytestmark = pytest.mark.e2e


# Module -> tests (None: all of them) that depend on where the state lives, one per kind: two-way
# cycles that converge through the ledger, a bookmark set, read and advanced by modified runs, a
# run failing on an API that is down (state unchanged, then resumed), a SIGKILL mid-run that
# must leave no bookmark, and a SIGKILL between a FactuSOL write and the ledger update. Each runs
# once (the suite's time on 2 cores is budgeted): on PostgreSQL when there is a server.
ON_POSTGRESQL: dict[str, set[str] | None] = {
    "test_two_way.py": {
        "test_edits_on_both_sides_converge_then_a_cycle_writes_nothing",
        "test_first_modified_run_takes_the_last_24h_and_a_stale_bookmark_loses_nothing",
    },
    "test_faults.py": {"test_api_down_past_retry_budget_stops_clearly_keeps_state_then_resumes"},
    "test_crash.py": {
        "test_target_killed_mid_run_then_rerun_ends_like_an_uninterrupted_run",
        "test_killed_between_a_client_update_and_the_ledger_update",
    },
    "test_overlap.py": {"test_a_run_killed_with_sigkill_leaves_nothing_that_blocks_the_next"},
    # forget on SQLite is also checked byte by byte in packages/customer_records/tests
    "test_forget_and_history.py": {
        "test_history_shows_each_step_then_forget_leaves_no_trace_and_the_mark_holds"
    },
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "project" not in metafunc.fixturenames:
        return
    module = metafunc.definition.path.name
    if module not in ON_POSTGRESQL:
        return
    names = ON_POSTGRESQL[module]
    if names is None or metafunc.function.__name__ in names:
        # under CI without a server this fails (pg_meltano_uri) rather than falling back
        postgres = os.environ.get("FCSYNC_TEST_PG_URI", "").strip() or os.environ.get("CI")
        metafunc.parametrize("system_db", ["postgresql" if postgres else "sqlite"], indirect=True)


@pytest.fixture
def system_db(request: pytest.FixtureRequest) -> str | None:
    """MELTANO_DATABASE_URI of the test: None for the per-test SQLite file (the default)."""
    if getattr(request, "param", "sqlite") == "postgresql":
        uri: str = request.getfixturevalue("pg_meltano_uri")
        return uri
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e" in str(item.path):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def meltano_installed() -> None:
    venv = ROOT / ".meltano" / "loaders" / "target-factusol" / "venv"
    if not venv.exists():
        subprocess.run([MELTANO, "install"], cwd=ROOT, check=True, capture_output=True)


@pytest.fixture
def factusol(tmp_path: Path) -> Iterator[SandboxProcess]:
    proc = SandboxProcess("factusol", tmp_path / "factusol")
    proc.seed("--clients", str(FACTUSOL_CLIENTS), "--seed", "7")
    with proc.start():
        yield proc


@pytest.fixture
def clientify(tmp_path: Path) -> Iterator[SandboxProcess]:
    proc = SandboxProcess("clientify", tmp_path / "clientify")
    proc.seed("--contacts", str(CLIENTIFY_CONTACTS), "--seed", "7")
    with proc.start():
        yield proc


@dataclass
class RunResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class Project:
    """The Meltano project pointed at this test's sandboxes, with isolated state and outputs."""

    factusol: SandboxProcess
    clientify: SandboxProcess
    workdir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    database_uri: str | None = None  # Meltano's system database; None: workdir/meltano.db
    # The targets' sync ledger and contact cache; None: SQLite files under workdir/output
    sync_state_uri: str | None = None

    def env(self) -> dict[str, str]:
        env = meltano_env(
            self.workdir, factusol=self.factusol, clientify=self.clientify, project_root=ROOT
        )
        if self.database_uri:
            env["MELTANO_DATABASE_URI"] = self.database_uri
        if self.sync_state_uri:
            for prefix in ("TARGET_CLIENTIFY", "TARGET_FACTUSOL"):
                env[f"{prefix}_LEDGER_URI"] = self.sync_state_uri
                env[f"{prefix}_INDEX_CACHE_FILE"] = self.sync_state_uri
        env["TAP_CLIENTIFY_RATE_LIMIT"] = "200"
        env["TARGET_CLIENTIFY_RATE_LIMIT"] = "200"
        env.update(self.extra_env)
        return env

    def meltano(
        self, *args: str, check: bool = True, timeout: float = 600, stdin: str | None = None
    ) -> RunResult:
        proc = subprocess.run(
            [MELTANO, *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
        )
        result = RunResult(proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(f"meltano {' '.join(args)} failed:\n{result.output[-6000:]}")
        return result

    def run(self, job: str, *args: str, check: bool = True) -> RunResult:
        return self.meltano("run", job, *args, check=check)

    def report(self, target: str) -> dict[str, Any]:
        path = self.workdir / "output" / "reports" / f"{target}.json"
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data

    def lines(self, kind: str, target: str) -> list[dict[str, Any]]:
        path = self.workdir / "output" / kind / f"{target}.jsonl"
        if not path.exists():
            return []
        text = path.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def state(self, state_id: str) -> dict[str, Any]:
        res = self.meltano("state", "get", state_id)
        data: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
        return data

    # -- what is in the sandboxes --------------------------------------------------------------
    def clients(self) -> dict[int, dict[str, Any]]:
        rows = self.factusol.admin("GET", "clients")["clients"]
        return {int(row["CODCLI"]): row for row in rows}

    def contacts(self) -> dict[int, dict[str, Any]]:
        items = self.clientify.admin("GET", "contacts")["contacts"]
        return {int(item["id"]): item for item in items}

    def writes(self, proc: SandboxProcess) -> list[dict[str, Any]]:
        """API write calls in `proc`'s request log (for zero-write assertions)."""
        return [r for r in proc.requests_log() if is_write(proc.api, r)]


def is_write(api: str, request: dict[str, Any]) -> bool:
    if api == "factusol":
        path = request["path"].lower()
        return "escribirregistro" in path or "actualizarregistro" in path or "borrar" in path
    return request["method"] in {"POST", "PUT", "PATCH", "DELETE"}


def link_of(contact: dict[str, Any], name: str = "factusol_id") -> str | None:
    for item in contact.get("custom_fields") or []:
        if item.get("field") == name and item.get("value") not in (None, ""):
            return str(item["value"])
    return None


@pytest.fixture
def project(
    system_db: str | None,  # first: a failing PostgreSQL fixture starts no sandbox
    meltano_installed: None,
    factusol: SandboxProcess,
    clientify: SandboxProcess,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Project]:
    sync_state_uri = None
    if system_db is not None:
        make_schema = request.getfixturevalue("pg_schemas")
        sync_state_uri = make_schema(f"sync_{uuid.uuid4().hex[:12]}")
    yield Project(
        factusol=factusol,
        clientify=clientify,
        workdir=tmp_path,
        database_uri=system_db,
        sync_state_uri=sync_state_uri,
    )
    if sync_state_uri is not None:
        # The [postgresql] variant really kept the ledger and the contact cache there, not in files.
        assert _pg_rows(sync_state_uri, "sync_ledger_pair") > 0
        assert _pg_rows(sync_state_uri, "contact_index_contact") > 0
        assert not (tmp_path / "output" / "ledger").exists()
        assert not (tmp_path / "output" / "cache").exists()


def _pg_rows(uri: str, table: str) -> int:
    import psycopg

    with psycopg.connect("postgresql://" + uri.split("://", 1)[1]) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0
