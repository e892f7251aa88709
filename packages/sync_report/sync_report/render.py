"""Render the report page: one self-contained HTML file, written atomically, mode 0600."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from .chart import SERIES, build_chart
from .customers import HistorySource, write_customer_pages
from .model import COUNTERS, JOBS, JobView, load_job

__all__ = ["DEFAULT_PAGE_NAME", "build_page_html", "mentioned_codes", "render_report_page"]

DEFAULT_PAGE_NAME = "report.html"

FIELD_LABELS: dict[str, tuple[str, str]] = {
    "factusol_id": ("Código FactuSOL (factusol_id)", "FactuSOL code"),
    "name": ("Nombre fiscal", "Name"),
    "trade_name": ("Nombre comercial", "Trade name"),
    "nif": ("NIF / CIF", "Tax id"),
    "email": ("E-mail", "E-mail"),
    "phone": ("Teléfono", "Phone"),
    "mobile": ("Móvil", "Mobile"),
    "address": ("Dirección", "Address"),
    "city": ("Población", "Town"),
    "postal_code": ("Código postal", "Postcode"),
    "province": ("Provincia", "Province"),
    "country": ("País", "Country"),
}

COUNTER_LABELS: dict[str, tuple[str, str]] = {
    "created": ("Creados", "Created"),
    "linked": ("Enlazados", "Linked"),
    "updated": ("Actualizados", "Updated"),
    "unchanged": ("Sin cambios", "Unchanged"),
    "rejected": ("Rechazados", "Rejected"),
    "conflicts": ("Conflictos", "Conflicts"),
}


def _environment() -> jinja2.Environment:
    # autoescape=True, not select_autoescape(): that one skips `.j2` files, and every value
    # here is customer data. StrictUndefined: a typo in the template fails the tests.
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("sync_report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = _num
    env.globals.update(
        FIELD_LABELS=FIELD_LABELS,
        COUNTER_LABELS=COUNTER_LABELS,
        COUNTERS=COUNTERS,
        SERIES=SERIES,
    )
    return env


def _num(value: object) -> str:
    """An integer with Spanish thousands separators (10.000)."""
    return f"{value:,}".replace(",", ".") if isinstance(value, int) else str(value)


def build_page_html(
    jobs: list[JobView],
    *,
    generated_at: datetime,
    output_dir: Path,
    max_items: int,
    customer_links: Mapping[str, str] | None = None,
) -> str:
    """The page's HTML for already loaded jobs (``customer_links``: code -> history page)."""
    template = _environment().get_template("report.html.j2")
    charts = {job.spec.target: build_chart(job.history) for job in jobs}
    return template.render(
        jobs=jobs,
        charts=charts,
        generated_at=generated_at.strftime("%d/%m/%Y %H:%M"),
        output_dir=str(output_dir),
        max_items=max_items,
        customer_links=dict(customer_links or {}),
    )


def mentioned_codes(jobs: list[JobView]) -> set[int]:
    """The FactuSOL client codes a page names: the key of the FactuSOL -> Clientify job's
    entries, the target id of the other job's."""
    codes: set[int] = set()
    for job in jobs:
        by_key = job.spec.target == JOBS[0].target
        items: list[Any] = [*job.changes, *job.creates, *job.conflicts, *job.kept]
        if by_key:
            items += job.rejects  # a reject of the other job names a contact, not a client
        for item in items:
            value = item.key if by_key else item.target_id
            if value and str(value).isdigit():
                codes.add(int(value))
    return codes


def render_report_page(
    output_dir: Path,
    *,
    out: Path | None = None,
    history_limit: int = 30,
    max_items: int = 200,
    timezone: str = "Europe/Madrid",
    history: HistorySource | None = None,
) -> Path:
    """Write the report page for the runs whose files are under ``output_dir``; return its path.

    ``out`` defaults to ``output_dir/report.html``. Each section lists at most ``max_items``
    entries (and says how many more the files hold); the chart covers the last
    ``history_limit`` runs. Times are shown in ``timezone``. With ``history`` (the sync
    ledger's), each FactuSOL client the page mentions links to its own history page.
    """
    if history_limit < 1:
        raise ValueError("history_limit must be at least 1")
    if max_items < 1:
        raise ValueError("max_items must be at least 1")
    output_dir = Path(output_dir)
    tz = ZoneInfo(timezone)
    jobs = [
        load_job(output_dir, spec, history_limit=history_limit, max_items=max_items, tz=tz)
        for spec in JOBS
    ]
    target = Path(out) if out is not None else output_dir / DEFAULT_PAGE_NAME
    links: dict[str, str] = {}
    if history is not None:
        links = write_customer_pages(
            target.parent,
            mentioned_codes(jobs),
            history,
            env=_environment(),
            write=_write_private,
            tz=tz,
            page_name=target.name,
        )
    html = build_page_html(
        jobs,
        generated_at=datetime.now(UTC).astimezone(tz),
        output_dir=output_dir,
        max_items=max_items,
        customer_links=links,
    )
    _write_private(target, html)
    return target


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with a file only its owner can read (customer data)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # errors="replace": a lone surrogate in customer data (valid JSON \ud800) is not UTF-8
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)  # mkstemp already does; explicit, whatever the platform
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
