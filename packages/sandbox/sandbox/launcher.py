"""Start the emulators as real processes and drive their admin routes (demo, tests, benchmark)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

_READY = re.compile(r"listening on (http://\S+)")


class SandboxProcess:
    """One emulator server process on a loopback port, with its admin API."""

    def __init__(
        self,
        api: str,
        data_dir: Path,
        *,
        port: int = 0,
        config: dict[str, Any] | None = None,
        extra_args: list[str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.api = api
        self.data_dir = Path(data_dir)
        self.port = port
        self.config = config or {}
        self.extra_args = extra_args or []
        self.log_path = log_path or self.data_dir / f"{api}-server.log"
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None
        self.session = requests.Session()

    # -- process -----------------------------------------------------------------------------
    def seed(self, *args: str) -> None:
        """Run `fcsync-sandbox <api> seed --data-dir DIR <args>` to completion."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "sandbox", self.api, "seed", "--data-dir", str(self.data_dir)]
        subprocess.run([*cmd, *args], check=True, capture_output=True, text=True)

    def start(self, timeout: float = 30.0) -> SandboxProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "sandbox", self.api, "serve", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--data-dir", str(self.data_dir), *self.extra_args]
        if self.config:
            cfg = self.data_dir / f"{self.api}-config.json"
            cfg.write_text(json.dumps(self.config), encoding="utf-8")
            cmd += ["--config", str(cfg)]
        self._proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.url = self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> str:
        proc = self._proc
        assert proc is not None
        assert proc.stdout is not None
        stdout = proc.stdout
        found: list[str] = []
        log = self.log_path.open("a", encoding="utf-8")

        def pump() -> None:
            for line in stdout:
                log.write(line)
                log.flush()
                match = _READY.search(line)
                if match and not found:
                    found.append(match.group(1))

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not found:
            if proc.poll() is not None:
                raise RuntimeError(f"{self.api} sandbox exited early; see {self.log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.api} sandbox did not start in {timeout}s")
            time.sleep(0.05)
        return found[0]

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> SandboxProcess:
        return self.start() if self._proc is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- admin API ---------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        """Base URL a client is configured with (Clientify's lives under /v1)."""
        return f"{self.url}/v1" if self.api == "clientify" else self.url

    def admin(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        resp = self.session.request(
            method, f"{self.url}/_sandbox/{path.lstrip('/')}", json=body, params=params, timeout=30
        )
        resp.raise_for_status()
        return resp.json() if resp.content else None

    def configure(self, **body: Any) -> dict[str, Any]:
        """POST /_sandbox/config: faults, switches, clock."""
        result: dict[str, Any] = self.admin("POST", "config", body)
        return result

    def requests_log(self) -> list[dict[str, Any]]:
        return list(self.admin("GET", "requests")["requests"])

    def clear_requests(self) -> None:
        self.admin("DELETE", "requests")


def meltano_env(
    workdir: Path,
    *,
    factusol: SandboxProcess | None = None,
    clientify: SandboxProcess | None = None,
    output: Path | None = None,
    project_root: Path | None = None,
) -> dict[str, str]:
    """Environment that points the project's plugins at these sandboxes, with Meltano state and
    the targets' plan/reject/report files kept under `workdir` (one isolated run world).

    With `project_root`, Meltano's system dir is private too (its `run/` holds each plugin's
    config and state files, which concurrent runs would otherwise overwrite), sharing the
    installed plugin virtualenvs through symlinks.
    """
    out = output or workdir / "output"
    env = {
        **os.environ,
        "MELTANO_DATABASE_URI": f"sqlite:///{workdir / 'meltano.db'}",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_ENVIRONMENT": "dev",
    }
    if project_root is not None:
        env["MELTANO_SYS_DIR_ROOT"] = str(_private_sys_dir(Path(project_root), workdir))
    if factusol is not None:
        env["TAP_FACTUSOL_API_URL"] = factusol.api_url
        env["TARGET_FACTUSOL_API_URL"] = factusol.api_url
        env["TARGET_CLIENTIFY_FACTUSOL_API_URL"] = factusol.api_url
    if clientify is not None:
        for name in ("TAP_CLIENTIFY_API_URL", "TARGET_CLIENTIFY_API_URL"):
            env[name] = clientify.api_url
        env["TARGET_FACTUSOL_CLIENTIFY_API_URL"] = clientify.api_url
    for target in ("target-clientify", "target-factusol"):
        prefix = target.upper().replace("-", "_")
        env[f"{prefix}_PLAN_FILE"] = str(out / "plans" / f"{target}.jsonl")
        env[f"{prefix}_REJECT_FILE"] = str(out / "rejects" / f"{target}.jsonl")
        env[f"{prefix}_REPORT_FILE"] = str(out / "reports" / f"{target}.json")
        env[f"{prefix}_INDEX_CACHE_FILE"] = str(out / "cache" / "clientify-contacts.sqlite")
        env[f"{prefix}_LEDGER_URI"] = str(out / "ledger" / "sync-ledger.sqlite")
    return env


def _private_sys_dir(project_root: Path, workdir: Path) -> Path:
    sys_dir = workdir / "meltano-sys"
    sys_dir.mkdir(parents=True, exist_ok=True)
    for kind in ("extractors", "loaders", "mappers", "utilities"):
        shared, link = project_root / ".meltano" / kind, sys_dir / kind
        if shared.is_dir() and not link.exists():
            link.symlink_to(shared, target_is_directory=True)
    return sys_dir
