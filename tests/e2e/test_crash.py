"""Crash safety: SIGKILL of the target or the tap in the middle of `meltano run`, then a re-run,
ends exactly where an uninterrupted run ends: nothing lost, nothing duplicated, links complete,
and no bookmark advanced past unwritten records."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import MELTANO, ROOT, Project, link_of

DEADLINE_SECONDS = 120


def plugin_pids(root: int, executable: str) -> list[int]:
    """PIDs of `root`'s descendants started from a `bin/<executable>` script (the plugin);
    never another run's processes."""
    parents: dict[int, int] = {}
    commands: dict[int, list[bytes]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = []
    for pid, args in commands.items():
        ancestor = parents.get(pid)
        while ancestor not in (None, 0, 1, root):
            ancestor = parents.get(ancestor)
        if ancestor == root and any(
            arg.decode(errors="replace").endswith(f"/bin/{executable}") for arg in args
        ):
            found.append(pid)
    return found


def kill_mid_run(project: Project, job: str, victim: str, ready: Callable[[], bool]) -> int:
    """Start `meltano run job`, SIGKILL `victim` once `ready()` holds; return meltano's exit."""
    proc = subprocess.Popen(
        [MELTANO, "run", job],
        cwd=ROOT,
        env=project.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + DEADLINE_SECONDS
    killed = False
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if not killed and ready():
                for pid in plugin_pids(proc.pid, victim):
                    os.kill(pid, signal.SIGKILL)
                    killed = True
            time.sleep(0.05)
        assert killed, f"{victim} finished before it could be killed"
        return proc.wait(timeout=DEADLINE_SECONDS)
    finally:
        if proc.poll() is None:
            proc.kill()


def contacts_by_link(project: Project) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for contact_id, contact in project.contacts().items():
        if (link := link_of(contact)) is not None:
            out.setdefault(link, []).append(contact_id)
    return out


def test_target_killed_mid_run_then_rerun_ends_like_an_uninterrupted_run(
    project: Project,
) -> None:
    project.clientify.configure(faults={"latency_ms": 60})
    project.extra_env["TARGET_CLIENTIFY_MAX_WORKERS"] = "2"

    def some_contacts_written() -> bool:
        log = project.clientify.requests_log()
        return sum(r["method"] == "POST" and r["path"] == "/v1/contacts/" for r in log) >= 5

    state_id = "dev:tap-factusol--full-to-target-clientify"
    exit_code = kill_mid_run(
        project, "factusol-to-clientify-full", "target-clientify", ready=some_contacts_written
    )

    assert exit_code != 0
    partial = contacts_by_link(project)
    assert 5 <= len(partial) < len(project.clients())
    listed = project.meltano("state", "list").stdout
    assert state_id not in listed  # no bookmark past unwritten records

    project.clientify.configure(faults={"latency_ms": 0})
    project.run("factusol-to-clientify-full")

    links = contacts_by_link(project)
    assert sorted(int(code) for code in links) == sorted(project.clients())
    assert all(len(ids) == 1 for ids in links.values()), links
    counts = project.report("target-clientify")["counts"]
    assert counts["created"] == len(project.clients()) - len(partial)
    assert counts["unchanged"] == len(partial)


def test_tap_killed_mid_run_then_rerun_creates_each_client_once(project: Project) -> None:
    project.clientify.configure(faults={"latency_ms": 150})
    project.extra_env["TAP_CLIENTIFY_PAGE_SIZE"] = "2"

    def pages_read() -> bool:
        log = project.clientify.requests_log()
        return sum(r["method"] == "GET" and r["path"] == "/v1/contacts/" for r in log) >= 3

    contacts = set(project.contacts())
    clients_before = set(project.clients())
    exit_code = kill_mid_run(
        project, "clientify-to-factusol-full", "tap-clientify", ready=pages_read
    )
    assert exit_code != 0

    project.clientify.configure(faults={"latency_ms": 0})
    project.run("clientify-to-factusol-full")

    links = contacts_by_link(project)
    assert all(len(ids) == 1 for ids in links.values()), links
    linked = {contact_id for ids in links.values() for contact_id in ids}
    assert contacts <= linked  # every contact ended up linked to exactly one client
    codes = [int(code) for code in links]
    assert len(codes) == len(set(codes))
    assert set(codes) <= set(project.clients())
    orphans = set(project.clients()) - clients_before - set(codes)
    assert orphans == set()  # no client created by the killed run was left unlinked


def main_email(contact: dict) -> str:
    emails = contact.get("emails") or []
    main = [e for e in emails if e.get("type") == 4] or emails
    return main[0]["email"].lower() if main else ""


def writes_to(project: Project, contact_id: int) -> list[dict]:
    return [r for r in project.writes(project.clientify) if f"/contacts/{contact_id}/" in r["path"]]


def main_phone(contact: dict) -> str:
    phones = [p["phone"] for p in contact.get("phones") or [] if p.get("type") == 1]
    return phones[0] if phones else ""


@pytest.mark.parametrize("stage", ["written", "partial"])
def test_killed_between_a_contact_write_and_the_ledger_update(project: Project, stage: str) -> None:
    # the pair is known to the ledger; FactuSOL's e-mail and phone change; the target is
    # SIGKILLed right after writing them to the contact ("partial": after the first of its
    # sub-resource calls), before the ledger is updated
    project.run("factusol-to-clientify-full")
    project.run("clientify-to-factusol-full")
    code = min(project.clients())
    (contact_id,) = contacts_by_link(project)[str(code)]
    new_email, new_phone = "nuevo.tras.caida@example.es", "955 12 34 56"
    project.factusol.admin("PATCH", f"clients/{code}", {"EMACLI": new_email, "TELCLI": new_phone})
    project.extra_env["TARGET_CLIENTIFY_MAX_WORKERS"] = "1"
    project.extra_env["FCSYNC_TEST_CRASH_AFTER_CONTACT_WRITE"] = stage

    crashed = project.run("factusol-to-clientify-full", check=False)

    del project.extra_env["FCSYNC_TEST_CRASH_AFTER_CONTACT_WRITE"]
    assert crashed.returncode != 0
    contact = project.contacts()[contact_id]
    landed = (main_email(contact), main_phone(contact).replace(" ", ""))
    both = (new_email, "955123456")
    if stage == "written":
        assert landed[0] == new_email
    else:
        assert landed != both  # half done
    project.clientify.clear_requests()
    project.factusol.clear_requests()
    project.run("factusol-to-clientify-full")
    project.run("clientify-to-factusol-full")

    # not lost: both sides hold the new values; not repeated: written once, never reverted
    contact = project.contacts()[contact_id]
    assert main_email(contact) == new_email
    assert project.clients()[code]["EMACLI"] == new_email
    assert project.clients()[code]["TELCLI"] == new_phone
    again = writes_to(project, contact_id)
    assert (len(again) > 0) is (stage == "partial"), again  # only the half-done write is redone
    assert project.writes(project.factusol) == []


def test_killed_between_a_client_update_and_the_ledger_update(project: Project) -> None:
    project.run("factusol-to-clientify-full")
    project.run("clientify-to-factusol-full")
    code = min(project.clients())
    (contact_id,) = contacts_by_link(project)[str(code)]
    project.clientify.admin("PATCH", f"contacts/{contact_id}", {"first_name": "Tras La Caída"})
    project.extra_env["TARGET_FACTUSOL_MAX_WORKERS"] = "1"

    project.extra_env["FCSYNC_TEST_CRASH_AFTER_UPDATE"] = "1"
    crashed = project.run("clientify-to-factusol-full", check=False)
    del project.extra_env["FCSYNC_TEST_CRASH_AFTER_UPDATE"]

    assert crashed.returncode != 0
    assert project.clients()[code]["NOFCLI"] == "Tras La Caída"
    project.clientify.clear_requests()
    project.factusol.clear_requests()
    project.run("clientify-to-factusol-full")
    project.run("factusol-to-clientify-full")

    assert project.clients()[code]["NOFCLI"] == "Tras La Caída"
    assert project.contacts()[contact_id]["first_name"] == "Tras La Caída"
    assert project.writes(project.factusol) == []  # not repeated
    assert writes_to(project, contact_id) == []  # and the old name never comes back
