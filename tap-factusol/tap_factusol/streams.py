"""Stream ``clients``: FactuSOL F_CLI, in full or modified mode."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any

from factusol_api import F_CLI_COLUMNS, ColumnSpec, sql_int
from singer_sdk import metrics
from singer_sdk import typing as th

from tap_factusol import detect
from tap_factusol.client import FactusolStream
from tap_factusol.records import CLIENT_FIELDS, MAPPED_COLUMNS, fingerprint

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

# Seconds since the epoch; a module attribute so tests can pin "now" without sleeping.
clock: Callable[[], float] = time.time

# Log progress every this many keyset pages.
PROGRESS_EVERY_PAGES = 10
# Changed clients fetched per CargaTabla call in modified mode.
FETCH_BATCH_SIZE = 200

# CLIENT_FIELDS (field, F_CLI column, description) is the `clients` contract of
# docs/architecture.md; it lives in records.py, which the change probe imports without the SDK.
_MAPPED_COLUMNS = MAPPED_COLUMNS


def _json_type(spec: ColumnSpec) -> th.JSONTypeHelper[Any]:
    if spec.kind == "int":
        return th.IntegerType()
    if spec.kind == "money":
        return th.NumberType()
    if spec.kind == "datetime":
        return th.DateTimeType()
    return th.StringType()


def clients_schema(*, include_all_columns: bool = False) -> dict[str, Any]:
    """JSON schema of ``clients``; with ``include_all_columns`` every other F_CLI column too."""
    properties = [
        th.Property(
            field,
            _json_type(F_CLI_COLUMNS[column]),
            required=field == "code",
            description=description,
        )
        for field, column, description in CLIENT_FIELDS
    ]
    if include_all_columns:
        properties.extend(
            th.Property(name.lower(), _json_type(spec), description=f"{name}: {spec.description}")
            for name, spec in F_CLI_COLUMNS.items()
            if name not in _MAPPED_COLUMNS
        )
    return th.PropertiesList(*properties).to_dict()


class ClientsStream(FactusolStream):
    """FactuSOL clients (table F_CLI), one record per client.

    ``sync_mode: full`` emits every client in CODCLI order. ``sync_mode: modified`` emits the
    clients whose FUMCLI day is on or after the start day, in ascending (modified, code) order.
    """

    name = "clients"
    primary_keys = ("code",)
    replication_key = "modified"
    # Full mode emits in CODCLI order, and FUMCLI is a day stamp: keep the SDK's unsorted handling
    # (bookmark promoted at the end and capped at the signpost).
    is_sorted = False

    def __init__(self, tap: Tap) -> None:
        """Build the schema from ``include_all_columns``."""
        include_all = bool(tap.config.get("include_all_columns", False))
        super().__init__(tap, schema=clients_schema(include_all_columns=include_all))
        self._include_all = include_all

    @cached_property
    def run_started_at(self) -> dt.datetime:
        """The run's start in the configured zone: the bookmark never moves past it."""
        return dt.datetime.fromtimestamp(int(clock()), tz=self.tz)

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> str | None:
        """Cap bookmarks at the run's start, written in the records' zone and format.

        The SDK compares bookmark and signpost as strings, so both must share one format.
        """
        return self.run_started_at.isoformat()

    @override
    def compare_start_date(self, value: str, start_date_value: str) -> str:
        """Start from the bookmark whenever there is one.

        The SDK default takes max(bookmark, start_date); with a start_date evaluated relative to
        "now" that silently skips every change older than the window when runs are missed.
        ``start_date`` only seeds the first run.
        """
        if start_date_value and self._parse_point(start_date_value) > self._parse_point(value):
            self.logger.info(
                "Bookmark %s is older than start_date %s; starting from the bookmark",
                value,
                start_date_value,
            )
        return value

    # ------------------------------------------------------------------ records

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Yield client records for the configured ``sync_mode``."""
        self.logger.info(
            "Reading F_CLI from FactuSOL ejercicio %s (%s mode)",
            self.client.ejercicio,
            self.config.get("sync_mode", "modified"),
        )
        if self.config.get("sync_mode", "modified") == "full":
            yield from self._full()
            return
        yield from self._modified(context)
        # The scan saw every client changed up to the run's start (at day granularity), so the
        # next run may start there even if nothing changed: a first run without changes still
        # leaves a bookmark, and a later gap of days loses nothing.
        if self.replication_method == "INCREMENTAL" and self.selected and self.replication_key:
            self.state_manager.increment_state(
                {self.replication_key: self.run_started_at.isoformat()},
                context=context,
                replication_key=self.replication_key,
            )

    def _full(self) -> Iterator[dict[str, Any]]:
        pages = scanned = 0
        for pages, page in enumerate(self.client.iter_client_pages(page_size=self._page_size), 1):
            for row in page:
                scanned += 1
                yield self.row_to_record(row)
            if pages % PROGRESS_EVERY_PAGES == 0:
                self.logger.info("clients: %d pages, %d rows scanned and emitted", pages, scanned)
        self.logger.info("clients: full scan done, %d pages, %d rows emitted", pages, scanned)

    def _modified(self, context: Context | None) -> Iterator[dict[str, Any]]:
        start_day = self.modified_start(context).astimezone(self.tz).date()
        entry = self.get_context_state(context)
        known = detect.fingerprints_in(entry)
        self.logger.info("clients: emitting clients with FUMCLI on or after %s", start_day)
        detection = detect.find_recent(self.client, self.builder, start_day, known=len(known))
        if detection.fallback is None:
            rows = detection.rows
            self.logger.info(
                "clients: ordered read, %d call(s), %d rows on or after %s",
                detection.reads,
                len(rows),
                start_day,
            )
        else:
            self._count_fallback(entry, detection.fallback)
            rows = self._scan_changed(start_day)
        # Emit in ascending (modified, code) order; skip a row whose record was emitted before
        # unchanged (its fingerprint is in state), keep the fingerprints of the new boundary day.
        boundary = self.run_started_at.date()
        pending = []
        for row in rows:
            record = self.row_to_record(row)
            modified = self.parse_naive(row.get("FUMCLI"), column="FUMCLI", code=record["code"])
            if modified is not None:
                pending.append((modified, record["code"], record))
        pending.sort(key=lambda item: (item[0], item[1]))
        fingerprints: dict[str, str] = {}
        emitted = unchanged = 0
        for modified, code, record in pending:
            digest = fingerprint(record)
            if modified.date() >= boundary:
                fingerprints[str(code)] = digest
            if known.get(str(code)) == digest:
                unchanged += 1
                continue
            emitted += 1
            yield record
        entry[detect.FINGERPRINTS_KEY] = fingerprints
        entry.setdefault(detect.DETECTION_KEY, {})["method"] = (
            "ordered" if detection.fallback is None else "scan"
        )
        self.logger.info(
            "clients: %d changed clients emitted, %d unchanged since the last run skipped",
            emitted,
            unchanged,
        )

    def _count_fallback(self, entry: dict[str, Any], reason: str) -> None:
        """Log and count a fall back to the light scan (state and a Singer METRIC line)."""
        self.logger.warning(
            "clients: change detection falls back to a light scan of F_CLI: %s", reason
        )
        counters = entry.setdefault(detect.DETECTION_KEY, {})
        counters["fallbacks"] = int(counters.get("fallbacks", 0)) + 1
        counters["last_fallback_reason"] = reason
        point = {
            "type": "counter",
            "metric": "change_detection_fallback",
            "value": 1,
            "tags": {"stream": self.name, "reason": reason},
        }
        metrics.get_metrics_logger().info("METRIC: %s", json.dumps(point, separators=(",", ":")))

    def _scan_changed(self, start_day: dt.date) -> list[dict[str, Any]]:
        """Full rows of every client with FUMCLI on or after ``start_day`` (light keyset scan)."""
        # Light keyset scan of (CODCLI, FUMCLI); the date test runs here, in code, because the
        # SQL date-literal syntax of the API is unknown (reference §8.4 item 6, §9).
        changed: list[tuple[dt.datetime, int]] = []
        scanned = 0
        pages = self.client.iter_client_pages(page_size=self._page_size, columns=["FUMCLI"])
        for page_number, page in enumerate(pages, start=1):
            for row in page:
                scanned += 1
                code = int(sql_int(row["CODCLI"]))
                modified = self.parse_naive(row.get("FUMCLI"), column="FUMCLI", code=code)
                # FUMCLI may be a bare date (00:00:00): compare days and re-read the boundary day.
                if modified is not None and modified.date() >= start_day:
                    changed.append((modified, code))
            if page_number % PROGRESS_EVERY_PAGES == 0:
                self.logger.info(
                    "clients: %d pages, %d rows scanned, %d changed",
                    page_number,
                    scanned,
                    len(changed),
                )
        changed.sort()
        self.logger.info(
            "clients: scan done, %d rows scanned, %d changed since %s",
            scanned,
            len(changed),
            start_day,
        )
        rows: list[dict[str, Any]] = []
        for start in range(0, len(changed), FETCH_BATCH_SIZE):
            batch = changed[start : start + FETCH_BATCH_SIZE]
            by_code = {
                int(sql_int(row["CODCLI"])): row
                for row in self.client.get_clients(code for _, code in batch)
            }
            for _, code in batch:
                full_row = by_code.get(code)
                if full_row is None:
                    self.logger.info("clients: client %s disappeared during the run", code)
                    continue
                rows.append(full_row)
        return rows

    def modified_start(self, context: Context | None) -> dt.datetime:
        """Start of modified mode: the bookmark, else ``start_date``, else ``lookback_hours``."""
        value = self.get_starting_replication_key_value(context)
        if value:
            return self._parse_point(str(value))
        hours = int(self.config.get("lookback_hours", 24))
        if hours < 0:
            msg = "lookback_hours must be >= 0"
            raise ValueError(msg)
        return self.run_started_at - dt.timedelta(hours=hours)

    def _parse_point(self, value: str) -> dt.datetime:
        """Parse a bookmark or ``start_date``; naive values are in the configured zone."""
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            msg = (
                f"start_date/bookmark {value!r} is not an absolute ISO 8601 date "
                "(relative dates such as '1 day ago' are not supported)"
            )
            raise ValueError(msg) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=self.tz)

    @property
    def _page_size(self) -> int:
        size = int(self.config.get("page_size", 500))
        if size < 1:
            msg = "page_size must be >= 1"
            raise ValueError(msg)
        return size

    def row_to_record(self, row: dict[str, Any]) -> dict[str, Any]:
        """Map one F_CLI row to a ``clients`` record (fields of docs/architecture.md)."""
        return self.builder.row_to_record(row)
