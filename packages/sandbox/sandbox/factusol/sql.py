"""Run the raw SQL that clients send (reference §5.1, §5.2) against SQLite.

The real API pastes `filtro` and `consulta` into its own SQL (§2: a SQL Server-like dialect:
`!=`, bare `JOIN`, `UPPER()`, `TOP n`, no `LIMIT`). The emulator does the same, so it is exactly
as injectable as the real service within one company database; an SQLite authorizer keeps an
injection from doing anything the real API could not (no ATTACH, no PRAGMA, no writes from a read
call, no second statement).
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Callable, Iterator

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOP = re.compile(r"^\s*SELECT\s+(DISTINCT\s+|ALL\s+)?TOP\s*(\(\s*(\d+)\s*\)|(\d+))\s+", re.I)
_SELECT = re.compile(r"^\s*SELECT\b", re.I)
_LIMIT = re.compile(r"\bLIMIT\b", re.I)
_ISNULL = re.compile(r"\bISNULL(?=\s*\()", re.I)
_ORDER_BY = re.compile(r"\bORDER\s+BY\b", re.I)
_DIRECTION = re.compile(r"\s+(ASC|DESC)\s*$", re.I)


class SqlError(Exception):
    """SQL the emulator refuses or SQLite cannot run (answered like the real API's errors)."""


class NotSelect(SqlError):
    """LanzarConsulta with something other than a SELECT (§5.2)."""


def _code_spans(sql: str) -> Iterator[tuple[int, int]]:
    """Yield (start, end) of the parts of `sql` outside string literals, quoted names, comments."""
    i, start, n = 0, 0, len(sql)
    while i < n:
        ch = sql[i]
        closer = {"'": "'", '"': '"', "[": "]", "`": "`"}.get(ch)
        if closer or sql.startswith("--", i) or sql.startswith("/*", i):
            if i > start:
                yield start, i
            if closer:
                j = i + 1
                while j < n:
                    if sql[j] == closer:
                        if closer in "'\"" and sql.startswith(closer * 2, j):
                            j += 2
                            continue
                        break
                    j += 1
                i = j + 1
            elif sql.startswith("--", i):
                end = sql.find("\n", i)
                i = n if end < 0 else end + 1
            else:
                end = sql.find("*/", i + 2)
                i = n if end < 0 else end + 2
            start = i
        else:
            i += 1
    if start < n:
        yield start, n


def code_only(sql: str) -> str:
    """`sql` with literals, quoted names and comments blanked out (same length)."""
    chars = [" "] * len(sql)
    for a, b in _code_spans(sql):
        chars[a:b] = sql[a:b]
    return "".join(chars)


def _reject_limit(sql: str) -> None:
    # §5.1/§8.4 #5: LIMIT does not exist in the real dialect; be strict so clients notice.
    if _LIMIT.search(code_only(sql)):
        raise SqlError("LIMIT is not supported")


def _rewrite(sql: str) -> str:
    """T-SQL's ISNULL(a, b) is a keyword in SQLite: rename it to IFNULL (same length)."""
    chars = list(sql)
    for match in _ISNULL.finditer(code_only(sql)):
        chars[match.start() : match.start() + 6] = "IFNULL"
    return "".join(chars)


def null_order(sql: str, null_sort: str = "low") -> str:
    """Apply the switch `null_sort` to the last ORDER BY of `sql` (§9: NULL placement).

    `low` (Access and SQL Server, and SQLite's own rule): NULL sorts below every value, first
    ascending and last descending. `high`: NULL sorts above every value, so `ORDER BY x DESC`
    starts with the NULLs. Each term gets an explicit NULLS FIRST/LAST (SQLite >= 3.30).
    """
    if null_sort != "high":
        return sql
    code = code_only(sql)
    matches = list(_ORDER_BY.finditer(code))
    if not matches:
        return sql
    start = matches[-1].end()
    terms, depth, last = [], 0, start
    for i in range(start, len(code)):
        ch = code[i]
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append((last, i))
            last = i + 1
    terms.append((last, len(sql.rstrip().removesuffix(";"))))
    out, cursor = [], 0
    for a, b in terms:
        term = sql[a:b].rstrip()
        direction = _DIRECTION.search(code[a : a + len(term)])
        descending = direction is not None and direction.group(1).upper() == "DESC"
        out.append(sql[cursor:a] + term + (" NULLS FIRST" if descending else " NULLS LAST"))
        cursor = b
    return "".join(out) + sql[cursor:]


def where_query(tabla: str, filtro: str, null_sort: str = "low") -> str:
    """CargaTabla / LeerRegistro: the server runs `SELECT * FROM {tabla} WHERE {filtro}` (§5.1)."""
    _reject_limit(filtro)
    filtro = null_order(_rewrite(filtro), null_sort)
    return f"SELECT * FROM {tabla} WHERE {filtro}"  # noqa: S608 - raw on purpose (§5.1)


def delete_query(tabla: str, filtro: str) -> str:
    """BorrarRegistros (§5.6)."""
    _reject_limit(filtro)
    filtro = _rewrite(filtro)
    return f"DELETE FROM {tabla} WHERE {filtro}"  # noqa: S608 - raw on purpose (§5.6)


def translate_select(consulta: str, null_sort: str = "low") -> str:
    """LanzarConsulta: check it is a SELECT and turn a leading `TOP n` into `LIMIT n` (§5.2)."""
    sql = null_order(_rewrite(consulta.strip()), null_sort)
    code = code_only(sql)
    if not _SELECT.match(code):
        raise NotSelect("only SELECT is accepted")
    _reject_limit(sql)
    top = _TOP.match(code)
    if top:
        count = top.group(3) or top.group(4)
        head = "SELECT " + (top.group(1) or "")
        sql = head + sql[top.end() :]
        body = sql.rstrip().removesuffix(";")
        sql = f"{body} LIMIT {count}"
    return sql


def result_names(description: list[str]) -> list[str]:
    """Name unaliased expressions Expr1000, Expr1001, … as Access does (§5.2, I).

    SQLite names such a column after its text (`MAX(CODCLI)`); a plain identifier (a column or an
    alias) is kept as it is.
    """
    names, counter = [], 1000
    for name in description:
        if _IDENT.match(name):
            names.append(name)
        else:
            names.append(f"Expr{counter}")
            counter += 1
    return names


def authorizer(mode: str, table: str | None = None) -> Callable[..., int]:
    """SQLite authorizer: `read` allows a single SELECT; `delete` also DELETE FROM `table`."""
    allowed = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION}
    if mode == "delete":
        allowed.add(sqlite3.SQLITE_DELETE)
    # sqlite3.SQLITE_RECURSIVE exists since Python 3.11 with SQLite >= 3.8.3.
    allowed.add(getattr(sqlite3, "SQLITE_RECURSIVE", 33))

    def check(action: int, arg1: str | None, arg2: str | None, *_: object) -> int:
        if action not in allowed:
            return sqlite3.SQLITE_DENY
        if action in (sqlite3.SQLITE_READ, sqlite3.SQLITE_DELETE) and (
            (arg1 or "").lower().startswith("sqlite_")
        ):
            return sqlite3.SQLITE_DENY  # no catalogue tables in the real service
        if action == sqlite3.SQLITE_DELETE and (arg1 or "").upper() != (table or "").upper():
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    return check


_DENIED_FUNCTIONS = {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"}


def register_functions(conn: sqlite3.Connection) -> None:
    """Make SQLite behave closer to the real engine (case-insensitive collation, §12 INFERRED).

    SQLite's own UPPER, LOWER, LIKE and NOCASE only fold ASCII; the real engine folds "É" too.
    """
    conn.create_collation("NOCASE", _compare_nocase)
    conn.create_function("UPPER", 1, _unary(str.upper), deterministic=True)
    conn.create_function("LOWER", 1, _unary(str.lower), deterministic=True)
    conn.create_function("UCASE", 1, _unary(str.upper), deterministic=True)
    conn.create_function("LCASE", 1, _unary(str.lower), deterministic=True)
    conn.create_function("LEN", 1, _len, deterministic=True)
    conn.create_function("LIKE", 2, _like, deterministic=True)
    conn.create_function("LIKE", 3, _like, deterministic=True)


SqlValue = str | int | float | bytes | None


def _unary(fn: Callable[[str], str]) -> Callable[[SqlValue], SqlValue]:
    def apply(value: SqlValue) -> SqlValue:
        return fn(value) if isinstance(value, str) else value

    return apply


def _len(value: object) -> int | None:
    return None if value is None else len(str(value).rstrip())  # LEN ignores trailing blanks


def _compare_nocase(a: str, b: str) -> int:
    fa, fb = a.casefold(), b.casefold()
    return (fa > fb) - (fa < fb)


@functools.lru_cache(maxsize=256)
def _like_regex(pattern: str, escape: str | None) -> re.Pattern[str]:
    """T-SQL LIKE: `%`, `_` and `[a-z]` / `[^a-z]` classes, case-insensitive."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if escape and ch == escape and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        elif ch == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            body = "".join("\\" + c if c in "\\]" else c for c in body)
            out.append(f"[{'^' if negate else ''}{body}]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.I | re.S)


def _like(pattern: object, value: object, escape: object = None) -> int | None:
    if pattern is None or value is None:
        return None
    esc = escape if isinstance(escape, str) else None
    return 1 if _like_regex(str(pattern), esc).fullmatch(str(value)) else 0
