"""What a run keeps and lets go of: one run of a job at a time, each customer's history linked
from the report page, and the retention of run files (target_runtime.memory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from clientify_api import ClientifyClient
from sync_ledger import CustomerHistory, HistoryEvent, JobLock, SyncLedger

from .conftest import Outcome, RunTarget, fixture_text


def _scope(config: dict[str, Any]) -> str:
    return ClientifyClient(
        api_key=config["api_key"], api_url=config["api_url"]
    ).account_fingerprint()


def test_a_second_run_of_the_job_exits_0_at_once_and_writes_nothing(
    config: dict[str, Any], clientify: Any, tmp_path: Path
) -> None:
    lock = JobLock.acquire(config["ledger_uri"], f"target-clientify:{_scope(config)}")
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config), "utf-8")
    Path(config["plan_file"]).write_text('{"action": "the running job\'s plan"}\n', "utf-8")
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "target_clientify.target",
                "--config",
                str(tmp_path / "config.json"),
            ],
            input=fixture_text("new_clients.singer"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        lock.release()
    assert done.returncode == 0, done.stderr
    assert "held by another run" in done.stderr
    assert "exits without writing" in done.stderr
    assert done.stdout.strip() == ""  # no STATE: the bookmark stays the holder's to move
    assert clientify.requests_log() == []  # not one API call
    # the running job's files are untouched
    assert Path(config["plan_file"]).read_text("utf-8") == '{"action": "the running job\'s plan"}\n'


def test_the_lock_is_free_again_after_a_run(run_target: RunTarget, config: dict[str, Any]) -> None:
    run_target("new_clients.singer")
    lock = JobLock.acquire(config["ledger_uri"], f"target-clientify:{_scope(config)}")
    lock.release()


def test_created_contacts_have_a_history_linked_from_the_report_page(
    run_target: RunTarget, config: dict[str, Any], tmp_path: Path
) -> None:
    out: Outcome = run_target(  # the layout the report page reads
        "new_clients.singer",
        report_file=str(tmp_path / "reports" / "target-clientify.json"),
        plan_file=str(tmp_path / "plans" / "target-clientify.jsonl"),
    )
    created = [p["key"] for p in out.plan if p["action"] == "create" and str(p["key"]).isdigit()]
    assert created
    ledger = SyncLedger(config["ledger_uri"], scope=_scope(config))
    try:
        steps = CustomerHistory(ledger).events(codes=[int(created[0])])
    finally:
        ledger.close()
    assert steps, "a created contact has its first step in the history"
    assert steps[0].reason == "created"
    assert steps[0].side == "clientify"
    page = (tmp_path / "report.html").read_text("utf-8")
    assert f'href="customers/{int(created[0])}.html"' in page
    assert (tmp_path / "customers" / f"{int(created[0])}.html").exists()


def test_run_files_older_than_the_retention_are_gone_after_the_next_run(
    run_target: RunTarget, config: dict[str, Any], tmp_path: Path
) -> None:
    old = datetime.now(UTC) - timedelta(days=120)
    rejects = Path(config["reject_file"])
    rejects.write_text(json.dumps({"_reject": {"at": old.isoformat(), "reason": "old"}}) + "\n")
    stale_page = tmp_path / "customers" / "999.html"
    stale_page.parent.mkdir()
    stale_page.write_text("an old customer page")
    os.utime(stale_page, (old.timestamp(), old.timestamp()))
    ledger = SyncLedger(config["ledger_uri"], scope=_scope(config))
    CustomerHistory(ledger).record([HistoryEvent("created", code=999, at=old)])

    run_target(
        "new_clients.singer", retention_days=90, report_file=str(tmp_path / "reports" / "r.json")
    )

    assert not rejects.exists() or '"old"' not in rejects.read_text()
    assert not stale_page.exists()
    assert CustomerHistory(ledger).events(codes=[999]) == []
    ledger.close()
