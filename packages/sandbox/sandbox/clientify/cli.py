"""`fcsync-sandbox clientify serve|seed ...` (dispatched from sandbox.cli)."""

from __future__ import annotations

import argparse
import sys

from sandbox.clientify.seed import parse_codes, seed_contacts
from sandbox.clientify.storage import Store
from sandbox.common import load_json_file, serve


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fcsync-sandbox clientify", description="Clientify API v1 emulator."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("serve", help="run the HTTP server (API under /v1/)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8766, help="0 = any free port (printed)")
    run.add_argument("--data-dir", required=True, help="directory of the SQLite file")
    run.add_argument("--api-key", default="sandbox-api-key")
    run.add_argument("--country", default="ES", help="account country (settings/my-account)")
    run.add_argument(
        "--config",
        default=None,
        help='JSON file: {"switches": {...}, "faults": {...}, "auth": {"username", "password"}}',
    )

    seed = sub.add_parser("seed", help="replace the data with generated Spanish contacts")
    seed.add_argument("--data-dir", required=True)
    seed.add_argument("--contacts", type=int, default=40)
    seed.add_argument("--seed", type=int, default=42)
    seed.add_argument(
        "--linked-codes",
        default=None,
        help="link the first contacts to these FactuSOL codes via factusol_id, e.g. 1-10",
    )
    seed.add_argument(
        "--with-link-field",
        action="store_true",
        help="create the factusol_id custom-field definition (implied by --linked-codes)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "seed":
        store = Store(args.data_dir)
        try:
            count = seed_contacts(
                store,
                contacts=args.contacts,
                seed=args.seed,
                linked_codes=parse_codes(args.linked_codes),
                with_link_field=args.with_link_field,
            )
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        finally:
            store.close()
        print(f"seeded {count} Clientify contacts into {args.data_dir}")
        return 0

    from sandbox.clientify.app import create_app  # Flask only when serving

    try:
        app = create_app(
            args.data_dir,
            api_key=args.api_key,
            country=args.country,
            config=load_json_file(args.config),
        )
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve(app, args.host, args.port)
    return 0
