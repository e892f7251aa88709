"""The conflict rule as a table."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from customer_sync import ConflictPolicy, decide_winner

CET = timezone(timedelta(hours=1))
NEWEST = ConflictPolicy()


def d(*args, tz=CET):
    return datetime(*args, tzinfo=tz)


@pytest.mark.parametrize(
    ("factusol", "date_only", "clientify", "winner"),
    [
        # full timestamps: the later change wins, a tie goes to FactuSOL
        (d(2025, 3, 10, 9, 0), False, d(2025, 3, 10, 10, 0), "clientify"),
        (d(2025, 3, 10, 11, 0), False, d(2025, 3, 10, 10, 0), "factusol"),
        (d(2025, 3, 10, 10, 0), False, d(2025, 3, 10, 10, 0), "factusol"),
        # the same instant in two offsets is a tie
        (d(2025, 3, 10, 9, 0, tz=UTC), False, d(2025, 3, 10, 10, 0), "factusol"),
        # naive FactuSOL times are Madrid wall-clock times (summer: +02:00)
        (datetime(2025, 7, 1, 12, 0), False, d(2025, 7, 1, 10, 30, tz=UTC), "clientify"),
        (datetime(2025, 7, 1, 12, 0), False, d(2025, 7, 1, 9, 30, tz=UTC), "factusol"),
        # date-only FUMCLI: same Madrid day → FactuSOL, whatever the hour in Clientify
        (datetime(2025, 3, 10), True, d(2025, 3, 10, 23, 59), "factusol"),
        (d(2025, 3, 10), True, d(2025, 3, 10, 0, 1), "factusol"),
        (datetime(2025, 3, 10), True, d(2025, 3, 11, 0, 0), "clientify"),
        (datetime(2025, 3, 10), True, d(2025, 3, 9, 23, 59), "factusol"),
        # 23:30 UTC on the 10th is already the 11th in Madrid
        (datetime(2025, 3, 11), True, d(2025, 3, 10, 23, 30, tz=UTC), "factusol"),
        (datetime(2025, 3, 10), True, d(2025, 3, 10, 23, 30, tz=UTC), "clientify"),
        # a missing timestamp loses to a present one; none at all → FactuSOL
        (None, False, d(2025, 3, 10), "clientify"),
        (None, True, d(2025, 3, 10), "clientify"),
        (d(2025, 3, 10), False, None, "factusol"),
        (None, False, None, "factusol"),
    ],
)
def test_newest(factusol, date_only, clientify, winner):
    assert (
        decide_winner(
            "email",
            factusol_modified=factusol,
            factusol_date_only=date_only,
            clientify_modified=clientify,
            policy=NEWEST,
        )
        == winner
    )


@pytest.mark.parametrize(
    ("policy", "field", "winner"),
    [
        (ConflictPolicy(default="factusol"), "email", "factusol"),
        (ConflictPolicy(default="clientify"), "email", "clientify"),
        (ConflictPolicy(field_authority={"nif": "factusol"}), "nif", "factusol"),
        (ConflictPolicy(field_authority={"nif": "factusol"}), "email", "clientify"),
        (ConflictPolicy("factusol", {"phone": "clientify"}), "phone", "clientify"),
        (ConflictPolicy("factusol", {"phone": "newest"}), "phone", "clientify"),
    ],
)
def test_authority(policy, field, winner):
    # Clientify changed later; only "newest" looks at that
    assert (
        decide_winner(
            field,
            factusol_modified=d(2025, 1, 1),
            factusol_date_only=False,
            clientify_modified=d(2025, 6, 1),
            policy=policy,
        )
        == winner
    )


@pytest.mark.parametrize("kwargs", [{"default": "latest"}, {"field_authority": {"email": "crm"}}])
def test_policy_rejects_unknown_values(kwargs):
    with pytest.raises(ValueError, match="must be one of"):
        ConflictPolicy(**kwargs)
