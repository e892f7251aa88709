"""F_CLI rows to ``clients`` records, and their fingerprints. No singer_sdk here.

The stream (``streams.py``) and the change probe (``probe.py``) both build records with this
module, so a fingerprint kept in state by one is comparable with the other's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from factusol_api import F_CLI_COLUMNS, ColumnSpec, FactusolClient, FactusolCredentials

logger = logging.getLogger(__name__)

# Access stores "no date" as its day zero (1899-12-30) and time-only values on 1900-01-01
# (reference §4.1); neither is a real calendar date for a client record. (INFERRED)
EARLIEST_REAL_DATE = dt.date(1900, 1, 2)

# (field, F_CLI column, description): the `clients` contract of docs/architecture.md.
CLIENT_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("code", "CODCLI", "Client code (CODCLI), the primary key."),
    ("fiscal_name", "NOFCLI", "Fiscal name (NOFCLI)."),
    ("trade_name", "NOCCLI", "Trade name (NOCCLI)."),
    ("nif", "NIFCLI", "NIF/CIF as stored (NIFCLI); not unique."),
    ("address", "DOMCLI", "Street address (DOMCLI)."),
    ("city", "POBCLI", "Town (POBCLI)."),
    ("postal_code", "CPOCLI", "Postal code as text (CPOCLI)."),
    ("province", "PROCLI", "Province, free text (PROCLI)."),
    ("country_code", "PAICLI", 'Country as stored (PAICLI): ISO numeric like "724", or a name.'),
    ("phone", "TELCLI", "Phone (TELCLI)."),
    ("mobile", "MOVCLI", "Mobile phone (MOVCLI)."),
    ("fax", "FAXCLI", "Fax (FAXCLI)."),
    ("email", "EMACLI", "E-mail (EMACLI)."),
    ("web", "WEBCLI", "Web site (WEBCLI)."),
    ("contact_person", "PCOCLI", "Contact person (PCOCLI)."),
    ("notes", "OBSCLI", "Observations (OBSCLI)."),
    (
        "status",
        "ESTCLI",
        "Status (ESTCLI): 0 none, 1 regular, 2 occasional, 3 inactive, 4 prospect.",
    ),
    ("created", "FALCLI", "Creation date (FALCLI) with the configured zone's offset, or null."),
    (
        "modified",
        "FUMCLI",
        "Last modification (FUMCLI) with the configured zone's offset, or null.",
    ),
)
MAPPED_COLUMNS = frozenset(column for _, column, _ in CLIENT_FIELDS)

# A day-first date as a Spanish office writes it (DD/MM/YYYY[ HH:MM[:SS]]): tolerated on read
# because the dialect's date rendering is not confirmed (reference §12).
_DMY = re.compile(
    r"(?P<d>\d{1,2})/(?P<m>\d{1,2})/(?P<y>\d{4})"
    r"(?:[ T](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.\d+)?)?)?"
)


def zone(name: str | None) -> ZoneInfo:
    """The configured IANA zone of FactuSOL's naive dates (default Europe/Madrid)."""
    try:
        return ZoneInfo(str(name or "Europe/Madrid"))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        msg = f"timezone {name!r} is not an IANA time zone name"
        raise ValueError(msg) from exc


def make_client(config: Mapping[str, Any], tz: ZoneInfo) -> FactusolClient:
    """The API client of the tap's settings (shared by the stream and the probe)."""
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
        timezone=tz.key,
    )


def parse_naive(value: Any, tz: ZoneInfo) -> dt.datetime | None:
    """A FactuSOL date as a naive local date-time, None when empty; ValueError when unreadable.

    Accepted: ``2026-07-08T00:00:00`` (the confirmed form), a space instead of ``T``, a bare
    ``2026-07-08``, fractional seconds, an offset (converted to ``tz``), and the day-first
    ``08/07/2026[ 09:15[:00]]``.
    Access's day zero and time-only base date are None.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        text = str(value).strip()
        match = _DMY.fullmatch(text)
        if match:
            parsed = dt.datetime(
                int(match["y"]),
                int(match["m"]),
                int(match["d"]),
                int(match["H"] or 0),
                int(match["M"] or 0),
                int(match["S"] or 0),
            )
        else:
            parsed = dt.datetime.fromisoformat(text.replace(" ", "T", 1))
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(tz).replace(tzinfo=None)
    if parsed.date() < EARLIEST_REAL_DATE:
        return None
    return parsed


class RecordBuilder:
    """Convert F_CLI rows to ``clients`` records in the configured zone."""

    def __init__(
        self, tz: ZoneInfo, *, include_all: bool = False, log: logging.Logger | None = None
    ) -> None:
        self.tz = tz
        self.include_all = include_all
        self.log = log or logger

    def parse_naive(self, value: Any, *, column: str = "", code: Any = None) -> dt.datetime | None:
        """:func:`parse_naive`, logging an unreadable value (column and code only) as None."""
        try:
            return parse_naive(value, self.tz)
        except (ValueError, OverflowError):
            self.log.warning("Unreadable %s for client %s; emitted as null", column, code)
            return None

    def to_iso(self, value: Any, *, column: str = "", code: Any = None) -> str | None:
        """Convert a FactuSOL date to ISO 8601 with the configured zone's offset."""
        naive = self.parse_naive(value, column=column, code=code)
        if naive is None:
            return None
        return naive.replace(tzinfo=self.tz).isoformat()

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
            self.log.warning("Non-numeric %s for client %s; emitted as null", spec.name, code)
            return None

    def columns(self) -> list[str] | None:
        """The F_CLI columns a record needs; None means every column (``*``)."""
        if self.include_all:
            return None
        return [column for _, column, _ in CLIENT_FIELDS]

    def row_to_record(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Map one F_CLI row to a ``clients`` record (fields of docs/architecture.md)."""
        code = self.convert(F_CLI_COLUMNS["CODCLI"], row.get("CODCLI"))
        record = {
            field: self.convert(F_CLI_COLUMNS[column], row.get(column), code=code)
            for field, column, _ in CLIENT_FIELDS
        }
        if self.include_all:
            for name, spec in F_CLI_COLUMNS.items():
                if name not in MAPPED_COLUMNS:
                    record[name.lower()] = self.convert(spec, row.get(name), code=code)
        return record


def fingerprint(record: Mapping[str, Any]) -> str:
    """A short content hash of an emitted record (what state keeps for the boundary day)."""
    text = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
