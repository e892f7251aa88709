"""The tenants file: defaults, per-company overrides, and what it refuses (secrets above all)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fcsync_orchestration.tenants import TenantsError, load_tenants, parse_tenants

from .conftest import two_companies

ROOT = Path(__file__).resolve().parents[2]


def parse(doc: dict[str, Any], tmp_path: Path) -> Any:
    return parse_tenants(doc, path=tmp_path / "tenants.yaml")


def test_example_file_loads_with_defaults_and_overrides() -> None:
    tenants = load_tenants(ROOT / "tenants.example.yaml")
    soria, nunez = tenants.companies
    assert tenants.project_dir == ROOT
    assert tenants.work_dir == ROOT / "output" / "tenants"
    assert tenants.timezone == "Europe/Madrid"
    assert soria.environment == "prod"
    assert soria.schedules["clientify-to-factusol"] == ["20 * * * *"]
    assert nunez.schedules["clientify-to-factusol"] == ["50 7-20 * * 1-5"]
    assert nunez.schedules["factusol-to-clientify-full"] == ["0 3 * * 0"]  # from defaults
    assert nunez.settings == {
        "TARGET_CLIENTIFY_MAX_REJECT_PERCENT": "20",
        "TARGET_FACTUSOL_CONFLICT_POLICY": "factusol",
    }
    # Two databases of one DELSOL licence share its API account; each has its own Clientify.
    assert soria.run_tags == {
        "company": "ferreteria_soria",
        "factusol_account": "56789",
        "clientify_account": "ferreteria_soria",
    }
    assert nunez.run_tags["factusol_account"] == "56789"
    assert soria.retries.max_retries == 3
    assert soria.retries.delay_seconds == 60
    assert soria.ledger_uri is None


def test_demo_file_loads() -> None:
    tenants = load_tenants(ROOT / "tenants.demo.yaml")
    assert [c.id for c in tenants.companies] == ["acme", "globex"]
    assert all(c.factusol.api_url and c.clientify.api_url for c in tenants.companies)


@pytest.mark.parametrize(
    ("section", "key"),
    [("factusol", "password"), ("clientify", "api_key"), ("clientify", "token")],
)
def test_a_secret_written_in_the_file_is_refused(tmp_path: Path, section: str, key: str) -> None:
    doc = two_companies()
    doc["companies"][0][section][key] = "s3cret"
    with pytest.raises(TenantsError, match=rf"{key}.*never written.*{key}_env") as err:
        parse(doc, tmp_path)
    assert "s3cret" not in str(err.value)


def test_secret_or_managed_settings_are_refused(tmp_path: Path) -> None:
    for name, why in (
        ("TARGET_CLIENTIFY_API_KEY", "secret"),
        ("TARGET_FACTUSOL_PASSWORD", "secret"),
        ("TARGET_CLIENTIFY_REPORT_FILE", "per company by the orchestrator"),
        ("TARGET_FACTUSOL_LEDGER_URI", "per company by the orchestrator"),
        ("TAP_FACTUSOL_API_URL", "per company by the orchestrator"),
        ("MELTANO_DATABASE_URI", "plugin settings"),
    ):
        doc = two_companies()
        doc["companies"][1]["settings"] = {name: "x"}
        with pytest.raises(TenantsError, match=why):
            parse(doc, tmp_path)


def test_settings_values_become_meltano_variable_strings(tmp_path: Path) -> None:
    doc = two_companies()
    doc["defaults"]["settings"] = {"TARGET_CLIENTIFY_DRY_RUN": True}
    doc["companies"][0]["settings"] = {
        "TARGET_CLIENTIFY_MATCH_FALLBACK": ["nif"],
        "TARGET_CLIENTIFY_FIELD_AUTHORITY": {"email": "clientify"},
        "TARGET_CLIENTIFY_DRY_RUN": False,
    }
    acme, globex = parse(doc, tmp_path).companies
    assert acme.settings == {
        "TARGET_CLIENTIFY_DRY_RUN": "false",
        "TARGET_CLIENTIFY_MATCH_FALLBACK": '["nif"]',
        "TARGET_CLIENTIFY_FIELD_AUTHORITY": '{"email": "clientify"}',
    }
    assert globex.settings == {"TARGET_CLIENTIFY_DRY_RUN": "true"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["companies"][0].update(id="Acme-SL"), "id must be"),
        (lambda d: d["companies"][1].update(id="acme"), "duplicate id"),
        (
            lambda d: d["companies"][0]["factusol"].update(pasword_env="X"),
            "unknown key 'pasword_env'",
        ),
        (lambda d: d["companies"][0]["factusol"].pop("password_env"), "password_env"),
        (lambda d: d["companies"][0]["factusol"].pop("base_datos"), "base_datos"),
        (
            lambda d: d["companies"][0]["clientify"].update(api_key_env="not a name"),
            "not an environment variable name",
        ),
        (
            lambda d: d["companies"][0].update(schedules={"factusol-to-clientify": "0 * *"}),
            "5-field cron",
        ),
        (
            lambda d: d["companies"][0].update(schedules={"hourly": "0 * * * *"}),
            "unknown key 'hourly'",
        ),
        (lambda d: d["companies"][0]["factusol"].update(api_url="ftp://x"), "not an http"),
        (lambda d: d["companies"][0]["factusol"].update(codigo_cliente_env="X"), "not both"),
        (lambda d: d.update(companies=[]), "non-empty list"),
        (lambda d: d["defaults"].update(retries={"max_retries": -1}), "max_retries"),
    ],
)
def test_invalid_entries_are_refused_naming_them(tmp_path: Path, change: Any, message: str) -> None:
    doc = two_companies()
    change(doc)
    with pytest.raises(TenantsError, match=message):
        parse(doc, tmp_path)


def test_ledger_and_cache_uris_stay_per_company(tmp_path: Path) -> None:
    doc = two_companies()
    doc["defaults"]["ledger_uri"] = "sqlite:///shared-ledger.sqlite"
    with pytest.raises(TenantsError, match=r"must contain \{company\}"):
        parse(doc, tmp_path)

    doc["defaults"]["ledger_uri"] = (
        "postgresql+psycopg://u@db/ledger?options=-csearch_path%3D{company}"
    )
    doc["defaults"]["index_cache_uri_env"] = "FCSYNC_INDEX_CACHE_URI"
    acme, globex = parse(doc, tmp_path).companies
    assert acme.ledger_uri is not None
    assert acme.ledger_uri.literal is not None
    assert "{company}" in acme.ledger_uri.literal
    assert globex.index_cache_uri is not None
    assert globex.index_cache_uri.env == "FCSYNC_INDEX_CACHE_URI"

    doc = two_companies()
    for company in doc["companies"]:
        company["ledger_uri"] = "sqlite:////srv/one-ledger.sqlite"
    with pytest.raises(TenantsError, match="the same ledger_uri"):
        parse(doc, tmp_path)


def test_credentials_given_by_environment_default_the_account_to_the_company(
    tmp_path: Path,
) -> None:
    doc = two_companies()
    factusol = doc["companies"][0]["factusol"]
    factusol.pop("codigo_cliente")
    factusol["codigo_cliente_env"] = "ACME_CODIGO_CLIENTE"
    acme = parse(doc, tmp_path).companies[0]
    assert acme.factusol.account == "acme"
    assert "ACME_CODIGO_CLIENTE" in acme.secret_env_names
