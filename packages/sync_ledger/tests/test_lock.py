"""The job lock on both backends: one holder at a time, no waiting, and a holder killed with
SIGKILL leaves nothing that blocks the next run."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_ledger import HELD, JobLock, JobLockHeld, job_lock

PG_URI = os.environ.get("FCSYNC_TEST_PG_URI", "")
REPO = Path(__file__).resolve().parents[3]

HOLDER = """
import sys, time
from sync_ledger import JobLock
lock = JobLock.acquire(sys.argv[1], sys.argv[2])
print("held", flush=True)
time.sleep(600)
"""


@pytest.fixture(scope="module")
def pg_uri() -> Iterator[str]:
    """FCSYNC_TEST_PG_URI (always under CI), else a throwaway server started here with
    scripts/throwaway_pg.sh when this machine has PostgreSQL's binaries; skipped otherwise."""
    if PG_URI:
        yield PG_URI
        return
    if os.environ.get("FCSYNC_REQUIRE_PG") or os.environ.get("CI"):
        pytest.fail("FCSYNC_TEST_PG_URI is not set: under CI the PostgreSQL tests must run")
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb") and not shutil.which("initdb"):
        pytest.skip("no PostgreSQL server: set FCSYNC_TEST_PG_URI, or install postgresql")
    parent = Path(tempfile.mkdtemp(prefix="fcsync-lock-pg-"))
    parent.chmod(0o755)  # run as root, the server's user must reach its data directory
    script = str(REPO / "scripts" / "throwaway_pg.sh")
    started = subprocess.run(
        [script, "start", str(parent / "pg")], capture_output=True, text=True, check=False
    )
    try:
        if started.returncode != 0:
            pytest.skip(f"could not start a throwaway PostgreSQL: {started.stderr[-300:]}")
        yield (parent / "pg" / "uri").read_text(encoding="utf-8").strip()
    finally:
        subprocess.run([script, "stop", str(parent / "pg")], capture_output=True, check=False)
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(params=["sqlite-file", "postgresql"])
def uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite-file":
        return f"sqlite:///{tmp_path / 'ledger' / 'sync-ledger.sqlite'}"
    return str(request.getfixturevalue("pg_uri"))


@pytest.fixture
def name() -> str:
    return f"target-clientify:test-{uuid.uuid4().hex[:10]}"  # tests sharing a server never meet


@pytest.fixture
def holder(uri: str, name: str, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock (as a running target would)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, uri, name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "held":
        proc.kill()
        pytest.fail(f"the holder did not get the lock: {proc.stderr.read() if proc.stderr else ''}")
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def acquire_within(uri: str, name: str, seconds: float) -> JobLock:
    """The lock, retried while the server notices a dead session (the file lock is immediate)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return JobLock.acquire(uri, name)
        except JobLockHeld:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_one_holder_at_a_time_and_released_on_exit(uri: str, name: str) -> None:
    with job_lock(uri, name) as lock:
        assert lock.held
        with pytest.raises(JobLockHeld) as err:
            JobLock.acquire(uri, name)
        # Other jobs are not held by it.
        with job_lock(uri, name + "-other"):
            pass
    assert not lock.held
    message = str(err.value)
    assert HELD in message
    assert message.startswith(f"job {name} is held by another run (")
    assert "exits without syncing" in message
    assert "\n" not in message
    with job_lock(uri, name):  # free again
        pass


def test_release_is_idempotent_and_a_failed_block_releases(uri: str, name: str) -> None:
    lock = JobLock.acquire(uri, name)
    lock.release()
    lock.release()
    with pytest.raises(KeyError), job_lock(uri, name):
        raise KeyError("boom")
    JobLock.acquire(uri, name).release()


def test_held_by_another_process_then_free_after_it_is_sigkilled(
    uri: str, name: str, holder: subprocess.Popen[str]
) -> None:
    started = time.monotonic()
    with pytest.raises(JobLockHeld) as err:
        JobLock.acquire(uri, name)
    assert time.monotonic() - started < 5  # refused at once, never waited for
    # The message names the holder: its server session, or its pid in the lock file.
    assert ("; server pid " if uri.startswith("postgresql") else "; pid ") in str(err.value)
    holder.send_signal(signal.SIGKILL)
    holder.wait()

    lock = acquire_within(uri, name, seconds=10)
    assert lock.held
    lock.release()


def test_the_file_lock_sits_beside_the_ledger_owner_only_and_names_its_holder(
    tmp_path: Path, name: str
) -> None:
    ledger = tmp_path / "ledger" / "sync-ledger.sqlite"
    uri = f"sqlite:///{ledger}"
    with job_lock(uri, name) as lock:
        path = Path(lock.where)
        assert path.parent == ledger.parent
        assert path.name.startswith("sync-ledger.sqlite.target-clientify_test-")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        proc = subprocess.run(
            [sys.executable, "-c", HOLDER, uri, name],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert proc.returncode != 0
    assert f"job {name} is held by another run (lock file {path}; pid {os.getpid()}" in proc.stderr


def test_a_bare_path_empty_or_memory_ledger_locks_a_file(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with job_lock(str(tmp_path / "l.sqlite"), name) as lock:
        assert Path(lock.where).parent == tmp_path
    for uri in (None, "", "sqlite://"):
        with job_lock(uri, name) as lock:
            # where the default ledger would be, relative to the run's directory
            assert Path(lock.where).parent == Path("output/ledger")
            with pytest.raises(JobLockHeld):
                JobLock.acquire(None, name)
    with pytest.raises(ValueError, match="SQLite or PostgreSQL"):
        JobLock.acquire("mysql+pymysql://u@h/db", name)
