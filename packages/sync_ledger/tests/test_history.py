"""Each customer's history and the decisions the sync keeps, on SQLite and PostgreSQL."""

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sync_ledger import CustomerHistory, HistoryEvent, SyncLedger

PG_URI = os.environ.get("FCSYNC_TEST_PG_URI", "")
T0 = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


@pytest.fixture(params=["sqlite-file", "postgresql"])
def ledger(request, tmp_path):
    if request.param == "sqlite-file":
        uri = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    elif PG_URI:
        uri = PG_URI
    else:
        pytest.skip("no PostgreSQL server (set FCSYNC_TEST_PG_URI; .ci/run starts one)")
    ledger = SyncLedger(uri, scope=f"test-{uuid.uuid4().hex[:12]}")
    yield ledger
    ledger.close()


def test_a_customers_steps_read_back_in_order_with_their_reasons(ledger):
    log = CustomerHistory(ledger)
    written = log.record(
        [
            HistoryEvent("first_link", code=7, contact_id="135", detail={"key": "nif"}, at=T0),
            HistoryEvent(
                "conflict",
                code=7,
                contact_id="135",
                side="factusol",
                field="phone",
                before="+34911111111",
                after="+34600000000",
                detail={"winner": "clientify", "rule": "newest"},
                run_id="run-2",
                at=T0 + timedelta(hours=2),
            ),
            HistoryEvent("user_edit", code=8, side="clientify", field="email", after="b@x.es"),
        ]
    )
    assert written == 3
    steps = log.events(codes=[7])
    assert [s.reason for s in steps] == ["first_link", "conflict"]
    assert steps[0].detail == {"key": "nif"}
    assert (steps[1].before, steps[1].after, steps[1].side) == (
        "+34911111111",
        "+34600000000",
        "factusol",
    )
    assert steps[1].detail["winner"] == "clientify"
    assert steps[1].run_id == "run-2"
    # the same customer found by its contact id
    assert [s.reason for s in log.events(contact_ids=[135])] == ["first_link", "conflict"]
    assert log.codes_with_value("+34600000000") == {7}


def test_unknown_reason_is_refused():
    with pytest.raises(ValueError, match="reason must be one of"):
        HistoryEvent("because")


def test_retention_drops_old_steps_only(ledger):
    log = CustomerHistory(ledger)
    log.record(
        [
            HistoryEvent("created", code=1, at=T0),
            HistoryEvent("created", code=2, at=T0 + timedelta(days=100)),
        ]
    )
    assert log.prune(older_than=T0 + timedelta(days=1)) == 1
    assert [s.code for s in log.events(codes=[1, 2])] == [2]


def test_a_mark_is_kept_reported_once_and_lifted(ledger):
    log = CustomerHistory(ledger)
    assert log.mark(7, "deleted_in_clientify", contact_id=135, at=T0) is True
    assert log.mark(7, "deleted_in_clientify", contact_id=135) is False  # already so
    (mark,) = log.marks().values()
    assert (mark.code, mark.kind, mark.contact_id, mark.reported) == (
        7,
        "deleted_in_clientify",
        "135",
        False,
    )
    log.marked_reported([7])
    assert log.marks()[7].reported
    # another decision replaces it and is reported anew
    assert log.mark(7, "forgotten") is True
    assert log.marks()[7].kind == "forgotten"
    assert not log.marks()[7].reported
    assert log.unmark(7).kind == "forgotten"
    assert log.marks() == {}
    assert log.unmark(7) is None


def test_erase_leaves_other_customers(ledger):
    log = CustomerHistory(ledger)
    log.record(
        [
            HistoryEvent("created", code=1, contact_id="10"),
            HistoryEvent("created", code=2, contact_id="20"),
        ]
    )
    assert log.erase(codes=[1]) == 1
    assert [s.code for s in log.events(codes=[1, 2], contact_ids=["10"])] == [2]


def test_scopes_never_meet(tmp_path):
    uri = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    a, b = SyncLedger(uri, scope="a"), SyncLedger(uri, scope="b")
    CustomerHistory(a).record([HistoryEvent("created", code=1)])
    CustomerHistory(a).mark(1, "forgotten")
    assert CustomerHistory(b).events(codes=[1]) == []
    assert CustomerHistory(b).marks() == {}
    a.close()
    b.close()
