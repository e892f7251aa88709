"""Test helpers: the FactuSOL sandbox served in a thread, the tap run in-process against it."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import tap_factusol.streams as streams_module
from sandbox.factusol import create_app
from sandbox.factusol.seed import seed_store
from tap_factusol.tap import TapFactusol
from werkzeug.serving import make_server

MADRID = ZoneInfo("Europe/Madrid")


class Sandbox:
    """A running FactuSOL emulator: its URL, clock, data, switches and request log."""

    def __init__(self, data_dir: Path) -> None:
        self.app = create_app(data_dir)
        self.emu = self.app.extensions["factusol"]
        self.state = self.app.extensions["sandbox"]
        self.admin = self.app.test_client()  # admin routes are not logged
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(5)

    @property
    def config(self) -> dict[str, Any]:
        """Tap settings for this sandbox (``ejercicio: auto``, the costliest login path)."""
        return {
            "api_url": self.url,
            "codigo_fabricante": "1234",
            "codigo_cliente": "56789",
            "base_datos": "FS001",
            "password": "sandbox-password",
            "ejercicio": "auto",
        }

    def set_now(self, when: dt.datetime) -> None:
        self.state.clock.set_now(when)

    def switches(self, **values: Any) -> None:
        self.state.update({"switches": values})

    def seed(self, clients: int, seed: int = 42) -> float:
        """Seed ``clients`` rows straight into the store; return the seconds it took."""
        started = time.perf_counter()
        seed_store(
            self.emu.store,
            self.emu.base_datos,
            self.emu.newest_year(),
            clients,
            seed,
            self.emu.now(),
            fumcli_has_time=bool(self.emu.switches.get("fumcli_has_time")),
        )
        return time.perf_counter() - started

    def edit(self, code: int, **values: Any) -> dict[str, Any]:
        """A desktop user edits client ``code`` (FUMCLI stamped by the sandbox clock)."""
        resp = self.admin.patch(f"/_sandbox/clients/{code}", json=values)
        assert resp.status_code == 200, resp.data
        row: dict[str, Any] = resp.json
        return row

    def codes(self) -> list[int]:
        """Every CODCLI, ascending (the seed leaves a few gaps)."""
        year = self.emu.newest_year()
        return [row["CODCLI"] for row in self.emu.store.rows_as_dicts(self.emu.base_datos, year)]

    def calls(self) -> list[str]:
        """Paths of the API calls made since the last ``clear``."""
        return [item["path"] for item in self.state.requests.items()]

    def clear(self) -> None:
        self.state.requests.clear()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    server = Sandbox(tmp_path / "factusol")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(params=["UTC", "Europe/Madrid"])
def host_tz(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test with the host clock's zone (TZ) set to each value."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    try:
        yield request.param
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()


class Clock:
    """One movable "now" for both the sandbox (office stamps) and the tap (run start)."""

    def __init__(self, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sandbox = sandbox
        self.now = dt.datetime(2026, 11, 25, 10, 0, tzinfo=MADRID)
        monkeypatch.setattr(streams_module, "clock", lambda: self.now.timestamp())
        sandbox.set_now(self.now)

    def set(self, when: dt.datetime) -> None:
        self.now = when
        self.sandbox.set_now(when)

    def advance(self, **delta: float) -> None:
        self.set(self.now + dt.timedelta(**delta))


@pytest.fixture
def clock(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(sandbox, monkeypatch)


def run_tap(
    capsys: pytest.CaptureFixture[str],
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run a modified sync; return the records and the last STATE value."""
    capsys.readouterr()
    tap = TapFactusol(config=config, state=state, parse_env_config=False)
    tap.sync_all()
    messages = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    records = [m["record"] for m in messages if m["type"] == "RECORD"]
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    return records, states[-1]


@pytest.fixture
def tap_run(capsys: pytest.CaptureFixture[str]) -> Any:
    """``tap_run(config, state) -> (records, state)``."""
    return lambda config, state=None: run_tap(capsys, config, state)
