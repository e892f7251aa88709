"""Time a full clientify-to-factusol run of new contacts in-process for several max_workers.

Both sandboxes run on loopback with a latency on every API call and a server-side rate limit on
Clientify; the target runs in this process (no Meltano, no tap: the records are read from the
sandbox before the clock starts). Prints one line per worker count and the ratios to the first.

    .venv/bin/python target-factusol/tests/bench_workers.py            # 500 contacts, 1/4/8
    .venv/bin/python target-factusol/tests/bench_workers.py --records 200 --workers 1 16
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from clientify_api import ClientifyClient
from sandbox.launcher import SandboxProcess
from target_factusol.target import TargetFactusol

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FIXTURE = ROOT / "tests" / "fixtures" / "new_contact.singer"
API_KEY = "sandbox-api-key"
FS_CLIENTS = 20


def contact_body(n: int) -> dict[str, Any]:
    return {
        "first_name": f"Persona{n}",
        "last_name": "Bench",
        "emails": [{"email": f"persona{n}@bench.test", "type": 4}],
        "phones": [{"phone": f"+34 6{n:08d}", "type": 1}],
        "addresses": [{"street": f"Calle {n}", "city": "Madrid", "postal_code": "28013"}],
    }


def schema_message() -> dict[str, Any]:
    for line in SCHEMA_FIXTURE.read_text(encoding="utf-8").splitlines():
        message: dict[str, Any] = json.loads(line)
        if message["type"] == "SCHEMA":
            return message
    raise SystemExit(f"no SCHEMA in {SCHEMA_FIXTURE}")


def singer_input(cl: SandboxProcess) -> str:
    """The contacts as tap-clientify would emit them."""
    schema = schema_message()
    props = schema["schema"]["properties"]
    lines = [json.dumps(schema)]
    for contact in ClientifyClient(API_KEY, cl.api_url, rate_limit=None).iter_contacts():
        record = {k: contact.get(k) for k in props if k != "factusol_id"}
        record["factusol_id"] = None
        lines.append(json.dumps({"type": "RECORD", "stream": "contacts", "record": record}))
    return "\n".join(lines) + "\n"


def max_per_second(log: list[dict[str, Any]]) -> int:
    """Most requests inside any 1 s window of a sandbox request log."""
    times = sorted(float(r["t"]) for r in log if "t" in r)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def run_once(
    fs: SandboxProcess, cl: SandboxProcess, tmp: Path, args: argparse.Namespace, workers: int
) -> dict[str, Any]:
    fs.admin("POST", "seed", {"clients": FS_CLIENTS, "seed": 7})
    cl.admin("POST", "seed", {"contacts": 0, "with_link_field": True})
    for proc in (fs, cl):
        proc.configure(faults={"latency_ms": 0.0, "rate_limit": 0.0})
    for n in range(args.records):
        cl.admin("POST", "contacts", contact_body(n))
    text = singer_input(cl)
    fs.configure(faults={"latency_ms": args.latency_ms})
    cl.configure(faults={"latency_ms": args.latency_ms, "rate_limit": args.server_limit})
    fs.clear_requests()
    cl.clear_requests()
    config = {
        "api_url": fs.api_url,
        "codigo_fabricante": "1234",
        "codigo_cliente": "56789",
        "base_datos": "FS001",
        "password": "sandbox-password",
        "clientify_api_url": cl.api_url,
        "clientify_api_key": API_KEY,
        "clientify_rate_limit": args.client_limit,
        "max_workers": workers,
        "plan_file": str(tmp / f"plan-{workers}.jsonl"),
        "reject_file": str(tmp / f"rejects-{workers}.jsonl"),
        "report_file": str(tmp / f"report-{workers}.json"),
        "index_cache_file": str(tmp / f"contacts-{workers}.sqlite"),
    }
    started = time.perf_counter()
    TargetFactusol(config=config).listen(io.StringIO(text))
    seconds = time.perf_counter() - started
    report = json.loads((tmp / f"report-{workers}.json").read_text(encoding="utf-8"))
    cl_log = cl.requests_log()
    return {
        "workers": workers,
        "seconds": seconds,
        "rec_s": args.records / seconds,
        "counts": report["counts"],
        "fs_writes": sum(1 for r in fs.requests_log() if "Registro" in r["path"]),
        "cl_calls": len(cl_log),
        "cl_429": sum(1 for r in cl_log if r.get("status") == 429),
        "cl_max_rps": max_per_second(cl_log),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--server-limit", type=float, default=200.0, help="Clientify req/s")
    parser.add_argument("--client-limit", type=int, default=180, help="clientify_rate_limit")
    args = parser.parse_args()
    logging.getLogger("target-factusol").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        fs = SandboxProcess("factusol", tmp / "factusol")
        fs.seed("--clients", str(FS_CLIENTS), "--seed", "7")
        cl = SandboxProcess("clientify", tmp / "clientify")
        cl.seed("--contacts", "0", "--seed", "7")
        with fs.start(), cl.start():
            results = [run_once(fs, cl, tmp, args, w) for w in args.workers]
    base = results[0]["rec_s"]
    print(
        f"\n{args.records} new contacts, latency {args.latency_ms:g} ms on both sandboxes, "
        f"Clientify server limit {args.server_limit:g}/s, clientify_rate_limit "
        f"{args.client_limit}/s"
    )
    print("| max_workers | s | rec/s | x | created | FS writes | CL calls | CL max rps | CL 429 |")
    print("|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in results:
        print(
            f"| {r['workers']} | {r['seconds']:.1f} | {r['rec_s']:.1f} | {r['rec_s'] / base:.2f} "
            f"| {r['counts'].get('created', 0)} | {r['fs_writes']} | {r['cl_calls']} "
            f"| {r['cl_max_rps']} | {r['cl_429']} |"
        )


if __name__ == "__main__":
    main()
