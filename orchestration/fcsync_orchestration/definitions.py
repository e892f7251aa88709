"""Dagster definitions for every company of the tenants file.

Per company `<c>` and direction `<d>` (factusol_to_clientify, clientify_to_factusol):

- asset `<c>/clientify_contacts` (direction factusol_to_clientify) and `<c>/factusol_clients`
  (clientify_to_factusol), in group `<c>`: the company's records on the receiving side. It runs
  `meltano run <job> --state-id-suffix <c> --run-id <Dagster run id>` as a subprocess
  (`runner.run_sync`) and records the target's report as metadata; retried with exponential
  backoff (`RetryPolicy` from the tenants file);
- jobs `<c>__<d>` (modified) and `<c>__<d>_full`, tagged `company`, `factusol_account` and
  `clientify_account`: the run queue's per-value limits (dagster.yaml) keep one company, and one
  API account, from running too many syncs at once;
- one schedule per job with crons from the tenants file, in its time zone (Europe/Madrid);
- the promise, watched: each asset's `FreshnessPolicy` (the age of its last successful sync,
  failing past the company's `stale_after_minutes`), and `alerts.Watch`: a sync failing after
  its retries, a refused credential or an unset variable opens an incident from the step, the
  sensor `fcsync_watch` opens one for a direction not synced for too long; one alert each,
  closed by the next success. A run that finds its job held by another run (the targets' job
  lock) succeeds without materializing: nothing was synced, nothing needs retrying.

Why not dagster-meltano: its last release (1.5.5, 2024) imports `dagster.core`, which current
Dagster no longer has, through dagster-shell, deprecated since Dagster 1.10. A subprocess is
all Meltano needs; Dagster Pipes would add nothing, since Meltano does not speak it.

Load with `dagster dev -m fcsync_orchestration.definitions` and FCSYNC_TENANTS_FILE.
"""

# No `from __future__ import annotations`: Dagster reads the asset's config annotation.
import json
import os
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from .alerts import Watch
from .probe import Probe, StateReader, load_probe, probe_config
from .runner import (
    DIRECTIONS,
    Direction,
    MissingSecretError,
    SyncResult,
    dotenv_plugin_settings,
    run_sync,
)
from .tenants import JOB_KINDS, Company, Tenants, TenantsError, load_tenants

__all__ = [
    "SyncConfig",
    "build_definitions",
    "defs",
    "job_name",
    "probe_sensor",
    "sync_asset",
    "watch_sensor",
]

TENANTS_FILE_ENV = "FCSYNC_TENANTS_FILE"
# The asset a direction materializes: the company's records on the receiving side.
ASSET_NAMES = {
    "factusol_to_clientify": "clientify_contacts",
    "clientify_to_factusol": "factusol_clients",
}


class SyncConfig(dg.Config):
    """Run config of a sync asset: `full` reads every record, else only the modified ones."""

    full: bool = False


def job_name(company_id: str, kind: str) -> str:
    """Dagster job name of a company's Meltano job, e.g. acme__factusol_to_clientify_full."""
    direction, full = JOB_KINDS[kind]
    return f"{company_id}__{direction}{'_full' if full else ''}"


def result_metadata(result: SyncResult, attempt: int) -> dict[str, Any]:
    """The run's report as Dagster metadata (counts as ints, so the UI can plot them)."""
    calls = result.api_calls
    metadata: dict[str, Any] = {
        "company": result.company,
        "mode": "full" if result.full else "modified",
        "meltano_job": result.meltano_job,
        "state_id": result.state_id,
        "meltano_run_id": result.run_id,
        "attempt": attempt,
        "seconds": dg.MetadataValue.float(result.seconds),
        **{key: dg.MetadataValue.int(value) for key, value in result.counts.items()},
        "api_calls": dg.MetadataValue.int(sum(calls.values())),
        "api_calls_by_kind": dg.MetadataValue.json(calls),
        "report": dg.MetadataValue.path(str(result.report_path))
        if result.report is not None
        else "missing (the target did not get to write it)",
        "rejects": dg.MetadataValue.path(str(result.reject_path)),
        "log": dg.MetadataValue.path(str(result.log_path)),
    }
    if result.report is not None:
        metadata["dry_run"] = bool(result.report.get("dry_run", False))
        metadata["status"] = str(result.report.get("status", ""))
    return metadata


def _failure(result: SyncResult, attempt: int) -> dg.Failure:
    if result.timed_out:
        why = "stopped after the run timeout"
    elif result.credentials_refused:
        why = "an API refused a credential: not retried, fix it in the environment file"
    elif result.locked:
        why = "another run of the same state id is running (it is retried)"
    else:
        why = f"exit {result.returncode}"
    errors = "\n".join(result.errors[-5:]) or "\n".join(result.tail[-10:])
    return dg.Failure(
        description=_failure_text(result, why, errors),
        metadata={
            **result_metadata(result, attempt),
            "log_tail": dg.MetadataValue.text("\n".join(result.tail)),
        },
        allow_retries=not result.credentials_refused,
    )


def _failure_text(result: SyncResult, why: str, errors: str) -> str:
    return (
        f"meltano run {result.meltano_job} for company {result.company} failed ({why}). "
        f"Last errors:\n{errors}\nFull log: {result.log_path}"
    )


def _fail_window(company: Company, direction: Direction) -> timedelta:
    """How old the last materialization may be: the company's setting; a probe-driven job
    materializes only on changes, at least daily (the watch counts its quiet polls)."""
    window = timedelta(minutes=company.stale_after_minutes)
    if company.change_probe(direction.name):
        window += PROBE_MAX_IDLE
    return window


def sync_asset(
    tenants: Tenants, company: Company, direction: Direction, watch: Watch | None = None
) -> dg.AssetsDefinition:
    """The asset syncing one direction of one company (its outcomes reported to `watch`)."""
    retries = company.retries
    source, _, sink = direction.name.partition("_to_")
    watch = watch or Watch(tenants)

    @dg.asset(
        key=[company.id, ASSET_NAMES[direction.name]],
        group_name=company.id,
        description=(
            f"{company.name}: {source.capitalize()} -> {sink.capitalize()} "
            f"(meltano run {direction.job}[-full] --state-id-suffix {company.id})"
        ),
        kinds={"meltano"},
        tags={"company": company.id},
        retry_policy=dg.RetryPolicy(
            max_retries=retries.max_retries,
            delay=retries.delay_seconds,
            backoff=dg.Backoff.EXPONENTIAL,
            jitter=dg.Jitter.PLUS_MINUS,
        ),
        # The age of the last successful sync, in the UI; alerts come from `watch`.
        freshness_policy=dg.FreshnessPolicy.time_window(
            fail_window=_fail_window(company, direction)
        ),
        # A run that finds its job held by another run materializes nothing.
        output_required=False,
    )
    def _sync(
        context: dg.AssetExecutionContext, config: SyncConfig
    ) -> Iterator[dg.MaterializeResult[None]]:
        run = context.run
        if run.tags.get("company") != company.id:
            context.log.warning(
                "this run does not carry the company's tags (it was not launched from one of "
                f"the {company.id}__* jobs): the run queue's per-company and per-account "
                "limits do not apply to it"
            )
        if shared := dotenv_plugin_settings(tenants.project_dir):
            context.log.warning(
                f"{tenants.project_dir / '.env'} sets {', '.join(shared)}: Meltano applies "
                "them to every company unless the company's run sets them (credentials, URLs "
                "and paths are set per company); put plugin settings in the tenants file"
            )
        try:
            result = run_sync(
                tenants,
                company,
                direction,
                full=config.full,
                run_id=run.run_id,
                on_line=context.log.warning,
            )
        except (MissingSecretError, TenantsError) as exc:
            # Retrying cannot help: the deployment's environment or file must be fixed.
            watch.failed(company, direction.name, "settings", str(exc))
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        attempt = context.retry_number + 1
        if not result.ok:
            failure = _failure(result, attempt)
            if result.credentials_refused:
                watch.failed(
                    company,
                    direction.name,
                    "credentials",
                    "\n".join(result.errors[-5:]),
                    str(result.log_path),
                )
            elif context.retry_number >= retries.max_retries:
                # The last attempt: one alert for the run, not one per retry.
                watch.failed(
                    company,
                    direction.name,
                    "failed",
                    failure.description or "",
                    str(result.log_path),
                )
            raise failure
        if result.held:
            context.log.info(
                f"{company.id} {result.meltano_job}: the job is held by another run, which is "
                "doing the work; this run synced nothing (success, nothing materialized)"
            )
            return
        if watch.succeeded(company, direction.name):
            context.log.info(f"{company.id} {direction.name}: the open incident is closed")
        counts = result.counts
        context.log.info(
            f"{company.id} {result.meltano_job}: "
            + ", ".join(f"{v} {k}" for k, v in counts.items())
            + f"; {sum(result.api_calls.values())} API calls in {result.seconds:.1f} s"
        )
        yield dg.MaterializeResult(metadata=result_metadata(result, attempt))

    return _sync


def watch_sensor(watch: Watch) -> dg.SensorDefinition:
    """Every minute: opens an incident (one alert) for each company direction not synced for
    longer than its `stale_after_minutes`, and re-sends an alert that could not go out."""

    @dg.sensor(
        name="fcsync_watch",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Alerts for companies not synced for longer than stale_after_minutes",
    )
    def _watch(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        statuses = watch.check()
        open_ = [s for s in statuses if s.incident]
        for status in open_:
            incident = status.incident or {}
            context.log.info(
                f"{status.company} {status.direction}: incident {incident.get('kind')} since "
                f"{incident.get('opened_at')}"
                + ("" if incident.get("alerted_at") else " (alert not sent yet)")
            )
        return dg.SkipReason(
            f"{len(statuses)} company directions watched, {len(open_)} with an open incident"
        )

    return _watch


PROBE_MAX_IDLE = timedelta(hours=24)
_IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def probe_sensor(
    tenants: Tenants,
    company: Company,
    job: "dg.UnresolvedAssetJobDefinition",  # not importable at run time, only typed
    direction_name: str = "factusol_to_clientify",
    *,
    probe: Probe | None = None,
    reader: StateReader | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    environ: Mapping[str, str] | None = None,
    watch: Watch | None = None,
) -> dg.SensorDefinition:
    """`<c>__<direction>_probe`: runs the company's modified job of `direction_name` when the
    change probe finds changes in its source since its bookmark, when it was not requested for
    a day, or when the probe fails (the run then shows the error). Polls every
    `sync_every_minutes`; reads the bookmark from Meltano's system database directly. "No
    change since the bookmark" means in sync: `watch` counts it as a success (no stale alert
    for a quiet company)."""
    direction = DIRECTIONS[direction_name]
    state_id = direction.state_id(company.environment, company.id, full=False)
    source = direction_name.partition("_to_")[0]
    source_name = "FactuSOL" if source == "factusol" else source.capitalize()
    reader = reader or StateReader()

    @dg.sensor(
        name=f"{job.name}_probe",
        job=job,
        minimum_interval_seconds=company.sync_every_minutes * 60,
        default_status=dg.DefaultSensorStatus.RUNNING
        if company.active
        else dg.DefaultSensorStatus.STOPPED,
        description=f"{company.name}: {job.name} when {source_name} has changes (and daily)",
    )
    def _probe(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        now = clock()
        cursor = json.loads(context.cursor) if context.cursor else {}
        last = cursor.get("requested_at")
        in_flight = context.instance.get_run_records(
            filters=dg.RunsFilter(job_name=job.name, statuses=_IN_FLIGHT), limit=1
        )
        if in_flight:
            return dg.SkipReason(f"a run of {job.name} is queued or running")
        env = os.environ if environ is None else environ
        reason = None
        if last is None or now - datetime.fromisoformat(last) >= PROBE_MAX_IDLE:
            reason = "daily"
        else:
            try:
                uri = env.get("MELTANO_DATABASE_URI") or (
                    f"sqlite:///{tenants.work_dir / company.id / 'meltano.db'}"
                )
                check = probe or load_probe(company.change_probe(direction_name) or "")
                config = probe_config(company, env, direction_name)
                if check(config, reader.singer_state(uri, state_id)):
                    reason = "changes"
            except Exception as exc:  # any probe failure: run the job instead
                context.log.warning(
                    f"{company.id}: change probe failed ({type(exc).__name__}); running the job"
                )
                reason = "probe failed"
        if reason is None:
            if watch is not None:
                watch.succeeded(company, direction.name)
            return dg.SkipReason(f"no change in {source_name} since the bookmark of {state_id}")
        context.update_cursor(json.dumps({"requested_at": now.isoformat()}))
        return dg.RunRequest(tags={**company.run_tags, "fcsync/trigger": reason})

    return _probe


def build_definitions(
    tenants: Tenants,
    *,
    clock: Callable[[], datetime] | None = None,
    watch: Watch | None = None,
    probe: Probe | Mapping[str, Probe] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dg.Definitions:
    """Assets, jobs, schedules and sensors of every company in `tenants` (`clock`, `watch`,
    `probe` (one for every direction, or by direction name) and `environ` injectable for
    tests)."""
    now = clock or (lambda: datetime.now(UTC))
    if watch is None:
        watch = Watch(tenants, clock=now, environ=environ)
    reader = StateReader()
    sensors: list[dg.SensorDefinition] = [watch_sensor(watch)]
    assets: list[dg.AssetsDefinition] = []
    jobs: list[dg.UnresolvedAssetJobDefinition] = []
    schedules: list[dg.ScheduleDefinition] = []
    for company in tenants.companies:
        by_direction = {}
        for direction in DIRECTIONS.values():
            asset_def = sync_asset(tenants, company, direction, watch)
            by_direction[direction.name] = asset_def
            assets.append(asset_def)
        for kind, (direction_name, full) in JOB_KINDS.items():
            asset_def = by_direction[direction_name]
            job = dg.define_asset_job(
                name=job_name(company.id, kind),
                selection=dg.AssetSelection.assets(asset_def),
                config={"ops": {asset_def.op.name: {"config": {"full": full}}}},
                tags=company.run_tags,
                description=f"{company.name}: meltano run {kind} --state-id-suffix {company.id}",
                # One step per run: the default multiprocess executor would add a Python
                # process (~120 MB, seconds of start-up) to every run for nothing.
                executor_def=dg.in_process_executor,
            )
            jobs.append(job)
            crons = company.schedules.get(kind) or []
            if not full and company.change_probe(direction_name):
                # Started by its change probe instead of its schedule.
                sensors.append(
                    probe_sensor(
                        tenants,
                        company,
                        job,
                        direction_name,
                        probe=probe.get(direction_name) if isinstance(probe, Mapping) else probe,
                        reader=reader,
                        clock=now,
                        environ=environ,
                        watch=watch,
                    )
                )
                crons = []
            if crons:
                schedules.append(
                    dg.ScheduleDefinition(
                        name=f"{job.name}_schedule",
                        job=job,
                        cron_schedule=crons[0] if len(crons) == 1 else crons,
                        execution_timezone=tenants.timezone,
                        default_status=dg.DefaultScheduleStatus.RUNNING
                        if company.active
                        else dg.DefaultScheduleStatus.STOPPED,
                        description=f"{company.name}: {kind} at {', '.join(crons)}",
                    )
                )
    return dg.Definitions(assets=assets, jobs=jobs, schedules=schedules, sensors=sensors)


def load_definitions(path: str | Path | None = None) -> dg.Definitions:
    """Definitions from the tenants file at `path`, else $FCSYNC_TENANTS_FILE, else tenants.yaml."""
    source = path or os.environ.get(TENANTS_FILE_ENV) or "tenants.yaml"
    return build_definitions(load_tenants(source))


@dg.definitions
def defs() -> dg.Definitions:
    """The code location Dagster loads (`-m fcsync_orchestration.definitions`)."""
    return load_definitions()
