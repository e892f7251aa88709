"""Modified mode without a scan, against the FactuSOL sandbox in-process (issue 24 items 1-3).

The sandbox's request log counts the FactuSOL calls; clocks are injected (the sandbox's movable
clock and the tap's ``streams.clock``), nothing sleeps.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
import tap_factusol.detect as detect_module
from tap_factusol.probe import has_changes

from .conftest import MADRID

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

LOGIN, QUERY, LOAD = "/login/Autenticar", "/admin/LanzarConsulta", "/admin/CargaTabla"


def codes(records: list[dict[str, Any]]) -> list[int]:
    return [r["code"] for r in records]


def entry(state: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = state["bookmarks"]["clients"]
    return value


@pytest.mark.usefixtures("host_tz")
@pytest.mark.parametrize("has_time", [False, True], ids=["date-only", "date-time"])
def test_boundary_day_rule(sandbox, clock, tap_run, has_time):
    sandbox.switches(fumcli_has_time=has_time)
    sandbox.seed(300)
    config = sandbox.config
    first, state = tap_run(config)
    assert first == []  # the seed has no change within the first run's 24 h
    clock.advance(minutes=5)
    sandbox.edit(5, TELCLI="910 000 001")
    records, state = tap_run(config, state)
    assert codes(records) == [5]
    clock.advance(minutes=5)
    records, state = tap_run(config, state)
    assert records == []  # not edited again that day: not emitted again
    clock.advance(minutes=5)
    sandbox.edit(5, TELCLI="910 000 002")  # edited twice on one day: arrives both times
    sandbox.edit(7, NOFCLI="Nuevo nombre")
    records, state = tap_run(config, state)
    assert codes(records) == [5, 7]
    assert records[0]["phone"] == "910 000 002"
    assert set(entry(state)["boundary_fingerprints"]) == {"5", "7"}
    clock.advance(minutes=5)
    records, state = tap_run(config, state)
    assert records == []
    assert entry(state)["change_detection"] == {"method": "ordered"}


@pytest.mark.usefixtures("host_tz")
def test_midnight_in_the_office_zone_whatever_the_host_zone(sandbox, clock, tap_run):
    sandbox.seed(100)
    clock.set(dt.datetime(2026, 11, 25, 23, 50, tzinfo=MADRID))  # 22:50 UTC
    sandbox.edit(3, TELCLI="1")
    records, state = tap_run(sandbox.config)
    assert codes(records) == [3]
    clock.set(dt.datetime(2026, 11, 26, 0, 30, tzinfo=MADRID))  # 2026-11-25 23:30 UTC
    sandbox.edit(4, TELCLI="2")  # stamped 2026-11-26 by the office
    records, state = tap_run(sandbox.config, state)
    assert codes(records) == [4]  # 3 is on the old boundary day, unchanged
    assert entry(state)["replication_key_value"] == "2026-11-26T00:30:00+01:00"
    assert set(entry(state)["boundary_fingerprints"]) == {"4"}  # only the new boundary day
    sandbox.edit(3, TELCLI="3")
    records, _ = tap_run(sandbox.config, state)
    assert codes(records) == [3]


def test_a_change_made_during_the_run_is_not_lost(sandbox, clock, tap_run, monkeypatch):
    sandbox.seed(100)
    _, state = tap_run(sandbox.config)
    original = detect_module.find_recent

    def edit_after_reading(*args: Any, **kwargs: Any) -> Any:
        found = original(*args, **kwargs)
        clock.advance(seconds=20)
        sandbox.edit(9, TELCLI="changed while the tap ran")
        return found

    monkeypatch.setattr(detect_module, "find_recent", edit_after_reading)
    clock.advance(minutes=5)
    sandbox.edit(8, TELCLI="before")
    records, state = tap_run(sandbox.config, state)
    assert codes(records) == [8]
    monkeypatch.setattr(detect_module, "find_recent", original)
    records, _ = tap_run(sandbox.config, state)
    assert codes(records) == [9]
    assert records[0]["phone"] == "changed while the tap ran"


@pytest.mark.parametrize("clients", [10_000, 100_000])
def test_idle_and_small_change_call_counts(sandbox, clock, tap_run, clients):
    took = sandbox.seed(clients)
    if clients > 10_000 and took > 60:
        pytest.skip(f"seeding {clients} rows took {took:.0f} s")
    _, state = tap_run(sandbox.config)
    sandbox.edit(123, TELCLI="600 000 000")
    sandbox.clear()
    records, state = tap_run(sandbox.config, state)
    assert codes(records) == [123]
    # login, the ejercicio probe (auto), one ordered read: <= 3 + changed rows
    assert sandbox.calls() == [LOGIN, QUERY, QUERY]
    for _ in range(2):
        clock.advance(minutes=5)
        sandbox.clear()
        records, state = tap_run(sandbox.config, state)
        assert records == []
        assert sandbox.calls() == [LOGIN, QUERY, QUERY]
    sandbox.clear()
    assert has_changes(sandbox.config, state) is False
    assert len(sandbox.calls()) <= 3


def test_a_busy_boundary_day_grows_the_read_without_a_scan(sandbox, clock, tap_run):
    sandbox.seed(500)
    _, state = tap_run(sandbox.config)
    busy = sandbox.codes()[:60]
    for code in busy:
        sandbox.edit(code, TELCLI=f"9{code}")
    sandbox.clear()
    records, state = tap_run(sandbox.config, state)
    assert sorted(codes(records)) == busy
    assert LOAD not in sandbox.calls()  # no fetch by key, no scan: rows came with the read
    assert sandbox.calls().count(QUERY) == 3  # ejercicio probe, TOP 26, TOP 104
    sandbox.clear()
    records, _ = tap_run(sandbox.config, state)
    assert records == []
    assert sandbox.calls() == [LOGIN, QUERY, QUERY]  # TOP 60 + 25 covers the known rows


@pytest.mark.parametrize("null_sort", ["low", "high"])
@pytest.mark.parametrize("date_values", ["datetime", "bare_date"])
def test_each_dialect_reading_is_read_in_order(sandbox, clock, tap_run, null_sort, date_values):
    sandbox.seed(300)
    for code in (10, 11, 12):
        sandbox.edit(code, FUMCLI=None)  # clients never modified: NULL FUMCLI
    sandbox.switches(null_sort=null_sort, date_values=date_values)
    _, state = tap_run(sandbox.config)
    sandbox.edit(20, TELCLI="1")
    sandbox.clear()
    records, state = tap_run(sandbox.config, state)
    assert codes(records) == [20]
    assert records[0]["modified"] == "2026-11-25T00:00:00+01:00"
    assert sandbox.calls() == [LOGIN, QUERY, QUERY]
    assert entry(state)["change_detection"] == {"method": "ordered"}


def test_an_order_that_cannot_be_trusted_falls_back_to_the_scan_and_is_counted(
    sandbox, clock, tap_run, caplog
):
    sandbox.seed(300)
    sandbox.switches(date_values="text_dmy")  # dates sorted as DD/MM/YYYY text
    _, state = tap_run(sandbox.config)
    assert entry(state)["change_detection"]["fallbacks"] == 1
    sandbox.edit(20, TELCLI="1")
    with caplog.at_level(logging.INFO):
        records, state = tap_run(sandbox.config, state)
    assert codes(records) == [20]
    assert records[0]["modified"] == "2026-11-25T00:00:00+01:00"  # DD/MM/YYYY read too
    detection = entry(state)["change_detection"]
    assert detection["method"] == "scan"
    assert detection["fallbacks"] == 2
    assert "out of order" in detection["last_fallback_reason"]
    assert "falls back to a light scan" in caplog.text
    assert '"metric":"change_detection_fallback"' in caplog.text
    records, state = tap_run(sandbox.config, state)
    assert records == []  # fingerprints apply to the scan's rows too
    assert has_changes(sandbox.config, state) is True  # the probe cannot tell: run the tap


def test_probe(sandbox, clock, tap_run):
    sandbox.seed(300)
    assert has_changes(sandbox.config, None) is True
    assert has_changes(sandbox.config, {"bookmarks": {}}) is True
    _, state = tap_run(sandbox.config)
    sandbox.clear()
    assert has_changes(sandbox.config, state) is False
    assert has_changes(sandbox.config, {"singer_state": state}) is False  # `meltano state get`
    assert len(sandbox.calls()) == 6  # 3 each
    sandbox.edit(40, TELCLI="1")
    assert has_changes(sandbox.config, state) is True
    records, state = tap_run(sandbox.config, state)
    assert codes(records) == [40]
    assert has_changes(sandbox.config, state) is False  # boundary day, unchanged
    sandbox.edit(40, TELCLI="2")
    assert has_changes(sandbox.config, state) is True  # same day, edited again
    fixed_year = {**sandbox.config, "ejercicio": sandbox.emu.newest_year()}
    sandbox.clear()
    assert has_changes(fixed_year, state) is True
    assert sandbox.calls() == [LOGIN, QUERY]
