"""`make sandbox` (scripts/serve_sandbox.py): ports are variables, and stopping it (SIGTERM to
the script or to make, Ctrl-C, or make killed outright) stops the two servers it started."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from .conftest import ROOT

pytestmark = pytest.mark.e2e

URL = re.compile(r"^(FactuSOL|Clientify):\s+(http://127\.0\.0\.1:(\d+))")


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def _wait_gone(pids: list[int], timeout: float = 20.0) -> list[int]:
    """The pids still running after `timeout` seconds (empty as soon as all are gone)."""
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@dataclass
class Served:
    proc: subprocess.Popen[str]
    script: int  # pid of serve_sandbox.py
    servers: list[int]  # pids of the two emulators
    urls: dict[str, str]
    ports: dict[str, int]


def _serve(cmd: list[str], tmp_path: Path) -> Served:
    """Start `cmd`, wait for both URLs, find the script and its two server processes."""
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,  # a signal to the test's group never reaches it
    )
    assert proc.stdout is not None
    urls: dict[str, str] = {}
    ports: dict[str, int] = {}
    lines = []
    for line in proc.stdout:
        lines.append(line)
        match = URL.match(line)
        if match:
            urls[match.group(1)] = match.group(2)
            ports[match.group(1)] = int(match.group(3))
        if line.startswith("Ctrl-C to stop."):
            break
    assert set(urls) == {"FactuSOL", "Clientify"}, "".join(lines)
    script = proc.pid
    if "serve_sandbox.py" not in Path(f"/proc/{script}/cmdline").read_text(errors="replace"):
        (script,) = _children(proc.pid)  # started through make
    servers = _children(script)
    assert len(servers) == 2, servers
    return Served(proc, script, servers, urls, ports)


@pytest.fixture
def cleanup() -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for served in started:  # whatever a failed test left running
        for pid in [*served.servers, served.script, served.proc.pid]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        served.proc.wait(timeout=10)


def _script(tmp_path: Path, *ports: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "scripts" / "serve_sandbox.py"),
        *ports,
        "--data-dir",
        str(tmp_path / "data"),
    ]


def _make(tmp_path: Path, *variables: str) -> list[str]:
    # -o: never rebuild the venv from inside a test, whatever the pyproject files' dates.
    data = f"SANDBOX_DIR={tmp_path / 'data'}"
    return ["make", "-s", "-o", ".venv/.installed", "sandbox", *variables, data]


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/_sandbox/requests", timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


def test_sigterm_to_the_script_stops_both_servers(tmp_path: Path, cleanup: list[Served]) -> None:
    served = _serve(_script(tmp_path, "--factusol-port", "0", "--clientify-port", "0"), tmp_path)
    cleanup.append(served)
    assert all(_answers(url) for url in served.urls.values())
    assert all(port > 0 for port in served.ports.values())  # 0 = any free port, printed

    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=30) == 0
    assert _wait_gone(served.servers) == []
    assert not any(_answers(url) for url in served.urls.values())
    assert served.proc.stdout is not None
    assert "Both sandboxes stopped: SIGTERM." in served.proc.stdout.read()


def test_ctrl_c_stops_both_servers(tmp_path: Path, cleanup: list[Served]) -> None:
    served = _serve(_script(tmp_path, "--factusol-port", "0", "--clientify-port", "0"), tmp_path)
    cleanup.append(served)
    served.proc.send_signal(signal.SIGINT)
    assert served.proc.wait(timeout=30) == 0
    assert _wait_gone(served.servers) == []


def test_make_sandbox_takes_ports_and_sigterm_to_make_stops_everything(
    tmp_path: Path, cleanup: list[Served]
) -> None:
    served = _serve(_make(tmp_path, "FACTUSOL_PORT=0", "CLIENTIFY_PORT=0"), tmp_path)
    cleanup.append(served)
    assert served.script != served.proc.pid  # make -> serve_sandbox.py -> two servers
    assert all(_answers(url) for url in served.urls.values())

    served.proc.send_signal(signal.SIGTERM)  # make passes it on to the script
    served.proc.wait(timeout=30)
    assert _wait_gone([served.script, *served.servers]) == []


def test_make_killed_outright_still_stops_both_servers(
    tmp_path: Path, cleanup: list[Served]
) -> None:
    served = _serve(_make(tmp_path, "FACTUSOL_PORT=0", "CLIENTIFY_PORT=0"), tmp_path)
    cleanup.append(served)
    served.proc.kill()  # SIGKILL: make passes nothing on; the script sees its parent go
    served.proc.wait(timeout=10)
    assert _wait_gone([served.script, *served.servers]) == []


def test_a_fixed_port_is_used(tmp_path: Path, cleanup: list[Served]) -> None:
    with socket.socket() as s1, socket.socket() as s2:  # two free ports, released for the servers
        s1.bind(("127.0.0.1", 0))
        s2.bind(("127.0.0.1", 0))
        wanted = {"FactuSOL": s1.getsockname()[1], "Clientify": s2.getsockname()[1]}
    served = _serve(
        _make(tmp_path, *(f"{name.upper()}_PORT={port}" for name, port in wanted.items())),
        tmp_path,
    )
    cleanup.append(served)
    assert served.ports == wanted
    served.proc.send_signal(signal.SIGTERM)
    served.proc.wait(timeout=30)
    assert _wait_gone([served.script, *served.servers]) == []


def test_a_port_in_use_fails_with_advice_and_leaves_nothing_running(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        proc = subprocess.Popen(
            _script(tmp_path, "--factusol-port", "0", "--clientify-port", port),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, output
    assert "clientify sandbox exited early" in output
    assert "FACTUSOL_PORT=0 CLIENTIFY_PORT=0" in output
    log = (tmp_path / "data" / "factusol" / "factusol-server.log").read_text(encoding="utf-8")
    port_of_factusol = int(re.findall(r"listening on http://127\.0\.0\.1:(\d+)", log)[-1])
    with socket.socket() as probe:  # the FactuSOL server that did start was stopped
        assert probe.connect_ex(("127.0.0.1", port_of_factusol)) != 0
