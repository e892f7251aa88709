"""The tenants file: defaults, per-company overrides, and what it refuses (secrets above all)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fcsync_orchestration.tenants import TenantsError, load_tenants, modified_crons, parse_tenants

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
    # soria wants every minute, in one place; nunez keeps the default 5 minutes for F->C.
    assert soria.sync_every_minutes == 1
    assert soria.schedules["factusol-to-clientify"] == ["* * * * *"]
    assert soria.schedules["clientify-to-factusol"] == ["* * * * *"]
    assert (soria.stale_after_minutes, nunez.stale_after_minutes) == (10, 30)
    assert nunez.sync_every_minutes == 5
    assert nunez.schedules["factusol-to-clientify"] == ["*/5 * * * *"]
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
    assert tenants.alerts is not None
    assert (tenants.alerts.smtp_host, tenants.alerts.smtp_port) == ("smtp.example.com", 587)
    assert tenants.alerts.mail_to == ("soporte@example.com",)
    assert tenants.alerts.webhook is not None
    assert tenants.alerts.webhook.env == "FCSYNC_ALERT_WEBHOOK_URL"
    assert soria.alert_to == ("it@ferreteriasoria.example",)
    assert {"FCSYNC_SMTP_PASSWORD", "FCSYNC_ALERT_WEBHOOK_URL"} <= tenants.env_names


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
        (lambda d: d["companies"][0].update(sync_every_minutes=7), "does not divide the hour"),
        (lambda d: d["defaults"].update(sync_every_minutes=0), "minutes >= 1"),
        (lambda d: d["companies"][0].update(sync_every_minutes="5"), "minutes >= 1"),
        (
            lambda d: d["companies"][0].update(sync_every_minutes=30, stale_after_minutes=10),
            "stale_after_minutes \\(10\\) is shorter",
        ),
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


def test_modified_jobs_every_five_minutes_full_jobs_weekly_by_default(tmp_path: Path) -> None:
    acme, globex = parse(two_companies(), tmp_path).companies
    assert acme.sync_every_minutes == 5
    assert acme.schedules == {
        "factusol-to-clientify": ["*/5 * * * *"],
        "clientify-to-factusol": ["2-59/5 * * * *"],  # the other direction, half-way between
        "factusol-to-clientify-full": ["0 3 * * 0"],
        "clientify-to-factusol-full": ["30 3 * * 0"],
    }
    assert acme.stale_after_minutes == 30
    assert globex.schedules["factusol-to-clientify"] == ["*/5 * * * *"]


@pytest.mark.parametrize(
    ("every", "f2c", "c2f"),
    [
        (1, "* * * * *", "* * * * *"),
        (2, "*/2 * * * *", "1-59/2 * * * *"),
        (10, "*/10 * * * *", "5-59/10 * * * *"),
        (60, "0 * * * *", "30 * * * *"),
    ],
)
def test_one_key_sets_a_companys_pace(tmp_path: Path, every: int, f2c: str, c2f: str) -> None:
    doc = two_companies()
    doc["defaults"]["schedules"] = {"factusol-to-clientify": "0 * * * *"}  # overridden below
    doc["companies"][0]["sync_every_minutes"] = every
    acme, globex = parse(doc, tmp_path).companies
    assert acme.schedules["factusol-to-clientify"] == [f2c]
    assert acme.schedules["clientify-to-factusol"] == [c2f]
    assert acme.schedules["factusol-to-clientify-full"] == ["0 3 * * 0"]  # weekly still
    assert globex.schedules["factusol-to-clientify"] == ["0 * * * *"]  # the defaults' own


def test_a_companys_own_cron_outranks_its_interval(tmp_path: Path) -> None:
    doc = two_companies()
    doc["defaults"]["sync_every_minutes"] = 1
    doc["companies"][0]["schedules"] = {"clientify-to-factusol": "50 7-20 * * 1-5"}
    acme, _ = parse(doc, tmp_path).companies
    assert acme.sync_every_minutes == 1
    assert acme.schedules["factusol-to-clientify"] == ["* * * * *"]
    assert acme.schedules["clientify-to-factusol"] == ["50 7-20 * * 1-5"]


def test_meltano_yml_and_the_readme_schedule_every_five_minutes_and_weekly() -> None:
    """The single-company schedules: meltano.yml's, and the README's cron lines, the same; the
    modified jobs behind `fcsync-changed <job> &&`, and a plain daily line each (the safety
    net, in the next cron block)."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    by_job = {s["job"]: s["interval"] for s in project["schedules"]}
    assert by_job == {
        **{job: crons[0] for job, crons in modified_crons(5).items()},
        "factusol-to-clientify-full": "0 3 * * 0",
        "clientify-to-factusol-full": "30 3 * * 0",
    }
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    _, block, daily = (part.split("```", 1)[0] for part in readme.split("```cron\n")[:3])
    crons = {}
    for line in block.splitlines():
        fields = line.split()
        crons[fields[-1]] = " ".join(fields[:5])
        probe = f".venv/bin/fcsync-changed --environment=prod {fields[-1]} && .venv/bin/meltano"
        assert (probe in line) == (fields[-1] in modified_crons(5)), line
    assert crons == by_job
    plain = [line.split() for line in daily.splitlines()]
    assert sorted(f[-1] for f in plain) == sorted(modified_crons(5))
    assert all(f[2:5] == ["*", "*", "*"] and "fcsync-changed" not in f for f in plain)
