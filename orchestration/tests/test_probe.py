"""The change-probe sensors, in process with a fake probe: each modified job starts only when
its probe says so (and once a day regardless), with the bookmark read from Meltano's system
database directly (written here by the real `meltano state set`). test_probe_sandboxes.py runs
the taps' real probes against both sandboxes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from fcsync_orchestration.alerts import Watch
from fcsync_orchestration.definitions import build_definitions
from fcsync_orchestration.probe import StateReader, merge_state, probe_config
from fcsync_orchestration.tenants import Tenants, TenantsError, load_tenants

from .conftest import SECRETS, two_companies

pytestmark = [
    pytest.mark.filterwarnings("error"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]
REPO = Path(__file__).resolve().parents[2]
STATE_ID = "prod:tap-factusol-to-target-clientify:acme"
BOOKMARK = {"bookmarks": {"clients": {"replication_key_value": "2026-12-07T08:55:00+01:00"}}}
C2F_STATE_ID = "prod:tap-clientify-to-target-factusol:acme"
C2F_BOOKMARK = {
    "bookmarks": {
        "contacts": {
            "replication_key": "modified",
            "replication_key_value": "2026-12-07T07:55:00.000000+00:00",
        }
    }
}


class FakeProbe:
    def __init__(self) -> None:
        self.answer: bool | Exception = False
        self.calls: list[tuple[dict[str, Any], dict[str, Any] | None]] = []

    def __call__(self, config: dict[str, Any], state: dict[str, Any] | None) -> bool:
        self.calls.append((config, state))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture(scope="module")
def meltano_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Meltano system database holding acme's bookmark, written by Meltano itself."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('meltano') / 'meltano.db'}"
    meltano = str(Path(sys.executable).with_name("meltano"))
    env = {"MELTANO_DATABASE_URI": uri, "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"}
    for state_id, bookmark in ((STATE_ID, BOOKMARK), (C2F_STATE_ID, C2F_BOOKMARK)):
        subprocess.run(
            [meltano, "state", "set", "--force", state_id, json.dumps({"singer_state": bookmark})],
            cwd=REPO,
            env={**os.environ, **env},
            check=True,
            capture_output=True,
            timeout=120,
        )
    return uri


@pytest.fixture
def tenants(write_tenants: Callable[[dict[str, Any]], Path]) -> Tenants:
    doc = two_companies()
    doc["companies"][0]["change_probe"] = True
    doc["companies"][0]["settings"] = {
        "TAP_FACTUSOL_TIMEZONE": "Atlantic/Canary",
        "TAP_CLIENTIFY_RATE_LIMIT": "2",
    }
    doc["companies"][0]["clientify"]["api_url"] = "http://127.0.0.1:9/v1"
    return load_tenants(write_tenants(doc))


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_the_probe_starts_the_job_only_on_changes_and_daily(
    tenants: Tenants, meltano_db: str
) -> None:
    probe, clock = FakeProbe(), Clock()
    environ = {**SECRETS, "MELTANO_DATABASE_URI": meltano_db}
    defs = build_definitions(tenants, clock=clock, probe=probe, environ=environ)
    names = {s.name for s in defs.schedules or []}
    # change_probe: true -> both modified jobs are started by their sensors instead
    assert "acme__factusol_to_clientify_schedule" not in names
    assert "acme__clientify_to_factusol_schedule" not in names
    assert "acme__factusol_to_clientify_full_schedule" in names  # the full ones keep theirs
    assert "globex__factusol_to_clientify_schedule" in names  # globex has no probe
    assert "globex__clientify_to_factusol_probe" not in {s.name for s in defs.sensors or []}
    sensor = defs.resolve_sensor_def("acme__factusol_to_clientify_probe")
    assert sensor.minimum_interval_seconds == 5 * 60  # sync_every_minutes
    assert sensor.job_name == "acme__factusol_to_clientify"
    instance = dg.DagsterInstance.ephemeral()
    cursor: list[str | None] = [None]

    def tick() -> dg.SensorExecutionData:
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor[0], repository_def=defs.get_repository_def()
        )
        result = sensor.evaluate_tick(context)
        cursor[0] = result.cursor
        return result

    # The first tick: no run requested yet, so the daily one, without asking the probe.
    (first,) = tick().run_requests or []
    assert first.tags["fcsync/trigger"] == "daily"
    assert first.tags["company"] == "acme"
    assert probe.calls == []

    clock.now += timedelta(minutes=5)
    result = tick()
    assert not result.run_requests
    assert "no change" in str(result.skip_message)
    config, state = probe.calls[-1]
    assert state == BOOKMARK  # read from Meltano's own database, no subprocess
    # No change since the bookmark: in sync, so a quiet company is never reported stale.
    watch = Watch(tenants, clock=clock)
    assert (
        watch.status(tenants.company("acme"), "factusol_to_clientify").last_success_at == clock.now
    )
    assert config["password"] == SECRETS["ACME_FACTUSOL_PASSWORD"]
    assert (config["base_datos"], config["api_url"]) == ("FS001", "http://127.0.0.1:9/fs")
    assert config["timezone"] == "Atlantic/Canary"

    probe.answer = True
    clock.now += timedelta(minutes=5)
    (changed,) = tick().run_requests or []
    assert changed.tags["fcsync/trigger"] == "changes"

    probe.answer = ConnectionError("FactuSOL down")
    clock.now += timedelta(minutes=5)
    (failed,) = tick().run_requests or []
    assert failed.tags["fcsync/trigger"] == "probe failed"

    # No changes for a day: one run regardless.
    probe.answer = False
    asked = len(probe.calls)
    clock.now += timedelta(hours=23, minutes=59)
    assert not tick().run_requests
    clock.now += timedelta(minutes=1)
    (daily,) = tick().run_requests or []
    assert daily.tags["fcsync/trigger"] == "daily"
    assert len(probe.calls) == asked + 1


def test_the_clientify_probe_sensor_gets_its_own_config_and_state(
    tenants: Tenants, meltano_db: str
) -> None:
    f2c, c2f, clock = FakeProbe(), FakeProbe(), Clock()
    environ = {**SECRETS, "MELTANO_DATABASE_URI": meltano_db}
    probes = {"factusol_to_clientify": f2c, "clientify_to_factusol": c2f}
    defs = build_definitions(tenants, clock=clock, probe=probes, environ=environ)
    sensor = defs.resolve_sensor_def("acme__clientify_to_factusol_probe")
    assert sensor.job_name == "acme__clientify_to_factusol"
    instance = dg.DagsterInstance.ephemeral()
    context = dg.build_sensor_context(
        instance=instance,
        cursor=json.dumps({"requested_at": clock.now.isoformat()}),
        repository_def=defs.get_repository_def(),
    )
    clock.now += timedelta(minutes=5)
    result = sensor.evaluate_tick(context)
    assert "no change in Clientify" in str(result.skip_message)
    ((config, state),) = c2f.calls
    assert f2c.calls == []
    assert state == C2F_BOOKMARK
    assert config == {
        "api_key": SECRETS["ACME_CLIENTIFY_API_KEY"],
        "api_url": "http://127.0.0.1:9/v1",
        "rate_limit": "2",
    }
    c2f.answer = True
    clock.now += timedelta(minutes=5)
    (changed,) = sensor.evaluate_tick(context).run_requests or []
    assert changed.tags["fcsync/trigger"] == "changes"
    assert changed.tags["clientify_account"] == tenants.company("acme").clientify.account


def test_no_run_is_requested_while_one_is_queued_or_running(
    tenants: Tenants, meltano_db: str
) -> None:
    probe, clock = FakeProbe(), Clock()
    probe.answer = True
    defs = build_definitions(
        tenants, clock=clock, probe=probe, environ={**SECRETS, "MELTANO_DATABASE_URI": meltano_db}
    )
    sensor = defs.resolve_sensor_def("acme__factusol_to_clientify_probe")
    instance = dg.DagsterInstance.ephemeral()
    job = defs.resolve_job_def("acme__factusol_to_clientify")
    instance.create_run_for_job(job_def=job, status=dg.DagsterRunStatus.STARTED)
    context = dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def())
    result = sensor.evaluate_tick(context)
    assert not result.run_requests
    assert "queued or running" in str(result.skip_message)
    assert probe.calls == []


def test_the_state_reader_merges_partial_onto_completed_and_knows_no_state(
    tmp_path: Path, meltano_db: str
) -> None:
    reader = StateReader()
    assert reader.singer_state(meltano_db, STATE_ID) == BOOKMARK
    assert reader.singer_state(meltano_db, "prod:tap-x-to-target-y:none") is None
    assert reader.singer_state(f"sqlite:///{tmp_path / 'fresh.db'}", STATE_ID) is None
    reader.close()
    completed = {"singer_state": {"bookmarks": {"clients": {"v": 1, "k": "a"}}}}
    partial = {"singer_state": {"bookmarks": {"clients": {"v": 2}}}}
    assert merge_state(partial, completed) == {
        "singer_state": {"bookmarks": {"clients": {"v": 2, "k": "a"}}}
    }


def test_probe_settings(write_tenants: Callable[[dict[str, Any]], Path], tenants: Tenants) -> None:
    acme = tenants.company("acme")
    assert acme.change_probes == {
        "factusol_to_clientify": "tap_factusol.probe:has_changes",
        "clientify_to_factusol": "tap_clientify.probe:has_changes",
    }
    assert tenants.company("globex").change_probes == {}
    with pytest.raises(TenantsError, match="the probe lacks password"):
        probe_config(tenants.company("globex"), {})
    with pytest.raises(TenantsError, match="the probe lacks api_key"):
        probe_config(tenants.company("globex"), {}, "clientify_to_factusol")
    doc = two_companies()
    doc["defaults"]["change_probe"] = "not a path"
    with pytest.raises(TenantsError, match="module:function"):
        load_tenants(write_tenants(doc))
    # A bare module:function is the FactuSOL -> Clientify probe, as before; per job by name.
    doc["defaults"]["change_probe"] = "my_probes:factusol"
    doc["companies"][1]["change_probe"] = {"clientify-to-factusol": True}
    acme, globex = load_tenants(write_tenants(doc)).companies
    assert acme.change_probes == {"factusol_to_clientify": "my_probes:factusol"}
    assert globex.change_probe("clientify_to_factusol") == "tap_clientify.probe:has_changes"
    assert globex.change_probe("factusol_to_clientify") is None
    doc["companies"][1]["change_probe"] = {"clientify-to-factusol-full": True}
    with pytest.raises(TenantsError, match="not a modified job"):
        load_tenants(write_tenants(doc))
