"""Datetime helpers: Clientify writes Europe/Madrid offsets, we compare and store in UTC."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

try:
    # Reference §2: naive date filters/values are (INFERRED) read in Europe/Madrid.
    API_NAIVE_TZ: tzinfo = ZoneInfo("Europe/Madrid")
except ZoneInfoNotFoundError:  # pragma: no cover - only without tz data
    API_NAIVE_TZ = UTC


def parse_api_datetime(value: object) -> datetime | None:
    """Parse a Clientify datetime (``2025-11-18T08:36:12.997736+01:00``, ``…Z``, naive).

    Returns an aware datetime, or None when the value is missing or unparseable.
    Naive values are taken as Europe/Madrid, the time zone the API writes in.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        text = value.strip().replace("/", "-")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=API_NAIVE_TZ)
    return parsed


def to_utc_iso(value: datetime) -> str:
    """ISO 8601 in UTC with microseconds and ``+00:00``: the same shape as the SDK's signpost,
    so string comparisons of bookmarks are chronological."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def format_filter_datetime(value: datetime, *, round_up: bool = False) -> str:
    """A filter value with an explicit UTC offset (``2025-11-18T07:36:12Z``).

    Whole seconds: lower bounds are truncated and upper bounds rounded up, so the server-side
    window is never narrower than asked; the client then checks the exact bound itself.
    """
    if value.tzinfo is None:
        raise ValueError("datetime filters must be timezone-aware (naive times are ambiguous)")
    utc = value.astimezone(UTC)
    if round_up and utc.microsecond:
        utc = utc.replace(microsecond=0) + timedelta(seconds=1)
    else:
        utc = utc.replace(microsecond=0)
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def retry_after_seconds(header: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None.

    ``now`` is the current Unix time, injected so tests need no real clock.
    """
    if header is None:
        return None
    text = header.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)
