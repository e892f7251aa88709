"""A stand-in for the `meltano` executable: records how it was called and acts out a run.

FAKE_MELTANO_DIR (required) gets calls.jsonl (argv, cwd, chosen environment variables, umask).
FAKE_MELTANO_PLAN: comma-separated outcomes, one per call, the last one repeating:
  ok      write the target's report (from TARGET_*_REPORT_FILE) and exit 0
  fail    print an error line carrying the FactuSOL password, exit 1
  auth    print Clientify's refusal of the API key, exit 1
  held    print the target's "held by another run" line, exit 0 (no report)
  locked  print Meltano's "already running" refusal, exit 1
  hang    start a child that sleeps, then sleep (for the timeout)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

SHOWN = (
    "FACTUSOL_CODIGO_FABRICANTE", "FACTUSOL_CODIGO_CLIENTE", "FACTUSOL_BASE_DATOS",
    "FACTUSOL_PASSWORD", "CLIENTIFY_API_KEY", "TAP_FACTUSOL_PASSWORD", "TARGET_FACTUSOL_PASSWORD",
    "TAP_CLIENTIFY_API_KEY", "TARGET_CLIENTIFY_API_KEY", "TARGET_FACTUSOL_CLIENTIFY_API_KEY",
    "TAP_FACTUSOL_API_URL", "TARGET_CLIENTIFY_API_URL", "MELTANO_DATABASE_URI",
    "MELTANO_PROJECT_ROOT", "MELTANO_SYS_DIR_ROOT",
)  # fmt: skip


def main() -> int:
    record_dir = Path(os.environ["FAKE_MELTANO_DIR"])
    calls = record_dir / "calls.jsonl"
    n = len(calls.read_text().splitlines()) if calls.exists() else 0
    umask = os.umask(0)
    os.umask(umask)
    sys_dir = Path(os.environ["MELTANO_SYS_DIR_ROOT"])
    entry = {
        "argv": sys.argv[1:],
        "cwd": os.getcwd(),
        "env": {k: os.environ[k] for k in SHOWN if k in os.environ},
        "env_names": sorted(os.environ),
        "umask": umask,
        "sys_dir_links": sorted(p.name for p in sys_dir.iterdir() if p.is_symlink()),
    }
    with calls.open("a") as out:
        out.write(json.dumps(entry) + "\n")
    plan = os.environ.get("FAKE_MELTANO_PLAN", "ok").split(",")
    outcome = plan[min(n, len(plan) - 1)]
    print("2026-01-01T00:00:00Z [info     ] meltano      Running", flush=True)
    if outcome == "fail":
        secret = os.environ.get("FACTUSOL_PASSWORD", "")
        print(f"2026-01-01T00:00:01Z [error    ] tap-factusol KO after 5 retries for {secret}")
        return 1
    if outcome == "auth":
        print(
            "2026-01-01T00:00:01Z [error    ] tap-clientify Clientify rejected the API key "
            "(GET /v1/contacts/ -> 401). Check api_key."
        )
        return 1
    if outcome == "held":
        print(
            "2026-01-01T00:00:01Z [info     ] target-x     job target-x:acme is held by another "
            "run (lock file output/ledger/x.lock; pid 7 since 2026-01-01T00:00:00+00:00): this "
            "run exits without syncing, nothing was done"
        )
        return 0
    if outcome == "locked":
        print(
            "2026-01-01T00:00:01Z [error    ] meltano      Another 'x' pipeline is already running"
        )
        return 1
    if outcome == "hang":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        (record_dir / "child.pid").write_text(str(child.pid))
        print("2026-01-01T00:00:01Z [warning  ] tap-x        slow API", flush=True)
        time.sleep(120)
        return 0
    job = sys.argv[sys.argv.index("run") + 1]
    target = "TARGET_CLIENTIFY" if job.startswith("factusol-to") else "TARGET_FACTUSOL"
    report = Path(os.environ[f"{target}_REPORT_FILE"])
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps({
        "counts": {"created": 3, "linked": 1, "updated": 2, "unchanged": 4, "rejected": 1,
                   "conflicts": 0, "warnings": 2},
        "api_calls": {"read": 5, "write": 6},
        "dry_run": False, "status": "ok",
    }))  # fmt: skip
    Path("output/relative-default.txt").write_text("a plugin default relative to the cwd\n")
    print("2026-01-01T00:00:02Z [warning  ] target-x     1 record rejected (key 7)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
