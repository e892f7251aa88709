"""RuntimeSink against the installed SDK: the one SDK behaviour the targets rely on.

The sink overrides no private SDK method. It relies on the SDK calling the validator from
``get_validator`` before parsing dates, then ``preprocess_record``, then its key check. If a
new SDK changes that order, these tests fail (a record would stop the run or be logged).
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from singer_sdk import Target
from singer_sdk import typing as th
from target_runtime.sink import BAD_DATES, INVALID, MISSING_KEYS, RuntimeSink

SCHEMA = {
    "type": "SCHEMA",
    "stream": "things",
    "key_properties": ["id"],
    "schema": {
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": ["string", "null"]},
            "modified": {"type": ["string", "null"], "format": "date-time"},
        }
    },
}


class FakeRun:
    name, stream = "target-things", "things"

    def __init__(self) -> None:
        self.open_sinks = 0
        self.records_in = 0
        self.batches: list[list[dict[str, Any]]] = []
        self.finished = False

    def process_batch(self, records: list[dict[str, Any]], **_: Any) -> None:
        self.batches.append(records)

    def finish(self) -> None:
        self.finished = True


class ThingsSink(RuntimeSink):
    pass


class ThingsTarget(Target):
    name = "target-things"
    config_jsonschema = th.PropertiesList().to_dict()
    default_sink_class = ThingsSink

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run = FakeRun()


def feed(*records: dict[str, Any]) -> FakeRun:
    lines = [SCHEMA, *({"type": "RECORD", "stream": "things", "record": r} for r in records)]
    target = ThingsTarget(config={}, parse_env_config=False)
    target.listen(io.StringIO("".join(json.dumps(line) + "\n" for line in lines)))
    return target.run


def test_bad_records_are_marked_never_fatal_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        run = feed(
            {"id": 1, "name": 12345, "modified": "2025-01-01T10:00:00Z"},
            {"id": 2, "name": "Ana Secreta", "modified": "0000-00-00"},
            {"name": "Sin Clave"},
        )

    (batch,) = run.batches
    assert batch[0][INVALID] == "record does not match the things schema (type at $.name)"
    assert batch[0]["modified"] == "2025-01-01T10:00:00Z"  # the SDK parsed no date
    assert batch[1][BAD_DATES] == ["modified"]
    assert batch[1]["modified"] == "0000-00-00"  # kept as received
    assert INVALID not in batch[1]
    assert batch[2][MISSING_KEYS] == ["id"]
    assert batch[2]["id"] is None
    assert run.records_in == 3
    assert run.finished
    for value in ("12345", "Ana Secreta", "0000-00-00", "Sin Clave"):
        assert value not in caplog.text  # no record value in any log line


def test_duplicates_keep_the_last_version_at_its_position() -> None:
    run = feed({"id": 1, "name": "old"}, {"id": 2, "name": "b"}, {"id": 1, "name": "new"})

    (batch,) = run.batches
    assert [(r["id"], r["name"]) for r in batch] == [(2, "b"), (1, "new")]
