"""Write: carry out one plan (on the runtime's pool of threads), and keep the ledger in step.

Plans that touch the same CODCLI run in one task, in order (``ContactPlan.group``); Clientify
calls share the client's rate limiter. Each write to a linked pair is announced in the ledger
first and settled after, so a crash in between neither loses nor repeats a change. A new
client carries a creation marker in OBSCLI, written in the same call that creates it, so a
crash before the link write-back is completed by the next run instead of creating the client
twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any

from clientify_api import (
    ClientifyNotFoundError,
    ClientifyValidationError,
    contact_tags,
)
from customer_sync import (
    FieldDiff,
    RecordRejected,
    agreed_values,
    client_changes,
    customer_from_row,
    next_base,
)
from factusol_api import FactusolRecordError, FactusolRecordExistsError
from target_runtime import SyncRun, crash, note_conflicts

from target_factusol.codes import CodeAllocator
from target_factusol.decide import ContactPlan
from target_factusol.find import Finder, Item
from target_factusol.markers import marker_ids, marker_line

#: the tag a contact gets when its client was deleted in FactuSOL (the contact is kept)
DELETED_TAG = "factusol-deleted"
# Codes tried after BDExisteRegistro before the record is rejected (another writer is racing us).
MAX_CODE_ATTEMPTS = 20
# How old the streamed tags of a contact may be for the link write-back to send them back
# (with ours) in its one PUT; older, the tag is added by its own call.
FRESH_TAGS_SECONDS = 60.0


class Writer:
    """The writes of one run."""

    def __init__(self, run: SyncRun, finder: Finder, codes: CodeAllocator) -> None:
        assert run.factusol is not None
        self.fs = run.factusol
        self.cl = run.clientify
        self.finder = finder
        self.codes = codes
        self.claims = run.claims
        self.ledger = run.ledger
        self.summary = run.summary
        self.region = run.region
        self.tz = run.tz
        self.link_field = run.link_field
        self.tag = run.settings.tag or ""
        self.dry_run = run.dry_run
        self.log = run.log
        self.lines = run.lines  # per-record lines: the first few at their level, then DEBUG
        self.warn = run.warn
        self.run = run  # run.received_at: when the batch's first record arrived
        self.memory = run.memory
        self.monotonic = time.monotonic  # a test may move it
        self.kept: list[int] = []  # deletions this run reported (marked reported at its end)
        self._kept_lock = threading.Lock()

    def apply(self, plan: ContactPlan) -> None:
        """Carry out one plan; RecordRejected (planning undone) when a system refuses it."""
        if plan.action == "skip":
            return  # a decision kept (forgotten, a deletion already reported): quiet
        try:
            if plan.action == "kept_deleted":
                self._keep_deleted(plan)
            elif plan.action == "update":
                self._update(plan)
            elif plan.action == "link":
                self._adopt(plan)
            else:
                self._create(plan)
        except RecordRejected:
            self._release(plan)
            raise
        except FactusolRecordError as exc:
            self._release(plan)
            raise RecordRejected(f"FactuSOL refused the write: {exc}", code="api_refused") from None
        except (ClientifyValidationError, ClientifyNotFoundError) as exc:
            self._release(plan)
            raise RecordRejected(
                f"Clientify refused the link write-back: {exc}", code="api_refused"
            ) from None

    def _release(self, plan: ContactPlan) -> None:
        """A refused write: undo what planning assumed (later batches decide afresh)."""
        if plan.code is None:
            return
        if plan.action == "link" and plan.claimed:
            self.claims.release(plan.code)
        elif plan.action == "create" and not plan.inserted and not plan.fixed:
            self.claims.release(plan.code)
            self.finder.forget_client(plan.code)

    # ------------------------------------------------------------------ deletions

    def _keep_deleted(self, plan: ContactPlan) -> None:
        """The client was deleted in FactuSOL: keep the contact, tag it, keep the decision.

        The mark goes first (the ledger is the decision; a tag lost to a stop is added again
        by the next run, which reports a mark not yet reported). Nothing is written to
        FactuSOL and the contact's link field is left as the user sees it.
        """
        item, code = _item(plan), plan.code
        assert code is not None
        if not self.dry_run:
            self.memory.mark(code, "deleted_in_factusol", contact_id=item.contact_id)
            if DELETED_TAG not in contact_tags(item.record):
                self.cl.add_tag(item.contact_id, DELETED_TAG)  # adds, never replaces
        with self._kept_lock:
            self.kept.append(code)
        self.summary.add("kept_deleted")
        self.lines.log(
            "kept deletion",
            logging.INFO,
            "contact %s: client %s was deleted in FactuSOL; kept",
            item.contact_id,
            code,
            where="every one is a kept_deleted line of the plan file",
        )
        plan.note(
            "kept_deleted",
            plan.key,
            target_id=code,
            reason=(
                f"client {code} was deleted in FactuSOL: the contact is kept (tag "
                f"{DELETED_TAG}) and the client is not created again; "
                f"`fcsync-relink --client {code}` brings it back"
            ),
        )

    # ------------------------------------------------------------------ linked pairs

    def _update(self, plan: ContactPlan) -> None:
        applied = self._write_merged(plan)
        if applied:
            self.summary.add("updated")
            plan.note("update", plan.key, target_id=plan.code, diffs=applied)
        else:
            self.summary.add("unchanged")
            plan.note("unchanged", plan.key, target_id=plan.code)

    def _adopt(self, plan: ContactPlan) -> None:
        """Link an existing client (found by marker or match), then merge like a linked one."""
        assert plan.code is not None
        self._write_back(plan, plan.code)
        applied = self._write_merged(plan, written_back=True)
        self.summary.add("linked")
        plan.note("link", plan.key, target_id=plan.code, diffs=applied, reason=plan.how)

    def _write_merged(self, plan: ContactPlan, *, written_back: bool = False) -> list[FieldDiff]:
        """Write FactuSOL's side of the merge; record the pair's new base. Returns the diffs."""
        assert plan.row is not None
        assert plan.code is not None
        assert plan.merge is not None
        item, code, merge = _item(plan), plan.code, plan.merge
        note_conflicts(
            plan, merge, written="factusol", target_id=code, summary=self.summary, logger=self.lines
        )
        changes = client_changes(plan.row, merge.desired("factusol"), region=self.region)
        self.warn(plan.key, changes.issues, "FactuSOL")
        write = dict(changes.row)
        write["CODCLI"] = code
        written = len(write) > 1
        if written and not self.dry_run:
            if self.ledger is not None and plan.ledger is not None:
                wanted = {d.field: d.after for d in changes.diffs if d.after is not None}
                self.ledger.begin(code, item.contact_id, "factusol", wanted)
            self.fs.update_client(write)  # one task per code: never two writers on one row
            crash.point("after_client_update", code)
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

    # ------------------------------------------------------------------ new clients

    def _create(self, plan: ContactPlan) -> None:
        item = _item(plan)
        changes = client_changes(None, item.customer.replace(factusol_id=None), region=self.region)
        self.warn(plan.key, changes.issues, "FactuSOL")
        row = dict(changes.row)
        row["FALCLI"] = dt.datetime.now(self.tz).date().isoformat()
        row["OBSCLI"] = marker_line(item.contact_id)
        planned = plan.code
        code = self._insert(plan, row)
        plan.inserted = not self.dry_run
        if code != planned and planned is not None:
            # Another writer held the planned code: the run's view must name the real one.
            self.claims.release(planned)
            self.finder.forget_client(planned)
            self.claims.claim(code, item.contact_id)
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

    def _insert(self, plan: ContactPlan, row: dict[str, Any]) -> int:
        """Insert under the planned code (the next free one after a collision); return it."""
        item = _item(plan)
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
        """Between the two writes of a creation: the crash seam of the crash tests."""
        crash.point("after_client_insert", code)

    def _write_back(self, plan: ContactPlan, code: int) -> None:
        """Write the client code to the contact's link field (and our tag)."""
        item = _item(plan)
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
        received = self.run.received_at
        return received is not None and self.monotonic() - received <= FRESH_TAGS_SECONDS


def _item(plan: ContactPlan) -> Item:
    assert plan.item is not None
    return plan.item
