"""One target-clientify run: the clients, the contact index, the ledger, the counters, and each
batch's find → decide → write.

1. **Find**: the contact index (one paged scan, or the cache file's changes since the last run),
   the ledger entries of the batch, and the FactuSOL key census for first-run matching.
2. **Decide** (decide.py, main thread, record order): update / link / create / reject.
3. **Write** (write.py, ``max_workers`` threads under the rate limiter).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from clientify_api import (
    ClientifyAuthError,
    ClientifyClient,
    ClientifyCustomFieldError,
    ClientifyError,
    ContactIndex,
    PageInfo,
)
from customer_sync import (
    AMBIGUOUS_POLICIES,
    TEXT_FIELDS,
    ConflictPolicy,
    FieldIssue,
    KeyIndex,
    PlanWriter,
    ProgressMeter,
    RecordRejected,
    RejectWriter,
    RunSummary,
    append_history,
    company_timezone,
    customer_from_client,
    link_code,
    write_private_text,
)
from factusol_api import FactusolClient, FactusolCredentials, FactusolError
from sync_ledger import LedgerEntry, SyncLedger, open_ledger
from sync_report import render_report_page

from target_clientify.decide import Decider, Plan
from target_clientify.records import (
    BAD_DATES,
    DEFAULT_REGION,
    FATAL_ERRORS,
    MATCH_KEYS,
    MISSING_KEYS,
    TargetClientifyError,
)
from target_clientify.write import Writer

DEFAULT_TIMEZONE = "Europe/Madrid"
PROGRESS_SECONDS = 30.0
MATCH_SCAN_PAGE_SIZE = 5000  # rows of CODCLI, NIFCLI, EMACLI per call (about 400 kB)
FACTUSOL_SETTINGS = ("codigo_fabricante", "codigo_cliente", "base_datos", "password")


class ClientifyRun:
    """Everything one target run shares: clients, region, contact index, writers, counters."""

    def __init__(self, config: Mapping[str, Any], logger: logging.Logger) -> None:
        self.config = config
        self.logger = logger
        self.link_field = str(config.get("link_field") or "factusol_id").strip()
        self.tag = str(config.get("tag") or "").strip() or None
        self.match_fallback = [str(k) for k in config.get("match_fallback", list(MATCH_KEYS))]
        unknown = [k for k in self.match_fallback if k not in MATCH_KEYS]
        if unknown:
            raise TargetClientifyError(f"match_fallback accepts {list(MATCH_KEYS)}; got {unknown}")
        self.ambiguous_match = str(config.get("ambiguous_match") or "reject")
        if self.ambiguous_match not in AMBIGUOUS_POLICIES:
            raise TargetClientifyError(f"ambiguous_match must be one of {list(AMBIGUOUS_POLICIES)}")
        authority = dict(config.get("field_authority") or {})
        bad_fields = sorted(set(authority) - set(TEXT_FIELDS))
        if bad_fields:
            raise TargetClientifyError(
                f"field_authority names unknown fields {bad_fields}; use any of {list(TEXT_FIELDS)}"
            )
        try:
            self.policy = ConflictPolicy(
                default=str(config.get("conflict_policy") or "newest"),
                field_authority=authority,
            )
        except ValueError as exc:
            raise TargetClientifyError(f"conflict_policy/field_authority: {exc}") from None
        self.dry_run = bool(config.get("dry_run", False))
        self.max_reject_ratio = int(config.get("max_reject_percent", 20)) / 100
        self.max_workers = max(1, int(config.get("max_workers", 8)))
        self.report_path = Path(config.get("report_file") or "output/reports/target-clientify.json")
        plan_path = Path(config.get("plan_file") or "output/plans/target-clientify.jsonl")
        reject_path = Path(config.get("reject_file") or "output/rejects/target-clientify.jsonl")
        try:
            self.client = ClientifyClient(
                api_key=str(config.get("api_key") or ""),
                api_url=str(config.get("api_url") or "https://api.clientify.net/v1"),
                rate_limit=float(config.get("rate_limit", 5)),
                timeout=float(config.get("timeout", 30)),
                max_retries=int(config.get("max_retries", 6)),
            )
            self.factusol = self._factusol_client()
        except ValueError as exc:
            raise TargetClientifyError(f"bad setting: {exc}") from None
        # The plan describes this run only; the reject file accumulates (a dead-letter file).
        self.plan = PlanWriter(plan_path)
        self.plan.truncate()
        self.rejects = RejectWriter(reject_path)
        self.reject_path = reject_path
        self.summary = RunSummary()
        self.region = DEFAULT_REGION
        self.tz = ZoneInfo(DEFAULT_TIMEZONE)
        self.ledger: SyncLedger | None = None
        self._index: ContactIndex | None = None
        self._index_lock = threading.Lock()
        self._census: KeyIndex | None = None
        self._census_lock = threading.Lock()
        # Without FactuSOL settings, the census is the clients streamed so far in this run.
        self._streamed = KeyIndex()
        self.failure: str | None = None
        self._write_failed = threading.Event()
        self._link_field_missing = False  # known after start()
        self.progress = ProgressMeter(logger, noun="clients", interval=PROGRESS_SECONDS)
        self.decider: Decider
        self.writer: Writer
        self._stream = "clients"
        self._schema: Mapping[str, Any] = {}
        self._keys: list[str] = ["code"]

    def _factusol_client(self) -> FactusolClient | None:
        """FactuSOL, read only, for the census of first-run matching (optional)."""
        given = {name: str(self.config.get(f"factusol_{name}") or "") for name in FACTUSOL_SETTINGS}
        if not any(given.values()):
            return None
        missing = [f"factusol_{name}" for name, value in given.items() if not value]
        if missing:
            raise ValueError(f"set all FactuSOL settings or none; missing {missing}")
        return FactusolClient(
            FactusolCredentials(**given),
            api_url=str(self.config.get("factusol_api_url") or "https://api.sdelsol.com"),
            ejercicio=str(self.config.get("factusol_ejercicio") or "auto"),
            timeout=float(self.config.get("timeout", 30)),
            max_retries=int(self.config.get("max_retries", 6)),
        )

    # ------------------------------------------------------------------ start and end

    def start(self) -> None:
        """Once per run, before any data moves: credentials, region, zone, link field, ledger.

        Nothing is written here: the tap may still fail on its own credentials after its SCHEMA.
        A missing link field is created at the first batch with records (`_prepare_link_field`).
        """
        try:
            account_country = self.client.account_country()  # also the credentials check
            account_zone = self.client.account_time_zone()
            self._link_field_missing = not self._link_field_defined()
        except ClientifyAuthError as exc:
            raise TargetClientifyError(
                f"Clientify API key rejected: {exc} Set api_key (TARGET_CLIENTIFY_API_KEY)."
            ) from None
        except ClientifyError as exc:
            raise TargetClientifyError(f"Clientify is not usable: {exc}") from None
        if self.factusol is not None:
            try:
                _year = self.factusol.ejercicio  # logs in while it resolves the year
            except FactusolError as exc:
                raise TargetClientifyError(
                    "FactuSOL (factusol_* settings, read for first-run matching) is not usable: "
                    f"{exc}"
                ) from None
        configured = str(self.config.get("country") or "").strip().upper()
        if configured:
            if len(configured) != 2 or not configured.isalpha():
                raise TargetClientifyError(
                    f"country must be an ISO alpha-2 code such as ES; got {configured!r}"
                )
            self.region = configured
        elif account_country:
            self.region = account_country
        else:
            self.logger.warning(
                "Clientify account country unknown; normalizing phones as %s "
                "(set the `country` setting to choose)",
                DEFAULT_REGION,
            )
            self.region = DEFAULT_REGION
        try:
            self.tz = company_timezone(self.config.get("timezone"), account_zone)
        except ValueError as exc:
            raise TargetClientifyError(str(exc)) from None
        self.ledger = self._open_ledger()
        self.decider = Decider(
            link_field=self.link_field,
            match_keys=self.match_fallback,
            ambiguous_match=self.ambiguous_match,
            policy=self.policy,
            region=self.region,
            tz=self.tz,
            factusol_census=self.census,
        )
        self.writer = Writer(
            client=self.client,
            decider=self.decider,
            index=self.index,
            ledger=self.ledger,
            summary=self.summary,
            plan_file=self.plan,
            link_field=self.link_field,
            tag=self.tag,
            region=self.region,
            dry_run=self.dry_run,
            logger=self.logger,
            reject=self._reject,
            warn=self._warn,
        )
        self.logger.info(
            "Clientify ready: link field %r, region %s, time zone %s, ledger %s, FactuSOL "
            "census %s%s",
            self.link_field,
            self.region,
            self.tz.key,
            self.ledger if self.ledger is not None else "off",
            "on" if self.factusol is not None else "off (the clients streamed in this run)",
            ", DRY RUN (nothing will be written)" if self.dry_run else "",
        )

    def _open_ledger(self) -> SyncLedger | None:
        try:
            return open_ledger(
                self.config.get("ledger_uri"), scope=self.client.account_fingerprint()
            )
        except Exception as exc:  # SQLAlchemy: a ledger that cannot be opened stops the run
            raise TargetClientifyError(
                f"cannot open the ledger (ledger_uri): {type(exc).__name__}"
            ) from None

    def _link_field_defined(self) -> bool:
        """Whether the contacts' link custom field exists (one read, no write)."""
        wanted = self.link_field.casefold()
        names = [str(d.get("name", "")).strip() for d in self.client.list_contact_custom_fields()]
        if self.link_field in names:
            return True
        other_case = [name for name in names if name.casefold() == wanted]
        if other_case:
            self.logger.warning(
                "custom field %r not found; using %r (same name, other case)",
                self.link_field,
                other_case[0],
            )
        return bool(other_case)

    def _prepare_link_field(self) -> None:
        """Create the missing link field: the run's only setup write, at its first batch with
        records (so a tap that fails on its credentials after its SCHEMA leaves no write
        behind); a dry run plans it instead."""
        if not self._link_field_missing:
            return
        self._link_field_missing = False
        reason = (
            f"contact custom field '{self.link_field}' (the link field) is missing: "
            "created before the first record is written"
        )
        if self.dry_run:
            self.logger.info("DRY RUN: would create the contact custom field %r", self.link_field)
        else:
            try:
                self.client.ensure_custom_field(self.link_field)
            except ClientifyCustomFieldError as exc:
                self._stop(str(exc))
            except ClientifyAuthError as exc:
                # clientify_api turns a 403 on POST /custom-fields/ into an auth error, but the
                # key has just read the account: the user may not create definitions. Same
                # remedy as ClientifyCustomFieldError (reported upstream).
                if exc.method != "POST" or exc.status != 403:
                    raise
                self._stop(
                    f"Could not create the contact custom field '{self.link_field}' ({exc}). "
                    f"Create a text custom field named '{self.link_field}' on contacts by hand "
                    "in Clientify (Settings > Custom fields), then run again."
                )
        self.plan.write("create", self.link_field, reason=reason)

    def counts(self) -> dict[str, int]:
        calls = self.client.calls_snapshot()
        return {**self.summary.counts, "api_calls": sum(calls.values())}

    def finish(self, *, check_ratio: bool = True) -> None:
        """Report and summary line; raise when too many records were rejected."""
        with self._index_lock:
            if self._index is not None:
                self._index.close()  # a cache file keeps what this run wrote
                self._index = None
        if check_ratio and self.failure is None:
            summary = self.summary
            if summary.processed and summary.reject_ratio > self.max_reject_ratio:
                self.failure = (
                    f"target-clientify: {summary.rejected} of {summary.processed} records "
                    f"rejected ({summary.reject_ratio:.0%}), more than max_reject_percent "
                    f"{self.max_reject_ratio:.0%}; reasons in {self.reject_path}"
                )
        self.write_report()
        self.close()
        try:
            page = render_report_page(self.report_path.parent.parent, timezone=self.tz.key)
            self.logger.info("report page: %s", page)
        except Exception as exc:  # a view only: the run is not failed for it
            self.logger.warning("report page not written: %s", type(exc).__name__)
        counts = self.counts()
        calls = self.client.calls_snapshot()
        self.logger.info(
            "target-clientify%s: %d created, %d linked, %d updated, %d unchanged, %d rejected, "
            "%d conflicts, %d warnings; %d API calls (%s)",
            " (dry run)" if self.dry_run else "",
            counts["created"],
            counts["linked"],
            counts["updated"],
            counts["unchanged"],
            counts["rejected"],
            counts["conflicts"],
            counts["warnings"],
            counts["api_calls"],
            ", ".join(f"{k}={v}" for k, v in sorted(calls.items())) or "none",
        )
        if self.failure:
            raise TargetClientifyError(self.failure)

    def close(self) -> None:
        """Release every file and connection (also of a run that stopped while starting)."""
        with self._census_lock:
            if self._census is not None:
                self._census.close()
                self._census = None
        self._streamed.close()
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None
        if hasattr(self, "decider"):
            self.decider.close()
        if self.factusol is not None:
            self.factusol.close()
        self.plan.close()
        self.rejects.close()

    def write_report(self) -> None:
        calls = self.client.calls_snapshot()
        if self.factusol is not None:
            calls.update({f"factusol_{k}": v for k, v in self.factusol.calls.items()})
        report = {
            **self.summary.as_dict(),
            "target": "target-clientify",
            "api_calls": calls,
            "counts": self.counts(),
            "dry_run": self.dry_run,
            "region": self.region,
            "timezone": self.tz.key,
            "status": "failed" if self.failure else ("dry_run" if self.dry_run else "ok"),
            "error": self.failure,
            "retries": self.client.retries,
            "finished_at": datetime.now(UTC).isoformat(),
        }
        write_private_text(self.report_path, json.dumps(report, indent=2, sort_keys=True) + "\n")
        append_history(self.report_path, report)

    # ------------------------------------------------------------------ find

    def index(self) -> ContactIndex:
        """One paged scan of the account per run, on the first batch; kept current after."""
        with self._index_lock:
            if self._index is None:

                def progress(page: PageInfo) -> None:
                    if page.page % 20 == 0:
                        self.logger.info("indexing contacts: %d pages read", page.page)

                cache = str(self.config.get("index_cache_file") or "").strip() or None
                rescan = timedelta(hours=int(self.config.get("index_rescan_hours", 168)))
                self.logger.info(
                    "indexing Clientify contacts (%s)",
                    f"cache {cache}" if cache else "one paged scan",
                )
                self._index = self.client.load_contact_index(
                    field=self.link_field, cache=cache, rescan_after=rescan, on_page=progress
                )
                self.logger.info("indexed %d Clientify contacts", len(self._index))
            return self._index

    def census(self) -> KeyIndex:
        """FactuSOL's clients by NIF / e-mail identity: how many share a key.

        With the factusol_* settings: one keyset scan of three columns, at the first client
        without a linked contact. Without: the clients streamed so far in this run (all of
        them by the end of a full run's first batches; a modified run sees fewer).
        """
        if self.factusol is None:
            return self._streamed
        with self._census_lock:
            if self._census is None:
                census = KeyIndex()
                columns = ["CODCLI", "NIFCLI", "EMACLI"]
                rows = 0
                for row in self.factusol.iter_clients(
                    columns=columns, page_size=MATCH_SCAN_PAGE_SIZE
                ):
                    census.add(
                        int(row["CODCLI"]), nif=row.get("NIFCLI"), emails=[row.get("EMACLI")]
                    )
                    rows += 1
                self._census = census
                self.logger.info("FactuSOL census: %d clients scanned", rows)
            return self._census

    # ------------------------------------------------------------------ one batch

    def process_batch(
        self,
        records: Sequence[dict[str, Any]],
        *,
        stream: str,
        schema: Mapping[str, Any],
        key_properties: Sequence[str],
    ) -> None:
        """Plan every record, then apply the plans concurrently; fatal errors stop the run."""
        self._stream, self._schema, self._keys = stream, schema, list(key_properties)
        try:
            if records:
                self._prepare_link_field()
            index = self.index()
            if self.progress.total is None and self.factusol is not None:
                self.progress.total = self._factusol_count()
                self.progress.total_is_bound = True
            if self.factusol is None:  # the census is what the run has streamed
                for record in records:
                    if isinstance(record.get("code"), int):
                        self._streamed.add(
                            record["code"], nif=record.get("nif"), emails=[record.get("email")]
                        )
            codes = [c for r in records if (c := link_code(r.get("code"))) is not None]
            entries: dict[int, LedgerEntry] = (
                self.ledger.get_many(codes) if self.ledger is not None and codes else {}
            )
            # Each plan is handed to the writers as soon as it is decided: deciding the next
            # records overlaps the writes (which wait on Clientify's rate limit).
            with ThreadPoolExecutor(
                max_workers=self.max_workers, thread_name_prefix="clientify-writer"
            ) as pool:
                futures: list[Future[None]] = []
                for record in records:
                    plan = self._plan(record, index, entries)
                    if plan.action != "reject":
                        futures.append(pool.submit(self._apply, plan))
                    if self._write_failed.is_set():
                        break  # a systemic failure in a writer: decide no more
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                failed = next((f for f in done if f.exception() is not None), None)
                if failed is not None:
                    for future in futures:
                        future.cancel()  # records not started stay unwritten
                    failed.result()
        except FATAL_ERRORS as exc:
            self._stop(f"target-clientify stopped: {exc}")
        except ClientifyError as exc:
            self._stop(f"target-clientify stopped: unexpected Clientify answer: {exc}")
        except FactusolError as exc:
            self._stop(f"target-clientify stopped: FactuSOL census: {exc}")
        except TargetClientifyError:
            raise
        except Exception as exc:
            # A bug: stop with the report written and every file and connection released.
            self.logger.exception("target-clientify: unexpected error")
            self._stop(f"target-clientify stopped: {type(exc).__name__}: {exc}")

    def _factusol_count(self) -> int | None:
        assert self.factusol is not None
        try:
            rows = self.factusol.query("SELECT COUNT(CODCLI) AS N FROM F_CLI")
            return int(rows[0]["N"]) if rows else None
        except (FactusolError, KeyError, TypeError, ValueError):
            return None  # progress without a total

    def _apply(self, plan: Plan) -> None:
        try:
            self.writer.apply(plan)
        except BaseException:
            self._write_failed.set()
            raise
        self.progress.advance()

    def _stop(self, message: str) -> None:
        self.failure = message
        self.finish(check_ratio=False)  # raises TargetClientifyError(message)

    def _plan(
        self, record: dict[str, Any], index: ContactIndex, entries: Mapping[int, LedgerEntry]
    ) -> Plan:
        missing = record.pop(MISSING_KEYS, None)
        bad_dates = record.pop(BAD_DATES, None) or []
        if missing:
            for key in missing:
                record.pop(key, None)  # filled in by the sink; the reject keeps the record as sent
            return self._rejected(
                Plan(None, record, "reject"),
                RecordRejected(
                    f"record has no {', '.join(missing)} (key property of stream "
                    f"'{self._stream}'): no client code to sync it by"
                ),
            )
        code = record.get("code")
        # An unparseable date-time is kept as received and read as unknown: it loses every
        # conflict decided on dates.
        self._warn(
            code,
            [FieldIssue(key, "is not a valid date-time") for key in bad_dates],
            "treated as unknown",
        )
        try:
            desired, issues = customer_from_client(record, region=self.region)
        except Exception as exc:  # a mapping bug must not stop the other records
            return self._rejected(
                Plan(code, record, "reject"), RecordRejected(f"mapping failed: {exc}")
            )
        if desired.factusol_id is None:
            problem = next((str(i) for i in issues if i.field == "factusol_id"), "code missing")
            return self._rejected(
                Plan(code, record, "reject"), RecordRejected(f"no usable client code ({problem})")
            )
        self._warn(code, [i for i in issues if i.field != "factusol_id"], "synced without it")
        try:
            return self.decider.plan(code, record, desired, index, entries, issues)
        except RecordRejected as exc:
            return self._rejected(Plan(code, record, "reject", desired=desired), exc)
        except (ClientifyError, FactusolError):
            raise  # systemic: stops the run
        except Exception as exc:  # a bug met by one record must not stop the others
            self.logger.exception("client %s: unexpected error while deciding", code)
            return self._rejected(
                Plan(code, record, "reject", desired=desired),
                RecordRejected(f"internal error while deciding: {type(exc).__name__}"),
            )

    # ------------------------------------------------------------------ rejects and warnings

    def _rejected(self, plan: Plan, rejection: RecordRejected) -> Plan:
        plan.action, plan.reason, plan.rejection = "reject", rejection.reason, rejection
        self._reject(plan, rejection)
        self.progress.advance()
        return plan

    def _reject(self, plan: Plan, rejection: RecordRejected) -> None:
        self.summary.add("rejected")
        self.logger.error("client %s rejected: %s", plan.code, rejection.reason)
        self.rejects.reject(
            self._stream,
            plan.record,
            reason=rejection.reason,
            key=plan.code,
            schema=self._schema,
            key_properties=self._keys,
            code=rejection.code,
            candidates=rejection.candidates,
        )
        self.plan.write(
            "reject",
            plan.code,
            reason=rejection.reason,
            code=rejection.code,
            candidates=rejection.candidates or None,
        )

    def _warn(self, code: object, issues: Sequence[FieldIssue], consequence: str) -> None:
        for issue in issues:
            self.summary.add("warnings")
            # field and problem only: the value itself is personal data
            self.logger.warning(
                "client %s: %s %s; %s", code, issue.field, issue.problem, consequence
            )
