"""Write: carry out the plans on a pool of threads, and keep the ledger in step.

Plans that touch the same CODCLI run in one task, in order; Clientify calls share the client's
rate limiter. Each write to a linked pair is announced in the ledger first and settled after,
so a crash in between neither loses nor repeats a change. A new client carries a creation
marker in OBSCLI, written in the same call that creates it, so a crash before the link
write-back is completed by the next run instead of creating the client twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any
from zoneinfo import ZoneInfo

from clientify_api import (
    ClientifyClient,
    ClientifyNotFoundError,
    ClientifyValidationError,
    contact_tags,
)
from customer_sync import (
    FieldDiff,
    FieldIssue,
    RecordRejected,
    RunSummary,
    agreed_values,
    client_changes,
    customer_from_row,
    next_base,
)
from factusol_api import FactusolClient, FactusolRecordError, FactusolRecordExistsError
from sync_ledger import SyncLedger

from target_factusol.codes import CodeAllocator
from target_factusol.decide import Plan
from target_factusol.find import Finder
from target_factusol.markers import marker_ids, marker_line

# Codes tried after BDExisteRegistro before the record is rejected (another writer is racing us).
MAX_CODE_ATTEMPTS = 20
# Test hook: simulate a kill between the FactuSOL insert and the Clientify write-back.
CRASH_AFTER_INSERT_ENV = "FCSYNC_TEST_CRASH_AFTER_INSERT"
# Test hook: SIGKILL the target between a FactuSOL update and the ledger update.
CRASH_AFTER_UPDATE_ENV = "FCSYNC_TEST_CRASH_AFTER_UPDATE"
# How old the streamed tags of a contact may be for the link write-back to send them back
# (with ours) in its one PUT; older, the tag is added by its own call.
FRESH_TAGS_SECONDS = 60.0


class Writer:
    """The writes of one run."""

    def __init__(
        self,
        *,
        factusol: FactusolClient,
        clientify: ClientifyClient,
        finder: Finder,
        codes: CodeAllocator,
        ledger: SyncLedger | None,
        summary: RunSummary,
        region: str,
        tz: ZoneInfo,
        link_field: str,
        tag: str,
        dry_run: bool,
        max_workers: int,
        logger: logging.Logger,
        on_done: Callable[[], None] = lambda: None,
    ) -> None:
        self.fs = factusol
        self.cl = clientify
        self.finder = finder
        self.codes = codes
        self.ledger = ledger
        self.summary = summary
        self.region = region
        self.tz = tz
        self.link_field = link_field
        self.tag = tag
        self.dry_run = dry_run
        self.max_workers = max_workers
        self.log = logger
        self.on_done = on_done
        self.batch_received_at: float | None = None
        self.monotonic = time.monotonic  # a test may move it

    # ------------------------------------------------------------------ the pool

    def apply_all(self, plans: list[Plan]) -> None:
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
            futures: list[Future[None]] = [pool.submit(self._task, task) for task in tasks.values()]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        finally:
            # After an error (or an interrupt) the records not started stay for the next run;
            # the writes in flight finish, so no insert is left without its bookkeeping.
            pool.shutdown(wait=True, cancel_futures=True)
        failed = next((f for f in done if f.exception() is not None), None)
        if failed is not None:
            failed.result()  # re-raise (systemic error, or a test hook's interrupt)
        for plan in plans:
            if plan.reject is not None:
                self._release(plan)

    def _task(self, plans: list[Plan]) -> None:
        for plan in plans:
            try:
                if plan.action == "update":
                    self._update(plan)
                elif plan.action == "link":
                    self._adopt(plan)
                else:
                    self._create(plan)
            except RecordRejected as exc:
                plan.reject = exc
            except FactusolRecordError as exc:
                plan.reject = RecordRejected(
                    f"FactuSOL refused the write: {exc}", code="api_refused"
                )
            except (ClientifyValidationError, ClientifyNotFoundError) as exc:
                plan.reject = RecordRejected(
                    f"Clientify refused the link write-back: {exc}", code="api_refused"
                )
            plan.done = True
            self.on_done()

    def _release(self, plan: Plan) -> None:
        """A refused write: undo what planning assumed (later batches decide afresh)."""
        if plan.code is None:
            return
        if plan.action == "link" and plan.claimed:
            self.finder.release(plan.code)
        elif plan.action == "create" and not plan.inserted and not plan.fixed:
            self.finder.release(plan.code)
            self.finder.forget_client(plan.code)

    # ------------------------------------------------------------------ linked pairs

    def _update(self, plan: Plan) -> None:
        applied = self._write_merged(plan)
        if applied:
            self.summary.add("updated")
            plan.note("update", plan.item.contact_id, target_id=plan.code, diffs=applied)
        else:
            self.summary.add("unchanged")
            plan.note("unchanged", plan.item.contact_id, target_id=plan.code)

    def _adopt(self, plan: Plan) -> None:
        """Link an existing client (found by marker or match), then merge like a linked one."""
        assert plan.code is not None
        self._write_back(plan, plan.code)
        applied = self._write_merged(plan, written_back=True)
        self.summary.add("linked")
        plan.note("link", plan.item.contact_id, target_id=plan.code, diffs=applied, reason=plan.how)

    def _write_merged(self, plan: Plan, *, written_back: bool = False) -> list[FieldDiff]:
        """Write FactuSOL's side of the merge; record the pair's new base. Returns the diffs."""
        assert plan.row is not None
        assert plan.code is not None
        assert plan.merge is not None
        item, code, merge = plan.item, plan.code, plan.merge
        self._note_conflicts(plan)
        changes = client_changes(plan.row, merge.desired("factusol"), region=self.region)
        self._warn(plan, changes.issues)
        write = dict(changes.row)
        write["CODCLI"] = code
        written = len(write) > 1
        if written and not self.dry_run:
            if self.ledger is not None and plan.ledger is not None:
                wanted = {d.field: d.after for d in changes.diffs if d.after is not None}
                self.ledger.begin(code, item.contact_id, "factusol", wanted)
            self.fs.update_client(write)  # one task per code: never two writers on one row
            if os.environ.get(CRASH_AFTER_UPDATE_ENV):
                self.log.error("test hook: killed after updating client %s", code)
                os.kill(os.getpid(), signal.SIGKILL)
        if not self.dry_run and self.ledger is not None:
            after_row = {**plan.row, **write}
            after, _ = customer_from_row(after_row, region=self.region)
            base = plan.ledger.base if plan.ledger is not None else None
            new_base = next_base(
                merge, written="factusol", source=item.customer, written_after=after, base=base
            )
            if plan.ledger is None or new_base != base or plan.ledger.pending or written_back:
                self.ledger.record(
                    code,
                    item.contact_id,
                    new_base,
                    clientify_written_at=self.cl.server_now() if written_back else None,
                )
        return changes.diffs if written else []

    def _note_conflicts(self, plan: Plan) -> None:
        assert plan.merge is not None
        for m in plan.merge.conflicts:
            if m.rule == "no-ledger" and m.winner == "clientify":
                continue  # no base to tell who changed: Clientify's value is simply applied
            self.summary.add("conflicts")
            diff = FieldDiff(m.field, m.factusol, m.value)
            side = "FactuSOL" if m.winner == "factusol" else "Clientify"
            rule = "no ledger entry yet" if m.rule == "no-ledger" else "changed on both sides"
            self.log.warning(
                "conflict: contact %s, client %s, field %s: %s wins (%s)",
                plan.item.contact_id,
                plan.code,
                m.field,
                side,
                rule,
            )
            plan.note(
                "conflict",
                plan.item.contact_id,
                target_id=plan.code,
                diffs=[diff],
                reason=f"{m.field}: {rule}; {side} wins",
                winner=m.winner,
                values={"factusol": m.factusol, "clientify": m.clientify},
            )

    # ------------------------------------------------------------------ new clients

    def _create(self, plan: Plan) -> None:
        item = plan.item
        changes = client_changes(None, item.customer.replace(factusol_id=None), region=self.region)
        self._warn(plan, changes.issues)
        row = dict(changes.row)
        row["FALCLI"] = dt.datetime.now(self.tz).date().isoformat()
        row["OBSCLI"] = marker_line(item.contact_id)
        planned = plan.code
        code = self._insert(plan, row)
        plan.inserted = not self.dry_run
        if code != planned and planned is not None:
            # Another writer held the planned code: the run's view must name the real one.
            self.finder.release(planned)
            self.finder.forget_client(planned)
            self.finder.claim(code, item.contact_id)
            self.finder.remember_client(code, item.customer)
        plan.code = code
        self.finder.note_marker(item.contact_id, code)
        if item.code is None:
            self._write_back(plan, code)
        if not self.dry_run and self.ledger is not None:
            created, _ = customer_from_row({**row, "CODCLI": code}, region=self.region)
            self.ledger.record(
                code,
                item.contact_id,
                agreed_values(created, item.customer),
                clientify_written_at=self.cl.server_now() if item.code is None else None,
            )
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
                        f"client {code} was created by someone else since it was read",
                        code="api_refused",
                    ) from None
                # Someone else's client: take a fresh code (other workers hold the ones between).
                taken, code = code, self.codes.next()
                self.log.warning("CODCLI %s is already taken; trying %s", taken, code)
        else:
            raise RecordRejected(
                f"no free CODCLI after {MAX_CODE_ATTEMPTS} attempts", code="api_refused"
            )
        self.after_insert(item.contact_id, code)
        return code

    def after_insert(self, contact_id: int, code: int) -> None:
        """Between the two writes of a creation (a test hook simulates a kill here)."""
        if os.environ.get(CRASH_AFTER_INSERT_ENV):
            self.log.error("test hook: exiting after creating client %s", code)
            os._exit(70)

    def _write_back(self, plan: Plan, code: int) -> None:
        """Write the client code to the contact's link field (and our tag)."""
        item = plan.item
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
            linked = dict(item.record)
            fields = [
                f for f in (linked.get("custom_fields") or []) if f.get("field") != self.link_field
            ]
            linked["custom_fields"] = [*fields, *link]
            self.finder.index_contact(linked)

    def _tags_are_fresh(self) -> bool:
        received = self.batch_received_at
        return received is not None and self.monotonic() - received <= FRESH_TAGS_SECONDS

    def _warn(self, plan: Plan, issues: list[FieldIssue]) -> None:
        """Values FactuSOL cannot hold (cut, replaced, or left out): never silent."""
        for issue in issues:
            # field and problem only, never the value (personal data)
            self.log.warning(
                "contact %s: %s: %s (FactuSOL)", plan.item.contact_id, issue.field, issue.problem
            )
            self.summary.add("warnings")
