"""`make sandbox`: serve both emulators until Ctrl-C, SIGTERM or SIGHUP, then stop them.

    make sandbox                                   # FactuSOL on 8765, Clientify on 8766
    make sandbox FACTUSOL_PORT=0 CLIENTIFY_PORT=0  # any free ports (printed)
    .venv/bin/python scripts/serve_sandbox.py --factusol-port 9001 --clientify-port 9002 \
        [--data-dir DIR]

Uses the demo's data when it exists (to look at what `make demo` left), else seeds fresh data.
Both servers are child processes: they stop when this script is interrupted, terminated or hung
up, and when the process that started it (e.g. `make`) goes away, so none is left running.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from sandbox.launcher import SandboxProcess

WORK = Path(__file__).resolve().parents[1] / ".sandbox" / "demo"
FACTUSOL_PORT = 8765
CLIENTIFY_PORT = 8766
#: How often the wait loop looks at the children and the parent (seconds).
POLL = 0.5
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Stop(Exception):
    """A signal asked the script to stop."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    for other in STOP_SIGNALS:  # a second signal must not interrupt the servers' shutdown
        signal.signal(other, signal.SIG_IGN)
    raise Stop(signal.Signals(signum).name)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factusol-port", type=int, default=FACTUSOL_PORT, help="0: any free")
    parser.add_argument("--clientify-port", type=int, default=CLIENTIFY_PORT, help="0: any free")
    parser.add_argument("--data-dir", type=Path, default=WORK, help=f"default {WORK}")
    return parser.parse_args(argv)


def serve(
    factusol: SandboxProcess,
    clientify: SandboxProcess,
    *,
    keep_going: Callable[[], bool],
    poll: float = POLL,
) -> str:
    """Start both servers, wait while `keep_going()`, stop both; the reason it stopped.

    Each server's stop is registered before it starts, so an interruption while the second one
    starts stops the first one (and the second one) too.
    """
    try:
        with contextlib.ExitStack() as stack:
            for proc in (factusol, clientify):
                stack.callback(proc.stop)
                proc.start()
            print(f"FactuSOL:  {factusol.url}   (clients: {factusol.url}/_sandbox/clients)")
            print(f"Clientify: {clientify.api_url} (contacts: {clientify.url}/_sandbox/contacts)")
            print("Ctrl-C to stop.", flush=True)
            while keep_going():
                time.sleep(poll)
            return "the process that started it is gone"
    except KeyboardInterrupt:
        return "interrupted"
    except Stop as exc:
        return str(exc)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work: Path = args.data_dir
    factusol = SandboxProcess("factusol", work / "factusol", port=args.factusol_port)
    clientify = SandboxProcess("clientify", work / "clientify", port=args.clientify_port)
    if not work.exists():
        factusol.seed("--clients", "60", "--seed", "42")
        clientify.seed("--contacts", "15", "--seed", "42")
    for signum in STOP_SIGNALS:
        signal.signal(signum, _raise_stop)
    parent = os.getppid()
    # Under `make`, a SIGTERM reaches make, not this script: when make dies we are re-parented.
    try:
        reason = serve(factusol, clientify, keep_going=lambda: os.getppid() == parent)
    except RuntimeError as exc:  # a server did not start: the other one is stopped already
        print(f"{exc}. A port in use? Port 0 takes any free one, e.g.", file=sys.stderr)
        print("  make sandbox FACTUSOL_PORT=0 CLIENTIFY_PORT=0", file=sys.stderr)
        return 1
    print(f"Both sandboxes stopped: {reason}.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
