"""HTTP client for the Clientify API v1 (https://api.clientify.net/v1).

Shared by tap-clientify, target-clientify and target-factusol, so the retries, the rate limiter
and the client-side filter checks behave the same in every connector. No singer_sdk here.

The class is built in layers, one module each: ``transport`` (requests, retries, paging, the
server's clock), ``resources`` (contacts and their sub-resources), ``account`` (custom fields,
account settings) and ``index_sync`` (the contact index and its cache).
"""

from __future__ import annotations

from clientify_api.index_sync import IndexSync
from clientify_api.transport import DEFAULT_API_URL, MAX_PAGE_SIZE, PageInfo

__all__ = ["DEFAULT_API_URL", "MAX_PAGE_SIZE", "ClientifyClient", "PageInfo"]


class ClientifyClient(IndexSync):
    """Clientify API v1 client: token auth, paging, contacts, custom fields, retries, rate limit.

    Thread-safe: every thread gets its own ``requests.Session`` (connection reuse per thread);
    the rate limiter and the ``calls`` counter are shared. ``clock``/``sleep`` drive the rate
    limiter and the retry waits; ``wall_clock`` (Unix time) reads HTTP-date ``Retry-After``.
    """
