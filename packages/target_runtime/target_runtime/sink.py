"""RuntimeSink: the Singer sink both targets share, with no override of a private SDK method.

The SDK's record path is: ``validator.validate(record)`` → its own date-time parsing →
``preprocess_record`` → its key-property check → ``process_record``. Left alone it stops the run
on one record (a schema failure, a date it cannot parse, a missing key) and logs the whole
record (personal data). Two public seams fix both:

* ``get_validator`` returns :class:`MarkingValidator`, which never raises: it notes the schema
  failure (rule and path only, never the value) and takes the date-like values out of the record
  before the SDK parses them, so the SDK has nothing to fail on;
* ``preprocess_record`` puts the raw dates back and writes the notes into the record under
  :data:`MARKS`, for the run (``SyncRun.admit``) to reject it with its reason, or to read an
  unreadable date as unknown with a warning.

This ordering is the one SDK behaviour the targets rely on; tests/test_sink.py fails when a new
SDK version changes it.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from time import monotonic
from typing import TYPE_CHECKING, Any

import jsonschema
from singer_sdk.sinks import BatchSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator  # the documented get_validator type
from typing_extensions import override

from target_runtime.errors import TargetStop

if TYPE_CHECKING:
    from singer_sdk import Target

    from target_runtime.run import SyncRun

# Keys the sink sets on a record and the run pops (never written anywhere).
INVALID = "__fcsync_invalid__"  # why the record is rejected
MISSING_KEYS = "__fcsync_missing_keys__"  # key properties it arrived without
BAD_DATES = "__fcsync_bad_dates__"  # date-like fields whose value does not parse
MARKS = (INVALID, MISSING_KEYS, BAD_DATES)


@dataclass
class _Note:
    problem: str | None = None
    dates: dict[str, Any] = field(default_factory=dict)
    bad_dates: list[str] = field(default_factory=list)


def _date_kind(prop: Mapping[str, Any]) -> str | None:
    options = [prop, *(p for p in prop.get("anyOf", []) if isinstance(p, Mapping))]
    for option in options:
        if option.get("format") in {"date-time", "date", "time"}:
            return str(option["format"])
    return None


def _parses(value: object, kind: str) -> bool:
    if not isinstance(value, str):
        return False
    text = value.strip().replace("Z", "+00:00")
    try:
        if kind == "date":
            dt.date.fromisoformat(text)
        elif kind == "time":
            dt.time.fromisoformat(text)
        else:
            dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


class MarkingValidator(BaseJSONSchemaValidator):
    """Validates without raising; keeps its findings for ``RuntimeSink.preprocess_record``."""

    def __init__(self, schema: dict[str, Any], stream: str) -> None:
        super().__init__(schema)
        cls = jsonschema.validators.validator_for(schema)
        # formats unchecked: dates are read by the targets, which treat a bad one as unknown
        self._validator = cls(schema, format_checker=jsonschema.FormatChecker(formats=()))
        self._stream = stream
        properties = schema.get("properties") or {}
        self._dates = {
            name: kind
            for name, prop in properties.items()
            if isinstance(prop, Mapping) and (kind := _date_kind(prop)) is not None
        }
        self._notes: dict[int, _Note] = {}
        self._lock = threading.Lock()

    @override
    def validate(self, record: dict[str, Any]) -> None:
        note = _Note()
        error = jsonschema.exceptions.best_match(self._validator.iter_errors(record))
        if error is not None:
            # jsonschema's message quotes the bad value: keep only the rule and the path
            note.problem = (
                f"record does not match the {self._stream} schema "
                f"({error.validator} at {error.json_path})"
            )
        for name, kind in self._dates.items():
            value = record.get(name)
            if value is None:
                continue
            note.dates[name] = record.pop(name)  # the SDK never sees (or fails on) it
            if not _parses(value, kind):
                note.bad_dates.append(name)
        with self._lock:
            self._notes[id(record)] = note

    def take(self, record: dict[str, Any]) -> _Note:
        with self._lock:
            return self._notes.pop(id(record), None) or _Note()


class RuntimeSink(BatchSink):
    """Batches one stream's records (deduplicated by key, the last one wins) for the run."""

    # Each batch reads what it needs in one call per system (F_CLI rows by code, ledger
    # entries): 1,000 records per batch keep those reads within one paged scan's count, so a
    # full run plus its census and markers stays within one scan of each system + 10.
    MAX_SIZE_DEFAULT = 1000

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: Sequence[str] | None,
    ) -> None:
        self._marker: MarkingValidator | None = None
        super().__init__(target, stream_name, schema, key_properties)
        self._owner = target  # the SDK keeps no reference; the run lives on the target
        self._batch: dict[Any, dict[str, Any]] = {}
        self._received_at: float | None = None

    @property
    def run(self) -> SyncRun:
        """The run shared by every sink of this target."""
        return self._owner.run  # type: ignore[attr-defined,no-any-return]

    @override
    def get_validator(self) -> BaseJSONSchemaValidator | None:
        self._marker = MarkingValidator(self.schema, self.stream_name)
        return self._marker

    @override
    def setup(self) -> None:
        super().setup()
        missing = [k for k in self.key_properties if k not in self.schema.get("properties", {})]
        if missing or not self.key_properties:
            raise TargetStop(
                f"stream '{self.stream_name}' has no {', '.join(missing) or 'key'} property: "
                f"{self.run.name} reads the `{self.run.stream}` stream (see its README for "
                "the contract)"
            )
        self.run.open_sinks += 1  # no API call: the run starts at its first record

    @override
    def preprocess_record(self, record: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        note = self._marker.take(record) if self._marker is not None else None
        if note is not None:
            record.update(note.dates)  # as received: a reject keeps the record as sent
            if note.problem:
                record[INVALID] = note.problem[:300]
            if note.bad_dates:
                record[BAD_DATES] = note.bad_dates
        # The SDK stops the run on a record without a key property, right after this hook:
        # let it through with the key set to None, marked so the run rejects it.
        missing = [key for key in self.key_properties if key not in record]
        if missing:
            record[MISSING_KEYS] = missing
            record.update(dict.fromkeys(missing))
        return record

    @override
    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        # Kept on the sink, not in ``context``: the SDK logs the context at DEBUG.
        self.run.records_in += 1
        if self._received_at is None:
            self._received_at = monotonic()  # how fresh the batch's records are
        value = record.get(self.key_properties[0])
        usable = isinstance(value, int) and not isinstance(value, bool)
        key = value if usable else ("?", len(self._batch))
        if key in self._batch:
            self.tally_duplicate_merged()
            del self._batch[key]  # re-insert: the last version keeps the later position
        self._batch[key] = record

    @override
    def process_batch(self, context: dict[str, Any]) -> None:
        records, received_at = list(self._batch.values()), self._received_at
        self._batch, self._received_at = {}, None
        if records:
            self.run.process_batch(
                records,
                stream=self.stream_name,
                schema=self.schema,
                key_properties=self.key_properties,
                received_at=received_at,
            )

    @override
    def clean_up(self) -> None:
        # The last sink to close ends the run: report, summary line, reject-ratio verdict.
        # This runs before the SDK writes the final STATE, so a failed verdict emits none.
        try:
            self.run.open_sinks -= 1
            if self.run.open_sinks <= 0:
                self.run.finish()
        finally:
            super().clean_up()
