"""tap-clientify against the Clientify sandbox (real HTTP on loopback), read from its request
log: the API calls a run costs, and the `list_addresses=false` reading (clientify-api.md §3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sandbox.clientify.switches import DEFAULT_SWITCHES
from sandbox.launcher import SandboxProcess
from tap_clientify.tap import TapClientify

API_KEY = "tap-sandbox-key"
CONTACTS = 12


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
    sandbox.admin("POST", "seed", {"contacts": CONTACTS})
    sandbox.configure(switches=dict(DEFAULT_SWITCHES), faults={"error_rate": 0.0})
    sandbox.clear_requests()
    return sandbox


def run_tap(
    proc: SandboxProcess, capsys: pytest.CaptureFixture[str], state: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    config = {
        "api_key": API_KEY,
        "api_url": proc.api_url,
        "rate_limit": 1000,
        "sync_mode": "modified",
        "start_date": "2000-01-01T00:00:00Z",
    }
    TapClientify(config=config, state=state or {}, parse_env_config=False).sync_all()
    messages = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    records = [m["record"] for m in messages if m["type"] == "RECORD"]
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    return records, states[-1]


def calls(proc: SandboxProcess) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in proc.requests_log()]


@pytest.mark.parametrize("list_addresses", [True, False])
def test_a_modified_run_with_nothing_changed_is_one_call(
    clientify: SandboxProcess, capsys: pytest.CaptureFixture[str], list_addresses: bool
) -> None:
    clientify.configure(switches={"list_addresses": list_addresses})
    records, state = run_tap(clientify, capsys)
    assert len(records) == CONTACTS
    clientify.clear_requests()
    again, _ = run_tap(clientify, capsys, state)
    # only what the bookmark's 5-minute overlap re-reads (>=): the newest contact
    newest = max(r["modified"] for r in records)
    assert {r["id"] for r in again} == {r["id"] for r in records if r["modified"] == newest}
    # Clientify's token auth costs no call: the whole run is one modified[gte] page (the
    # re-read contact's addresses, when the list lacks them, are one call more)
    expected = [("GET", "/v1/contacts/")]
    if not list_addresses:
        expected += [("GET", f"/v1/contacts/{r['id']}/addresses/") for r in again]
    assert calls(clientify) == expected


def test_list_items_without_addresses_get_them_from_the_sub_resource(
    clientify: SandboxProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    full: list[dict[str, Any]] = clientify.admin("GET", "contacts")["contacts"]
    expected = {c["id"]: c["addresses"] for c in full}
    assert any(expected.values())  # the seed gives most contacts an address
    clientify.configure(switches={"list_addresses": False})
    records, _ = run_tap(clientify, capsys)
    assert {r["id"]: r["addresses"] for r in records} == expected
    paths = calls(clientify)
    assert paths.count(("GET", "/v1/contacts/")) == 1
    per_contact = [p for _, p in paths if p.endswith("/addresses/")]
    assert sorted(per_contact) == sorted(f"/v1/contacts/{i}/addresses/" for i in expected)


def test_list_items_with_addresses_cost_no_extra_call(
    clientify: SandboxProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    records, _ = run_tap(clientify, capsys)
    assert len(records) == CONTACTS
    assert calls(clientify) == [("GET", "/v1/contacts/")]
