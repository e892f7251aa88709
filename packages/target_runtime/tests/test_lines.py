"""Per-record log lines: the first few of a kind at their level, the rest at DEBUG."""

from __future__ import annotations

import logging

import pytest
from target_runtime import RecordLines


def test_the_first_lines_of_a_kind_keep_their_level_the_rest_go_to_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lines = RecordLines(logging.getLogger("t.lines"), limit=2)
    caplog.set_level(logging.DEBUG, logger="t.lines")
    for key in range(4):
        lines.log("reject", logging.ERROR, "client %s rejected", key, where="in rejects.jsonl")
    lines.log("conflict", logging.WARNING, "conflict %s", 1)  # another kind: its own count
    got = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert got == [
        (logging.ERROR, "client 0 rejected"),
        (logging.ERROR, "client 1 rejected"),
        (
            logging.WARNING,
            "more reject lines than 2: the next ones are logged at DEBUG level only "
            "(in rejects.jsonl)",
        ),
        (logging.DEBUG, "client 2 rejected"),
        (logging.DEBUG, "client 3 rejected"),
        (logging.WARNING, "conflict 1"),
    ]
    assert lines.seen == {"reject": 4, "conflict": 1}


def test_at_info_level_a_long_run_logs_a_bounded_number_of_record_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lines = RecordLines(logging.getLogger("t.lines2"))
    caplog.set_level(logging.INFO, logger="t.lines2")
    for key in range(10_000):
        lines.log("field warning", logging.WARNING, "client %s: email: not valid", key)
        lines.log("kept deletion", logging.INFO, "client %s kept", key)
    assert len(caplog.records) == 2 * (lines.limit + 1)
