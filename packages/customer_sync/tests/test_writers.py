"""Reject file, plan file and run summary."""

import json
import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from customer_sync import FieldDiff, PlanWriter, RejectWriter, RunSummary

SCHEMA = {"type": "object", "properties": {"code": {"type": "integer"}}}
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def read_lines(path):
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_reject_file_is_a_replayable_singer_stream(tmp_path):
    path = tmp_path / "out" / "rejects" / "clients.jsonl"
    with RejectWriter(path, clock=lambda: NOW) as writer:
        writer.reject(
            "clients",
            {"code": 1, "fiscal_name": "Ñandú SL"},
            reason="invalid nif",
            key=1,
            schema=SCHEMA,
            key_properties=["code"],
        )
        writer.reject("clients", {"code": 2}, reason="x" * 2000, key=2)
        writer.register_schema("contacts", {"type": "object"}, ["id"], ["modified"])
        writer.reject("contacts", {"id": 9}, reason="duplicate", key=9)
    lines = read_lines(path)
    assert [(m["type"], m["stream"]) for m in lines] == [
        ("SCHEMA", "clients"),
        ("RECORD", "clients"),
        ("RECORD", "clients"),
        ("SCHEMA", "contacts"),
        ("RECORD", "contacts"),
    ]
    assert lines[0] == {
        "type": "SCHEMA",
        "stream": "clients",
        "schema": SCHEMA,
        "key_properties": ["code"],
    }
    assert lines[1]["record"] == {"code": 1, "fiscal_name": "Ñandú SL"}
    assert lines[1]["_reject"] == {
        "reason": "invalid nif",
        "code": "invalid_record",
        "candidates": [],
        "key": 1,
        "at": NOW.isoformat(),
    }
    assert len(lines[2]["_reject"]["reason"]) == 500
    assert lines[3]["bookmark_properties"] == ["modified"]
    assert writer.count == 3


def test_reject_file_keeps_the_sdk_decimals_as_json_numbers(tmp_path):
    # The SDK parses JSON numbers as Decimal; a replayed reject must still match its schema.
    path = tmp_path / "rejects.jsonl"
    record = {
        "code": Decimal("7"),
        "whole": Decimal("2.00"),
        "tarcli": Decimal("1.5"),
        "big": Decimal("12345678901234567890"),
        "negative": Decimal("-0.25"),
        "nan": Decimal("NaN"),
    }
    with RejectWriter(path) as writer:
        writer.reject("clients", record, reason="r", key=Decimal("1.5"), schema=SCHEMA)
    text = path.read_text("utf-8").splitlines()[-1]
    line = json.loads(text)
    assert line["record"] == {
        "code": 7,
        "whole": 2,
        "tarcli": 1.5,
        "big": 12345678901234567890,
        "negative": -0.25,
        "nan": "NaN",  # JSON has no number for it
    }
    assert isinstance(line["record"]["code"], int)
    assert isinstance(line["record"]["whole"], int)
    assert line["_reject"]["key"] == 1.5
    assert '"tarcli": 1.5' in text


def test_reject_file_appends_and_repeats_schema_per_run(tmp_path):
    path = tmp_path / "rejects.jsonl"
    for code in (1, 2):
        with RejectWriter(path) as writer:
            writer.reject("clients", {"code": code}, reason="r", key=code, schema=SCHEMA)
    assert [m["type"] for m in read_lines(path)] == ["SCHEMA", "RECORD", "SCHEMA", "RECORD"]


def test_reject_without_schema_is_an_error(tmp_path):
    with (
        RejectWriter(tmp_path / "r.jsonl") as writer,
        pytest.raises(ValueError, match="no schema"),
    ):
        writer.reject("clients", {"code": 1}, reason="r", key=1)


def test_reject_writer_is_thread_safe(tmp_path):
    path = tmp_path / "rejects.jsonl"
    writer = RejectWriter(path)
    writer.register_schema("clients", SCHEMA, ["code"])

    def work(start):
        for code in range(start, start + 200):
            writer.reject("clients", {"code": code, "pad": "x" * 500}, reason="r", key=code)

    threads = [threading.Thread(target=work, args=(i * 1000,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    lines = read_lines(path)
    assert lines[0]["type"] == "SCHEMA"
    assert [m["type"] for m in lines[1:]] == ["RECORD"] * 1600
    assert len({m["record"]["code"] for m in lines[1:]}) == 1600


def test_plan_writer(tmp_path):
    path = tmp_path / "plan" / "plan.jsonl"
    with PlanWriter(path) as plan:
        plan.write("create", 7, diffs=[FieldDiff("email", None, "a@b.es")])
        plan.write("update", 8, target_id=135, diffs=[FieldDiff("phone", "+34912345678", "")])
        plan.write("unchanged", 9, target_id=136)
        plan.write("reject", 10, reason="invalid factusol_id")
    assert read_lines(path) == [
        {
            "action": "create",
            "key": 7,
            "target_id": None,
            "diffs": [{"field": "email", "before": None, "after": "a@b.es"}],
            "reason": None,
        },
        {
            "action": "update",
            "key": 8,
            "target_id": 135,
            "diffs": [{"field": "phone", "before": "+34912345678", "after": ""}],
            "reason": None,
        },
        {"action": "unchanged", "key": 9, "target_id": 136, "diffs": [], "reason": None},
        {
            "action": "reject",
            "key": 10,
            "target_id": None,
            "diffs": [],
            "reason": "invalid factusol_id",
        },
    ]


def test_plan_writer_rejects_unknown_action(tmp_path):
    with PlanWriter(tmp_path / "p.jsonl") as plan, pytest.raises(ValueError, match="plan action"):
        plan.write("upsert", 1)


def test_run_summary(tmp_path):
    summary = RunSummary()
    assert summary.reject_ratio == 0.0
    for counter, n in [("created", 3), ("updated", 2), ("unchanged", 4), ("rejected", 1)]:
        summary.add(counter, n)
    summary.add("warnings")
    summary.add_api_calls({"read": 4, "write": 5})
    summary.add_api_calls({"write": 1})
    assert (summary.created, summary.updated, summary.rejected, summary.warnings) == (3, 2, 1, 1)
    assert summary.reject_ratio == pytest.approx(0.1)
    assert summary.api_calls == {"read": 4, "write": 6}
    assert summary.line("factusol→clientify") == (
        "factusol→clientify: 3 created, 2 updated, 4 unchanged, 0 linked, 1 rejected, "
        "0 conflicts, 1 warnings; api calls: read=4, write=6"
    )
    path = tmp_path / "reports" / "run.json"
    summary.write_report(path)
    report = json.loads(path.read_text("utf-8"))
    assert report["created"] == 3
    assert report["processed"] == 10
    assert report["reject_ratio"] == 0.1
    assert report["api_calls"] == {"read": 4, "write": 6}
    with pytest.raises(ValueError, match="unknown counter"):
        summary.add("deleted")


def test_run_summary_is_thread_safe():
    summary = RunSummary()

    def work():
        for _ in range(5000):
            summary.add("updated")
            summary.add_api_calls({"write": 1})

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert summary.updated == 40000
    assert summary.api_calls == {"write": 40000}


def test_customer_data_files_are_private(tmp_path):
    import stat

    from customer_sync import append_history, write_private_text

    plan = PlanWriter(tmp_path / "plans" / "t.jsonl")
    plan.truncate()
    plan.write("create", 1)
    plan.close()
    rejects = RejectWriter(tmp_path / "rejects" / "t.jsonl")
    rejects.reject("s", {"id": 1}, reason="r", key=1, schema={"type": "object"})
    rejects.close()
    report = tmp_path / "reports" / "t.json"
    write_private_text(report, "{}\n")
    history = append_history(report, {"created": 1})
    append_history(report, {"created": 2}, keep=2)
    append_history(report, {"created": 3}, keep=2)
    for path in (plan.path, rejects.path, report, history):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert [json.loads(x)["created"] for x in history.read_text().splitlines()] == [2, 3]


def test_progress_lines_at_a_steady_interval_with_rate_and_time_left(caplog):
    import logging

    from customer_sync import ProgressMeter

    now = [0.0]
    meter = ProgressMeter(
        logging.getLogger("t"), noun="clients", total=10_000, interval=30, clock=lambda: now[0]
    )
    caplog.set_level(logging.INFO)
    for _ in range(100):
        now[0] += 0.1  # 10 s, under one interval: nothing logged
        meter.advance()
    assert caplog.messages == []
    now[0] = 30.0
    meter.advance(1400)
    assert caplog.messages == [
        "progress: 1,500 of 10,000 clients (15%), 50.0/s, about 2 min 50 s left"
    ]
    unknown = ProgressMeter(logging.getLogger("t"), interval=1, clock=lambda: now[0])
    now[0] += 2
    unknown.advance(10)
    assert caplog.messages[-1] == "progress: 10 records, 5.0/s"


def test_progress_lines_name_the_counts_so_far(caplog):
    import logging

    from customer_sync import ProgressMeter

    now = [0.0]
    counts = {"created": 1200, "rejected": 3}
    meter = ProgressMeter(
        logging.getLogger("t"), noun="contacts", interval=30, clock=lambda: now[0],
        counts=lambda: counts,
    )  # fmt: skip
    caplog.set_level(logging.INFO)
    now[0] = 30.0
    meter.advance(1203)
    assert caplog.messages == ["progress: 1,203 contacts, 40.1/s; 1,200 created, 3 rejected"]
    counts.clear()  # nothing counted yet: the line names no counts
    now[0] = 60.0
    meter.advance(1)
    assert caplog.messages[-1] == "progress: 1,204 contacts, 20.1/s"


def test_a_lone_surrogate_is_written_escaped_not_a_crash(tmp_path):
    rejects = RejectWriter(tmp_path / "r.jsonl")
    rejects.reject("s", {"id": 1, "name": "a\ud800b"}, reason="r", key=1, schema={})
    rejects.close()
    line = (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()[1]
    assert json.loads(line)["record"]["name"] == "a\ud800b"
