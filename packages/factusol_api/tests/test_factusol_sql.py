"""SQL helpers: literals, integers, identifiers (including property tests)."""

from __future__ import annotations

import re

import pytest
from factusol_api import (
    F_CLI_COLUMNS,
    rows_to_dicts,
    sql_columns,
    sql_identifier,
    sql_int,
    sql_literal,
)
from factusol_api.errors import FactusolError
from hypothesis import given
from hypothesis import strategies as st

_QUOTED = re.compile(r"'(?:[^']|'')*'")
_SAFE_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")))


def test_sql_literal_doubles_quotes():
    assert sql_literal("O'Brien") == "'O''Brien'"
    assert sql_literal("' OR 1=1 --") == "''' OR 1=1 --'"
    assert sql_literal("'; DELETE FROM F_CLI; --") == "'''; DELETE FROM F_CLI; --'"
    assert sql_literal("") == "''"


@pytest.mark.parametrize("bad", ["a\x00b", "a\nb", "\x1b[0m", "x\x7f"])
def test_sql_literal_rejects_control_characters(bad):
    with pytest.raises(ValueError, match="control"):
        sql_literal(bad)


def test_sql_literal_rejects_non_strings():
    with pytest.raises(TypeError):
        sql_literal(5)  # type: ignore[arg-type]


@given(_SAFE_TEXT)
def test_sql_literal_is_one_quoted_token_that_round_trips(text):
    literal = sql_literal(text)
    assert _QUOTED.fullmatch(literal)
    assert literal[1:-1].replace("''", "'") == text


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_sql_int_round_trips_integers(number):
    assert sql_int(number) == str(number)
    assert sql_int(str(number)) == str(number)


@pytest.mark.parametrize("bad", ["1 OR 1=1", "1;", "", " ", "1e3", "0x1F", 2.5, True, None, [1]])
def test_sql_int_rejects_anything_else(bad):
    with pytest.raises(ValueError, match="integer"):
        sql_int(bad)


@given(_SAFE_TEXT.filter(lambda s: not re.fullmatch(r"\s*[+-]?[0-9]{1,19}\s*", s)))
def test_sql_int_never_accepts_non_numeric_text(text):
    with pytest.raises(ValueError, match="integer"):
        sql_int(text)


def test_identifiers_and_columns():
    assert sql_identifier("F_CLI") == "F_CLI"
    for bad in ("F_CLI;", "1ABC", "F CLI", "", "F_CLI--"):
        with pytest.raises(ValueError, match="identifier"):
            sql_identifier(bad)
    assert sql_columns(["codcli", "FUMCLI"], F_CLI_COLUMNS) == ["CODCLI", "FUMCLI"]
    with pytest.raises(ValueError, match="NOMCLI"):
        sql_columns(["NOMCLI"], F_CLI_COLUMNS)


def test_rows_to_dicts_shapes():
    assert rows_to_dicts(None) == []
    assert rows_to_dicts("") == []
    assert rows_to_dicts([[{"columna": "A", "dato": 1}, {"columna": "B"}]]) == [{"A": 1, "B": None}]
    assert rows_to_dicts([{"columna": "A", "dato": 1}]) == [{"A": 1}]  # single row (LeerRegistro)
    with pytest.raises(FactusolError):
        rows_to_dicts({"x": 1})
