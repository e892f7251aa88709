"""tap-clientify: the SDK's standard tap tests plus modes, filters and bookmarks (mocked HTTP)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
import yaml
from responses import matchers
from singer_sdk.testing import SuiteConfig, get_tap_test_class
from tap_clientify.client import ClientifyStream
from tap_clientify.tap import TapClientify

API = "https://api.test/v1"
CONTACTS = f"{API}/contacts/"
KEY = "tap-SeCrEt-key-98765"
FIXTURES = Path(__file__).parent / "fixtures"
CONFIG = {"api_key": KEY, "api_url": API, "sync_mode": "full", "rate_limit": 1000}


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


ADDRESSES = {"count": 1, "next": None, "previous": None, "results": [{"id": 5, "type": 5}]}


def register_two_pages(rsps: responses.RequestsMock) -> None:
    """Two pages; the server answers the same whatever the filters (it may ignore them).
    Contact 135000002 is an older account's list item: its addresses come one by one."""
    rsps.get(f"{CONTACTS}135000002/addresses/", json=ADDRESSES)
    rsps.get(
        CONTACTS,
        match=[matchers.query_param_matcher({"page": "2"}, strict_match=False)],
        json=fixture("contacts_page_2.json"),
    )
    rsps.get(CONTACTS, match=[first_page], json=fixture("contacts_page_1.json"))


def first_page(request) -> tuple[bool, str]:
    # Mutually exclusive matchers: responses consumes a mock when several match one request.
    is_first = "page" not in parse_qs(urlsplit(request.url).query)
    return is_first, "" if is_first else "not the first page"


_StandardTests = get_tap_test_class(
    TapClientify,
    config=CONFIG,
    parse_env_config=False,
    suite_config=SuiteConfig(max_records_limit=50),
)


class TestTapClientify(_StandardTests):  # type: ignore[misc,valid-type]
    """The SDK's standard tap suite against the two mocked pages."""

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def mocked_api(cls):
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            register_two_pages(rsps)
            yield rsps


# --------------------------------------------------------------------------- helpers


def run_tap(config: dict, state: dict | None, capsys) -> tuple[list[dict], list[dict]]:
    tap = TapClientify(config={**CONFIG, **config}, state=state or {}, parse_env_config=False)
    tap.sync_all()
    messages = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    records = [m["record"] for m in messages if m["type"] == "RECORD"]
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    return records, states


def bookmark(state: dict) -> dict:
    return state["bookmarks"]["contacts"]


def gte_params(rsps: responses.RequestsMock) -> list[str]:
    values = []
    for call in rsps.calls:
        values.extend(parse_qs(urlsplit(call.request.url).query).get("modified[gte]", []))
    return values


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


# --------------------------------------------------------------------------- full mode


def test_full_emits_every_contact(rsps, capsys):
    register_two_pages(rsps)
    records, states = run_tap({"sync_mode": "full"}, None, capsys)
    assert [r["id"] for r in records] == [135000001, 135000002, 135000003]
    assert gte_params(rsps) == []
    first, second, third = records
    assert first["factusol_id"] == "123"
    assert second["factusol_id"] is None
    assert third["factusol_id"] is None
    assert first["modified"] == "2025-11-18T07:36:13.023747+00:00"  # stored in UTC
    assert first["custom_fields"][1]["value"] == ["A", "B"]
    assert first["company"] == "https://api.test/v1/companies/77/"
    assert third["contact_source"] == {"name": "Feria"}
    # an older account's list item lacks the key: unknown, so read from the sub-resource
    assert second["addresses"] == ADDRESSES["results"]
    assert "addresses" in first
    assert all(parse_qs(urlsplit(c.request.url).query)["page_size"] == ["100"] for c in rsps.calls)
    assert bookmark(states[-1])["replication_key"] == "modified"


def test_link_field_setting_picks_the_custom_field(rsps, capsys):
    register_two_pages(rsps)
    records, _ = run_tap({"link_field": "segment"}, None, capsys)
    assert records[0]["factusol_id"] == "A"


# --------------------------------------------------------------------------- modified mode


def test_modified_sends_filter_and_drops_older_records(rsps, capsys):
    register_two_pages(rsps)  # the server ignores modified[gte] and answers everything
    records, states = run_tap(
        {"sync_mode": "modified", "start_date": "2025-11-01T00:00:00Z"}, None, capsys
    )
    assert [r["id"] for r in records] == [135000001, 135000003]  # the 2024 one is dropped
    assert set(gte_params(rsps)) == {"2025-11-01T00:00:00Z"}
    assert bookmark(states[-1]) == {
        "replication_key": "modified",
        "replication_key_value": "2025-11-20T11:00:00.000000+00:00",
    }


def test_bookmark_round_trip_with_overlap(rsps, capsys):
    register_two_pages(rsps)
    _, states = run_tap(
        {"sync_mode": "modified", "start_date": "2025-11-01T00:00:00Z"}, None, capsys
    )
    saved = states[-1]
    rsps.calls.reset()
    # Second run: from the bookmark minus 5 minutes; a later start_date is ignored.
    records, states = run_tap(
        {"sync_mode": "modified", "start_date": "2026-01-01T00:00:00Z"}, saved, capsys
    )
    assert set(gte_params(rsps)) == {"2025-11-20T10:55:00Z"}
    assert [r["id"] for r in records] == [135000003]  # re-emitted: >= bookmark
    assert bookmark(states[-1])["replication_key_value"] == "2025-11-20T11:00:00.000000+00:00"


def test_first_run_without_start_date_uses_lookback_hours(rsps, capsys):
    rsps.get(CONTACTS, json={"count": 0, "next": None, "previous": None, "results": []})
    before = datetime.now(UTC)
    run_tap({"sync_mode": "modified", "lookback_hours": 48}, None, capsys)
    sent = datetime.fromisoformat(gte_params(rsps)[0])
    expected = before - timedelta(hours=48)
    assert abs((sent - expected).total_seconds()) < 5


def test_empty_run_still_moves_the_bookmark_to_the_run_start(rsps, capsys):
    rsps.get(CONTACTS, json={"count": 0, "next": None, "previous": None, "results": []})
    before = datetime.now(UTC) - timedelta(seconds=5)
    records, states = run_tap({"sync_mode": "modified"}, None, capsys)
    assert records == []
    value = datetime.fromisoformat(bookmark(states[-1])["replication_key_value"])
    assert before <= value <= datetime.now(UTC)


def test_bookmark_never_moves_past_the_run_start(rsps, capsys):
    page = fixture("contacts_page_2.json")
    page["results"][0]["modified"] = "2099-01-01T00:00:00+01:00"  # a clock far ahead of ours
    rsps.get(CONTACTS, json=page)
    after_start = datetime.now(UTC) + timedelta(seconds=5)
    _, states = run_tap({"sync_mode": "modified"}, None, capsys)
    value = datetime.fromisoformat(bookmark(states[-1])["replication_key_value"])
    assert value <= after_start


def test_relative_start_date_is_refused(rsps):
    tap = TapClientify(
        config={**CONFIG, "sync_mode": "modified", "start_date": "1 day ago"},
        parse_env_config=False,
        validate_config=False,
    )
    with pytest.raises(ValueError, match="absolute ISO 8601"):
        tap.sync_all()


# --------------------------------------------------------------------------- logging, settings


def test_progress_is_logged_every_n_pages(rsps, capsys, caplog, monkeypatch):
    monkeypatch.setattr(ClientifyStream, "PROGRESS_EVERY_PAGES", 1)
    register_two_pages(rsps)
    caplog.set_level(logging.DEBUG)
    run_tap({}, None, capsys)
    progress = [r.getMessage() for r in caplog.records if "pages read" in r.getMessage()]
    assert len(progress) == 2
    assert "contacts: 2 pages read, 3 records kept (server count 3)" in progress
    assert KEY not in caplog.text


SDK_BUILTIN_SETTINGS = {
    "stream_maps",
    "stream_map_config",
    "faker_config",
    "flattening_enabled",
    "flattening_max_depth",
    "flattening_max_key_length",
    "flattening_separator",
    "batch_config",
}


def test_settings_match_meltano_yml():
    meltano = yaml.safe_load((Path(__file__).parents[2] / "meltano.yml").read_text())
    plugin = next(p for p in meltano["plugins"]["extractors"] if p["name"] == "tap-clientify")
    declared = {s["name"]: s for s in plugin["settings"]}
    properties = TapClientify.config_jsonschema["properties"]
    ours = {k for k in properties if k not in SDK_BUILTIN_SETTINGS}
    assert set(declared) == ours
    for name, setting in declared.items():
        assert properties[name]["description"] == setting["description"], name
        if "value" in setting:
            assert properties[name]["default"] == setting["value"], name
    assert properties["api_key"].get("secret") is True
