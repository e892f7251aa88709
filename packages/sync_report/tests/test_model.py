"""Reading the targets' files: tolerant of missing files, junk lines and fields added later."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sr_samples import write_sample_output
from sync_report import JOBS, load_job
from sync_report.chart import build_chart, tick_label_width

CLIENTIFY, FACTUSOL = JOBS  # target-clientify (FactuSOL -> Clientify), target-factusol
MADRID = ZoneInfo("Europe/Madrid")


def write_lines(path: Path, *lines: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines),
        "utf-8",
    )


def test_an_empty_output_dir_is_no_run_yet(tmp_path: Path) -> None:
    view = load_job(tmp_path, CLIENTIFY)
    assert (view.has_report, view.status, view.history) == (False, "none", [])
    assert view.counts == dict.fromkeys(view.counts, 0)
    assert (view.changes, view.creates, view.conflicts, view.rejects) == ([], [], [], [])


def test_the_sample_run_is_read_as_written(tmp_path: Path) -> None:
    write_sample_output(tmp_path)
    view = load_job(tmp_path, CLIENTIFY, tz=MADRID)
    assert view.status == "ok"
    assert not view.dry_run
    assert view.counts == {
        "created": 2,
        "linked": 1,
        "updated": 3,
        "unchanged": 412,
        "rejected": 3,
        "conflicts": 1,
    }
    assert view.finished_at == "05/12/2026 09:00"  # 08:00 UTC in Madrid
    assert [c.action for c in view.changes] == ["update", "update", "update", "link"]
    first = view.changes[0]
    assert (first.key, first.target_id) == ("17", "135000042")
    assert [(d.field, d.before, d.after) for d in first.diffs] == [
        ("email", "ana.garcia@gmail.com", "ana.garcia@construccionesperez.es"),
        ("mobile", "+34600112233", "+34611223344"),
    ]
    assert [c.key for c in view.creates] == ["77", "78"]
    assert len(view.history) == 13
    assert [p.failed for p in view.history].count(True) == 1
    assert [p.dry_run for p in view.history].count(True) == 1

    dry = load_job(tmp_path, FACTUSOL)
    assert (dry.status, dry.dry_run) == ("dry_run", True)


def test_rejects_latest_per_key_newest_first_with_the_last_runs_marked(tmp_path: Path) -> None:
    write_sample_output(tmp_path)
    view = load_job(tmp_path, CLIENTIFY)
    by_key = {r.key: r for r in view.rejects}
    assert [r.key for r in view.rejects] == ["58", "52", "61"]  # file order reversed, deduped
    assert by_key["61"].times == 2
    assert not by_key["61"].in_last_run
    assert by_key["52"].in_last_run
    assert by_key["52"].name == "Construcciones Pérez Núñez, S.L."
    assert by_key["52"].code == "ambiguous_match"
    assert by_key["52"].candidates == ["135000070", "135000071"]
    assert by_key["58"].explanation.code == "api_refused"  # no code: from the sentence
    assert by_key["61"].explanation.code == "invalid_record"

    # candidates only on the plan line: still shown
    plan = tmp_path / "plans" / "target-clientify.jsonl"
    lines = [json.loads(line) for line in plan.read_text("utf-8").splitlines()]
    for line in lines:
        if line.get("key") == 58:
            line["candidates"] = [7, 8]
    write_lines(plan, *lines)
    assert load_job(tmp_path, CLIENTIFY).rejects[0].candidates == ["7", "8"]

    # A dry run writes no reject file: the plan's reject lines are shown instead.
    dry = load_job(tmp_path, FACTUSOL)
    assert {r.key: r.explanation.code for r in dry.rejects} == {
        "135000077": "missing_client",
        "135000078": "no_name",
    }
    assert all(r.in_last_run and r.times == 0 for r in dry.rejects)


def test_conflicts_with_and_without_the_new_fields(tmp_path: Path) -> None:
    write_sample_output(tmp_path)
    (conflict,) = load_job(tmp_path, CLIENTIFY).conflicts
    # `values` and `winner` present
    assert (conflict.field, conflict.factusol, conflict.clientify, conflict.winner) == (
        "phone",
        "+34912345678",
        "+34611000000",
        "clientify",
    )
    # target-factusol line without them: before = FactuSOL (the target), after = Clientify;
    # the winner read from the reason
    (conflict,) = load_job(tmp_path, FACTUSOL).conflicts
    assert (conflict.field, conflict.factusol, conflict.clientify, conflict.winner) == (
        "email",
        "info@pereznunez.es",
        "ventas@pn.es",
        "factusol",
    )


def test_target_clientify_conflict_without_values_maps_before_to_clientify(tmp_path: Path) -> None:
    write_lines(
        tmp_path / "plans" / "target-clientify.jsonl",
        {
            "action": "conflict",
            "key": 3,
            "target_id": 9,
            "diffs": [{"field": "email", "before": "in@clientify.es", "after": "in@factusol.es"}],
            "reason": "email: Clientify wins; the FactuSOL change is not applied",
        },
    )
    (conflict,) = load_job(tmp_path, CLIENTIFY).conflicts
    assert (conflict.factusol, conflict.clientify, conflict.winner) == (
        "in@factusol.es",
        "in@clientify.es",
        "clientify",
    )


def test_junk_lines_and_types_are_skipped_and_counted(tmp_path: Path) -> None:
    write_lines(
        tmp_path / "plans" / "target-clientify.jsonl",
        "{not json",
        "[1, 2]",
        {"action": "update", "key": {"nested": 1}, "diffs": "not a list", "reason": 5},
        {"action": "update", "key": 1, "diffs": [None, {"no": "field"}, {"field": "nif"}]},
        {"action": "teleport", "key": 2},
        '{"action": "update", "key": 3, "diffs": [{"field": "cut',  # a run killed mid-write
    )
    write_lines(
        tmp_path / "rejects" / "target-clientify.jsonl",
        {"type": "SCHEMA", "stream": "clients", "schema": {}},
        {"type": "RECORD", "stream": "clients", "record": {"code": 1}},  # no _reject: skipped
        {"type": "RECORD", "record": "not a dict", "_reject": {"key": 4, "reason": None}},
        "garbage",
    )
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "target-clientify.json").write_text("[1]", "utf-8")
    view = load_job(tmp_path, CLIENTIFY)
    assert view.unreadable_lines == 4
    assert not view.has_report  # a report that is not an object is no report
    assert [c.key for c in view.changes] == ['{"nested": 1}', "1"]
    assert view.changes[0].diffs == []
    assert view.changes[0].reason == "5"
    assert [(d.field, d.before, d.after) for d in view.changes[1].diffs] == [("nif", None, None)]
    (reject,) = view.rejects
    assert (reject.key, reject.name, reject.reason, reject.explanation.code) == (
        "4",
        None,
        "",
        None,
    )


def test_history_keeps_the_last_runs_and_falls_back_to_the_report(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    runs = [
        {"updated": n, "finished_at": f"2026-12-01T{n:02d}:00:00+00:00", "status": "ok"}
        for n in range(10)
    ]
    write_lines(reports / "target-factusol.history.jsonl", *runs)
    view = load_job(tmp_path, FACTUSOL, history_limit=4, tz=UTC)
    assert [p.counts["updated"] for p in view.history] == [6, 7, 8, 9]
    assert view.history[-1].label == "01/12/2026 09:00"

    # no history file: the last report is the only bar, dated by the file when it has no time
    (reports / "target-factusol.history.jsonl").unlink()
    (reports / "target-clientify.json").write_text(json.dumps({"created": 5}), "utf-8")
    (point,) = load_job(tmp_path, CLIENTIFY).history
    assert point.counts["created"] == 5
    assert point.when is not None


def test_sections_are_capped_and_say_how_many_more(tmp_path: Path) -> None:
    write_lines(
        tmp_path / "plans" / "target-clientify.jsonl",
        *(
            {"action": "update", "key": n, "diffs": [{"field": "nif", "before": "", "after": "X"}]}
            for n in range(30)
        ),
    )
    view = load_job(tmp_path, CLIENTIFY, max_items=10)
    assert len(view.changes) == 10
    assert view.totals["changes"] == 30


def test_control_characters_and_lone_surrogates_are_made_visible(tmp_path: Path) -> None:
    write_lines(
        tmp_path / "plans" / "target-clientify.jsonl",
        '{"action": "update", "key": 1, "diffs": [{"field": "name", '
        '"before": "a\\u0000b\\u001bc\\td", "after": "x\\ud800y"}]}',
    )
    (diff,) = load_job(tmp_path, CLIENTIFY).changes[0].diffs
    assert diff.before == "a\u2400b\u241bc\td"  # ␀ and ␛; a tab stays a tab
    assert diff.after == "x\ufffdy"


def test_long_values_are_cut_for_display(tmp_path: Path) -> None:
    write_lines(
        tmp_path / "plans" / "target-clientify.jsonl",
        {"action": "update", "key": 1, "diffs": [{"field": "name", "before": "A" * 5000}]},
    )
    (diff,) = load_job(tmp_path, CLIENTIFY).changes[0].diffs
    assert diff.before is not None
    assert len(diff.before) == 300
    assert diff.before.endswith("…")


@pytest.mark.parametrize("n", [0, 1, 30])
def test_the_chart_fits_its_box(tmp_path: Path, n: int) -> None:
    write_lines(
        tmp_path / "reports" / "target-clientify.history.jsonl",
        *({"created": i, "updated": 2 * i, "rejected": i % 3} for i in range(n)),
    )
    chart = build_chart(load_job(tmp_path, CLIENTIFY).history)
    assert len(chart.bars) == n
    for bar in chart.bars:
        assert chart.plot_left <= bar.x
        assert bar.x + bar.width <= chart.plot_right
        for seg in bar.segments:
            assert seg.y >= 0
            assert seg.y + seg.height <= chart.baseline + 0.01
    assert [value for _y, value in chart.ticks] == sorted(value for _y, value in chart.ticks)
    assert chart.ticks[-1][1] % 2 == 0  # a whole middle tick


@pytest.mark.parametrize("top", [8, 100_000, 10_000_000])
def test_the_plot_starts_right_of_its_widest_tick_label(tmp_path: Path, top: int) -> None:
    write_lines(tmp_path / "reports" / "target-clientify.history.jsonl", {"created": top})
    chart = build_chart(load_job(tmp_path, CLIENTIFY).history)
    widest = max(tick_label_width(value) for _y, value in chart.ticks)
    assert chart.plot_left - 6 - widest >= 0  # labels end 6 px left of the plot
    assert chart.bars[0].x >= chart.plot_left


def test_deletions_respected_are_listed_and_rendered(tmp_path: Path) -> None:
    from sync_report import render_report_page

    write_lines(
        tmp_path / "plans" / "target-clientify.jsonl",
        {
            "action": "kept_deleted",
            "key": 101,
            "target_id": 555,
            "diffs": [],
            "reason": "deleted in Clientify: not re-created; fcsync-relink --client 101",
        },
    )
    write_lines(tmp_path / "reports" / "target-clientify.json", {"kept_deleted": 1})
    view = load_job(tmp_path, CLIENTIFY)
    (kept,) = view.kept
    assert (kept.key, kept.target_id, view.totals["kept"]) == ("101", "555", 1)
    assert "fcsync-relink --client 101" in (kept.reason or "")
    page = render_report_page(tmp_path).read_text("utf-8")
    assert 'data-action="kept_deleted"' in page
    assert "Nothing to review" not in page


def test_a_deletion_respected_is_listed_and_its_client_linked(tmp_path: Path) -> None:
    from sync_report import render_report_page

    write_lines(tmp_path / "reports" / "target-factusol.json", {"status": "ok"})
    reason = "client 501 was deleted in FactuSOL: the contact is kept"
    write_lines(
        tmp_path / "plans" / "target-factusol.jsonl",
        {"action": "kept_deleted", "key": 135, "target_id": 501, "reason": reason},
    )
    view = load_job(tmp_path, FACTUSOL)
    assert [(k.key, k.target_id, k.reason) for k in view.kept] == [("135", "501", reason)]
    assert view.totals["kept"] == 1

    def steps(codes: set[int]) -> dict[int, list[dict[str, object]]]:
        return {
            code: [{"at": "2026-12-01T10:00:00+00:00", "reason": "deleted_in_factusol"}]
            for code in codes
        }

    page = render_report_page(tmp_path, history=steps).read_text("utf-8")
    assert 'data-action="kept_deleted"' in page
    assert 'href="customers/501.html"' in page
