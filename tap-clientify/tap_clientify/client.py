"""Base stream: every HTTP call goes through the shared clientify_api client.

Why not the SDK's RESTStream: the targets (target-clientify, target-factusol) talk to the same
API through `clientify_api`, so its retries (Retry-After, 504s, never re-POSTing blindly), its
rate limiter and its client-side filter checks are written and tested once and behave the same
in both directions. RESTStream would be a second, different HTTP stack for the same API.
"""

from __future__ import annotations

from functools import cached_property

from clientify_api import ClientifyClient, PageInfo
from singer_sdk import Stream


class ClientifyStream(Stream):
    """A Clientify stream reading through :class:`clientify_api.ClientifyClient`."""

    #: Log a progress line every this many pages (a page of 100 contacts takes ~2 s).
    PROGRESS_EVERY_PAGES = 10

    @cached_property
    def api(self) -> ClientifyClient:
        """The API client, built from the tap config."""
        return ClientifyClient(
            api_key=self.config["api_key"],
            api_url=self.config.get("api_url") or "https://api.clientify.net/v1",
            page_size=int(self.config.get("page_size", 100)),
            rate_limit=float(self.config.get("rate_limit", 5)),
            timeout=float(self.config.get("timeout", 30)),
            max_retries=int(self.config.get("max_retries", 6)),
        )

    def log_progress(self, info: PageInfo) -> None:
        """`on_page` callback: one INFO line every PROGRESS_EVERY_PAGES pages."""
        if info.page % self.PROGRESS_EVERY_PAGES == 0:
            self.logger.info(
                "%s: %d pages read, %d records kept (server count %s)",
                self.name,
                info.page,
                info.total_kept,
                info.count if info.count is not None else "unknown",
            )
