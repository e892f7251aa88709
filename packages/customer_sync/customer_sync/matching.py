"""First-run matching: adopt an unlinked record of the other system, or create one.

The seed's rule is "find by factusol_id; update if found; else create". Matching by NIF or
e-mail only decides *which existing record* a customer without a link may adopt instead of
creating a new one; it must never stop a customer from being synced. So a key only matches
when it identifies exactly one record on each side:

- a placeholder NIF (``00000000T``, ``SIN NIF``) never matches (:mod:`customer_sync.identity`);
- a NIF or e-mail that several records on one side share identifies none of them (branches
  under one NIF, a gestoría's address, a company's ``info@``);
- a record already linked to another customer is not a candidate (but it still counts as a
  holder of its keys);
- an e-mail match is refused when both records hold valid NIFs that differ.

Exactly one compatible candidate → link; none → create; several (the NIF points to one record
and the e-mail to another) → ambiguous: the caller rejects with the candidates, or creates
(``ambiguous_match``). A link is a pair, so it must hold both ways: the candidate, matched
back against this side (``confirm``), must find this record and only it; otherwise the two
are part of an ambiguity and neither adopts the other, whichever direction runs first.
Both targets call :func:`decide_match`; they only differ in how they count and look up keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .identity import email_identity, nif_identity

__all__ = [
    "AMBIGUOUS_POLICIES",
    "MATCH_KEYS",
    "MatchCandidate",
    "MatchDecision",
    "decide_match",
]

MATCH_KEYS = ("nif", "email")
AMBIGUOUS_POLICIES = ("reject", "create")
KeyKind = Literal["nif", "email"]


@dataclass(frozen=True)
class MatchCandidate:
    """A record of the destination side holding a key: its id, its NIF, and its link."""

    key: int | str
    nif: str | None = None  # compact, valid NIF (None: empty, placeholder or invalid)
    linked_to: str | None = None  # the other side's id it is linked to; None = unlinked


@dataclass(frozen=True)
class MatchDecision:
    """``link`` (``candidate``), ``create``, or ``ambiguous`` (``candidates``)."""

    action: Literal["link", "create", "ambiguous"]
    candidate: MatchCandidate | None = None
    candidates: tuple[MatchCandidate, ...] = ()
    how: str = ""  # "same nif" / "same email" / "same nif and email" for a link
    notes: tuple[str, ...] = field(default=())  # keys not used, and why (for logs and plans)

    @property
    def candidate_keys(self) -> list[int | str]:
        return [c.key for c in self.candidates]


def _identities(kind: KeyKind, nif: object, emails: Iterable[object]) -> list[str]:
    if kind == "nif":
        identity = nif_identity(nif)
        return [identity] if identity else []
    found = [e for e in (email_identity(value) for value in emails) if e]
    return list(dict.fromkeys(found))


def decide_match(
    *,
    nif: object,
    emails: Sequence[object],
    source_holders: Callable[[KeyKind, str], int],
    destination_holders: Callable[[KeyKind, str], Sequence[MatchCandidate]],
    keys: Sequence[str] = MATCH_KEYS,
    source: str = "FactuSOL",
    destination: str = "Clientify",
    self_key: int | str | None = None,
    confirm: Callable[[MatchCandidate], MatchDecision] | None = None,
) -> MatchDecision:
    """Which unlinked destination record a customer without a link adopts, if any.

    ``nif`` and ``emails`` are the customer's values (raw or normalized). ``source_holders``
    counts the records of the customer's own side holding a key (itself included; 0 when the
    census does not know it yet); ``destination_holders`` lists every destination record
    holding a key, linked or not. ``keys`` is the ``match_fallback`` setting.
    """
    found: dict[int | str, tuple[MatchCandidate, list[str]]] = {}
    notes: list[str] = []
    own_nif = nif_identity(nif)
    for kind in keys:
        if kind not in MATCH_KEYS:
            raise ValueError(f"match keys are {MATCH_KEYS}, not {kind!r}")
        for key in _identities(kind, nif, emails):  # type: ignore[arg-type]
            shared_here = source_holders(kind, key)  # type: ignore[arg-type]
            if shared_here > 1:
                notes.append(f"{kind} shared by {shared_here} {source} records: not an identifier")
                continue
            holders = list(destination_holders(kind, key))  # type: ignore[arg-type]
            unique = {h.key: h for h in holders}
            if len(unique) > 1:
                notes.append(
                    f"{kind} shared by {len(unique)} {destination} records: not an identifier"
                )
                continue
            if not unique:
                continue
            holder = next(iter(unique.values()))
            if holder.linked_to is not None:
                notes.append(
                    f"{kind} belongs to {destination} {holder.key}, "
                    f"already linked to {holder.linked_to}"
                )
                continue
            if kind == "email" and own_nif and holder.nif and holder.nif != own_nif:
                notes.append(
                    f"email of {destination} {holder.key} refused: "
                    "its NIF differs (another company)"
                )
                continue
            found.setdefault(holder.key, (holder, []))[1].append(kind)
    if not found:
        return MatchDecision("create", notes=tuple(notes))
    if len(found) == 1:
        candidate, kinds = next(iter(found.values()))
        how = "same " + " and ".join(dict.fromkeys(kinds))
        if confirm is not None:
            back = confirm(candidate)
            if back.action == "ambiguous" or (
                back.action == "link"
                and back.candidate is not None
                and back.candidate.key != self_key
            ):
                others = ", ".join(str(k) for k in back.candidate_keys if k != self_key)
                return MatchDecision(
                    "ambiguous",
                    None,
                    (candidate,),
                    f"{destination} {candidate.key} ({how}), which also matches "
                    f"{source} {others or 'another record'}",
                    tuple(notes),
                )
        return MatchDecision("link", candidate, (candidate,), how, tuple(notes))
    candidates = tuple(holder for holder, _kinds in found.values())
    described = "; ".join(
        f"{destination} {holder.key} (same {' and '.join(dict.fromkeys(kinds))})"
        for holder, kinds in found.values()
    )
    return MatchDecision("ambiguous", None, candidates, described, tuple(notes))
