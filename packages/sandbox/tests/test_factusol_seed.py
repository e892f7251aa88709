"""Seeding of the FactuSOL emulator: deterministic, realistic, fast, idempotent."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sandbox import cli as sandbox_cli
from sandbox.factusol import cli as factusol_cli
from sandbox.factusol.schema import F_CLI, cast_value
from sandbox.factusol.seed import cif_control, generate, nif_letter, seed_store
from sandbox.factusol.storage import Store

TODAY = dt.datetime(2026, 3, 15, 10, 30)
NAMES = [c.name for c in F_CLI]


def rows_as_dicts(rows: list[list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(NAMES, row, strict=True)) for row in rows]


@pytest.fixture(scope="module")
def sample() -> list[dict[str, Any]]:
    return rows_as_dicts(generate(2000, 42, TODAY))


def _valid_spanish_id(nif: str) -> bool:
    if re.fullmatch(r"\d{8}[A-Z]", nif):
        return nif_letter(int(nif[:8])) == nif[8]
    if re.fullmatch(r"[XYZ]\d{7}[A-Z]", nif):
        return nif_letter(int(str("XYZ".index(nif[0])) + nif[1:8])) == nif[8]
    if re.fullmatch(r"[A-W]\d{7}[0-9A-J]", nif):
        return cif_control(nif[0], nif[1:8]) == nif[8]
    return False


def test_control_characters() -> None:
    assert nif_letter(12345678) == "Z"
    assert nif_letter(int("0" + "1234567")) == "L"  # X1234567L
    assert cif_control("B", "1234567") == "4"  # B12345674
    assert cif_control("Q", "2826000") == "H"  # Q2826000H


def test_deterministic() -> None:
    assert generate(300, 42, TODAY) == generate(300, 42, TODAY)
    assert generate(300, 42, TODAY) != generate(300, 43, TODAY)


def test_every_value_fits_its_column(sample: list[dict[str, Any]]) -> None:
    for row in sample[:500]:
        for column in F_CLI:
            value = row[column.name]
            assert cast_value(column, value, non_cp1252="error") == value, column.name


def test_realistic_names(sample: list[dict[str, Any]]) -> None:
    fiscal = [r["NOFCLI"] for r in sample]
    assert any(re.search(r", S\.L\.$", n) for n in fiscal)
    assert any(re.search(r"[áéíóúñÁÉÍÓÚÑ]", n) for n in fiscal)
    companies = [n for n in fiscal if "," in n]
    assert 0.3 < len(companies) / len(fiscal) < 0.8
    trade = [r["NOCCLI"] for r in sample]
    assert 0.1 < trade.count("") / len(trade) < 0.8
    assert len(set(r["CODCLI"] for r in sample)) == len(sample)


def test_nifs_mostly_valid_some_invalid(sample: list[dict[str, Any]]) -> None:
    spanish = [r["NIFCLI"] for r in sample if r["PAICLI"] == "724"]
    valid = sum(_valid_spanish_id(n) for n in spanish)
    assert 0.7 < valid / len(spanish) < 0.95
    assert any(re.fullmatch(r"[XYZ]\d{7}[A-Z]", n) and _valid_spanish_id(n) for n in spanish)
    assert any(re.fullmatch(r"[AB]\d{8}", n) and _valid_spanish_id(n) for n in spanish)
    assert "" in spanish


def test_phones_emails_addresses(sample: list[dict[str, Any]]) -> None:
    phones = [r["TELCLI"] for r in sample]
    patterns = [
        r"\d{2} \d{3} \d{2} \d{2}",  # 91 234 56 78
        r"\+34 \d{9}",
        r"\d{3}-\d{2}-\d{2}-\d{2}",
        r"0034 \d{9}",
        r"\+33 .*",
        r"\d{9}",
    ]
    for pattern in patterns:
        assert any(re.fullmatch(pattern, p) for p in phones), pattern
    assert any(len(re.sub(r"\D", "", p)) < 9 for p in phones)  # a few invalid ones
    emails = [r["EMACLI"] for r in sample]
    assert any(e and e == e.upper() and "@" in e for e in emails)
    assert any(e != e.strip() for e in emails)
    assert any(e and not re.fullmatch(r"\s*[^@\s]+@[^@\s]+\.[a-zA-Z]{2,}\s*", e) for e in emails)
    postal = [r["CPOCLI"] for r in sample if r["PAICLI"] == "724"]
    assert any(len(p) == 4 for p in postal)
    assert all(len(p) in (4, 5) for p in postal)
    assert all(r["DOMCLI"] and r["POBCLI"] and r["PROCLI"] for r in sample)


def test_countries_and_status(sample: list[dict[str, Any]]) -> None:
    countries = Counter(r["PAICLI"] for r in sample)
    assert countries["724"] / len(sample) > 0.85
    assert countries["250"]
    assert countries["620"]
    assert set(Counter(r["ESTCLI"] for r in sample)) == {0, 1, 2, 3, 4}


def test_dates(sample: list[dict[str, Any]]) -> None:
    day = TODAY.replace(hour=0, minute=0)
    for row in sample:
        modified = dt.datetime.fromisoformat(row["FUMCLI"])
        created = dt.datetime.fromisoformat(row["FALCLI"])
        assert dt.timedelta(days=2) <= day - modified <= dt.timedelta(days=400)
        assert TODAY - modified > dt.timedelta(hours=24)
        assert created <= modified
        assert row["FUMCLI"].endswith("T00:00:00")  # date-only by default
    with_time = rows_as_dicts(generate(50, 1, TODAY, fumcli_has_time=True))
    assert any(not r["FUMCLI"].endswith("T00:00:00") for r in with_time)
    assert all(TODAY - dt.datetime.fromisoformat(r["FUMCLI"]) > dt.timedelta(1) for r in with_time)


def test_seed_10k_is_fast(tmp_path: Path) -> None:
    started = time.monotonic()
    assert seed_store(Store(tmp_path), "FS001", "2026", 10_000, 42, TODAY) == 10_000
    assert time.monotonic() - started < 15
    with sqlite3.connect(tmp_path / "FS001_2026.sqlite3") as conn:
        assert conn.execute("SELECT COUNT(*) FROM F_CLI").fetchone()[0] == 10_000


def _dump(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM F_CLI ORDER BY CODCLI").fetchall()


def test_cli_seed_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["seed", "--data-dir", str(tmp_path), "--clients", "40", "--seed", "42"]
    assert factusol_cli.main([*args, "--ejercicio", "2025"]) == 0
    db = tmp_path / "FS001_2025.sqlite3"
    first = _dump(db)
    assert len(first) == 40
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO F_CLI (CODCLI, NOFCLI) VALUES (99999, 'extra')")
    # through the top-level dispatcher too
    assert sandbox_cli.main(["factusol", *args, "--ejercicio", "2025"]) == 0
    assert _dump(db) == first
    assert "seeded 40 clients" in capsys.readouterr().out
    assert factusol_cli.main([*args, "--base-datos", "3FS003"]) == 0
    assert (tmp_path / f"3FS003_{dt.date.today().year}.sqlite3").exists()
    assert factusol_cli.main([*args, "--ejercicio", "26"]) == 2
