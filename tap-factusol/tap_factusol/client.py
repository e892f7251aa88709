"""Base stream for FactuSOL: the shared API client and value conversion.

The HTTP work is done by ``factusol_api`` (shared with target-factusol), not by ``RESTStream``:
FactuSOL is a POST SQL gateway with keyset pages built from SQL, not REST resources with paging
tokens (see README).
"""

from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from factusol_api import ColumnSpec, FactusolClient, FactusolCredentials
from singer_sdk import Stream

if sys.version_info >= (3, 12):
    pass
else:
    pass

if TYPE_CHECKING:
    from singer_sdk import Tap

# Access stores "no date" as its day zero (1899-12-30) and time-only values on 1900-01-01
# (reference §4.1); neither is a real calendar date for a client record. (INFERRED)
_EARLIEST_REAL_DATE = dt.date(1900, 1, 2)


class FactusolStream(Stream):
    """A stream read from FactuSOL through :class:`factusol_api.FactusolClient`."""

    def __init__(self, tap: Tap, schema: dict[str, Any] | None = None) -> None:
        """Initialize the stream and check the configured time zone early."""
        super().__init__(tap, schema=schema)
        try:
            self._tz = ZoneInfo(str(self.config.get("timezone") or "Europe/Madrid"))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            msg = f"timezone {self.config.get('timezone')!r} is not an IANA time zone name"
            raise ValueError(msg) from exc

    @property
    def tz(self) -> ZoneInfo:
        """Time zone of FactuSOL's naive dates."""
        return self._tz

    @cached_property
    def client(self) -> FactusolClient:
        """The API client (one login, one HTTP session per stream)."""
        config = self.config
        credentials = FactusolCredentials(
            codigo_fabricante=str(config["codigo_fabricante"]),
            codigo_cliente=str(config["codigo_cliente"]),
            base_datos=str(config["base_datos"]),
            password=str(config["password"]),
        )
        return FactusolClient(
            credentials,
            api_url=str(config.get("api_url") or "https://api.sdelsol.com"),
            ejercicio=str(config.get("ejercicio") or "auto"),
            timeout=float(config.get("timeout") or 30),
            max_retries=int(config.get("max_retries", 5)),
            timezone=self._tz.key,
        )

    # ------------------------------------------------------------------ value conversion

    def parse_naive(self, value: Any, *, column: str = "", code: Any = None) -> dt.datetime | None:
        """Parse a FactuSOL date (``"2026-07-08T00:00:00"``, naive local time) or return None."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, dt.datetime):
            parsed = value
        else:
            text = str(value).strip().replace(" ", "T", 1)
            try:
                parsed = dt.datetime.fromisoformat(text)
            except ValueError:
                self.logger.warning("Unreadable %s for client %s; emitted as null", column, code)
                return None
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(self._tz).replace(tzinfo=None)
        if parsed.date() < _EARLIEST_REAL_DATE:
            return None
        return parsed

    def to_iso(self, value: Any, *, column: str = "", code: Any = None) -> str | None:
        """Convert a FactuSOL date to ISO 8601 with the configured zone's offset."""
        naive = self.parse_naive(value, column=column, code=code)
        if naive is None:
            return None
        return naive.replace(tzinfo=self._tz).isoformat()

    def convert(self, spec: ColumnSpec, value: Any, *, code: Any = None) -> Any:
        """Convert one column value to the JSON type its schema declares.

        JSON types may differ between installations for the same column ('5' and 5, reference
        §4.1), so numbers given as strings are accepted.
        """
        if spec.kind == "datetime":
            return self.to_iso(value, column=spec.name, code=code)
        if value is None:
            return None
        if spec.kind in ("text", "memo"):
            return value if isinstance(value, str) else str(value)
        if isinstance(value, str) and not value.strip():
            return None
        try:
            if spec.kind == "int":
                number = Decimal(str(value).strip())
                if number != number.to_integral_value():
                    raise InvalidOperation
                return int(number)
            return float(Decimal(str(value).strip()))
        except (InvalidOperation, ValueError):
            self.logger.warning("Non-numeric %s for client %s; emitted as null", spec.name, code)
            return None
