"""Both change-probe sensors in process with the taps' real probes against both sandboxes (real
processes on loopback): the bookmarks come from real tap runs, stored by `meltano state set` in
Meltano's system database; a change in a source starts that direction's job, no change starts
nothing, and a day without a run starts one regardless without asking anybody."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from fcsync_orchestration.definitions import build_definitions
from fcsync_orchestration.tenants import load_tenants
from sandbox.launcher import SandboxProcess
from tap_clientify.tap import TapClientify
from tap_factusol.tap import TapFactusol

pytestmark = [
    pytest.mark.filterwarnings("error"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    # the taps' SDK warns about unsorted streams and the like: not what this test checks
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
REPO = Path(__file__).resolve().parents[2]
MELTANO = str(Path(sys.executable).with_name("meltano"))
FS = {"codigo_fabricante": "1234", "codigo_cliente": "56789", "base_datos": "FS001"}
FS_PASSWORD, CL_KEY = "probe-fs-pw", "probe-cl-key"


@dataclass
class Sandboxes:
    factusol: SandboxProcess
    clientify: SandboxProcess

    def fs_config(self) -> dict[str, Any]:
        return {**FS, "password": FS_PASSWORD, "api_url": self.factusol.api_url}

    def cl_config(self) -> dict[str, Any]:
        return {"api_key": CL_KEY, "api_url": self.clientify.api_url, "rate_limit": 1000}

    def calls(self) -> dict[str, int]:
        return {
            "factusol": len(self.factusol.requests_log()),
            "clientify": len(self.clientify.requests_log()),
        }

    def clear(self) -> None:
        self.factusol.clear_requests()
        self.clientify.clear_requests()


@pytest.fixture(scope="module")
def sandboxes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandboxes]:
    root = tmp_path_factory.mktemp("sandboxes")
    fs = SandboxProcess("factusol", root / "factusol", extra_args=["--password", FS_PASSWORD])
    fs.seed("--clients", "8", "--seed", "5")
    cl = SandboxProcess("clientify", root / "clientify", extra_args=["--api-key", CL_KEY])
    cl.seed("--contacts", "6", "--seed", "5")
    with fs.start(), cl.start():
        yield Sandboxes(fs, cl)


def tap_state(tap: Any, config: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> Any:
    """The state a modified run of the tap (in process) leaves."""
    config = {**config, "start_date": "2000-01-01T00:00:00Z"}
    tap(config=config, state={}, parse_env_config=False).sync_all()
    messages = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    return [m["value"] for m in messages if m["type"] == "STATE"][-1]


def meltano_state_set(uri: str, state_id: str, state: dict[str, Any]) -> None:
    subprocess.run(
        [MELTANO, "state", "set", "--force", state_id, json.dumps({"singer_state": state})],
        cwd=REPO,
        env={**os.environ, "MELTANO_DATABASE_URI": uri, "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "0"},
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_each_direction_starts_only_on_its_own_changes_and_daily(
    sandboxes: Sandboxes,
    write_tenants: Callable[[dict[str, Any]], Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    uri = f"sqlite:///{tmp_path / 'meltano.db'}"
    meltano_state_set(
        uri,
        "prod:tap-factusol-to-target-clientify:acme",
        tap_state(TapFactusol, sandboxes.fs_config(), capsys),
    )
    meltano_state_set(
        uri,
        "prod:tap-clientify-to-target-factusol:acme",
        tap_state(TapClientify, sandboxes.cl_config(), capsys),
    )
    doc = {
        "version": 1,
        "project_dir": "project",
        "work_dir": "work",
        "companies": [
            {
                "id": "acme",
                "factusol": {
                    **FS,
                    "password_env": "ACME_FS_PASSWORD",
                    "api_url": sandboxes.factusol.api_url,
                },
                "clientify": {"api_key_env": "ACME_CL_KEY", "api_url": sandboxes.clientify.api_url},
                "settings": {"TAP_CLIENTIFY_RATE_LIMIT": 1000},
                "change_probe": True,
            }
        ],
    }
    tenants = load_tenants(write_tenants(doc))
    now = [datetime(2026, 12, 7, 9, 0, tzinfo=UTC)]
    environ = {"ACME_FS_PASSWORD": FS_PASSWORD, "ACME_CL_KEY": CL_KEY, "MELTANO_DATABASE_URI": uri}
    defs = build_definitions(tenants, clock=lambda: now[0], environ=environ)
    instance = dg.DagsterInstance.ephemeral()
    cursors: dict[str, str | None] = {}

    def tick(direction: str) -> dg.SensorExecutionData:
        name = f"acme__{direction}_probe"
        context = dg.build_sensor_context(
            instance=instance, cursor=cursors.get(name), repository_def=defs.get_repository_def()
        )
        result = defs.resolve_sensor_def(name).evaluate_tick(context)
        cursors[name] = result.cursor
        return result

    def triggers() -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for direction in ("factusol_to_clientify", "clientify_to_factusol"):
            result = tick(direction)
            requests = result.run_requests or []
            assert len(requests) <= 1
            out[direction] = requests[0].tags["fcsync/trigger"] if requests else None
        return out

    # First ticks: no run requested yet, so the daily ones, asking neither system.
    sandboxes.clear()
    assert triggers() == {"factusol_to_clientify": "daily", "clientify_to_factusol": "daily"}
    assert sandboxes.calls() == {"factusol": 0, "clientify": 0}

    # Nothing changed since the bookmarks: nothing starts; the probes' calls only.
    now[0] += timedelta(minutes=5)
    assert triggers() == {"factusol_to_clientify": None, "clientify_to_factusol": None}
    calls = sandboxes.calls()
    assert 1 <= calls["factusol"] <= 3
    assert calls["clientify"] == 1

    # A day without a run: one regardless, without asking.
    now[0] += timedelta(hours=24)
    sandboxes.clear()
    assert triggers() == {"factusol_to_clientify": "daily", "clientify_to_factusol": "daily"}
    assert sandboxes.calls() == {"factusol": 0, "clientify": 0}

    # A client edited in FactuSOL: only FactuSOL -> Clientify starts.
    code = min(int(c["CODCLI"]) for c in sandboxes.factusol.admin("GET", "clients")["clients"])
    sandboxes.factusol.admin("PATCH", f"clients/{code}", {"POBCLI": "Soria"}, base_datos="FS001")
    now[0] += timedelta(minutes=5)
    assert triggers() == {"factusol_to_clientify": "changes", "clientify_to_factusol": None}

    # A contact edited in Clientify: Clientify -> FactuSOL starts (FactuSOL's change is still
    # there: its job has not run, so its bookmark has not moved).
    contact = sandboxes.clientify.admin("GET", "contacts")["contacts"][0]
    sandboxes.clientify.admin("PATCH", f"contacts/{contact['id']}", {"title": "Gerente"})
    now[0] += timedelta(minutes=5)
    assert triggers() == {"factusol_to_clientify": "changes", "clientify_to_factusol": "changes"}
