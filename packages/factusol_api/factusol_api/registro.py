"""Write preparation: a record checked and fitted to F_CLI's columns before it is sent.

`build_registro` turns a record into the ``registro`` list of ``EscribirRegistro`` and
``ActualizarRegistro``: for a table with a known column list (F_CLI) every column is checked,
text is cut to the column size and dates are sent as ``YYYY-MM-DD``; for any other table only
the column names are checked.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from factusol_api.columns import F_CLI_PRIMARY_KEY, TABLE_COLUMNS, ColumnSpec
from factusol_api.sql import sql_columns, sql_identifier, sql_int

__all__ = ["build_registro", "prepare_row"]

# The client's logger, as before this module was split out of it (log filters rely on it).
logger = logging.getLogger("factusol_api.client")

_INT_RANGES = {2: (-(2**15), 2**15 - 1), 4: (-(2**31), 2**31 - 1)}
# Write records must not carry a NUL: it cannot be stored in an Access/SQL Server text column.
_NUL = "\x00"


def build_registro(
    table: str, record: Mapping[str, Any], *, operation: str
) -> list[dict[str, Any]]:
    """The ``registro`` of one insert or update of ``record`` into ``table``."""
    sql_identifier(table)
    columns = TABLE_COLUMNS.get(table.upper())
    if columns is None:
        # A table we have no column list for: only check names are plain identifiers.
        registro = []
        for name, value in record.items():
            sql_identifier(name)
            registro.append({"columna": name, "dato": _generic_value(value)})
        if not registro:
            raise ValueError(f"{operation} into {table}: empty record")
        return registro
    return prepare_row(table.upper(), columns, record, operation=operation)


def prepare_row(
    table: str,
    columns: Mapping[str, ColumnSpec],
    record: Mapping[str, Any],
    *,
    operation: str,
) -> list[dict[str, Any]]:
    """Build a checked ``registro`` for a known table.

    Only existing columns are accepted (one unknown column fails the whole write, reference §5.4);
    text is cut to the column size with a warning naming column and key, never the value; dates
    are sent as ``YYYY-MM-DD`` (the one format with tested inserts, §5.4); ``None`` leaves a
    column out of the write.

    Raises:
        ValueError: unknown columns, a missing or non-integer key, or a value of the wrong type.
    """
    canonical = sql_columns(record.keys(), columns)
    values = dict(zip(canonical, record.values(), strict=True))
    if len(values) != len(canonical):
        raise ValueError(f"{operation} into {table}: a column is given twice")
    key_value = values.get(F_CLI_PRIMARY_KEY)
    if key_value is None:
        raise ValueError(f"{operation} into {table}: {F_CLI_PRIMARY_KEY} is required")
    code = int(sql_int(key_value))
    if code <= 0:
        raise ValueError(f"{operation} into {table}: {F_CLI_PRIMARY_KEY} must be positive")
    registro: list[dict[str, Any]] = []
    for name, value in values.items():
        if value is None:
            continue
        spec = columns[name]
        registro.append({"columna": name, "dato": _fit(spec, value, table=table, code=code)})
    if operation == "update" and len(registro) < 2:
        raise ValueError(f"update of {table} {code}: nothing to update besides the key")
    return registro


def _fit(spec: ColumnSpec, value: Any, *, table: str, code: int) -> Any:
    where = f"{table}.{spec.name} (CODCLI {code})"
    if spec.kind == "int":
        try:
            number = int(sql_int(int(value) if isinstance(value, bool) else value))
        except ValueError:
            raise ValueError(f"{where}: expected an integer") from None
        low, high = _INT_RANGES.get(spec.size or 4, _INT_RANGES[4])
        if not low <= number <= high:
            raise ValueError(f"{where}: integer out of range for the column")
        return number
    if spec.kind == "money":
        if isinstance(value, bool):
            raise ValueError(f"{where}: expected a number")
        try:
            number_f = float(Decimal(value) if isinstance(value, str) else value)
        except (ValueError, TypeError, ArithmeticError):
            raise ValueError(f"{where}: expected a number") from None
        if not math.isfinite(number_f):
            raise ValueError(f"{where}: expected a finite number")
        return number_f
    if spec.kind == "datetime":
        return _date_string(value, where)
    text = value if isinstance(value, str) else str(value)
    if _NUL in text:
        raise ValueError(f"{where}: text contains a NUL character")
    if spec.size is not None and len(text) > spec.size:
        logger.warning(
            "%s.%s truncated from %d to %d characters for CODCLI %s",
            table,
            spec.name,
            len(text),
            spec.size,
            code,
        )
        text = text[: spec.size]
    return text


def _date_string(value: Any, where: str) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return dt.date.fromisoformat(text).isoformat()
            return dt.datetime.fromisoformat(text.replace(" ", "T", 1)).date().isoformat()
        except ValueError:
            pass
    raise ValueError(f"{where}: expected a date (YYYY-MM-DD)")


def _generic_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value
