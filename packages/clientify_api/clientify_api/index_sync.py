"""The contact index kept current from the API: one paged scan, or a cache refreshed with
``modified[gte]`` and checked against the account's contact count (deletions leave no trace),
or, for a run that streams every contact, a cache that stream completes (:class:`StreamCheck`)."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from clientify_api.account import AccountResources
from clientify_api.errors import ClientifyNotFoundError
from clientify_api.paging import batches
from clientify_api.timeutil import parse_api_datetime
from clientify_api.transport import PageInfo

if TYPE_CHECKING:  # the index loads SQLAlchemy: only a run that builds one pays for it
    from clientify_api.index import ContactIndex, IdentityKeys

logger = logging.getLogger("clientify_api.client")

# How old a kept cache's watermark may be for a run whose own stream brings it current
# (:meth:`IndexSync.open_contact_index`). Such a run decides with the cached bodies until each
# contact's own record arrives, so a third party's edit since the watermark is seen only at
# that contact's batch: this bounds that blind spot. Three hours, not one: a full c2f often
# follows the f2c that last refreshed the cache by an hour plus that f2c's own duration (the
# hourly bench, a weekly full job after the other).
STREAM_CACHE_MAX_AGE = timedelta(hours=3)

# Pages a scan of the contacts requests at a time (the rate limiter paces them): on the live
# API a page takes ~2 s, so one at a time leaves the limit unused for minutes at the start of
# an initial sync (and the N=10,000 benchmark's f2c spent ~6 s of its 64 s of writes on it).
SCAN_READ_AHEAD = 4


class IndexSync(AccountResources):
    """Builds and refreshes :class:`~clientify_api.ContactIndex` from the account."""

    def build_contact_index(
        self,
        *,
        field: str = "factusol_id",
        on_page: Callable[[PageInfo], None] | None = None,
        keys: IdentityKeys | None = None,
    ) -> ContactIndex:
        """One paged scan of every contact into a :class:`ContactIndex`."""
        contacts = self.iter_contacts(on_page=on_page, read_ahead=SCAN_READ_AHEAD)
        index: ContactIndex = _index().ContactIndex.build(contacts, field=field, keys=keys)
        return index

    def count_contacts(self) -> int | None:
        """How many contacts the account holds (one call), or None when the API omits it."""
        data = self._request(
            "GET", self._url("/contacts/"), kind="read", params=[("page_size", "1")]
        )
        count = data.get("count") if isinstance(data, dict) else None
        return count if isinstance(count, int) and not isinstance(count, bool) else None

    def load_contact_index(
        self,
        *,
        field: str = "factusol_id",
        cache: str | Path | None = None,
        rescan_after: timedelta = timedelta(hours=24),
        overlap: timedelta = timedelta(minutes=5),
        on_page: Callable[[PageInfo], None] | None = None,
        keys: IdentityKeys | None = None,
    ) -> ContactIndex:
        """The account's contacts, indexed; with ``cache``, kept in that file between runs.

        Without a cache this is one paged scan. With one, a run reads only the contacts
        modified since the previous refresh (``modified[gte]``, minus ``overlap``), then checks
        the account's contact count against the cache's: a deleted contact leaves no trace in
        ``modified``, so a different count means a full scan. A full scan also happens when
        the cache is older than ``rescan_after``, belongs to another account or link field, or
        is unreadable. Times come from the server's ``Date`` header (our clock may be off).
        The index returned commits each later change at once (``autocommit``), so a dry run
        must not :meth:`ContactIndex.add` what it did not write. When the file is locked by
        another run for longer than SQLite's timeout, this run makes its own full scan.
        ``keys`` are the NIF and e-mail key functions (see :class:`ContactIndex`).
        """
        if cache is None:
            return self.build_contact_index(field=field, on_page=on_page, keys=keys)
        where = "PostgreSQL" if _index().is_database_url(cache) else str(cache)
        target: str | Path = str(cache) if _index().is_database_url(cache) else Path(cache)
        try:
            return self._refresh_cache(field, target, rescan_after, overlap, on_page, keys)
        except _index().cache_errors(target) as exc:
            # Locked by another run for too long, unreachable or unwritable: scan on our own.
            logger.warning(
                "contact cache %s not usable (%s): one full scan instead",
                where,
                type(exc).__name__,
            )
            return self.build_contact_index(field=field, on_page=on_page, keys=keys)

    def open_contact_index(
        self,
        *,
        field: str = "factusol_id",
        cache: str | Path,
        rescan_after: timedelta = timedelta(hours=24),
        overlap: timedelta = timedelta(minutes=5),
        max_age: timedelta = STREAM_CACHE_MAX_AGE,
        stream_began_ago: timedelta = timedelta(0),
        on_page: Callable[[PageInfo], None] | None = None,
        keys: IdentityKeys | None = None,
    ) -> tuple[ContactIndex, StreamCheck | None]:
        """:meth:`load_contact_index` for a run whose input stream carries every contact.

        When the cache is usable (same account and field, full scan younger than
        ``rescan_after``, watermark younger than ``max_age``) it is opened **without** its
        window refresh (no API call), and a :class:`StreamCheck` comes with it: the run
        notes each contact it receives, and at its normal end the check either moves the
        watermark (the stream showed the cache current) or runs the skipped refresh. Else
        this is :meth:`load_contact_index` and the check is None. ``stream_began_ago``: how
        long before this call the run began receiving its stream (see :class:`StreamCheck`).
        """
        where = "PostgreSQL" if _index().is_database_url(cache) else str(cache)
        target: str | Path = str(cache) if _index().is_database_url(cache) else Path(cache)
        try:
            index = self._open_cache(field, target, keys)
            try:
                opened_at = self.server_now()
                state = index.sync_state(self._account_fingerprint())
                if state is None or not (
                    opened_at - state[0] < rescan_after and opened_at - state[1] < max_age
                ):
                    return self._refresh(index, rescan_after, overlap, on_page), None
            except BaseException:
                index.close()  # release the file (and any lock) before falling back
                raise
        except _index().cache_errors(target) as exc:
            logger.warning(
                "contact cache %s not usable (%s): one full scan instead",
                where,
                type(exc).__name__,
            )
            return self.build_contact_index(field=field, on_page=on_page, keys=keys), None
        index.autocommit = True
        check = StreamCheck(
            self,
            index,
            state=state,
            stream_began=opened_at - stream_began_ago,
            rescan_after=rescan_after,
            overlap=overlap,
            on_page=on_page,
        )
        logger.info(
            "contact cache: %d contacts, refreshed %s ago: this run's stream completes it "
            "(no window read now)",
            len(index),
            _ago(opened_at - state[1]),
        )
        return index, check

    def _open_cache(self, field: str, cache: str | Path, keys: IdentityKeys | None) -> ContactIndex:
        scope = self._account_fingerprint()
        try:
            opened: ContactIndex = _index().ContactIndex(
                field=field, path=cache, scope=scope, keys=keys
            )
            return opened
        except _index().damaged_cache_errors() as exc:
            if isinstance(exc, _index().cache_errors(cache)) or not isinstance(cache, Path):
                raise  # locked or unreachable: the caller scans on its own
            logger.warning("contact cache %s is damaged (%s): rebuilding it", cache, exc)
            cache.unlink(missing_ok=True)
            index: ContactIndex = _index().ContactIndex(
                field=field, path=cache, scope=scope, keys=keys
            )
            return index

    def _refresh_cache(
        self,
        field: str,
        cache: str | Path,
        rescan_after: timedelta,
        overlap: timedelta,
        on_page: Callable[[PageInfo], None] | None,
        keys: IdentityKeys | None,
    ) -> ContactIndex:
        index = self._open_cache(field, cache, keys)
        try:
            return self._refresh(index, rescan_after, overlap, on_page)
        except BaseException:
            index.close()  # release the file (and any lock) before the caller falls back
            raise

    def _refresh(
        self,
        index: ContactIndex,
        rescan_after: timedelta,
        overlap: timedelta,
        on_page: Callable[[PageInfo], None] | None,
    ) -> ContactIndex:
        started = self.server_now()
        state = index.sync_state(self._account_fingerprint())
        if state is not None and started - state[0] < rescan_after:
            full_scan_at, watermark = state
            since = watermark - overlap
            window = self.iter_contacts(
                modified_gte=since, on_page=on_page, read_ahead=SCAN_READ_AHEAD
            )
            changed, newest = self._index_all(index, window)
            total, cached = self.count_contacts(), len(index)
            if total is None or total == cached:
                mark = self._watermark(started, newest, previous=watermark)
                index.set_sync_state(full_scan_at=full_scan_at, watermark=mark)
                index.commit()
                index.autocommit = True
                logger.info(
                    "contact cache: %d contacts, %d re-read (modified since %s)",
                    cached,
                    changed,
                    since.isoformat(timespec="seconds"),
                )
                return index
            logger.info(
                "contact cache holds %d contacts, Clientify %d (some were deleted): full scan",
                cached,
                total,
            )
        elif state is not None:
            logger.info("contact cache older than %s: full scan", rescan_after)
        index.clear()
        index.commit()  # a scan cut short leaves no sync state: the next run scans again
        scan = self.iter_contacts(on_page=on_page, read_ahead=SCAN_READ_AHEAD)
        _, newest = self._index_all(index, scan)
        index.set_sync_state(full_scan_at=started, watermark=self._watermark(started, newest))
        index.commit()
        index.autocommit = True
        return index

    def _watermark(
        self, started: datetime, newest: datetime | None, *, previous: datetime | None = None
    ) -> datetime:
        """Where the next refresh starts (before the overlap).

        The server's time at the start of this refresh, when its ``Date`` header told us. Else
        our clock, but never later than the newest ``modified`` read (or, when nothing was
        read, the previous watermark): a clock ahead of the server's must not skip changes.
        """
        with self._lock:
            known = self._server_date is not None
        if known:
            return started
        floor = newest if newest is not None else previous
        return started if floor is None else min(started, floor)

    @staticmethod
    def _index_all(
        index: ContactIndex, contacts: Iterator[dict[str, Any]]
    ) -> tuple[int, datetime | None]:
        """Index contacts; how many, and the newest ``modified`` among them."""
        count, newest = 0, None
        for number, page in enumerate(batches(contacts, 100), start=1):
            count += index.add_many(page)
            for contact in page:
                modified = parse_api_datetime(contact.get("modified"))
                if modified is not None and (newest is None or modified > newest):
                    newest = modified
            if number % 10 == 0:
                index.commit()  # short write transactions: a run sharing the file may wait
        index.commit()
        return count, newest

    def refresh_contact_index(self, index: ContactIndex, *, modified_gte: datetime) -> int:
        """Re-index the contacts modified since ``modified_gte``; returns how many."""
        count = 0
        for contact in self.iter_contacts(modified_gte=modified_gte):
            index.add(contact)
            count += 1
        return count


class StreamCheck:
    """Whether a run's own contact stream brought a kept cache current, and the end of run.

    The cache was opened without its window refresh (:meth:`IndexSync.open_contact_index`);
    it already holds every contact the sync itself wrote (added at write time). The run
    calls :meth:`note` with each batch's contacts **before** writing any of them: their ids
    are kept (in a private temporary SQLite file, never a body: as a set of ints, 200,000 ids
    held 17.6 MB, enough to make target-factusol's memory grow with N) and a contact newer
    in the stream than in the cache, or not cached, is "stale". Only ids and ``modified``
    are compared: the index keeps API-shaped bodies, never stream records.

    :meth:`complete`, at the run's normal end, moves the watermark without reading a window
    when the stream vouches for the cache: every cached contact seen, nothing stale, and
    Clientify's count equal to the cache's. A few exceptions (up to :attr:`READ_ONE_BY_ONE`:
    stale contacts, cached ones the stream did not carry) are read one by one first (a
    deleted one leaves the cache), so one contact edited during a long run costs one call,
    not a window of the whole run. Anything more runs the window refresh and count check the
    run skipped. After a crash nothing is called: the sync state stays as it was and the
    next run reads the window as usual.
    """

    # Contacts read one by one at most, before the window refresh is cheaper: a window over
    # a full run spans every contact the sync wrote since the last refresh, in pages of 100
    # (the N=100,000 benchmark's initial c2f once read ~2,000 pages for 1 stale contact).
    READ_ONE_BY_ONE = 25

    def __init__(
        self,
        sync: IndexSync,
        index: ContactIndex,
        *,
        state: tuple[datetime, datetime],
        stream_began: datetime,
        rescan_after: timedelta,
        overlap: timedelta,
        on_page: Callable[[PageInfo], None] | None,
    ) -> None:
        self.index = index
        self.full_scan_at, self.watermark = state
        self.stream_began = stream_began
        self._sync = sync
        self._rescan_after, self._overlap, self._on_page = rescan_after, overlap, on_page
        self._seen = sqlite3.connect("", check_same_thread=False)  # "": a private temp file
        self._seen.execute("CREATE TABLE seen (id INTEGER PRIMARY KEY)")
        self._seen.execute("CREATE TABLE page (id INTEGER)")  # the cache's ids, in turn
        self._stale = 0
        self._stale_ids: set[int] = set()  # at most READ_ONE_BY_ONE + 1 kept: enough to decide
        self._without_id = 0
        self._reread = 0
        self._newest: datetime | None = None
        self._lock = threading.Lock()

    @property
    def seen(self) -> int:
        """How many distinct contacts the stream carried so far."""
        with self._lock:
            row = self._seen.execute("SELECT COUNT(*) FROM seen").fetchone()
        return int(row[0])

    def close(self) -> None:
        """Drop the ids seen (the temporary file goes with its connection)."""
        with self._lock:
            self._seen.close()

    @property
    def stale(self) -> int:
        return self._stale

    def note(
        self,
        records: Iterable[Mapping[str, Any]],
        *,
        written_at: Mapping[int, datetime] | None = None,
    ) -> None:
        """Compare a batch's contacts with their cached bodies (before the run writes them).

        ``written_at``: contact id -> when the sync last wrote that contact (the server's
        time, taken after its last call; the ledger's ``clientify_written_at``). A write in
        several calls (a PUT, then e-mails, phones: each moves ``modified``) leaves in the
        cache the body the writer assembled, whose ``modified`` is the first call's: a stream
        ``modified`` up to that time is the sync's own write, and the cached body holds it.
        """
        batch = [(r.get("id"), parse_api_datetime(r.get("modified"))) for r in records]
        cached = self.index.modified_of(cid for cid, _ in batch if _is_id(cid))
        ours = written_at or {}
        with self._lock:
            self._seen.executemany(
                "INSERT OR IGNORE INTO seen VALUES (?)", [(c,) for c, _ in batch if _is_id(c)]
            )
            for cid, modified in batch:
                if not _is_id(cid):
                    self._without_id += 1  # nothing to compare or read: cannot vouch for it
                    continue
                before = parse_api_datetime(cached.get(cid))
                if (
                    modified is None  # a time that cannot be compared
                    or before is None  # not cached
                    or (modified > before and not _own_write(modified, ours.get(cid)))
                ):
                    self._stale += 1
                    if len(self._stale_ids) <= self.READ_ONE_BY_ONE:
                        self._stale_ids.add(cid)
                if modified is not None and (self._newest is None or modified > self._newest):
                    self._newest = modified

    def complete(self) -> str:
        """Bring the cache current at the run's normal end: ``"stream"`` (the watermark moved:
        one count read, plus one read per contact it had to repair) or ``"window"`` (the
        skipped window refresh, as at a run's start)."""
        try:
            reason, newest = self._repair()
        finally:
            self.close()
        index, sync = self.index, self._sync
        state = index.sync_state(sync._account_fingerprint())
        if reason is None and state is None:
            reason = "its sync state was cleared meanwhile"
        if reason is None and state is not None:
            # The stream began before the tap read its first page, and every later change
            # happened after the tap read that contact (or this check re-read it): the next
            # refresh, from here minus the overlap, reads them. (The server's time:
            # sync.server_now() at opening.)
            mark = sync._watermark(self.stream_began, newest, previous=self.watermark)
            mark = max(mark, state[1])  # another run's later refresh stays
            index.set_sync_state(full_scan_at=state[0], watermark=mark)
            index.commit()
            logger.info(
                "contact cache brought current by this run's stream: %d contacts, %d read "
                "one by one; watermark moved to %s without reading a window",
                len(index),
                self._reread,
                mark.isoformat(timespec="seconds"),
            )
            return "stream"
        logger.info("contact cache brought current by its window refresh: %s", reason)
        index.autocommit = False  # the refresh commits in batches, then turns it back on
        try:
            sync._refresh(index, self._rescan_after, self._overlap, self._on_page)
        finally:
            index.autocommit = True
        return "window"

    def _repair(self) -> tuple[str | None, datetime | None]:
        """Read the few contacts the stream did not vouch for; why not, when it cannot."""
        with self._lock:
            stale, stale_ids, without_id = self._stale, sorted(self._stale_ids), self._without_id
            newest = self._newest
        if self.index.sync_state(self._sync._account_fingerprint()) is None:
            return "its sync state was cleared meanwhile", newest
        if without_id:
            return f"{without_id} contacts of the stream without an id", newest
        if stale > self.READ_ONE_BY_ONE:
            return f"{stale} contacts of the stream newer than cached, or not cached", newest
        # A stream that left out more cached contacts than it carried is an incremental one:
        # its window costs less than reading them one by one (a small account's 18 of 20).
        room = min(self.READ_ONE_BY_ONE - len(stale_ids), self.seen)
        unseen = self._unseen(room + 1)
        if len(unseen) > room:
            return f"the stream left out more than {room} cached contacts", newest
        gone = self._read_one_by_one(stale_ids) + self._read_one_by_one(unseen)
        total, cached = self._sync.count_contacts(), len(self.index)
        if total is not None and total != cached:
            return f"Clientify holds {total} contacts, the cache {cached}", newest
        if gone:
            logger.info("contact cache: %d contacts deleted during the run left it", gone)
        return None, newest

    def _read_one_by_one(self, contact_ids: Iterable[int]) -> int:
        """Re-read these contacts into the cache (a missing one leaves it); how many were
        gone."""
        gone = 0
        for cid in contact_ids:
            try:
                self.index.add(self._sync.get_contact(cid))
            except ClientifyNotFoundError:
                self.index.remove(cid)
                gone += 1
            self._reread += 1
        return gone

    def _unseen(self, limit: int) -> list[int]:
        """Up to ``limit`` cached contacts the stream did not carry (an anti-join, a page of
        the cache's ids at a time)."""
        unseen: list[int] = []
        for page in batches((int(pk) for pk in self.index.ids() if pk.isdigit()), 5000):
            with self._lock:
                self._seen.execute("DELETE FROM page")
                self._seen.executemany("INSERT INTO page VALUES (?)", [(c,) for c in page])
                unseen += [
                    row[0]
                    for row in self._seen.execute(
                        "SELECT id FROM page WHERE id NOT IN (SELECT id FROM seen) LIMIT ?",
                        (limit - len(unseen),),
                    )
                ]
            if len(unseen) >= limit:
                break
        return unseen


# The server's time the sync knows comes from the Date header, whole seconds (truncated): a
# write's true ``modified`` may be up to this much later than the time recorded after it.
DATE_HEADER_RESOLUTION = timedelta(seconds=1)


def _own_write(modified: datetime, written_at: datetime | None) -> bool:
    """Whether ``modified`` is no later than the sync's own last write of the contact. A third
    party's edit within the second after that write reads as the sync's (the rule the merge
    already applies to ``clientify_written_at``)."""
    return written_at is not None and modified <= written_at + DATE_HEADER_RESOLUTION


def _is_id(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _ago(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _index() -> Any:
    """clientify_api.index, imported at first use (it loads SQLAlchemy: ~0.2 CPU-s that a
    change probe, which never builds an index, does not pay)."""
    from clientify_api import index

    return index
