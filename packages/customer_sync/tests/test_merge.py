"""The three-way merge as tables, and a two-way simulation of edits on both sides."""

from datetime import datetime, timedelta, timezone

import pytest
from customer_sync import (
    ConflictPolicy,
    Customer,
    FieldIssue,
    SideValues,
    merge_customer,
    next_base,
    same_value,
)
from hypothesis import given, settings
from hypothesis import strategies as st

CET = timezone(timedelta(hours=1))
EARLY = datetime(2026, 3, 10, 9, 0, tzinfo=CET)
LATE = datetime(2026, 3, 10, 18, 0, tzinfo=CET)
NEWEST = ConflictPolicy()


def merge(f, c, base, *, f_time=EARLY, c_time=LATE, policy=NEWEST, pending=None):
    return merge_customer(
        SideValues(Customer(**f), f_time),
        SideValues(Customer(**c), c_time),
        base=base,
        policy=policy,
        pending=pending,
    )


@pytest.mark.parametrize(
    ("f", "c", "base", "value", "winner", "conflict"),
    [
        # agree
        ("a", "a", "old", "a", None, False),
        # changed on one side only: that side travels, whatever the clocks say
        ("new", "old", "old", "new", "factusol", False),
        ("old", "new", "old", "new", "clientify", False),
        # a user cleared the field (the ledger shows it): the empty value travels
        ("", "old", "old", "", "factusol", False),
        ("old", "", "old", "", "clientify", False),
        # both changed: the policy (newest here: Clientify changed later)
        ("f", "c", "old", "c", "clientify", True),
        # no ledger: the policy, but an empty value never replaces a non-empty one
        ("f", "c", None, "c", "clientify", True),
        ("", "c", None, "c", "clientify", False),
        ("f", "", None, "f", "factusol", False),
        # the base itself empty: a value typed on one side travels
        ("", "c", "", "c", "clientify", False),
    ],
)
def test_one_field(f, c, base, value, winner, conflict):
    result = merge({"email": f}, {"email": c}, None if base is None else {"email": base})
    m = result.fields["email"]
    assert (m.value, m.winner, m.conflict) == (value, winner, conflict)


def test_clocks_decide_only_real_conflicts():
    # Clientify's modified was moved by the sync's own write: it is newer, yet FactuSOL's edit
    # is the only change since the ledger and must win.
    result = merge({"phone": "+34911111111"}, {"phone": "+34922222222"}, {"phone": "+34922222222"})
    assert result.fields["phone"].value == "+34911111111"


@pytest.mark.parametrize(
    ("policy", "winner"),
    [
        (ConflictPolicy("factusol"), "factusol"),
        (ConflictPolicy("clientify"), "clientify"),
        (ConflictPolicy("newest", {"email": "factusol"}), "factusol"),
        (ConflictPolicy("factusol", {"email": "clientify"}), "clientify"),
    ],
)
def test_conflict_policies(policy, winner):
    result = merge({"email": "f@x.es"}, {"email": "c@x.es"}, {"email": "o@x.es"}, policy=policy)
    assert result.fields["email"].winner == winner
    assert result.lost_by("clientify" if winner == "factusol" else "factusol")


def test_unknown_or_invalid_values_are_left_alone():
    result = merge({"email": None, "phone": "+34911111111"}, {"email": "c@x.es"}, None)
    assert result.fields["email"].value is None
    assert result.desired("factusol").email is None


def test_fitted_copy_in_factusol_is_the_same_value():
    long_name = "Distribuciones " + "Muy Largas " * 12
    fitted = long_name[:100].rstrip()
    assert same_value("name", fitted, long_name)
    result = merge({"name": fitted}, {"name": long_name}, {"name": long_name})
    assert result.fields["name"].rule == "agree"
    assert result.desired("factusol").name is None
    assert result.desired("clientify").name is None


def test_half_done_write_is_redone_not_taken_for_a_user_change():
    # f2c started writing the new e-mail: the old one was deleted, the new one never added
    result = merge(
        {"email": "new@x.es"},
        {"email": ""},
        {"email": "old@x.es"},
        pending={"email": ("clientify", "new@x.es")},
    )
    assert (result.fields["email"].value, result.fields["email"].conflict) == ("new@x.es", False)


def test_next_base_after_each_kind_of_outcome():
    f = Customer(email="new@x.es", phone="+34911111111", city="Sevilla")
    c = Customer(email="old@x.es", phone="+34922222222", city="Cádiz")
    base = {"email": "old@x.es", "phone": "+34911111111", "city": "Huelva"}
    result = merge_customer(SideValues(f, EARLY), SideValues(c, LATE), base=base, policy=NEWEST)
    # f2c writes Clientify: e-mail arrives; phone stays (Clientify changed it); the city is a
    # conflict Clientify wins (newer)
    after = c.replace(email="new@x.es")
    base2 = next_base(result, written="clientify", source=f, written_after=after, base=base)
    assert base2 == {"email": "new@x.es", "phone": "+34911111111", "city": "Sevilla"}
    # a value the written side could not take keeps the old base
    refused = next_base(result, written="clientify", source=f, written_after=c, base=base)
    assert refused["email"] == "old@x.es"


# --------------------------------------------------------------------- two-way simulation

FIELDS = ("name", "email", "phone", "city")
VALUES = {
    "name": ["Ana", "Ana Pérez", ""],
    "email": ["a@x.es", "b@x.es", ""],
    "phone": ["+34911111111", "+34922222222", ""],
    "city": ["Sevilla", "Cádiz", ""],
}


def run(direction, sides, ledger, clocks, writes):
    src, dst = ("factusol", "clientify") if direction == "f2c" else ("clientify", "factusol")
    result = merge_customer(
        SideValues(sides["factusol"], clocks["factusol"]),
        SideValues(sides["clientify"], clocks["clientify"]),
        base=ledger.get("base"),
        policy=NEWEST,
    )
    desired = result.desired(dst)
    changed = {k: v for k in FIELDS if (v := desired.get(k)) is not None}
    if changed:
        writes.append((direction, changed))
        sides[dst] = sides[dst].replace(**changed)
        clocks[dst] = clocks["now"]  # the sync's write moves the modified date
    ledger["base"] = next_base(
        result, written=dst, source=sides[src], written_after=sides[dst], base=ledger.get("base")
    )


@settings(max_examples=300, deadline=None)
@given(
    start=st.fixed_dictionaries({k: st.sampled_from(v) for k, v in VALUES.items()}),
    f_edits=st.dictionaries(st.sampled_from(FIELDS), st.integers(0, 2), max_size=2),
    c_edits=st.dictionaries(st.sampled_from(FIELDS), st.integers(0, 2), max_size=2),
    first=st.sampled_from(["f2c", "c2f"]),
)
def test_edits_on_both_sides_arrive_and_then_nothing_moves(start, f_edits, c_edits, first):
    sides = {"factusol": Customer(**start), "clientify": Customer(**start)}
    ledger = {"base": dict(start)}
    t0 = datetime(2026, 3, 10, 8, 0, tzinfo=CET)
    clocks = {"factusol": t0, "clientify": t0, "now": t0}
    # users edit: FactuSOL at 10:00, Clientify at 11:00 (a true conflict goes to Clientify)
    f_new = {k: VALUES[k][i] for k, i in f_edits.items()}
    c_new = {k: VALUES[k][i] for k, i in c_edits.items()}
    sides["factusol"] = sides["factusol"].replace(**f_new)
    sides["clientify"] = sides["clientify"].replace(**c_new)
    clocks.update(factusol=t0 + timedelta(hours=2), clientify=t0 + timedelta(hours=3))
    clocks["now"] = t0 + timedelta(hours=4)  # the sync runs after both edits
    order = [first, "c2f" if first == "f2c" else "f2c"]
    writes = []
    for direction in order:
        run(direction, sides, ledger, clocks, writes)
    assert sides["factusol"] == sides["clientify"]
    for field, value in f_new.items():
        conflict = field in c_new and c_new[field] != value and value != start[field]
        conflict = conflict and c_new[field] != start[field]
        if value != start[field] and not conflict:
            assert sides["factusol"].get(field) == value  # FactuSOL's edit kept and arrived
    for field, value in c_new.items():
        if value != start[field]:
            assert sides["clientify"].get(field) == value  # Clientify's edit (or conflict win)
    # one more cycle, later: nothing to write
    clocks["now"] += timedelta(hours=1)
    writes.clear()
    for direction in order:
        run(direction, sides, ledger, clocks, writes)
    assert writes == []


@settings(max_examples=200, deadline=None)
@given(
    f=st.fixed_dictionaries({k: st.sampled_from(v) for k, v in VALUES.items()}),
    c=st.fixed_dictionaries({k: st.sampled_from(v) for k, v in VALUES.items()}),
    first=st.sampled_from(["f2c", "c2f"]),
)
def test_without_a_ledger_one_cycle_converges_and_never_blanks(f, c, first):
    sides = {"factusol": Customer(**f), "clientify": Customer(**c)}
    ledger = {}
    t0 = datetime(2026, 3, 10, 8, 0, tzinfo=CET)
    clocks = {"factusol": t0, "clientify": t0 + timedelta(hours=1), "now": t0 + timedelta(hours=2)}
    writes = []
    order = [first, "c2f" if first == "f2c" else "f2c"]
    for direction in order:
        run(direction, sides, ledger, clocks, writes)
    assert sides["factusol"] == sides["clientify"]
    for field in FIELDS:
        if f[field] or c[field]:
            assert sides["factusol"].get(field), f"{field} blanked"
    writes.clear()
    for direction in order:
        run(direction, sides, ledger, clocks, writes)
    assert writes == []


@pytest.mark.parametrize(
    ("base", "value"),
    [
        # never agreed on the phone: the valid value replaces FactuSOL's junk
        (None, "+34911111111"),
        # agreed once, then a user typed junk in FactuSOL: that edit is not undone
        ({"phone": "+34922222222"}, None),
    ],
)
def test_an_invalid_value_never_travels_and_is_replaced_only_if_never_agreed(base, value):
    factusol = SideValues.read(
        Customer(phone=None), [FieldIssue("phone", "not a valid phone number")], EARLY
    )
    clientify = SideValues(Customer(phone="+34911111111"), LATE)
    result = merge_customer(factusol, clientify, base=base, policy=NEWEST)
    assert result.fields["phone"].value == value
    assert result.desired("clientify").phone is None  # junk never written to Clientify
