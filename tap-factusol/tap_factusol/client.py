"""Base stream for FactuSOL: the shared API client and value conversion.

The HTTP work is done by ``factusol_api`` (shared with target-factusol), not by ``RESTStream``:
FactuSOL is a POST SQL gateway with keyset pages built from SQL, not REST resources with paging
tokens (see README). Value conversion lives in ``records.py`` (no singer_sdk), shared with the
change probe.
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from factusol_api import ColumnSpec, FactusolClient
from singer_sdk import Stream

from tap_factusol.records import RecordBuilder, make_client, zone

if TYPE_CHECKING:
    from singer_sdk import Tap


class FactusolStream(Stream):
    """A stream read from FactuSOL through :class:`factusol_api.FactusolClient`."""

    def __init__(self, tap: Tap, schema: dict[str, Any] | None = None) -> None:
        """Initialize the stream and check the configured time zone early."""
        super().__init__(tap, schema=schema)
        self._tz = zone(self.config.get("timezone"))
        self._builder = RecordBuilder(
            self._tz,
            include_all=bool(self.config.get("include_all_columns", False)),
            log=self.logger,
        )

    @property
    def tz(self) -> ZoneInfo:
        """Time zone of FactuSOL's naive dates."""
        return self._tz

    @property
    def builder(self) -> RecordBuilder:
        """Row-to-record conversion (shared with the change probe)."""
        return self._builder

    @cached_property
    def client(self) -> FactusolClient:
        """The API client (one login, one HTTP session per stream)."""
        return make_client(self.config, self._tz)

    # ------------------------------------------------------------------ value conversion

    def parse_naive(self, value: Any, *, column: str = "", code: Any = None) -> dt.datetime | None:
        """Parse a FactuSOL date (``"2026-07-08T00:00:00"``, naive local time) or return None."""
        return self._builder.parse_naive(value, column=column, code=code)

    def to_iso(self, value: Any, *, column: str = "", code: Any = None) -> str | None:
        """Convert a FactuSOL date to ISO 8601 with the configured zone's offset."""
        return self._builder.to_iso(value, column=column, code=code)

    def convert(self, spec: ColumnSpec, value: Any, *, code: Any = None) -> Any:
        """Convert one column value to the JSON type its schema declares."""
        return self._builder.convert(spec, value, code=code)
