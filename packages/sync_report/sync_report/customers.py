"""One page per customer the report mentions: its history with the sync (a folder of pages
beside the report, opened from disk like it).

The history itself comes from the caller (the sync ledger's ``CustomerHistory``): this package
depends on none of ours. A step is a mapping with ``at`` (datetime or ISO text), ``reason`` and
optionally ``run_id``, ``side``, ``field``, ``before``, ``after`` and ``detail`` (a mapping).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import jinja2

__all__ = ["CUSTOMER_DIR", "REASON_TEXT", "HistorySource", "write_customer_pages"]

CUSTOMER_DIR = "customers"
#: codes -> each code's steps, oldest first (codes without history are absent)
HistorySource = Callable[[set[int]], Mapping[int, Sequence[Mapping[str, Any]]]]

REASON_TEXT: dict[str, tuple[str, str]] = {
    "user_edit": (
        "cambiado por un usuario en el otro programa",
        "a user changed it on the other side",
    ),
    "conflict": (
        "cambiado en los dos programas: decide la regla",
        "changed on both sides: the rule chose",
    ),
    "first_link": (
        "primera ejecución: enlazado por un dato común",
        "first run: linked by a shared key",
    ),
    "created": ("creado desde el otro programa", "created from the other side"),
    "deleted_in_clientify": (
        "borrado en Clientify: no se vuelve a crear",
        "deleted in Clientify: not re-created",
    ),
    "deleted_in_factusol": (
        "borrado en FactuSOL: el contacto se conserva y se marca",
        "deleted in FactuSOL: contact kept and marked",
    ),
    "relinked": ("recuperado a propósito", "brought back on purpose"),
    "forgotten": ("olvidado a petición", "forgotten on request"),
}


def _when(value: object, tz: tzinfo) -> str:
    moment = value if isinstance(value, datetime) else None
    if moment is None and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value[:40]
    return moment.astimezone(tz).strftime("%d/%m/%Y %H:%M") if moment else ""


def write_customer_pages(
    output_dir: Path,
    codes: Iterable[int],
    source: HistorySource,
    *,
    env: jinja2.Environment,
    write: Callable[[Path, str], None],
    tz: tzinfo,
    page_name: str,
) -> dict[str, str]:
    """Write ``customers/<code>.html`` for each code with history; return code -> relative href.

    The folder is rebuilt each time: a customer no longer mentioned (or forgotten) has no page.
    """
    folder = Path(output_dir) / CUSTOMER_DIR
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700, parents=True)  # customer data: its owner only, names included
    histories = source({int(code) for code in codes})
    template = env.get_template("customer.html.j2")
    links: dict[str, str] = {}
    for code, raw_steps in sorted(histories.items()):
        if not raw_steps:
            continue
        steps = []
        for raw in raw_steps:
            reason = str(raw.get("reason", ""))
            es, en = REASON_TEXT.get(reason, (reason, reason))
            detail = raw.get("detail") or {}
            steps.append(
                {
                    "when": _when(raw.get("at"), tz),
                    "run_id": raw.get("run_id"),
                    "side": raw.get("side"),
                    "field": raw.get("field"),
                    "before": raw.get("before"),
                    "after": raw.get("after"),
                    "reason_code": reason if reason in REASON_TEXT else "other",
                    "why_es": es,
                    "why_en": en,
                    "detail": ", ".join(f"{k}={v}" for k, v in sorted(dict(detail).items())),
                }
            )
        name = f"{int(code)}.html"
        write(folder / name, template.render(code=int(code), steps=steps, page_name=page_name))
        links[str(int(code))] = f"{CUSTOMER_DIR}/{name}"
    return links
