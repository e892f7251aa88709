"""Write a planned contact: create it, or send what the merge says Clientify lacks.

Runs on a thread pool under the client's rate limiter; one code appears once per batch, so a
contact is never written by two threads at once. Each write to a linked pair is announced in
the ledger first and settled after (its sub-resource calls are several: a crash between them
must not read as a user's change on the next run).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from clientify_api import (
    ClientifyConflictError,
    ClientifyNotFoundError,
    ClientifyValidationError,
)
from customer_sync import (
    AddAddress,
    AddEmail,
    AddPhone,
    AddTag,
    ContactChanges,
    DeleteAddress,
    DeleteEmail,
    DeletePhone,
    FieldIssue,
    MergeResult,
    RecordRejected,
    agreed_values,
    contact_changes,
    customer_from_contact,
    next_base,
)
from sync_ledger import HistoryEvent
from target_runtime import SyncRun, TargetStop, crash, note_conflicts

from target_clientify.decide import ClientPlan, Decider


class Writer:
    """The writes of one run."""

    def __init__(self, run: SyncRun, decider: Decider) -> None:
        self.client = run.clientify
        self.decider = decider
        self.index = run.contact_index
        self.decisions = run.decisions
        self.ledger = run.ledger
        self.summary = run.summary
        self.link_field = run.link_field
        self.tag = run.settings.tag
        self.region = run.region
        self.dry_run = run.dry_run
        self.logger = run.log
        self.lines = run.lines  # per-record lines: the first few at their level, then DEBUG
        self.warn = run.warn
        self.memory = run.memory

    def apply(self, plan: ClientPlan) -> None:
        """Carry out one plan; RecordRejected when Clientify refuses it."""
        try:
            if plan.action == "forgotten":
                self._forgotten(plan)
            elif plan.action == "kept_deleted":
                self._kept_deleted(plan)
            elif plan.action == "create":
                self._create(plan)
            elif plan.contact is None:
                # dry run: the contact this code would have was only planned
                self.summary.add("unchanged")
                plan.note("unchanged", plan.key, reason=plan.reason)
            else:
                self._update(plan)
                self._lift(plan)
        except ClientifyValidationError as exc:
            raise RecordRejected(f"Clientify refused it: {exc}", code="api_refused") from None
        except ClientifyNotFoundError as exc:
            if plan.contact is not None:
                self.index().remove(plan.contact)
                if plan.ledger is not None and self._deleted(plan.contact):
                    # The index did not know yet (a kept cache whose count still matched):
                    # the write found the linked contact deleted. The same decision as below.
                    plan.lines = [line for line in plan.lines if line[0] != "conflict"]
                    plan.deleted_contact = str(plan.contact.get("id"))
                    self._kept_deleted(plan)
                    return
            raise RecordRejected(
                f"contact vanished during the run (deleted in Clientify: the next run keeps "
                f"the deletion unless another contact carries the link): {exc}",
                code="vanished",
            ) from None

    # ------------------------------------------------------------------ decisions kept

    def _deleted(self, contact: Mapping[str, Any]) -> bool:
        """Whether the contact is gone (one read, only after a 404 on a write: a sub-resource
        item missing is not the contact missing)."""
        try:
            self.client.get_contact(contact["id"])
        except ClientifyNotFoundError:
            return True
        return False

    def _forgotten(self, plan: ClientPlan) -> None:
        """A person forgotten on request: skipped quietly (a dry run's plan says why)."""
        if self.dry_run:
            plan.note(
                "unchanged",
                plan.key,
                reason="forgotten (fcsync-forget): never pulled back into Clientify; "
                f"fcsync-relink --client {plan.key} brings it back",
            )

    def _lift(self, plan: ClientPlan) -> None:
        """A client marked deleted in Clientify whose link a contact carries again (a user
        linked it by hand): synced by the existing rules, the mark lifted."""
        history = self.memory.history
        if plan.mark is None or self.dry_run or history is None or plan.contact is None:
            return
        if history.unmark(int(plan.key)) is not None:
            self.memory.record(
                [
                    HistoryEvent(
                        "relinked",
                        code=int(plan.key),
                        contact_id=str(plan.contact.get("id")),
                        detail={"was": plan.mark.kind, "by": "a contact carries the link"},
                    )
                ]
            )

    def _kept_deleted(self, plan: ClientPlan) -> None:
        """A contact deleted (or merged away) in Clientify: not created again, the client left
        as it is. Marked and reported by the run that first sees it; later runs are quiet."""
        code, mark = int(plan.key), plan.mark
        contact_id: Any = plan.deleted_contact  # kept as text; plan lines show ids as numbers
        if isinstance(contact_id, str) and contact_id.isdigit():
            contact_id = int(contact_id)
        relink = f"fcsync-relink --client {code} brings it back"
        if self.dry_run:  # nothing is marked: the plan says what would be
            if mark is None:
                reason = f"deleted in Clientify: would be marked and not re-created; {relink}"
            else:
                reason = f"deleted in Clientify (marked): not re-created; {relink}"
            plan.note("kept_deleted", plan.key, target_id=contact_id, reason=reason)
            if mark is None or not mark.reported:
                self.summary.add("kept_deleted")
            return
        if mark is None:
            self.memory.mark(code, "deleted_in_clientify", contact_id=contact_id)
            if self.ledger is not None:
                # The mark is the memory now; a relink (mark lifted) starts afresh.
                self.ledger.forget(code)
        elif mark.reported:
            return  # the report named it once already
        self.memory.reported([code])
        self.summary.add("kept_deleted")
        plan.note(
            "kept_deleted",
            plan.key,
            target_id=contact_id,
            reason=f"deleted in Clientify: not re-created; {relink}",
        )
        self.lines.log(
            "kept deletion",
            logging.INFO,
            "client %s: contact %s was deleted in Clientify: not re-created",
            code,
            contact_id,
            where="every one is a kept_deleted line of the plan file",
        )

    # ------------------------------------------------------------------ create

    def _create(self, plan: ClientPlan) -> None:
        assert plan.desired is not None
        changes = contact_changes(
            None, plan.desired, link_field=self.link_field, tag=self.tag, region=self.region
        )
        self.warn(plan.key, changes.issues, "not written")
        contact_id: Any = None
        reason: str | None = None
        if not self.dry_run:
            assert changes.create_body is not None
            created, dropped = self._post(plan, changes.create_body)
            if dropped is not None:
                reason = (
                    f"created without {dropped}: Clientify refused it as already taken by "
                    "another contact"
                )
            contact_id = created.get("id")
            with self.decisions:  # indexed and no longer planned, in one step for deciding
                if contact_id is not None:
                    self.index().add(created)
                self.decider.created(plan)
            if contact_id is not None and self.ledger is not None:
                clientify, _ = customer_from_contact(
                    created, region=self.region, link_field=self.link_field
                )
                self.ledger.record(
                    int(plan.key),
                    contact_id,
                    agreed_values(plan.desired, clientify),
                    clientify_written_at=self.client.server_now(),
                )
        self.summary.add("created")
        plan.note("create", plan.key, target_id=contact_id, diffs=changes.diffs, reason=reason)
        # one line per record: DEBUG (the plan file and the progress lines say it at INFO)
        self.logger.debug("client %s: created contact %s", plan.key, contact_id or "(dry run)")

    def _post(self, plan: ClientPlan, body: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """POST the contact; a unique value refused (409 on a duplicate NIF, for some accounts)
        is left out and the create sent again: the customer is still synced, without it."""
        try:
            return self.client.create_contact(body, dedupe_field=self.link_field), None
        except ClientifyConflictError as exc:
            field = exc.field
            if not field or field not in body or field in ("custom_fields", self.link_field):
                raise
            self.warn(
                plan.key,
                [FieldIssue(field, "refused by Clientify: another contact already has it")],
                "contact created without it",
            )
            rest = {name: value for name, value in body.items() if name != field}
            return self.client.create_contact(rest, dedupe_field=self.link_field), field

    # ------------------------------------------------------------------ update / link

    def _update(self, plan: ClientPlan) -> None:
        assert plan.desired is not None
        assert plan.contact is not None
        assert plan.merge is not None
        contact, merge = plan.contact, plan.merge  # merged while deciding
        changes = self._changes(contact, plan, merge)
        if any("fetch detail" in issue.problem for issue in changes.issues):
            # A list item without emails/phones/addresses (older accounts): read the detail,
            # and merge again with what it holds.
            contact = self.client.get_contact(contact["id"])
            merge = self.decider.merge(plan, contact)
            changes = self._changes(contact, plan, merge)
        self.warn(plan.key, changes.issues, "left as it is")
        note_conflicts(
            plan,
            merge,
            written="clientify",
            target_id=contact.get("id"),
            summary=self.summary,
            logger=self.lines,
        )
        current = contact
        if not changes.is_noop and not self.dry_run:
            current = self._write(plan, contact, changes)
        self._record(plan, merge, current, written=not changes.is_noop)
        if changes.is_noop:
            self.summary.add("unchanged")
            plan.note("unchanged", plan.key, target_id=contact.get("id"))
            self.logger.debug("client %s: contact %s unchanged", plan.key, contact.get("id"))
            return
        action = "link" if plan.action == "link" else "update"
        self.summary.add("linked" if action == "link" else "updated")
        plan.note(
            action, plan.key, target_id=contact.get("id"), diffs=changes.diffs, reason=plan.how
        )
        self.logger.debug(
            "client %s: %s contact %s (%s)",
            plan.key,
            "linked" if action == "link" else "updated",
            contact.get("id"),
            ", ".join(d.field for d in changes.diffs) or "tag",
        )

    def _changes(
        self, contact: dict[str, Any], plan: ClientPlan, merge: MergeResult
    ) -> ContactChanges:
        """What Clientify lacks of the merged values (and the link, for a new link)."""
        assert plan.desired is not None
        desired = merge.desired("clientify").replace(factusol_id=plan.desired.factusol_id)
        return contact_changes(
            contact, desired, link_field=self.link_field, tag=self.tag, region=self.region
        )

    def _record(
        self, plan: ClientPlan, merge: MergeResult, current: Mapping[str, Any], *, written: bool
    ) -> None:
        """The pair's new ledger entry (skipped when nothing would change in it)."""
        if self.dry_run or self.ledger is None:
            return
        assert plan.desired is not None
        after, _ = customer_from_contact(current, region=self.region, link_field=self.link_field)
        base = plan.ledger.base if plan.ledger is not None else None
        new_base = next_base(
            merge, written="clientify", source=plan.desired, written_after=after, base=base
        )
        if plan.ledger is None or written or new_base != base or plan.ledger.pending:
            self.ledger.record(
                int(plan.key),
                current.get("id"),
                new_base,
                clientify_written_at=self.client.server_now() if written else None,
            )

    def _write(
        self, plan: ClientPlan, contact: dict[str, Any], changes: ContactChanges
    ) -> dict[str, Any]:
        """PUT the top-level fields, then the sub-resource calls; keep the index current."""
        cid = contact["id"]
        if self.ledger is not None and plan.ledger is not None:
            wanted = {d.field: d.after for d in changes.diffs if d.after is not None}
            self.ledger.begin(int(plan.key), cid, "clientify", wanted)
        current = dict(contact)
        if changes.update_body:
            current.update(self.client.update_contact(cid, changes.update_body))
        for number, op in enumerate(changes.operations):
            if number == 1:
                crash.point("contact_write_partial", cid)
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
                raise TargetStop(f"unknown contact operation {op.kind!r}")
        self.index().add(current)
        crash.point("after_contact_write", cid)
        return current


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
