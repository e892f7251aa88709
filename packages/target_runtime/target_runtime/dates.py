"""FactuSOL's dates, read one way in both targets.

FactuSOL stores FUMCLI (and FALCLI) as a naive wall-clock time of the company's zone. The value
may reach a target as a raw F_CLI row (``"2025-03-01 10:30:00"``), a datetime, or a ``clients``
record where tap-factusol attached the offset of *its* ``timezone`` setting. The wall-clock value
is what FactuSOL stored, so any offset is dropped and the time is read in the run's zone (the
company's: the ``timezone`` setting, else the Clientify account's).
"""

from __future__ import annotations

import datetime as dt


def factusol_time(value: object, tz: dt.tzinfo) -> tuple[dt.datetime | None, bool]:
    """The time as an aware datetime of ``tz``, and whether FactuSOL held only a date.

    ``(None, False)`` for an empty or unreadable value (read as unknown).
    """
    moment: dt.datetime
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time())
    elif isinstance(value, str) and value.strip():
        text = value.strip().replace("Z", "+00:00")
        if len(text) > 10 and text[10] == " ":
            text = text[:10] + "T" + text[11:]
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            return None, False
    else:
        return None, False
    wall = moment.replace(tzinfo=None)
    return wall.replace(tzinfo=tz), wall.time() == dt.time()
