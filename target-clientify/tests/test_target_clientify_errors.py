"""Error paths with mocked HTTP (`responses`): 400 -> reject file, 401 at start, 5xx -> no STATE.
Plus the settings contract with meltano.yml and a curated subset of the SDK target suite."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import responses
import yaml
from singer_sdk.testing import get_target_test_class
from singer_sdk.testing.suites import SingerTestSuite
from singer_sdk.testing.target_tests import TargetCliPrintsTest
from target_clientify.sinks import TargetClientifyError
from target_clientify.target import TargetClientify
from target_runtime.settings import settings_drift

from .conftest import fixture_text

API = "https://api.example.test/v1"
KEY = "mock-key-0123456789"


def page(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"count": len(results), "next": None, "previous": None, "results": results}


def register_start(rsps: responses.RequestsMock, contacts: list[dict[str, Any]]) -> None:
    rsps.get(f"{API}/settings/my-account/", json=page([{"country": "ES"}]))
    rsps.get(
        f"{API}/custom-fields/",
        json=page([{"id": 1, "name": "factusol_id", "content_type": "contacts", "field_type": 3}]),
    )
    rsps.get(f"{API}/contacts/", json=page(contacts))


def make_config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "api_url": API,
        "api_key": KEY,
        "plan_file": str(tmp_path / "plan.jsonl"),
        "reject_file": str(tmp_path / "rejects.jsonl"),
        "report_file": str(tmp_path / "report.json"),
        "index_cache_file": str(tmp_path / "contacts.sqlite"),
        "ledger_uri": str(tmp_path / "ledger.sqlite"),
        "rate_limit": 1000,
        "max_retries": 0,
        **extra,
    }


def listen(config: dict[str, Any], name: str) -> None:
    TargetClientify(config=config, parse_env_config=False).listen(io.StringIO(fixture_text(name)))


def state_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if '"bookmarks"' in line]


@responses.activate
def test_400_on_one_record_goes_to_reject_file_and_the_rest_sync(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    register_start(responses.mock, [])
    calls = {"n": 0}

    def create(request: Any) -> tuple[int, dict[str, str], str]:
        calls["n"] += 1
        body = json.loads(request.body)
        if body["custom_fields"][0]["value"] == "102":
            return 400, {}, json.dumps({"emails": [{"email": ["Enter a valid email address."]}]})
        return 201, {}, json.dumps({"id": 1000 + calls["n"], **body})

    responses.add_callback(responses.POST, f"{API}/contacts/", callback=create)

    listen(make_config(tmp_path, max_reject_percent=50), "new_clients.singer")

    rejects = [json.loads(x) for x in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [r["type"] for r in rejects] == ["SCHEMA", "RECORD"]
    assert rejects[1]["record"]["code"] == 102
    assert "Enter a valid email address" in rejects[1]["_reject"]["reason"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["counts"]["created"], report["counts"]["rejected"]) == (2, 1)
    assert state_lines(capsys.readouterr().out)  # the run completed


@responses.activate
def test_401_fails_at_start_with_a_clear_message(tmp_path: Path) -> None:
    responses.get(f"{API}/settings/my-account/", status=401, json={"detail": "Invalid token."})
    with pytest.raises(TargetClientifyError, match=r"API key") as err:
        listen(make_config(tmp_path), "new_clients.singer")
    assert KEY not in str(err.value)
    assert len(responses.calls) == 1  # nothing else was tried


@responses.activate
def test_5xx_exhausted_stops_the_run_without_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    register_start(responses.mock, [])
    responses.post(f"{API}/contacts/", status=503, body="<html>503</html>")
    # the client re-checks a POST that may have been applied before resending it
    responses.get(re.compile(rf"{re.escape(API)}/contacts/\?.*cf_factusol_id.*"), json=page([]))

    with pytest.raises(TargetClientifyError, match="stopped"):
        listen(make_config(tmp_path), "new_clients.singer")
    assert state_lines(capsys.readouterr().out) == []
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "failed"


@responses.activate
def test_tiny_batch_uses_the_index_not_one_search_per_record(tmp_path: Path) -> None:
    linked = {
        "id": 7,
        "first_name": "Ana García López",
        "last_name": "",
        "taxpayer_identification_number": "12345678Z",
        "custom_fields": [{"field": "factusol_id", "value": "102"}],
        "emails": [{"id": 1, "type": 4, "email": "ana.garcia@example.com"}],
        "phones": [{"id": 2, "type": 1, "phone": "+34932000111", "unsubscribed": False}],
        "addresses": [
            {
                "id": 3,
                "type": 5,
                "street": "Av. Diagonal 100",
                "city": "Barcelona",
                "state": "Barcelona",
                "country": "España",
                "postal_code": "08019",
            }
        ],
        "tags": ["factusol"],
        "company_name": "",
        "modified": "2026-01-11T10:00:00.000000+01:00",
    }
    register_start(responses.mock, [linked])
    responses.post(f"{API}/contacts/", status=201, json={"id": 99})

    listen(make_config(tmp_path), "new_clients.singer")

    methods = [(c.request.method, c.request.url.split("?")[0]) for c in responses.calls]
    assert methods.count(("GET", f"{API}/contacts/")) == 1
    assert methods.count(("POST", f"{API}/contacts/")) == 2  # 101 and 103; 102 unchanged
    assert not [m for m in methods if m[0] == "PUT"]


def test_settings_match_meltano_yml() -> None:
    loaders = yaml.safe_load((Path(__file__).parents[2] / "meltano.yml").read_text())["plugins"][
        "loaders"
    ]
    plugin = next(p for p in loaders if p["name"] == "target-clientify")
    assert settings_drift(TargetClientify.config_jsonschema, plugin["settings"]) == []


# The SDK target suite is written for database targets: its fixtures use generic streams
# (`test_camelcase`, `test_array_data`, ...) that this target refuses by design (it loads only
# `clients`, keyed by `code`), so the data tests cannot apply:
# - array_data, camelcase*, duplicate_records, encoded_string_data, no_primary_keys,
#   optional_attributes, pk_updates, record_missing_fields, schema_no_properties,
#   schema_updates, special_chars_in_attributes, multiple_state_messages: unknown stream
#   names -> TargetClientifyError (covered by test_unknown_stream_is_a_clear_error_naming_it);
#   duplicate records and schema handling for `clients` are covered by our own fixtures.
# - invalid_schema, record_before_schema, record_missing_key_property,
#   record_missing_required_property: SDK-level checks that run before our sink; not ours.
# Kept: cli_prints (--about/--version work without credentials or network).
TestTargetClientifySDK = get_target_test_class(
    TargetClientify,
    config={"api_key": "x", "api_url": API},
    include_target_tests=False,
    custom_suites=[SingerTestSuite(kind="target", tests=[TargetCliPrintsTest])],
    parse_env_config=False,
)


@responses.activate
@pytest.mark.parametrize(
    ("setting", "account", "region"),
    [(None, "FR", "FR"), ("pt", "FR", "PT"), (None, None, "ES")],
)
def test_country_setting_overrides_the_account_country(
    tmp_path: Path, setting: str | None, account: str | None, region: str
) -> None:
    # The same rule in target-factusol (target_runtime.RunSettings): an explicit setting wins,
    # else the account's country, else ES.
    responses.get(f"{API}/settings/my-account/", json=page([{"country": account}]))
    responses.get(
        f"{API}/custom-fields/",
        json=page([{"id": 1, "name": "factusol_id", "content_type": "contacts", "field_type": 3}]),
    )
    config = make_config(tmp_path, **({"country": setting} if setting else {}))
    run = TargetClientify(config=config, parse_env_config=False).run

    run.start()
    run.close()

    assert run.region == region


@responses.activate
def test_record_failing_the_schema_is_rejected_with_its_reason(tmp_path: Path) -> None:
    # The same rule in target-factusol: never mapped anyway, never the run stopped.
    register_start(responses.mock, [])
    responses.post(f"{API}/contacts/", status=201, json={"id": 7})
    schema = {
        "type": "SCHEMA",
        "stream": "clients",
        "key_properties": ["code"],
        "schema": {"properties": {"code": {"type": "integer"}, "fiscal_name": {"type": "string"}}},
    }
    records = [{"code": 5, "fiscal_name": 12345}, {"code": 6, "fiscal_name": "Bien, S.L."}]
    lines = [schema, *({"type": "RECORD", "stream": "clients", "record": r} for r in records)]
    config = make_config(tmp_path, max_reject_percent=100)
    TargetClientify(config=config, parse_env_config=False).listen(
        io.StringIO("".join(json.dumps(line) + "\n" for line in lines))
    )

    rejects = [json.loads(x) for x in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [r["_reject"]["reason"] for r in rejects if r["type"] == "RECORD"] == [
        "record does not match the clients schema (type at $.fiscal_name)"
    ]
    assert rejects[1]["record"] == records[0]  # as it was sent
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["counts"]["created"] == 1
