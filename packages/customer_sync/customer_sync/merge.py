"""Three-way merge of a linked pair: FactuSOL's values, Clientify's, and the ledger's.

The ledger holds, per linked pair, the values both sides last agreed on (the *base*). A field
changed on one side only since then carries that side's value across, whatever the clocks say;
changed on both sides to different values is a conflict, settled by the conflict policy. The
sync's own writes never look like user changes: after a write both sides hold the same value
and the base moves to it. Without a base (no ledger yet, or a new link), the old rule applies:
the conflict policy decides, except that an empty value never replaces a non-empty one — only a
base can show that a user cleared a field.

Both targets run the same merge, so whichever direction runs first, the outcome is the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Literal

from .conflict import MADRID, ConflictPolicy, Side, decide_winner
from .identity import is_placeholder_nif
from .model import TEXT_FIELDS, Customer, FieldIssue
from .normalize import fit_factusol_text

__all__ = [
    "MERGE_FIELDS",
    "FieldMerge",
    "MergeResult",
    "SideValues",
    "agreed_values",
    "merge_customer",
    "next_base",
    "same_value",
    "user_change_time",
]

MERGE_FIELDS: tuple[str, ...] = TEXT_FIELDS
# free text FactuSOL may hold cut or transliterated (column sizes, cp1252)
_FITTED_FIELDS = {"name": 100, "trade_name": 100, "address": 100, "city": 30, "province": 40}
Rule = Literal[
    "agree", "ledger", "conflict", "no-ledger", "non-empty-kept", "unknown", "invalid-replaced"
]


def same_value(field_name: str, a: str | None, b: str | None) -> bool:
    """Equal, or the same text once fitted into FactuSOL when one of them is FactuSOL's copy.

    Clientify keeps a longer or richer text; FactuSOL holds its fitted copy: both are in sync.
    A placeholder NIF and an empty one are the same (neither identifies anybody).
    """
    if a is None or b is None:
        return a is b
    if a == b:
        return True
    if field_name == "nif" and not (a and b) and is_placeholder_nif(a or b):
        # a placeholder (00000000T) is never sent to Clientify: "no NIF" on both sides
        return True
    size = _FITTED_FIELDS.get(field_name)
    if size is None:
        return False
    fit_a, fit_b = fit_factusol_text(a, size)[0], fit_factusol_text(b, size)[0]
    return fit_a == fit_b and (fit_a == a or fit_b == b)


@dataclass(frozen=True)
class SideValues:
    """One side's current values of a pair, as the merge reads them.

    ``customer`` fields that are None are unknown (not in this representation) or, when named
    in ``invalid``, hold a value the mapping could not read (an invalid phone, e-mail, NIF).
    ``modified`` is the side's last user change (None when unknown, or when it is the sync's own
    write); ``date_only`` when FactuSOL's FUMCLI carries a date without a time.
    """

    customer: Customer
    modified: datetime | None = None
    date_only: bool = False
    invalid: frozenset[str] = frozenset()

    @classmethod
    def read(
        cls,
        customer: Customer,
        issues: Iterable[FieldIssue],
        modified: datetime | None = None,
        date_only: bool = False,
    ) -> SideValues:
        """From a mapping's result: fields it left unset with an issue are invalid."""
        invalid = frozenset(i.field for i in issues if customer.get(i.field) is None)
        return cls(customer, modified, date_only, invalid)


@dataclass(frozen=True)
class FieldMerge:
    """The merge of one field; ``value`` is what both sides should hold (None = leave)."""

    field: str
    factusol: str | None
    clientify: str | None
    base: str | None
    value: str | None
    winner: Side | None  # whose value ``value`` is, when the sides differ
    rule: Rule
    conflict: bool = False  # both sides changed (or, without a base, both hold values)

    def loser_value(self) -> str | None:
        if self.winner == "factusol":
            return self.clientify
        if self.winner == "clientify":
            return self.factusol
        return None


@dataclass
class MergeResult:
    fields: dict[str, FieldMerge] = field(default_factory=dict)

    def desired(self, side: Side) -> Customer:
        """The values to write to ``side``: merged values it does not hold yet (rest unset)."""
        values: dict[str, str] = {}
        for name, merge in self.fields.items():
            current = merge.factusol if side == "factusol" else merge.clientify
            if merge.value is not None and not same_value(name, current, merge.value):
                values[name] = merge.value
        return Customer().replace(**values)

    @property
    def conflicts(self) -> list[FieldMerge]:
        return [m for m in self.fields.values() if m.conflict]

    def lost_by(self, side: Side) -> list[FieldMerge]:
        """Conflicts ``side`` lost: its value stays unwritten (and is logged)."""
        return [m for m in self.conflicts if m.winner is not None and m.winner != side]


def merge_customer(
    factusol: SideValues,
    clientify: SideValues,
    *,
    base: Mapping[str, str] | None,
    policy: ConflictPolicy,
    tz: tzinfo = MADRID,
    pending: Mapping[str, tuple[str, str]] | None = None,
) -> MergeResult:
    """Merge every synced field of a linked pair.

    ``base`` is the ledger's entry for this pair (None: no entry). ``pending`` holds writes the
    sync started and may not have finished (a crash between the write and the ledger update):
    ``{field: (side written, value)}``. A pending side that does not hold that value yet holds a
    half-done write of ours, not a user change: it counts as unchanged, so the write is redone.
    """
    result = MergeResult()
    pending = pending or {}
    for name in MERGE_FIELDS:
        f = factusol.customer.get(name)
        c = clientify.customer.get(name)
        b = None if base is None else base.get(name)
        if name in pending and b is not None:
            side, value = pending[name]
            if side == "factusol" and f is not None and not same_value(name, f, value):
                f = b
            elif side == "clientify" and c is not None and not same_value(name, c, value):
                c = b
        if f is None or c is None:
            result.fields[name] = _merge_unreadable(name, f, c, b, factusol, clientify)
            continue
        result.fields[name] = _merge_field(name, f, c, b, factusol, clientify, policy, tz)
    return result


def _merge_unreadable(
    name: str,
    f: str | None,
    c: str | None,
    b: str | None,
    factusol: SideValues,
    clientify: SideValues,
) -> FieldMerge:
    """A side holds nothing readable. Unknown (not in this representation): leave the field.
    Invalid: its value never travels; the other side's valid, non-empty value replaces it only
    when the two never agreed on the field (with a base, the invalid value is a user's edit)."""
    if f is None and c is not None and name in factusol.invalid and c and b is None:
        return FieldMerge(name, f, c, b, c, "clientify", "invalid-replaced")
    if c is None and f is not None and name in clientify.invalid and f and b is None:
        return FieldMerge(name, f, c, b, f, "factusol", "invalid-replaced")
    return FieldMerge(name, f, c, b, None, None, "unknown")


def _merge_field(
    name: str,
    f: str | None,
    c: str | None,
    b: str | None,
    factusol: SideValues,
    clientify: SideValues,
    policy: ConflictPolicy,
    tz: tzinfo,
) -> FieldMerge:
    def out(
        value: str | None, winner: Side | None, rule: Rule, conflict: bool = False
    ) -> FieldMerge:
        return FieldMerge(name, f, c, b, value, winner, rule, conflict)

    if same_value(name, f, c):
        # agreed; Clientify's text is the richer copy of a fitted one
        return out(c, None, "agree")
    if b is not None:
        f_changed = not same_value(name, f, b)
        c_changed = not same_value(name, c, b)
        if f_changed and not c_changed:
            return out(f, "factusol", "ledger")
        if c_changed and not f_changed:
            return out(c, "clientify", "ledger")
        winner = _by_policy(name, factusol, clientify, policy, tz)
        return out(f if winner == "factusol" else c, winner, "conflict", conflict=True)
    # no base: an empty value never replaces a non-empty one
    if f == "":
        return out(c, "clientify", "non-empty-kept")
    if c == "":
        return out(f, "factusol", "non-empty-kept")
    winner = _by_policy(name, factusol, clientify, policy, tz)
    return out(f if winner == "factusol" else c, winner, "no-ledger", conflict=True)


def _by_policy(
    name: str,
    factusol: SideValues,
    clientify: SideValues,
    policy: ConflictPolicy,
    tz: tzinfo,
) -> Side:
    return decide_winner(
        name,
        factusol_modified=factusol.modified,
        factusol_date_only=factusol.date_only,
        clientify_modified=clientify.modified,
        policy=policy,
        tz=tz,
    )


def next_base(
    merge: MergeResult,
    *,
    written: Side,
    source: Customer,
    written_after: Customer,
    base: Mapping[str, str] | None,
) -> dict[str, str]:
    """The ledger entry after a target wrote side ``written`` (``source`` is the other side).

    ``written_after`` is what the written side holds now. A field both sides hold takes that
    value. A field the written side won keeps the source's value as its base, so the next run
    the other way sees the written side as changed and carries its value across. A field the
    written side could not take (too long, refused) keeps its old base, so nobody's change is
    mistaken for the other's.
    """
    after: dict[str, str] = dict(base or {})
    for name, m in merge.fields.items():
        s = source.get(name)
        d = written_after.get(name)
        if m.value is None or s is None or d is None:
            continue
        if same_value(name, s, d):
            # keep the richer (Clientify) text when FactuSOL holds the fitted copy
            after[name] = d if written == "clientify" else s
        elif m.winner == written:
            after[name] = s
    return after


def agreed_values(factusol: Customer, clientify: Customer) -> dict[str, str]:
    """The ledger entry of a pair just created or linked: the fields both sides hold."""
    agreed: dict[str, str] = {}
    for name in MERGE_FIELDS:
        f, c = factusol.get(name), clientify.get(name)
        if f is not None and c is not None and same_value(name, f, c):
            agreed[name] = c
    return agreed


def user_change_time(modified: datetime | None, sync_wrote_at: datetime | None) -> datetime | None:
    """A record's ``modified`` as a user's change time: None when it is not later than the
    sync's own last write (that write moved it; when the user changed it is unknown)."""
    if modified is None or sync_wrote_at is None:
        return modified
    return None if modified <= sync_wrote_at else modified
