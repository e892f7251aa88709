"""Which `modified` window a run reads, from the settings and the stream's state. No singer_sdk.

Shared by the stream's modified mode (``streams.py``) and the change probe (``probe.py``), so
both read the bookmark the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

STREAM = "contacts"
REPLICATION_KEY = "modified"

#: Later modified runs start this long before the bookmark: a record saved while the previous
#: run was paging, or stamped by a server clock slightly behind ours, is read again, not lost.
BOOKMARK_OVERLAP = timedelta(minutes=5)


def parse_config_datetime(value: str, setting: str) -> datetime:
    """An absolute ISO 8601 date-time (naive: UTC), or ValueError naming ``setting``."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"{setting} must be an absolute ISO 8601 date-time, got {value!r} "
            "(relative dates like '1 day ago' silently skip changes; use lookback_hours)"
        ) from None
    # Naive values are UTC, as the SDK and Meltano treat them.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def stream_state(state: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``contacts`` entry of a Singer state, also as ``meltano state get`` prints it."""
    if not state:
        return {}
    if isinstance(state.get("singer_state"), Mapping):
        state = state["singer_state"]
    bookmarks = state.get("bookmarks") or {}
    entry = bookmarks.get(STREAM) if isinstance(bookmarks, Mapping) else None
    return dict(entry) if isinstance(entry, Mapping) else {}


def bookmark(entry: Mapping[str, Any]) -> datetime | None:
    """The bookmark of a stream state entry, None when it has none (or for another key)."""
    value = entry.get("replication_key_value")
    if value and entry.get("replication_key") == REPLICATION_KEY:
        return parse_config_datetime(str(value), "the bookmark")
    return None


def window_start(
    config: Mapping[str, Any], entry: Mapping[str, Any], now: datetime
) -> datetime | None:
    """Earliest `modified` to read, or None in full mode.

    Bookmark minus BOOKMARK_OVERLAP when there is one (start_date is then ignored, so a
    relative start_date cannot hide a gap between runs); else start_date; else the last
    lookback_hours before ``now``.
    """
    if config.get("sync_mode", "modified") == "full":
        return None
    mark = bookmark(entry)
    if mark is not None:
        return mark - BOOKMARK_OVERLAP
    if start_date := config.get("start_date"):
        return parse_config_datetime(str(start_date), "start_date")
    hours = int(config.get("lookback_hours", 24))
    return now - timedelta(hours=hours)
