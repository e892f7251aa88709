"""`make sandbox`: serve both emulators on their dev ports until Ctrl-C.

Uses the demo's data when it exists (to look at what `make demo` left), else seeds fresh data.
"""

from __future__ import annotations

import time
from pathlib import Path

from sandbox.launcher import SandboxProcess

WORK = Path(__file__).resolve().parents[1] / ".sandbox" / "demo"


def main() -> int:
    factusol = SandboxProcess("factusol", WORK / "factusol", port=8765)
    clientify = SandboxProcess("clientify", WORK / "clientify", port=8766)
    if not WORK.exists():
        factusol.seed("--clients", "60", "--seed", "42")
        clientify.seed("--contacts", "15", "--seed", "42")
    with factusol, clientify:
        print(f"FactuSOL:  {factusol.url}   (clients: {factusol.url}/_sandbox/clients)")
        print(f"Clientify: {clientify.api_url} (contacts: {clientify.url}/_sandbox/contacts)")
        print("Ctrl-C to stop.")
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
