"""The contact index kept current from the API: one paged scan, or a cache refreshed with
``modified[gte]`` and checked against the account's contact count (deletions leave no trace)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clientify_api.account import AccountResources
from clientify_api.timeutil import parse_api_datetime
from clientify_api.transport import PageInfo

if TYPE_CHECKING:  # the index loads SQLAlchemy: only a run that builds one pays for it
    from clientify_api.index import ContactIndex, IdentityKeys

logger = logging.getLogger("clientify_api.client")


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
        contacts = self.iter_contacts(on_page=on_page)
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

    def _refresh_cache(
        self,
        field: str,
        cache: str | Path,
        rescan_after: timedelta,
        overlap: timedelta,
        on_page: Callable[[PageInfo], None] | None,
        keys: IdentityKeys | None,
    ) -> ContactIndex:
        scope = self._account_fingerprint()
        try:
            index = _index().ContactIndex(field=field, path=cache, scope=scope, keys=keys)
        except _index().damaged_cache_errors() as exc:
            if isinstance(exc, _index().cache_errors(cache)) or not isinstance(cache, Path):
                raise  # locked or unreachable: the caller scans on its own
            logger.warning("contact cache %s is damaged (%s): rebuilding it", cache, exc)
            cache.unlink(missing_ok=True)
            index = _index().ContactIndex(field=field, path=cache, scope=scope, keys=keys)
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
            window = self.iter_contacts(modified_gte=since, on_page=on_page)
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
        _, newest = self._index_all(index, self.iter_contacts(on_page=on_page))
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
        for count, contact in enumerate(contacts, start=1):
            index.add(contact)
            modified = parse_api_datetime(contact.get("modified"))
            if modified is not None and (newest is None or modified > newest):
                newest = modified
            if count % 1000 == 0:
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


def _index() -> Any:
    """clientify_api.index, imported at first use (it loads SQLAlchemy: ~0.2 CPU-s that a
    change probe, which never builds an index, does not pay)."""
    from clientify_api import index

    return index
