"""RunSettings: one validation and one meaning per setting for both targets."""

from __future__ import annotations

from typing import Any

import pytest
from singer_sdk import typing as th
from target_runtime import RunSettings, TargetStop
from target_runtime.settings import factusol_credentials, settings_drift, shared


def read(**config: Any) -> RunSettings:
    return RunSettings.read("target-x", config, max_retries=5)


def test_defaults() -> None:
    settings = read()
    assert settings.country is None  # no setting: the account's country decides (at start)
    assert settings.match_keys == ("nif", "email")
    assert settings.tag == "factusol"
    assert str(settings.plan_file) == "output/plans/target-x.jsonl"
    assert settings.max_retries == 5


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"country": "Spain"}, "country"),
        ({"match_fallback": ["phone"]}, "match_fallback"),
        ({"ambiguous_match": "guess"}, "ambiguous_match"),
        ({"field_authority": {"colour": "factusol"}}, "field_authority"),
        ({"conflict_policy": "loudest"}, "conflict_policy"),
        ({"max_workers": 0}, "max_workers"),
    ],
)
def test_a_bad_value_stops_naming_the_setting(config: dict[str, Any], named: str) -> None:
    with pytest.raises(TargetStop, match=named):
        read(**config)


def test_country_is_normalized() -> None:
    assert read(country=" pt ").country == "PT"


def test_factusol_credentials_are_defined_once_for_any_prefix() -> None:
    required = [p.to_dict() for p in factusol_credentials()]
    optional = [p.to_dict() for p in factusol_credentials("factusol_", required=False)]
    assert [next(iter(p)) for p in optional] == [f"factusol_{next(iter(p))}" for p in required]
    assert all(p[next(iter(p))].get("secret") for p in required if "password" in p)


TIMEOUT = "HTTP timeout in seconds for each API call."


def test_settings_drift_names_what_differs() -> None:
    schema = th.PropertiesList(shared("timeout"), shared("dry_run", description="x")).to_dict()
    settings = [
        {"name": "timeout", "value": 30, "description": TIMEOUT},
        {"name": "dry_run", "value": True, "description": "y"},
    ]
    assert settings_drift(schema, settings) == ["dry_run: description", "dry_run: default"]


def test_claims_are_one_state_for_both_directions() -> None:
    from clientify_api import ContactIndex
    from target_runtime import Claims

    index = ContactIndex(field="factusol_id")
    index.add({"id": 7, "custom_fields": [{"field": "factusol_id", "value": "0042"}]})
    claims = Claims("factusol_id", lambda: index)

    assert claims.contact_of(42) == "7"  # from Clientify
    assert claims.client_of({"id": 7, "custom_fields": []}) is None
    assert claims.claim(43, 8)
    assert not claims.claim("043", 9)  # one client, one contact per run
    assert claims.contact_of(43) == "8"
    assert claims.client_of({"id": 8}) == "43"
    assert claims.client_of({"id": 5, "custom_fields": [{"field": "factusol_id", "value": "x"}]})
    claims.release(43)
    assert claims.contact_of(43) is None
    index.close()
