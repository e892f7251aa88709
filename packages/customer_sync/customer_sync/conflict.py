"""Which side wins when both changed a field since the last sync."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["MADRID", "ConflictPolicy", "Side", "company_timezone", "decide_winner"]

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


def _local(moment: datetime, tz: tzinfo) -> datetime:
    # FactuSOL's naive times are wall-clock times of the company's time zone
    if moment.tzinfo is None:
        return moment.replace(tzinfo=tz)
    return moment.astimezone(tz)


def _day(moment: datetime, tz: tzinfo) -> date:
    return _local(moment, tz).date()


def decide_winner(
    field: str,
    *,
    factusol_modified: datetime | None,
    factusol_date_only: bool,
    clientify_modified: datetime | None,
    policy: ConflictPolicy,
    tz: tzinfo = MADRID,
) -> Side:
    """The side whose value of ``field`` is kept.

    With "newest": the later change wins; a missing timestamp loses to a present one; FactuSOL
    wins every tie, including a same-day tie when its FUMCLI carries only a date (it is the
    system of record, and a date cannot be ordered against a time on the same day). ``tz`` is
    the company's time zone: FactuSOL's naive times and days are read in it.
    """
    rule = policy.for_field(field)
    if rule == "factusol":
        return "factusol"
    if rule == "clientify":
        return "clientify"
    if factusol_modified is None or clientify_modified is None:
        return "clientify" if factusol_modified is None and clientify_modified else "factusol"
    if factusol_date_only:
        factusol_day, clientify_day = _day(factusol_modified, tz), _day(clientify_modified, tz)
        return "clientify" if clientify_day > factusol_day else "factusol"
    if _local(clientify_modified, tz) > _local(factusol_modified, tz):
        return "clientify"
    return "factusol"


def company_timezone(setting: object, account_zone: str | None) -> ZoneInfo:
    """The zone FactuSOL's naive dates are read in: the ``timezone`` setting, else the Clientify
    account's ``time_zone``, else Europe/Madrid. ValueError for a name that is no IANA zone."""
    name = str(setting or "").strip() or account_zone or MADRID.key
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone {name[:40]!r} is not an IANA time zone name") from None
