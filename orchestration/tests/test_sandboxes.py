"""Two companies end to end: the real Meltano project and plugins against two sandbox pairs (each
company its own FactuSOL database, credentials and Clientify account), Meltano's state in
PostgreSQL, and Dagster's runs in PostgreSQL through deploy/dagster.yaml.

Each company's data, state ids, files and report must stay its own, also when both run at once.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from fcsync_orchestration.definitions import build_definitions
from fcsync_orchestration.runner import DIRECTIONS, SyncResult, run_sync
from fcsync_orchestration.tenants import Tenants, load_tenants
from sandbox.launcher import SandboxProcess

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("error"),
    # sandbox.launcher leaves its server-log file to the garbage collector (not ours to fix here)
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

ROOT = Path(__file__).resolve().parents[2]
MELTANO = str(Path(sys.executable).with_name("meltano"))
DAGSTER_YAML = ROOT / "orchestration" / "deploy" / "dagster.yaml"


@dataclass(frozen=True)
class Spec:
    """A company's sandbox credentials and seed (each one different from the other's)."""

    id: str
    fabricante: str
    cliente: str
    base: str
    password: str
    api_key: str
    clients: int
    seed: int


SPECS = (
    Spec("acme", "1234", "56789", "FS001", "acme-fs-pw-e2e", "acme-cl-key-e2e", 6, 11),
    Spec("globex", "4321", "11111", "FS002", "globex-fs-pw-e2e", "globex-cl-key-e2e", 4, 22),
)


@dataclass
class Company:
    spec: Spec
    factusol: SandboxProcess
    clientify: SandboxProcess

    def clients(self) -> dict[int, dict[str, Any]]:
        rows = self.factusol.admin("GET", "clients", base_datos=self.spec.base)["clients"]
        return {int(row["CODCLI"]): row for row in rows}

    def linked_contacts(self) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for contact in self.clientify.admin("GET", "contacts")["contacts"]:
            for item in contact.get("custom_fields") or []:
                if item.get("field") == "factusol_id" and item.get("value"):
                    code = int(item["value"])
                    assert code not in out, f"two contacts linked to {self.spec.id} {code}"
                    out[code] = contact
        return out


@dataclass
class World:
    tenants: Tenants
    companies: dict[str, Company]
    meltano_db: str

    def state_ids(self) -> list[str]:
        env = {
            "PATH": "/usr/bin:/bin",
            "MELTANO_PROJECT_ROOT": str(ROOT),
            "MELTANO_DATABASE_URI": self.meltano_db,
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        out = subprocess.run(
            [MELTANO, "state", "list"], env=env, capture_output=True, text=True, check=True
        )
        return sorted(line for line in out.stdout.splitlines() if line.count(":") >= 2)

    def state(self, state_id: str) -> dict[str, Any]:
        env = {"PATH": "/usr/bin:/bin", "MELTANO_PROJECT_ROOT": str(ROOT)}
        env["MELTANO_DATABASE_URI"] = self.meltano_db
        out = subprocess.run(
            [MELTANO, "state", "get", state_id], env=env, capture_output=True, text=True
        )
        data: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return data


@pytest.fixture
def world(tmp_path: Path, pg_meltano_uri: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    if not (ROOT / ".meltano" / "loaders" / "target-factusol" / "venv").exists():
        subprocess.run([MELTANO, "install"], cwd=ROOT, check=True, capture_output=True)
    companies: dict[str, Company] = {}
    entries = []
    procs: list[SandboxProcess] = []
    try:
        for spec in SPECS:
            fs = SandboxProcess(
                "factusol",
                tmp_path / spec.id / "factusol",
                extra_args=[
                    "--codigo-fabricante", spec.fabricante, "--codigo-cliente", spec.cliente,
                    "--base-datos", spec.base, "--password", spec.password,
                ],
            )  # fmt: skip
            fs.seed(
                "--clients", str(spec.clients), "--seed", str(spec.seed), "--base-datos", spec.base
            )
            cl = SandboxProcess(
                "clientify",
                tmp_path / spec.id / "clientify",
                extra_args=["--api-key", spec.api_key],
            )
            cl.seed("--contacts", "2", "--seed", str(spec.seed))
            for proc in (fs, cl):
                procs.append(proc)
                proc.start()
            companies[spec.id] = Company(spec, fs, cl)
            prefix = spec.id.upper()
            monkeypatch.setenv(f"{prefix}_FS_PASSWORD", spec.password)
            monkeypatch.setenv(f"{prefix}_CL_KEY", spec.api_key)
            entries.append(
                {
                    "id": spec.id,
                    "factusol": {
                        "codigo_fabricante": spec.fabricante,
                        "codigo_cliente": spec.cliente,
                        "base_datos": spec.base,
                        "password_env": f"{prefix}_FS_PASSWORD",
                        "api_url": fs.api_url,
                    },
                    "clientify": {"api_key_env": f"{prefix}_CL_KEY", "api_url": cl.api_url},
                }
            )
        doc = {
            "version": 1,
            "project_dir": str(ROOT),
            "work_dir": str(tmp_path / "work"),
            "meltano": MELTANO,
            "defaults": {
                "environment": "prod",  # no sandbox URLs or credentials of its own (dev's)
                "retries": {"max_retries": 0},
                "settings": {
                    "TAP_CLIENTIFY_RATE_LIMIT": 200,
                    "TARGET_CLIENTIFY_RATE_LIMIT": 200,
                    "TARGET_FACTUSOL_CLIENTIFY_RATE_LIMIT": 200,
                },
            },
            "companies": entries,
        }
        path = tmp_path / "tenants.yaml"
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        monkeypatch.setenv("MELTANO_DATABASE_URI", pg_meltano_uri)
        # The deployment step of the README: two first runs at once on an empty system
        # database would both try to create its tables (one fails, "Cannot upgrade").
        subprocess.run(
            [MELTANO, "upgrade", "database"],
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", "MELTANO_DATABASE_URI": pg_meltano_uri},
            check=True,
            capture_output=True,
        )
        yield World(load_tenants(path), companies, pg_meltano_uri)
    finally:
        for proc in procs:
            proc.stop()


def ledger_codes(uri: str) -> set[int]:
    """Client codes in a sync ledger (sync_ledger's table), SQLite path or PostgreSQL URI."""
    import sqlalchemy as sa

    url = uri if "://" in uri else f"sqlite:///{uri}"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                int(row[0]) for row in conn.execute(sa.text("SELECT code FROM sync_ledger_pair"))
            }
    finally:
        engine.dispose()


def edit_today(company: Company, codes: list[int]) -> None:
    """Edit clients as a desktop user would, today (the first modified run reads 24 h)."""
    for code in codes:
        company.factusol.admin(
            "PATCH", f"clients/{code}", {"POBCLI": f"Villa {company.spec.id}"},
            base_datos=company.spec.base,
        )  # fmt: skip


def assert_contacts_are_own_clients(company: Company, codes: set[int]) -> None:
    """Every linked contact is one of this company's clients, with this company's data."""
    clients = company.clients()
    linked = company.linked_contacts()
    assert set(linked) == codes
    for code, contact in linked.items():
        cities = {a.get("city") for a in contact.get("addresses") or []}
        assert clients[code]["POBCLI"] in cities, (company.spec.id, code, cities)


def test_two_companies_synced_at_the_same_time_keep_their_own_state_and_data(
    world: World,
) -> None:
    acme, globex = world.companies["acme"], world.companies["globex"]
    edit_today(acme, sorted(acme.clients())[:3])
    edit_today(globex, sorted(globex.clients())[1:3])
    f2c = DIRECTIONS["factusol_to_clientify"]
    results: dict[str, SyncResult] = {}
    spans: dict[str, tuple[float, float]] = {}

    def sync(company_id: str) -> None:
        started = time.monotonic()
        results[company_id] = run_sync(
            world.tenants, world.tenants.company(company_id), f2c, full=False,
            run_id=f"00000000-0000-4000-8000-00000000000{len(company_id)}",
        )  # fmt: skip
        spans[company_id] = (started, time.monotonic())

    threads = [threading.Thread(target=sync, args=(c,)) for c in ("acme", "globex")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for company_id, result in results.items():
        assert result.ok, f"{company_id}: " + "\n".join(result.tail[-30:])
    assert max(s for s, _ in spans.values()) < min(e for _, e in spans.values())  # overlapped
    # One state per company, nothing unsuffixed: neither run read or wrote the other's.
    assert world.state_ids() == [
        "prod:tap-factusol-to-target-clientify:acme",
        "prod:tap-factusol-to-target-clientify:globex",
    ]
    for company_id in ("acme", "globex"):
        bookmarks = world.state(results[company_id].state_id)["singer_state"]["bookmarks"]
        assert bookmarks["clients"]["replication_key_value"]
    # Each Clientify got its own company's edited clients, nothing of the other.
    assert_contacts_are_own_clients(acme, set(sorted(acme.clients())[:3]))
    assert_contacts_are_own_clients(globex, set(sorted(globex.clients())[1:3]))
    assert results["acme"].counts["created"] == 3
    assert results["globex"].counts["created"] == 2
    for company_id, result in results.items():
        company_dir = world.tenants.work_dir / company_id
        assert result.report_path.is_relative_to(company_dir)
        assert result.log_path.is_relative_to(company_dir)
        # No ledger_uri in the tenants file: the targets' relative default lands in the
        # company's directory (meltano runs there), with this company's pairs only.
        ledger = company_dir / "output" / "ledger" / "sync-ledger.sqlite"
        assert ledger_codes(str(ledger)) == set(world.companies[company_id].linked_contacts())


def test_dagster_jobs_sync_each_company_into_its_own_account_with_metadata(
    world: World,
    pg_database: Any,
    pg_schemas: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # The sync ledger in PostgreSQL, one schema per company, from one URI with {company}
    # given through a variable (it holds a password): the tenants file's ledger_uri_env.
    prefix = f"ledger_{time.time_ns() % 10**8}"
    uris = {c: pg_schemas(f"{prefix}_{c}") for c in world.companies}
    monkeypatch.setenv(
        "FCSYNC_LEDGER_URI", uris["acme"].replace(f"{prefix}_acme", f"{prefix}_{{company}}")
    )
    doc = yaml.safe_load(world.tenants.path.read_text(encoding="utf-8"))
    doc["defaults"]["ledger_uri_env"] = "FCSYNC_LEDGER_URI"
    world.tenants.path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    world.tenants = load_tenants(world.tenants.path)
    # Dagster's own storage in its own PostgreSQL database, from the documented dagster.yaml.
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DAGSTER_YAML, home / "dagster.yaml")
    for key, value in {
        "DAGSTER_PG_USER": pg_database.user,
        "DAGSTER_PG_PASSWORD": pg_database.password,
        "DAGSTER_PG_HOST": pg_database.host,
        "DAGSTER_PG_PORT": str(pg_database.port),
        "DAGSTER_PG_DB": pg_database.name,
    }.items():
        monkeypatch.setenv(key, value)
    defs = build_definitions(world.tenants)
    ran: dict[str, dg.ExecuteInProcessResult] = {}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None
        assert {limit["key"] for limit in queue.tag_concurrency_limits} == {
            "company", "clientify_account", "factusol_account",
        }  # fmt: skip
        for job in (
            "acme__factusol_to_clientify_full",
            "globex__factusol_to_clientify_full",
            "globex__clientify_to_factusol",
        ):
            ran[job] = defs.resolve_job_def(job).execute_in_process(instance=instance)
        stored = {run.run_id: run for run in instance.get_runs()}
        acme_runs = instance.get_runs(filters=dg.RunsFilter(tags={"company": "acme"}))
    assert all(result.success for result in ran.values())
    assert set(stored) == {result.run_id for result in ran.values()}  # runs in PostgreSQL
    assert len(acme_runs) == 1
    assert acme_runs[0].tags["factusol_account"] == "56789"

    for company_id in ("acme", "globex"):
        company = world.companies[company_id]
        result = ran[f"{company_id}__factusol_to_clientify_full"]
        (mat,) = result.asset_materializations_for_node(f"{company_id}__clientify_contacts")
        meta = {key: value.value for key, value in mat.metadata.items()}
        linked = company.linked_contacts()
        assert meta["created"] + meta["linked"] == len(linked)
        assert meta["created"] + meta["linked"] + meta["rejected"] == company.spec.clients
        assert meta["api_calls"] > 0
        assert meta["meltano_run_id"] == result.run_id
        assert meta["report"] == str(
            world.tenants.work_dir / company_id / "output" / "reports" / "target-clientify.json"
        )
        assert_contacts_are_own_clients(company, set(linked))
        assert ledger_codes(uris[company_id]) == set(linked)  # its own schema, its own pairs
        assert not (world.tenants.work_dir / company_id / "output" / "ledger").exists()
        # Nothing of the other company: no client name of one lands in the other's account.
        other = world.companies["globex" if company_id == "acme" else "acme"]
        contacts = company.clientify.admin("GET", "contacts")["contacts"]
        names = {str(c.get("first_name") or "").strip() for c in contacts}
        own = {str(row["NOFCLI"]).strip() for row in company.clients().values()}
        assert names & own  # the check below compares like with like
        assert not names & {str(row["NOFCLI"]).strip() for row in other.clients().values()}

    c2f = ran["globex__clientify_to_factusol"].asset_materializations_for_node(
        "globex__factusol_clients"
    )[0]
    assert c2f.metadata["state_id"].value == "prod:tap-clientify-to-target-factusol:globex"
    assert c2f.metadata["created"].value == 0  # the contacts f2c just wrote are its own clients
    assert world.state_ids() == [
        "prod:tap-clientify-to-target-factusol:globex",
        "prod:tap-factusol--full-to-target-clientify:acme",
        "prod:tap-factusol--full-to-target-clientify:globex",
    ]
    assert not (
        world.tenants.work_dir / "acme" / "output" / "reports" / "target-factusol.json"
    ).exists()
