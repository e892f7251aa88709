"""Read a run's files (report, history, plan, rejects) into plain view objects.

Every reader is tolerant: a missing file is an empty section, a line that is not JSON (a run
killed mid-write) or has unexpected types is counted and skipped, and fields the targets add
later (``code``, ``winner``, ``values``, ``candidates``) are used when present. Nothing here
formats HTML: the template escapes every value it prints.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from .reasons import Explanation, explain_reject

__all__ = [
    "COUNTERS",
    "JOBS",
    "ChangeView",
    "ConflictView",
    "Diff",
    "JobSpec",
    "JobView",
    "RejectView",
    "RunPoint",
    "load_job",
]

COUNTERS = ("created", "linked", "updated", "unchanged", "rejected", "conflicts")
_VALUE_LIMIT = 300  # a cell shows a value, never a whole memo field or a 1 MB string
_NAME_LIMIT = 120
# Control characters (not tab/newline) shown as their pictures (␀, ␛): visible to the reader
# and no parse errors; lone surrogates (valid in JSON, not in UTF-8) as U+FFFD.
_VISIBLE_CONTROLS = {c: 0x2400 + c for c in range(32) if c not in (9, 10, 13)} | {127: 0x2421}
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class JobSpec:
    """One direction of the sync, named after the target that writes it."""

    target: str
    job: str
    source: str
    dest: str
    key_label_es: str
    key_label_en: str
    target_id_label_es: str
    target_id_label_en: str


JOBS: tuple[JobSpec, ...] = (
    JobSpec(
        target="target-clientify",
        job="factusol-to-clientify",
        source="FactuSOL",
        dest="Clientify",
        key_label_es="cliente FactuSOL",
        key_label_en="FactuSOL client",
        target_id_label_es="contacto Clientify",
        target_id_label_en="Clientify contact",
    ),
    JobSpec(
        target="target-factusol",
        job="clientify-to-factusol",
        source="Clientify",
        dest="FactuSOL",
        key_label_es="contacto Clientify",
        key_label_en="Clientify contact",
        target_id_label_es="cliente FactuSOL",
        target_id_label_en="FactuSOL client",
    ),
)


@dataclass(frozen=True)
class Diff:
    field: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class ChangeView:
    """A create, update or link line of the plan."""

    action: str
    key: str
    target_id: str | None
    diffs: list[Diff]
    reason: str | None


@dataclass(frozen=True)
class ConflictView:
    key: str
    target_id: str | None
    field: str
    factusol: str | None
    clientify: str | None
    winner: str | None  # "factusol" | "clientify" | None (unknown)
    reason: str | None


@dataclass(frozen=True)
class RejectView:
    key: str
    name: str | None
    reason: str
    code: str | None
    explanation: Explanation
    candidates: list[str]
    at: str | None
    times: int
    in_last_run: bool
    stream: str | None


@dataclass(frozen=True)
class RunPoint:
    """One run in the chart."""

    label: str
    when: str | None
    counts: dict[str, int]
    dry_run: bool
    failed: bool


@dataclass
class JobView:
    spec: JobSpec
    has_report: bool
    status: str  # ok | failed | dry_run | none
    dry_run: bool
    error: str | None
    finished_at: str | None
    counts: dict[str, int]
    history: list[RunPoint]
    changes: list[ChangeView] = field(default_factory=list)
    creates: list[ChangeView] = field(default_factory=list)
    conflicts: list[ConflictView] = field(default_factory=list)
    rejects: list[RejectView] = field(default_factory=list)
    # Deletions respected (plan action kept_deleted): named once, by the run that saw them.
    kept: list[ChangeView] = field(default_factory=list)
    # How many of each the files held (sections show at most ``max_items``).
    totals: dict[str, int] = field(default_factory=dict)
    unreadable_lines: int = 0
    plan_path: Path | None = None
    reject_path: Path | None = None
    reject_file_exists: bool = False


# ---------------------------------------------------------------------------- small helpers


def _text(value: object, limit: int = _VALUE_LIMIT) -> str | None:
    """A value as display text (None stays None); long values are cut with an ellipsis."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool | int | float):
        text = json.dumps(value)
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    text = text.translate(_VISIBLE_CONTROLS)
    if _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _key(value: object) -> str:
    return _text(value, 60) or "—"


def _int(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and value.is_integer():
        return max(int(value), 0)
    return 0


def _json_lines(path: Path, errors: list[int]) -> Iterator[dict[str, Any]]:
    """Each JSON object line of ``path``; unreadable lines are counted in ``errors[0]``."""
    if not path.is_file():
        return
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError:
                errors[0] += 1
                continue
            if isinstance(item, dict):
                yield item
            else:
                errors[0] += 1


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _counts(report: Mapping[str, Any]) -> dict[str, int]:
    nested = report.get("counts")
    nested = nested if isinstance(nested, Mapping) else {}
    return {name: _int(nested.get(name, report.get(name))) for name in COUNTERS}


def _when(report: Mapping[str, Any]) -> str | None:
    for name in ("finished_at", "started_at", "at"):
        value = report.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def format_time(value: str | None, tz: tzinfo) -> str | None:
    """An ISO date-time as ``06/12/2026 14:05`` in ``tz``; unparseable text is kept as is."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return _text(value, 40)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(tz).strftime("%d/%m/%Y %H:%M")


def _status(report: Mapping[str, Any]) -> str:
    status = report.get("status")
    if status == "failed":
        return "failed"
    if report.get("dry_run") is True or status == "dry_run":
        return "dry_run"
    return "ok"


def _record_name(record: object) -> str | None:
    """A human name for a rejected record: a client's fiscal/trade name, a contact's name."""
    if not isinstance(record, Mapping):
        return None
    parts: list[str] = []
    for name in ("fiscal_name", "trade_name"):
        value = record.get(name)
        if isinstance(value, str) and value.strip():
            parts.append(value.strip())
            break
    if not parts:
        person = " ".join(
            value.strip()
            for value in (record.get("first_name"), record.get("last_name"))
            if isinstance(value, str) and value.strip()
        )
        company = record.get("company_name")
        if person:
            parts.append(person)
        if isinstance(company, str) and company.strip() and company.strip() != person:
            parts.append(company.strip())
    return _text(" · ".join(parts), _NAME_LIMIT) if parts else None


def _diffs(value: object) -> list[Diff]:
    diffs = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, Mapping) and item.get("field") is not None:
            diffs.append(
                Diff(
                    field=_text(item.get("field"), 60) or "?",
                    before=_text(item.get("before")),
                    after=_text(item.get("after")),
                )
            )
    return diffs


def _candidates(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [_key(item) for item in value[:50]]


def _winner(line: Mapping[str, Any]) -> str | None:
    winner = line.get("winner")
    if isinstance(winner, str) and winner.lower() in ("factusol", "clientify"):
        return winner.lower()
    reason = line.get("reason")
    if isinstance(reason, str):
        lowered = reason.lower()
        if "factusol wins" in lowered:
            return "factusol"
        if "clientify wins" in lowered:
            return "clientify"
    return None


def _conflicts(line: Mapping[str, Any], spec: JobSpec) -> list[ConflictView]:
    key, target_id = _key(line.get("key")), _text(line.get("target_id"), 60)
    reason, winner = _text(line.get("reason")), _winner(line)
    values = line.get("values")
    diffs = _diffs(line.get("diffs"))
    if isinstance(values, Mapping):
        name = _text(line.get("field"), 60) or (diffs[0].field if diffs else "?")
        return [
            ConflictView(
                key,
                target_id,
                name,
                _text(values.get("factusol")),
                _text(values.get("clientify")),
                winner,
                reason,
            )
        ]
    # Without `values`: a diff's `before` is the target system's value, `after` the source's.
    views = []
    for diff in diffs:
        factusol, clientify = (
            (diff.after, diff.before) if spec.source == "FactuSOL" else (diff.before, diff.after)
        )
        views.append(ConflictView(key, target_id, diff.field, factusol, clientify, winner, reason))
    return views


# ---------------------------------------------------------------------------- the job view


def load_job(
    output_dir: Path,
    spec: JobSpec,
    *,
    history_limit: int = 30,
    max_items: int = 200,
    tz: tzinfo = UTC,
) -> JobView:
    """Everything the page shows about one direction, from the files under ``output_dir``."""
    errors = [0]
    report_path = output_dir / "reports" / f"{spec.target}.json"
    report = _read_json(report_path)
    finished = _when(report) if report else None
    if report is not None and finished is None:
        # target-clientify's report has no timestamps: the file's own time is the run's end.
        finished = datetime.fromtimestamp(report_path.stat().st_mtime, UTC).isoformat()
    view = JobView(
        spec=spec,
        has_report=report is not None,
        status=_status(report) if report else "none",
        dry_run=bool(report and report.get("dry_run") is True),
        error=_text(report.get("error"), 1000) if report else None,
        finished_at=format_time(finished, tz),
        counts=_counts(report) if report else dict.fromkeys(COUNTERS, 0),
        history=[],
    )
    view.history = _history(output_dir, spec, report, finished, history_limit, tz, errors)

    totals = {"changes": 0, "creates": 0, "conflicts": 0, "rejects": 0, "kept": 0}
    plan_rejects: dict[str, dict[str, Any]] = {}
    view.plan_path = output_dir / "plans" / f"{spec.target}.jsonl"
    for line in _json_lines(view.plan_path, errors):
        action = line.get("action")
        if action in ("update", "link", "create"):
            bucket, section = (
                (view.creates, "creates") if action == "create" else (view.changes, "changes")
            )
            totals[section] += 1
            if len(bucket) < max_items:
                bucket.append(
                    ChangeView(
                        action=str(action),
                        key=_key(line.get("key")),
                        target_id=_text(line.get("target_id"), 60),
                        diffs=_diffs(line.get("diffs")),
                        reason=_text(line.get("reason")),
                    )
                )
        elif action == "conflict":
            found = _conflicts(line, spec)
            totals["conflicts"] += len(found)
            view.conflicts.extend(found[: max(max_items - len(view.conflicts), 0)])
        elif action == "reject":
            plan_rejects[_key(line.get("key"))] = line
        elif action == "kept_deleted":
            totals["kept"] += 1
            if len(view.kept) < max_items:
                view.kept.append(
                    ChangeView(
                        action=str(action),
                        key=_key(line.get("key")),
                        target_id=_text(line.get("target_id"), 60),
                        diffs=[],
                        reason=_text(line.get("reason")),
                    )
                )

    view.reject_path = output_dir / "rejects" / f"{spec.target}.jsonl"
    view.reject_file_exists = view.reject_path.is_file()
    rejects = _rejects(view.reject_path, spec, plan_rejects, errors, tz)
    totals["rejects"] = len(rejects)
    view.rejects = rejects[:max_items]
    view.totals = totals
    view.unreadable_lines = errors[0]
    return view


def _history(
    output_dir: Path,
    spec: JobSpec,
    report: Mapping[str, Any] | None,
    finished: str | None,
    limit: int,
    tz: tzinfo,
    errors: list[int],
) -> list[RunPoint]:
    path = output_dir / "reports" / f"{spec.target}.history.jsonl"
    runs: deque[Mapping[str, Any]] = deque(_json_lines(path, errors), maxlen=max(limit, 1))
    if not runs and report is not None:
        runs.append({**report, "finished_at": finished})
    points = []
    for number, run in enumerate(runs, start=1):
        when = format_time(_when(run), tz)
        points.append(
            RunPoint(
                label=when or f"#{number}",
                when=when,
                counts=_counts(run),
                dry_run=run.get("dry_run") is True,
                failed=run.get("status") == "failed",
            )
        )
    return points


def _rejects(
    path: Path,
    spec: JobSpec,
    plan_rejects: Mapping[str, Mapping[str, Any]],
    errors: list[int],
    tz: tzinfo,
) -> list[RejectView]:
    """The reject file's records, one per key (the latest), newest first; then any reject of
    the last run's plan the file does not hold (a dry run writes none)."""
    # Only what is shown is kept (not the records): the file grows with every run.
    latest: dict[str, tuple[dict[str, Any], int]] = {}
    for message in _json_lines(path, errors):
        meta = message.get("_reject")
        if message.get("type") != "RECORD" or not isinstance(meta, Mapping):
            continue
        key = _key(meta.get("key"))
        kept = {name: meta.get(name) for name in ("reason", "code", "candidates", "at")}
        kept["name"] = _record_name(message.get("record"))
        kept["stream"] = message.get("stream")
        times = latest[key][1] + 1 if key in latest else 1
        latest.pop(key, None)  # re-inserted: dict order is then oldest -> newest
        latest[key] = (kept, times)

    views = []
    for key, (kept, times) in reversed(latest.items()):
        plan_line = plan_rejects.get(key, {})
        in_run = key in plan_rejects
        views.append(_reject_view(key, kept, plan_line, times, in_run, spec, tz))
    for key, line in plan_rejects.items():
        if key not in latest:
            views.append(_reject_view(key, {}, line, 0, True, spec, tz))
    return views


def _reject_view(
    key: str,
    meta: Mapping[str, Any],
    plan_line: Mapping[str, Any],
    times: int,
    in_last_run: bool,
    spec: JobSpec,
    tz: tzinfo,
) -> RejectView:
    reason = _text(meta.get("reason") or plan_line.get("reason"), 500) or ""
    code = meta.get("code") or plan_line.get("code")
    code_text = code if isinstance(code, str) else None
    candidates = meta.get("candidates") or plan_line.get("candidates")
    at = meta.get("at")
    return RejectView(
        key=key,
        name=meta.get("name"),
        reason=reason,
        code=_text(code_text, 40),
        explanation=explain_reject(code_text, reason, source=spec.source, dest=spec.dest),
        candidates=_candidates(candidates),
        at=format_time(at, tz) if isinstance(at, str) else None,
        times=times,
        in_last_run=in_last_run,
        stream=_text(meta.get("stream"), 40),
    )
