"""The creation markers are read in keyset pages by CODCLI and kept out of the heap."""

from __future__ import annotations

import re
from typing import Any

import pytest
from factusol_api import FactusolError
from target_factusol.markers import (
    MARKER_WORD,
    MarkerIndex,
    MarkerView,
    load_markers,
    marker_page_query,
)

_PAGE = re.compile(
    rf"^SELECT TOP (\d+) CODCLI, OBSCLI FROM F_CLI WHERE OBSCLI LIKE '%{MARKER_WORD}%' "
    r"AND CODCLI > (\d+) ORDER BY CODCLI$"
)


class FakeFactusol:
    """Answers the marker pages from rows, as the server would (TOP n, CODCLI > last)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = sorted(rows, key=lambda row: row["CODCLI"])
        self.queries: list[str] = []

    def query(self, sql: str) -> list[dict[str, Any]]:
        self.queries.append(sql)
        match = _PAGE.match(sql)
        assert match, sql
        size, last = int(match.group(1)), int(match.group(2))
        marked = [r for r in self.rows if MARKER_WORD in str(r.get("OBSCLI") or "").lower()]
        return [r for r in marked if r["CODCLI"] > last][:size]


def test_page_query_takes_integers_only() -> None:
    assert marker_page_query(0, 2) == (
        "SELECT TOP 2 CODCLI, OBSCLI FROM F_CLI WHERE OBSCLI LIKE '%clientifyid%' "
        "AND CODCLI > 0 ORDER BY CODCLI"
    )
    with pytest.raises(ValueError, match="integer"):
        marker_page_query("1 OR 1=1", 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        marker_page_query(0, 0)


def test_markers_are_read_page_by_page_and_answer_like_one_query() -> None:
    rows = [
        {"CODCLI": 1, "OBSCLI": "clientifyid 10"},
        {"CODCLI": 2, "OBSCLI": "no marker here"},
        {"CODCLI": 3, "OBSCLI": "nota\r\nclientifyid 11\r\nclientifyid 12"},
        {"CODCLI": 4, "OBSCLI": "see clientifyid 13 later"},  # not a whole line: no marker
        {"CODCLI": 5, "OBSCLI": "clientifyid 10"},  # a second client for contact 10
        {"CODCLI": 7, "OBSCLI": "CLIENTIFYID 14"},
    ]
    fs = FakeFactusol(rows)
    index = load_markers(fs, page_size=2)
    try:
        # pages of 2 rows the LIKE matches (1,3 | 4,5 | 7): the short third page ends the scan
        assert [_PAGE.match(q).group(2) for q in fs.queries] == ["0", "3", "5"]  # type: ignore[union-attr]
        assert index.get(10) == [1, 5]
        assert index.get(11) == [3]
        assert index.get(12) == [3]
        assert index.get(14) == [7]
        assert index.get(13) is None
        assert index.get(99) is None
        assert len(index) == 4
    finally:
        index.close()


def test_an_empty_table_costs_one_query() -> None:
    fs = FakeFactusol([])
    index = load_markers(fs)
    assert len(fs.queries) == 1
    assert len(index) == 0
    index.close()


def test_paging_that_does_not_advance_stops_the_run() -> None:
    class Stuck(FakeFactusol):
        def query(self, sql: str) -> list[dict[str, Any]]:
            self.queries.append(sql)
            return [{"CODCLI": 1, "OBSCLI": "clientifyid 1"}] * 2

    with pytest.raises(FactusolError, match="did not advance"):
        load_markers(Stuck([]), page_size=2)


def test_view_adds_this_runs_markers_after_the_tables() -> None:
    index = MarkerIndex()
    index.add_rows([{"CODCLI": 3, "OBSCLI": "clientifyid 1"}])
    written: dict[int, list[int]] = {1: [9], 2: [8]}
    view = MarkerView(index, written)
    assert view.get(1) == [3, 9]
    assert view.get(2) == [8]
    assert view.get(3) is None
    written.setdefault(3, []).append(4)  # what Finder.note_marker does
    assert view.get(3) == [4]
    index.add(5, 6)
    assert index.get(5) == [6]
    assert len(index) == 2
    index.close()
