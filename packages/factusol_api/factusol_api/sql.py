"""SQL building blocks for ``filtro`` and ``consulta``.

FactuSOL's read routes take raw SQL (reference §5.1, §5.2): the server pastes ``filtro`` after
``WHERE``. Every value that reaches SQL therefore goes through one of these helpers: text literals
are quoted with ``'`` doubled, integers are type-checked, and identifiers are checked against a
whitelist or a strict pattern. Nothing from client data is ever pasted into SQL unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from factusol_api.columns import ColumnSpec

_INT_RE = re.compile(r"[+-]?[0-9]{1,19}")
_IDENTIFIER_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
# C0 controls (NUL included) and DEL: never legitimate inside a filter literal, and NUL can
# truncate the statement in some drivers.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def sql_literal(value: str) -> str:
    """Quote ``value`` as an SQL text literal: ``O'Brien`` -> ``'O''Brien'``.

    Raises:
        TypeError: ``value`` is not a string.
        ValueError: ``value`` contains NUL or another control character.
    """
    if not isinstance(value, str):
        raise TypeError(f"sql_literal() takes a str, not {type(value).__name__}")
    if _CONTROL_RE.search(value):
        raise ValueError("SQL text literal contains a control character (NUL, newline, …)")
    return "'" + value.replace("'", "''") + "'"


def sql_int(value: object) -> str:
    """Return ``value`` as a decimal integer for SQL, after checking it really is one.

    Accepts ``int`` (not ``bool``), an integral ``float``, or a string of digits with an optional
    sign and surrounding spaces. Anything else (``"1 OR 1=1"``, ``"12a"``, ``1.5``) is refused.

    Raises:
        ValueError: ``value`` is not an integer.
    """
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a bool")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
        return str(int(value.strip()))
    raise ValueError(f"expected an integer, got a {type(value).__name__} that is not one")


def sql_identifier(name: str) -> str:
    """Check a table or column name against a strict pattern (letters, digits, ``_``).

    Raises:
        ValueError: ``name`` is not a plain identifier.
    """
    if not isinstance(name, str) or not _IDENTIFIER_RE.fullmatch(name):
        raise ValueError(f"not a valid SQL identifier: {name!r}")
    return name


def sql_columns(names: Iterable[str], columns: Mapping[str, ColumnSpec]) -> list[str]:
    """Return the canonical names of ``names``, which must all be columns of ``columns``.

    Matching is case-insensitive (SQL identifiers are); the canonical upper-case name is returned.

    Raises:
        ValueError: naming every unknown column.
    """
    result: list[str] = []
    unknown: list[str] = []
    for name in names:
        canonical = name.upper() if isinstance(name, str) else ""
        if canonical in columns:
            result.append(canonical)
        else:
            unknown.append(str(name))
    if unknown:
        raise ValueError(f"unknown column(s): {', '.join(sorted(unknown))}")
    return result
