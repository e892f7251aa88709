"""Which side wins when both changed a field since the last sync."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = ["MADRID", "ConflictPolicy", "Side", "decide_winner"]

Side = Literal["factusol", "clientify"]
MADRID = ZoneInfo("Europe/Madrid")
_POLICIES = ("newest", "factusol", "clientify")


@dataclass(frozen=True)
class ConflictPolicy:
    """``default`` for every field, overridden per Customer field by ``field_authority``."""

    default: str = "newest"
    field_authority: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for where, value in [("default", self.default), *self.field_authority.items()]:
            if value not in _POLICIES:
                raise ValueError(f"conflict policy for {where!r} must be one of {_POLICIES}")

    def for_field(self, field_name: str) -> str:
        return self.field_authority.get(field_name, self.default)


def _madrid(moment: datetime) -> datetime:
    # FactuSOL's naive times are Madrid wall-clock times; Clientify's carry a Madrid offset
    if moment.tzinfo is None:
        return moment.replace(tzinfo=MADRID)
    return moment.astimezone(MADRID)


def _day(moment: datetime) -> date:
    return _madrid(moment).date()


def decide_winner(
    field: str,
    *,
    factusol_modified: datetime | None,
    factusol_date_only: bool,
    clientify_modified: datetime | None,
    policy: ConflictPolicy,
) -> Side:
    """The side whose value of ``field`` is kept.

    With "newest": the later change wins; a missing timestamp loses to a present one; FactuSOL
    wins every tie, including a same-day tie when its FUMCLI carries only a date (it is the
    system of record, and a date cannot be ordered against a time on the same day).
    """
    rule = policy.for_field(field)
    if rule == "factusol":
        return "factusol"
    if rule == "clientify":
        return "clientify"
    if factusol_modified is None or clientify_modified is None:
        return "clientify" if factusol_modified is None and clientify_modified else "factusol"
    if factusol_date_only:
        factusol_day, clientify_day = _day(factusol_modified), _day(clientify_modified)
        return "clientify" if clientify_day > factusol_day else "factusol"
    if _madrid(clientify_modified) > _madrid(factusol_modified):
        return "clientify"
    return "factusol"
