"""What a run keeps and lets go of: the job lock, each customer's history, the retention.

* **One run of a job at a time.** The lock lives with the sync's own state (``sync_ledger``: a
  PostgreSQL advisory lock, or a file lock beside the SQLite ledger), so it holds whatever
  starts the run (cron, Dagster, a person) and a killed run leaves nothing held. It is taken
  when the target starts reading, before any API call; a run that finds it held reads its
  input to the end, writes nothing, emits no state and exits 0 with one line.
* **History.** Every step the sync takes for a customer goes to the ledger's history (when,
  which run, which side, which field, before -> after, why); the report page links each
  client it names to its history.
* **Retention.** At the end of each run, the run files this target wrote (plan, rejects,
  report history, report page, customer pages) lose what is older than ``retention_days``,
  and so does the ledger's history. The ledger's agreed values and the decisions the sync
  keeps (marks) stay: the merge needs them.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from customer_records import history_source, prune_files
from customer_records.retention import STORE_SUFFIXES
from customer_records.retention import _line_time as line_time  # the one dating rule
from sync_ledger import CustomerHistory, HistoryEvent, JobLock, JobLockHeld, Mark, SyncLedger
from sync_report import render_report_page
from sync_report.customers import CUSTOMER_DIR

__all__ = ["JobHeld", "RunMemory", "history_of_plan", "job_lock", "run_id"]

#: the side each target writes
WRITES = {"target-clientify": "clientify", "target-factusol": "factusol"}


class JobHeld(Exception):
    """Another run of this job holds its lock: this one reads its input and writes nothing."""


def run_id(started_at: dt.datetime) -> str:
    """This run's id in history rows: Meltano's (``--run-id`` / ``MELTANO_RUN_ID``) when it
    passes one down, else the run's start time (the report's ``started_at``)."""
    given = os.environ.get("MELTANO_RUN_ID", "").strip()
    return given[:64] if given else started_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def job_lock(ledger_uri: object, target: str, scope: str) -> JobLock:
    """Take this job's lock (``JobHeld`` when another run has it); ``ledger_uri`` as the
    setting gives it (None: the default ledger file; "": no ledger, a lock file still)."""
    uri = None if ledger_uri is None else str(ledger_uri)
    try:
        return JobLock.acquire(uri, f"{target}:{scope}")
    except JobLockHeld as exc:
        raise JobHeld(str(exc)) from None


class RunMemory:
    """History and marks of one run's ledger scope; a no-op without a ledger or on a dry run."""

    def __init__(
        self, ledger: SyncLedger | None, *, run: str, dry_run: bool, log: logging.Logger
    ) -> None:
        self.ledger = ledger
        self.run = run
        self.dry_run = dry_run
        self.log = log
        self.history = CustomerHistory(ledger) if ledger is not None else None
        self._marks: dict[int, Mark] | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ decisions kept

    @property
    def marks(self) -> dict[int, Mark]:
        """Clients the sync was told to leave alone (deleted on one side, forgotten), by code."""
        with self._lock:
            if self._marks is None:
                self._marks = self.history.marks() if self.history is not None else {}
            return self._marks

    def mark(self, code: int, kind: str, *, contact_id: object = None) -> bool:
        """Keep a decision (False when it was already kept); recorded in the history too."""
        if self.history is None or self.dry_run:
            return False
        new = self.history.mark(code, kind, contact_id=contact_id)
        if new:
            self.record([HistoryEvent(kind, code=code, contact_id=_text(contact_id))])
        with self._lock:
            self._marks = None
        return new

    def reported(self, codes: Iterable[int]) -> None:
        """The run report named these marks: later runs stay quiet about them."""
        if self.history is not None and not self.dry_run:
            self.history.marked_reported(codes)
        with self._lock:
            self._marks = None

    # ------------------------------------------------------------------ history

    def record(self, events: Iterable[HistoryEvent]) -> None:
        """Append steps, stamped with this run's id (never fails the run: history is a view)."""
        if self.history is None or self.dry_run:
            return
        stamped = [event if event.run_id else _with_run(event, self.run) for event in events]
        try:
            self.history.record(stamped)
        except Exception as exc:  # a history row lost is not worth a customer's write
            self.log.warning("history not recorded: %s", type(exc).__name__)

    # ------------------------------------------------------------------ the end

    def render_page(self, output_dir: Path, timezone: str) -> Path:
        """The report page, each client it names linked to its history page."""
        source = history_source(self.ledger) if self.ledger is not None else None
        return render_report_page(output_dir, timezone=timezone, history=source)

    def prune(self, files: Iterable[Path], *, days: int, page_dir: Path) -> tuple[int, int, int]:
        """Retention: (files deleted, lines trimmed, history rows dropped). The JSON-lines
        files (the reject file accumulates) are read line by line, never whole."""
        if days < 1:
            raise ValueError("retention must be at least one day")
        pages = list((page_dir / CUSTOMER_DIR).glob("*.html"))
        named = {Path(p) for p in files}
        lines = sorted(p for p in named if p.suffix == ".jsonl")
        result = prune_files([*(named - set(lines)), *pages], days=days)
        deleted, trimmed = len(result.deleted_files), result.trimmed_lines
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
        for path in lines:
            if not path.is_file() or path.is_symlink() or path.name.endswith(STORE_SUFFIXES):
                continue
            if dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC) < cutoff:
                path.unlink(missing_ok=True)
                deleted += 1
            else:
                trimmed += trim_lines(path, cutoff)
        dropped = 0
        if self.history is not None and not self.dry_run:
            cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
            dropped = self.history.prune(older_than=cutoff)
        return deleted, trimmed, dropped


def trim_lines(path: Path, cutoff: dt.datetime) -> int:
    """Drop the lines of a JSON-lines file dated before ``cutoff`` (undated lines stay), as
    ``customer_records.prune_files`` does, streaming: one pass counts, a second writes the kept
    lines to a private file that replaces ``path`` atomically. Returns the lines dropped."""

    def old(line: str) -> bool:
        when = line_time(line)
        return when is not None and when < cutoff

    with path.open(encoding="utf-8", errors="replace") as fh:
        dropped = sum(1 for line in fh if old(line))
    if not dropped:
        return 0
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with (
            os.fdopen(fd, "w", encoding="utf-8") as out,
            path.open(encoding="utf-8", errors="replace") as fh,
        ):
            out.writelines(line for line in fh if not old(line))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dropped


def history_of_plan(
    target: str, lines: Iterable[tuple[str, object, Mapping[str, Any]]]
) -> list[HistoryEvent]:
    """The history steps of one record's plan lines (what was written, and why).

    A create is one step; a first-run link is one step naming its key, then its fields; an
    update is one step per field, ``conflict`` where both sides had changed it (with the winner
    and the rule), else a user's edit on the other side.
    """
    side = WRITES[target]
    by_code = side == "clientify"  # target-clientify's key is the client code
    steps: list[HistoryEvent] = []
    conflicts: dict[str, dict[str, Any]] = {}
    for action, _key, fields in lines:
        if action == "conflict":
            for diff in fields.get("diffs") or []:
                conflicts[_diff(diff)[0]] = {
                    "winner": fields.get("winner"),
                    "rule": str(fields.get("reason") or "")[:200],
                }
    for action, key, fields in lines:
        code, contact = (
            (key, fields.get("target_id")) if by_code else (fields.get("target_id"), key)
        )
        try:
            code_value = int(str(code)) if code is not None else None
        except ValueError:
            code_value = None
        contact_id = _text(contact)
        if action == "create":
            steps.append(HistoryEvent("created", side=side, code=code_value, contact_id=contact_id))
            continue
        if action == "link":
            steps.append(
                HistoryEvent(
                    "first_link",
                    side=side,
                    detail={"key": fields.get("reason")},
                    code=code_value,
                    contact_id=contact_id,
                )
            )
        if action == "conflict":
            for diff in fields.get("diffs") or []:
                name, before, after = _diff(diff)
                if fields.get("winner") == side:  # the written side kept its value: nothing sent
                    steps.append(
                        HistoryEvent(
                            "conflict",
                            field=name,
                            before=before,
                            after=after,
                            detail=conflicts.get(name, {}),
                            code=code_value,
                            contact_id=contact_id,
                        )
                    )
            continue
        if action not in ("link", "update"):
            continue
        for diff in fields.get("diffs") or []:
            name, before, after = _diff(diff)
            reason = (
                "conflict"
                if name in conflicts
                else ("first_link" if action == "link" else "user_edit")
            )
            steps.append(
                HistoryEvent(
                    reason,
                    side=side,
                    field=name,
                    before=before,
                    after=after,
                    detail=conflicts.get(name, {}),
                    code=code_value,
                    contact_id=contact_id,
                )
            )
    # a link's or a create's own step first: conflict lines are noted before the link's
    return sorted(steps, key=lambda step: step.reason not in ("created", "first_link"))


def _diff(diff: object) -> tuple[str, str | None, str | None]:
    if isinstance(diff, Mapping):
        return str(diff.get("field")), _text(diff.get("before")), _text(diff.get("after"))
    field = getattr(diff, "field", "")
    return str(field), _text(getattr(diff, "before", None)), _text(getattr(diff, "after", None))


def _text(value: object) -> str | None:
    if value is None:
        return None
    return str(value)


def _with_run(event: HistoryEvent, run: str) -> HistoryEvent:
    import dataclasses

    return dataclasses.replace(event, run_id=run)
