"""Reject file, plan file and run summary: the per-record results kept outside Singer state."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from .model import FieldDiff

__all__ = [
    "PLAN_ACTIONS",
    "REJECT_CODES",
    "PlanWriter",
    "RecordRejected",
    "RejectWriter",
    "RunSummary",
    "append_history",
    "open_private",
    "write_private_text",
]

PLAN_ACTIONS = ("create", "link", "update", "unchanged", "reject", "conflict", "kept_deleted")
# Why a record was rejected, for machines (the report page explains each one to people).
REJECT_CODES = (
    "invalid_record",  # the record itself cannot be read (schema, key, link value)
    "claimed_by_several",  # several contacts carry one client's code
    "missing_client",  # the link names a client that does not exist
    "ambiguous_match",  # first-run matching found several candidates (ambiguous_match: reject)
    "no_name",  # nothing to name a new client by
    "api_refused",  # the API refused the write (values it will not take)
    "vanished",  # the linked record disappeared during the run
)


class RecordRejected(Exception):
    """This record cannot be synced; the run goes on. ``code`` is one of REJECT_CODES."""

    def __init__(
        self, reason: str, code: str = "invalid_record", candidates: Sequence[object] = ()
    ) -> None:
        super().__init__(reason)
        if code not in REJECT_CODES:
            raise ValueError(f"reject code must be one of {REJECT_CODES}")
        self.reason = reason
        self.code = code
        self.candidates = list(candidates)


_REASON_LIMIT = 500  # a reason is a sentence, never a record dump


def _utc_now() -> datetime:
    return datetime.now(UTC)


def open_private(path: str | Path, mode: str = "a") -> IO[str]:
    """Open a text file that holds customer data: created readable by its owner only."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    descriptor = os.open(target, flags, 0o600)
    os.chmod(target, 0o600)  # an older file may have been created with the default mode
    return os.fdopen(descriptor, mode, encoding="utf-8")


def append_history(report_path: str | Path, report: Mapping[str, Any], *, keep: int = 500) -> Path:
    """Append a run's report to ``<report>.history.jsonl`` (the recent runs a report page
    charts), keeping the last ``keep`` runs."""
    target = Path(report_path)
    history = target.with_name(f"{target.stem}.history.jsonl")
    lines = history.read_text(encoding="utf-8").splitlines() if history.exists() else []
    lines = [*lines[-(keep - 1) :], json.dumps(report, ensure_ascii=False, default=_json_default)]
    write_private_text(history, "\n".join(lines) + "\n")
    return history


def write_private_text(path: str | Path, text: str) -> None:
    """Replace a small customer-data file atomically, readable by its owner only."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open_private(temporary, "w") as handle:
        handle.write(text)
    os.replace(temporary, target)


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        # The SDK reads JSON numbers as Decimal: write them back as JSON numbers, so a replayed
        # reject still matches its schema (integral -> int, else float; NaN/Infinity as text,
        # JSON has no number for them).
        if not value.is_finite():
            return str(value)
        if value == value.to_integral_value():
            return int(value)
        return float(value)
    if isinstance(value, FieldDiff):
        return value.as_dict()
    return str(value)


class _JsonLines:
    """Append-only JSON lines file, opened on first write, safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._file: IO[str] | None = None

    def _write_locked(self, messages: Iterable[Mapping[str, Any]]) -> None:
        if self._file is None:
            self._file = open_private(self.path, "a")
        for message in messages:
            line = json.dumps(message, ensure_ascii=False, default=_json_default)
            try:
                line.encode("utf-8")
            except UnicodeEncodeError:
                # a lone surrogate (hostile input) has no UTF-8 form: escape that line
                line = json.dumps(message, ensure_ascii=True, default=_json_default)
            self._file.write(line)
            self._file.write("\n")
        # flushed per call: a crashed run still leaves every line it reported
        self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def truncate(self) -> None:
        """Start the file afresh (a plan describes one run only)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
            self._file = open_private(self.path, "w")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class RejectWriter(_JsonLines):
    """Rejected records as a replayable Singer stream.

    The first reject of a stream writes that stream's SCHEMA message; each reject then writes the
    RECORD message with an extra ``_reject`` key ({reason, key, at}) that Singer readers ignore,
    so ``cat rejects.jsonl | target-…`` replays them after a fix.
    """

    def __init__(self, path: str | Path, *, clock: Callable[[], datetime] = _utc_now) -> None:
        super().__init__(path)
        self._clock = clock
        self._schemas: dict[str, dict[str, Any]] = {}
        self._written: set[str] = set()
        self.count = 0

    def register_schema(
        self,
        stream: str,
        schema: Mapping[str, Any],
        key_properties: Sequence[str] = (),
        bookmark_properties: Sequence[str] | None = None,
    ) -> None:
        """Remember a stream's schema, written before its first reject."""
        message: dict[str, Any] = {
            "type": "SCHEMA",
            "stream": stream,
            "schema": dict(schema),
            "key_properties": list(key_properties),
        }
        if bookmark_properties:
            message["bookmark_properties"] = list(bookmark_properties)
        with self._lock:
            self._schemas[stream] = message

    def reject(
        self,
        stream: str,
        record: Mapping[str, Any],
        *,
        reason: str,
        key: object,
        schema: Mapping[str, Any] | None = None,
        key_properties: Sequence[str] = (),
        code: str = "invalid_record",
        candidates: Sequence[object] = (),
    ) -> None:
        """Write one rejected record (and the stream's SCHEMA first, once per writer)."""
        if schema is not None and stream not in self._schemas:
            self.register_schema(stream, schema, key_properties)
        with self._lock:
            messages: list[Mapping[str, Any]] = []
            if stream not in self._written:
                if stream not in self._schemas:
                    raise ValueError(f"no schema registered for stream {stream!r}")
                messages.append(self._schemas[stream])
                self._written.add(stream)
            messages.append(
                {
                    "type": "RECORD",
                    "stream": stream,
                    "record": dict(record),
                    "_reject": {
                        "reason": reason[:_REASON_LIMIT],
                        "code": code,
                        "candidates": list(candidates),
                        "key": key,
                        "at": self._clock().isoformat(),
                    },
                }
            )
            self._write_locked(messages)
            self.count += 1


class PlanWriter(_JsonLines):
    """One JSON line per record: what the target did (or, in a dry run, would do)."""

    def write(
        self,
        action: str,
        key: object,
        *,
        target_id: object = None,
        diffs: Iterable[FieldDiff] = (),
        reason: str | None = None,
        **details: Any,
    ) -> None:
        """One plan line. ``details`` adds keys a line kind carries: ``code`` and
        ``candidates`` on a reject, ``winner`` and ``values`` ({"factusol", "clientify"}) on a
        conflict."""
        if action not in PLAN_ACTIONS:
            raise ValueError(f"plan action must be one of {PLAN_ACTIONS}")
        line = {
            "action": action,
            "key": key,
            "target_id": target_id,
            "diffs": [d.as_dict() for d in diffs],
            "reason": None if reason is None else reason[:_REASON_LIMIT],
            **{name: value for name, value in details.items() if value is not None},
        }
        with self._lock:
            self._write_locked([line])


class RunSummary:
    """Thread-safe counters for one target run."""

    COUNTERS = ("created", "updated", "unchanged", "linked", "rejected", "conflicts", "warnings")
    # Counted like COUNTERS, named in the summary line only when not zero (a decision kept:
    # a deletion respected, reported once by the run that first sees it).
    EXTRA_COUNTERS = ("kept_deleted",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter(
            {name: 0 for name in (*self.COUNTERS, *self.EXTRA_COUNTERS)}
        )
        self._api_calls: Counter[str] = Counter()

    def add(self, counter: str, n: int = 1) -> None:
        if counter not in self.COUNTERS and counter not in self.EXTRA_COUNTERS:
            raise ValueError(f"unknown counter {counter!r}; one of {self.COUNTERS}")
        with self._lock:
            self._counts[counter] += n

    def add_api_calls(self, calls: Mapping[str, int]) -> None:
        """Add an API client's call counter (e.g. ``client.calls``)."""
        with self._lock:
            self._api_calls.update(calls)

    def _get(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    @property
    def created(self) -> int:
        return self._get("created")

    @property
    def updated(self) -> int:
        return self._get("updated")

    @property
    def unchanged(self) -> int:
        return self._get("unchanged")

    @property
    def linked(self) -> int:
        return self._get("linked")

    @property
    def rejected(self) -> int:
        return self._get("rejected")

    @property
    def conflicts(self) -> int:
        return self._get("conflicts")

    @property
    def warnings(self) -> int:
        return self._get("warnings")

    @property
    def api_calls(self) -> dict[str, int]:
        with self._lock:
            return dict(self._api_calls)

    @property
    def counts(self) -> dict[str, int]:
        with self._lock:
            counts = {name: self._counts[name] for name in self.COUNTERS}
            counts.update({n: self._counts[n] for n in self.EXTRA_COUNTERS if self._counts[n]})
            return counts

    @property
    def processed(self) -> int:
        counts = self.counts
        return sum(counts[k] for k in ("created", "updated", "unchanged", "linked", "rejected"))

    @property
    def reject_ratio(self) -> float:
        """Rejected records over records processed (0.0 when none)."""
        processed = self.processed
        return self.counts["rejected"] / processed if processed else 0.0

    def line(self, direction: str) -> str:
        """One human line, e.g. for the target's final log message."""
        counts = self.counts
        parts = ", ".join(f"{value} {name}" for name, value in counts.items())
        calls = self.api_calls
        api = ", ".join(f"{k}={v}" for k, v in sorted(calls.items())) or "none"
        return f"{direction}: {parts}; api calls: {api}"

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.counts,
            "processed": self.processed,
            "reject_ratio": round(self.reject_ratio, 6),
            "api_calls": self.api_calls,
        }

    def write_report(self, path: str | Path) -> None:
        """The counters as one JSON document (overwritten)."""
        write_private_text(path, json.dumps(self.as_dict(), indent=2, sort_keys=True) + "\n")
