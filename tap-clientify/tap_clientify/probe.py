"""Change probe: has any Clientify contact changed since the bookmark of a tap state?

A scheduler polling every few minutes calls :func:`has_changes` and starts
``meltano run tap-clientify ...`` only when it answers True. It reads the bookmark as the stream
does (``window.py``), asks with the stream's own filter (``modified[gte]`` through
``ClientifyClient.iter_contacts``, which checks every record against it) and imports no
singer_sdk: one call (``page_size=1``) when nothing changed, two at most (the second reads the
first page whole when the one contact the first showed is not newer than the bookmark but
the count says there are more).

Why the bookmark and not the stream's window (bookmark minus ``BOOKMARK_OVERLAP``): the overlap
holds what the last run already read (its newest contact at least), so "anything in the window"
would be true after every run that read something. A contact the last run missed inside the
overlap (saved while it was paging) is still read by the next run, whenever it happens: the
state only moves when a run does, and the scheduler runs the job at least once a day.

Command line: ``python -m tap_clientify.probe CONFIG.json [STATE.json]`` exits 0 when something
changed (run the pipeline), 1 when nothing did, 2 on an error.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Generator, Mapping
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Any, cast

from tap_clientify import window

if TYPE_CHECKING:
    from clientify_api import ClientifyClient, PageInfo

logger = logging.getLogger(__name__)

#: Retries of a transient failure: a probe that keeps failing should fail soon (the scheduler
#: then runs the job, which retries as configured) rather than wait minutes.
PROBE_MAX_RETRIES = 2


class _OutsideFilter(Exception):
    """The server answered records outside the filter: it ignored or loosened it."""


def has_changes(config: Mapping[str, Any], state: Mapping[str, Any] | None) -> bool:
    """True when a contact was modified after the bookmark of ``state`` (a run is needed).

    Args:
        config: The tap's settings (``api_key``, and optionally ``api_url``, ``sync_mode``,
            ``timeout``, ``max_retries``, ``rate_limit``).
        state: The tap's Singer state (``{"bookmarks": {"contacts": …}}``), or the object
            ``meltano state get`` prints (``{"singer_state": …}``). None or no bookmark -> True.

    True also on any doubt: ``sync_mode: full``, a record outside the filter (Clientify ignores
    filters it does not apply and answers with the whole account), a record without a
    readable ``modified``, no ``count`` in the answer, or more than a page of contacts in the
    bookmark's second. Raises the client's errors (credentials, network).
    """
    if config.get("sync_mode", "modified") == "full":
        return True
    mark = window.bookmark(window.stream_state(state))
    if mark is None:
        return True
    # Whole seconds: the filter sends whole seconds, so the client-side check of every record
    # (iter_contacts) then agrees with the server and flags only records it should not send.
    since = mark.replace(microsecond=0)
    from clientify_api import MAX_PAGE_SIZE, ClientifyClient  # the probe's one heavy import

    with ClientifyClient(
        api_key=str(config.get("api_key") or ""),
        api_url=config.get("api_url") or "https://api.clientify.net/v1",
        page_size=1,
        rate_limit=float(config.get("rate_limit", 5)),
        timeout=float(config.get("timeout", 30)),
        max_retries=min(int(config.get("max_retries", 6)), PROBE_MAX_RETRIES),
    ) as client:
        try:
            changed = _changed_since(client, since, mark, MAX_PAGE_SIZE)
        except _OutsideFilter:
            logger.info("probe: Clientify answered outside the modified filter; a change")
            changed = True
        logger.info("probe: %d Clientify call(s)", sum(client.calls.values()))
    return changed


def _changed_since(client: ClientifyClient, since: datetime, mark: datetime, most: int) -> bool:
    contacts, count = _first_page(client, since)
    if _any_newer(contacts, mark):
        return True
    if count is not None and count <= len(contacts):
        logger.info("probe: no contact modified after the bookmark")
        return False
    if count is None or count > most:
        logger.info("probe: cannot tell from one page (count %s); a change", count)
        return True
    # More than the bookmark's own contact since its second (a change, or a bulk write in
    # that second): read them all, one page.
    client.page_size = count
    contacts, count = _first_page(client, since)
    if _any_newer(contacts, mark) or count is None or count > len(contacts):
        return True
    logger.info("probe: no contact modified after the bookmark (%d in its second)", count)
    return False


def _first_page(
    client: ClientifyClient, since: datetime
) -> tuple[list[dict[str, Any]], int | None]:
    """The records of the first page of ``modified[gte]=since`` and the envelope's count; only
    that page is requested (the generator is closed before it asks for the next)."""
    pages: list[PageInfo] = []

    def on_page(info: PageInfo) -> None:
        pages.append(info)
        if info.kept < info.results:
            raise _OutsideFilter

    # A generator: closing it ends the read before the next page is requested.
    contacts = cast(
        Generator[dict[str, Any], None, None],
        client.iter_contacts(modified_gte=since, on_page=on_page),
    )
    try:
        first = next(contacts, None)
        if first is None:
            return [], pages[0].count if pages else 0
        return [first, *islice(contacts, pages[0].kept - 1)], pages[0].count
    finally:
        contacts.close()


def _any_newer(contacts: list[dict[str, Any]], mark: datetime) -> bool:
    from clientify_api import parse_api_datetime

    for contact in contacts:
        modified = parse_api_datetime(contact.get("modified"))
        if modified is None or modified > mark:
            logger.info("probe: contact %s modified after the bookmark", contact.get("id"))
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    """``python -m tap_clientify.probe CONFIG.json [STATE.json]``: 0 changed, 1 not, 2 error."""
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2:
        print("usage: python -m tap_clientify.probe CONFIG.json [STATE.json]", file=sys.stderr)
        return 2
    try:
        with open(args[0], encoding="utf-8") as handle:
            config = json.load(handle)
        state = None
        if len(args) == 2:
            with open(args[1], encoding="utf-8") as handle:
                state = json.load(handle)
        return 0 if has_changes(config, state) else 1
    except Exception as exc:  # the exit status is the interface
        print(f"probe failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
