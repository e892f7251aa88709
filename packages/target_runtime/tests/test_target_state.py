"""RuntimeTarget writes a STATE only after the run's writes have ended: a batch's last writes
go on while the SDK reads the next batch (SyncRun.process_batch), and a STATE vouches for
every record before it.

The hook is the SDK's ``Target._write_state_message`` (it has no public one before a STATE):
if a new SDK renames it or writes STATE elsewhere, these tests fail."""

from __future__ import annotations

import io
import json
import logging
import sys
from typing import Any, ClassVar

import pytest
from singer_sdk import typing as th
from target_runtime.sink import RuntimeSink
from target_runtime.target import RuntimeTarget

LINES = [
    {
        "type": "SCHEMA",
        "stream": "things",
        "key_properties": ["id"],
        "schema": {"properties": {"id": {"type": "integer"}}},
    },
    {"type": "RECORD", "stream": "things", "record": {"id": 1}},
    {"type": "STATE", "value": {"bookmark": 1}},
]


class FakeRun:
    """Records what the target asks of its run, and when the STATE line is written."""

    name, stream = "target-things", "things"
    events: ClassVar[list[str]] = []

    def __init__(self, config: dict[str, Any], logger: logging.Logger) -> None:
        self.open_sinks = 0
        self.records_in = 0
        self.finished = False
        self.unsettled = False

    def process_batch(self, records: list[dict[str, Any]], **_: Any) -> None:
        self.unsettled = True  # its last writes still going on
        self.events.append("batch")

    def settle(self) -> None:
        if self.unsettled:
            self.events.append("writes ended")
        self.unsettled = False

    def finish(self) -> None:
        self.events.append("finish")  # no settle here: the STATE hook must do it


class ThingsSink(RuntimeSink):
    pass


class ThingsTarget(RuntimeTarget):
    name = "target-things"
    config_jsonschema = th.PropertiesList().to_dict()
    default_sink_class = ThingsSink
    run_class = FakeRun  # type: ignore[assignment]


class Recorder(io.StringIO):
    def write(self, text: str) -> int:
        if text.strip():
            FakeRun.events.append("STATE " + text.strip())
        return len(text)


def test_the_state_waits_for_the_last_batchs_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeRun.events.clear()
    monkeypatch.setattr(sys, "stdout", Recorder())
    target = ThingsTarget(config={}, parse_env_config=False)
    target.listen(io.StringIO("".join(json.dumps(line) + "\n" for line in LINES)))
    assert FakeRun.events == ["batch", "finish", "writes ended", 'STATE {"bookmark": 1}']


def test_a_state_with_nothing_written_waits_for_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # A STATE before any record: no batch, nothing to wait for.
    FakeRun.events.clear()
    monkeypatch.setattr(sys, "stdout", Recorder())
    target = ThingsTarget(config={}, parse_env_config=False)
    target.listen(io.StringIO(json.dumps(LINES[0]) + "\n" + json.dumps(LINES[2]) + "\n"))
    assert FakeRun.events == ["finish", 'STATE {"bookmark": 1}']
