"""The right to be forgotten, in every local store of the sync.

``forget_person`` finds the clients a query names (a CODCLI, a NIF, an e-mail) in the ledger,
gathers what identifies the person there (NIF, e-mails, phones, names), and removes it:

- the ledger: the pair's agreed values and every history row; a ``forgotten`` mark (keys only,
  no personal data) stays so the sync does not pull the person back into Clientify;
- every run file under the output directory: lines (JSON lines, logs, text) that hold any of
  those values go; JSON documents lose the entries that hold them; the report page is rendered
  again from what is left;
- SQLite files under the output directory (the contact cache): rows holding them are deleted,
  then the file is vacuumed so no freed page keeps the text.

It never deletes anything in FactuSOL or Clientify: it says what the user must do there.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sync_ledger import CustomerHistory, SyncLedger

from .retention import rewrite_private

__all__ = ["ForgetResult", "forget_person", "identifiers_of", "squash"]

_SQLITE_SUFFIXES = (".sqlite", ".db")
_SQLITE_SIDECARS = ("-wal", "-shm", "-journal")
_MIN_KEY = 4  # shorter squashed values (a bare "Ana") would match unrelated text


def squash(text: str) -> str:
    """Lower case, letters and digits only: '+34 600-11 22 33' and '34600112233' meet."""
    return re.sub(r"[\W_]+", "", text.casefold())


@dataclass
class ForgetResult:
    codes: set[int] = field(default_factory=set)
    contact_ids: set[str] = field(default_factory=set)
    history_rows: int = 0
    files_changed: list[Path] = field(default_factory=list)
    lines_removed: int = 0
    rows_removed: int = 0

    def instructions(self) -> list[str]:
        """What the user must still do in the two systems (the sync deletes nothing there)."""
        lines = []
        for code in sorted(self.codes):
            lines.append(
                f"FactuSOL: the client {code} is untouched; delete or anonymise it in FactuSOL "
                "if the person's request covers the invoicing records (mind the legal retention "
                "of invoices)."
            )
        for contact in sorted(self.contact_ids):
            lines.append(
                f"Clientify: the contact {contact} is untouched; delete it in Clientify "
                "(Contacts → the contact → Delete)."
            )
        return lines


def identifiers_of(values: Iterable[object]) -> set[str]:
    """The squashed forms worth searching for (NIF, e-mail, phone, name), long enough to be safe."""
    found: set[str] = set()
    for value in values:
        if not isinstance(value, str) or not value.strip():
            continue
        key = squash(value)
        if len(key) >= _MIN_KEY:
            found.add(key)
        digits = re.sub(r"\D", "", value)
        if len(digits) >= 9 and digits.startswith("34") and len(digits) == 11:
            found.add(digits[2:])  # a Spanish phone also written without its prefix
    return found


def forget_person(
    query: str,
    *,
    ledger: SyncLedger,
    output_dir: str | Path | None = None,
    index_cache: str | None = None,
) -> ForgetResult:
    """Remove the person ``query`` names from the ledger and every file under ``output_dir``,
    and from the contact cache: its SQLite file (under ``output_dir``, or ``index_cache``) or
    its tables in a database (``index_cache`` a URL, or the ledger's own database)."""
    history = CustomerHistory(ledger)
    result = ForgetResult()
    text = query.strip()
    if not text:
        raise ValueError("say whom to forget: a CODCLI, a NIF or an e-mail")
    codes = {int(text)} if text.isdigit() else set()
    for candidate in {text, text.upper(), text.lower()}:
        codes |= history.codes_with_value(candidate)
    entries = ledger.get_many(codes)
    result.codes = set(codes)
    values: list[object] = [text]
    for entry in entries.values():
        values.extend(entry.base.values())
        result.contact_ids.add(entry.contact_id)
    for step in history.events(codes=codes):
        values.extend([step.before, step.after])
        if step.contact_id:
            result.contact_ids.add(step.contact_id)
    keys = identifiers_of(values)
    if text.isdigit():
        keys.discard(text)  # the code itself is a key, not personal data; it stays in marks

    result.history_rows = history.erase(codes=codes, contact_ids=result.contact_ids)
    for code in codes:
        ledger.forget(code)
        history.mark(
            code, "forgotten", contact_id=entries[code].contact_id if code in entries else None
        )
    if keys:
        _scrub_cache_tables(ledger.engine, keys, result)
        if index_cache and "://" in index_cache:
            engine = sa.create_engine(_sqlalchemy_url(index_cache))
            try:
                _scrub_cache_tables(engine, keys, result)
            finally:
                engine.dispose()
        elif (
            index_cache
            and Path(index_cache).is_file()
            and _scrub_sqlite(Path(index_cache), keys, result)
        ):
            result.files_changed.append(Path(index_cache))
    if output_dir is not None and keys:
        _scrub_directory(Path(output_dir), keys, result, ledger)
    return result


_CACHE_CONTACTS, _CACHE_KEYS = "contact_index_contact", "contact_index_key"


def _sqlalchemy_url(value: str) -> str:
    if value.startswith("postgres://"):
        return "postgresql+psycopg://" + value.split("://", 1)[1]
    if value.startswith("postgresql://"):
        return "postgresql+psycopg://" + value.split("://", 1)[1]
    return value


def _scrub_cache_tables(engine: sa.engine.Engine, keys: set[str], result: ForgetResult) -> None:
    """The contact cache's rows holding the person, where it lives in a database (a SQLite
    file is scrubbed and vacuumed whole by ``_scrub_sqlite``)."""
    if engine.dialect.name == "sqlite":
        return
    names = set(sa.inspect(engine).get_table_names())
    if _CACHE_CONTACTS not in names:
        return
    meta = sa.MetaData()
    contacts = sa.Table(_CACHE_CONTACTS, meta, autoload_with=engine)
    with engine.begin() as conn:
        held = [
            (row.scope, row.pk)
            for row in conn.execute(sa.select(contacts.c.scope, contacts.c.pk, contacts.c.body))
            if _holds(str(row.body), keys)
        ]
        for scope, pk in held:
            conn.execute(sa.delete(contacts).where(contacts.c.scope == scope, contacts.c.pk == pk))
        if _CACHE_KEYS in names:
            index = sa.Table(_CACHE_KEYS, meta, autoload_with=engine)
            for scope, pk in held:
                conn.execute(sa.delete(index).where(index.c.scope == scope, index.c.pk == pk))
            gone = conn.execute(sa.select(index.c.scope, index.c.pk, index.c.key)).fetchall()
            for row in gone:
                if _holds(str(row.key), keys):
                    conn.execute(
                        sa.delete(index).where(index.c.scope == row.scope, index.c.pk == row.pk)
                    )
    result.rows_removed += len(held)


def _holds(text: str, keys: set[str]) -> bool:
    flat = squash(text)
    return any(key in flat for key in keys)


def _scrub_directory(root: Path, keys: set[str], result: ForgetResult, ledger: SyncLedger) -> None:
    if not root.is_dir():
        return
    ledger_file = Path(ledger.url.database or "").resolve() if ledger.url.database else None
    page = root / "report.html"
    for code in result.codes:  # the person's own history page goes whole
        own = root / "customers" / f"{code}.html"
        if own.exists():
            own.unlink()
            result.files_changed.append(own)
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        if path.name.endswith(_SQLITE_SIDECARS) or _meltanos(path, root):
            continue
        if path.suffix in _SQLITE_SUFFIXES:
            if ledger_file is not None and path.resolve() == ledger_file:
                ledger.engine.dispose()  # no pooled connection may hold the old pages
                _vacuum(path)  # rows already gone through the ledger's API
            elif _scrub_sqlite(path, keys, result):
                result.files_changed.append(path)
            continue
        if path == page:
            continue  # rendered again below from the scrubbed files
        if _scrub_text(path, keys, result):
            result.files_changed.append(path)
    if page.exists():
        from sync_report import render_report_page

        render_report_page(root)
        result.files_changed.append(page)


def _meltanos(path: Path, root: Path) -> bool:
    """Meltano's own files (its system database, its `.meltano` directory) hold job state and
    bookmarks, never a person's values: a row deleted there could break the next run."""
    parts = path.relative_to(root).parts
    return path.name == "meltano.db" or ".meltano" in parts


def _scrub_text(path: Path, keys: set[str], result: ForgetResult) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        data = path.read_bytes()
        if _holds(data.decode("latin-1"), keys):
            path.unlink()  # not text we can edit line by line: the file goes whole
            result.lines_removed += 1
            return True
        return False
    if not _holds(text, keys):
        return False
    if path.suffix == ".json":
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if document is not None:
            rewrite_private(path, json.dumps(_prune_json(document, keys, result), indent=2) + "\n")
            return True
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if not _holds(line, keys)]
    result.lines_removed += len(lines) - len(kept)
    rewrite_private(path, "".join(kept))
    return True


def _prune_json(value: Any, keys: set[str], result: ForgetResult) -> Any:
    if isinstance(value, dict):
        return {k: _prune_json(v, keys, result) for k, v in value.items()}
    if isinstance(value, list):
        kept = []
        for item in value:
            if _holds(json.dumps(item, ensure_ascii=False), keys):
                result.lines_removed += 1
            else:
                kept.append(item)
        return kept
    if isinstance(value, str) and _holds(value, keys):
        result.lines_removed += 1
        return "[olvidado · forgotten]"
    return value


def _scrub_sqlite(path: Path, keys: set[str], result: ForgetResult) -> bool:
    try:
        conn = sqlite3.connect(path, timeout=30)
    except sqlite3.Error:
        return False
    changed = False
    try:
        conn.create_function(
            "fcsync_holds", 1, lambda v: int(isinstance(v, str) and _holds(v, keys))
        )
        conn.execute("PRAGMA secure_delete=ON")  # freed pages are zeroed, not left readable
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        for table in tables:
            columns = [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]
            if not columns:
                continue
            condition = " OR ".join(f'fcsync_holds("{column}")' for column in columns)
            removed = conn.execute(f'DELETE FROM "{table}" WHERE {condition}').rowcount  # noqa: S608
            if removed:
                result.rows_removed += removed
                changed = True
        conn.commit()
    except sqlite3.Error:
        return changed
    finally:
        conn.close()
    _vacuum(path)
    return changed


def _vacuum(path: Path) -> None:
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
