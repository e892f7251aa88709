"""``fcsync-activate``: check both accounts once, before the first sync (``make activate``).

Exit status 0 only when a sync can run; 1 when a check failed; 2 when the settings could not
be read at all.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .checks import Line, run_checks
from .settings import ENV_VARS, Settings, SettingsError, settings_from_env, settings_from_meltano

_OVERRIDES = {
    "factusol_api_url": "--factusol-api-url",
    "codigo_fabricante": "--codigo-fabricante",
    "codigo_cliente": "--codigo-cliente",
    "base_datos": "--base-datos",
    "ejercicio": "--ejercicio",
    "clientify_api_url": "--clientify-api-url",
    "link_field": "--link-field",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fcsync-activate",
        description="Check the FactuSOL and Clientify accounts before the first sync: "
        "credentials, the FactuSOL year, the Clientify country and time zone, how many "
        "customers each side has, and the factusol_id contact field (created when missing, "
        "only if everything else is fine). Secrets are never printed.",
    )
    parser.add_argument(
        "--environment",
        default="dev",
        help="Meltano environment whose target-factusol config to use (default: dev; "
        "your real accounts: prod)",
    )
    parser.add_argument(
        "--project-root", type=Path, default=None, help="the Meltano project (default: here)"
    )
    parser.add_argument("--meltano", default=None, help="the meltano executable to run")
    parser.add_argument(
        "--from-env",
        action="store_true",
        help="read the settings from the environment instead of Meltano: "
        + ", ".join(ENV_VARS.values()),
    )
    # No option for a password or key: a command line is visible to every user (ps, history).
    for name, flag in _OVERRIDES.items():
        parser.add_argument(flag, dest=name, default=None, help=f"override {name}")
    return parser


def main(argv: Sequence[str] | None = None, *, out: Callable[[str], None] | None = None) -> int:
    args = _parser().parse_args(argv)
    write = out or (lambda text: print(text, flush=True))
    try:
        if args.from_env:
            settings: Settings = settings_from_env()
        else:
            settings = settings_from_meltano(
                args.environment, project_root=args.project_root, meltano=args.meltano
            )
    except SettingsError as exc:
        write(f"✗ Ajustes · settings: {exc}")
        return 2
    settings = settings.with_overrides({name: getattr(args, name) for name in _OVERRIDES})
    secrets = settings.secrets()

    write(f"Comprobando las cuentas · checking the accounts (ajustes de {settings.source})")

    def emit(line: Line) -> None:
        write(line.render(secrets))

    report = run_checks(settings, emit=emit)
    if report.ok:
        write("Listo: se puede sincronizar · Ready: a sync can run.")
        return 0
    write("No se puede sincronizar todavía: corrija las líneas ✗ · Not ready: fix the ✗ lines.")
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
