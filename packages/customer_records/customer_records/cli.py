"""``fcsync-history``, ``fcsync-forget`` and ``fcsync-relink``: a person's life with the sync."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select, union
from sync_ledger import DEFAULT_LEDGER, CustomerHistory, HistoryEvent, SyncLedger
from sync_ledger.history import history as history_table
from sync_ledger.history import marks as marks_table
from sync_ledger.ledger import pairs

from .forget import forget_person

__all__ = ["find_codes", "forget_main", "format_event", "history_main", "open_scope", "relink_main"]

_WHY = {
    "user_edit": "a user changed it on the other side",
    "conflict": "changed on both sides: the conflict rule chose",
    "first_link": "first run: linked by a shared key",
    "created": "created from the other side",
    "deleted_in_clientify": "deleted in Clientify: not re-created",
    "deleted_in_factusol": "deleted in FactuSOL: contact kept and marked",
    "relinked": "brought back on purpose",
    "forgotten": "forgotten on request",
}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ledger-uri",
        default=os.environ.get("TARGET_CLIENTIFY_LEDGER_URI", DEFAULT_LEDGER),
        help="the targets' ledger_uri (a SQLite path or a SQLAlchemy URL); "
        "default $TARGET_CLIENTIFY_LEDGER_URI or %(default)s",
    )
    parser.add_argument(
        "--scope", help="the Clientify account's scope (needed only when the ledger holds several)"
    )


def open_scope(uri: str, scope: str | None) -> SyncLedger:
    """The ledger of ``scope``, or of the only scope the ledger holds."""
    if scope:
        return SyncLedger(uri, scope=scope)
    probe = SyncLedger(uri, scope="-")
    try:
        statement = union(
            select(pairs.c.scope), select(history_table.c.scope), select(marks_table.c.scope)
        )
        with probe.engine.connect() as conn:
            found = sorted({str(row[0]) for row in conn.execute(statement)})
    finally:
        probe.close()
    if len(found) != 1:
        raise SystemExit(
            f"the ledger holds {len(found)} accounts: name one with --scope "
            + (f"({', '.join(found)})" if found else "(none: has a sync run yet?)")
        )
    return SyncLedger(uri, scope=found[0])


def find_codes(ledger: SyncLedger, query: str) -> tuple[set[int], set[str]]:
    """Client codes and contact ids a query names: a CODCLI, a contact id, a NIF or an e-mail."""
    text = query.strip()
    codes: set[int] = set()
    contacts: set[str] = set()
    if text.isdigit():
        codes.add(int(text))
        contacts.add(text)
        codes |= {entry.code for entry in ledger.by_contact(text)}
    history = CustomerHistory(ledger)
    for candidate in {text, text.upper(), text.lower()}:
        codes |= history.codes_with_value(candidate)
    return codes, contacts


def format_event(event: HistoryEvent) -> str:
    when = (event.at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    who = f"client {event.code}" if event.code is not None else ""
    if event.contact_id:
        who += f"{' / ' if who else ''}contact {event.contact_id}"
    what = ""
    if event.field:
        what = f" {event.side or '?'}.{event.field}: {event.before or '∅'} → {event.after or '∅'}"
    detail = ", ".join(f"{k}={v}" for k, v in sorted(event.detail.items()))
    run = f" [run {event.run_id}]" if event.run_id else ""
    why = _WHY.get(event.reason, event.reason)
    return f"{when}{run} {who}{what} — {why}{f' ({detail})' if detail else ''}"


def history_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fcsync-history",
        description="Every change the sync made to one customer, with its reason.",
    )
    parser.add_argument("query", help="a CODCLI, a Clientify contact id, a NIF or an e-mail")
    _common(parser)
    args = parser.parse_args(argv)
    ledger = open_scope(args.ledger_uri, args.scope)
    try:
        codes, contacts = find_codes(ledger, args.query)
        history = CustomerHistory(ledger)
        events = history.events(codes=codes, contact_ids=contacts)
        marks = {code: mark for code, mark in history.marks().items() if code in codes}
        if not events and not marks:
            print(f"nothing known of {args.query!r} in this ledger", file=sys.stderr)
            return 1
        for event in events:
            print(format_event(event))
        for mark in marks.values():
            print(
                f"now: client {mark.code} — {_WHY.get(mark.kind, mark.kind)}"
                f" (since {mark.at:%Y-%m-%d})"
            )
    finally:
        ledger.close()
    return 0


def forget_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fcsync-forget",
        description="Remove one person from every local store of the sync (never from FactuSOL "
        "or Clientify: it prints what to do there).",
    )
    parser.add_argument("query", help="the person's CODCLI, NIF or e-mail")
    parser.add_argument("--output-dir", default="output", help="the sync's output directory")
    parser.add_argument(
        "--index-cache",
        default=os.environ.get("TARGET_CLIENTIFY_INDEX_CACHE_FILE"),
        help="the targets' index_cache_file when it is not under the output directory nor in "
        "the ledger's database (a SQLite path or a URL); default "
        "$TARGET_CLIENTIFY_INDEX_CACHE_FILE",
    )
    _common(parser)
    args = parser.parse_args(argv)
    ledger = open_scope(args.ledger_uri, args.scope)
    try:
        result = forget_person(
            args.query, ledger=ledger, output_dir=args.output_dir, index_cache=args.index_cache
        )
    finally:
        ledger.close()
    if not result.codes:
        print(f"nothing known of {args.query!r} in the ledger; run files were not searched")
        return 1
    print(
        f"forgotten: {len(result.codes)} client(s); {result.history_rows} history rows, "
        f"{result.lines_removed} lines and {result.rows_removed} cache rows removed from "
        f"{len(result.files_changed)} files. The sync will not bring this person back."
    )
    for line in result.instructions():
        print(line)
    return 0


def relink_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fcsync-relink",
        description="Bring back a customer the sync was told to leave alone (deleted on one side "
        "or forgotten): the next run syncs it again.",
    )
    parser.add_argument("--client", type=int, required=True, help="the FactuSOL CODCLI")
    _common(parser)
    args = parser.parse_args(argv)
    ledger = open_scope(args.ledger_uri, args.scope)
    try:
        history = CustomerHistory(ledger)
        mark = history.unmark(args.client)
        if mark is None:
            print(f"client {args.client} has no deletion or forget mark: nothing to do")
            return 1
        if mark.kind in DELETIONS:
            # One side of the pair is gone: its agreed values describe a pair that no longer
            # exists, and a target that found them would take the deletion again.
            ledger.forget(args.client)
        history.record([HistoryEvent("relinked", code=args.client, detail={"was": mark.kind})])
    finally:
        ledger.close()
    after = AFTER_RELINK.get(mark.kind, "the next runs sync it again")
    print(f"client {args.client}: mark '{mark.kind}' lifted; {after}")
    return 0


#: marks of a record deleted on one side (the pair is dropped when they are lifted)
DELETIONS = ("deleted_in_clientify", "deleted_in_factusol")
#: what the next runs do once a mark is lifted
AFTER_RELINK = {
    "deleted_in_factusol": (
        "the next clientify-to-factusol run treats the contact's factusol_id like a hand-typed "
        "one: rejected as missing_client (reported again) with missing_client: reject, the "
        "client created again under its code with missing_client: recreate. Remove the "
        "factusol-deleted tag in Clientify if you no longer want it."
    ),
    "deleted_in_clientify": "the next factusol-to-clientify run syncs the client again",
    "forgotten": "the next runs sync this customer again",
}
