"""The change probe (`tap_clientify.probe`): against the Clientify sandbox (real HTTP on
loopback, state from a real tap run), and over mocked HTTP for answers the sandbox never gives
(a filter ignored, several contacts in the bookmark's second)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from sandbox.clientify.switches import DEFAULT_SWITCHES
from sandbox.launcher import SandboxProcess
from tap_clientify.probe import has_changes, main
from tap_clientify.tap import TapClientify

API_KEY = "probe-sandbox-key"
URL = "https://api.clientify.test/v1"
BOOKMARK = "2026-12-07T08:00:00.500000+00:00"
STATE = {
    "bookmarks": {"contacts": {"replication_key": "modified", "replication_key_value": BOOKMARK}}
}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    proc = SandboxProcess(
        "clientify", tmp_path_factory.mktemp("clientify"), extra_args=["--api-key", API_KEY]
    )
    proc.seed("--contacts", "0")
    with proc.start():
        yield proc


@pytest.fixture
def clientify(sandbox: SandboxProcess) -> SandboxProcess:
    sandbox.admin("POST", "seed", {"contacts": 8})
    sandbox.configure(switches=dict(DEFAULT_SWITCHES), faults={"error_rate": 0.0})
    sandbox.clear_requests()
    return sandbox


def config_of(proc: SandboxProcess) -> dict[str, Any]:
    return {"api_key": API_KEY, "api_url": proc.api_url, "rate_limit": 1000}


def tap_state(proc: SandboxProcess, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The state a modified run of the tap leaves (the bookmark: its newest contact)."""
    config = {**config_of(proc), "start_date": "2000-01-01T00:00:00Z"}
    TapClientify(config=config, state={}, parse_env_config=False).sync_all()
    messages = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    proc.clear_requests()
    return states[-1]  # type: ignore[no-any-return]


def api_calls(proc: SandboxProcess) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in proc.requests_log()]


def test_no_change_after_a_run_is_one_call_and_an_edit_is_a_change(
    clientify: SandboxProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tap_state(clientify, capsys)
    assert state["bookmarks"]["contacts"]["replication_key_value"]
    config = config_of(clientify)
    # The newest contact is inside the stream's overlap window, but not newer than the bookmark.
    assert has_changes(config, state) is False
    assert api_calls(clientify) == [("GET", "/v1/contacts/")]
    # `meltano state get` prints it wrapped: the same answer.
    assert has_changes(config, {"singer_state": state}) is False

    # An edit of another contact: with the bookmark's own contact that is two contacts since
    # the bookmark's second; the first page (page_size=1) may hold either, so 1 or 2 calls.
    newest = max(clientify.admin("GET", "contacts")["contacts"], key=lambda c: c["modified"])
    other = next(
        c
        for c in clientify.admin("GET", "contacts")["contacts"]
        if c is not newest and c["id"] != newest["id"]
    )
    clientify.admin("PATCH", f"contacts/{other['id']}", {"title": "Gerente"})
    clientify.clear_requests()
    assert has_changes(config, state) is True
    assert api_calls(clientify) in ([("GET", "/v1/contacts/")], [("GET", "/v1/contacts/")] * 2)


def test_no_bookmark_or_full_mode_is_a_change_without_a_call(clientify: SandboxProcess) -> None:
    config = config_of(clientify)
    assert has_changes(config, None) is True
    assert has_changes(config, {"bookmarks": {}}) is True
    other_key = {
        "bookmarks": {"contacts": {"replication_key": "created", "replication_key_value": BOOKMARK}}
    }
    assert has_changes(config, other_key) is True  # the tap ignores it too
    assert has_changes({**config, "sync_mode": "full"}, STATE) is True
    assert api_calls(clientify) == []


def test_command_line_exit_status(
    clientify: SandboxProcess, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = tap_state(clientify, capsys)
    config_file, state_file = tmp_path / "config.json", tmp_path / "state.json"
    config_file.write_text(json.dumps(config_of(clientify)))
    state_file.write_text(json.dumps(state))
    assert main([str(config_file), str(state_file)]) == 1
    assert main([str(config_file)]) == 0
    assert main([str(tmp_path / "missing.json")]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**config_of(clientify), "api_key": "bad-key-9f3e"}))
    assert main([str(bad), str(state_file)]) == 2
    err = capsys.readouterr().err
    assert "probe failed: ClientifyAuthError" in err
    assert API_KEY not in err
    assert "bad-key-9f3e" not in err


def test_the_probe_imports_no_singer_sdk(clientify: SandboxProcess, tmp_path: Path) -> None:
    code = (
        "import sys, tap_clientify.probe as p;"
        f"p.has_changes({config_of(clientify)!r}, {STATE!r});"
        "assert 'singer_sdk' not in sys.modules, 'singer_sdk imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ---------------------------------------------------------------- mocked HTTP


def contact(cid: int, modified: str) -> dict[str, Any]:
    return {"id": cid, "first_name": f"C{cid}", "modified": modified}


def envelope(count: int, *results: dict[str, Any]) -> dict[str, Any]:
    return {"count": count, "next": None, "previous": None, "results": list(results)}


@responses.activate
def test_an_ignored_filter_is_a_change() -> None:
    # Clientify ignores a filter it does not apply: the whole account, oldest contact first.
    responses.get(f"{URL}/contacts/", json=envelope(500, contact(1, "2024-01-01T10:00:00+01:00")))
    assert has_changes({"api_key": "k", "api_url": URL}, STATE) is True
    assert len(responses.calls) == 1
    query = responses.calls[0].request.url or ""
    assert "modified%5Bgte%5D=2026-12-07T08%3A00%3A00Z" in query
    assert "page_size=1" in query


@responses.activate
def test_several_contacts_in_the_bookmarks_second_are_read_in_one_more_call() -> None:
    same_second = [
        contact(7, "2026-12-07T09:00:00.500000+01:00"),  # the bookmark's own contact
        contact(8, "2026-12-07T08:00:00.200000Z"),
    ]
    responses.get(f"{URL}/contacts/", json=envelope(2, same_second[0]))
    responses.get(f"{URL}/contacts/", json=envelope(2, *same_second))
    assert has_changes({"api_key": "k", "api_url": URL}, STATE) is False
    assert len(responses.calls) == 2
    assert "page_size=2" in (responses.calls[1].request.url or "")

    responses.reset()
    later = [same_second[0], contact(9, "2026-12-07T08:00:00.700000Z")]
    responses.get(f"{URL}/contacts/", json=envelope(2, later[0]))
    responses.get(f"{URL}/contacts/", json=envelope(2, *later))
    assert has_changes({"api_key": "k", "api_url": URL}, STATE) is True


@responses.activate
def test_nothing_after_the_bookmark_and_unknown_dates() -> None:
    responses.get(f"{URL}/contacts/", json=envelope(0))
    assert has_changes({"api_key": "k", "api_url": URL}, STATE) is False
    responses.replace(responses.GET, f"{URL}/contacts/", json=envelope(1, {"id": 3}))
    assert has_changes({"api_key": "k", "api_url": URL}, STATE) is True  # no `modified`: doubt
