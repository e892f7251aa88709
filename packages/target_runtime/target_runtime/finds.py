"""What every target run looks up, loaded at first use and shared by its batches: Clientify's
contacts (the contact index, kept current from the cache file or by the run's own stream) and
FactuSOL's key census (how many clients hold each NIF and e-mail)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from clientify_api import ClientifyClient, ContactIndex, PageInfo
from clientify_api.index_sync import StreamCheck
from customer_sync import IDENTITY_KEYS, KeyIndex
from factusol_api import FactusolClient

from target_runtime.settings import RunSettings

CENSUS_PAGE_SIZE = 5000  # rows of CODCLI, NIFCLI, EMACLI per call (about 400 kB)


class SharedFinds:
    """SyncRun's lookups (a mixin: SyncRun sets every attribute declared here)."""

    # The input stream is every contact of the account (a full run of tap-clientify): the
    # kept contact cache opens without its window refresh and the stream completes it.
    stream_completes_index: ClassVar[bool] = False
    _stream_check: StreamCheck | None = None  # set by contact_index() when it does so

    settings: RunSettings
    clientify: ClientifyClient
    factusol: FactusolClient | None
    link_field: str
    dry_run: bool
    started_at: dt.datetime
    log: logging.Logger
    _lock: threading.RLock
    _index: ContactIndex | None
    _census: KeyIndex | None
    _streamed: KeyIndex | None

    def contact_index(self) -> ContactIndex:
        """Clientify's contacts by link, NIF and e-mail: loaded at its first use, from the
        cache file (only what changed since the last run) or one paged scan."""
        with self._lock:
            if self._index is None:

                def progress(page: PageInfo) -> None:
                    if page.page % 20 == 0:
                        self.log.info("indexing contacts: %d pages read", page.page)

                cache = self.settings.index_cache
                self.log.info(
                    "indexing Clientify contacts (%s)",
                    f"cache {cache}" if cache else "one paged scan",
                )
                if cache and self.stream_completes_index and not self.dry_run:
                    # a dry run adds nothing to the cache: its stream cannot complete it
                    self._index, self._stream_check = self.clientify.open_contact_index(
                        field=self.link_field,
                        keys=IDENTITY_KEYS,
                        cache=cache,
                        rescan_after=self.settings.index_rescan,
                        stream_began_ago=dt.datetime.now(dt.UTC) - self.started_at,
                        on_page=progress,
                    )
                else:
                    self._index = self.clientify.load_contact_index(
                        field=self.link_field,
                        keys=IDENTITY_KEYS,  # the matching rule's own NIF and e-mail keys
                        cache=cache,
                        rescan_after=self.settings.index_rescan,
                        on_page=progress,
                    )
                self.log.info("indexed %d Clientify contacts", len(self._index))
            return self._index

    def note_contacts(
        self,
        records: Sequence[Mapping[str, Any]],
        written_at: Mapping[int, dt.datetime] | None = None,
    ) -> None:
        """A batch of the input stream's contacts, before any is written: what the cache's
        end-of-run check compares (ids and ``modified`` only). ``written_at``: when the sync
        last wrote some of them (contact id -> the ledger's ``clientify_written_at``)."""
        if self.stream_completes_index and records:
            self.contact_index()  # opened at the first batch: the check exists from then
            check = self._stream_check
            if check is not None:
                check.note(records, written_at=written_at)

    def _complete_index(self) -> None:
        """At the run's normal end: the stream's check moves the cache's watermark, or runs
        the window refresh it skipped. Never fails the run: the next one reads the window."""
        with self._lock:
            check, self._stream_check = self._stream_check, None
        if check is None:
            return
        try:
            check.complete()
        except Exception as exc:  # the writes are done; the cache is only left behind
            self.log.warning(
                "contact cache not brought current (%s): the next run reads its window",
                type(exc).__name__,
            )

    def census(self) -> KeyIndex:
        """FactuSOL's clients by NIF and e-mail identity (how many share a key): one keyset
        scan of three columns, at its first use. Without FactuSOL credentials (optional in
        target-clientify): the clients streamed so far in this run."""
        with self._lock:
            if self.factusol is None:
                self._streamed = self._streamed or KeyIndex()
                return self._streamed
            if self._census is None:
                census = KeyIndex()
                for row in self.factusol.iter_clients(
                    columns=["CODCLI", "NIFCLI", "EMACLI"], page_size=CENSUS_PAGE_SIZE
                ):
                    census.add(
                        int(row["CODCLI"]), nif=row.get("NIFCLI"), emails=[row.get("EMACLI")]
                    )
                self._census = census
                self.log.info("FactuSOL census: %d clients with a NIF or e-mail", census.records)
            return self._census

    def census_add(self, code: int, nif: object, email: object) -> None:
        """A client this run created or streamed: visible to later matches of the run."""
        with self._lock:
            census = self._census if self.factusol is not None else self.census()
            if census is not None:
                census.add(code, nif=nif, emails=[email])

    def census_remove(self, code: int) -> None:
        with self._lock:
            census = self._census if self.factusol is not None else self._streamed
            if census is not None:
                census.remove(code)
