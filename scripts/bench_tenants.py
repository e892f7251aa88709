"""`make bench-tenants`: many companies through the orchestrator, measured on this machine.

N companies (default 20) of M FactuSOL clients (default 1,000) each, plus one more company run
alone as the reference. Each company has its own FactuSOL and Clientify sandbox (own credentials,
same seed: the same work per company), latency 0: the figures are our own cost (Dagster, Meltano,
the plugins), not the network's. Clientify's client rate limits are raised (--rate-limit): at
Clientify's default of 5 requests/s a 1,000-contact initial sync takes over 200 s by the API's
pace alone, whatever the orchestrator does.

As in production: Meltano's state and Dagster's runs in PostgreSQL (a throwaway server, or
--pg-uri), `dagster-daemon run` and `dagster-webserver` with orchestration/deploy/dagster.yaml
(run queue: at most 4 runs at once, one per company and per Clientify account, two per
FactuSOL licence), each company's run launched through the webserver's GraphQL API as its
schedule would queue it. Per job (default: the initial full sync, then the hourly modified run):

  alone     the reference company's run, alone
  together  all N companies' runs queued at once

Reported: the wall time of each phase (first launch to last run finished), each run's time in
the queue and running, the peak RSS of the whole process tree (daemon, webserver, code servers,
run workers, meltano, taps, targets; summed, sampled every 0.2 s), and the API calls per company
(from the sandboxes' own request logs) against the company run alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import psutil
import yaml
from sandbox.launcher import SandboxProcess

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DAGSTER_YAML = ROOT / "orchestration" / "deploy" / "dagster.yaml"
JOBS = {
    "initial": "factusol_to_clientify_full",
    "hourly": "factusol_to_clientify",
}
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


@dataclasses.dataclass
class Config:
    companies: int = 20
    clients: int = 1000
    contacts: int = 0
    rate_limit: int = 200
    seed: int = 42
    pg_uri: str | None = None
    out: Path = ROOT / "output" / "bench-tenants"
    run_timeout: float = 1800.0


@dataclasses.dataclass
class Company:
    id: str
    factusol: SandboxProcess
    clientify: SandboxProcess
    password: str
    api_key: str


# -- process tree memory -----------------------------------------------------------------------
class TreeRss:
    """Peak memory of process trees, sampled every `interval` seconds.

    RSS summed over processes counts shared pages once per process (Python processes forked
    from one another share much); PSS shares them out, so its sum is what the tree really
    holds. Both are reported, by role.
    """

    def __init__(self, roots: list[int], interval: float = 0.2) -> None:
        self.roots, self.interval = roots, interval
        self.peak_rss = self.peak_pss = 0.0
        self.peak_rss_by_role: dict[str, float] = {}
        self.peak_processes = 0
        self.loads: list[float] = []  # the machine's 1-min load average (others' work too)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def role(proc: psutil.Process) -> str:
        args = proc.cmdline()
        for arg in args[:3]:
            name = Path(arg).name
            if name.startswith(("tap-", "target-")):
                return name
            if name == "meltano":
                return "meltano"
        line = " ".join(args)
        if "spawn_main" in line or "execute_run" in line:
            return "dagster run worker"  # the run (our asset) in a spawned process
        if "grpc" in line:
            return "dagster code server"
        if "dagster-webserver" in line:
            return "dagster-webserver"
        if "dagster-daemon" in line:
            return "dagster-daemon"
        return "dagster helpers"  # compute-log tails, orphan watchers, resource tracker

    def sample(self) -> None:
        procs: list[psutil.Process] = []
        for pid in self.roots:
            with suppress(psutil.Error):
                root = psutil.Process(pid)
                procs += [root, *root.children(recursive=True)]
        rss = pss = 0.0
        by_role: Counter[str] = Counter()
        for proc in procs:
            with suppress(psutil.Error):
                info = proc.memory_full_info()
                rss += info.rss / 1e6
                pss += getattr(info, "pss", info.rss) / 1e6
                by_role[self.role(proc)] += info.rss / 1e6
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_processes = max(self.peak_processes, len(procs))
        self.loads.append(os.getloadavg()[0])
        for role, mb in by_role.items():
            self.peak_rss_by_role[role] = max(self.peak_rss_by_role.get(role, 0.0), mb)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def reset(self) -> None:
        self.peak_rss = self.peak_pss = 0.0
        self.peak_rss_by_role, self.peak_processes, self.loads = {}, 0, []

    def start(self) -> TreeRss:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# -- setup -------------------------------------------------------------------------------------
def start_companies(cfg: Config, work: Path, stack: ExitStack) -> list[Company]:
    ids = ["solo", *(f"co{i:02d}" for i in range(1, cfg.companies + 1))]
    companies = []
    for n, company_id in enumerate(ids):
        base = f"FS{n + 1:03d}"
        password, key = f"pw-{company_id}-bench", f"key-{company_id}-bench"
        fs = SandboxProcess(
            "factusol", work / "sandboxes" / company_id / "factusol",
            extra_args=["--base-datos", base, "--codigo-cliente", f"{50000 + n}",
                        "--password", password],
        )  # fmt: skip
        fs.seed("--clients", str(cfg.clients), "--seed", str(cfg.seed), "--base-datos", base)
        cl = SandboxProcess(
            "clientify", work / "sandboxes" / company_id / "clientify",
            extra_args=["--api-key", key],
        )  # fmt: skip
        cl.seed("--contacts", str(cfg.contacts), "--seed", str(cfg.seed))
        stack.enter_context(fs)
        stack.enter_context(cl)
        companies.append(Company(company_id, fs, cl, password, key))
    return companies


def tenants_doc(cfg: Config, companies: list[Company], work: Path) -> dict[str, Any]:
    rate = cfg.rate_limit
    entries = []
    for n, company in enumerate(companies):
        prefix = company.id.upper()
        entries.append(
            {
                "id": company.id,
                "factusol": {
                    "codigo_fabricante": "1234",
                    "codigo_cliente": f"{50000 + n}",
                    "base_datos": f"FS{n + 1:03d}",
                    "password_env": f"{prefix}_FACTUSOL_PASSWORD",
                    "api_url": company.factusol.api_url,
                },
                "clientify": {
                    "api_key_env": f"{prefix}_CLIENTIFY_API_KEY",
                    "api_url": company.clientify.api_url,
                },
            }
        )
    return {
        "version": 1,
        "project_dir": str(ROOT),
        "work_dir": str(work / "tenants"),
        "meltano": str(BIN / "meltano"),
        "run_timeout_minutes": cfg.run_timeout / 60,
        "defaults": {
            "environment": "prod",
            "active": False,  # no schedule fires during the benchmark
            "retries": {"max_retries": 0},
            "settings": {
                "TAP_CLIENTIFY_RATE_LIMIT": rate,
                "TARGET_CLIENTIFY_RATE_LIMIT": rate,
                "TARGET_FACTUSOL_CLIENTIFY_RATE_LIMIT": rate,
                # generated data has clients sharing an e-mail; rejected by design, counted
                "TARGET_CLIENTIFY_MAX_REJECT_PERCENT": 100,
                "TARGET_FACTUSOL_MAX_REJECT_PERCENT": 100,
            },
        },
        "companies": entries,
    }


@contextmanager
def postgres(cfg: Config) -> Iterator[str]:
    if cfg.pg_uri:
        yield cfg.pg_uri
        return
    parent = Path(tempfile.mkdtemp(prefix="fcsync-bench-pg-"))
    parent.chmod(0o755)
    script = str(ROOT / "scripts" / "throwaway_pg.sh")
    subprocess.run([script, "start", str(parent / "pg")], check=True)
    try:
        yield (parent / "pg" / "uri").read_text(encoding="utf-8").strip()
    finally:
        subprocess.run([script, "stop", str(parent / "pg")], check=False)
        shutil.rmtree(parent, ignore_errors=True)


def prepare_databases(server: str, tag: str) -> dict[str, str]:
    """A fresh schema for Meltano and a fresh database for Dagster; their environment."""
    import psycopg

    libpq = "postgresql://" + server.split("://", 1)[1]
    schema, database = f"meltano_{tag}", f"dagster_{tag}"
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'CREATE DATABASE "{database}"')
    parts = urlsplit(server)
    sep = "&" if "?" in server else "?"
    return {
        "MELTANO_DATABASE_URI": f"{server}{sep}options={quote(f'-csearch_path={schema}')}",
        "DAGSTER_PG_USER": unquote(parts.username or ""),
        "DAGSTER_PG_PASSWORD": unquote(parts.password or ""),
        "DAGSTER_PG_HOST": parts.hostname or "127.0.0.1",
        "DAGSTER_PG_PORT": str(parts.port or 5432),
        "DAGSTER_PG_DB": database,
    }


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_service(cmd: list[str], env: dict[str, str], log: Path, stack: ExitStack) -> int:
    handle = log.open("w", encoding="utf-8")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)

    def stop() -> None:
        with suppress(psutil.Error):
            children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for child in children:
            with suppress(psutil.Error):
                child.kill()
        handle.close()

    stack.callback(stop)
    return proc.pid


# -- measuring ---------------------------------------------------------------------------------
def calls_by_kind(company: Company) -> dict[str, int]:
    kinds: Counter[str] = Counter()
    for entry in company.factusol.requests_log():
        path = str(entry.get("path", "")).lower()
        kind = (
            "login" if "autenticar" in path
            else "write" if ("escribir" in path or "actualizar" in path)
            else "read"
        )  # fmt: skip
        kinds[f"factusol_{kind}"] += 1
    for entry in company.clientify.requests_log():
        kind = "read" if str(entry.get("method")).upper() == "GET" else "write"
        kinds[f"clientify_{kind}"] += 1
    return dict(sorted(kinds.items()))


def launch(client: Any, job: str) -> str:
    deadline = time.monotonic() + 120
    while True:
        try:
            return str(client.submit_job_execution(job))
        except Exception:  # the webserver may still be loading the code location
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def run_phase(
    name: str, job: str, companies: list[Company], client: Any, instance: Any, rss: TreeRss,
    timeout: float,
) -> dict[str, Any]:  # fmt: skip
    for company in companies:
        company.factusol.clear_requests()
        company.clientify.clear_requests()
    rss.reset()
    started = time.time()
    run_ids = {c.id: launch(client, f"{c.id}__{job}") for c in companies}
    launched = time.time() - started
    deadline = time.monotonic() + timeout
    while True:
        runs = {cid: instance.get_run_by_id(rid) for cid, rid in run_ids.items()}
        if all(r is not None and r.status.value in TERMINAL for r in runs.values()):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: runs not finished after {timeout:.0f} s")
        time.sleep(0.5)
    finished = max(instance.get_run_stats(rid).end_time or 0.0 for rid in run_ids.values())
    per_run = {}
    for cid, rid in run_ids.items():
        stats = instance.get_run_stats(rid)
        record = instance.get_run_record_by_id(rid)
        created = record.create_timestamp.timestamp() if record else started
        per_run[cid] = {
            "run_id": rid,
            "status": runs[cid].status.value,
            "queued_s": round((stats.start_time or created) - created, 1),
            "running_s": round((stats.end_time or 0) - (stats.start_time or 0), 1),
            "api_calls": calls_by_kind(next(c for c in companies if c.id == cid)),
        }
    return {
        "phase": name,
        "job": job,
        "companies": len(companies),
        "wall_s": round(finished - started, 1),
        "launch_s": round(launched, 1),
        "peak_rss_mb": round(rss.peak_rss),
        "peak_pss_mb": round(rss.peak_pss),
        "peak_rss_by_role_mb": {k: round(v) for k, v in sorted(rss.peak_rss_by_role.items())},
        "peak_processes": rss.peak_processes,
        "load_avg": {
            "mean": round(statistics.fmean(rss.loads), 1) if rss.loads else None,
            "max": round(max(rss.loads), 1) if rss.loads else None,
        },
        "runs": per_run,
    }


def summarize(alone: dict[str, Any], together: dict[str, Any]) -> dict[str, Any]:
    reference = next(iter(alone["runs"].values()))
    ref_calls = reference["api_calls"]
    totals = [sum(r["api_calls"].values()) for r in together["runs"].values()]
    same = sum(r["api_calls"] == ref_calls for r in together["runs"].values())
    running = [r["running_s"] for r in together["runs"].values()]
    queued = [r["queued_s"] for r in together["runs"].values()]
    return {
        "alone_calls": ref_calls,
        "alone_total_calls": sum(ref_calls.values()),
        "together_total_calls": {"min": min(totals), "median": round(statistics.median(totals), 1),
                                 "max": max(totals)},
        "companies_with_the_same_calls_as_alone": same,
        "failed": sum(r["status"] != "SUCCESS" for r in together["runs"].values()),
        "running_s": {"min": min(running), "median": round(statistics.median(running), 1),
                      "max": max(running)},
        "alone_running_s": reference["running_s"],
        "queued_s_max": max(queued),
    }  # fmt: skip


def render(results: dict[str, Any]) -> str:
    cfg = results["config"]
    lines = [
        f"# Tenants benchmark: {cfg['companies']} companies x {cfg['clients']} clients "
        f"(+1 alone), latency 0, client rate limit {cfg['rate_limit']}/s",
        "",
        f"Machine: {results['machine']}. Dagster run queue: {results['queue']}.",
        "",
        "| job | phase | companies | wall s | run s (min / median / max) | max queued s "
        "| peak RSS / PSS MB (processes) | API calls per company (min / median / max) "
        "| same as alone | failed | load avg (mean / max) |",
        "|---|---|--:|--:|---|--:|---|---|--:|--:|---|",
    ]
    for step in results["steps"]:
        alone, together, s = step["alone"], step["together"], step["summary"]
        lines.append(
            f"| `{step['job']}` | alone | 1 | {alone['wall_s']} | {s['alone_running_s']} | - "
            f"| {alone['peak_rss_mb']} / {alone['peak_pss_mb']} ({alone['peak_processes']}) "
            f"| {s['alone_total_calls']} "
            f"| - | {sum(r['status'] != 'SUCCESS' for r in alone['runs'].values())} "
            f"| {alone['load_avg']['mean']} / {alone['load_avg']['max']} |"
        )
        rs, tc = s["running_s"], s["together_total_calls"]
        lines.append(
            f"| `{step['job']}` | together | {together['companies']} | {together['wall_s']} "
            f"| {rs['min']} / {rs['median']} / {rs['max']} | {s['queued_s_max']} "
            f"| {together['peak_rss_mb']} / {together['peak_pss_mb']} "
            f"({together['peak_processes']}) "
            f"| {tc['min']} / {tc['median']} / {tc['max']} "
            f"| {s['companies_with_the_same_calls_as_alone']}/{together['companies']} "
            f"| {s['failed']} | {together['load_avg']['mean']} / {together['load_avg']['max']} |"
        )
    lines.append("")
    for step in results["steps"]:
        lines.append(
            f"- `{step['job']}` alone, calls by kind: {step['summary']['alone_calls']}; "
            f"peak RSS by role together (MB): {step['together']['peak_rss_by_role_mb']}"
        )
    lines += ["", f"Total benchmark time (setup included): {results['total_s']:.0f} s.", ""]
    return "\n".join(lines)


def run(cfg: Config) -> dict[str, Any]:
    from dagster import DagsterInstance
    from dagster_graphql import DagsterGraphQLClient

    total_started = time.monotonic()
    work = cfg.out / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with ExitStack() as stack:
        print(f"seeding and starting {2 * (cfg.companies + 1)} sandboxes", flush=True)
        companies = start_companies(cfg, work, stack)
        server = stack.enter_context(postgres(cfg))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MELTANO_", "DAGSTER_"))}
        env.update(prepare_databases(server, dt.datetime.now().strftime("%H%M%S")))
        for company in companies:
            env[f"{company.id.upper()}_FACTUSOL_PASSWORD"] = company.password
            env[f"{company.id.upper()}_CLIENTIFY_API_KEY"] = company.api_key
        tenants = work / "tenants.yaml"
        tenants.write_text(yaml.safe_dump(tenants_doc(cfg, companies, work)), encoding="utf-8")
        home = work / "dagster_home"
        home.mkdir()
        shutil.copy(DAGSTER_YAML, home / "dagster.yaml")
        env.update({"DAGSTER_HOME": str(home), "FCSYNC_TENANTS_FILE": str(tenants)})
        subprocess.run([str(BIN / "meltano"), "upgrade", "database"], cwd=ROOT, env=env,
                       check=True, capture_output=True)  # fmt: skip
        module = ["-m", "fcsync_orchestration.definitions"]
        port = free_port()
        daemon = start_service([str(BIN / "dagster-daemon"), "run", *module], env,
                               work / "daemon.log", stack)  # fmt: skip
        web = start_service(
            [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), *module],
            env, work / "webserver.log", stack,
        )  # fmt: skip
        os.environ.update({k: env[k] for k in env if k.startswith("DAGSTER_")})
        instance = stack.enter_context(DagsterInstance.from_config(str(home)))
        queue = instance.get_concurrency_config().run_queue_config
        client = DagsterGraphQLClient("127.0.0.1", port_number=port)
        rss = TreeRss([daemon, web]).start()
        stack.callback(rss.stop)
        solo, rest = companies[:1], companies[1:]
        steps = []
        for label, job in JOBS.items():
            print(f"{label}: {job} alone, then {len(rest)} companies together", flush=True)
            alone = run_phase("alone", job, solo, client, instance, rss, cfg.run_timeout)
            together = run_phase("together", job, rest, client, instance, rss, cfg.run_timeout)
            steps.append({"label": label, "job": job, "alone": alone, "together": together,
                          "summary": summarize(alone, together)})  # fmt: skip
            print(json.dumps(steps[-1]["summary"]), flush=True)
    results = {
        "config": {**dataclasses.asdict(cfg), "out": str(cfg.out), "pg_uri": None},
        "machine": f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 1e9:.0f} GB RAM",
        "queue": (
            f"max_concurrent_runs {queue.max_concurrent_runs}, "
            + ", ".join(f"{t['key']} {t['limit']}" for t in queue.tag_concurrency_limits)
        ),
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "total_s": round(time.monotonic() - total_started, 1),
        "steps": steps,
    }
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    (cfg.out / "results.md").write_text(render(results), encoding="utf-8")
    return results


def _stop(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    default = Config()
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--companies", type=int, default=default.companies)
    parser.add_argument("--clients", type=int, default=default.clients,
                        help="FactuSOL clients per company")  # fmt: skip
    parser.add_argument("--contacts", type=int, default=default.contacts,
                        help="contacts already in each Clientify account")  # fmt: skip
    parser.add_argument("--rate-limit", type=int, default=default.rate_limit,
                        help="our Clientify clients' requests/s (sandboxes: no limit)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=default.seed)
    parser.add_argument("--pg-uri", default=None,
                        help="a PostgreSQL server (role may create schemas and databases); "
                        "default: a throwaway one (scripts/throwaway_pg.sh)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=default.out)
    args = parser.parse_args(argv)
    cfg = Config(
        companies=args.companies, clients=args.clients, contacts=args.contacts,
        rate_limit=args.rate_limit, seed=args.seed, pg_uri=args.pg_uri, out=args.out.resolve(),
    )  # fmt: skip
    signal.signal(signal.SIGTERM, _stop)
    results = run(cfg)
    print(render(results))
    print(f"Results: {cfg.out / 'results.md'} and {cfg.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
