"""FUMCLI read one way: a wall-clock time of the company's zone, any offset dropped."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from target_runtime import factusol_time

MADRID = ZoneInfo("Europe/Madrid")


@pytest.mark.parametrize(
    ("value", "wall", "date_only"),
    [
        ("2025-03-01 10:30:00", dt.datetime(2025, 3, 1, 10, 30), False),  # a raw F_CLI row
        ("2025-03-01T10:30:00+00:00", dt.datetime(2025, 3, 1, 10, 30), False),  # tap's offset
        ("2025-03-01T10:30:00Z", dt.datetime(2025, 3, 1, 10, 30), False),
        ("2025-03-01", dt.datetime(2025, 3, 1), True),
        (dt.date(2025, 3, 1), dt.datetime(2025, 3, 1), True),
        (dt.datetime(2025, 3, 1, 9, tzinfo=dt.UTC), dt.datetime(2025, 3, 1, 9), False),
    ],
)
def test_the_wall_clock_value_is_read_in_the_company_zone(
    value: object, wall: dt.datetime, date_only: bool
) -> None:
    assert factusol_time(value, MADRID) == (wall.replace(tzinfo=MADRID), date_only)


@pytest.mark.parametrize("value", [None, "", "   ", "0000-00-00", "2024-02-30", "ayer", 20250301])
def test_an_unreadable_value_is_unknown(value: object) -> None:
    assert factusol_time(value, MADRID) == (None, False)
