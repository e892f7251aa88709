"""First-run matching from a contact's side (Clientify -> FactuSOL), as both targets ask it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from customer_sync import MatchCandidate, MatchDecision, decide_match

__all__ = ["match_contact"]


def match_contact(
    keys: Sequence[str],
    nif: object,
    emails: Sequence[object],
    contacts_holding: Callable[[str, str], int],
    clients_holding: Callable[[str, str], Sequence[MatchCandidate]],
    *,
    self_key: int | str | None,
    confirm: Callable[[MatchCandidate], MatchDecision] | None = None,
) -> MatchDecision:
    """``customer_sync.decide_match`` for a contact looking for its FactuSOL client (``keys``:
    the run's ``match_fallback``)."""
    return decide_match(
        nif=nif,
        emails=emails,
        source_holders=contacts_holding,
        destination_holders=clients_holding,
        keys=keys,
        source="Clientify",
        destination="FactuSOL",
        self_key=self_key,
        confirm=confirm,
    )
