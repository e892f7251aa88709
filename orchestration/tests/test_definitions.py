"""The Dagster definitions (fake_meltano.py as meltano): jobs, tags, schedules, retries and the
report as metadata, executed in process with warnings as errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from fcsync_orchestration.definitions import build_definitions, job_name
from fcsync_orchestration.tenants import load_tenants

from .conftest import SECRETS, fake_calls, two_companies

# Warnings as errors, for Dagster's deprecations (context.run_id, get_job_def, ...). A file left
# open by another test's code may be garbage-collected during these tests: not theirs to fail.
pytestmark = [
    pytest.mark.filterwarnings("error"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture
def defs(write_tenants: Callable[[dict[str, Any]], Path]) -> dg.Definitions:
    return build_definitions(load_tenants(write_tenants(two_companies())))


def materializations(result: dg.ExecuteInProcessResult, node: str) -> list[dg.AssetMaterialization]:
    return list(result.asset_materializations_for_node(node))


def test_each_company_has_four_tagged_jobs_and_its_schedules(defs: dg.Definitions) -> None:
    dg.Definitions.validate_loadable(defs)
    names = {job.name for job in defs.jobs or []}
    assert names == {
        f"{company}__{direction}{mode}"
        for company in ("acme", "globex")
        for direction in ("factusol_to_clientify", "clientify_to_factusol")
        for mode in ("", "_full")
    }
    job = defs.resolve_job_def("globex__clientify_to_factusol_full")
    assert job.tags == {
        "company": "globex",
        "factusol_account": "56789",  # the licence both companies share
        "clientify_account": "globex-crm",
    }
    assert job.op_retry_policy is None  # retries are the asset's own policy
    assert job.executor_def.name == "in_process"  # one step: no extra process per run
    schedules = {s.name: s for s in defs.schedules or []}
    assert len(schedules) == 8
    acme = schedules["acme__factusol_to_clientify_schedule"]
    assert acme.cron_schedule == "*/5 * * * *"  # every 5 minutes by default
    assert acme.execution_timezone == "Europe/Madrid"
    assert acme.default_status == dg.DefaultScheduleStatus.RUNNING
    globex = schedules["globex__clientify_to_factusol_schedule"]
    assert globex.cron_schedule == ["50 7 * * 1-5", "50 14 * * 1-5"]
    assert globex.default_status == dg.DefaultScheduleStatus.STOPPED  # active: false
    assert job_name("acme", "clientify-to-factusol-full") == "acme__clientify_to_factusol_full"


def test_a_schedule_tick_requests_a_run_of_its_company_job(defs: dg.Definitions) -> None:
    schedule = next(
        s for s in defs.schedules or [] if s.name == "acme__clientify_to_factusol_full_schedule"
    )
    assert schedule.job_name == "acme__clientify_to_factusol_full"
    context = dg.build_schedule_context(repository_def=defs.get_repository_def())
    (request,) = schedule.evaluate_tick(context).run_requests or []
    assert request.tags["dagster/schedule_name"] == schedule.name


def test_a_job_runs_meltano_for_its_company_and_records_the_report(
    defs: dg.Definitions, tmp_path: Path, secrets_env: dict[str, str]
) -> None:
    job = defs.resolve_job_def("acme__factusol_to_clientify_full")
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance)
        run = instance.get_run_by_id(result.run_id)

    assert result.success
    assert run is not None
    assert run.tags["company"] == "acme"
    assert run.tags["clientify_account"] == "acme"
    (call,) = fake_calls(tmp_path)
    assert call["argv"][2:] == [
        "factusol-to-clientify-full",
        "--state-id-suffix",
        "acme",
        "--run-id",
        result.run_id,
    ]
    (mat,) = materializations(result, "acme__clientify_contacts")
    assert mat.asset_key == dg.AssetKey(["acme", "clientify_contacts"])
    meta = {key: value.value for key, value in mat.metadata.items()}
    assert {k: meta[k] for k in ("created", "linked", "updated", "unchanged", "rejected")} == {
        "created": 3,
        "linked": 1,
        "updated": 2,
        "unchanged": 4,
        "rejected": 1,
    }
    assert meta["conflicts"] == 0
    assert meta["api_calls"] == 11
    assert meta["api_calls_by_kind"] == {"read": 5, "write": 6}
    assert meta["state_id"] == "prod:tap-factusol--full-to-target-clientify:acme"
    assert meta["mode"] == "full"
    assert meta["attempt"] == 1
    assert meta["report"].endswith("acme/output/reports/target-clientify.json")


def test_a_failed_sync_is_retried_with_backoff_then_succeeds(
    defs: dg.Definitions,
    tmp_path: Path,
    secrets_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_MELTANO_PLAN", "fail,locked,ok")
    result = defs.resolve_job_def("globex__clientify_to_factusol").execute_in_process()
    assert result.success
    assert len(fake_calls(tmp_path)) == 3
    (mat,) = materializations(result, "globex__factusol_clients")
    assert mat.metadata["attempt"].value == 3
    assert mat.metadata["mode"].value == "modified"
    retries = [
        e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    ]
    assert len(retries) == 2


def test_a_sync_failing_past_its_retries_fails_the_run_with_the_error_and_no_secret(
    defs: dg.Definitions,
    tmp_path: Path,
    secrets_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_MELTANO_PLAN", "fail")
    result = defs.resolve_job_def("acme__factusol_to_clientify").execute_in_process(
        raise_on_error=False
    )
    assert not result.success
    assert len(fake_calls(tmp_path)) == 3  # max_retries 2
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    text = str(failure.event_specific_data)
    assert "KO after 5 retries for ***" in text
    assert SECRETS["ACME_FACTUSOL_PASSWORD"] not in text


def test_an_unset_secret_fails_at_once_without_retries(
    defs: dg.Definitions,
    tmp_path: Path,
    secrets_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ACME_CLIENTIFY_API_KEY")
    result = defs.resolve_job_def("acme__clientify_to_factusol").execute_in_process(
        raise_on_error=False
    )
    assert not result.success
    assert fake_calls(tmp_path) == []
    events = [e.event_type for e in result.all_events]
    assert dg.DagsterEventType.STEP_UP_FOR_RETRY not in events
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "ACME_CLIENTIFY_API_KEY" in str(failure.event_specific_data)


def test_materializing_an_asset_outside_its_jobs_warns_that_limits_do_not_apply(
    defs: dg.Definitions, secrets_env: dict[str, str]
) -> None:
    asset_def = next(
        a for a in defs.assets or [] if a.key == dg.AssetKey(["globex", "factusol_clients"])
    )
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([asset_def], instance=instance)
        messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert result.success
    assert any("limits do not apply" in message for message in messages)
