"""One company's `meltano run` (with fake_meltano.py as meltano): its command, its environment,
its files, its report, and what it does when the run fails or hangs."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from fcsync_orchestration.runner import (
    DIRECTIONS,
    MissingSecretError,
    SyncResult,
    build_env,
    dotenv_plugin_settings,
    run_sync,
)
from fcsync_orchestration.tenants import Tenants, TenantsError, load_tenants

from .conftest import SECRETS, fake_calls, two_companies

F2C = DIRECTIONS["factusol_to_clientify"]
C2F = DIRECTIONS["clientify_to_factusol"]
REPO = Path(__file__).resolve().parents[2]
RUN_ID = "0b6e8c1e-2f55-4c41-9a43-0d6d1c1a9e77"


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper is not)."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat_line.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


@pytest.fixture
def tenants(write_tenants: Callable[[dict[str, Any]], Path]) -> Tenants:
    return load_tenants(write_tenants(two_companies()))


def test_credentials_are_mapped_and_nothing_of_another_company_or_the_host_leaks(
    tenants: Tenants, tmp_path: Path
) -> None:
    host = {
        **SECRETS,
        "PATH": "/usr/bin",
        "TARGET_CLIENTIFY_DRY_RUN": "true",  # a host-wide plugin setting
        "TARGET_CLIENTIFY_API_KEY": "host-key",
        "FACTUSOL_PASSWORD": "single-company-pw",
        "DAGSTER_PG_PASSWORD": "dagster-db-pw",
        "MELTANO_DATABASE_URI": "postgresql+psycopg://m:db-pw-9@127.0.0.1:5432/meltano",
    }
    env, secrets = build_env(
        tenants, tenants.company("acme"), environ=host, sys_dir=tmp_path / "sys"
    )
    acme_pw, acme_key = SECRETS["ACME_FACTUSOL_PASSWORD"], SECRETS["ACME_CLIENTIFY_API_KEY"]
    assert {k: env[k] for k in ("FACTUSOL_CODIGO_FABRICANTE", "FACTUSOL_CODIGO_CLIENTE")} == {
        "FACTUSOL_CODIGO_FABRICANTE": "1234",
        "FACTUSOL_CODIGO_CLIENTE": "56789",
    }
    assert env["FACTUSOL_BASE_DATOS"] == env["TAP_FACTUSOL_BASE_DATOS"] == "FS001"
    for name in ("FACTUSOL_PASSWORD", "TAP_FACTUSOL_PASSWORD", "TARGET_FACTUSOL_PASSWORD"):
        assert env[name] == acme_pw
    for name in (
        "CLIENTIFY_API_KEY",
        "TAP_CLIENTIFY_API_KEY",
        "TARGET_CLIENTIFY_API_KEY",
        "TARGET_FACTUSOL_CLIENTIFY_API_KEY",
    ):
        assert env[name] == acme_key
    assert env["TAP_FACTUSOL_API_URL"] == env["TARGET_FACTUSOL_API_URL"] == "http://127.0.0.1:9/fs"
    assert "TAP_CLIENTIFY_API_URL" not in env  # globex-less default: meltano.yml's URL
    values = set(env.values())
    assert not any(name in env for name in SECRETS)  # no company's own variable names
    assert SECRETS["GLOBEX_FACTUSOL_PASSWORD"] not in values
    assert SECRETS["GLOBEX_CLIENTIFY_API_KEY"] not in values
    assert "TARGET_CLIENTIFY_DRY_RUN" not in env
    assert "DAGSTER_PG_PASSWORD" not in env
    assert env["MELTANO_DATABASE_URI"] == host["MELTANO_DATABASE_URI"]  # the shared system DB
    assert env["MELTANO_PROJECT_ROOT"] == str(tenants.project_dir)
    assert env["MELTANO_SYS_DIR_ROOT"] == str(tmp_path / "sys")
    assert secrets == sorted({acme_pw, acme_key, "db-pw-9"}, key=len, reverse=True)

    company_dir = tenants.work_dir / "acme"
    assert env["TARGET_CLIENTIFY_REPORT_FILE"] == str(
        company_dir / "output" / "reports" / "target-clientify.json"
    )
    assert env["TARGET_FACTUSOL_REJECT_FILE"] == str(
        company_dir / "output" / "rejects" / "target-factusol.jsonl"
    )
    assert env["TARGET_CLIENTIFY_PLAN_FILE"].startswith(str(company_dir))
    cache = str(company_dir / "output" / "cache" / "clientify-contacts.sqlite")
    assert env["TARGET_CLIENTIFY_INDEX_CACHE_FILE"] == env["TARGET_FACTUSOL_INDEX_CACHE_FILE"]
    assert env["TARGET_CLIENTIFY_INDEX_CACHE_FILE"] == cache
    # Not given in the tenants file: not passed (the targets keep their own default).
    assert not [k for k in env if k.endswith(("_LEDGER_URI", "_INDEX_CACHE_URI"))]


def test_without_a_shared_system_database_each_company_keeps_its_own(
    tenants: Tenants, tmp_path: Path
) -> None:
    env, _ = build_env(tenants, tenants.company("globex"), environ=SECRETS, sys_dir=tmp_path)
    assert env["MELTANO_DATABASE_URI"] == f"sqlite:///{tenants.work_dir / 'globex' / 'meltano.db'}"


def test_ledger_and_cache_uris_are_passed_per_company_only_when_given(
    write_tenants: Callable[[dict[str, Any]], Path], tmp_path: Path
) -> None:
    doc = two_companies()
    doc["defaults"]["ledger_uri"] = (
        "postgresql+psycopg://ledger@db/sync?options=-csearch_path%3D{company}"
    )
    doc["defaults"]["index_cache_uri"] = "sqlite:///{company_dir}/cache.sqlite"
    doc["companies"][1]["ledger_uri_env"] = "GLOBEX_LEDGER_URI"
    tenants = load_tenants(write_tenants(doc))
    environ = {**SECRETS, "GLOBEX_LEDGER_URI": "postgresql+psycopg://g:lpw-123@db/globex"}
    acme, _ = build_env(tenants, tenants.company("acme"), environ=environ, sys_dir=tmp_path)
    globex, secrets = build_env(
        tenants, tenants.company("globex"), environ=environ, sys_dir=tmp_path
    )
    assert acme["TARGET_CLIENTIFY_LEDGER_URI"] == acme["TARGET_FACTUSOL_LEDGER_URI"]
    assert acme["TARGET_CLIENTIFY_LEDGER_URI"].endswith("search_path%3Dacme")
    assert globex["TARGET_FACTUSOL_LEDGER_URI"] == environ["GLOBEX_LEDGER_URI"]
    assert "lpw-123" in secrets
    # The contact cache: the targets' index_cache_file takes a path or a URL.
    assert acme["TARGET_FACTUSOL_INDEX_CACHE_FILE"] == (
        f"sqlite:///{tenants.work_dir / 'acme'}/cache.sqlite"
    )
    assert globex["TARGET_CLIENTIFY_INDEX_CACHE_FILE"] == (
        f"sqlite:///{tenants.work_dir / 'globex'}/cache.sqlite"
    )
    assert not [k for k in acme if k.endswith("_INDEX_CACHE_URI")]


def test_a_shared_uri_from_the_environment_must_name_the_company(
    write_tenants: Callable[[dict[str, Any]], Path], tmp_path: Path
) -> None:
    doc = two_companies()
    doc["defaults"]["index_cache_uri_env"] = "FCSYNC_CACHE_URI"
    tenants = load_tenants(write_tenants(doc))
    acme = tenants.company("acme")
    ok = {**SECRETS, "FCSYNC_CACHE_URI": "sqlite:///{company_dir}/cache.sqlite"}
    env, _ = build_env(tenants, acme, environ=ok, sys_dir=tmp_path)
    assert env["TARGET_CLIENTIFY_INDEX_CACHE_FILE"].endswith("/acme/cache.sqlite")
    shared = {**SECRETS, "FCSYNC_CACHE_URI": "sqlite:////srv/cache.sqlite"}
    with pytest.raises(TenantsError, match=r"FCSYNC_CACHE_URI.*must contain"):
        build_env(tenants, acme, environ=shared, sys_dir=tmp_path)


def test_an_unset_variable_stops_the_run_before_it_starts_naming_it(
    tenants: Tenants, tmp_path: Path, secrets_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GLOBEX_CLIENTIFY_API_KEY")
    with pytest.raises(MissingSecretError, match="GLOBEX_CLIENTIFY_API_KEY") as err:
        run_sync(tenants, tenants.company("globex"), C2F, full=False, run_id=RUN_ID)
    assert SECRETS["GLOBEX_FACTUSOL_PASSWORD"] not in str(err.value)
    assert fake_calls(tmp_path) == []


def test_a_run_calls_meltano_with_the_company_suffix_and_run_id_and_reads_its_report(
    tenants: Tenants, tmp_path: Path, secrets_env: dict[str, str]
) -> None:
    lines: list[str] = []
    result = run_sync(
        tenants, tenants.company("acme"), F2C, full=True, run_id=RUN_ID, on_line=lines.append
    )

    assert result.ok
    (call,) = fake_calls(tmp_path)
    assert call["argv"] == [
        "--environment=prod",
        "run",
        "factusol-to-clientify-full",
        "--state-id-suffix",
        "acme",
        "--run-id",
        RUN_ID,
    ]
    assert result.state_id == "prod:tap-factusol--full-to-target-clientify:acme"
    assert result.counts == {
        "created": 3,
        "linked": 1,
        "updated": 2,
        "unchanged": 4,
        "rejected": 1,
        "conflicts": 0,
        "warnings": 2,
    }
    assert result.api_calls == {"read": 5, "write": 6}
    assert lines == ["2026-01-01T00:00:02Z [warning  ] target-x     1 record rejected (key 7)"]
    company_dir = tenants.work_dir / "acme"
    # Run from the company directory: a plugin's relative default lands there.
    assert call["cwd"] == str(company_dir)
    assert (company_dir / "output" / "relative-default.txt").exists()
    assert call["umask"] == 0o077
    assert call["sys_dir_links"] == ["extractors", "loaders"]
    assert not Path(call["env"]["MELTANO_SYS_DIR_ROOT"]).exists()  # removed after the run
    # Customer data readable by its owner only.
    assert stat.S_IMODE(company_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(result.report_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(result.log_path.stat().st_mode) == 0o600
    assert result.report_path == company_dir / "output" / "reports" / "target-clientify.json"


def test_a_failed_run_keeps_no_stale_report_and_never_shows_a_secret(
    tenants: Tenants, tmp_path: Path, secrets_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = tenants.company("acme")
    run_sync(tenants, acme, F2C, full=False, run_id=RUN_ID)  # leaves a report
    monkeypatch.setenv("FAKE_MELTANO_PLAN", "fail")

    result = run_sync(tenants, acme, F2C, full=False, run_id=RUN_ID)

    assert not result.ok
    assert result.returncode == 1
    assert result.report is None  # the previous run's report is not this one's
    assert result.counts["created"] == 0
    password = SECRETS["ACME_FACTUSOL_PASSWORD"]
    assert result.errors == [
        "2026-01-01T00:00:01Z [error    ] tap-factusol KO after 5 retries for ***"
    ]
    assert password not in "\n".join(result.tail)
    assert password not in result.log_path.read_text()
    assert not result.locked


def test_meltano_refusing_a_second_run_of_the_same_state_is_reported_as_such(
    tenants: Tenants, secrets_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MELTANO_PLAN", "locked")
    result = run_sync(tenants, tenants.company("globex"), C2F, full=False, run_id=RUN_ID)
    assert result.locked
    assert not result.ok


def test_a_run_past_its_timeout_is_stopped_with_its_children(
    write_tenants: Callable[[dict[str, Any]], Path],
    tmp_path: Path,
    secrets_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenants = load_tenants(write_tenants(two_companies(run_timeout_minutes=0.02)))
    monkeypatch.setenv("FAKE_MELTANO_PLAN", "hang")

    result = run_sync(tenants, tenants.company("acme"), F2C, full=False, run_id=RUN_ID)

    assert result.timed_out
    assert not result.ok
    child = int((tmp_path / "calls" / "child.pid").read_text())
    assert not alive(child)  # the plugin-like child went with meltano


def test_a_run_stopped_from_outside_takes_meltano_and_its_children_with_it(
    tenants: Tenants, tmp_path: Path, secrets_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dagster stopping a run interrupts the step: the whole process group goes too."""
    monkeypatch.setenv("FAKE_MELTANO_PLAN", "hang")

    def interrupt(line: str) -> None:
        raise KeyboardInterrupt(line)

    with pytest.raises(KeyboardInterrupt):
        run_sync(
            tenants, tenants.company("acme"), F2C, full=False, run_id=RUN_ID, on_line=interrupt
        )

    assert not alive(int((tmp_path / "calls" / "child.pid").read_text()))
    (call,) = fake_calls(tmp_path)
    assert not Path(call["env"]["MELTANO_SYS_DIR_ROOT"]).exists()


def test_two_companies_write_to_separate_directories(
    tenants: Tenants, tmp_path: Path, secrets_env: dict[str, str]
) -> None:
    a = run_sync(tenants, tenants.company("acme"), C2F, full=False, run_id=RUN_ID)
    g = run_sync(tenants, tenants.company("globex"), C2F, full=False, run_id=RUN_ID)
    assert a.report_path.parent.parent.parent.name == "acme"
    assert g.report_path.parent.parent.parent.name == "globex"
    assert json.loads(a.report_path.read_text()) == json.loads(g.report_path.read_text())
    assert a.log_path.parent != g.log_path.parent
    calls = fake_calls(tmp_path)
    assert [c["env"]["FACTUSOL_BASE_DATOS"] for c in calls] == ["FS001", "FS002"]


def test_plugin_settings_in_the_project_env_file_are_named(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "# one company's old file\nFACTUSOL_PASSWORD=x\nexport TARGET_CLIENTIFY_DRY_RUN=true\n"
        "ACME_CLIENTIFY_API_KEY=y\nDAGSTER_PG_PASSWORD=z\n"
    )
    assert dotenv_plugin_settings(tmp_path) == ["FACTUSOL_PASSWORD", "TARGET_CLIENTIFY_DRY_RUN"]
    assert dotenv_plugin_settings(tmp_path / "missing") == []


def test_every_credential_url_and_path_setting_of_meltano_yml_is_set_per_company(
    write_tenants: Callable[[dict[str, Any]], Path], tmp_path: Path
) -> None:
    """Drift guard: a plugin setting added to meltano.yml that reads a company credential (in
    the prod environment), an API URL, or a file path must be set for each company."""
    project = yaml.safe_load((REPO / "meltano.yml").read_text(encoding="utf-8"))
    doc = two_companies()
    doc["companies"][0]["clientify"]["api_url"] = "http://127.0.0.1:9/cl/v1"
    doc["defaults"]["ledger_uri"] = "sqlite:///{company_dir}/ledger.sqlite"
    tenants = load_tenants(write_tenants(doc))
    env, _ = build_env(tenants, tenants.company("acme"), environ=SECRETS, sys_dir=tmp_path)
    company_dir = str(tenants.work_dir / "acme")
    values = {
        "FACTUSOL_CODIGO_FABRICANTE": "1234",
        "FACTUSOL_CODIGO_CLIENTE": "56789",
        "FACTUSOL_BASE_DATOS": "FS001",
        "FACTUSOL_PASSWORD": SECRETS["ACME_FACTUSOL_PASSWORD"],
        "CLIENTIFY_API_KEY": SECRETS["ACME_CLIENTIFY_API_KEY"],
    }
    # Where meltano.yml reads a credential variable: the plugins' own config (every
    # environment) and any environment's plugin config.
    configs = [plugin for kind in project["plugins"].values() for plugin in kind]
    for environment in project["environments"]:
        for kind in ((environment.get("config") or {}).get("plugins") or {}).values():
            configs.extend(kind)
    checked = 0
    for plugin in configs:
        prefix = plugin["name"].upper().replace("-", "_")
        for name, value in (plugin.get("config") or {}).items():
            variable = str(value).removeprefix("${").removesuffix("}")
            if variable in values:
                assert env.get(f"{prefix}_{name.upper()}") == values[variable], name
                checked += 1
    assert checked >= 15  # the 15 credential settings of the four plugins
    urls = {"factusol": "http://127.0.0.1:9/fs", "clientify": "http://127.0.0.1:9/cl/v1"}
    for kind in project["plugins"].values():
        for plugin in kind:
            prefix = plugin["name"].upper().replace("-", "_")
            api = "factusol" if "factusol" in plugin["name"] else "clientify"
            for setting in plugin.get("settings") or []:
                name = setting["name"]
                variable = f"{prefix}_{name.upper()}"
                if name == "api_url" or name.endswith("_api_url"):
                    which = name.removesuffix("_api_url") if name != "api_url" else api
                    assert env.get(variable) == urls[which], variable
                    checked += 1
                elif name.endswith(("_file", "_uri")):
                    assert (
                        env.get(variable, "").replace("sqlite:///", "").startswith(company_dir)
                    ), variable
                    checked += 1
    assert checked >= 20


def test_a_target_finding_its_job_held_is_a_success_that_synced_nothing(
    tenants: Tenants, secrets_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MELTANO_PLAN", "held")
    result = run_sync(tenants, tenants.company("acme"), C2F, full=False, run_id=RUN_ID)
    assert result.held
    assert result.ok
    assert result.report is None
    assert not result.credentials_refused


def test_a_refused_credential_is_told_apart_from_other_failures(
    tenants: Tenants, secrets_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MELTANO_PLAN", "auth,fail")
    acme = tenants.company("acme")
    refused = run_sync(tenants, acme, C2F, full=False, run_id=RUN_ID)
    failed = run_sync(tenants, acme, C2F, full=False, run_id=RUN_ID)
    assert (refused.ok, refused.credentials_refused, refused.held) == (False, True, False)
    assert (failed.ok, failed.credentials_refused) == (False, False)


# What the connectors print when an API refuses a credential (tests/e2e/test_faults.py's
# wrong-credential runs, Meltano's timestamp left out), and failures that are not that.
REFUSED = [
    "[error    ] tap-clientify Clientify rejected the API key (GET /v1/contacts/ -> 401: "
    "Invalid token.). Check api_key. plugin_exc_type=ClientifyAuthError",
    "[error    ] tap-factusol FactuSOL login failed for fabricante=1234 cliente=56789 "
    "base_datos=FS001: respuesta 'KO' plugin_exc_type=FactusolAuthError",
    "[error    ] target-clientify Clientify API key rejected: Clientify rejected the API key "
    "(GET /v1/settings/my-account/ -> 401: Invalid token.). Check api_key.",
    "[error    ] target-factusol target-factusol: cannot start: Clientify (clientify_api_key "
    "at http://127.0.0.1:1/v1): Clientify rejected the API key (GET ... -> 401).",
    "[error    ] target-factusol target-factusol: cannot start: FactuSOL credentials/database "
    "(fabricante=1234): FactuSOL login failed for fabricante=1234: respuesta 'KO'",
]
NOT_REFUSED = [
    "[error    ] target-factusol target-factusol: cannot start: FactuSOL credentials/database "
    "(fabricante=1234): FactuSOL /login/Autenticar failed after 5 retries: HTTP 503",
    "[error    ] tap-clientify Clientify GET /v1/contacts/ -> 429 after 6 retries",
    "[error    ] meltano      Another 'x' pipeline is already running",
]


@pytest.mark.parametrize(
    ("line", "refused"), [(x, True) for x in REFUSED] + [(x, False) for x in NOT_REFUSED]
)
def test_refused_credentials_are_recognised_in_the_connectors_words(
    line: str, refused: bool
) -> None:
    result = SyncResult(
        company="acme", direction="factusol_to_clientify", full=False, meltano_job="j",
        state_id="s", run_id=RUN_ID, returncode=1, seconds=1.0, log_path=Path("l"),
        report_path=Path("r"), reject_path=Path("x"), report=None, errors=[line],
    )  # fmt: skip
    assert result.credentials_refused is refused


def test_the_held_words_are_the_job_locks_own() -> None:
    """The contract with the targets: sync_ledger's JobLockHeld line is what the runner spots."""
    from fcsync_orchestration.runner import HELD
    from sync_ledger import HELD as LOCK_HELD
    from sync_ledger import JobLockHeld

    assert HELD == LOCK_HELD
    assert HELD in str(JobLockHeld("target-clientify:acme", "lock file x"))


def test_run_logs_older_than_the_retention_are_pruned(tmp_path: Path) -> None:
    import os
    from datetime import UTC, datetime, timedelta

    from fcsync_orchestration.runner import prune_logs

    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    old, new = tmp_path / "20260801-old.log", tmp_path / "20261206-new.log"
    for path, age in ((old, 91), (new, 1)):
        path.write_text("client 7: email: not valid (dropped)\n")
        moment = (now - timedelta(days=age)).timestamp()
        os.utime(path, (moment, moment))
    (tmp_path / "notes.txt").write_text("not a run log")
    assert prune_logs(tmp_path, days=90, now=lambda: now) == [old]
    assert new.exists()
    assert (tmp_path / "notes.txt").exists()


def test_the_retention_reaches_both_targets_unless_a_company_setting_says_otherwise(
    tenants: Tenants, tmp_path: Path
) -> None:
    env, _ = build_env(tenants, tenants.company("globex"), environ=SECRETS, sys_dir=tmp_path)
    assert env["TARGET_CLIENTIFY_RETENTION_DAYS"] == "90"
    assert env["TARGET_FACTUSOL_RETENTION_DAYS"] == "90"
