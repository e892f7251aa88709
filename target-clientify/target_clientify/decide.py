"""Decide, per FactuSOL client: update its linked contact, link an unlinked one, create one, or
reject it; and the merged values to write.

Runs on the main thread in record order, so decisions that depend on each other (two clients
claiming one unlinked contact) are taken one after the other. The rules live in customer_sync:
the matching rule (``decide_match``) and the three-way merge (``merge_customer``); this module
feeds them what the run found.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clientify_api import (
    ClientifyNotFoundError,
    ContactIndex,
    addresses_known,
    contact_emails,
    parse_api_datetime,
)
from customer_sync import (
    IDENTITY_KEYS,
    Customer,
    FieldIssue,
    KeyIndex,
    MatchCandidate,
    MatchDecision,
    MergeResult,
    RecordRejected,
    SideValues,
    contact_candidate,
    customer_from_contact,
    decide_match,
    merge_customer,
    user_change_time,
)
from sync_ledger import LedgerEntry, Mark
from target_runtime import Plan, SyncRun, factusol_time
from target_runtime.matching import match_contact


@dataclass
class ClientPlan(Plan):
    """What was decided for one FactuSOL client."""

    desired: Customer | None = None
    contact: dict[str, Any] | None = None
    reason: str | None = None  # why unchanged (dry run)
    how: str | None = None  # why a link
    placeholder_id: int | None = None
    ledger: LedgerEntry | None = None
    merge: MergeResult | None = None  # update, link: the merged values
    issues: list[FieldIssue] = field(default_factory=list)  # what the mapping could not read
    mark: Mark | None = None  # kept_deleted, forgotten: the decision already kept
    deleted_contact: str | None = None  # kept_deleted: the contact deleted in Clientify

    @property
    def group(self) -> object:
        return self.key  # one code per batch: a contact is never written by two threads


class Decider:
    """The decisions of one run (claims and planned creations are shared across batches)."""

    def __init__(self, run: SyncRun) -> None:
        self.link_field = link_field = run.link_field
        self.match_keys = list(run.settings.match_keys)
        self.ambiguous_match = run.settings.ambiguous_match
        self.policy = run.settings.policy
        self.region = run.region
        self.tz = run.tz
        self.factusol_census = run.census  # FactuSOL's clients by NIF and e-mail
        # Creates and links decided but not (or, in a dry run, never) visible in the index
        # yet, so later records of the run see them exactly as a real run would.
        self.pending = ContactIndex(field=link_field, keys=IDENTITY_KEYS)
        self.memory = run.memory  # the decisions kept (set by start(), before prepare())
        self.client = run.clientify
        self._placeholder_ids = itertools.count(-1, -1)
        self.claims = run.claims  # links made in this run, not in the index yet

    def close(self) -> None:
        self.pending.close()

    # ------------------------------------------------------------------ one record

    def plan(
        self, plan: ClientPlan, index: ContactIndex, ledger: Mapping[int, LedgerEntry]
    ) -> ClientPlan:
        """Fill ``plan`` (its ``desired`` customer read): update, link or create; or raise
        RecordRejected."""
        desired = plan.desired
        assert desired is not None
        assert desired.factusol_id is not None
        key = str(desired.factusol_id)
        mark = self.memory.marks.get(int(desired.factusol_id))
        if mark is not None and mark.kind == "forgotten":
            plan.action, plan.mark = "forgotten", mark  # never pulled back into Clientify
            return plan
        linked = index.by_factusol_id(key)
        claimed = self.claims.claimed(key)  # linked earlier in this run (or dry run)
        if claimed is not None and all(c.get("id") != claimed for c in linked):
            contact = index.get(claimed)
            if contact is not None:
                linked.append(contact)
        if len(linked) > 1:
            ids = [c.get("id") for c in linked]
            raise RecordRejected(
                f"{len(linked)} Clientify contacts carry {self.link_field}={key} "
                f"(ids {', '.join(map(str, ids))}): nothing was written to any of them; merge "
                f"them in Clientify, or keep {self.link_field} on the right one only",
                code="claimed_by_several",
                candidates=ids,
            )
        entry = ledger.get(int(desired.factusol_id))
        if linked:
            # A contact carrying the link: the existing rules, even after a deletion (the
            # link moved, e.g. Clientify merged the deleted contact into this one).
            plan.action, plan.contact = "update", self._complete(linked[0], index)
            if mark is not None and mark.kind == "deleted_in_clientify":
                plan.mark = mark  # a contact carries the link again: the mark is lifted
            if entry is not None and entry.belongs_to(linked[0].get("id")):
                plan.ledger = entry
            plan.merge = self.merge(plan, plan.contact)
            return plan
        if mark is not None and mark.kind == "deleted_in_clientify":
            plan.action, plan.mark = "kept_deleted", mark
            plan.deleted_contact = mark.contact_id
            return plan
        if entry is not None and index.get(entry.contact_id) is None:
            # The pair's contact is gone from the index (its scans see deletions) and no other
            # contact carries the link: deleted (or merged away) in Clientify. A user's
            # decision: the client is not created again.
            plan.action, plan.deleted_contact = "kept_deleted", entry.contact_id
            return plan
        if self.pending.by_factusol_id(key):
            # Only in a dry run: this code was already planned for creation in this run.
            plan.action, plan.reason = "update", "created earlier in this run"
            return plan

        census = self.factusol_census()
        decision = decide_match(
            nif=desired.nif,
            emails=[desired.email],
            source_holders=census.count,
            destination_holders=lambda kind, value: self._holders(kind, value, index),
            keys=self.match_keys,
            self_key=desired.factusol_id,
            confirm=lambda candidate: self._confirm(candidate, census, index),
        )
        if decision.action == "link" and decision.candidate is not None:
            contact = self._contact(decision.candidate.key, index)
            if contact is not None:
                contact = self._complete(contact, index)
                plan.action, plan.contact, plan.how = "link", contact, decision.how
                self.claims.claim(key, contact.get("id"))
                plan.merge = self.merge(plan, contact)
                return plan
        if decision.action == "ambiguous" and self.ambiguous_match != "create":
            raise RecordRejected(
                f"not linked: several Clientify contacts could be this client ({decision.how}); "
                f"set {self.link_field} to {key} on the right one by hand "
                "(or ambiguous_match: create)",
                code="ambiguous_match",
                candidates=decision.candidate_keys,
            )
        plan.placeholder_id = next(self._placeholder_ids)
        self.pending.add(self._placeholder(plan.placeholder_id, key, desired))
        return plan

    def _holders(self, kind: str, value: str, index: ContactIndex) -> list[MatchCandidate]:
        if kind == "nif":
            found = [*index.by_nif(value), *self.pending.by_nif(value)]
        else:
            found = [*index.by_email(value), *self.pending.by_email(value)]
        unique: dict[Any, dict[str, Any]] = {}
        for contact in found:
            unique.setdefault(contact.get("id"), contact)
        return [
            contact_candidate(contact, self.claims.client_of(contact))
            for contact in unique.values()
        ]

    def _confirm(
        self, candidate: MatchCandidate, census: KeyIndex, index: ContactIndex
    ) -> MatchDecision:
        """The same rule from the contact's side: it must find this client, and only it."""
        contact = self._contact(candidate.key, index) or {}

        def contacts_holding(kind: str, value: str) -> int:
            return len(self._holders(kind, value, index))

        def clients_holding(kind: str, value: str) -> list[MatchCandidate]:
            return [
                MatchCandidate(code, census.nif_of(code), self.claims.contact_of(code))
                for code in census.holders(kind, value)
            ]

        nif = contact.get("taxpayer_identification_number")
        emails = contact_emails(contact)
        holders = (contacts_holding, clients_holding)
        return match_contact(self.match_keys, nif, emails, *holders, self_key=candidate.key)

    def _complete(self, contact: dict[str, Any], index: ContactIndex) -> dict[str, Any]:
        """The contact with its addresses: a list item without the key (older accounts) does
        not know them (unknown, not empty), so a street edited in FactuSOL would be missed."""
        contact_id = contact.get("id")
        if addresses_known(contact) or contact_id is None or str(contact_id).startswith("-"):
            return contact  # known, or a contact only planned in this run
        try:
            return self.client.complete_addresses(contact)
        except ClientifyNotFoundError:
            index.remove(contact)
            raise RecordRejected(
                "its Clientify contact vanished during the run; the next run decides again",
                code="vanished",
            ) from None

    def _contact(self, contact_id: Any, index: ContactIndex) -> dict[str, Any] | None:
        return index.get(contact_id) or self.pending.get(contact_id)

    def _placeholder(self, contact_id: int, key: str, desired: Customer) -> dict[str, Any]:
        return {
            "id": contact_id,
            "custom_fields": [{"field": self.link_field, "value": key}],
            "taxpayer_identification_number": desired.nif or "",
            "emails": [{"email": desired.email}] if desired.email else [],
        }

    def created(self, plan: ClientPlan) -> None:
        """A planned creation is now in the index: forget its placeholder."""
        if plan.placeholder_id is not None:
            self.pending.remove(plan.placeholder_id)

    # ------------------------------------------------------------------ the merge

    def merge(self, plan: ClientPlan, contact: Mapping[str, Any]) -> MergeResult:
        """Merge the client (the record) with the contact as Clientify holds it."""
        assert plan.desired is not None
        clientify, issues = customer_from_contact(
            contact, region=self.region, link_field=self.link_field
        )
        fs_modified, date_only = factusol_time(plan.record.get("modified"), self.tz)
        entry = plan.ledger
        # the sync's own write moves the contact's modified: not a user's change time
        cl_modified = user_change_time(
            parse_api_datetime(contact.get("modified")),
            None if entry is None else entry.clientify_written_at,
        )
        return merge_customer(
            SideValues.read(plan.desired, plan.issues, fs_modified, date_only),
            SideValues.read(clientify, issues, cl_modified),
            base=None if entry is None else entry.base,
            pending=None if entry is None else entry.pending,
            policy=self.policy,
            tz=self.tz,
        )
