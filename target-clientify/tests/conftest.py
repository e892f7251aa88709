"""Fixtures for target-clientify: one Clientify sandbox per module (real HTTP on loopback),
reset before each test, and a helper that feeds a `.singer` fixture into the target."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sandbox.clientify.switches import DEFAULT_SWITCHES
from sandbox.launcher import SandboxProcess
from target_clientify.target import TargetClientify

FIXTURES = Path(__file__).parent / "fixtures"
# A distinctive key, so a test can prove it never reaches a log line.
API_KEY = "sk-test-9f8e7d6c5b4a-DO-NOT-LOG"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    proc = SandboxProcess(
        "clientify",
        tmp_path_factory.mktemp("clientify"),
        extra_args=["--api-key", API_KEY],
    )
    proc.seed("--contacts", "0")
    with proc.start():
        yield proc


@pytest.fixture
def clientify(sandbox: SandboxProcess) -> SandboxProcess:
    """The module's sandbox, emptied, default switches, request log cleared."""
    sandbox.admin("POST", "seed", {"contacts": 0})
    sandbox.configure(switches=dict(DEFAULT_SWITCHES), faults={"error_rate": 0.0})
    sandbox.clear_requests()
    return sandbox


@dataclass
class Outcome:
    states: list[dict[str, Any]]
    report: dict[str, Any]
    plan: list[dict[str, Any]]
    rejects: list[dict[str, Any]]


def read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


@pytest.fixture
def config(clientify: SandboxProcess, tmp_path: Path) -> dict[str, Any]:
    return {
        "api_url": clientify.api_url,
        "api_key": API_KEY,
        "plan_file": str(tmp_path / "plan.jsonl"),
        "reject_file": str(tmp_path / "rejects.jsonl"),
        "report_file": str(tmp_path / "report.json"),
        "index_cache_file": str(tmp_path / "contacts.sqlite"),
        "ledger_uri": str(tmp_path / "ledger.sqlite"),
        "rate_limit": 200,
        "max_retries": 0,
    }


RunTarget = Callable[..., Outcome]


@pytest.fixture
def run_target(
    config: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> RunTarget:
    """Feed a fixture (file name or raw text) into TargetClientify; return what it left behind."""

    def run(source: str, **overrides: Any) -> Outcome:
        text = fixture_text(source) if source.endswith(".singer") else source
        target = TargetClientify(config={**config, **overrides}, parse_env_config=False)
        capsys.readouterr()
        try:
            target.listen(io.StringIO(text))
        finally:
            if target._run is not None:  # a simulated kill keeps its lock until GC
                target._run.job.release()
        out = capsys.readouterr().out
        report_path = Path(overrides.get("report_file", config["report_file"]))
        return Outcome(
            states=[json.loads(x) for x in out.splitlines() if x.strip()],
            report=json.loads(report_path.read_text()) if report_path.exists() else {},
            plan=read_lines(Path(overrides.get("plan_file", config["plan_file"]))),
            rejects=read_lines(tmp_path / "rejects.jsonl"),
        )

    return run
