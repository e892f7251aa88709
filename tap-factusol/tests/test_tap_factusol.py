"""tap-factusol: the SDK's standard tap tests plus full/modified mode behaviour.

HTTP is mocked with ``responses`` by a small in-memory FactuSOL that understands exactly the SQL
the client sends (keyset pages, TOP 1, CODCLI IN (…), the ordered read of the newest rows), so
these tests also pin that SQL. tests/test_change_detection.py runs against the sandbox instead.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import responses
import tap_factusol.detect as detect_module
import tap_factusol.streams as streams_module
import yaml
from factusol_api import F_CLI_COLUMNS
from singer_sdk.testing import SuiteConfig, get_tap_test_class
from tap_factusol.tap import TapFactusol

API = "http://127.0.0.1:8765"
MADRID = ZoneInfo("Europe/Madrid")
BASE_CONFIG: dict[str, Any] = {
    "api_url": API,
    "codigo_fabricante": "1234",
    "codigo_cliente": "56789",
    "base_datos": "FS001",
    "password": "sandbox-password",
    "ejercicio": "2026",
}
_DEFAULTS = {"int": 0, "money": 0.0, "text": "", "memo": "", "datetime": None}


def make_row(code: int, fum: str | None = None, **values: Any) -> dict[str, Any]:
    """A full F_CLI row with FactuSOL-like defaults."""
    row = {name: _DEFAULTS[spec.kind] for name, spec in F_CLI_COLUMNS.items()}
    row.update(CODCLI=code, NOFCLI=f"Cliente {code}", FUMCLI=fum, ESTCLI=1, PAICLI="724")
    row.update(values)
    return row


class FakeFactusol:
    """In-memory F_CLI behind the three routes the tap uses."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = {row["CODCLI"]: row for row in rows}
        self.queries: list[str] = []
        self.filters: list[str] = []
        self.unordered = False  # answer the ordered read in CODCLI order (an engine ignoring it)
        self.nulls_first = False  # answer the ordered read with the NULL FUMCLI rows first

    def register(self, rsps: responses.RequestsMock) -> None:
        rsps.add_callback(responses.POST, f"{API}/login/Autenticar", callback=self._login)
        rsps.add_callback(responses.POST, f"{API}/admin/LanzarConsulta", callback=self._query)
        rsps.add_callback(responses.POST, f"{API}/admin/CargaTabla", callback=self._load)

    @staticmethod
    def _reply(resultado: Any) -> tuple[int, dict[str, str], str]:
        return 200, {}, json.dumps({"resultado": resultado, "respuesta": "OK"})

    @staticmethod
    def _cells(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]] | None:
        return [[{"columna": k, "dato": v} for k, v in r.items()] for r in rows] or None

    def _login(self, request: Any) -> tuple[int, dict[str, str], str]:
        return self._reply("header.e30.signature")

    def _query(self, request: Any) -> tuple[int, dict[str, str], str]:
        sql = json.loads(request.body)["consulta"]
        self.queries.append(sql)
        newest = re.fullmatch(
            r"SELECT TOP (\d+) (.+?) FROM F_CLI WHERE FUMCLI IS NOT NULL "
            r"ORDER BY FUMCLI DESC, CODCLI DESC",
            sql,
        )
        if newest:
            top, projection = newest.groups()
            dated = [r for r in self.rows.values() if r["FUMCLI"] is not None]
            dated.sort(key=lambda r: (r["FUMCLI"], r["CODCLI"]), reverse=True)
            if self.unordered:
                dated.sort(key=lambda r: r["CODCLI"])
            if self.nulls_first:
                dated = [r for r in self.rows.values() if r["FUMCLI"] is None] + dated
            rows = dated[: int(top)]
            if projection != "*":
                rows = [{n: r[n] for n in projection.split(", ")} for r in rows]
            return self._reply(self._cells(rows))
        match = re.fullmatch(
            r"SELECT TOP (\d+) (.+?) FROM F_CLI(?: WHERE CODCLI > (\d+))?"
            r"(?: ORDER BY CODCLI( DESC)?)?",
            sql,
        )
        assert match, f"unexpected SQL: {sql}"
        top, projection, last, desc = match.groups()
        rows = [self.rows[c] for c in sorted(self.rows, reverse=bool(desc))]
        rows = [r for r in rows if r["CODCLI"] > int(last or 0)][: int(top)]
        if projection != "*":
            names = projection.split(", ")
            rows = [{n: r[n] for n in names} for r in rows]
        return self._reply(self._cells(rows))

    def _load(self, request: Any) -> tuple[int, dict[str, str], str]:
        payload = json.loads(request.body)
        self.filters.append(payload["filtro"])
        match = re.fullmatch(r"CODCLI IN \(([0-9, ]+)\)", payload["filtro"])
        assert match, f"unexpected filtro: {payload['filtro']}"
        codes = {int(c) for c in match.group(1).split(", ")}
        return self._reply(self._cells([self.rows[c] for c in sorted(codes) if c in self.rows]))


def standard_rows() -> list[dict[str, Any]]:
    return [
        make_row(1, "2026-11-25T00:00:00", FALCLI="2020-01-15T00:00:00", EMACLI="a@example.com"),
        make_row(2, "2026-11-24T00:00:00", NIFCLI="B12345678", TARCLI=3, FINCLI=1.5),
        make_row(3, "2026-11-23T00:00:00", NOFCLI="O'Brien S.L.", OBSCLI="línea 1\nlínea 2"),
        make_row(4, None, FALCLI="1899-12-30T00:00:00"),
        make_row(5, "2026-11-24T16:30:00", CPOCLI="08001", ESTCLI="2"),
        make_row(6, "2026-11-20T00:00:00"),
    ]


# ----------------------------------------------------------------------------- SDK standard tests

_STANDARD = FakeFactusol(standard_rows())

TestTapFactusolFull = get_tap_test_class(
    TapFactusol,
    config={**BASE_CONFIG, "sync_mode": "full", "page_size": 2, "include_all_columns": True},
    parse_env_config=False,
    suite_config=SuiteConfig(max_records_limit=50),
)


class TestTapFactusol(TestTapFactusolFull):  # type: ignore[misc,valid-type]
    """The SDK suite in full mode with every column, over mocked HTTP."""

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def mocked_api(cls) -> Iterator[responses.RequestsMock]:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            _STANDARD.register(rsps)
            yield rsps


del TestTapFactusolFull  # collect the subclass only


TestTapFactusolModifiedBase = get_tap_test_class(
    TapFactusol,
    config={**BASE_CONFIG, "sync_mode": "modified", "start_date": "2026-11-20T00:00:00"},
    parse_env_config=False,
)


class TestTapFactusolModified(TestTapFactusolModifiedBase):  # type: ignore[misc,valid-type]
    """The SDK suite in modified mode with a pinned clock, over mocked HTTP."""

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def mocked_api(cls) -> Iterator[responses.RequestsMock]:
        saved = streams_module.clock
        streams_module.clock = lambda: NOW.timestamp()
        try:
            with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
                FakeFactusol(standard_rows()).register(rsps)
                yield rsps
        finally:
            streams_module.clock = saved


del TestTapFactusolModifiedBase


# ----------------------------------------------------------------------------- helpers

NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=MADRID)
ORDERED_COLUMNS = (
    "CODCLI, FUMCLI, NOFCLI, NOCCLI, NIFCLI, DOMCLI, POBCLI, CPOCLI, PROCLI, PAICLI, TELCLI, "
    "MOVCLI, FAXCLI, EMACLI, WEBCLI, PCOCLI, OBSCLI, ESTCLI, FALCLI"
)
ORDERED_TAIL = "FROM F_CLI WHERE FUMCLI IS NOT NULL ORDER BY FUMCLI DESC, CODCLI DESC"


def run_tap(
    capsys: pytest.CaptureFixture[str],
    fake: FakeFactusol,
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run a sync; return the records and the last STATE value."""
    capsys.readouterr()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.register(rsps)
        tap = TapFactusol(config={**BASE_CONFIG, **config}, state=state, parse_env_config=False)
        tap.sync_all()
    messages = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    records = [m["record"] for m in messages if m["type"] == "RECORD"]
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    return records, states[-1]


@pytest.fixture
def at(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Pin the tap's clock: ``at(datetime)``."""

    def pin(when: dt.datetime) -> None:
        monkeypatch.setattr(streams_module, "clock", lambda: when.timestamp())

    pin(NOW)
    return pin


def bookmark(state: dict[str, Any]) -> str:
    entry = state["bookmarks"]["clients"]
    assert entry["replication_key"] == "modified"
    assert "progress_markers" not in entry
    assert "replication_key_signpost" not in entry
    return str(entry["replication_key_value"])


def codes(records: list[dict[str, Any]]) -> list[int]:
    return [r["code"] for r in records]


# ----------------------------------------------------------------------------- full mode


def test_full_mode_emits_every_client_in_keyset_pages(capsys, at):
    fake = FakeFactusol(standard_rows())
    records, state = run_tap(capsys, fake, {"sync_mode": "full", "page_size": 4})
    assert codes(records) == [1, 2, 3, 4, 5, 6]
    assert fake.queries == [
        "SELECT TOP 4 * FROM F_CLI WHERE CODCLI > 0 ORDER BY CODCLI",
        "SELECT TOP 4 * FROM F_CLI WHERE CODCLI > 4 ORDER BY CODCLI",
    ]
    assert fake.filters == []
    # Full mode does not filter; it still emits the SDK's state (max modified, capped at start).
    assert bookmark(state) == "2026-11-25T00:00:00+01:00"


def test_records_follow_the_contract(capsys, at):
    records, _ = run_tap(capsys, FakeFactusol(standard_rows()), {"sync_mode": "full"})
    by_code = {r["code"]: r for r in records}
    assert by_code[1] == {
        "code": 1,
        "fiscal_name": "Cliente 1",
        "trade_name": "",
        "nif": "",
        "address": "",
        "city": "",
        "postal_code": "",
        "province": "",
        "country_code": "724",
        "phone": "",
        "mobile": "",
        "fax": "",
        "email": "a@example.com",
        "web": "",
        "contact_person": "",
        "notes": "",
        "status": 1,
        "created": "2020-01-15T00:00:00+01:00",
        "modified": "2026-11-25T00:00:00+01:00",
    }
    assert by_code[4]["modified"] is None
    assert by_code[4]["created"] is None  # Access day zero means "empty"
    assert by_code[5]["status"] == 2  # '2' and 2 both arrive (reference §4.1)
    assert by_code[5]["modified"] == "2026-11-24T16:30:00+01:00"
    assert by_code[5]["postal_code"] == "08001"


def test_summer_dates_carry_the_summer_offset(capsys, at):
    fake = FakeFactusol([make_row(1, "2026-07-08T09:15:00")])
    records, _ = run_tap(capsys, fake, {"sync_mode": "full"})
    assert records[0]["modified"] == "2026-07-08T09:15:00+02:00"


def test_include_all_columns_adds_typed_lower_case_columns(capsys, at):
    tap = TapFactusol(config={**BASE_CONFIG, "include_all_columns": True}, parse_env_config=False)
    schema = tap.streams["clients"].schema["properties"]
    assert len(schema) == 205
    assert "tarcli" in schema
    assert "codcli" not in schema  # mapped columns are not repeated
    assert "integer" in schema["tarcli"]["type"]
    assert "number" in schema["fincli"]["type"]
    assert schema["fnacli"]["format"] == "date-time"
    records, _ = run_tap(
        capsys, FakeFactusol(standard_rows()), {"sync_mode": "full", "include_all_columns": True}
    )
    assert records[1]["tarcli"] == 3
    assert records[1]["fincli"] == 1.5
    assert records[1]["fnacli"] is None
    plain = TapFactusol(config=BASE_CONFIG, parse_env_config=False)
    assert len(plain.streams["clients"].schema["properties"]) == 19


# ----------------------------------------------------------------------------- modified mode


def test_first_modified_run_takes_the_lookback_window_and_rereads_the_boundary_day(capsys, at):
    fake = FakeFactusol(standard_rows())
    records, state = run_tap(capsys, fake, {"sync_mode": "modified"})
    # now - 24 h = 2026-11-24 10:00, so the whole of 2026-11-24 is read (FUMCLI may be date-only).
    assert codes(records) == [2, 5, 1]  # ascending (modified, code)
    # One ordered read of the newest rows, no scan, no fetch by key (reference §9).
    assert fake.queries == [f"SELECT TOP 26 {ORDERED_COLUMNS} {ORDERED_TAIL}"]
    assert fake.filters == []
    assert bookmark(state) == "2026-11-25T10:00:00+01:00"  # the run's start, never later
    # Fingerprints of the new boundary day only (2026-11-25): client 1.
    assert set(state["bookmarks"]["clients"]["boundary_fingerprints"]) == {"1"}


def test_modified_mode_orders_by_modified_then_code(capsys, at):
    fake = FakeFactusol(
        [
            make_row(9, "2026-11-25T00:00:00"),
            make_row(3, "2026-11-25T00:00:00"),
            make_row(7, "2026-11-24T23:00:00"),
        ]
    )
    records, _ = run_tap(capsys, fake, {"sync_mode": "modified"})
    assert codes(records) == [7, 3, 9]


def test_modified_mode_starts_from_the_bookmark_in_state(capsys, at):
    fake = FakeFactusol(standard_rows())
    state_in = {
        "bookmarks": {
            "clients": {
                "replication_key": "modified",
                "replication_key_value": "2026-11-23T18:00:00+01:00",
            }
        }
    }
    records, state = run_tap(capsys, fake, {"sync_mode": "modified"}, state_in)
    assert codes(records) == [3, 2, 5, 1]
    assert bookmark(state) == "2026-11-25T10:00:00+01:00"


def test_start_date_seeds_the_first_run(capsys, at):
    records, _ = run_tap(
        capsys,
        FakeFactusol(standard_rows()),
        {"sync_mode": "modified", "start_date": "2026-11-20"},
    )
    assert codes(records) == [6, 3, 2, 5, 1]


def test_a_later_start_date_never_overrides_the_bookmark(capsys, at):
    # A start_date evaluated as "1 day ago" must not hide changes older than the window.
    state_in = {
        "bookmarks": {
            "clients": {
                "replication_key": "modified",
                "replication_key_value": "2026-11-20T09:00:00+01:00",
            }
        }
    }
    records, _ = run_tap(
        capsys,
        FakeFactusol(standard_rows()),
        {"sync_mode": "modified", "start_date": "2026-11-24T10:00:00+01:00"},
        state_in,
    )
    assert codes(records) == [6, 3, 2, 5, 1]


def test_a_three_day_gap_still_emits_every_change(capsys, at):
    rows = standard_rows()
    fake = FakeFactusol(rows)
    first, state = run_tap(capsys, fake, {"sync_mode": "modified"})
    assert codes(first) == [2, 5, 1]
    # Changes after the first run: later the same day, and on the two following days.
    fake.rows[3]["FUMCLI"] = "2026-11-25T00:00:00"
    fake.rows[6]["FUMCLI"] = "2026-11-26T00:00:00"
    fake.rows[7] = make_row(7, "2026-11-27T00:00:00")
    at(NOW + dt.timedelta(days=3))  # the next runs were missed
    second, state = run_tap(capsys, fake, {"sync_mode": "modified"}, state)
    # The boundary day is read again, but 1 is unchanged since it was emitted: not sent again.
    assert codes(second) == [3, 6, 7]
    assert bookmark(state) == "2026-11-28T10:00:00+01:00"


def test_a_first_run_without_changes_still_leaves_a_bookmark(capsys, at):
    fake = FakeFactusol([make_row(1, "2026-10-01T00:00:00")])
    records, state = run_tap(capsys, fake, {"sync_mode": "modified"})
    assert records == []
    assert bookmark(state) == "2026-11-25T10:00:00+01:00"
    fake.rows[1]["FUMCLI"] = "2026-11-26T00:00:00"
    at(NOW + dt.timedelta(days=4))
    records, _ = run_tap(capsys, fake, {"sync_mode": "modified"}, state)
    assert codes(records) == [1]


def test_the_bookmark_never_moves_past_the_run_start(capsys, at):
    fake = FakeFactusol([make_row(1, "2026-12-31T00:00:00"), make_row(2, "2026-11-25T00:00:00")])
    records, state = run_tap(capsys, fake, {"sync_mode": "modified"})
    assert codes(records) == [2, 1]
    assert bookmark(state) == "2026-11-25T10:00:00+01:00"
    _, full_state = run_tap(capsys, fake, {"sync_mode": "full"})
    assert bookmark(full_state) == "2026-11-25T10:00:00+01:00"


def test_modified_mode_logs_progress(capsys, at, caplog, monkeypatch):
    monkeypatch.setattr(streams_module, "PROGRESS_EVERY_PAGES", 2)
    fake = FakeFactusol(standard_rows())
    fake.unordered = True  # the ordered read cannot be trusted: light scan
    with caplog.at_level("INFO"):
        run_tap(capsys, fake, {"sync_mode": "modified", "page_size": 1})
    assert "clients: 2 pages, 2 rows scanned, 2 changed" in caplog.text
    assert "clients: 6 pages, 6 rows scanned, 3 changed" in caplog.text
    assert "sandbox-password" not in caplog.text


def test_the_ordered_read_grows_until_it_passes_the_start_day(capsys, at):
    rows = [make_row(code, "2026-11-25T00:00:00") for code in range(1, 41)]
    fake = FakeFactusol([*rows, make_row(50, "2026-10-01T00:00:00")])
    records, state = run_tap(capsys, fake, {"sync_mode": "modified", "ejercicio": "2026"})
    assert codes(records) == list(range(1, 41))
    tops = [int(re.match(r"SELECT TOP (\d+)", q).group(1)) for q in fake.queries]
    assert tops == [26, 104]  # the first cut was still inside the window
    assert fake.filters == []
    assert len(state["bookmarks"]["clients"]["boundary_fingerprints"]) == 40


def test_a_window_too_large_for_the_ordered_read_is_scanned(capsys, at, monkeypatch, caplog):
    monkeypatch.setattr(detect_module, "MAX_ORDERED_ROWS", 30)
    rows = [make_row(code, "2026-11-25T00:00:00") for code in range(1, 41)]
    fake = FakeFactusol(rows)
    with caplog.at_level("INFO"):
        records, state = run_tap(capsys, fake, {"sync_mode": "modified"})
    assert codes(records) == list(range(1, 41))
    assert fake.filters == ["CODCLI IN (" + ", ".join(str(c) for c in range(1, 41)) + ")"]
    detection = state["bookmarks"]["clients"]["change_detection"]
    assert detection["method"] == "scan"
    assert detection["last_fallback_reason"] == "more than 30 rows changed since 2026-11-24"


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        (
            [make_row(1, "2026-11-25T00:00:00"), make_row(2, "2026-11-25T00:00:00")],
            "CODCLI out of order within one FUMCLI",
        ),
        ([make_row(1, "ayer"), make_row(2, "2026-11-25T00:00:00")], "unreadable"),
    ],
)
def test_an_answer_that_proves_no_order_falls_back(capsys, at, monkeypatch, rows, reason):
    fake = FakeFactusol(rows)
    # answer in ascending CODCLI order whatever was asked: an engine ignoring ORDER BY
    fake.unordered = True
    _, state = run_tap(capsys, fake, {"sync_mode": "modified"})
    detection = state["bookmarks"]["clients"]["change_detection"]
    assert detection["method"] == "scan"
    assert reason in detection["last_fallback_reason"]


def test_null_fumcli_rows_in_the_answer_are_skipped(capsys, at):
    fake = FakeFactusol(standard_rows())
    fake.nulls_first = True  # the IS NOT NULL filter ignored, NULL sorting high
    records, state = run_tap(capsys, fake, {"sync_mode": "modified"})
    assert codes(records) == [2, 5, 1]
    assert state["bookmarks"]["clients"]["change_detection"] == {"method": "ordered"}


def test_fingerprints_survive_a_fallback(capsys, at):
    fake = FakeFactusol(standard_rows())
    _, state = run_tap(capsys, fake, {"sync_mode": "modified"})
    fake.unordered = True  # light scan this time: same records, same fingerprints
    at(NOW + dt.timedelta(minutes=5))
    records, state = run_tap(capsys, fake, {"sync_mode": "modified"}, state)
    assert records == []
    assert state["bookmarks"]["clients"]["change_detection"]["fallbacks"] == 1


def test_a_relative_start_date_is_refused(capsys, at):
    with pytest.raises(ValueError, match="absolute ISO 8601"):
        run_tap(
            capsys,
            FakeFactusol(standard_rows()),
            {"sync_mode": "modified", "start_date": "1 day ago"},
        )


# ----------------------------------------------------------------------------- settings


def test_settings_match_meltano_yml():
    meltano = yaml.safe_load((Path(__file__).parents[2] / "meltano.yml").read_text())
    plugin = next(p for p in meltano["plugins"]["extractors"] if p["name"] == "tap-factusol")
    properties = TapFactusol.config_jsonschema["properties"]
    names = [s["name"] for s in plugin["settings"]]
    # The SDK appends its own capability settings (stream_maps, …) after ours.
    assert list(properties)[: len(names)] == names
    for setting in plugin["settings"]:
        prop = properties[setting["name"]]
        assert prop["description"] == setting["description"], setting["name"]
        if "value" in setting:
            assert prop.get("default") == setting["value"], setting["name"]
    assert properties["password"].get("secret") is True
