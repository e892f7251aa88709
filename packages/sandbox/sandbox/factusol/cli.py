"""`fcsync-sandbox factusol serve|seed ...`"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from sandbox.common import load_json_file, serve
from sandbox.factusol.app import DEFAULTS, create_app
from sandbox.factusol.seed import seed_store
from sandbox.factusol.storage import Store, valid_base, valid_year


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fcsync-sandbox factusol")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("serve", help="run the FactuSOL API emulator")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8765, help="0 = any free port")
    run.add_argument("--data-dir", required=True)
    run.add_argument("--codigo-fabricante", default=DEFAULTS["codigo_fabricante"])
    run.add_argument("--codigo-cliente", default=DEFAULTS["codigo_cliente"])
    run.add_argument("--base-datos", default=DEFAULTS["base_datos"])
    run.add_argument("--password", default=DEFAULTS["password"], help="plain API password")
    run.add_argument("--config", help='JSON file: {"faults": {...}, "switches": {...}}')

    fill = sub.add_parser("seed", help="replace F_CLI by deterministic sample clients")
    fill.add_argument("--data-dir", required=True)
    fill.add_argument("--clients", type=int, default=60)
    fill.add_argument("--seed", type=int, default=42)
    fill.add_argument("--ejercicio", default=None, help="year (default: the current one)")
    fill.add_argument("--base-datos", default=DEFAULTS["base_datos"])
    fill.add_argument("--config", help="JSON file; honours switches.fumcli_has_time")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point used by `sandbox.cli`; returns the exit status."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    config = load_json_file(args.config)
    if args.command == "serve":
        app = create_app(
            args.data_dir,
            codigo_fabricante=args.codigo_fabricante,
            codigo_cliente=args.codigo_cliente,
            base_datos=args.base_datos,
            password=args.password,
            config=config,
        )
        serve(app, args.host, args.port)
        return 0
    year = str(args.ejercicio or dt.date.today().year)
    if not valid_base(args.base_datos) or not valid_year(year):
        print("bad --base-datos or --ejercicio", file=sys.stderr)
        return 2
    has_time = bool((config.get("switches") or {}).get("fumcli_has_time", False))
    store = Store(args.data_dir)
    count = seed_store(
        store, args.base_datos, year, args.clients, args.seed, dt.datetime.now(),
        fumcli_has_time=has_time,
    )  # fmt: skip
    print(f"seeded {count} clients into {store.path(args.base_datos, year)}")
    return 0
