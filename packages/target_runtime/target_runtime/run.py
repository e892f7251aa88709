"""SyncRun: one target run's lifecycle, the same in both targets.

* built at the stream's SCHEMA, with **no API call**: settings, clients, output files;
* **started at its first record** (``start``): both accounts checked, region and time zone,
  the ledger opened, then the target's own ``prepare`` hook (its finder, decider, writer);
* per batch (``process_batch``): the link field created if missing, then the target's
  ``plan_batch`` (find → decide, main thread, record order), each plan's write started on a
  thread pool as soon as it is decided (the target's ``write``), then the plan and reject
  lines in record order;
* at the end (``finish``) or on a systemic failure (``stop``): report, history, report page,
  summary line (the last line of the output), every file and connection closed.

A target subclasses it with its names and those four hooks; nothing else is per target.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, NoReturn

from clientify_api import (
    ClientifyAuthError,
    ClientifyCustomFieldError,
    ClientifyError,
    ContactIndex,
)
from customer_sync import (
    FieldIssue,
    KeyIndex,
    PlanWriter,
    ProgressMeter,
    RecordRejected,
    RejectWriter,
    RunSummary,
    append_history,
    company_timezone,
    write_private_text,
)
from factusol_api import FactusolError
from sync_ledger import HistoryEvent, SyncLedger, open_ledger

from target_runtime.claims import Claims
from target_runtime.errors import TargetStop
from target_runtime.finds import SharedFinds
from target_runtime.lines import RecordLines
from target_runtime.memory import RunMemory, history_of_plan, job_lock, run_id
from target_runtime.plan import Plan
from target_runtime.settings import (
    DEFAULT_REGION,
    RunSettings,
    clientify_client,
    factusol_client,
)
from target_runtime.sink import BAD_DATES, INVALID, MISSING_KEYS
from target_runtime.writes import Writes

PROGRESS_SECONDS = 30.0


class SyncRun(SharedFinds, ABC):
    """Everything one run shares across batches and sinks."""

    name: ClassVar[str]  # target-clientify
    stream: ClassVar[str]  # the input stream: clients
    noun: ClassVar[str]  # one record in log lines: client
    direction: ClassVar[str]  # FactuSOL -> Clientify
    max_retries: ClassVar[int]  # the max_retries default
    clientify_prefix: ClassVar[str] = ""  # clientify_ : clientify_api_key, ...
    factusol_prefix: ClassVar[str] = ""  # factusol_ : factusol_password, ...
    factusol_required: ClassVar[bool] = True

    def __init__(self, config: Mapping[str, Any], logger: logging.Logger) -> None:
        self.config = dict(config)
        self.log = logger
        self.settings = settings = RunSettings.read(self.name, config, max_retries=self.max_retries)
        try:
            self.tz = company_timezone(settings.timezone, None)
        except ValueError as exc:
            raise TargetStop(f"{self.name}: bad setting: {exc}") from None
        self.clientify = clientify_client(config, settings, prefix=self.clientify_prefix)
        self.factusol = factusol_client(
            config,
            settings,
            prefix=self.factusol_prefix,
            required=self.factusol_required,
            pool_size=settings.max_workers,
        )
        fs = self.factusol_prefix
        self._fs_year = str(config.get(fs + "ejercicio") or "auto").strip().lower()
        self._fs_label = " ".join(
            f"{name}={config.get(fs + name)}"
            for name in ("codigo_fabricante", "codigo_cliente", "base_datos")
        )
        self.dry_run = settings.dry_run
        # one run of this job at a time (JobHeld: the target exits 0 without writing)
        self.job = job_lock(settings.ledger_uri, self.name, self.clientify.account_fingerprint())
        self.link_field = settings.link_field
        self.region = settings.country or DEFAULT_REGION
        self.summary = RunSummary()
        # The plan describes this run only; the reject file accumulates (a dead-letter file).
        self.plan_file = PlanWriter(settings.plan_file)
        self.plan_file.truncate()
        self.rejects = RejectWriter(settings.reject_file)
        self.progress = ProgressMeter(
            logger, noun=self.stream, interval=PROGRESS_SECONDS, counts=self._progress_counts
        )
        self.lines = RecordLines(logger)  # per-record lines: a few at their level, then DEBUG
        self.ledger: SyncLedger | None = None
        self.started = False
        self.finished = False
        self.failure: str | None = None
        self.open_sinks = 0
        self.records_in = 0  # counted by the sink, before deduplication
        self.started_at = dt.datetime.now(dt.UTC)
        self.memory = RunMemory(None, run=run_id(self.started_at), dry_run=True, log=logger)
        self.received_at: float | None = None  # time.monotonic() of the batch's first record
        self._lock = threading.RLock()
        # Held while a record is decided and while a write updates what decisions read (a
        # created contact: in the index, no longer a planned one), so a decision never sees
        # half of such an update. Writes start while the batch is still being decided.
        self.decisions = threading.RLock()
        self._index: ContactIndex | None = None
        self.claims = Claims(self.link_field, self.contact_index)
        self._census: KeyIndex | None = None
        self._streamed: KeyIndex | None = None  # the census without FactuSOL credentials
        self._link_field_missing = False
        self._schema: Mapping[str, Any] = {}
        self._keys: list[str] = []
        # The last batch's writes still going on, and its plans (see process_batch).
        self._unsettled: tuple[Writes, list[Plan]] | None = None

    # ------------------------------------------------------------------ the target's hooks

    @abstractmethod
    def prepare(self) -> None:
        """Once, at the end of ``start``: build the finder, decider and writer."""

    @abstractmethod
    def plan_batch(self, records: list[dict[str, Any]]) -> Iterable[Plan]:
        """Find and decide (main thread): one plan per record, in record order; a rejected
        record's plan carries its ``rejection``. Each plan's write starts when it is yielded
        (a generator lets the batch's first writes run while the rest is decided); what a
        write changes that decisions read is changed under ``decisions``."""

    @abstractmethod
    def write(self, plan: Plan) -> None:
        """Carry out one plan (a pool thread); RecordRejected refuses the record."""

    def expected_total(self) -> int | None:
        """How many records the run may see (progress lines), once at its first batch."""
        return None

    def close_own(self) -> None:
        """Release what ``prepare`` opened."""

    # ------------------------------------------------------------------ start

    def start(self) -> None:
        """Check both accounts and open the ledger: at the first record, never before (a run
        that receives no record makes no API call). Nothing is written here."""
        if self.started:
            return
        year = None
        if self.factusol is not None:
            try:
                year = self.factusol.ejercicio  # "auto" logs in while it probes the year
                if self._fs_year != "auto":
                    self.factusol.query("SELECT TOP 1 CODCLI FROM F_CLI")  # logs in
            except FactusolError as exc:
                raise TargetStop(
                    f"{self.name}: cannot start: FactuSOL credentials/database "
                    f"({self._fs_label}) are not usable: {exc}"
                ) from None
        cl = self.clientify
        try:
            account_country = cl.account_country()  # also the credentials check
            account_zone = cl.account_time_zone()
            self._link_field_missing = not self._link_field_defined()
        except ClientifyAuthError as exc:
            raise TargetStop(
                f"{self.name}: Clientify API key rejected: {exc} Set "
                f"{self.clientify_prefix}api_key ({self.name.upper().replace('-', '_')}_"
                f"{self.clientify_prefix.upper()}API_KEY)."
            ) from None
        except ClientifyError as exc:
            raise TargetStop(
                f"{self.name}: cannot start: Clientify ({self.clientify_prefix}api_key at "
                f"{cl.api_url}) is not usable: {exc}"
            ) from None
        if self.settings.country:
            self.region = self.settings.country
        elif account_country:
            self.region = account_country
        else:
            self.log.warning(
                "Clientify account country unknown; normalizing phones as %s "
                "(set the `country` setting to choose)",
                DEFAULT_REGION,
            )
            self.region = DEFAULT_REGION
        try:
            self.tz = company_timezone(self.settings.timezone, account_zone)
        except ValueError as exc:
            raise TargetStop(f"{self.name}: bad setting: {exc}") from None
        try:
            self.ledger = open_ledger(self.settings.ledger_uri, scope=cl.account_fingerprint())
        except Exception as exc:  # SQLAlchemy: a ledger that cannot be opened stops the run
            raise TargetStop(
                f"{self.name}: cannot open the ledger (ledger_uri): {type(exc).__name__}"
            ) from None
        self.memory = RunMemory(
            self.ledger, run=self.memory.run, dry_run=self.dry_run, log=self.log
        )
        self.prepare()
        self.started = True
        self.log.info(
            "%s ready: link field %r, region %s (%s), time zone %s, ledger %s, FactuSOL %s%s",
            self.name,
            self.link_field,
            self.region,
            "setting" if self.settings.country else "account",
            self.tz.key,
            self.ledger if self.ledger is not None else "off",
            f"year {year}" if self.factusol is not None else "off",
            ", DRY RUN (nothing will be written)" if self.dry_run else "",
        )

    def _link_field_defined(self) -> bool:
        """Whether the contacts' link custom field exists (one read, no write)."""
        wanted = self.link_field
        names = [
            str(d.get("name", "")).strip() for d in self.clientify.list_contact_custom_fields()
        ]
        if wanted in names:
            return True
        other_case = [name for name in names if name.casefold() == wanted.casefold()]
        if other_case:
            self.log.warning(
                "custom field %r not found; using %r (same name, other case)",
                wanted,
                other_case[0],
            )
        return bool(other_case)

    def _prepare_link_field(self) -> None:
        """Create the missing link field: the run's only setup write, at its first batch with
        records and before any other write; a dry run plans it instead."""
        if not self._link_field_missing:
            return
        self._link_field_missing = False
        field = self.link_field
        if self.dry_run:
            self.log.info("DRY RUN: would create the contact custom field %r", field)
        else:
            try:
                self.clientify.ensure_custom_field(field)
            except ClientifyCustomFieldError as exc:
                self.stop(str(exc))
            except ClientifyError as exc:
                # The key has just read the account: a 403 here means it may not create
                # definitions (clientify_api reports it as an auth error).
                self.stop(
                    f"{self.name}: the contact custom field '{field}' is missing and could not "
                    f"be created ({exc}). Create a text custom field named '{field}' on "
                    "contacts by hand in Clientify (Settings > Custom fields), then run again."
                )
        self.plan_file.write(
            "create",
            field,
            reason=(
                f"contact custom field '{field}' (the link field) is missing: "
                "created before the first record is written"
            ),
        )

    # ------------------------------------------------------------------ records

    def admit(self, key: object, record: dict[str, Any]) -> RecordRejected | None:
        """Read the sink's marks: the reason to reject the record, or None. An unreadable
        date is kept as received, warned about, and read as unknown by the target."""
        invalid = record.pop(INVALID, None)
        missing = record.pop(MISSING_KEYS, None)
        bad_dates = record.pop(BAD_DATES, None) or []
        if missing:
            for name in missing:
                record.pop(name, None)  # set by the sink; the reject keeps the record as sent
            return RecordRejected(
                f"record has no {', '.join(missing)} (key property of stream "
                f"'{self.stream}'): nothing to sync it by"
            )
        if invalid:
            return RecordRejected(str(invalid))
        self.warn(key, [FieldIssue(n, "is not a valid date-time") for n in bad_dates], "unknown")
        return None

    def _progress_counts(self) -> dict[str, int]:
        """The outcomes so far, for the progress lines (records are logged at DEBUG)."""
        return {name: n for name, n in self.summary.counts.items() if n}

    def warn(self, key: object, issues: Sequence[FieldIssue], consequence: str) -> None:
        for issue in issues:
            self.summary.add("warnings")
            # Every one at WARNING, never capped: no file but the log says which field of which
            # customer was left out. Field and problem only: the value itself is personal data.
            self.log.warning(
                "%s %s: %s: %s (%s)", self.noun, key, issue.field, issue.problem, consequence
            )

    def decide(self, plan: Plan, decide: Callable[[], Plan]) -> Plan:
        """``decide()``, or ``plan`` rejected with the reason it raised. A systemic API error
        stops the run; a bug met by one record rejects that record only."""
        try:
            with self.decisions:
                return decide()
        except RecordRejected as exc:
            return self.rejected(plan, exc)
        except (ClientifyError, FactusolError):
            raise
        except Exception as exc:
            self.log.exception("%s %s: unexpected error while deciding", self.noun, plan.key)
            reason = f"internal error while deciding: {type(exc).__name__}"
            return self.rejected(plan, RecordRejected(reason))

    def rejected(self, plan: Plan, rejection: RecordRejected) -> Plan:
        """``plan`` refused while deciding (its lines are written with the batch's)."""
        plan.action, plan.rejection, plan.done = "reject", rejection, True
        self.progress.advance()
        return plan

    def _reject(self, plan: Plan) -> None:
        rejection = plan.rejection
        assert rejection is not None
        self.summary.add("rejected")
        self.lines.log(
            "reject",
            logging.ERROR,
            "%s %s rejected: %s",
            self.noun,
            plan.key,
            rejection.reason,
            where=f"every one is in {self.settings.reject_file}",
        )
        self.rejects.reject(
            self.stream,
            plan.record,
            reason=rejection.reason,
            key=plan.key,
            schema=self._schema,
            key_properties=self._keys,
            code=rejection.code,
            candidates=rejection.candidates,
        )
        self.plan_file.write(
            "reject",
            plan.key,
            target_id=plan.target_id,
            reason=rejection.reason,
            code=rejection.code,
            candidates=rejection.candidates or None,
        )

    # ------------------------------------------------------------------ one batch

    def process_batch(
        self,
        records: list[dict[str, Any]],
        *,
        stream: str,
        schema: Mapping[str, Any],
        key_properties: Sequence[str],
        received_at: float | None = None,
    ) -> None:
        """Find, decide, write one batch (deduplicated by key by the sink).

        The batch's last writes go on after this returns, while the SDK reads the next
        batch (1,000 records: ~0.2 s in which no write started, at each of the initial
        f2c's batch ends); :meth:`settle` waits for them before the next batch is decided,
        before any STATE is written and at the end of the run.
        """
        self.settle()  # the previous batch's writes: the decisions below read what they wrote
        self._schema, self._keys = schema, list(key_properties)
        self.rejects.register_schema(stream, schema, self._keys)
        self.received_at = received_at
        if not records:
            return
        with self._systemic_errors():
            self.start()
            self._prepare_link_field()
            if self.progress.total is None:
                self.progress.total = self.expected_total()
                self.progress.total_is_bound = True
            plans: list[Plan] = []
            writes = Writes(self._task, workers=self.settings.max_workers, name=self.name)
            try:
                for plan in self.plan_batch(records):
                    plans.append(plan)
                    if plan.rejection is None:
                        writes.submit(plan)
                    if writes.failed:
                        break  # what is not decided yet stays for the next run
            except BaseException:
                try:
                    writes.wait(cancel=True)  # an interrupt, an error: the writes in flight end
                finally:
                    self._emit(plans)
                raise
            self._unsettled = (writes, plans)
            if writes.failed:
                self.settle()  # stop now, not after the SDK has read the next batch

    def settle(self) -> None:
        """Wait for the last batch's writes and write their lines; a write that failed
        stops the run here (before any STATE)."""
        unsettled, self._unsettled = self._unsettled, None
        if unsettled is None:
            return
        writes, plans = unsettled
        with self._systemic_errors():
            try:
                writes.wait()  # raises a failed write's error
            finally:
                self._emit(plans)

    def _drop_unsettled(self) -> None:
        """A run stopping while a batch's writes go on: those started end, the others are
        dropped (they stay for the next run), and the lines of what was done are written."""
        unsettled, self._unsettled = self._unsettled, None
        if unsettled is None:
            return
        writes, plans = unsettled
        try:
            writes.wait(cancel=True)
            self._emit(plans)
        except Exception as exc:  # never hides why the run stops
            self.log.warning(
                "%s: lines of the last writes not written (%s)", self.name, type(exc).__name__
            )

    @contextmanager
    def _systemic_errors(self) -> Iterator[None]:
        """What escapes a batch stops the run, with the report saying why."""
        try:
            yield
        except TargetStop as exc:
            self.stop(str(exc))  # the report says why (once), every handle is released
        except (ClientifyError, FactusolError) as exc:
            # Record-level errors were handled per record: what reaches here is systemic
            # (auth, retries exhausted, an unexpected answer).
            self.stop(f"{self.name}: stopped: {exc}")
        except Exception as exc:
            # A bug: stop with the report written and every file and connection released.
            self.log.exception("%s: unexpected error", self.name)
            self.stop(f"{self.name}: stopped: {type(exc).__name__}: {exc}")

    def _task(self, plan: Plan) -> None:
        """One plan's write (a pool thread): written or refused, it is done."""
        try:
            self.write(plan)
        except RecordRejected as exc:
            plan.rejection = exc
        plan.done = True
        self.progress.advance()

    def _emit(self, plans: list[Plan]) -> None:
        """Plan and reject lines in record order; plans never started write nothing. The
        batch's history steps go to the ledger in one transaction, not one per record."""
        steps: list[HistoryEvent] = []
        for plan in plans:
            if not plan.done:
                continue
            for action, key, fields in plan.lines:
                self.plan_file.write(action, key, **fields)
            if plan.rejection is not None:
                self._reject(plan)
            elif plan.lines:
                steps.extend(history_of_plan(self.name, plan.lines))
        self.memory.record(steps)

    # ------------------------------------------------------------------ the end

    def api_calls(self) -> dict[str, int]:
        calls = {f"clientify_{k}": v for k, v in self.clientify.calls_snapshot().items()}
        if self.factusol is not None:
            calls.update({f"factusol_{k}": v for k, v in self.factusol.calls.items()})
        return calls

    def write_report(self, status: str) -> None:
        calls = self.api_calls()
        report = {
            **self.summary.as_dict(),
            "target": self.name,
            "api_calls": calls,
            "counts": {**self.summary.counts, "api_calls": sum(calls.values())},
            "status": status,
            "error": self.failure,
            "dry_run": self.dry_run,
            "records_received": self.records_in,
            "region": self.region,
            "timezone": self.tz.key,
            "retries": self.clientify.retries,
            "started_at": self.started_at.isoformat(),
            "finished_at": dt.datetime.now(dt.UTC).isoformat(),
        }
        path = self.settings.report_file
        write_private_text(path, json.dumps(report, indent=2, sort_keys=True) + "\n")
        append_history(path, report)

    def _end(self, status: str) -> None:
        self.finished = True
        try:
            self.write_report(status)
            output = self.settings.report_file.parent.parent
            try:  # the people's view of the last runs; a view only: never fails the run
                page = self.memory.render_page(output, self.tz.key)
                self.log.info("report page: %s", page)
            except Exception as exc:
                self.log.warning("report page not written: %s", type(exc).__name__)
            self._retention(output)
            self.summary.add_api_calls(self.api_calls())
            line = ("DRY RUN " if self.dry_run else "") + self.summary.line(self.direction)
            self.log.log(logging.ERROR if self.failure else logging.INFO, "%s", line)
        finally:
            self.close()

    def _retention(self, output: Path) -> None:
        report = self.settings.report_file
        files = [self.settings.plan_file, self.settings.reject_file, report, output / "report.html"]
        files.append(report.with_name(f"{report.stem}.history.jsonl"))
        days = self.settings.retention_days
        try:
            deleted, trimmed, dropped = self.memory.prune(files, days=days, page_dir=output)
        except Exception as exc:  # retention runs again next time; it never fails a run
            self.log.warning("retention not applied: %s", type(exc).__name__)
            return
        if deleted or trimmed or dropped:
            self.log.info(
                "retention (%d days): %d files deleted, %d lines and %d history rows dropped",
                days,
                deleted,
                trimmed,
                dropped,
            )

    def stop(self, message: str) -> NoReturn:
        """A systemic failure: report it, release everything, stop the run (no STATE)."""
        if not self.finished:
            self.failure = message
            self._drop_unsettled()
            self._end("failed")
        raise TargetStop(message)

    def finish(self) -> None:
        """End of input: report, summary line, and the reject-ratio verdict."""
        if self.finished:
            return
        self.settle()
        self._complete_index()  # rejected records leave the cache as sound as any
        summary, limit = self.summary, self.settings.max_reject_ratio
        if summary.processed and summary.reject_ratio > limit:
            self.stop(
                f"{self.name}: {summary.rejected} of {summary.processed} records rejected "
                f"({summary.reject_ratio:.0%}), more than max_reject_percent {limit:.0%}; "
                f"reasons in {self.settings.reject_file}"
            )
        self._end("dry_run" if self.dry_run else "ok")

    def close(self) -> None:
        """Release every file and connection (also of a run that stopped while starting)."""
        self._drop_unsettled()
        with self._lock:
            for index in (self._census, self._streamed, self._index):
                if index is not None:
                    index.close()  # a cache file keeps what this run wrote
            self._census = self._streamed = self._index = None
            self._stream_check = None  # a stopped run: the sync state stays as it was
            self.claims.close()
        self.close_own()
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None
        self.plan_file.close()
        self.rejects.close()
        self.job.release()
        if self.factusol is not None:
            self.factusol.close()
        self.clientify.close()
