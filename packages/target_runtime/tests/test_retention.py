"""Retention of the JSON-lines run files, read line by line (the reject file accumulates)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import stat
from pathlib import Path

from target_runtime.memory import RunMemory, trim_lines

NOW = dt.datetime.now(dt.UTC)


def _line(days_ago: int, **extra: object) -> str:
    at = (NOW - dt.timedelta(days=days_ago)).isoformat()
    return json.dumps({"_reject": {"at": at, "reason": "r"}, **extra}) + "\n"


def test_old_lines_go_undated_and_recent_ones_stay(tmp_path: Path) -> None:
    path = tmp_path / "rejects.jsonl"
    schema = json.dumps({"type": "SCHEMA", "stream": "clients"}) + "\n"
    path.write_text(schema + _line(120, n=1) + _line(1, n=2) + "not json\n" + _line(100, n=3))
    assert trim_lines(path, NOW - dt.timedelta(days=90)) == 2
    kept = path.read_text().splitlines()
    assert [json.loads(x).get("n") for x in kept if x.startswith("{")] == [None, 2]
    assert "not json" in kept
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["rejects.jsonl"]  # no temporary file left


def test_nothing_old_means_the_file_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "plan.jsonl"
    path.write_text(_line(1) + _line(2))
    inode = path.stat().st_ino
    assert trim_lines(path, NOW - dt.timedelta(days=90)) == 0
    assert path.stat().st_ino == inode


def test_prune_counts_what_it_deleted_and_trimmed(tmp_path: Path) -> None:
    rejects, history, stale = (tmp_path / n for n in ("r.jsonl", "h.jsonl", "old.jsonl"))
    rejects.write_text(_line(200) + _line(3))
    history.write_text(_line(1))
    stale.write_text(_line(1))
    old = (NOW - dt.timedelta(days=120)).timestamp()
    os.utime(stale, (old, old))
    page = tmp_path / "report.html"
    page.write_text("<p>")
    os.utime(page, (old, old))
    memory = RunMemory(None, run="r", dry_run=True, log=logging.getLogger("t"))
    files = [rejects, history, stale, page, tmp_path / "missing.jsonl"]
    assert memory.prune(files, days=90, page_dir=tmp_path) == (2, 1, 0)
    assert not stale.exists()
    assert not page.exists()
    assert len(rejects.read_text().splitlines()) == 1
