"""CI guard for the benchmark's call-count targets (scripts/bench.py, fast variant).

Runs every scenario of `make bench-fast` through the real plugins at a small N with no injected
latency and no naive baseline, then asserts only what does not depend on the machine: the
number of API calls by kind. Timing, memory and the speed-up over the naive loop are measured
by `make bench` and reported in docs/benchmark.md, never asserted here.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
MELTANO = str(Path(sys.executable).with_name("meltano"))
# Fifteen `meltano run`s of ~5 s each (mostly Meltano start-up) and a few probes: ~2 min.
RECORDS = 100
IDLE_RUNS = 2  # per direction; `make bench` samples 6

pytestmark = pytest.mark.e2e


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fcsync_bench", ROOT / "scripts" / "bench.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not (ROOT / ".meltano" / "loaders" / "target-factusol" / "venv").exists():
        subprocess.run([MELTANO, "install"], cwd=ROOT, check=True, capture_output=True)
    bench = load_bench()
    cfg = bench.BenchConfig(
        records=RECORDS,
        latency_ms=0,
        out=tmp_path_factory.mktemp("bench"),
        baseline=False,
        run_timeout=80,
        idle_runs=IDLE_RUNS,
    )
    out: dict[str, Any] = bench.run_bench(cfg)
    return out


def scenario(results: dict[str, Any], name: str) -> dict[str, Any]:
    found = [sc for sc in results["scenarios"] if sc["name"] == name]
    assert found, f"no scenario {name!r}"
    sc = found[0]
    assert sc["returncode"] == 0, f"{name}: meltano run failed, see {sc['log']}"
    return sc


def kinds(sc: dict[str, Any], kind: str) -> int:
    return int(sc["factusol"]["kinds"][kind]) + int(sc["clientify"]["kinds"][kind])


def count_checks(results: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [c for c in results["checks"] if c["counts_only"] and c["name"].startswith(prefix + ":")]


@pytest.mark.parametrize("name", ["initial f2c", "initial c2f"])
def test_initial_full_sync_writes_at_most_once_per_record_without_lookups(
    results: dict[str, Any], name: str
) -> None:
    sc = scenario(results, name)
    assert sc["records"] >= RECORDS
    for check in count_checks(results, name):
        assert check["ok"], f"{check['name']}: {check['detail']}"


def test_settling_run_writes_only_what_the_c2f_links_decided(results: dict[str, Any]) -> None:
    scenario(results, "settling f2c")  # the run itself succeeded
    checks = count_checks(results, "settling f2c")
    assert checks
    for check in checks:
        assert check["ok"], f"{check['name']}: {check['detail']}"


@pytest.mark.parametrize(
    "name",
    ["no-op full f2c", "no-op full c2f", "no-op incremental f2c", "no-op incremental c2f"],
)
def test_noop_rerun_writes_nothing_and_reads_one_scan(results: dict[str, Any], name: str) -> None:
    sc = scenario(results, name)
    assert kinds(sc, "write") == 0, f"{name}: writes by route {sc['clientify']['routes']}"
    for check in count_checks(results, name):
        assert check["ok"], f"{check['name']}: {check['detail']}"


@pytest.mark.parametrize("name", ["modified f2c", "modified c2f"])
def test_modified_run_reads_are_bounded_by_the_changes(results: dict[str, Any], name: str) -> None:
    sc = scenario(results, name)
    assert sc["changed"] >= 1
    for check in count_checks(results, name):
        assert check["ok"], f"{check['name']}: {check['detail']}"


@pytest.mark.parametrize("job", ["factusol-to-clientify", "clientify-to-factusol"])
def test_idle_poll_makes_at_most_three_calls_per_system(results: dict[str, Any], job: str) -> None:
    idle = [sc for sc in results["scenarios"] if sc["kind"] == "idle" and sc["job"] == job]
    assert len(idle) == IDLE_RUNS
    for sc in idle:
        assert sc["returncode"] == 0, f"{sc['name']}: meltano run failed, see {sc['log']}"
        assert sc["records"] == 0, f"{sc['name']} was not idle"
    checks = count_checks(results, f"idle {job}")
    assert checks
    for check in checks:
        assert check["ok"], f"{check['name']}: {check['detail']}"


@pytest.mark.parametrize("module", ["tap_factusol.probe", "tap_clientify.probe"])
def test_probe_answers_right_with_at_most_three_calls(results: dict[str, Any], module: str) -> None:
    checks = count_checks(results, f"probe {module}")
    assert checks, f"{module} did not run"
    for check in checks:
        assert check["ok"], f"{check['name']}: {check['detail']}"


@pytest.mark.parametrize("name", ["one edit f2c", "one edit c2f"])
def test_one_edit_costs_what_it_changes_and_reaches_the_other_side(
    results: dict[str, Any], name: str
) -> None:
    scenario(results, name)
    checks = count_checks(results, name)
    assert len(checks) == 2
    for check in checks:
        assert check["ok"], f"{check['name']}: {check['detail']}"


def test_write_span_measures_the_cap_share_between_first_and_last_write() -> None:
    bench = load_bench()
    log = [
        {"t": 0.0, "method": "GET", "path": "/v1/contacts/", "query": "page=1", "status": 200},
        *(
            {"t": 1.0 + i / 10, "method": "POST", "path": "/v1/contacts/", "status": 201}
            for i in range(11)
        ),
        {"t": 1.55, "method": "POST", "path": "/v1/contacts/", "status": 429},
        {"t": 9.0, "method": "GET", "path": "/v1/contacts/", "query": "page=2", "status": 200},
    ]
    span = bench.write_span(log, cap=40)
    # 11 accepted writes over 1 s: 10 intervals of 0.1 s = 10/s, a quarter of the cap of 40/s;
    # each interval is a pause (> 2 slots of 0.025 s), 0.075 s beyond its own slot
    assert (span["writes"], span["seconds"], span["requests"]) == (11, 1.0, 11)
    assert (span["rps"], span["share"]) == (10.0, 0.25)
    assert (span["pauses"], span["paused_s"]) == (10, 0.75)
    assert bench.write_span(log[:2], cap=40)["share"] is None  # one write: no span


def test_flatness_compares_each_plugins_peak_with_the_other_run() -> None:
    bench = load_bench()
    here = [
        {"rss_mb": {"meltano": 240.0, "tap-factusol": 120.0, "target-factusol": 130.0}},
        {"rss_mb": {"target-factusol": 160.0}},
    ]
    there = {
        "config": {"records": 10000},
        "scenarios": [{"rss_mb": {"tap-factusol": 100.0, "target-factusol": 120.0}}],
    }
    checks = {c.name.split(":")[0]: c for c in bench.flatness_checks(here, there, 100000)}
    assert set(checks) == {"tap-factusol", "target-factusol"}  # meltano: only the 250 MB line
    assert checks["tap-factusol"].ok  # 1.20x
    assert not checks["target-factusol"].ok  # 160 / 120 = 1.33x
