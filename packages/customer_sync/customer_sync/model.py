"""The canonical customer and the small value objects shared by the mapping and the writers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["CUSTOMER_FIELDS", "TEXT_FIELDS", "Customer", "FieldDiff", "FieldIssue", "value_hint"]

# Customer fields that hold strings, in the order reports list them.
TEXT_FIELDS: tuple[str, ...] = (
    "name",
    "trade_name",
    "nif",
    "email",
    "phone",
    "mobile",
    "address",
    "city",
    "postal_code",
    "province",
    "country",
)
CUSTOMER_FIELDS: tuple[str, ...] = ("factusol_id", *TEXT_FIELDS)


@dataclass(frozen=True)
class FieldIssue:
    """A value that was left unset, replaced or cut. Never carries a whole record."""

    field: str
    problem: str
    value_hint: str = ""

    def __str__(self) -> str:
        hint = f" ({self.value_hint!r})" if self.value_hint else ""
        return f"{self.field}: {self.problem}{hint}"


@dataclass(frozen=True)
class FieldDiff:
    """One field that changes: canonical values before and after (None = unknown/absent)."""

    field: str
    before: str | None
    after: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"field": self.field, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class Customer:
    """The canonical, normalized customer both systems are mapped to.

    Every string is normalized; "" means empty; ``None`` means unset (unknown on the source, or
    invalid there and reported as a FieldIssue): a target leaves an unset field as it is.
    ``country`` is ISO 3166 alpha-2. Phones are E.164. ``nif`` is compact upper-case.
    """

    factusol_id: int | None = None
    name: str | None = None
    trade_name: str | None = None
    nif: str | None = None
    email: str | None = None
    phone: str | None = None
    mobile: str | None = None
    address: str | None = None
    city: str | None = None
    postal_code: str | None = None
    province: str | None = None
    country: str | None = None

    def get(self, field: str) -> str | None:
        """A field as a string (``factusol_id`` as its decimal text)."""
        value = getattr(self, field)
        return None if value is None else str(value)

    def diff(self, other: Customer) -> list[FieldDiff]:
        """Fields where ``other`` differs from ``self``; unset fields of ``other`` are no change."""
        diffs = []
        for field in CUSTOMER_FIELDS:
            after = other.get(field)
            before = self.get(field)
            if after is not None and after != before:
                diffs.append(FieldDiff(field, before, after))
        return diffs

    def replace(self, **changes: object) -> Customer:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def value_hint(value: object, limit: int = 20) -> str:
    """A short excerpt of a bad value for a FieldIssue: enough to find it, never a record."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
