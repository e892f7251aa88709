"""Pieces both emulators share: fault injection, rate limiting, a request log, a movable clock,
the `/_sandbox/*` admin routes and the threaded HTTP server.

Admin routes (never faulted, never rate limited, never logged):
  GET  /_sandbox/health            -> {"ok": true, "api": <name>}
  GET  /_sandbox/config            -> {"faults": {...}, "switches": {...}, "now": iso}
  POST /_sandbox/config            <- {"faults": {...}, "switches": {...},
                                      "clock_offset_seconds": s} or {"now": iso}
  GET  /_sandbox/requests          -> {"requests": [{"t", "method", "path", "status", "fault"}]}
  DELETE /_sandbox/requests        -> clears the log
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import email.utils
import json
import logging
import random
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, Response, g, jsonify, request
from werkzeug.serving import WSGIRequestHandler, make_server

ADMIN_PREFIX = "/_sandbox/"
log = logging.getLogger(__name__)


@dataclasses.dataclass
class Faults:
    """Probabilities (0..1) and sizes of injected failures; all off by default."""

    latency_ms: float = 0.0  # added to every API call
    error_rate: float = 0.0  # HTTP 500/502/503/504
    throttle_rate: float = 0.0  # HTTP 429 with Retry-After
    retry_after_seconds: float = 1.0
    drop_rate: float = 0.0  # connection closed without a response
    slow_rate: float = 0.0  # response delayed by slow_seconds (past a client's timeout)
    slow_seconds: float = 0.0
    rate_limit: float = 0.0  # requests/second over all API routes; 0 = unlimited
    seed: int | None = None


class SandboxClock:
    """Wall clock plus an offset, so tests can move the emulator days forward or back.

    Times are aware and read in ``tz``, the emulated office's zone, never the host's: a
    FactuSOL desktop in Madrid stamps Madrid wall-clock times whatever zone the server is in.
    """

    def __init__(self, tz: str = "Europe/Madrid") -> None:
        self.offset = dt.timedelta(0)
        self.tz = ZoneInfo(tz)

    def now(self) -> dt.datetime:
        """Current time as the emulated service sees it, in its zone."""
        return (dt.datetime.now(dt.UTC) + self.offset).astimezone(self.tz)

    def set_now(self, value: dt.datetime) -> None:
        """Move the clock; a naive ``value`` is a wall-clock time of the clock's zone."""
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.tz)
        self.offset = value - dt.datetime.now(dt.UTC)


class RequestLog:
    """Thread-safe, bounded log of API calls (for tests and the benchmark)."""

    def __init__(self, limit: int = 500_000) -> None:
        self._lock = threading.Lock()
        self._items: list[dict[str, Any]] = []
        self._limit = limit

    def add(self, item: dict[str, Any]) -> None:
        with self._lock:
            if len(self._items) < self._limit:
                self._items.append(item)

    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class TokenBucket:
    """Server-side rate limit: `rate` requests per second, burst of one second's worth."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens = 0.0
        self._stamp = time.monotonic()

    def take(self, rate: float) -> float:
        """Take one token; return 0 when allowed, else the seconds to wait."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(rate, self._tokens + (now - self._stamp) * rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / rate


@dataclasses.dataclass
class SandboxState:
    """Mutable settings of one running emulator, changed through /_sandbox/config."""

    api: str
    switches: dict[str, Any]
    faults: Faults = dataclasses.field(default_factory=Faults)
    clock: SandboxClock = dataclasses.field(default_factory=SandboxClock)
    requests: RequestLog = dataclasses.field(default_factory=RequestLog)
    bucket: TokenBucket = dataclasses.field(default_factory=TokenBucket)
    rng: random.Random = dataclasses.field(default_factory=random.Random)

    def snapshot(self) -> dict[str, Any]:
        return {
            "api": self.api,
            "faults": dataclasses.asdict(self.faults),
            "switches": dict(self.switches),
            "now": self.clock.now().isoformat(timespec="seconds"),
        }

    def update(self, body: dict[str, Any]) -> None:
        """Apply a partial config; unknown keys are an error so typos do not pass silently."""
        for key, value in (body.get("faults") or {}).items():
            if not hasattr(self.faults, key):
                raise KeyError(f"unknown fault {key!r}")
            setattr(self.faults, key, value)
        if "seed" in (body.get("faults") or {}):
            self.rng.seed(self.faults.seed)
        for key, value in (body.get("switches") or {}).items():
            if key not in self.switches:
                raise KeyError(f"unknown switch {key!r}")
            if key == "timezone":
                ZoneInfo(str(value))  # an unknown zone is refused here, not at the next call
            self.switches[key] = value
        if "clock_offset_seconds" in body:
            self.clock.offset = dt.timedelta(seconds=float(body["clock_offset_seconds"]))
        if "now" in body:
            self.clock.set_now(dt.datetime.fromisoformat(body["now"]))


# A fault hook returns a response to send instead of the real one, or None.
FaultResponder = Callable[[str], Response]


def install(app: Flask, state: SandboxState, *, fault_response: FaultResponder) -> None:
    """Wire admin routes, fault injection, rate limiting and the request log into `app`.

    `fault_response(kind)` builds the API-specific body for kind "error" or "throttle".
    """
    app.extensions["sandbox"] = state

    @app.before_request
    def _inject() -> Response | None:
        g.fault = None
        if request.path.startswith(ADMIN_PREFIX):
            return None
        faults, rng = state.faults, state.rng
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000.0)
        if faults.rate_limit:
            wait = state.bucket.take(float(faults.rate_limit))
            if wait:
                g.fault = "rate_limit"
                resp = fault_response("throttle")
                resp.headers["Retry-After"] = str(max(1, round(wait + 0.5)))
                return resp
        if faults.drop_rate and rng.random() < faults.drop_rate:
            g.fault = "drop"
            _drop_connection()
        if faults.slow_rate and rng.random() < faults.slow_rate:
            g.fault = "slow"
            time.sleep(faults.slow_seconds)
        if faults.throttle_rate and rng.random() < faults.throttle_rate:
            g.fault = "throttle"
            resp = fault_response("throttle")
            resp.headers["Retry-After"] = str(faults.retry_after_seconds)
            return resp
        if faults.error_rate and rng.random() < faults.error_rate:
            g.fault = "error"
            return fault_response("error")
        return None

    @app.after_request
    def _record(response: Response) -> Response:
        # Real servers date every answer; ours follows the movable clock, as modified does.
        response.headers["Date"] = email.utils.format_datetime(
            dt.datetime.now(dt.UTC) + state.clock.offset, usegmt=True
        )
        if not request.path.startswith(ADMIN_PREFIX):
            state.requests.add(
                {
                    "t": time.time(),
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "fault": g.get("fault"),
                }
            )
        return response

    @app.get("/_sandbox/health")
    def _health() -> Response:
        return jsonify({"ok": True, "api": state.api})

    @app.get("/_sandbox/config")
    def _get_config() -> Response:
        return jsonify(state.snapshot())

    @app.post("/_sandbox/config")
    def _set_config() -> Response | tuple[Response, int]:
        try:
            state.update(request.get_json(force=True) or {})
        except (KeyError, ValueError, TypeError) as exc:
            return jsonify({"error": str(exc)}), 400
        return jsonify(state.snapshot())

    @app.get("/_sandbox/requests")
    def _get_requests() -> Response:
        return jsonify({"requests": state.requests.items()})

    @app.delete("/_sandbox/requests")
    def _clear_requests() -> Response:
        state.requests.clear()
        return jsonify({"ok": True})


def _drop_connection() -> None:
    """Close the client socket without answering, like a reset by a proxy."""
    sock = request.environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    raise ConnectionAbortedError("sandbox dropped the connection on purpose")


def load_json_file(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    with open(path, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


class _AppDatedHandler(WSGIRequestHandler):
    """The app dates every answer with its movable clock (see `install`); http.server would
    add a second, real-time Date header (clients then read "date1, date2")."""

    def send_response(self, code: int, message: str | None = None) -> None:
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Server", self.version_string())


def serve(app: Flask, host: str, port: int) -> None:
    """Run a threaded server until SIGTERM/SIGINT; prints one line when ready."""
    server = make_server(host, port, app, threaded=True, request_handler=_AppDatedHandler)
    server.daemon_threads = True  # type: ignore[attr-defined]  # a ThreadedWSGIServer (threaded=True)

    def _stop(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    print(f"sandbox {app.name} listening on http://{host}:{server.server_port}", flush=True)
    server.serve_forever()
