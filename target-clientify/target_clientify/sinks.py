"""The `clients` sink and the run it shares: find, link, create or update Clientify contacts.

Two phases per batch:

1. **Plan** (main thread, in record order): map the record with customer_sync, find its contact
   in the run's ContactIndex (factusol_id, then the match_fallback keys), decide create / link /
   update / reject. Decisions that depend on each other (two clients claiming one unlinked
   contact) are taken here, one after the other.
2. **Apply** (a thread pool under the client's rate limiter): compare with what Clientify holds,
   apply the conflict rule, write only what changed, keep the index current. One code appears
   once per batch, so a contact is never written by two threads at once.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from clientify_api import (
    ClientifyAuthError,
    ClientifyClient,
    ClientifyCustomFieldError,
    ClientifyError,
    ClientifyNotFoundError,
    ClientifyRetryError,
    ClientifyValidationError,
    ContactIndex,
    PageInfo,
    custom_field_text,
    parse_api_datetime,
)
from customer_sync import (
    TEXT_FIELDS,
    AddAddress,
    AddEmail,
    AddPhone,
    AddTag,
    ConflictPolicy,
    ContactChanges,
    Customer,
    DeleteAddress,
    DeleteEmail,
    DeletePhone,
    FieldDiff,
    FieldIssue,
    PlanWriter,
    RejectWriter,
    RunSummary,
    contact_changes,
    customer_from_client,
    decide_winner,
)
from singer_sdk import Target
from singer_sdk.exceptions import InvalidRecord
from singer_sdk.helpers.conform import DatetimeErrorTreatmentEnum
from singer_sdk.sinks import BatchSink
from typing_extensions import override

INPUT_STREAM = "clients"
MATCH_KEYS = ("nif", "email")
# Customer fields the conflict rule decides on (factusol_id is the link, never a conflict).
CONFLICT_FIELDS = TEXT_FIELDS
DEFAULT_REGION = "ES"
# Errors after which no further record can succeed: stop the run, emit no STATE.
FATAL_ERRORS = (ClientifyAuthError, ClientifyRetryError, ClientifyCustomFieldError)
# Set by ClientsSink on a record, popped by ClientifyRun._plan (never written anywhere):
# the key properties the record arrived without (it is rejected), and the date-time fields
# whose value could not be parsed (kept as received, read as unknown).
MISSING_KEYS = "__target_clientify_missing_keys__"
BAD_DATES = "__target_clientify_bad_dates__"


class TargetClientifyError(Exception):
    """Stops the run with one line (exit 1) and no STATE: setup, auth, systemic failures."""


@dataclass
class _Plan:
    """What the plan phase decided for one record."""

    code: Any
    record: dict[str, Any]
    action: str  # create | link | update | reject
    desired: Customer | None = None
    contact: dict[str, Any] | None = None
    reason: str | None = None
    placeholder_id: int | None = None


@dataclass
class _Outcome:
    """What the apply phase did (for tests and the plan line)."""

    action: str
    contact_id: Any = None
    diffs: list[FieldDiff] = field(default_factory=list)


def _as_datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    if isinstance(value, str) and value.strip():
        try:
            return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _contact_id_list(contacts: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(str(c.get("id")) for c in contacts)


class ClientifyRun:
    """Everything one target run shares: client, region, contact index, writers, counters."""

    def __init__(self, config: Mapping[str, Any], logger: logging.Logger) -> None:
        self.config = config
        self.logger = logger
        self.link_field = str(config.get("link_field") or "factusol_id").strip()
        self.tag = str(config.get("tag") or "").strip() or None
        self.match_fallback = [str(k) for k in config.get("match_fallback", list(MATCH_KEYS))]
        unknown = [k for k in self.match_fallback if k not in MATCH_KEYS]
        if unknown:
            raise TargetClientifyError(f"match_fallback accepts {list(MATCH_KEYS)}; got {unknown}")
        authority = dict(config.get("field_authority") or {})
        bad_fields = sorted(set(authority) - set(CONFLICT_FIELDS))
        if bad_fields:
            raise TargetClientifyError(
                f"field_authority names unknown fields {bad_fields}; "
                f"use any of {list(CONFLICT_FIELDS)}"
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
        except ValueError as exc:
            raise TargetClientifyError(f"Clientify settings: {exc}") from None
        # The plan describes this run only; the reject file accumulates (a dead-letter file).
        plan_path.parent.mkdir(parents=True, exist_ok=True)
        plan_path.write_text("", encoding="utf-8")
        self.plan = PlanWriter(plan_path)
        self.rejects = RejectWriter(reject_path)
        self.reject_path = reject_path
        self.summary = RunSummary()
        self.region = DEFAULT_REGION
        self._index: ContactIndex | None = None
        self._index_lock = threading.Lock()
        # Creates and links decided but not (or, in a dry run, never) visible in the index yet,
        # so later records of the run see them exactly as a real run would.
        self._pending = ContactIndex(field=self.link_field)
        self._placeholder_ids = itertools.count(-1, -1)
        self._claims: dict[Any, str] = {}  # contact id -> code linked to it in this run
        self._claimed_by_code: dict[str, Any] = {}
        self.failure: str | None = None
        self._link_field_missing = False  # known after start()

    # ------------------------------------------------------------------ start and end

    def start(self) -> None:
        """Once per run, before any data moves: credentials, region, link field (read only).

        Nothing is written here: the tap may still fail on its own credentials after its SCHEMA.
        A missing link field is created at the first batch with records (`_prepare_link_field`).
        """
        try:
            account_country = self.client.account_country()  # also the credentials check
            self._link_field_missing = not self._link_field_defined()
        except ClientifyAuthError as exc:
            raise TargetClientifyError(
                f"Clientify API key rejected: {exc} Set api_key (TARGET_CLIENTIFY_API_KEY)."
            ) from None
        except ClientifyError as exc:
            raise TargetClientifyError(f"Clientify is not usable: {exc}") from None
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
        self.logger.info(
            "Clientify ready: link field %r, region %s%s",
            self.link_field,
            self.region,
            ", DRY RUN (nothing will be written)" if self.dry_run else "",
        )

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

    def write_report(self) -> None:
        calls = self.client.calls_snapshot()
        report = {
            **self.summary.as_dict(),
            "api_calls": calls,
            "counts": self.counts(),
            "dry_run": self.dry_run,
            "region": self.region,
            "status": "failed" if self.failure else "ok",
            "error": self.failure,
            "retries": self.client.retries,
        }
        self.report_path.parent.mkdir(parents=True, exist_ok=True)
        self.report_path.write_text(
            json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )

    # ------------------------------------------------------------------ the contact index

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

    def _link_of(self, contact: Mapping[str, Any]) -> str | None:
        claimed = self._claims.get(contact.get("id"))
        return claimed or custom_field_text(contact, self.link_field)

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
            plans = [self._plan(record, index) for record in records]
            work = [p for p in plans if p.action != "reject"]
            if work:
                with ThreadPoolExecutor(
                    max_workers=min(self.max_workers, len(work)),
                    thread_name_prefix="clientify-writer",
                ) as pool:
                    futures = [pool.submit(self._apply, plan) for plan in work]
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

    def _stop(self, message: str) -> None:
        self.failure = message
        self.finish(check_ratio=False)  # raises TargetClientifyError(message)

    # ------------------------------------------------------------------ plan phase

    def _plan(self, record: dict[str, Any], index: ContactIndex) -> _Plan:
        missing = record.pop(MISSING_KEYS, None)
        bad_dates = record.pop(BAD_DATES, None) or []
        if missing:
            for key in missing:
                record.pop(key, None)  # filled in by the sink; the reject keeps the record as sent
            return self._reject(
                _Plan(None, record, "reject"),
                f"record has no {', '.join(missing)} (key property of stream "
                f"'{self._stream}'): no client code to sync it by",
            )
        code = record.get("code")
        # An unparseable date-time is kept as received and read as unknown: an unknown
        # `modified` loses every conflict to Clientify's, so only new contacts get its values.
        self._warn(
            code,
            [FieldIssue(key, "is not a valid date-time") for key in bad_dates],
            "treated as unknown",
        )
        try:
            desired, issues = customer_from_client(record, region=self.region)
        except Exception as exc:  # a mapping bug must not stop the other records
            return self._reject(_Plan(code, record, "reject"), f"mapping failed: {exc}")
        plan = _Plan(code, record, "create", desired=desired)
        if desired.factusol_id is None:
            problem = next((str(i) for i in issues if i.field == "factusol_id"), "code missing")
            return self._reject(plan, f"no usable client code ({problem})")
        self._warn(plan.code, [i for i in issues if i.field != "factusol_id"], "synced without it")

        key = str(desired.factusol_id)
        linked = index.by_factusol_id(key)
        claimed = self._claimed_by_code.get(key)  # linked earlier in this run (or dry run)
        if claimed is not None and all(c.get("id") != claimed for c in linked):
            contact = index.get(claimed)
            if contact is not None:
                linked.append(contact)
        if len(linked) > 1:
            return self._reject(
                plan,
                f"{len(linked)} Clientify contacts carry {self.link_field}={key} "
                f"(ids {_contact_id_list(linked)}); merge them in Clientify, then run again",
            )
        if linked:
            plan.action, plan.contact = "update", linked[0]
            return plan
        if self._pending.by_factusol_id(key):
            # Only in a dry run: this code was already planned for creation in this run.
            plan.action, plan.reason = "update", "created earlier in this run"
            return plan

        for match_key in self.match_fallback:
            candidates = self._candidates(match_key, desired, index)
            if not candidates:
                continue
            unlinked = [c for c in candidates if self._link_of(c) is None]
            if len(candidates) == 1 and unlinked:
                contact = unlinked[0]
                plan.action, plan.contact = "link", contact
                self._claims[contact.get("id")] = key
                self._claimed_by_code[key] = contact.get("id")
                return plan
            described = ", ".join(
                f"{c.get('id')} ({'unlinked' if self._link_of(c) is None else 'linked to ' + self.link_field + '=' + str(self._link_of(c))})"  # noqa: E501
                for c in candidates
            )
            why = "several contacts" if len(candidates) > 1 else "the only contact"
            return self._reject(
                plan,
                f"not linked: {why} with the same {match_key} ({described}); "
                "never merged or guessed: link one by hand (set its "
                f"{self.link_field} to {key}) or fix the {match_key}",
            )

        plan.placeholder_id = next(self._placeholder_ids)
        self._pending.add(self._placeholder(plan.placeholder_id, key, desired))
        return plan

    def _candidates(
        self, match_key: str, desired: Customer, index: ContactIndex
    ) -> list[dict[str, Any]]:
        if match_key == "nif":
            if not desired.nif:
                return []
            found = [*index.by_nif(desired.nif), *self._pending.by_nif(desired.nif)]
        else:
            if not desired.email:
                return []
            found = [*index.by_email(desired.email), *self._pending.by_email(desired.email)]
        unique: dict[Any, dict[str, Any]] = {}
        for contact in found:
            unique.setdefault(contact.get("id"), contact)
        return list(unique.values())

    def _placeholder(self, contact_id: int, key: str, desired: Customer) -> dict[str, Any]:
        return {
            "id": contact_id,
            "custom_fields": [{"field": self.link_field, "value": key}],
            "taxpayer_identification_number": desired.nif or "",
            "emails": [{"email": desired.email}] if desired.email else [],
        }

    # ------------------------------------------------------------------ apply phase

    def _apply(self, plan: _Plan) -> None:
        try:
            if plan.action == "create":
                self._create(plan)
            elif plan.contact is None:
                # dry run: the contact this code would have was only planned
                self.summary.add("unchanged")
                self.plan.write("unchanged", plan.code, reason=plan.reason)
            else:
                self._update(plan)
        except ClientifyValidationError as exc:
            self._reject(plan, f"Clientify refused it: {exc}")
        except ClientifyNotFoundError as exc:
            if plan.contact is not None:
                self.index().remove(plan.contact)
            self._reject(plan, f"contact vanished during the run, next run re-creates it: {exc}")

    def _create(self, plan: _Plan) -> None:
        assert plan.desired is not None
        changes = contact_changes(
            None, plan.desired, link_field=self.link_field, tag=self.tag, region=self.region
        )
        self._warn(plan.code, changes.issues, "not written")
        contact_id: Any = None
        if not self.dry_run:
            assert changes.create_body is not None
            created = self.client.create_contact(changes.create_body, dedupe_field=self.link_field)
            contact_id = created.get("id")
            if contact_id is not None:
                self.index().add(created)
            if plan.placeholder_id is not None:
                self._pending.remove(plan.placeholder_id)
        self.summary.add("created")
        self.plan.write("create", plan.code, target_id=contact_id, diffs=changes.diffs)
        self.logger.info("client %s: created contact %s", plan.code, contact_id or "(dry run)")

    def _update(self, plan: _Plan) -> None:
        assert plan.desired is not None
        assert plan.contact is not None
        contact = plan.contact
        changes, conflicts = self._changes(contact, plan)
        if any("fetch detail" in issue.problem for issue in changes.issues):
            # A list item without emails/phones/addresses (older accounts): read the detail.
            contact = self.client.get_contact(contact["id"])
            changes, conflicts = self._changes(contact, plan)
        self._warn(plan.code, changes.issues, "left as it is")
        for diff in conflicts:
            self.summary.add("conflicts")
            self.plan.write(
                "conflict",
                plan.code,
                target_id=contact.get("id"),
                diffs=[diff],
                reason=f"{diff.field}: Clientify wins; the FactuSOL change is not applied",
            )
            self.logger.info(
                "client %s: conflict on %s, Clientify wins (contact %s changed later or owns "
                "the field); kept for the clientify-to-factusol run",
                plan.code,
                diff.field,
                contact.get("id"),
            )
        if changes.is_noop:
            self.summary.add("unchanged")
            self.plan.write("unchanged", plan.code, target_id=contact.get("id"))
            self.logger.debug("client %s: contact %s unchanged", plan.code, contact.get("id"))
            return
        if not self.dry_run:
            self._write(contact, changes)
        action = "link" if plan.action == "link" else "update"
        self.summary.add("linked" if action == "link" else "updated")
        self.plan.write(action, plan.code, target_id=contact.get("id"), diffs=changes.diffs)
        self.logger.info(
            "client %s: %s contact %s (%s)",
            plan.code,
            "linked" if action == "link" else "updated",
            contact.get("id"),
            ", ".join(d.field for d in changes.diffs) or "tag",
        )

    def _changes(
        self, contact: dict[str, Any], plan: _Plan
    ) -> tuple[ContactChanges, list[FieldDiff]]:
        """The changes to send after the conflict rule, and the diffs Clientify won."""
        assert plan.desired is not None
        desired = plan.desired
        changes = contact_changes(
            contact, desired, link_field=self.link_field, tag=self.tag, region=self.region
        )
        factusol_modified = _as_datetime(plan.record.get("modified"))
        date_only = factusol_modified is not None and factusol_modified.time() == time()
        clientify_modified = parse_api_datetime(contact.get("modified"))
        lost: list[FieldDiff] = []
        for diff in changes.diffs:
            if diff.field not in CONFLICT_FIELDS:
                continue
            # An empty company is not a Clientify-side value: the sync never clears a company
            # (sending one creates it), so it could not flow back and the conflict would repeat
            # on every run. Fill it from FactuSOL instead.
            if diff.field == "trade_name" and not diff.before:
                continue
            winner = decide_winner(
                diff.field,
                factusol_modified=factusol_modified,
                factusol_date_only=date_only,
                clientify_modified=clientify_modified,
                policy=self.policy,
            )
            if winner == "clientify":
                lost.append(diff)
        if not lost:
            return changes, []
        # Unset fields are left as they are: the losing side's values stay in Clientify.
        kept = desired.replace(**{diff.field: None for diff in lost})
        changes = contact_changes(
            contact, kept, link_field=self.link_field, tag=self.tag, region=self.region
        )
        return changes, lost

    def _write(self, contact: dict[str, Any], changes: ContactChanges) -> None:
        """PUT the top-level fields, then the sub-resource calls; keep the index current."""
        cid = contact["id"]
        current = dict(contact)
        if changes.update_body:
            current.update(self.client.update_contact(cid, changes.update_body))
        for op in changes.operations:
            if isinstance(op, AddEmail):
                _append(current, "emails", self.client.add_email(cid, op.email, type=op.type))
            elif isinstance(op, DeleteEmail):
                self.client.delete_email(cid, op.email_id)
                _remove(current, "emails", op.email_id)
            elif isinstance(op, AddPhone):
                _append(current, "phones", self.client.add_phone(cid, op.phone, type=op.type))
            elif isinstance(op, DeletePhone):
                self.client.delete_phone(cid, op.phone_id)
                _remove(current, "phones", op.phone_id)
            elif isinstance(op, AddAddress):
                _append(current, "addresses", self.client.add_address(cid, op.address))
            elif isinstance(op, DeleteAddress):
                self.client.delete_address(cid, op.address_id)
                _remove(current, "addresses", op.address_id)
            elif isinstance(op, AddTag):
                item = self.client.add_tag(cid, op.name)
                _append(current, "tags", item.get("name", op.name))  # list items: tag names
            else:  # a new operation kind in customer_sync: fail loudly, never skip it
                raise TargetClientifyError(f"unknown contact operation {op.kind!r}")
        self.index().add(current)

    # ------------------------------------------------------------------ rejects and warnings

    def _reject(self, plan: _Plan, reason: str) -> _Plan:
        plan.action, plan.reason = "reject", reason
        self.summary.add("rejected")
        self.logger.error("client %s rejected: %s", plan.code, reason)
        self.rejects.reject(
            self._stream,
            plan.record,
            reason=reason,
            key=plan.code,
            schema=self._schema,
            key_properties=self._keys,
        )
        self.plan.write("reject", plan.code, reason=reason)
        return plan

    def _warn(self, code: object, issues: Sequence[FieldIssue], consequence: str) -> None:
        for issue in issues:
            self.summary.add("warnings")
            # field and problem only: the value itself is personal data
            self.logger.warning(
                "client %s: %s %s; %s", code, issue.field, issue.problem, consequence
            )


def _append(contact: dict[str, Any], key: str, item: object) -> None:
    items = contact.get(key)
    contact[key] = [*(items if isinstance(items, list) else []), item]


def _remove(contact: dict[str, Any], key: str, item_id: object) -> None:
    items = contact.get(key)
    contact[key] = [
        i
        for i in (items if isinstance(items, list) else [])
        if not (isinstance(i, Mapping) and i.get("id") == item_id)
    ]


class ClientsSink(BatchSink):
    """Batches `clients` records (deduplicated by code, the last one wins) for ClientifyRun."""

    MAX_SIZE_DEFAULT = 500
    # A record the schema rejects reaches process_record and is handled by the mapping (one
    # bad record never stops the run); see _validate_and_parse.
    fail_on_record_validation_exception = False

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: Sequence[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        self._owner = target  # the SDK keeps no reference; the run lives on the target

    @override
    def setup(self) -> None:
        super().setup()
        if "code" not in self.schema.get("properties", {}):
            raise TargetClientifyError(
                f"stream '{self.stream_name}' has no `code` property: target-clientify reads "
                "the `clients` stream of tap-factusol (see its README for the contract)"
            )
        self.run: ClientifyRun = self._owner.run  # type: ignore[attr-defined]

    @override
    def _validate_and_parse(self, record: dict[str, Any]) -> dict[str, Any]:
        # The SDK's version logs a schema failure with the whole record (personal data) and
        # stops the run on a date-time it cannot parse ('0000-00-00', '2024-02-30T…'). Here a
        # schema failure goes on to the mapping as before (rejected there, or synced without
        # the bad field), logged with the client code and the failing rule only; a date-time
        # that does not parse keeps its raw value and is noted for ClientifyRun, which warns
        # (client code, field) and reads it as unknown.
        if self._validator is not None:
            try:
                self._validator.validate(record)
            except InvalidRecord as exc:
                if self.fail_on_record_validation_exception:
                    raise
                cause = exc.__cause__
                self.logger.warning(
                    "client %s: record does not match the %s schema (%s at %s)",
                    record.get("code"),
                    self.stream_name,
                    getattr(cause, "validator", "?"),
                    getattr(cause, "json_path", "$"),
                )
        parsed = dict(record)
        try:
            self._parse_timestamps_in_record(parsed, self.schema, DatetimeErrorTreatmentEnum.ERROR)
        except ValueError:
            bad = []
            for key, value in record.items():  # one field at a time, to find the bad ones
                one = {key: value}
                try:
                    self._parse_timestamps_in_record(
                        one, self.schema, DatetimeErrorTreatmentEnum.ERROR
                    )
                except ValueError:
                    bad.append(key)
                    continue
                record[key] = one[key]
            record[BAD_DATES] = bad
            return record
        record.update(parsed)
        return record

    @override
    def _after_process_record(self, context: dict[str, Any]) -> None:
        # The SDK logs the whole batch context (personal data) at DEBUG here; log nothing.
        return

    @override
    def preprocess_record(self, record: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        # The SDK checks the key properties right after this hook and stops the whole run on a
        # record without one (MissingKeyPropertiesError). Let it through, marked and with the
        # key set to None, so ClientifyRun rejects it with a reason and the run goes on.
        missing = [key for key in self.key_properties if key not in record]
        if missing:
            record[MISSING_KEYS] = missing
            record.update(dict.fromkeys(missing))
        return record

    @override
    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        by_code: dict[Any, dict[str, Any]] = context.setdefault("by_code", {})
        code = record.get("code")
        key = code if isinstance(code, int) else ("?", len(by_code))
        if key in by_code:
            self.tally_duplicate_merged()
            del by_code[key]  # re-insert: the last version keeps the later position
        by_code[key] = record

    @override
    def process_batch(self, context: dict[str, Any]) -> None:
        records = list(context.get("by_code", {}).values())
        if records:
            self.run.process_batch(
                records,
                stream=self.stream_name,
                schema=self.schema,
                key_properties=self.key_properties,
            )

    @override
    def clean_up(self) -> None:
        try:
            self.run.finish()
        finally:
            super().clean_up()
