"""History, retention and forgetting on real files and a real ledger (SQLite), in process."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from customer_records import forget_person, prune_run_files
from customer_records.cli import forget_main, history_main, relink_main
from sync_ledger import CustomerHistory, HistoryEvent, SyncLedger

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
ANA = {
    "fiscal_name": "Ana García López",
    "nif": "12345678Z",
    "email": "ana.garcia@construcciones.es",
    "phone": "+34600112233",
}
LUIS = {"fiscal_name": "Luis Pérez", "nif": "87654321X", "email": "luis@pintura.es"}


def _age(path: Path, days: float) -> None:
    moment = (NOW - timedelta(days=days)).timestamp()
    os.utime(path, (moment, moment))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


@pytest.fixture
def synced(tmp_path: Path) -> tuple[Path, SyncLedger]:
    """An output directory after a few runs that named Ana (client 7) and Luis (client 8)."""
    out = tmp_path / "output"
    ledger = SyncLedger(str(out / "ledger" / "sync-ledger.sqlite"), scope="acct")
    ledger.record(7, "135", ANA)
    ledger.record(8, "136", LUIS)
    CustomerHistory(ledger).record(
        [
            HistoryEvent("first_link", code=7, contact_id="135", detail={"key": "nif"}),
            HistoryEvent(
                "conflict",
                code=7,
                contact_id="135",
                side="factusol",
                field="phone",
                before="+34911111111",
                after=ANA["phone"],
                detail={"winner": "clientify"},
                run_id="r2",
            ),
            HistoryEvent("created", code=8, contact_id="136", side="clientify"),
        ]
    )
    plan = [
        {"action": "update", "key": 7, "diffs": [{"field": "email", "after": ANA["email"]}]},
        {"action": "create", "key": 8, "diffs": [{"field": "name", "after": LUIS["fiscal_name"]}]},
    ]
    _write(out / "plans" / "target-clientify.jsonl", "".join(json.dumps(p) + "\n" for p in plan))
    reject = {
        "type": "RECORD",
        "record": {"nif": "12.345.678-z"},
        "_reject": {"at": NOW.isoformat()},
    }
    _write(out / "rejects" / "target-factusol.jsonl", json.dumps(reject) + "\n")
    _write(
        out / "reports" / "target-clientify.json",
        json.dumps({"created": 1, "conflicts": [{"code": 7, "won": "+34 600 11 22 33"}]}),
    )
    _write(out / "logs" / "run.log", "linked 7 by NIF 12345678Z\nlinked 8\nAna García López ok\n")
    cache = out / "cache" / "clientify-contacts.sqlite"
    cache.parent.mkdir()
    conn = sqlite3.connect(cache)
    conn.execute("CREATE TABLE contacts (id TEXT, doc TEXT)")
    conn.execute("INSERT INTO contacts VALUES ('135', ?)", (json.dumps(ANA, ensure_ascii=False),))
    conn.execute("INSERT INTO contacts VALUES ('136', ?)", (json.dumps(LUIS, ensure_ascii=False),))
    conn.commit()
    conn.close()
    yield out, ledger
    ledger.close()


def _traces(out: Path, values: list[str]) -> list[str]:
    """Every file under ``out`` (databases included, read as bytes) that holds one of the values."""
    found = []
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.name}: {v}" for v in values if v.encode() in data]
    return found


def test_forget_leaves_no_trace_of_the_person_and_keeps_the_others(synced) -> None:
    out, ledger = synced
    (out / "report.html").write_text("<p>old page naming Ana García López</p>", "utf-8")
    assert _traces(out, [ANA["nif"], ANA["email"]])  # the setup really names her

    result = forget_person("12345678Z", ledger=ledger, output_dir=out)

    assert result.codes == {7}
    assert result.contact_ids == {"135"}
    assert result.history_rows == 2
    personal = [*ANA.values(), "12.345.678-z", "+34 600 11 22 33", "Ana García López"]
    assert _traces(out, personal) == []
    # Luis is untouched, everywhere
    assert ledger.get(8) is not None
    assert _traces(out, [LUIS["email"], LUIS["fiscal_name"]])
    # the decision stays, with keys only: the sync will not pull her back
    mark = CustomerHistory(ledger).marks()[7]
    assert (mark.kind, mark.contact_id) == ("forgotten", "135")
    assert ledger.get(7) is None
    assert any("Clientify: the contact 135" in line for line in result.instructions())


def test_forget_cli_and_history_cli(synced, capsys) -> None:
    out, ledger = synced
    uri = str(out / "ledger" / "sync-ledger.sqlite")
    assert history_main([ANA["email"], "--ledger-uri", uri]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert len(shown) == 2
    assert "first run: linked by a shared key" in shown[0]
    assert "key=nif" in shown[0]
    assert "factusol.phone: +34911111111 → +34600112233" in shown[1]
    assert "winner=clientify" in shown[1]
    assert "[run r2]" in shown[1]
    # by contact id too
    assert history_main(["135", "--ledger-uri", uri]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2

    assert forget_main([ANA["email"], "--ledger-uri", uri, "--output-dir", str(out)]) == 0
    said = capsys.readouterr().out
    assert "forgotten: 1 client(s)" in said
    assert "FactuSOL: the client 7 is untouched" in said
    assert history_main(["7", "--ledger-uri", uri]) == 0
    assert "forgotten on request" in capsys.readouterr().out

    assert relink_main(["--client", "7", "--ledger-uri", uri]) == 0
    assert CustomerHistory(ledger).marks() == {}
    assert relink_main(["--client", "7", "--ledger-uri", uri]) == 1


def test_an_unknown_person_is_said_so(synced, capsys) -> None:
    out, _ledger = synced
    uri = str(out / "ledger" / "sync-ledger.sqlite")
    assert history_main(["nobody@nowhere.es", "--ledger-uri", uri]) == 1
    assert forget_main(["nobody@nowhere.es", "--ledger-uri", uri, "--output-dir", str(out)]) == 1


def test_several_accounts_need_a_scope(tmp_path: Path) -> None:
    uri = str(tmp_path / "ledger.sqlite")
    for scope in ("a", "b"):
        SyncLedger(uri, scope=scope).record(1, "1", {})
    with pytest.raises(SystemExit, match="holds 2 accounts"):
        history_main(["1", "--ledger-uri", uri])


def test_retention_removes_old_run_files_and_old_lines_only(synced) -> None:
    out, _ledger = synced
    old_log = _write(out / "logs" / "old.log", "a run long ago\n")
    _age(old_log, 91)
    history = out / "reports" / "target-clientify.history.jsonl"
    _write(
        history,
        json.dumps({"finished_at": (NOW - timedelta(days=120)).isoformat(), "created": 1})
        + "\n"
        + json.dumps({"finished_at": (NOW - timedelta(days=3)).isoformat(), "created": 2})
        + "\n",
    )
    cache = out / "cache" / "clientify-contacts.sqlite"
    _age(cache, 400)  # a store of record: never pruned by age

    result = prune_run_files(out, days=90, now=lambda: NOW)

    assert result.deleted_files == [old_log]
    assert not old_log.exists()
    assert cache.exists()
    assert result.trimmed_lines == 1
    assert [json.loads(line)["created"] for line in history.read_text().splitlines()] == [2]
    assert (history.stat().st_mode & 0o777) == 0o600
    with pytest.raises(ValueError, match="at least one day"):
        prune_run_files(out, days=0)


def test_the_report_page_links_each_mentioned_client_to_its_history(synced) -> None:
    from customer_records import history_source
    from sync_report import render_report_page

    out, ledger = synced
    page = render_report_page(out, history=history_source(ledger))
    html = page.read_text("utf-8")
    assert 'href="customers/7.html"' in html
    assert 'href="customers/8.html"' in html
    seven = (out / "customers" / "7.html").read_text("utf-8")
    assert "+34911111111" in seven
    assert 'data-reason="conflict"' in seven
    assert "winner=clientify" in seven
    assert (out / "customers" / "7.html").stat().st_mode & 0o777 == 0o600
    assert (out / "customers").stat().st_mode & 0o777 == 0o700
    # forgetting Ana removes her page with the rest
    forget_person("7", ledger=ledger, output_dir=out)
    render_report_page(out, history=history_source(ledger))
    assert not (out / "customers" / "7.html").exists()
    assert _traces(out, [ANA["email"], ANA["phone"]]) == []


def test_named_files_are_pruned_and_nothing_else(tmp_path: Path) -> None:
    from customer_records import prune_files

    mine_old = _write(tmp_path / "plan.jsonl", "{}\n")
    _age(mine_old, 200)
    neighbour = _write(tmp_path / "someone-elses.txt", "keep me\n")
    _age(neighbour, 500)
    rejects = _write(
        tmp_path / "rejects.jsonl",
        json.dumps({"_reject": {"at": (NOW - timedelta(days=95)).isoformat()}})
        + "\n"
        + json.dumps({"_reject": {"at": (NOW - timedelta(days=2)).isoformat()}})
        + "\n",
    )
    result = prune_files([mine_old, rejects, tmp_path / "absent.json"], days=90, now=lambda: NOW)
    assert result.deleted_files == [mine_old]
    assert result.trimmed_lines == 1
    assert neighbour.exists()  # a file the sync did not name is never touched
    assert len(rejects.read_text().splitlines()) == 1


def test_relink_of_a_deletion_drops_the_pair_and_says_what_comes_next(synced, capsys) -> None:
    out, ledger = synced
    uri = str(out / "ledger" / "sync-ledger.sqlite")
    CustomerHistory(ledger).mark(8, "deleted_in_factusol", contact_id="136")

    assert relink_main(["--client", "8", "--ledger-uri", uri]) == 0

    said = capsys.readouterr().out
    assert "missing_client" in said
    assert ledger.get(8) is None  # the pair is gone: the next run does not mark it again
    assert ledger.get(7) is not None
    steps = CustomerHistory(ledger).events(codes=[8])
    assert steps[-1].reason == "relinked"
    assert steps[-1].detail == {"was": "deleted_in_factusol"}


def test_forget_scrubs_a_contact_cache_given_by_path(tmp_path: Path) -> None:
    ledger = SyncLedger(str(tmp_path / "ledger.sqlite"), scope="acct")
    ledger.record(7, "135", ANA)
    cache = tmp_path / "elsewhere" / "contacts.sqlite"  # not under the output directory
    cache.parent.mkdir()
    conn = sqlite3.connect(cache)
    conn.execute("CREATE TABLE contact_index_contact (scope TEXT, pk TEXT, body TEXT)")
    conn.execute("INSERT INTO contact_index_contact VALUES ('a', '135', ?)", (json.dumps(ANA),))
    conn.execute("INSERT INTO contact_index_contact VALUES ('a', '136', ?)", (json.dumps(LUIS),))
    conn.commit()
    conn.close()

    forget_person(ANA["email"], ledger=ledger, index_cache=str(cache))

    ledger.close()
    assert _traces(tmp_path, [ANA["email"], ANA["nif"]]) == []
    assert LUIS["email"].encode() in cache.read_bytes()
