"""`fcsync-sandbox <api> <command> ...`: dispatches to each emulator's own command line.

fcsync-sandbox factusol serve --port 8765 --data-dir .sandbox/factusol
fcsync-sandbox factusol seed  --data-dir .sandbox/factusol --clients 60
fcsync-sandbox clientify serve --port 8766 --data-dir .sandbox/clientify
fcsync-sandbox clientify seed  --data-dir .sandbox/clientify --contacts 40
"""

from __future__ import annotations

import importlib
import sys

APIS = ("factusol", "clientify")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in APIS:
        print(__doc__, file=sys.stderr)
        return 2
    module = importlib.import_module(f"sandbox.{args[0]}.cli")
    result: int = module.main(args[1:])
    return result


if __name__ == "__main__":
    raise SystemExit(main())
