"""In-process tests of scripts/bench_polls.py: counting, extrapolation, latency, checks.

No sandbox, no `meltano run`: the functions that turn request logs and rusage readings into
the figures of docs/benchmark.md, fed with hand-made values.
"""

from __future__ import annotations

import importlib.util
import resource
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_polls() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fcsync_bench_polls", ROOT / "scripts" / "bench_polls.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


bp = load_polls()


def scenario(job: str, fs: int, cl: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": "idle",
        "job": job,
        "kind": "idle",
        "returncode": 0,
        "records": 0,
        "seconds": 4.0,
        "cpu_s": 4.2,
        "factusol": {"calls": fs},
        "clientify": {"calls": cl + 100, "server_calls": cl},
        **extra,
    }


def test_calls_per_system_prefers_the_sandbox_log_over_the_proxy() -> None:
    assert bp.calls_per_system(scenario("j", 3, 1)) == {"factusol": 3, "clientify": 1}
    older = scenario("j", 3, 1)
    del older["clientify"]["server_calls"]
    assert bp.calls_per_system(older)["clientify"] == 101


def test_extrapolate_day_scales_mean_and_max_to_288_runs() -> None:
    day = bp.extrapolate_day(
        [{"factusol": 3, "clientify": 0}, {"factusol": 3, "clientify": 1}], runs_per_day=288
    )
    assert day["factusol"] == {
        "runs": 2,
        "min": 3,
        "max": 3,
        "mean": 3.0,
        "day": 864,
        "day_max": 864,
    }
    assert day["clientify"]["mean"] == 0.5
    assert day["clientify"]["day"] == 144
    assert day["clientify"]["day_max"] == 288


def test_extrapolate_day_needs_a_sample() -> None:
    with pytest.raises(ValueError, match="no sampled runs"):
        bp.extrapolate_day([])


def test_latency_is_the_wait_for_the_next_run_plus_its_duration() -> None:
    assert bp.latency_figures(6.04) == {
        "run_s": 6.0,
        "best_s": 6.0,
        "mean_s": 156.0,
        "worst_s": 306.0,
    }
    assert bp.latency_figures(10.0, interval_s=60)["worst_s"] == 70.0


def test_rusage_cpu_adds_user_and_system_time_and_never_goes_negative() -> None:
    before = SimpleNamespace(ru_utime=1.0, ru_stime=0.5)
    after = SimpleNamespace(ru_utime=3.25, ru_stime=1.0)
    assert bp.rusage_cpu(before, after) == 2.75
    assert bp.rusage_cpu(after, before) == 0.0
    real = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert bp.rusage_cpu(real, real) == 0.0


def test_summarize_idle_groups_sampled_runs_by_job() -> None:
    runs = [
        scenario("factusol-to-clientify", 3, 0, cpu_s=4.0),
        scenario("factusol-to-clientify", 3, 0, cpu_s=5.0),
        scenario("clientify-to-factusol", 0, 1, cpu_s=3.0),
        {**scenario("clientify-to-factusol", 9, 9), "kind": "modified"},  # not a poll
    ]
    out = bp.summarize_idle(runs)
    assert set(out) == {"factusol-to-clientify", "clientify-to-factusol"}
    f2c = out["factusol-to-clientify"]
    assert f2c["day"]["factusol"]["day"] == 864
    assert f2c["cpu_s"] == [4.0, 5.0]
    assert f2c["cpu_median_s"] == 5.0
    assert out["clientify-to-factusol"]["day"]["clientify"]["max"] == 1
    assert out["clientify-to-factusol"]["failed"] == 0


def test_idle_check_fails_above_three_calls_or_when_records_were_emitted() -> None:
    good = bp.extrapolate_day([{"factusol": 3, "clientify": 0}])
    dear = bp.extrapolate_day([{"factusol": 5, "clientify": 2}])
    (_name, ok, detail), _cpu = bp.idle_checks("f2c", good, [0], [4.0])
    assert ok is True
    assert "~864 FactuSOL" in detail
    assert bp.idle_checks("f2c", dear, [0], [4.0])[0][1] is False
    assert bp.idle_checks("f2c", good, [1], [4.0])[0][1] is False  # not idle


def test_idle_check_compares_with_the_other_size() -> None:
    small = bp.extrapolate_day([{"factusol": 3, "clientify": 0}])
    large = bp.extrapolate_day([{"factusol": 3, "clientify": 0}, {"factusol": 3, "clientify": 0}])
    worse = bp.extrapolate_day([{"factusol": 4, "clientify": 0}])
    checks = bp.idle_checks("f2c", large, [0, 0], [], other_day=small, other_records=10_000)
    assert checks[-1][0] == "idle f2c: the same calls per run at N=10000"
    assert checks[-1][1] is True
    assert bp.idle_checks("f2c", worse, [0], [], other_day=small)[-1][1] is False


def probe(when: str, rc: int, cpu: float, fs: int = 3) -> Any:
    return bp.Probe(
        "factusol-to-clientify", "tap_factusol.probe", rc, when, 0.2, cpu, {"factusol": fs}
    )


def test_probe_checks_judge_the_median_cpu_and_the_answers() -> None:
    runs = [probe("idle", 1, 0.15), probe("idle", 1, 0.5), probe("idle", 1, 0.18)]
    runs.append(probe("edited", 0, 0.19))
    (_cpu_name, cpu_ok, cpu_detail), (_, answers_ok, _) = bp.probe_checks(runs)
    assert cpu_ok is True  # median 0.18 or 0.19: one slow check is reported, not judged
    assert "max 0.500" in cpu_detail
    assert answers_ok is True
    wrong = bp.probe_checks([probe("idle", 0, 0.1)])[1]
    assert wrong[1] is False  # "changed" while nothing changed
    dear = bp.probe_checks([probe("idle", 1, 0.1, fs=4)])[1]
    assert dear[1] is False


def test_probe_checks_skip_a_probe_not_on_main() -> None:
    missing = bp.Probe("clientify-to-factusol", "tap_clientify.probe", -1, error="absent")
    assert missing.answer == "not on main"
    assert bp.probe_checks([missing]) == [
        ("probe tap_clientify.probe: <= 0.2 CPU-s", None, "absent")
    ]


def test_edit_checks_bound_reads_and_lookups_per_system() -> None:
    calls = {
        "factusol": {"read": 3, "lookup": 0, "write": 1},
        "clientify": {"read": 2, "lookup": 2},
    }
    (_name, ok, detail), held = bp.edit_checks("one edit c2f", calls, 1, True)
    assert ok is True
    assert "clientify 4 reads vs bound 4" in detail
    assert held[1] is True
    assert bp.edit_checks("x", calls, 0, False)[0][1] is False
    assert bp.edit_checks("x", calls, 0, False)[1][1] is False


def test_contact_phone_and_row_text_match_any_formatting() -> None:
    contact = {"phones": [{"phone": "+34 699 000 017"}, {"phone": None}]}
    assert bp.contact_has_phone(contact, "699000017")
    assert not bp.contact_has_phone(contact, "699000018")
    assert not bp.contact_has_phone({}, "699000017")
    assert bp.row_has_text({"NOFCLI": "Ana Latencia 7", "CODCLI": 7}, "Latencia 7")
    assert not bp.row_has_text({"NOFCLI": "Ana"}, "Latencia 7")


def test_write_private_keeps_the_probe_config_to_its_owner(tmp_path: Path) -> None:
    path = bp.write_private(tmp_path / "d" / "cfg.json", {"password": "x"})
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text(encoding="utf-8") == '{"password": "x"}'


def test_factusol_won_counts_each_record_once(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("fcsync_bench_main", ROOT / "scripts/bench.py")
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    plan = tmp_path / "plan.jsonl"
    plan.write_text(
        "\n".join(
            [
                '{"action": "conflict", "key": 7, "winner": "factusol"}',
                '{"action": "conflict", "key": 7, "winner": "factusol"}',  # a second field
                '{"action": "conflict", "key": 8, "winner": "clientify"}',
                '{"action": "update", "key": 9, "reason": "not a conflict"}',
                '{"action": "conflict", "key": 10, "winner": "factusol"}',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    assert bench.factusol_won(plan) == 2
