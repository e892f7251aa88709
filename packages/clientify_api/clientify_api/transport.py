"""Transport for the Clientify API v1: one request with retries, the rate limiter, paging, the
POST that is never resent blindly, and the server's clock.

Everything above this layer (``resources``, ``account``, ``index_sync``) speaks in endpoints;
nothing here knows what a contact is. No singer_sdk.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NewConnectionError

from clientify_api._version import __version__
from clientify_api.errors import ClientifyError, ClientifyRetryError, raise_for_client_error
from clientify_api.paging import PagesAhead, checked_page, pages_after
from clientify_api.ratelimit import RateLimiter
from clientify_api.timeutil import retry_after_seconds

logger = logging.getLogger("clientify_api.client")

DEFAULT_API_URL = "https://api.clientify.net/v1"
MAX_PAGE_SIZE = 100

Kind = Literal["read", "write", "lookup"]


@dataclass(frozen=True)
class PageInfo:
    """Progress of a paged read, passed to ``on_page`` callbacks (e.g. to log every N pages)."""

    page: int
    results: int  # records on this page as the server sent them
    kept: int  # records on this page that passed the client-side filter check
    total_kept: int
    count: int | None  # the server's ``count`` (of a filter it may have ignored)


class _Ambiguous(Exception):
    """A non-idempotent write failed in a way that may have been applied server-side."""

    def __init__(self, reason: str, status: int | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def _check_api_url(api_url: str) -> str:
    parts = urlsplit(api_url.strip())
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"api_url must be an absolute http(s) URL, got {api_url!r}")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ValueError(
            f"api_url must use https:// (plain http:// is only allowed for loopback hosts such "
            f"as 127.0.0.1 or localhost, e.g. a local sandbox); got {api_url!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"api_url must not carry a query or fragment, got {api_url!r}")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def object_id(value: int | str) -> str:
    # Ids go into URL paths: accept only integers so nothing else can be smuggled in.
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        raise ValueError(f"Clientify ids are positive integers, got {value!r}")
    return text


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request certainly never reached the server (safe to resend a POST)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError)


class Transport:
    """HTTP plumbing shared by every endpoint of :class:`~clientify_api.ClientifyClient`.

    Thread-safe: every thread gets its own ``requests.Session`` (connection reuse per thread);
    the rate limiter and the ``calls`` counter are shared. ``clock``/``sleep`` drive the rate
    limiter and the retry waits; ``wall_clock`` (Unix time) reads HTTP-date ``Retry-After``.
    """

    def __init__(
        self,
        api_key: str,
        api_url: str = DEFAULT_API_URL,
        *,
        page_size: int = MAX_PAGE_SIZE,
        rate_limit: float | None = 5.0,
        timeout: float = 30.0,
        max_retries: int = 6,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        max_retry_after: float = 600.0,
        jitter: bool = True,
        rate_limiter: RateLimiter | None = None,
        session: requests.Session | None = None,
    ) -> None:
        key = (api_key or "").strip()
        if key.lower().startswith("token "):  # tolerate a pasted "Token <key>" header value
            key = key[6:].strip()
        if not key:
            raise ValueError("api_key is required (Clientify: Settings > Integrations > API)")
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        if page_size > MAX_PAGE_SIZE:
            logger.warning("page_size %d above the API maximum; using %d", page_size, MAX_PAGE_SIZE)
            page_size = MAX_PAGE_SIZE
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self._api_key = key
        self.api_url = _check_api_url(api_url)
        self.page_size = page_size
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.jitter = jitter
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self.rate_limiter = rate_limiter or RateLimiter(rate_limit, clock=clock, sleep=sleep)
        self._base_parts = urlsplit(self.api_url)
        self._shared_session = session
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._retries = 0
        self._cf_lock = threading.Lock()
        self._cf_definitions: dict[str, dict[str, Any]] = {}
        self._cf_filter_supported: bool | None = None
        self._country: str | None = None
        self._country_known = False
        self._account: dict[str, Any] | None = None
        self._account_known = False
        self._server_date: tuple[float, float] | None = None  # (server Unix time, ours then)

    # ------------------------------------------------------------------ plumbing

    def __repr__(self) -> str:
        # The key never appears: not in repr, logs or errors.
        return (
            f"ClientifyClient(api_url={self.api_url!r}, api_key='***', "
            f"page_size={self.page_size}, rate_limit={self.rate_limiter.rate!r})"
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every per-thread session this client opened."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    @property
    def calls(self) -> Counter[str]:
        """API calls by kind (``read``, ``write``, ``lookup``); one per HTTP request, retries
        not included (see :attr:`retries`)."""
        return self._calls

    @property
    def retries(self) -> int:
        """How many times a request was sent again after a transient failure."""
        return self._retries

    def calls_snapshot(self) -> dict[str, int]:
        """A consistent copy of :attr:`calls` (for reports written while threads still run)."""
        with self._lock:
            return dict(self._calls)

    def _count(self, kind: str) -> None:
        with self._lock:
            self._calls[kind] += 1

    def _session(self) -> requests.Session:
        if self._shared_session is not None:
            return self._shared_session
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=2, pool_maxsize=4)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Token {self._api_key}",
            "Accept": "application/json",
            "User-Agent": f"fcsync-clientify-api/{__version__}",
        }

    def _url(self, path: str) -> str:
        path = "/" + path.strip("/") + "/"  # Clientify routes end in "/"
        return self.api_url + path

    def _backoff(self, retry: int) -> float:
        delay: float = min(self.backoff_cap, self.backoff_base * (2 ** (retry - 1)))
        if self.jitter:
            # Spread the writer threads' retries so they do not hit the server together.
            delay *= 0.5 + random.random() / 2
        return delay

    def _wait_before_retry(self, retry: int, response: requests.Response | None) -> float:
        wait: float | None = None
        if response is not None and response.status_code == 429:
            wait = retry_after_seconds(response.headers.get("Retry-After"), now=self._wall_clock())
            if wait is not None:
                wait = min(wait, self.max_retry_after)
                # Everyone pauses, not only this thread: the limit is per account.
                self.rate_limiter.hold(wait)
        if wait is None:
            wait = self._backoff(retry)
        return wait

    # ------------------------------------------------------------------ one request

    def _request(
        self,
        method: str,
        url: str,
        *,
        kind: Kind,
        params: list[tuple[str, str]] | None = None,
        body: Mapping[str, Any] | None = None,
        end_on_invalid_page: bool = False,
        missing_ok: bool = False,
    ) -> Any:
        """Send one logical call with retries and return the decoded JSON (``{}`` when empty).

        Returns None for 404 "Invalid page." when ``end_on_invalid_page`` (end of a listing)
        and for a 404 on a retried DELETE when ``missing_ok``. Raises ``_Ambiguous`` for a POST
        that failed after it may have been applied.
        """
        path = urlsplit(url).path
        idempotent = method != "POST"
        self._count(kind)
        attempt = 0
        while True:
            attempt += 1
            self.rate_limiter.acquire()
            started = self._clock()
            response: requests.Response | None = None
            failure: str
            try:
                response = self._session().request(
                    method,
                    url,
                    params=params,
                    json=body,
                    headers=self._headers(),
                    timeout=self.timeout,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure = type(exc).__name__
                if not idempotent and not _never_sent(exc):
                    raise _Ambiguous(failure, None) from None
            except (
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
            ) as exc:
                failure = type(exc).__name__
                if not idempotent:
                    raise _Ambiguous(failure, None) from None
            except requests.RequestException as exc:
                raise ClientifyError(
                    f"{method} {path} failed: {type(exc).__name__}", method=method, path=path
                ) from None
            else:
                status = response.status_code
                logger.debug(
                    "Clientify %s %s -> %d in %.2f s", method, path, status, self._clock() - started
                )
                if status < 400:
                    self._note_server_date(response.headers.get("Date"))
                    return self._decode(response, method, path)
                failure = str(status)
                if status == 429 or status >= 500:
                    # 429 was refused, so it is safe to resend; a 5xx POST may have been applied.
                    if status != 429 and not idempotent:
                        raise _Ambiguous(failure, status)
                else:
                    if status == 404 and attempt > 1 and missing_ok:
                        return None  # an earlier attempt of this DELETE got through
                    return raise_for_client_error(
                        response, method, path, end_on_invalid_page=end_on_invalid_page
                    )
            if attempt > self.max_retries:
                raise ClientifyRetryError(
                    f"{method} {path} failed after {attempt} attempts (last: {failure})",
                    method=method,
                    path=path,
                    status=response.status_code if response is not None else None,
                    attempts=attempt,
                )
            wait = self._wait_before_retry(attempt, response)
            with self._lock:
                self._retries += 1
            logger.warning(
                "Clientify %s %s -> %s; retry %d/%d in %.1f s",
                method,
                path,
                failure,
                attempt,
                self.max_retries,
                wait,
            )
            self._sleep(wait)

    def _decode(self, response: requests.Response, method: str, path: str) -> Any:
        if response.status_code == 204 or not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise ClientifyError(
                f"{method} {path} -> {response.status_code}: the answer is not JSON "
                "(is api_url the Clientify API v1 base, e.g. https://api.clientify.net/v1?)",
                method=method,
                path=path,
                status=response.status_code,
            ) from None

    # ------------------------------------------------------------------ paging

    def _follow_next(
        self, current_url: str, next_url: str, sent: list[tuple[str, str]]
    ) -> tuple[str, list[tuple[str, str]]]:
        """URL and params for the ``next`` link, parsed (never compared as a string).

        The link's host is replaced by ours so the API key is only ever sent to ``api_url``;
        ``page_size`` and any filter the link forgot are added back.
        """
        parts = urlsplit(urljoin(current_url, next_url))
        if (parts.scheme, parts.netloc) != (self._base_parts.scheme, self._base_parts.netloc):
            logger.debug("next link points to another host; following it on %s", self.api_url)
        url = urlunsplit((self._base_parts.scheme, self._base_parts.netloc, parts.path, "", ""))
        params = parse_qsl(parts.query, keep_blank_values=True)
        present = {k for k, _ in params}
        for key, value in sent:
            if key not in present and key != "page":
                params.append((key, value))
        return url, params

    def _iter_pages(
        self,
        path: str,
        params: list[tuple[str, str]],
        *,
        kind: Kind,
        read_ahead: int = 1,
    ) -> Iterator[dict[str, Any]]:
        """Every page of a listing: follows ``next``, stops on null or 404 "Invalid page.".

        ``read_ahead`` > 1: once the first page gives ``count`` and a ``next`` link with its
        page number, the pages up to ``count`` are requested that many at a time (still
        yielded in order; the rate limiter paces them). A page of 100 takes ~2 s on the live
        API (reference §2): a scan of 10,000 contacts read one page at a time waits 200 s.
        """
        url = self._url(path)
        query = [(k, v) for k, v in params if k != "page_size"] + [
            ("page_size", str(self.page_size))
        ]
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        first = True
        while True:
            key = (urlsplit(url).path.rstrip("/"), tuple(sorted(query)))
            if key in seen:
                raise ClientifyError(
                    f"GET {urlsplit(url).path}: the API sent the same next page twice; "
                    "stopping to avoid an endless loop",
                    method="GET",
                    path=urlsplit(url).path,
                )
            seen.add(key)
            data = self._request("GET", url, kind=kind, params=query, end_on_invalid_page=True)
            if data is None:
                return
            if isinstance(data, list):  # not paginated after all
                yield {"count": len(data), "next": None, "results": data}
                return
            page = checked_page(data, url)
            yield page
            next_url = page.get("next")
            if not next_url or not isinstance(next_url, str):
                return
            url, query = self._follow_next(url, next_url, query)
            if first and read_ahead > 1:
                ahead = self._read_ahead(url, query, page, read_ahead, kind)
                if ahead is not None:
                    yield from ahead.pages
                    if ahead.next_url is None:
                        return
                    url, query = self._follow_next(url, ahead.next_url, query)
            first = False

    def _read_ahead(
        self,
        url: str,
        query: list[tuple[str, str]],
        first: dict[str, Any],
        workers: int,
        kind: Kind,
    ) -> PagesAhead | None:
        """The pages after ``first`` (``query`` is its ``next``), ``workers`` at a time, or
        None when the listing does not tell how many there are (then read one at a time)."""
        numbers = pages_after(first, query)
        if numbers is None:
            return None
        rest = [(k, v) for k, v in query if k != "page"]

        def fetch(number: int) -> Any:
            params = [*rest, ("page", str(number))]
            return self._request("GET", url, kind=kind, params=params, end_on_invalid_page=True)

        return PagesAhead(fetch, numbers, workers=workers, url=url)

    def _iter_results(
        self, path: str, params: list[tuple[str, str]] | None = None, *, kind: Kind = "read"
    ) -> Iterator[dict[str, Any]]:
        for page in self._iter_pages(path, params or [], kind=kind):
            for item in page["results"]:
                if isinstance(item, dict):
                    yield item

    def _account_fingerprint(self) -> str:
        # Identifies the account a cache belongs to without storing the key itself.
        material = f"{self.api_url}\n{self._api_key}".encode()
        return hashlib.sha256(material).hexdigest()[:32]

    def server_now(self) -> datetime:
        """The API server's current time, from the last ``Date`` header (else our clock)."""
        with self._lock:
            known = self._server_date
        now = self._wall_clock()
        if known is not None:
            server, ours = known
            now = server + (now - ours)
        return datetime.fromtimestamp(now, tz=UTC)

    def _note_server_date(self, header: str | None) -> None:
        # One HTTP-date has at most one comma; several Date headers arrive comma-joined
        # (a proxy adding its own): which one is the server's is unknowable, so use none.
        if not header or header.count(",") > 1:
            return
        try:
            server = parsedate_to_datetime(header).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return
        with self._lock:
            self._server_date = (server, self._wall_clock())

    def _create(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        recheck: Callable[[], dict[str, Any] | None] | None,
        after_resend: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """POST, never blindly resent: after a failure that may have been applied (5xx, read
        timeout) ``recheck`` looks for the object; found -> returned, not found -> resent.

        A POST that timed out or lost its connection may still be running on the server, so
        the recheck waits at least ``timeout`` first; ``after_resend`` then gets the object a
        resend created, to undo a duplicate the first request made after all.
        """
        url = self._url(path)
        attempt = 0
        while True:
            attempt += 1
            try:
                result: dict[str, Any] = self._request("POST", url, kind="write", body=body)
                if attempt > 1 and after_resend is not None:
                    return after_resend(result)
                return result
            except _Ambiguous as exc:
                if recheck is None or attempt > self.max_retries:
                    raise ClientifyRetryError(
                        f"POST {urlsplit(url).path} failed ({exc.reason}) and may have been "
                        "applied: look the object up before sending it again",
                        method="POST",
                        path=urlsplit(url).path,
                        status=exc.status,
                        attempts=attempt,
                        maybe_applied=True,
                    ) from None
                wait = self._backoff(attempt)
                if exc.status is None:  # no answer: the request may still be in flight
                    wait = max(wait, self.timeout)
                logger.warning(
                    "Clientify POST %s -> %s; checking whether it was applied in %.1f s",
                    urlsplit(url).path,
                    exc.reason,
                    wait,
                )
                with self._lock:
                    self._retries += 1
                self._sleep(wait)
                found = recheck()
                if found is not None:
                    return found

    def _delete(self, path: str) -> None:
        self._request("DELETE", self._url(path), kind="write", missing_ok=True)

    def account_fingerprint(self) -> str:
        """A stable id of the account (API URL and key, hashed): what a cache or a ledger
        belongs to, without storing the key."""
        return self._account_fingerprint()
