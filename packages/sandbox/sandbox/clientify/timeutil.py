"""Datetimes as Clientify writes them (§3: Europe/Madrid offset with microseconds) and the date
forms its list filters accept (§2)."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

MADRID = ZoneInfo("Europe/Madrid")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)
_SLASH_DATE = re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})")


def to_us(value: dt.datetime) -> int:
    """Aware datetime -> integer microseconds since the epoch (exact, no float)."""
    return (value - EPOCH) // _US


def from_us(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=us)


def render(us: int | None) -> str | None:
    """`2025-11-18T08:36:12.997736+01:00`: Madrid offset, always with microseconds (§3)."""
    if us is None:
        return None
    return from_us(us).astimezone(MADRID).isoformat(timespec="microseconds")


def parse_filter_value(raw: str, naive_tz: str = "Europe/Madrid") -> dt.datetime:
    """Parse a `created[gte]`-style value; ValueError when unparseable.

    Forms seen live (§2): `2023-05-08`, `2024/01/01`, `2025-12-09T14:50`, `...T00:00:00Z`,
    `...T00:00:00.000Z`, explicit offsets. Naive values are read in `naive_tz` (INFERRED Madrid).
    A `+` that was not URL-encoded arrives as a space and is rejected like the real form parser.
    """
    text = raw.strip()
    if not text:
        raise ValueError(raw)
    match = _SLASH_DATE.match(text)
    if match:
        y, m, d = match.groups()
        text = f"{int(y):04d}-{int(m):02d}-{int(d):02d}" + text[match.end() :]
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(naive_tz))
    return value
