"""Write a planned contact: create it, or send what the merge says Clientify lacks.

Runs on a thread pool under the client's rate limiter; one code appears once per batch, so a
contact is never written by two threads at once. Each write to a linked pair is announced in
the ledger first and settled after (its sub-resource calls are several: a crash between them
must not read as a user's change on the next run).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from clientify_api import (
    ClientifyClient,
    ClientifyNotFoundError,
    ClientifyValidationError,
    ContactIndex,
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
    FieldDiff,
    FieldIssue,
    MergeResult,
    PlanWriter,
    RecordRejected,
    RunSummary,
    agreed_values,
    contact_changes,
    customer_from_contact,
    next_base,
)
from sync_ledger import SyncLedger

from target_clientify.decide import Decider, Plan
from target_clientify.records import TargetClientifyError

# Test hook: SIGKILL the target after a contact's writes, before the ledger update ("partial":
# after the first call of several).
CRASH_AFTER_CONTACT_WRITE_ENV = "FCSYNC_TEST_CRASH_AFTER_CONTACT_WRITE"


def _crash_hook(stage: str, contact_id: object, logger: logging.Logger) -> None:
    if os.environ.get(CRASH_AFTER_CONTACT_WRITE_ENV) == stage:
        logger.error("test hook: killed after writing contact %s (%s)", contact_id, stage)
        os.kill(os.getpid(), signal.SIGKILL)


class Writer:
    """The writes of one run."""

    def __init__(
        self,
        *,
        client: ClientifyClient,
        decider: Decider,
        index: Callable[[], ContactIndex],
        ledger: SyncLedger | None,
        summary: RunSummary,
        plan_file: PlanWriter,
        link_field: str,
        tag: str | None,
        region: str,
        dry_run: bool,
        logger: logging.Logger,
        reject: Callable[[Plan, RecordRejected], None],
        warn: Callable[[object, Sequence[FieldIssue], str], None],
    ) -> None:
        self.client = client
        self.decider = decider
        self.index = index
        self.ledger = ledger
        self.summary = summary
        self.plan = plan_file
        self.link_field = link_field
        self.tag = tag
        self.region = region
        self.dry_run = dry_run
        self.logger = logger
        self.reject = reject
        self.warn = warn

    def apply(self, plan: Plan) -> None:
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
            self.reject(plan, RecordRejected(f"Clientify refused it: {exc}", code="api_refused"))
        except ClientifyNotFoundError as exc:
            if plan.contact is not None:
                self.index().remove(plan.contact)
            self.reject(
                plan,
                RecordRejected(
                    f"contact vanished during the run, next run re-creates it: {exc}",
                    code="vanished",
                ),
            )

    # ------------------------------------------------------------------ create

    def _create(self, plan: Plan) -> None:
        assert plan.desired is not None
        changes = contact_changes(
            None, plan.desired, link_field=self.link_field, tag=self.tag, region=self.region
        )
        self.warn(plan.code, changes.issues, "not written")
        contact_id: Any = None
        if not self.dry_run:
            assert changes.create_body is not None
            created = self.client.create_contact(changes.create_body, dedupe_field=self.link_field)
            contact_id = created.get("id")
            if contact_id is not None:
                self.index().add(created)
                if self.ledger is not None:
                    clientify, _ = customer_from_contact(
                        created, region=self.region, link_field=self.link_field
                    )
                    self.ledger.record(
                        int(plan.code),
                        contact_id,
                        agreed_values(plan.desired, clientify),
                        clientify_written_at=self.client.server_now(),
                    )
            self.decider.created(plan)
        self.summary.add("created")
        self.plan.write("create", plan.code, target_id=contact_id, diffs=changes.diffs)
        self.logger.info("client %s: created contact %s", plan.code, contact_id or "(dry run)")

    # ------------------------------------------------------------------ update / link

    def _update(self, plan: Plan) -> None:
        assert plan.desired is not None
        assert plan.contact is not None
        contact = plan.contact
        merge = self.decider.merge(plan, contact)
        changes = self._changes(contact, plan, merge)
        if any("fetch detail" in issue.problem for issue in changes.issues):
            # A list item without emails/phones/addresses (older accounts): read the detail.
            contact = self.client.get_contact(contact["id"])
            merge = self.decider.merge(plan, contact)
            changes = self._changes(contact, plan, merge)
        self.warn(plan.code, changes.issues, "left as it is")
        self._note_conflicts(plan, contact, merge)
        current = contact
        if not changes.is_noop and not self.dry_run:
            current = self._write(plan, contact, changes)
        self._record(plan, merge, current, written=not changes.is_noop)
        if changes.is_noop:
            self.summary.add("unchanged")
            self.plan.write("unchanged", plan.code, target_id=contact.get("id"))
            self.logger.debug("client %s: contact %s unchanged", plan.code, contact.get("id"))
            return
        action = "link" if plan.action == "link" else "update"
        self.summary.add("linked" if action == "link" else "updated")
        self.plan.write(
            action, plan.code, target_id=contact.get("id"), diffs=changes.diffs, reason=plan.how
        )
        self.logger.info(
            "client %s: %s contact %s (%s)",
            plan.code,
            "linked" if action == "link" else "updated",
            contact.get("id"),
            ", ".join(d.field for d in changes.diffs) or "tag",
        )

    def _changes(self, contact: dict[str, Any], plan: Plan, merge: MergeResult) -> ContactChanges:
        """What Clientify lacks of the merged values (and the link, for a new link)."""
        assert plan.desired is not None
        desired = merge.desired("clientify").replace(factusol_id=plan.desired.factusol_id)
        return contact_changes(
            contact, desired, link_field=self.link_field, tag=self.tag, region=self.region
        )

    def _note_conflicts(self, plan: Plan, contact: Mapping[str, Any], merge: MergeResult) -> None:
        for m in merge.conflicts:
            if m.rule == "no-ledger" and m.winner == "factusol":
                continue  # no base to tell who changed: FactuSOL's value is simply applied
            self.summary.add("conflicts")
            side = "FactuSOL" if m.winner == "factusol" else "Clientify"
            rule = "no ledger entry yet" if m.rule == "no-ledger" else "changed on both sides"
            self.plan.write(
                "conflict",
                plan.code,
                target_id=contact.get("id"),
                diffs=[FieldDiff(m.field, m.clientify, m.value)],
                reason=f"{m.field}: {rule}; {side} wins",
                winner=m.winner,
                values={"factusol": m.factusol, "clientify": m.clientify},
            )
            self.logger.info(
                "client %s: conflict on %s (%s), %s wins (contact %s)",
                plan.code,
                m.field,
                rule,
                side,
                contact.get("id"),
            )

    def _record(
        self, plan: Plan, merge: MergeResult, current: Mapping[str, Any], *, written: bool
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
                int(plan.code),
                current.get("id"),
                new_base,
                clientify_written_at=self.client.server_now() if written else None,
            )

    def _write(
        self, plan: Plan, contact: dict[str, Any], changes: ContactChanges
    ) -> dict[str, Any]:
        """PUT the top-level fields, then the sub-resource calls; keep the index current."""
        cid = contact["id"]
        if self.ledger is not None and plan.ledger is not None:
            wanted = {d.field: d.after for d in changes.diffs if d.after is not None}
            self.ledger.begin(int(plan.code), cid, "clientify", wanted)
        current = dict(contact)
        if changes.update_body:
            current.update(self.client.update_contact(cid, changes.update_body))
        for number, op in enumerate(changes.operations):
            if number == 1:
                _crash_hook("partial", cid, self.logger)
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
        _crash_hook("written", cid, self.logger)
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
