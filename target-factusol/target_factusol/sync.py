"""One target-factusol run: API clients, lookups, the code allocator, writes and counters.

The sink hands batches of contacts here. Each batch has two phases:

1. **Plan** (main thread, in record order): read the rows the batch needs, then decide per
   contact update / link / create / reject. Everything that depends on earlier records (a client
   claimed by an earlier contact, a client created for an earlier contact, the next CODCLI) is
   decided here, one record after the other, so the outcome never depends on thread timing.
2. **Apply** (a pool of ``max_workers`` threads): the writes. Plans that touch the same CODCLI
   run in one task, in order. CODCLI is allocated by us as MAX+1 (the API never assigns it,
   reference §5.4) from a lock-protected counter, so concurrent inserts use distinct codes.
   Clientify calls share the client's rate limiter. Plan and reject lines are written by the
   main thread in record order once the batch is applied (a dry run's plan equals the real one).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard
from zoneinfo import ZoneInfo

import requests
from clientify_api import (
    ClientifyClient,
    ClientifyError,
    ClientifyNotFoundError,
    ClientifyValidationError,
    ContactIndex,
    compact_nif,
    contact_tags,
    custom_field_text,
    normalize_email,
    parse_api_datetime,
)
from customer_sync import (
    FIELD_COLUMNS,
    ConflictPolicy,
    Customer,
    FieldDiff,
    FieldIssue,
    PlanWriter,
    RejectWriter,
    RunSummary,
    client_changes,
    customer_from_contact,
    decide_winner,
)
from factusol_api import (
    FactusolClient,
    FactusolCredentials,
    FactusolError,
    FactusolRecordError,
    FactusolRecordExistsError,
)

from target_factusol.errors import FatalRunError
from target_factusol.markers import MARKER_QUERY, marker_ids, marker_line, markers_by_contact
from target_factusol.match_index import ClientMatchIndex
from target_factusol.sinks import INVALID_KEY, MISSING_KEYS

MADRID = ZoneInfo("Europe/Madrid")
# Codes tried after BDExisteRegistro before the record is rejected (another writer is racing us).
MAX_CODE_ATTEMPTS = 20
# Test hook: simulate a kill between the FactuSOL insert and the Clientify write-back.
CRASH_AFTER_INSERT_ENV = "FCSYNC_TEST_CRASH_AFTER_INSERT"
# How old the streamed tags of a contact may be for the link write-back to send them back
# (with ours) in its one PUT; older, the tag is added by its own call.
FRESH_TAGS_SECONDS = 60.0
MATCH_SCAN_PAGE_SIZE = 5000  # rows of CODCLI, NIFCLI, EMACLI per call (about 400 kB)
_DIGITS = re.compile(r"[0-9]+")


class RecordRejected(Exception):
    """This record cannot be written; the run goes on."""


@dataclass
class Item:
    """One contact of a batch, read once."""

    record: dict[str, Any]
    contact_id: int
    customer: Customer
    code: int | None = None  # from the link field
    modified: dt.datetime | None = None
    candidates: list[int] = field(default_factory=list)  # marker or match candidates
    how: str = ""  # why those candidates


@dataclass
class Plan:
    """What the planning phase decided for one contact; the apply phase only writes it."""

    item: Item
    action: str  # update | link | create | reject
    code: int | None  # the client written (allocated for a creation); None for some rejects
    row: Mapping[str, Any] | None = None  # the existing row (update, link)
    fixed: bool = False  # create under the link's own code (missing_client: recreate)
    claimed: bool = False  # planning marked `code` as linked for this contact
    reject: str | None = None  # why the record is rejected (planning or a refused write)
    done: bool = False  # the apply phase ran to the end (written or refused)
    inserted: bool = False  # the FactuSOL row exists (ours), even if the write-back failed
    # Plan-file lines (action, key, fields), written by the main thread in record order.
    lines: list[tuple[str, object, dict[str, Any]]] = field(default_factory=list)

    def note(self, action: str, key: object, **fields: Any) -> None:
        self.lines.append((action, key, fields))


def _fumcli(row: Mapping[str, Any]) -> tuple[dt.datetime | None, bool]:
    """FUMCLI as a naive Madrid datetime and whether it carries only a date."""
    value = row.get("FUMCLI")
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        try:
            moment = dt.datetime.fromisoformat(value.strip().replace(" ", "T", 1))
        except ValueError:
            return None, False
    else:
        return None, False
    return moment, moment.time() == dt.time(0, 0)


def _fumcli_now(row: Mapping[str, Any]) -> str:
    """Now, in the form the row's FUMCLI has: a date, or a date and time (Madrid)."""
    now = dt.datetime.now(MADRID).replace(tzinfo=None, microsecond=0)
    moment, date_only = _fumcli(row)
    return now.isoformat() if moment is not None and not date_only else now.date().isoformat()


def _modified(value: object) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str):
        return parse_api_datetime(value)
    return None


def _is_id(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _nif_key(value: object) -> str:
    """Compacted NIF without a Spanish VAT prefix (ESB12345678 = B12345678)."""
    nif = compact_nif(value)
    return nif[2:] if nif.startswith("ES") and len(nif) == 11 else nif


def _known(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record without null keys: tap-clientify emits null for "unknown", never "empty"."""
    return {key: value for key, value in record.items() if value is not None}


def _max_workers(config: Mapping[str, Any]) -> int:
    workers = config.get("max_workers", 8)
    if not _is_id(workers) or workers < 1:
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


class SyncRun:
    """Everything one run shares across batches and sinks."""

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        factusol: FactusolClient,
        clientify: ClientifyClient,
        region: str,
        logger: logging.Logger,
    ) -> None:
        self.config = config
        self.fs = factusol
        self.cl = clientify
        self.region = region
        self.log = logger
        self.dry_run = bool(config.get("dry_run", False))
        self.link_field = str(config.get("link_field") or "factusol_id")
        self.tag = str(config.get("tag", "factusol") or "").strip()
        self.missing_client = str(config.get("missing_client") or "reject")
        fallback = config.get("match_fallback")
        self.match_fallback: list[str] = list(["nif", "email"] if fallback is None else fallback)
        self.policy = ConflictPolicy(
            default=str(config.get("conflict_policy") or "newest"),
            field_authority=dict(config.get("field_authority") or {}),
        )
        self.max_reject_ratio = int(config.get("max_reject_percent", 20)) / 100
        self.max_workers = _max_workers(config)
        self.summary = RunSummary()
        plan_path = Path(str(config.get("plan_file") or "output/plans/target-factusol.jsonl"))
        # The plan describes this run only (a dry run's plan is compared with the next run).
        plan_path.parent.mkdir(parents=True, exist_ok=True)
        plan_path.write_text("", encoding="utf-8")
        self.plan = PlanWriter(plan_path)
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
        # The CODCLI counter (MAX read once per run); workers take codes from it on a collision.
        self._code_lock = threading.Lock()
        self._next_code: int | None = None
        self._reserved: set[int] = set()  # codes of planned recreations: never allocated
        # Guards the in-run indexes below when workers update them (planning reads them).
        self._state_lock = threading.RLock()
        self._markers: dict[int, list[int]] | None = None
        self._index: ContactIndex | None = None
        self._matches: ClientMatchIndex | None = None  # F_CLI by NIF / e-mail, loaded once
        self._linked_codes: set[int] = set()
        self._index_lock = threading.Lock()
        self._batch_received_at: float | None = None
        self.monotonic = time.monotonic  # a test may move it
        self.link_field_missing = False  # set by start()

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
            # Read only: nothing is written at start, the tap sends its SCHEMA before it has
            # proven its own credentials. A missing field is created at the first batch.
            link_field_missing = not _link_field_defined(clientify, link_field, logger)
        except ClientifyError as exc:
            raise FatalRunError(
                f"target-factusol: cannot start: Clientify (clientify_api_key at "
                f"{clientify.api_url}): {exc}"
            ) from None
        region = country or str(config.get("country") or "ES").upper()
        logger.info(
            "target-factusol: FactuSOL %s ejercicio %s; Clientify region %s (%s)%s",
            creds.base_datos,
            year,
            region,
            "account country" if country else "country setting",
            "; DRY RUN: nothing will be written" if config.get("dry_run") else "",
        )
        run = cls(config, factusol=factusol, clientify=clientify, region=region, logger=logger)
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
                "counts": self.summary.counts,
                "api_calls": self.api_calls(),
                "status": status,
                "error": error,
                "dry_run": self.dry_run,
                "records_received": self.records_in,
                "region": self.region,
                "started_at": self.started_at.isoformat(),
                "finished_at": dt.datetime.now(dt.UTC).isoformat(),
            }
        )
        self.report_path.parent.mkdir(parents=True, exist_ok=True)
        self.report_path.write_text(
            json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )

    def fail(self, message: str) -> FatalRunError:
        """Write the report of a failed run and return the error to raise."""
        if not self.finished:
            self.finished = True
            self.write_report("failed", message)
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
        self.log.info("%s", self._summary_line())
        self._close()

    def _summary_line(self) -> str:
        for name, calls in (("factusol", self.fs.calls), ("clientify", self.cl.calls_snapshot())):
            self.summary.add_api_calls({f"{name}_{k}": v for k, v in calls.items()})
        prefix = "DRY RUN " if self.dry_run else ""
        return prefix + self.summary.line("Clientify -> FactuSOL")

    def _close(self) -> None:
        if self._matches is not None:
            self._matches.close()
            self._matches = None
        with self._index_lock:
            if self._index is not None:
                self._index.close()  # a cache file keeps what this run wrote
                self._index = None
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
        contacts' tags are as recent as that (see ``_write_back``).
        """
        self.rejects.register_schema(stream, schema, list(key_properties))
        self._stream = stream
        self._batch_received_at = received_at
        latest: dict[Any, dict[str, Any]] = {}
        for record in records:
            self.records_in += 1
            contact_id = record.get("id")
            # records without a usable id are never merged: each is rejected on its own
            key = contact_id if _is_id(contact_id) else ("?", self.records_in)
            latest.pop(key, None)  # keep the last version, at its position
            latest[key] = record
        try:
            if latest:
                self._prepare_link_field()
            self._process(list(latest.values()))
        except FatalRunError:
            raise
        except (FactusolError, ClientifyError) as exc:
            # Record-level errors were handled per record: what reaches here is systemic
            # (auth, retries exhausted, an unexpected answer).
            raise self.fail(f"target-factusol: stopped: {exc}") from None

    def _process(self, records: list[dict[str, Any]]) -> None:
        items: list[Item] = []
        seen_codes: dict[int, int] = {}
        for record in records:
            try:
                item = self._read(record)
                if item.code is not None:
                    other = seen_codes.setdefault(item.code, item.contact_id)
                    if other != item.contact_id:
                        raise RecordRejected(
                            f"factusol_id {item.code} is also on contact {other}: one FactuSOL "
                            "client cannot be linked to two contacts"
                        )
                items.append(item)
            except RecordRejected as exc:
                self._reject(record, str(exc))
        if not items:
            return
        linked = [item for item in items if item.code is not None]
        unlinked = [item for item in items if item.code is None]
        self._linked_codes.update(item.code for item in linked if item.code is not None)
        wanted = {item.code for item in linked if item.code is not None}
        if unlinked:
            self._find_candidates(unlinked)
            wanted.update(code for item in unlinked for code in item.candidates)
        # One read (per 1,000 codes: a batch's) for every existing row the batch needs.
        rows = (
            {int(row["CODCLI"]): row for row in self.fs.get_clients(wanted, batch_size=1000)}
            if wanted
            else {}
        )
        if self.missing_client == "recreate":
            # A recreation keeps its own code: never hand it to a new contact of this run.
            self._reserved.update(c for item in linked if (c := item.code) and c not in rows)
        plans: list[Plan] = []
        for item in items:
            try:
                plans.append(self._plan(item, rows))
            except RecordRejected as exc:
                plans.append(Plan(item, "reject", item.code, reject=str(exc), done=True))
        try:
            self._apply_all([plan for plan in plans if plan.action != "reject"])
        finally:
            # In record order whatever the thread timing; plans never started write nothing.
            for plan in plans:
                if not plan.done:
                    continue
                for action, key, fields in plan.lines:
                    self.plan.write(action, key, **fields)
                if plan.reject is not None:
                    self._reject(plan.item.record, plan.reject, code=plan.item.code)

    def _apply_all(self, plans: list[Plan]) -> None:
        """Run the writes on ``max_workers`` threads; plans on one CODCLI share one task."""
        if not plans:
            return
        tasks: dict[int | None, list[Plan]] = {}
        for plan in plans:
            tasks.setdefault(plan.code, []).append(plan)
        pool = ThreadPoolExecutor(
            max_workers=min(self.max_workers, len(tasks)), thread_name_prefix="factusol-writer"
        )
        try:
            futures: list[Future[None]] = [
                pool.submit(self._apply_task, task) for task in tasks.values()
            ]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        finally:
            # After an error (or an interrupt) the records not started stay for the next run;
            # the writes in flight finish, so no insert is left without its bookkeeping.
            pool.shutdown(wait=True, cancel_futures=True)
        failed = next((f for f in done if f.exception() is not None), None)
        if failed is not None:
            failed.result()  # re-raise (systemic error, or the test hook's interrupt)
        for plan in plans:
            if plan.reject is not None:
                self._release(plan)

    def _apply_task(self, plans: list[Plan]) -> None:
        for plan in plans:
            try:
                if plan.action == "update":
                    self._update(plan)
                elif plan.action == "link":
                    self._adopt(plan)
                else:
                    self._create(plan)
            except RecordRejected as exc:
                plan.reject = str(exc)
            except FactusolRecordError as exc:
                plan.reject = f"FactuSOL refused the write: {exc}"
            except (ClientifyValidationError, ClientifyNotFoundError) as exc:
                plan.reject = f"Clientify refused the link write-back: {exc}"
            plan.done = True

    # ------------------------------------------------------------------ find

    def _read(self, record: dict[str, Any]) -> Item:
        invalid = record.pop(INVALID_KEY, None)
        for key in record.pop(MISSING_KEYS, None) or ():
            record.pop(key, None)  # filled in by the sink for the SDK's key check
        if invalid:
            raise RecordRejected(str(invalid))
        contact_id = record.get("id")
        if not _is_id(contact_id):
            raise RecordRejected("contact id is not an integer")
        known = _known(record)
        raw_link = custom_field_text(known, self.link_field)
        if raw_link is None and isinstance(known.get("factusol_id"), str | int):
            raw_link = str(known["factusol_id"]).strip() or None
        code: int | None = None
        if raw_link is not None:
            if not _DIGITS.fullmatch(raw_link) or int(raw_link) <= 0:
                raise RecordRejected(
                    f"{self.link_field} {raw_link[:20]!r} is not a positive integer client code"
                )
            code = int(raw_link)
        try:
            customer, issues = customer_from_contact(
                known, region=self.region, link_field=self.link_field
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise RecordRejected(f"mapping failed: {type(exc).__name__}: {exc}") from None
        for issue in issues:
            if issue.field == "factusol_id":
                continue
            # contact id, field and problem only: the value is personal data (the reject file
            # may keep values; logs never do)
            self.log.warning(
                "contact %s: %s: %s (field left unchanged)", contact_id, issue.field, issue.problem
            )
            self.summary.add("warnings")
        return Item(
            record=record,
            contact_id=contact_id,
            customer=customer,
            code=code,
            modified=_modified(record.get("modified")),
        )

    def _find_candidates(self, unlinked: list[Item]) -> None:
        markers = self._load_markers()
        for item in unlinked:
            codes = markers.get(item.contact_id)
            if codes:
                item.candidates, item.how = list(codes), "creation marker"
                continue
            if self.match_fallback:
                self._load_match_indexes()
                self._match_candidates(item)

    def _match_candidates(self, item: Item) -> None:
        """Candidates by the match_fallback keys, in order (the first key that finds any)."""
        item.candidates, item.how = [], ""
        for key in self.match_fallback:
            codes = self._match(item, key)
            if codes:
                item.candidates, item.how = codes, f"same {key}"
                return

    def _load_markers(self) -> dict[int, list[int]]:
        if self._markers is None:
            # One query per run, only when a batch has contacts without a link.
            self._markers = markers_by_contact(self.fs.query(MARKER_QUERY))
            self.log.info("creation markers found for %d contacts", len(self._markers))
        return self._markers

    def _load_match_indexes(self) -> None:
        if self._matches is not None:
            return
        # One keyset scan of three columns per run (the contact index: _contact_index).
        matches = ClientMatchIndex()
        # Three short columns: pages ten times the default size keep the call count low.
        columns = ["CODCLI", "NIFCLI", "EMACLI"]
        for row in self.fs.iter_clients(columns=columns, page_size=MATCH_SCAN_PAGE_SIZE):
            matches.add(
                int(row["CODCLI"]), _nif_key(row.get("NIFCLI")), normalize_email(row.get("EMACLI"))
            )
        self._matches = matches
        self.log.info("matching: %d FactuSOL NIFs, %d e-mails", matches.nifs, matches.emails)

    def _contact_index(self) -> ContactIndex:
        """Clientify's contacts by link (whether a candidate client is linked elsewhere).

        Loaded once, at the first candidate: from the cache file when configured (only what
        changed since the last run is read), else one paged scan.
        """
        with self._index_lock:
            if self._index is None:
                cache = str(self.config.get("index_cache_file") or "").strip() or None
                hours = int(self.config.get("index_rescan_hours", 168))
                self._index = self.cl.load_contact_index(
                    field=self.link_field, cache=cache, rescan_after=dt.timedelta(hours=hours)
                )
                self.log.info("%d Clientify contacts indexed", len(self._index))
            return self._index

    def _match(self, item: Item, key: str) -> list[int]:
        if key == "nif":
            nif = _nif_key(item.customer.nif or item.record.get("taxpayer_identification_number"))
            return self._matches.by_nif(nif) if nif and self._matches is not None else []
        email = normalize_email(item.customer.email)
        if not email or self._matches is None:
            return []
        own_nif = _nif_key(item.customer.nif)
        # Same e-mail but another NIF is another company (a shared accounting address).
        codes = []
        for code in self._matches.by_email(email):
            other_nif = self._matches.nif_of(code) if own_nif else None
            if not (own_nif and other_nif and other_nif != own_nif):
                codes.append(code)
        return codes

    def _is_linked(self, code: int) -> bool:
        if code in self._linked_codes:
            return True
        return bool(self._contact_index().by_factusol_id(str(code)))

    # ------------------------------------------------------------------ decide and write

    def _plan(self, item: Item, rows: Mapping[int, dict[str, Any]]) -> Plan:
        """Decide what to write for one contact (main thread, record order)."""
        if item.code is not None:
            row = rows.get(item.code)
            if row is not None:
                return Plan(item, "update", item.code, row=row)
            if self.missing_client == "recreate":
                self._check_creatable(item)
                self._remember(item.code, item.customer)
                return Plan(item, "create", item.code, fixed=True)
            raise RecordRejected(
                f"{self.link_field} {item.code} names a FactuSOL client that does not exist "
                "(missing_client: reject)"
            )
        if item.how == "creation marker":
            if len(item.candidates) > 1:
                raise RecordRejected(
                    "several FactuSOL clients carry this contact's creation marker: "
                    + ", ".join(map(str, item.candidates))
                )
            row = rows.get(item.candidates[0])
            if row is not None and marker_ids(row.get("OBSCLI")) & {item.contact_id}:
                self.log.info(
                    "contact %s: client %s was created for it by an earlier run; linking",
                    item.contact_id,
                    item.candidates[0],
                )
                return self._claim(Plan(item, "link", item.candidates[0], row=row))
        else:
            if self._matches is not None:
                # Again, now: an earlier contact of this batch may have claimed a candidate or
                # be planned to create a client with the same NIF / e-mail (as across batches).
                self._match_candidates(item)
            linked = [code for code in item.candidates if self._is_linked(code)]
            if len(item.candidates) == 1 and not linked:
                row = rows.get(item.candidates[0])
                if row is not None:
                    return self._claim(Plan(item, "link", item.candidates[0], row=row))
            elif item.candidates:
                detail = f" (already linked: {', '.join(map(str, linked))})" if linked else ""
                raise RecordRejected(
                    f"cannot link by {item.how.removeprefix('same ')}: candidate FactuSOL "
                    f"clients {', '.join(map(str, item.candidates))}{detail}; set "
                    f"{self.link_field} on the contact by hand"
                )
        self._check_creatable(item)
        code = self._allocate()
        self._remember(code, item.customer)
        return Plan(item, "create", code)

    def _check_creatable(self, item: Item) -> None:
        if not (item.customer.name or item.customer.trade_name):
            raise RecordRejected("contact has no name and no company name to create a client")

    def _claim(self, plan: Plan) -> Plan:
        """Mark the client linked now, so no later contact of the run can adopt it too."""
        assert plan.code is not None
        with self._state_lock:
            plan.claimed = plan.code not in self._linked_codes
            self._linked_codes.add(plan.code)
        return plan

    def _release(self, plan: Plan) -> None:
        """A refused write: undo what planning assumed (later batches decide afresh)."""
        if plan.code is None:
            return
        with self._state_lock:
            if plan.action == "link" and plan.claimed:
                self._linked_codes.discard(plan.code)
            elif plan.action == "create" and not plan.inserted and not plan.fixed:
                self._forget(plan.code, plan.item.customer)

    def _allocate(self) -> int:
        """The next free CODCLI (MAX+1 read once per run, then counted up); thread-safe."""
        with self._code_lock:
            if self._next_code is None:
                self._next_code = self.fs.max_client_code() + 1
            code = self._next_code
            while code in self._reserved:
                code += 1
            self._next_code = code + 1
            return code

    def _resolve_conflicts(
        self,
        plan: Plan,
        code: int,
        row: Mapping[str, Any],
        changes_row: dict[str, Any],
        diffs: list[FieldDiff],
    ) -> list[FieldDiff]:
        """Drop the fields FactuSOL wins from ``changes_row``; return the applied diffs."""
        item = plan.item
        fs_modified, date_only = _fumcli(row)
        applied: list[FieldDiff] = []
        for diff in diffs:
            winner = decide_winner(
                diff.field,
                factusol_modified=fs_modified,
                factusol_date_only=date_only,
                clientify_modified=item.modified,
                policy=self.policy,
            )
            if winner == "clientify":
                applied.append(diff)
                continue
            changes_row.pop(FIELD_COLUMNS[diff.field], None)
            self.summary.add("conflicts")
            self.log.warning(
                "conflict: contact %s, client %s, field %s: FactuSOL wins (policy %s), left as is",
                item.contact_id,
                code,
                diff.field,
                self.policy.for_field(diff.field),
            )
            plan.note(
                "conflict",
                item.contact_id,
                target_id=code,
                diffs=[diff],
                reason=f"FactuSOL wins (policy {self.policy.for_field(diff.field)})",
            )
        return applied

    def _apply_update(
        self, plan: Plan, code: int, row: Mapping[str, Any], *, linking: bool = False
    ) -> list[FieldDiff]:
        changes = client_changes(row, plan.item.customer, region=self.region)
        self._warn(plan.item, changes.issues)
        write = dict(changes.row)
        write["CODCLI"] = code
        applied = self._resolve_conflicts(plan, code, row, write, list(changes.diffs))
        if linking and len(applied) < len(changes.diffs):
            # FactuSOL won a field of the contact being linked, whose write-back has just made
            # it look newer: a FUMCLI of now keeps that verdict in the next runs (the next
            # factusol-to-clientify run then brings the winning values to the contact).
            write["FUMCLI"] = _fumcli_now(row)
        if len(write) > 1 and not self.dry_run:
            self.fs.update_client(write)  # one task per code: never two writers on one row
        return applied if len(write) > 1 else []

    def _update(self, plan: Plan) -> None:
        assert plan.row is not None
        assert plan.code is not None
        applied = self._apply_update(plan, plan.code, plan.row)
        if applied:
            self.summary.add("updated")
            plan.note("update", plan.item.contact_id, target_id=plan.code, diffs=applied)
        else:
            self.summary.add("unchanged")
            plan.note("unchanged", plan.item.contact_id, target_id=plan.code)

    def _adopt(self, plan: Plan) -> None:
        """Link an existing client (found by marker or match) and update it like a linked one."""
        assert plan.row is not None
        assert plan.code is not None
        item = plan.item
        self._write_back(item, plan.code)  # first: see _apply_update(linking=True)
        applied = self._apply_update(plan, plan.code, plan.row, linking=True)
        self.summary.add("linked")
        plan.note("link", item.contact_id, target_id=plan.code, diffs=applied, reason=item.how)

    def _create(self, plan: Plan) -> None:
        item = plan.item
        changes = client_changes(None, item.customer.replace(factusol_id=None), region=self.region)
        self._warn(item, changes.issues)
        row = dict(changes.row)
        row["FALCLI"] = dt.datetime.now(MADRID).date().isoformat()
        row["OBSCLI"] = marker_line(item.contact_id)
        planned = plan.code
        code = self._insert(plan, row)
        plan.inserted = not self.dry_run
        with self._state_lock:
            if code != planned and planned is not None:
                # Another writer held the planned code: the indexes must name the real one.
                self._forget(planned, item.customer)
                self._remember(code, item.customer)
            plan.code = code
            if self._markers is not None:
                self._markers.setdefault(item.contact_id, []).append(code)
        if item.code is None:
            self._write_back(item, code)
        self.summary.add("created")
        plan.note("create", item.contact_id, target_id=code, diffs=changes.diffs)

    def _insert(self, plan: Plan, row: dict[str, Any]) -> int:
        """Insert under the planned code (the next free one after a collision); return it."""
        item = plan.item
        code = plan.code
        assert code is not None
        for _attempt in range(MAX_CODE_ATTEMPTS):
            row["CODCLI"] = code
            if self.dry_run:
                return code
            try:
                self.fs.insert_client(row)
                break
            except FactusolRecordExistsError:
                # A retried insert whose first attempt landed answers BDExisteRegistro too:
                # re-read the row; if it carries our marker it is ours.
                existing = self.fs.get_clients([code])
                if existing and item.contact_id in marker_ids(existing[0].get("OBSCLI")):
                    self.log.info(
                        "contact %s: client %s already written by a retried insert",
                        item.contact_id,
                        code,
                    )
                    break
                if plan.fixed:
                    raise RecordRejected(
                        f"client {code} was created by someone else since it was read"
                    ) from None
                # Someone else's client: take a fresh code (other workers hold the ones between).
                taken, code = code, self._allocate()
                self.log.warning("CODCLI %s is already taken; trying %s", taken, code)
        else:
            raise RecordRejected(f"no free CODCLI after {MAX_CODE_ATTEMPTS} attempts")
        self._after_insert(item.contact_id, code)
        return code

    def _after_insert(self, contact_id: int, code: int) -> None:
        """Between the two writes of a creation (a test hook simulates a kill here)."""
        if os.environ.get(CRASH_AFTER_INSERT_ENV):
            self.log.error("test hook: exiting after creating client %s", code)
            os._exit(70)

    def _write_back(self, item: Item, code: int) -> None:
        link = [{"field": self.link_field, "value": str(code)}]
        if not self.dry_run:
            tags = item.record.get("tags")
            if not self.tag or (isinstance(tags, list) and self.tag in contact_tags(item.record)):
                self.cl.update_contact(item.contact_id, {"custom_fields": link})
            elif isinstance(tags, list) and self._tags_are_fresh():
                # One call: tags in a PUT replace the list, so send the tags the tap has just
                # read plus ours. A tag added in Clientify within those seconds would be lost.
                body = {"custom_fields": link, "tags": [*contact_tags(item.record), self.tag]}
                self.cl.update_contact(item.contact_id, body)
            else:
                self.cl.update_contact(item.contact_id, {"custom_fields": link})
                self.cl.add_tag(item.contact_id, self.tag)  # adds, never replaces
        with self._state_lock:
            self._linked_codes.add(code)
        if self._index is not None and not self.dry_run:  # ContactIndex has its own lock
            linked = dict(item.record)
            fields = [
                f for f in (linked.get("custom_fields") or []) if f.get("field") != self.link_field
            ]
            linked["custom_fields"] = [*fields, *link]
            self._index.add(linked)

    def _tags_are_fresh(self) -> bool:
        received = self._batch_received_at
        return received is not None and self.monotonic() - received <= FRESH_TAGS_SECONDS

    def _remember(self, code: int, customer: Customer) -> None:
        """Make a client created in this run visible to later matches in the same run."""
        with self._state_lock:
            self._linked_codes.add(code)
            if self._matches is not None:
                self._matches.add(code, _nif_key(customer.nif), normalize_email(customer.email))

    def _forget(self, code: int, customer: Customer) -> None:
        """Undo ``_remember`` for a code that holds no client of ours after all."""
        with self._state_lock:
            self._linked_codes.discard(code)
            if self._matches is not None:
                self._matches.remove(code, _nif_key(customer.nif), normalize_email(customer.email))

    def _warn(self, item: Item, issues: Iterable[FieldIssue]) -> None:
        """Values FactuSOL cannot hold (cut, replaced, or left out): never silent."""
        for issue in issues:
            # field and problem only, never the value (personal data)
            self.log.warning(
                "contact %s: %s: %s (FactuSOL)", item.contact_id, issue.field, issue.problem
            )
            self.summary.add("warnings")

    def _reject(self, record: Mapping[str, Any], reason: str, *, code: int | None = None) -> None:
        contact_id = record.get("id")
        self.summary.add("rejected")
        self.log.error("contact %s rejected: %s", contact_id, reason)
        self.rejects.reject(self._stream, record, reason=reason, key=contact_id)
        self.plan.write("reject", contact_id, target_id=code, reason=reason)
