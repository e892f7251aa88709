"""``fcsync-report``: write the report page for the last runs and print where it is."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .render import DEFAULT_PAGE_NAME, render_report_page


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fcsync-report",
        description="Write a self-contained HTML page of what the last sync runs did "
        "(open it in any browser, no network needed).",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path("output"),
        help="the targets' output directory (reports/, plans/, rejects/); default: output",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"where to write the page; default: OUTPUT_DIR/{DEFAULT_PAGE_NAME}",
    )
    parser.add_argument(
        "--history", type=int, default=30, help="runs shown in the chart (default 30)"
    )
    parser.add_argument(
        "--max-items", type=int, default=200, help="entries per section (default 200)"
    )
    args = parser.parse_args(argv)
    if not args.output_dir.is_dir():
        print(
            f"fcsync-report: no such directory: {args.output_dir} (run a sync first, or pass "
            "--output-dir)",
            file=sys.stderr,
        )
        return 2
    try:
        path = render_report_page(
            args.output_dir, out=args.out, history_limit=args.history, max_items=args.max_items
        )
    except (ValueError, OSError) as exc:
        print(f"fcsync-report: {exc}", file=sys.stderr)
        return 1
    print(f"Informe / report: {path.resolve().as_uri()}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
