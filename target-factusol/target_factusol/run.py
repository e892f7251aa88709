"""One target-factusol run: the API clients, the ledger, the counters, and each batch's
find → decide → write.

1. **Find** (find.py): read the contacts and what both systems hold about them.
2. **Decide** (decide.py, main thread, record order): update / link / create / reject, with
   customer_sync's matching rule and three-way merge.
3. **Write** (write.py, ``max_workers`` threads): the writes, and the ledger after each one.

Plan and reject lines are written by the main thread in record order once the batch is written,
so a dry run's plan equals the real one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from clientify_api import ClientifyClient, ClientifyError
from customer_sync import (
    AMBIGUOUS_POLICIES,
    ConflictPolicy,
    PlanWriter,
    ProgressMeter,
    RecordRejected,
    RejectWriter,
    RunSummary,
    append_history,
    write_private_text,
)
from factusol_api import FactusolClient, FactusolCredentials, FactusolError
from sync_ledger import LedgerEntry, SyncLedger
from sync_report import render_report_page

from target_factusol.codes import CodeAllocator
from target_factusol.decide import Decider, Plan
from target_factusol.errors import FatalRunError
from target_factusol.find import Finder, Item, is_id
from target_factusol.write import Writer

DEFAULT_TIMEZONE = "Europe/Madrid"
DEFAULT_LEDGER = "output/ledger/sync-ledger.sqlite"
PROGRESS_SECONDS = 30.0


def _max_workers(config: Mapping[str, Any]) -> int:
    workers = config.get("max_workers", 8)
    if not is_id(workers) or workers < 1:
        raise ValueError(f"max_workers must be an integer >= 1, got {workers!r}")
    return int(workers)


def _link_field_defined(client: ClientifyClient, name: str, logger: logging.Logger) -> bool:
    """Whether the contacts' link custom field exists (one read, no write)."""
    names = [str(d.get("name", "")).strip() for d in client.list_contact_custom_fields()]
    if name in names:
        return True
    other_case = [found for found in names if found.casefold() == name.casefold()]
    if other_case:
        logger.warning(
            "custom field %r not found; using %r (same name, other case)", name, other_case[0]
        )
    return bool(other_case)


def write_report_page(report_path: Path, timezone: str, logger: logging.Logger) -> None:
    """The people's view of the last runs (output/report.html next to the reports folder).
    A view only: if it cannot be written, the run is not failed for it."""
    try:
        page = render_report_page(report_path.parent.parent, timezone=timezone)
    except Exception as exc:
        logger.warning("report page not written: %s", type(exc).__name__)
        return
    logger.info("report page: %s", page)


def resolve_timezone(setting: object, account_zone: str | None) -> ZoneInfo:
    """The company's zone: the ``timezone`` setting, else the Clientify account's, else Madrid."""
    name = str(setting or "").strip() or account_zone or DEFAULT_TIMEZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone {name[:40]!r} is not an IANA time zone name") from None


def open_ledger(setting: object, clientify: ClientifyClient) -> SyncLedger | None:
    """The ledger at ``ledger_uri`` (a URL or a SQLite path; empty: no ledger), scoped to the
    Clientify account."""
    value = DEFAULT_LEDGER if setting is None else str(setting).strip()
    if not value:
        return None
    return SyncLedger(value, scope=clientify.account_fingerprint())


class SyncRun:
    """Everything one run shares across batches and sinks."""

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        factusol: FactusolClient,
        clientify: ClientifyClient,
        region: str,
        tz: ZoneInfo,
        ledger: SyncLedger | None,
        logger: logging.Logger,
    ) -> None:
        self.config = config
        self.fs = factusol
        self.cl = clientify
        self.region = region
        self.tz = tz
        self.ledger = ledger
        self.log = logger
        self.dry_run = bool(config.get("dry_run", False))
        self.link_field = str(config.get("link_field") or "factusol_id")
        fallback = config.get("match_fallback")
        match_keys: list[str] = list(["nif", "email"] if fallback is None else fallback)
        ambiguous = str(config.get("ambiguous_match") or "reject")
        if ambiguous not in AMBIGUOUS_POLICIES:
            raise ValueError(f"ambiguous_match must be one of {list(AMBIGUOUS_POLICIES)}")
        self.max_reject_ratio = int(config.get("max_reject_percent", 20)) / 100
        self.summary = RunSummary()
        plan_path = Path(str(config.get("plan_file") or "output/plans/target-factusol.jsonl"))
        self.plan = PlanWriter(plan_path)
        self.plan.truncate()  # the plan describes this run only
        self.rejects = RejectWriter(
            str(config.get("reject_file") or "output/rejects/target-factusol.jsonl")
        )
        self.report_path = Path(
            str(config.get("report_file") or "output/reports/target-factusol.json")
        )
        self.started_at = dt.datetime.now(dt.UTC)
        self.records_in = 0
        self.open_sinks = 0
        self.finished = False
        self.link_field_missing = False  # set by start()
        self.finder = Finder(
            factusol=factusol,
            clientify=clientify,
            config=config,
            region=region,
            link_field=self.link_field,
            match_keys=match_keys,
            logger=logger,
        )
        self.codes = CodeAllocator(factusol.max_client_code)
        self.decider = Decider(
            self.finder,
            self.codes,
            region=region,
            tz=tz,
            policy=ConflictPolicy(
                default=str(config.get("conflict_policy") or "newest"),
                field_authority=dict(config.get("field_authority") or {}),
            ),
            link_field=self.link_field,
            missing_client=str(config.get("missing_client") or "reject"),
            ambiguous_match=ambiguous,
        )
        self.progress = ProgressMeter(logger, noun="contacts", interval=PROGRESS_SECONDS)
        self.writer = Writer(
            factusol=factusol,
            clientify=clientify,
            finder=self.finder,
            codes=self.codes,
            ledger=ledger,
            summary=self.summary,
            region=region,
            tz=tz,
            link_field=self.link_field,
            tag=str(config.get("tag", "factusol") or "").strip(),
            dry_run=self.dry_run,
            max_workers=_max_workers(config),
            logger=logger,
            on_done=self.progress.advance,
        )
        self._stream = "contacts"

    # ------------------------------------------------------------------ start / finish

    @classmethod
    def start(cls, config: Mapping[str, Any], *, logger: logging.Logger) -> SyncRun:
        """Build the clients and check both credential sets before any data moves."""
        timeout = float(config.get("timeout", 30))
        retries = int(config.get("max_retries", 5))
        creds = FactusolCredentials(
            codigo_fabricante=str(config["codigo_fabricante"]),
            codigo_cliente=str(config["codigo_cliente"]),
            base_datos=str(config["base_datos"]),
            password=str(config["password"]),
        )
        try:
            workers = _max_workers(config)
            # One Session shared by the writer threads (tokens are renewed under the client's
            # lock); its pool must hold a connection per worker or urllib3 discards them.
            session = requests.Session()
            adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=workers + 1)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            factusol = FactusolClient(
                creds,
                api_url=str(config.get("api_url") or "https://api.sdelsol.com"),
                ejercicio=str(config.get("ejercicio") or "auto"),
                timeout=timeout,
                max_retries=retries,
                session=session,
            )
            clientify = ClientifyClient(
                str(config["clientify_api_key"]),
                str(config.get("clientify_api_url") or "https://api.clientify.net/v1"),
                rate_limit=float(config.get("clientify_rate_limit", 5)),
                timeout=timeout,
                max_retries=retries,
            )
        except ValueError as exc:
            raise FatalRunError(f"target-factusol: bad setting: {exc}") from None
        try:
            year = factusol.ejercicio  # "auto" logs in while it probes the year
            if str(config.get("ejercicio") or "auto").lower() != "auto":
                # factusol_api has no public login check: one tiny query logs in.
                factusol.query("SELECT TOP 1 CODCLI FROM F_CLI")
        except FactusolError as exc:
            raise FatalRunError(
                f"target-factusol: cannot start: FactuSOL credentials/database "
                f"({creds.describe()}): {exc}"
            ) from None
        link_field = str(config.get("link_field") or "factusol_id")
        try:
            country = clientify.account_country()
            account_zone = clientify.account_time_zone()
            # Read only: nothing is written at start, the tap sends its SCHEMA before it has
            # proven its own credentials. A missing field is created at the first batch.
            link_field_missing = not _link_field_defined(clientify, link_field, logger)
        except ClientifyError as exc:
            raise FatalRunError(
                f"target-factusol: cannot start: Clientify (clientify_api_key at "
                f"{clientify.api_url}): {exc}"
            ) from None
        region = country or str(config.get("country") or "ES").upper()
        try:
            tz = resolve_timezone(config.get("timezone"), account_zone)
            ledger = open_ledger(config.get("ledger_uri"), clientify)
        except ValueError as exc:
            raise FatalRunError(f"target-factusol: bad setting: {exc}") from None
        except Exception as exc:  # SQLAlchemy: a ledger that cannot be opened stops the run
            raise FatalRunError(
                f"target-factusol: cannot open the ledger (ledger_uri): {type(exc).__name__}"
            ) from None
        logger.info(
            "target-factusol: FactuSOL %s ejercicio %s; Clientify region %s (%s); time zone "
            "%s; ledger %s%s",
            creds.base_datos,
            year,
            region,
            "account country" if country else "country setting",
            tz.key,
            ledger if ledger is not None else "off",
            "; DRY RUN: nothing will be written" if config.get("dry_run") else "",
        )
        try:
            run = cls(
                config,
                factusol=factusol,
                clientify=clientify,
                region=region,
                tz=tz,
                ledger=ledger,
                logger=logger,
            )
        except ValueError as exc:
            raise FatalRunError(f"target-factusol: bad setting: {exc}") from None
        run.link_field_missing = link_field_missing
        return run

    def _prepare_link_field(self) -> None:
        """Create the missing link field: the run's only setup write, at its first batch with
        records and before any FactuSOL write (a client we could not link back would be
        orphaned). A dry run plans it instead."""
        if not self.link_field_missing:
            return
        self.link_field_missing = False
        if self.dry_run:
            self.log.info("DRY RUN: would create the contact custom field %r", self.link_field)
        else:
            try:
                self.cl.ensure_custom_field(self.link_field)
            except ClientifyError as exc:
                # The key works (account_country answered), so a 403 here means the account
                # may not create definitions; clientify_api reports it as an auth error.
                raise self.fail(
                    f"target-factusol: the contact custom field '{self.link_field}' is missing "
                    f"and could not be created ({exc}). Create a text custom field named "
                    f"'{self.link_field}' on contacts by hand in Clientify, then run again."
                ) from None
        self.plan.write(
            "create",
            self.link_field,
            reason=(
                f"contact custom field '{self.link_field}' (the link field) is missing: "
                "created before the first record is written"
            ),
        )

    def api_calls(self) -> dict[str, int]:
        calls = {f"factusol_{k}": v for k, v in self.fs.calls.items()}
        calls.update({f"clientify_{k}": v for k, v in self.cl.calls_snapshot().items()})
        return calls

    def write_report(self, status: str, error: str | None = None) -> None:
        report = self.summary.as_dict()
        report.update(
            {
                "target": "target-factusol",
                "counts": self.summary.counts,
                "api_calls": self.api_calls(),
                "status": status,
                "error": error,
                "dry_run": self.dry_run,
                "records_received": self.records_in,
                "region": self.region,
                "timezone": self.tz.key,
                "started_at": self.started_at.isoformat(),
                "finished_at": dt.datetime.now(dt.UTC).isoformat(),
            }
        )
        write_private_text(self.report_path, json.dumps(report, indent=2, sort_keys=True) + "\n")
        append_history(self.report_path, report)

    def fail(self, message: str) -> FatalRunError:
        """Write the report of a failed run and return the error to raise."""
        if not self.finished:
            self.finished = True
            self.write_report("failed", message)
            write_report_page(self.report_path, self.tz.key, self.log)
            self.log.error("%s", self._summary_line())
            self._close()
        return FatalRunError(message)

    def finish(self) -> None:
        """End of input: report, summary line, and the reject-ratio verdict."""
        if self.finished:
            return
        ratio = self.summary.reject_ratio
        if ratio > self.max_reject_ratio:
            raise self.fail(
                f"target-factusol: {self.summary.rejected} of {self.summary.processed} records "
                f"rejected ({ratio:.0%}), above max_reject_percent {self.max_reject_ratio:.0%}; "
                f"see {self.rejects.path}"
            )
        self.finished = True
        self.write_report("dry_run" if self.dry_run else "ok")
        write_report_page(self.report_path, self.tz.key, self.log)
        self.log.info("%s", self._summary_line())
        self._close()

    def _summary_line(self) -> str:
        for name, calls in (("factusol", self.fs.calls), ("clientify", self.cl.calls_snapshot())):
            self.summary.add_api_calls({f"{name}_{k}": v for k, v in calls.items()})
        prefix = "DRY RUN " if self.dry_run else ""
        return prefix + self.summary.line("Clientify -> FactuSOL")

    def _close(self) -> None:
        self.finder.close()
        if self.ledger is not None:
            self.ledger.close()
        self.plan.close()
        self.rejects.close()
        self.fs.close()
        self.cl.close()

    # ------------------------------------------------------------------ batches

    def process_batch(
        self,
        records: Iterable[dict[str, Any]],
        *,
        stream: str,
        schema: Mapping[str, Any],
        key_properties: Iterable[str],
        received_at: float | None = None,
    ) -> None:
        """Sync one batch of contacts (deduplicated by id, last one wins).

        ``received_at`` (``time.monotonic()``) is when the batch's first record arrived: the
        contacts' tags are as recent as that (see ``Writer._write_back``).
        """
        self.rejects.register_schema(stream, schema, list(key_properties))
        self._stream = stream
        self.writer.batch_received_at = received_at
        latest: dict[Any, dict[str, Any]] = {}
        for record in records:
            self.records_in += 1
            contact_id = record.get("id")
            # records without a usable id are never merged: each is rejected on its own
            key = contact_id if is_id(contact_id) else ("?", self.records_in)
            latest.pop(key, None)  # keep the last version, at its position
            latest[key] = record
        try:
            if latest:
                self._prepare_link_field()
                if self.progress.total is None:
                    # every contact in Clientify: the stream holds these or fewer
                    self.progress.total = len(self.finder.contact_index()) or None
                    self.progress.total_is_bound = True
            self._process(list(latest.values()))
        except FatalRunError:
            raise
        except (FactusolError, ClientifyError) as exc:
            # Record-level errors were handled per record: what reaches here is systemic
            # (auth, retries exhausted, an unexpected answer).
            raise self.fail(f"target-factusol: stopped: {exc}") from None
        except Exception as exc:
            # A bug: stop with the report written and every file and connection released.
            self.log.exception("target-factusol: unexpected error")
            raise self.fail(f"target-factusol: stopped: {type(exc).__name__}: {exc}") from None

    def _process(self, records: list[dict[str, Any]]) -> None:
        # find
        items: list[Item] = []
        for record in records:
            try:
                item = self.finder.read(record)
                self.summary.add("warnings", item.warnings)
                items.append(item)
            except RecordRejected as exc:
                self._reject(record, exc)
                self.progress.advance()
        if not items:
            return
        items = self._drop_shared_links(items)
        unlinked = [item for item in items if item.code is None]
        for item in unlinked:
            self.finder.find_candidates(item)
        wanted = {item.code for item in items if item.code is not None}
        for item in unlinked:
            wanted.update(item.marker_codes)
            if item.match is not None and item.match.candidate is not None:
                wanted.add(int(item.match.candidate.key))
        rows = self.finder.rows(wanted)
        linked_codes = [item.code for item in items if item.code is not None]
        entries: dict[int, LedgerEntry] = (
            self.ledger.get_many(linked_codes) if self.ledger is not None and linked_codes else {}
        )
        if self.decider.missing_client == "recreate":
            # A recreation keeps its own code: never hand it to a new contact of this run.
            self.codes.reserved.update(c for c in linked_codes if c not in rows)
        # decide
        plans: list[Plan] = []
        for item in items:
            try:
                plans.append(self.decider.plan(item, rows, entries))
            except RecordRejected as exc:
                plans.append(Plan(item, "reject", item.code, reject=exc, done=True))
                self.progress.advance()
            except (FactusolError, ClientifyError):
                raise  # systemic: stops the run
            except Exception as exc:  # a bug met by one record must not stop the others
                self.log.exception("contact %s: unexpected error while deciding", item.contact_id)
                rejection = RecordRejected(f"internal error while deciding: {type(exc).__name__}")
                plans.append(Plan(item, "reject", item.code, reject=rejection, done=True))
                self.progress.advance()
        # write
        try:
            self.writer.apply_all([plan for plan in plans if plan.action != "reject"])
        finally:
            # In record order whatever the thread timing; plans never started write nothing.
            for plan in plans:
                if not plan.done:
                    continue
                for action, key, fields in plan.lines:
                    self.plan.write(action, key, **fields)
                if plan.reject is not None:
                    self._reject(plan.item.record, plan.reject, code=plan.item.code)

    def _drop_shared_links(self, items: list[Item]) -> list[Item]:
        """Several contacts naming one client: all of them rejected, nothing written to it.

        Which one owns the client cannot be known (a copied or hand-typed factusol_id); the
        claimants are counted over the whole account, with this batch's fresher records.
        """
        batch = {item.contact_id: item.code for item in items}
        kept: list[Item] = []
        for item in items:
            claimants = [] if item.code is None else self.finder.claimants(item.code, batch)
            if len(claimants) > 1:
                others = [c for c in claimants if c != item.contact_id]
                self._reject(
                    item.record,
                    RecordRejected(
                        f"{self.link_field} {item.code} is also on contact(s) "
                        f"{', '.join(map(str, others))}: one FactuSOL client cannot be linked "
                        "to several contacts; nothing was written to that client. Keep the "
                        f"{self.link_field} on the right contact only (merge the duplicates)",
                        code="claimed_by_several",
                        candidates=claimants,
                    ),
                    code=item.code,
                )
                self.progress.advance()
                continue
            kept.append(item)
        return kept

    def _reject(
        self, record: Mapping[str, Any], rejection: RecordRejected, *, code: int | None = None
    ) -> None:
        contact_id = record.get("id")
        reason = rejection.reason
        self.summary.add("rejected")
        self.log.error("contact %s rejected: %s", contact_id, reason)
        self.rejects.reject(
            self._stream,
            record,
            reason=reason,
            key=contact_id,
            code=rejection.code,
            candidates=rejection.candidates,
        )
        self.plan.write(
            "reject",
            contact_id,
            target_id=code,
            reason=reason,
            code=rejection.code,
            candidates=rejection.candidates or None,
        )
