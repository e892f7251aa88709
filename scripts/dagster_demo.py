"""`make dagster-demo`: the Dagster UI over the two demo companies of tenants.demo.yaml.

Starts, and stops again on Ctrl-C (or SIGTERM):
- a FactuSOL and a Clientify sandbox per company, seeded: acme on 8765/8766 (database FS001),
  globex on 8775/8776 (database FS002 of the same DELSOL licence, its own Clientify key);
- a throwaway PostgreSQL (scripts/throwaway_pg.sh) holding Meltano's system database (schema
  `meltano`) and Dagster's storage (database `dagster`), the layout the README recommends; with
  --no-postgres, or when PostgreSQL cannot be started, SQLite for both;
- `dagster dev` (webserver + daemon) on http://127.0.0.1:3000 only, with DAGSTER_HOME in
  output/dagster-demo/dagster_home and the run queue of orchestration/deploy/dagster.yaml;
- a webhook receiver on loopback that prints each alert (tenants.demo.yaml's `alerts:`): stop a
  sandbox, or give a company a wrong key, and see one line per incident.

The companies' secrets are the sandboxes' test credentials, set here in the environment under
the names tenants.demo.yaml gives.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from contextlib import ExitStack, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import yaml
from sandbox.launcher import SandboxProcess

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OUT = ROOT / "output" / "dagster-demo"
COMPANIES = {
    # id: (FactuSOL port, Clientify port, base_datos, password, API key, clients, contacts, seed)
    "acme": (8765, 8766, "FS001", "sandbox-password", "sandbox-api-key", 25, 8, 7),
    "globex": (8775, 8776, "FS002", "globex-sandbox-password", "globex-sandbox-api-key", 15, 5, 8),
}


def start_sandboxes(stack: ExitStack) -> dict[str, str]:
    """Seed and start both companies' sandboxes; return the secrets' environment."""
    env: dict[str, str] = {}
    for company, (
        fs_port,
        cl_port,
        base,
        password,
        key,
        clients,
        contacts,
        seed,
    ) in COMPANIES.items():
        data = OUT / "sandboxes" / company
        shutil.rmtree(data, ignore_errors=True)
        fs = SandboxProcess(
            "factusol", data / "factusol", port=fs_port,
            extra_args=["--base-datos", base, "--password", password],
        )  # fmt: skip
        fs.seed("--clients", str(clients), "--seed", str(seed), "--base-datos", base)
        cl = SandboxProcess(
            "clientify", data / "clientify", port=cl_port, extra_args=["--api-key", key]
        )
        cl.seed("--contacts", str(contacts), "--seed", str(seed))
        stack.enter_context(fs)
        stack.enter_context(cl)
        print(f"{company}: FactuSOL {fs.url} ({base}), Clientify {cl.api_url}", flush=True)
        env[f"{company.upper()}_FACTUSOL_PASSWORD"] = password
        env[f"{company.upper()}_CLIENTIFY_API_KEY"] = key
    return env


def start_postgres(stack: ExitStack) -> str | None:
    """A throwaway server; its URI, or None when it cannot start here."""
    parent = Path(tempfile.mkdtemp(prefix="fcsync-demo-pg-"))
    parent.chmod(0o755)  # the postgres user must reach its data directory
    pg_dir = parent / "pg"
    script = str(ROOT / "scripts" / "throwaway_pg.sh")
    started = subprocess.run([script, "start", str(pg_dir)], check=False)
    if started.returncode != 0:
        shutil.rmtree(parent, ignore_errors=True)
        return None
    stack.callback(shutil.rmtree, parent, True)
    stack.callback(subprocess.run, [script, "stop", str(pg_dir)], check=False)
    return (pg_dir / "uri").read_text(encoding="utf-8").strip()


def postgres_env(server: str) -> dict[str, str]:
    """Meltano in schema `meltano` of the server's database, Dagster in database `dagster`."""
    from urllib.parse import unquote, urlsplit

    import psycopg

    libpq = "postgresql://" + server.split("://", 1)[1]
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS meltano")
        conn.execute("CREATE DATABASE dagster")
    parts = urlsplit(server)
    return {
        "MELTANO_DATABASE_URI": f"{server}?options={quote('-csearch_path=meltano')}",
        "DAGSTER_PG_USER": unquote(parts.username or ""),
        "DAGSTER_PG_PASSWORD": unquote(parts.password or ""),
        "DAGSTER_PG_HOST": parts.hostname or "127.0.0.1",
        "DAGSTER_PG_PORT": str(parts.port or 5432),
        "DAGSTER_PG_DB": "dagster",
    }


def dagster_home(postgres: bool) -> Path:
    home = OUT / "dagster_home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    config = yaml.safe_load((ROOT / "orchestration" / "deploy" / "dagster.yaml").read_text())
    if not postgres:
        del config["storage"]  # Dagster's default: SQLite files in DAGSTER_HOME
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return home


def start_alert_receiver(stack: ExitStack) -> str:
    """A loopback webhook receiver printing each alert; its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                text = json.loads(body).get("text", "")
            except ValueError:
                text = "(not JSON)"
            print(f"ALERT: {text}", flush=True)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stack.callback(server.server_close)
    stack.callback(server.shutdown)
    return f"http://127.0.0.1:{server.server_address[1]}/alerts"


def _stop(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=3000, help="Dagster UI port on 127.0.0.1")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite for Meltano and Dagster")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    # Started in the background by a shell, this process ignores SIGINT and dagster dev would
    # inherit that: then it could not be stopped. A handled signal is reset to default on exec.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    shutil.rmtree(OUT / "tenants", ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MELTANO_", "DAGSTER_"))}
    with ExitStack() as stack:
        env.update(start_sandboxes(stack))
        env["DEMO_ALERT_WEBHOOK_URL"] = start_alert_receiver(stack)
        server = None if args.no_postgres else start_postgres(stack)
        if server:
            env.update(postgres_env(server))
            print("Meltano state and Dagster runs in PostgreSQL", flush=True)
        else:
            print("SQLite for Meltano (one file per company) and Dagster", flush=True)
        env["DAGSTER_HOME"] = str(dagster_home(postgres=server is not None))
        env["FCSYNC_TENANTS_FILE"] = str(ROOT / "tenants.demo.yaml")
        if server:  # the deployment step: the system database's tables, once
            subprocess.run(
                [str(BIN / "meltano"), "upgrade", "database"], cwd=ROOT, env=env, check=True,
                capture_output=True,
            )  # fmt: skip
        print(
            f"Dagster UI: http://127.0.0.1:{args.port} (jobs acme__*, globex__*); Ctrl-C stops",
            flush=True,
        )
        dev = subprocess.Popen(
            [
                str(BIN / "dagster"), "dev", "-m", "fcsync_orchestration.definitions",
                "-h", "127.0.0.1", "-p", str(args.port),
            ],
            cwd=ROOT, env=env, start_new_session=True,  # its services in one group
        )  # fmt: skip
        try:
            return dev.wait()
        except KeyboardInterrupt:
            dev.send_signal(signal.SIGINT)
            with suppress(subprocess.TimeoutExpired):
                dev.wait(timeout=30)
            with suppress(ProcessLookupError):
                os.killpg(dev.pid, signal.SIGKILL)  # webserver, daemon, code servers left over
            dev.wait()
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
