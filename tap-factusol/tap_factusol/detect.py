"""Find the clients changed since a day without scanning F_CLI. No singer_sdk here.

Used by the stream's modified mode and by the change probe (``probe.py``), so both read the same
rows and compare the same fingerprints.

FUMCLI is a day stamp, so "changed since the bookmark" means "FUMCLI on or after the bookmark's
day" and that day's rows come back on every poll of it. One ``LanzarConsulta`` reads the newest
rows (``ORDER BY FUMCLI DESC, CODCLI DESC``, no date literal), growing ``TOP`` until a row older
than the day shows up; state keeps a fingerprint of each row emitted on or after the boundary
day, and a row whose fingerprint is unchanged is not emitted again.

The engine's date ordering is not confirmed (reference §9, §12), so every answer is checked: days
must never increase down the list, and rows with the same FUMCLI must come in descending CODCLI.
Any doubt (an order broken, an unreadable FUMCLI, an empty answer, a window too large to read this
way) returns a fallback reason instead of rows, and the caller runs the light keyset scan.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from factusol_api import FactusolClient, sql_int

from tap_factusol.records import RecordBuilder, fingerprint, parse_naive

STREAM = "clients"
# Stream state keys (next to the SDK's replication_key / replication_key_value).
FINGERPRINTS_KEY = "boundary_fingerprints"
DETECTION_KEY = "change_detection"

# Rows read past the boundary rows already known: enough older rows to prove the order.
ORDER_PROOF_ROWS = 25
# TOP grows by this factor while the cut is still inside the window.
GROWTH = 4
# A window with more rows than this is read by the light keyset scan instead.
MAX_ORDERED_ROWS = 5000


@dataclasses.dataclass
class Detection:
    """What one ordered read found: the rows on or after ``start_day``, or why it gave up."""

    rows: list[dict[str, Any]]
    reads: int
    fallback: str | None = None


def stream_state(state: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``clients`` bookmark of a Singer state, also as ``meltano state get`` prints it."""
    if not state:
        return {}
    if "singer_state" in state and isinstance(state["singer_state"], Mapping):
        state = state["singer_state"]
    bookmarks = state.get("bookmarks") or {}
    entry = bookmarks.get(STREAM) if isinstance(bookmarks, Mapping) else None
    return dict(entry) if isinstance(entry, Mapping) else {}


def fingerprints_in(entry: Mapping[str, Any]) -> dict[str, str]:
    """The boundary-day fingerprints of a stream state entry (code as text -> hash)."""
    value = entry.get(FINGERPRINTS_KEY)
    if not isinstance(value, Mapping):
        return {}
    return {str(code): str(digest) for code, digest in value.items()}


def start_day(bookmark: str, tz: dt.tzinfo) -> dt.date:
    """The FactuSOL day of a bookmark (ISO 8601; naive means the configured zone)."""
    point = dt.datetime.fromisoformat(bookmark.strip().replace("Z", "+00:00"))
    if point.tzinfo is None:
        point = point.replace(tzinfo=tz)
    return point.astimezone(tz).date()


def _order_problem(rows: list[dict[str, Any]], builder: RecordBuilder) -> str | None:
    """Why ``rows`` are not in (FUMCLI day, CODCLI) descending order, or None."""
    previous: tuple[dt.date, Any, int] | None = None
    for row in rows:
        raw = row.get("FUMCLI")
        if raw is None:
            continue  # NULLs are filtered in SQL; one that slips through is never selected
        try:
            code = int(sql_int(row.get("CODCLI")))
            parsed = parse_naive(raw, builder.tz)
        except (ValueError, OverflowError):
            return "unreadable CODCLI or FUMCLI in the ordered read"
        day = parsed.date() if parsed is not None else dt.date.min
        if previous is not None:
            last_day, last_raw, last_code = previous
            if day > last_day:
                return f"FUMCLI days out of order ({last_day} then {day})"
            if raw == last_raw and code >= last_code:
                return "CODCLI out of order within one FUMCLI"
        previous = (day, raw, code)
    return None


def row_day(row: Mapping[str, Any], builder: RecordBuilder) -> dt.date | None:
    """The FactuSOL day of a row's FUMCLI, None when empty or unreadable."""
    parsed = builder.parse_naive(row.get("FUMCLI"), column="FUMCLI", code=row.get("CODCLI"))
    return parsed.date() if parsed is not None else None


def find_recent(
    client: FactusolClient,
    builder: RecordBuilder,
    since: dt.date,
    *,
    known: int = 0,
    max_rows: int | None = None,
) -> Detection:
    """Read the rows whose FUMCLI day is on or after ``since``, newest first.

    ``known`` is the number of boundary rows state already holds: the first read asks for those
    plus ``ORDER_PROOF_ROWS``, so an idle poll is one call. ``max_rows`` defaults to
    ``MAX_ORDERED_ROWS``.
    """
    max_rows = MAX_ORDERED_ROWS if max_rows is None else max_rows
    top = min(max(1, known) + ORDER_PROOF_ROWS, max_rows)
    reads = 0
    while True:
        rows = client.newest_clients(top, columns=builder.columns())
        reads += 1
        if not rows:
            # An empty table, FUMCLI never set, or a column this database lacks (which also
            # reads as null, reference §5.1): the keyset scan tells these apart.
            return Detection([], reads, "the ordered read returned no rows")
        problem = _order_problem(rows, builder)
        if problem:
            return Detection([], reads, problem)
        dated = [(row_day(row, builder), row) for row in rows if row.get("FUMCLI") is not None]
        if len(rows) < top or (dated and (dated[-1][0] or dt.date.min) < since):
            recent = [row for day, row in dated if day is not None and day >= since]
            return Detection(recent, reads)
        if top >= max_rows:
            return Detection([], reads, f"more than {max_rows} rows changed since {since}")
        top = min(top * GROWTH, max_rows)


def changed_rows(
    detection: Detection, builder: RecordBuilder, known: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The rows of ``detection`` whose record differs from the fingerprint in ``known``."""
    changed = []
    for row in detection.rows:
        record = builder.row_to_record(row)
        if known.get(str(record["code"])) != fingerprint(record):
            changed.append(row)
    return changed
