"""Personal data with an end date: run files older than the retention are removed.

What the sync writes under its output directory names people: plans, rejects, reports, the
report page, each run's log. A run file older than ``days`` is deleted; the append-only files
(rejects, report history) keep only their lines younger than that. The stores of record (the
ledger, the contact cache) are not run files: the ledger's history has its own prune
(:meth:`sync_ledger.CustomerHistory.prune`) and the cache mirrors what Clientify holds now.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "STORE_SUFFIXES",
    "PruneResult",
    "prune_files",
    "prune_run_files",
    "rewrite_private",
]

#: What a Spanish SMB's data-protection policy accepts for operational logs holding personal data.
DEFAULT_RETENTION_DAYS = 90
#: Databases (ledger, contact cache) and their journals: stores of record, never pruned by age.
STORE_SUFFIXES = (".sqlite", ".sqlite-wal", ".sqlite-shm", ".sqlite-journal", ".db")
# JSON fields that date a line of an append-only file
_TIME_FIELDS = ("finished_at", "run_at", "at", "time", "started_at", "rejected_at")


@dataclass
class PruneResult:
    deleted_files: list[Path] = field(default_factory=list)
    trimmed_lines: int = 0


def prune_run_files(
    output_dir: str | Path,
    *,
    days: int = DEFAULT_RETENTION_DAYS,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> PruneResult:
    """Remove run files older than ``days`` under ``output_dir``; trim old JSON lines."""
    if days < 1:
        raise ValueError("retention must be at least one day")
    root = Path(output_dir)
    result = PruneResult()
    if not root.is_dir():
        return result
    cutoff = now() - timedelta(days=days)
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        if path.name.endswith(STORE_SUFFIXES):
            continue
        modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        if modified < cutoff:
            path.unlink(missing_ok=True)
            result.deleted_files.append(path)
        elif path.suffix == ".jsonl":
            result.trimmed_lines += _trim_lines(path, cutoff)
    return result


def prune_files(
    paths: Iterable[str | Path],
    *,
    days: int = DEFAULT_RETENTION_DAYS,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> PruneResult:
    """The same rule for named files only (what a target itself writes, wherever the settings
    put it): a file older than ``days`` goes; a JSON-lines file loses its older lines."""
    if days < 1:
        raise ValueError("retention must be at least one day")
    cutoff = now() - timedelta(days=days)
    result = PruneResult()
    for path in sorted({Path(p) for p in paths}):
        if not path.is_file() or path.is_symlink() or path.name.endswith(STORE_SUFFIXES):
            continue
        if datetime.fromtimestamp(path.stat().st_mtime, UTC) < cutoff:
            path.unlink(missing_ok=True)
            result.deleted_files.append(path)
        elif path.suffix == ".jsonl":
            result.trimmed_lines += _trim_lines(path, cutoff)
    return result


def _line_time(line: str) -> datetime | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("_reject"), dict):  # a reject line: its time is the reject's
        value = value["_reject"]
    for name in _TIME_FIELDS:
        text = value.get(name)
        if isinstance(text, str):
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                continue
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def _trim_lines(path: Path, cutoff: datetime) -> int:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
    kept = [line for line in lines if (when := _line_time(line)) is None or when >= cutoff]
    if len(kept) == len(lines):
        return 0
    rewrite_private(path, "".join(kept))
    return len(lines) - len(kept)


def rewrite_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with a file only its owner can read."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
