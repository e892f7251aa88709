"""One run of a job at a time (issue 24): two runs started together, one writes and the other
exits 0 at once with one line; a run killed with SIGKILL leaves nothing that blocks the next.

The lock is the targets' (target_runtime.memory, kept with the ledger: a file lock beside the
SQLite ledger, a PostgreSQL advisory lock). Runs pass `--force` so that Meltano's own
stale-job check, which keeps a SIGKILLed job "running" for 5 minutes, does not stand in for it
(the README's cron lines and the Dagster runner do the same).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

from .conftest import MELTANO, ROOT, Project, link_of

JOB = "factusol-to-clientify-full"
HELD = "held by another run"


def start(project: Project) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [MELTANO, "run", "--force", JOB],
        cwd=ROOT,
        env=project.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: killed as a whole below
    )


def contacts_per_code(project: Project) -> dict[str, int]:
    counts: dict[str, int] = {}
    for contact in project.contacts().values():
        if (code := link_of(contact)) is not None:
            counts[code] = counts.get(code, 0) + 1
    return counts


def test_a_run_started_while_another_writes_exits_0_with_its_line(project: Project) -> None:
    """The second run starts once the first is writing (a cron tick during a long initial sync).
    Two `meltano run`s of one project started in the same second race on Meltano's own files
    (its system database's first migration, `.meltano/run/<plugin>/` catalogs) before any plugin
    runs: the Dagster runner gives each run its own system directory for that reason."""
    # slow writes, one at a time: the first is still writing when the second's target starts
    project.clientify.configure(faults={"latency_ms": 150})
    project.extra_env["TARGET_CLIENTIFY_MAX_WORKERS"] = "1"
    first = start(project)
    deadline = time.monotonic() + 120
    while not contacts_per_code(project) and time.monotonic() < deadline:
        time.sleep(0.1)
    # 1 s per call from here: the first holds the job for ~30 s more, whatever the second's
    # start-up costs on a loaded machine; then full speed for it to end.
    project.clientify.configure(faults={"latency_ms": 1000})
    second = start(project)
    second_output = second.communicate(timeout=600)[0]
    project.clientify.configure(faults={"latency_ms": 0})
    outputs = [first.communicate(timeout=600)[0], second_output]

    assert [first.returncode, second.returncode] == [0, 0], [o[-6000:] for o in outputs]
    held = [out for out in outputs if HELD in out]
    assert len(held) == 1, [out[-2000:] for out in outputs]
    assert "exits without writing" in held[0]
    per_code = contacts_per_code(project)
    assert sorted(int(code) for code in per_code) == sorted(project.clients())
    assert set(per_code.values()) == {1}  # nobody created twice


def test_a_run_killed_with_sigkill_leaves_nothing_that_blocks_the_next(project: Project) -> None:
    project.clientify.configure(faults={"latency_ms": 40})
    victim = start(project)
    deadline = time.monotonic() + 120
    while not contacts_per_code(project) and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(victim.pid, signal.SIGKILL)  # meltano, the tap and the target at once
    victim.wait(timeout=30)
    assert contacts_per_code(project), "the victim wrote nothing before it was killed"
    project.clientify.configure(faults={"latency_ms": 0})

    rerun = project.meltano("run", "--force", JOB, check=False)

    assert rerun.returncode == 0, rerun.output[-3000:]
    assert HELD not in rerun.output
    per_code = contacts_per_code(project)
    assert sorted(int(code) for code in per_code) == sorted(project.clients())
    assert set(per_code.values()) == {1}
