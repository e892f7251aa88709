"""Issue 24's scenarios for `make bench`: a day of idle polls, the probes, one edit each way.

Imported by scripts/bench.py, which owns the sandboxes and `meltano run`; this module takes
them as arguments (a `World` and its `run_scenario`) and imports nothing from it, so
tests/bench can load it alone. The pure parts (call counts per system, the day's
extrapolation, the latency formula, CPU from rusage, the checks) are tested in-process.

- **A day of idle polls.** The schedule runs each modified job every 5 minutes: 288 runs a day
  each way. The benchmark samples `idle_runs` of them per direction, back to back, and
  extrapolates the day from the sample (calls per run are what a poll costs whatever the hour:
  both taps read only a bookmark window). Each sample run is one `meltano run`, its calls
  counted per system from the sandboxes' request logs, its CPU from the kernel's rusage.
- **Probes.** `python -m tap_factusol.probe CONFIG STATE` (and `tap_clientify.probe`, when that
  module exists) with the job's own state: exit 1 = nothing to do; calls and CPU per check.
- **One edit each way.** One client edited in FactuSOL and one contact in Clientify, then one
  modified run each way: its calls against 3 + the changed rows, whether the other side holds
  the edit after the run, and the latency of the 5-minute schedule (worst = 5 min + the run).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import resource
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

RUNS_PER_DAY = 288  # one modified run every 5 minutes, each way
POLL_INTERVAL_S = 300.0
IDLE_CALL_LIMIT = 3  # calls per system per idle run (issue 24)
PROBE_CPU_LIMIT_S = 0.2
EDIT_CALL_SLACK = 3  # "reads <= 3 + changed rows per system"
SYSTEMS = ("factusol", "clientify")
STATE_IDS = {
    "factusol-to-clientify": "dev:tap-factusol-to-target-clientify",
    "clientify-to-factusol": "dev:tap-clientify-to-target-factusol",
}
PROBES = {
    "factusol-to-clientify": ("tap-factusol", "extractors", "tap_factusol"),
    "clientify-to-factusol": ("tap-clientify", "extractors", "tap_clientify"),
}


# -- pure parts (tests/bench/test_bench_polls.py) ----------------------------------------------
def rusage_cpu(before: Any, after: Any) -> float:
    """User + system CPU seconds between two `resource.getrusage(RUSAGE_CHILDREN)` readings.

    RUSAGE_CHILDREN covers every descendant that was waited for: `meltano` waits for its tap
    and target, so a `meltano run`'s whole process tree is counted once it has exited.
    """
    used = float(after.ru_utime - before.ru_utime) + float(after.ru_stime - before.ru_stime)
    return round(max(0.0, used), 3)


def calls_per_system(scenario: Mapping[str, Any]) -> dict[str, int]:
    """Calls one run made, per system, from the sandboxes' own logs (a scenario dict)."""
    clientify = scenario["clientify"]
    return {
        "factusol": int(scenario["factusol"]["calls"]),
        # the sandbox's own log; the proxy's count when an older results file lacks it
        "clientify": int(clientify.get("server_calls", clientify["calls"])),
    }


def extrapolate_day(
    samples: Iterable[Mapping[str, int]], runs_per_day: int = RUNS_PER_DAY
) -> dict[str, dict[str, float]]:
    """Per system: calls per sampled run (min/max/mean) and the day's 288 runs from them.

    `day` = mean x runs_per_day (the estimate), `day_max` = max x runs_per_day (the bound
    if every run cost the dearest sample).
    """
    rows = list(samples)
    if not rows:
        raise ValueError("no sampled runs")
    out: dict[str, dict[str, float]] = {}
    for system in SYSTEMS:
        values = [int(r.get(system, 0)) for r in rows]
        mean = sum(values) / len(values)
        out[system] = {
            "runs": len(values),
            "min": min(values),
            "max": max(values),
            "mean": round(mean, 2),
            "day": round(mean * runs_per_day),
            "day_max": max(values) * runs_per_day,
        }
    return out


def latency_figures(run_seconds: float, interval_s: float = POLL_INTERVAL_S) -> dict[str, float]:
    """Edit -> the other side holds it, on a schedule of one run every `interval_s`.

    An edit waits for the next scheduled start (0 to `interval_s`; an edit made just after a
    run read its window is only seen by the next one), then that run's duration:
    best = D, mean = interval/2 + D, worst = interval + D.
    """
    return {
        "run_s": round(run_seconds, 1),
        "best_s": round(run_seconds, 1),
        "mean_s": round(interval_s / 2 + run_seconds, 1),
        "worst_s": round(interval_s + run_seconds, 1),
    }


def same_at_both_sizes(
    ours: Mapping[str, Mapping[str, float]], other: Mapping[str, Mapping[str, float]]
) -> bool:
    """The dearest idle run costs the same number of calls per system at both sizes."""
    return all(ours[s]["max"] == other[s]["max"] for s in SYSTEMS)


@dataclasses.dataclass
class Probe:
    """One change probe run: `python -m <module>.probe CONFIG STATE`."""

    direction: str
    module: str
    returncode: int  # 0 changed, 1 nothing changed, 2 error; -1 not run (no such module)
    when: str = "idle"  # idle: nothing changed since the job's bookmark; edited: one edit
    seconds: float = 0.0
    cpu_s: float = 0.0
    calls: dict[str, int] = dataclasses.field(default_factory=dict)
    error: str = ""
    load1: float = 0.0  # the machine's 1-minute load average when it ran (CPU-s rise with it)

    @property
    def answer(self) -> str:
        return {0: "changed", 1: "nothing changed", 2: "error", -1: "not on main"}.get(
            self.returncode, f"exit {self.returncode}"
        )


def idle_checks(
    direction: str,
    day: Mapping[str, Mapping[str, float]],
    records: Iterable[int],
    cpu: Iterable[float],
    other_day: Mapping[str, Mapping[str, float]] | None = None,
    other_records: int | None = None,
) -> list[tuple[str, bool | None, str]]:
    """(name, ok, detail) of one direction's idle sample; ok None = not judged here."""
    emitted = sum(records)
    cpu_list = list(cpu)
    out: list[tuple[str, bool | None, str]] = []
    worst = {s: int(day[s]["max"]) for s in SYSTEMS}
    out.append(
        (
            f"idle {direction}: <= {IDLE_CALL_LIMIT} calls per system per run",
            all(v <= IDLE_CALL_LIMIT for v in worst.values()) and emitted == 0,
            f"max FactuSOL {worst['factusol']}, Clientify {worst['clientify']} calls in "
            f"{int(day['factusol']['runs'])} sampled runs ({emitted} records emitted); "
            f"day of {RUNS_PER_DAY}: ~{int(day['factusol']['day'])} FactuSOL + "
            f"~{int(day['clientify']['day'])} Clientify calls",
        )
    )
    if cpu_list:
        out.append(
            (
                f"idle {direction}: CPU per idle `meltano run` (reported)",
                None,
                f"median {sorted(cpu_list)[len(cpu_list) // 2]:.2f} CPU-s, max "
                f"{max(cpu_list):.2f} (user+sys of the whole process tree)",
            )
        )
    if other_day is not None:
        out.append(
            (
                f"idle {direction}: the same calls per run at N={other_records}",
                same_at_both_sizes(day, other_day),
                "max per run here FactuSOL {} / Clientify {}, there {} / {}".format(
                    worst["factusol"],
                    worst["clientify"],
                    int(other_day["factusol"]["max"]),
                    int(other_day["clientify"]["max"]),
                ),
            )
        )
    return out


def probe_checks(probes: Iterable[Probe]) -> list[tuple[str, bool | None, str]]:
    """Per probe module: median CPU <= the limit (reported), calls and answers (counted)."""
    by_module: dict[str, list[Probe]] = {}
    for p in probes:
        by_module.setdefault(p.module, []).append(p)
    out: list[tuple[str, bool | None, str]] = []
    for module, runs in by_module.items():
        if any(p.returncode == -1 for p in runs):
            out.append((f"probe {module}: <= {PROBE_CPU_LIMIT_S} CPU-s", None, runs[0].error))
            continue
        cpu = [p.cpu_s for p in runs]
        out.append(
            (
                f"probe {module}: <= {PROBE_CPU_LIMIT_S} CPU-s per check (median)",
                median(cpu) <= PROBE_CPU_LIMIT_S,
                f"median {median(cpu):.3f}, max {max(cpu):.3f} CPU-s over {len(cpu)} checks "
                f"(interpreter start included)",
            )
        )
        expected = {"idle": 1, "edited": 0}
        wrong = [p for p in runs if p.returncode != expected.get(p.when, p.returncode)]
        calls = max(max(p.calls.values(), default=0) for p in runs)
        out.append(
            (
                f"probe {module}: right answer, <= {IDLE_CALL_LIMIT} calls per system",
                not wrong and calls <= IDLE_CALL_LIMIT,
                f"{len(runs) - len(wrong)}/{len(runs)} right "
                + ", ".join(f"{p.when}: {p.answer}" for p in runs)
                + f"; max {calls} calls on one system"
                + "".join(f"; {p.error}" for p in runs if p.error),
            )
        )
    return out


def edit_checks(
    name: str, calls: Mapping[str, Mapping[str, int]], changed: int, held: bool
) -> list[tuple[str, bool | None, str]]:
    """`calls` = {system: {kind: n}}; reads (+ lookups) per system <= 3 + changed rows."""
    bound = EDIT_CALL_SLACK + changed
    parts, ok = [], True
    for system in SYSTEMS:
        kinds = calls[system]
        reads = int(kinds.get("read", 0)) + int(kinds.get("lookup", 0))
        ok = ok and reads <= bound
        parts.append(f"{system} {reads} reads")
    return [
        (
            f"{name}: reads <= {EDIT_CALL_SLACK} + changed rows per system",
            ok,
            f"{', '.join(parts)} vs bound {bound} ({changed} changed rows)",
        ),
        (f"{name}: the other side holds the edit after the run", held, "checked by key"),
    ]


# -- runs against the sandboxes ----------------------------------------------------------------
def meltano_json(world: Any, *args: str) -> Any:
    """Run a `meltano` command in the bench project and parse the JSON it prints."""
    proc = subprocess.run(
        [world.meltano, *args],
        cwd=world.project,
        env=world.env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    start = min(i for i in (proc.stdout.find("{"), proc.stdout.find("[")) if i >= 0)
    return json.loads(proc.stdout[start:])


def write_private(path: Path, data: Any) -> Path:
    """A JSON file only we can read (the probe's config holds the sandbox password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    return path


def run_probe(world: Any, direction: str, plugins_root: Path, when: str = "idle") -> Probe:
    """One probe of `direction`'s tap with the job's current state, as a scheduler would."""
    plugin, kind, module_pkg = PROBES[direction]
    module = f"{module_pkg}.probe"
    python = plugins_root / kind / plugin / "venv" / "bin" / "python"
    source = Path(world.root) / plugin / module_pkg / "probe.py"
    if not source.exists():
        return Probe(direction, module, -1, when, error=f"{source.relative_to(world.root)} absent")
    work = Path(world.work) / "probe"
    config = meltano_json(world, "config", "--unsafe", "print", "--format=json", plugin)
    state = meltano_json(world, "state", "get", STATE_IDS[direction])
    cfg_path = write_private(work / f"{plugin}.config.json", config)
    state_path = write_private(work / f"{plugin}.state.json", state)
    world.clear_logs()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(
        [str(python), "-m", module, str(cfg_path), str(state_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    seconds = time.monotonic() - started
    cpu = rusage_cpu(before, resource.getrusage(resource.RUSAGE_CHILDREN))
    calls = {
        "factusol": len(world.factusol.requests_log()),
        "clientify": len(world.clientify.requests_log()),
    }
    world.proxy.take()
    error = proc.stderr.strip().splitlines()[-1][:200] if proc.returncode == 2 else ""
    load1 = round(os.getloadavg()[0], 1)
    return Probe(
        direction, module, proc.returncode, when, round(seconds, 2), cpu, calls, error, load1
    )


def linked_pairs(ledger: Path, limit: int = 2) -> list[tuple[int, str]]:
    """(code, contact id) of linked pairs from the targets' sync ledger (SQLite)."""
    with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=30) as conn:
        rows = conn.execute(
            "SELECT code, contact_id FROM sync_ledger_pair ORDER BY code LIMIT ?", (limit,)
        ).fetchall()
    return [(int(code), str(cid)) for code, cid in rows]


def contact_has_phone(contact: Mapping[str, Any], national: str) -> bool:
    """Whether one of the contact's phones ends with these digits (any formatting)."""
    for item in contact.get("phones") or []:
        digits = re.sub(r"\D", "", str(item.get("phone", "")))
        if digits.endswith(national):
            return True
    return False


def row_has_text(row: Mapping[str, Any], text: str) -> bool:
    return any(text in str(value) for value in row.values())


def one_edit_each_way(
    world: Any,
    run_scenario: Callable[..., Any],
    jobs: Mapping[str, str],
    probe: Callable[[str], Probe] | None = None,
) -> tuple[list[Any], dict[str, Any], list[Probe]]:
    """Edit one linked client and one linked contact, probe, then one modified run each way."""
    ledger = Path(world.work) / "output" / "ledger" / "sync-ledger.sqlite"
    pairs = linked_pairs(ledger, limit=2)
    if len(pairs) < 2:
        raise RuntimeError("one-edit scenario needs two linked pairs in the ledger")
    (code_f, contact_f), (code_c, contact_c) = pairs
    national = "699" + f"{code_f % 1_000_000:06d}"
    marker = f"Latencia {code_c}"
    world.factusol.admin("PATCH", f"clients/{code_f}", {"TELCLI": f"+34 {national}"})
    world.clientify.admin("PATCH", f"contacts/{contact_c}", {"last_name": marker})
    edited_at = time.time()
    probes = [probe(d) for d in STATE_IDS] if probe else []
    f2c = run_scenario(world, "one edit f2c", jobs["f2c"], "one-edit", 1)
    held_f = contact_has_phone(world.clientify.admin("GET", f"contacts/{contact_f}"), national)
    echo = int(f2c.clientify.get("contacts_written", 0))
    c2f = run_scenario(world, "one edit c2f", jobs["c2f"], "one-edit", 1 + echo)
    held_c = row_has_text(world.factusol.admin("GET", f"clients/{code_c}"), marker)
    detail = {
        "client": code_f,
        "contact_of_client": contact_f,
        "contact": contact_c,
        "client_of_contact": code_c,
        "held": {"f2c": held_f, "c2f": held_c},
        "edited_to_c2f_end_s": round(time.time() - edited_at, 1),
        "latency": {"f2c": latency_figures(f2c.seconds), "c2f": latency_figures(c2f.seconds)},
    }
    return [f2c, c2f], detail, probes


def idle_day(
    world: Any, run_scenario: Callable[..., Any], jobs: Mapping[str, str], runs: int
) -> list[Any]:
    """`runs` idle modified runs each way, alternating as the two schedules would."""
    out = []
    for i in range(runs):
        for key in ("f2c", "c2f"):
            out.append(run_scenario(world, f"idle {key} #{i + 1}", jobs[key], "idle"))
    return out


def summarize_idle(scenarios: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per direction: the day's extrapolation, records emitted and CPU of the sampled runs."""
    by_job: dict[str, list[Mapping[str, Any]]] = {}
    for sc in scenarios:
        if sc["kind"] == "idle":
            by_job.setdefault(sc["job"], []).append(sc)
    out: dict[str, Any] = {}
    for job, runs in by_job.items():
        cpu = [float(r.get("cpu_s", 0.0)) for r in runs]
        secs = [float(r["seconds"]) for r in runs]
        out[job] = {
            "day": extrapolate_day(calls_per_system(r) for r in runs),
            "records": [int(r["records"]) for r in runs],
            "cpu_s": cpu,
            "cpu_median_s": sorted(cpu)[len(cpu) // 2],
            "seconds_median": sorted(secs)[len(secs) // 2],
            "failed": sum(1 for r in runs if r["returncode"] != 0),
            "load1_median": median([float(r.get("load1", 0.0)) for r in runs]),
            "cpu_by_process_median": {
                name: median([float(r.get("cpu_by_process", {}).get(name, 0.0)) for r in runs])
                for name in sorted({n for r in runs for n in r.get("cpu_by_process", {})})
            },
        }
    return out


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2] if values else math.nan
