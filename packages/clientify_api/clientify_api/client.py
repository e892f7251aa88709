"""HTTP client for the Clientify API v1 (https://api.clientify.net/v1).

Shared by tap-clientify, target-clientify and target-factusol, so the retries, the rate limiter
and the client-side filter checks behave the same in every connector. No singer_sdk here.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urljoin, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NewConnectionError

from clientify_api._version import __version__
from clientify_api.contacts import (
    ContactIndex,
    cache_errors,
    contact_emails,
    contact_phones,
    contact_tags,
    custom_field_matches,
    custom_field_text,
    datetime_bound_matches,
    is_contact_field_definition,
    is_database_url,
    normalize_email,
    phone_matches,
    query_matches,
)
from clientify_api.errors import (
    ClientifyAuthError,
    ClientifyCustomFieldError,
    ClientifyError,
    ClientifyNotFoundError,
    ClientifyRetryError,
    ClientifyValidationError,
    format_messages,
)
from clientify_api.ratelimit import RateLimiter
from clientify_api.timeutil import (
    format_filter_datetime,
    parse_api_datetime,
    retry_after_seconds,
)

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.clientify.net/v1"
MAX_PAGE_SIZE = 100
TEXT_FIELD_TYPE = 3

Kind = Literal["read", "write", "lookup"]
_DATE_OPS = ("gte", "gt", "lte", "lt")


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


def _object_id(value: int | str) -> str:
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


class ClientifyClient:
    """Clientify API v1 client: token auth, paging, contacts, custom fields, retries, rate limit.

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

    def __enter__(self) -> ClientifyClient:
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
                    return self._raise_for_client_error(
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

    def _raise_for_client_error(
        self,
        response: requests.Response,
        method: str,
        path: str,
        *,
        end_on_invalid_page: bool,
    ) -> None:
        status = response.status_code
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        detail = body.get("detail") if isinstance(body, dict) else None
        detail_text = str(detail).strip() if detail is not None else ""
        where = f"{method} {path} -> {status}"
        if status == 401:
            raise ClientifyAuthError(
                f"Clientify rejected the API key ({where}"
                + (f": {detail_text}" if detail_text else "")
                + "). Check api_key.",
                method=method,
                path=path,
                status=status,
            )
        if status == 403:
            raise ClientifyAuthError(
                f"Clientify refused access ({where}"
                + (f": {detail_text}" if detail_text else "")
                + "): the API key has no API access (API add-on or an admin user is needed).",
                method=method,
                path=path,
                status=status,
            )
        if status == 404:
            folded = detail_text.casefold()
            if "api key not provided" in folded:
                # Clientify answers a missing Authorization header with 404, not 401.
                raise ClientifyAuthError(
                    f"Clientify did not receive the API key ({where}: {detail_text})",
                    method=method,
                    path=path,
                    status=status,
                )
            if end_on_invalid_page and folded.startswith("invalid page"):
                return None
            hint = detail_text or (
                "not a JSON answer: unknown route, check api_url" if body is None else "Not found"
            )
            raise ClientifyNotFoundError(
                f"{where}: {hint}", method=method, path=path, status=status
            )
        if body is None:
            text = response.text.strip()
            # An HTML error page says nothing useful and may be long: keep only short text.
            body = text if text and len(text) <= 300 and not text.startswith("<") else None
        raise ClientifyValidationError(status, body, method=method, path=path)

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
        self, path: str, params: list[tuple[str, str]], *, kind: Kind
    ) -> Iterator[dict[str, Any]]:
        """Every page of a listing: follows ``next``, stops on null or 404 "Invalid page."."""
        url = self._url(path)
        query = [(k, v) for k, v in params if k != "page_size"] + [
            ("page_size", str(self.page_size))
        ]
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
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
            if not isinstance(data, dict) or not isinstance(data.get("results"), list):
                raise ClientifyError(
                    f"GET {urlsplit(url).path}: unexpected answer (no results list)",
                    method="GET",
                    path=urlsplit(url).path,
                )
            yield data
            next_url = data.get("next")
            if not next_url or not isinstance(next_url, str):
                return
            url, query = self._follow_next(url, next_url, query)

    def _iter_results(
        self, path: str, params: list[tuple[str, str]] | None = None, *, kind: Kind = "read"
    ) -> Iterator[dict[str, Any]]:
        for page in self._iter_pages(path, params or [], kind=kind):
            for item in page["results"]:
                if isinstance(item, dict):
                    yield item

    # ------------------------------------------------------------------ contacts: reads

    def iter_contacts(
        self,
        *,
        modified_gte: datetime | None = None,
        modified_gt: datetime | None = None,
        modified_lte: datetime | None = None,
        modified_lt: datetime | None = None,
        created_gte: datetime | None = None,
        created_gt: datetime | None = None,
        created_lte: datetime | None = None,
        created_lt: datetime | None = None,
        email: str | None = None,
        phone: str | None = None,
        query: str | None = None,
        tag: str | None = None,
        on_page: Callable[[PageInfo], None] | None = None,
        **filters: str,
    ) -> Iterator[dict[str, Any]]:
        """Every contact (list-item shape), optionally filtered, all pages.

        Clientify silently ignores filters it does not support (200 with the whole account), so
        every filter is also checked here on every record and non-matching ones are dropped:
        dates exactly, ``email`` exactly (case-insensitive, any of ``emails[]``), ``phone`` by
        digits (a country prefix may differ), ``tag`` exactly, ``cf_<name>`` exactly, ``query``
        loosely (every word appears somewhere). Other ``**filters`` are sent as given and
        cannot be verified. Records without the date being filtered on are kept (unknown).
        """
        params: list[tuple[str, str]] = []
        checks: list[Callable[[dict[str, Any]], bool]] = []
        bounds = {
            ("modified", "gte"): modified_gte,
            ("modified", "gt"): modified_gt,
            ("modified", "lte"): modified_lte,
            ("modified", "lt"): modified_lt,
            ("created", "gte"): created_gte,
            ("created", "gt"): created_gt,
            ("created", "lte"): created_lte,
            ("created", "lt"): created_lt,
        }
        for (field, op), bound in bounds.items():
            if bound is None:
                continue
            params.append(
                (f"{field}[{op}]", format_filter_datetime(bound, round_up=op in ("lte", "lt")))
            )
            checks.append(
                lambda c, f=field, o=op, b=bound: datetime_bound_matches(c, f, o, b)  # type: ignore[misc]
            )
        lookup = False
        if email is not None:
            wanted_email = normalize_email(email)
            params.append(("email", email.strip()))
            checks.append(lambda c: wanted_email in contact_emails(c))
            lookup = True
        if phone is not None:
            params.append(("phone", phone.strip()))
            checks.append(lambda c: any(phone_matches(p, phone) for p in contact_phones(c)))
            lookup = True
        if query is not None:
            params.append(("query", query.strip()))
            checks.append(lambda c: query_matches(c, query))
            lookup = True
        if tag is not None:
            wanted_tag = tag.strip().casefold()
            params.append(("tag", tag.strip()))
            checks.append(lambda c: wanted_tag in {t.casefold() for t in contact_tags(c)})
            lookup = True
        for key, value in filters.items():
            params.append((key, str(value)))
            if key.startswith("cf_") and len(key) > 3:
                checks.append(lambda c, n=key[3:], v=value: custom_field_matches(c, n, v))  # type: ignore[misc]
                lookup = True
            else:
                logger.debug("filter %s is sent but cannot be verified client-side", key)
        yield from self._filtered(
            "/contacts/", params, checks, kind="lookup" if lookup else "read", on_page=on_page
        )

    def _filtered(
        self,
        path: str,
        params: list[tuple[str, str]],
        checks: list[Callable[[dict[str, Any]], bool]],
        *,
        kind: Kind,
        on_page: Callable[[PageInfo], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        received = kept_total = 0
        for number, page in enumerate(self._iter_pages(path, params, kind=kind), start=1):
            items = [r for r in page["results"] if isinstance(r, dict)]
            kept = [r for r in items if all(check(r) for check in checks)]
            received += len(items)
            kept_total += len(kept)
            if on_page is not None:
                count = page.get("count")
                on_page(
                    PageInfo(
                        page=number,
                        results=len(items),
                        kept=len(kept),
                        total_kept=kept_total,
                        count=count if isinstance(count, int) else None,
                    )
                )
            yield from kept
        if received != kept_total:
            logger.info(
                "Clientify GET %s: dropped %d of %d records outside the filter "
                "(the server ignored or loosened it)",
                path,
                received - kept_total,
                received,
            )

    def get_contact(self, contact_id: int | str) -> dict[str, Any]:
        """The contact detail (``GET /contacts/{id}/``); ClientifyNotFoundError when absent."""
        result: dict[str, Any] = self._request(
            "GET", self._url(f"/contacts/{_object_id(contact_id)}/"), kind="read"
        )
        return result

    def find_by_custom_field(
        self, name: str, value: object, *, scan_if_ignored: bool = True
    ) -> list[dict[str, Any]]:
        """Contacts whose custom field ``name`` equals ``value`` exactly.

        Sends ``cf_<name>=<value>`` (documented, never confirmed live) and checks the value on
        every result. When the server ignores that filter it answers with the whole account:
        the results are still correct, but it is a full scan, so it is logged once and
        :attr:`custom_field_filter_supported` turns False (use :class:`ContactIndex` then).
        With ``scan_if_ignored=False`` a :class:`ClientifyError` is raised instead of scanning.
        """
        wanted = str(value).strip() if value is not None else ""
        if not wanted:
            raise ValueError("find_by_custom_field needs a non-empty value")
        if self._cf_filter_supported is False and not scan_if_ignored:
            raise self._cf_ignored_error(name)
        found: list[dict[str, Any]] = []
        pages = self._iter_pages("/contacts/", [(f"cf_{name}", wanted)], kind="lookup")
        for number, page in enumerate(pages, start=1):
            items = [r for r in page["results"] if isinstance(r, dict)]
            matching = [r for r in items if custom_field_matches(r, name, wanted)]
            if number == 1:
                self._note_cf_filter(name, honoured=len(matching) == len(items))
                if self._cf_filter_supported is False and not scan_if_ignored:
                    raise self._cf_ignored_error(name)
            found.extend(matching)
        return found

    def _note_cf_filter(self, name: str, *, honoured: bool) -> None:
        with self._lock:
            previous = self._cf_filter_supported
            if honoured:
                if previous is None:
                    self._cf_filter_supported = True
                return
            self._cf_filter_supported = False
        if previous is not False:
            logger.warning(
                "Clientify ignored the filter cf_%s (it answered with non-matching contacts): "
                "each find_by_custom_field is now a verified full scan; use ContactIndex",
                name,
            )

    def _cf_ignored_error(self, name: str) -> ClientifyError:
        return ClientifyError(
            f"GET /contacts/?cf_{name}=: Clientify ignores custom-field filters on this account; "
            "look contacts up with ContactIndex instead",
            method="GET",
            path="/contacts/",
        )

    @property
    def custom_field_filter_supported(self) -> bool | None:
        """Whether ``cf_<name>=`` filtered on the server (None until first tried)."""
        return self._cf_filter_supported

    def build_contact_index(
        self,
        *,
        field: str = "factusol_id",
        on_page: Callable[[PageInfo], None] | None = None,
    ) -> ContactIndex:
        """One paged scan of every contact into a :class:`ContactIndex`."""
        return ContactIndex.build(self.iter_contacts(on_page=on_page), field=field)

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
        """
        if cache is None:
            return self.build_contact_index(field=field, on_page=on_page)
        where = "PostgreSQL" if is_database_url(cache) else str(cache)
        target: str | Path = str(cache) if is_database_url(cache) else Path(cache)
        try:
            return self._refresh_cache(field, target, rescan_after, overlap, on_page)
        except cache_errors(target) as exc:
            # Locked by another run for too long, unreachable or unwritable: scan on our own.
            logger.warning(
                "contact cache %s not usable (%s): one full scan instead",
                where,
                type(exc).__name__,
            )
            return self.build_contact_index(field=field, on_page=on_page)

    def _refresh_cache(
        self,
        field: str,
        cache: str | Path,
        rescan_after: timedelta,
        overlap: timedelta,
        on_page: Callable[[PageInfo], None] | None,
    ) -> ContactIndex:
        scope = self._account_fingerprint()
        try:
            index = ContactIndex(field=field, path=cache, scope=scope)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) or not isinstance(cache, Path):
                raise
            logger.warning("contact cache %s is damaged (%s): rebuilding it", cache, exc)
            cache.unlink(missing_ok=True)
            index = ContactIndex(field=field, path=cache, scope=scope)
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

    def refresh_contact_index(self, index: ContactIndex, *, modified_gte: datetime) -> int:
        """Re-index the contacts modified since ``modified_gte``; returns how many."""
        count = 0
        for contact in self.iter_contacts(modified_gte=modified_gte):
            index.add(contact)
            count += 1
        return count

    # ------------------------------------------------------------------ contacts: writes

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

    def create_contact(
        self, body: Mapping[str, Any], *, dedupe_field: str | None = "factusol_id"
    ) -> dict[str, Any]:
        """``POST /contacts/``; returns the created detail (keep its ``id`` at once).

        A repeated POST creates a second contact, so after a 5xx/timeout the client looks the
        contact up by ``dedupe_field`` (when the body sets that custom field) before resending;
        without it a :class:`ClientifyRetryError` with ``maybe_applied=True`` is raised.
        """
        recheck = after_resend = None
        link = self._custom_field_in_body(body, dedupe_field) if dedupe_field else None
        if dedupe_field and link:

            def recheck() -> dict[str, Any] | None:
                found = self.find_by_custom_field(dedupe_field, link)
                return found[0] if len(found) == 1 else None

            def after_resend(created: dict[str, Any]) -> dict[str, Any]:
                # The first POST may have landed after the recheck: keep the older contact,
                # delete the one the resend has just made (both carry this run's link).
                found = self.find_by_custom_field(dedupe_field, link)
                others = [c for c in found if c.get("id") != created.get("id")]
                if not others or created.get("id") is None:
                    return created
                logger.warning(
                    "Clientify POST /contacts/: the first attempt was applied late; deleting "
                    "the duplicate %s the resend created, keeping %s",
                    created.get("id"),
                    others[0].get("id"),
                )
                self.delete_contact(created["id"])
                return others[0]

        return self._create("/contacts/", body, recheck=recheck, after_resend=after_resend)

    @staticmethod
    def _custom_field_in_body(body: Mapping[str, Any], name: str) -> str | None:
        for entry in body.get("custom_fields") or []:
            if isinstance(entry, Mapping) and entry.get("field") == name:
                value = entry.get("value")
                return str(value).strip() or None if value is not None else None
        return None

    def update_contact(self, contact_id: int | str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /contacts/{id}/``: a partial update in v1 (fields left out are kept).

        Do not send ``emails``/``phones``/``addresses`` lists here (append or replace is
        unknown); use the sub-resource methods.
        """
        result: dict[str, Any] = self._request(
            "PUT", self._url(f"/contacts/{_object_id(contact_id)}/"), kind="write", body=body
        )
        return result

    def delete_contact(self, contact_id: int | str) -> None:
        """``DELETE /contacts/{id}/``."""
        self._delete(f"/contacts/{_object_id(contact_id)}/")

    def _delete(self, path: str) -> None:
        self._request("DELETE", self._url(path), kind="write", missing_ok=True)

    def _sub(self, contact_id: int | str, name: str, item_id: int | str | None = None) -> str:
        path = f"/contacts/{_object_id(contact_id)}/{name}/"
        return path + f"{_object_id(item_id)}/" if item_id is not None else path

    def _sub_list(self, contact_id: int | str, name: str) -> list[dict[str, Any]]:
        return list(self._iter_results(self._sub(contact_id, name), kind="read"))

    def list_emails(self, contact_id: int | str) -> list[dict[str, Any]]:
        """``GET /contacts/{id}/emails/`` (all pages)."""
        return self._sub_list(contact_id, "emails")

    def list_phones(self, contact_id: int | str) -> list[dict[str, Any]]:
        """``GET /contacts/{id}/phones/`` (all pages)."""
        return self._sub_list(contact_id, "phones")

    def list_addresses(self, contact_id: int | str) -> list[dict[str, Any]]:
        """``GET /contacts/{id}/addresses/`` (all pages)."""
        return self._sub_list(contact_id, "addresses")

    def list_tags(self, contact_id: int | str) -> list[dict[str, Any]]:
        """``GET /contacts/{id}/tags/`` (all pages)."""
        return self._sub_list(contact_id, "tags")

    def _add_sub(
        self,
        contact_id: int | str,
        name: str,
        body: dict[str, Any],
        same: Callable[[dict[str, Any]], bool],
    ) -> dict[str, Any]:
        def recheck() -> dict[str, Any] | None:
            return next((i for i in self._sub_list(contact_id, name) if same(i)), None)

        return self._create(self._sub(contact_id, name), body, recheck=recheck)

    def add_email(self, contact_id: int | str, email: str, type: int = 4) -> dict[str, Any]:
        """Add an e-mail (types: 1 Work, 2 Personal, 3 Other, 4 Main); returns it with its id."""
        wanted = normalize_email(email)
        return self._add_sub(
            contact_id,
            "emails",
            {"email": email, "type": type},
            lambda i: normalize_email(i.get("email")) == wanted,
        )

    def delete_email(self, contact_id: int | str, email_id: int | str) -> None:
        """Delete one e-mail of a contact."""
        self._delete(self._sub(contact_id, "emails", email_id))

    def add_phone(self, contact_id: int | str, phone: str, type: int = 1) -> dict[str, Any]:
        """Add a phone (types: 1 Main, 2 Mobile, 3 Work, 4 Home, 5 Fax, 6 Other)."""
        return self._add_sub(
            contact_id,
            "phones",
            {"phone": phone, "type": type},
            lambda i: str(i.get("phone", "")).strip() == phone.strip(),
        )

    def delete_phone(self, contact_id: int | str, phone_id: int | str) -> None:
        """Delete one phone of a contact."""
        self._delete(self._sub(contact_id, "phones", phone_id))

    def add_address(self, contact_id: int | str, address: Mapping[str, Any]) -> dict[str, Any]:
        """Add an address ``{type, street, city, state, country, postal_code}``."""
        body = dict(address)
        keys = ("street", "city", "postal_code", "country")

        def same(item: dict[str, Any]) -> bool:
            return all(str(item.get(k) or "") == str(body.get(k) or "") for k in keys)

        return self._add_sub(contact_id, "addresses", body, same)

    def delete_address(self, contact_id: int | str, address_id: int | str) -> None:
        """Delete one address of a contact."""
        self._delete(self._sub(contact_id, "addresses", address_id))

    def add_tag(self, contact_id: int | str, name: str) -> dict[str, Any]:
        """Add a tag by name."""
        wanted = name.strip()
        return self._add_sub(
            contact_id,
            "tags",
            {"name": wanted},
            lambda i: str(i.get("name", "")).strip().casefold() == wanted.casefold(),
        )

    def delete_tag(self, contact_id: int | str, tag_id: int | str) -> None:
        """Remove one tag (by the id ``list_tags`` gives) from a contact."""
        self._delete(self._sub(contact_id, "tags", tag_id))

    # ------------------------------------------------------------------ custom fields

    def list_custom_fields(self) -> list[dict[str, Any]]:
        """Every custom-field definition of the account (all pages, all content types)."""
        return list(self._iter_results("/custom-fields/", kind="read"))

    def list_contact_custom_fields(self) -> list[dict[str, Any]]:
        """Definitions on contacts (content_type ``contact``/``contacts``/``contacto``…)."""
        return [d for d in self.list_custom_fields() if is_contact_field_definition(d)]

    def ensure_custom_field(self, name: str = "factusol_id") -> dict[str, Any]:
        """The contact custom-field definition ``name``, created as a text field when missing.

        Creating a definition through the API is undocumented: on a 4xx a
        :class:`ClientifyCustomFieldError` tells the user to create it by hand.
        """
        name = name.strip()
        if not name:
            raise ValueError("custom field name is empty")
        with self._cf_lock:  # several writer threads must not create it twice
            if name in self._cf_definitions:
                return self._cf_definitions[name]
            definition = self._find_definition(name)
            if definition is None:
                definition = self._create_definition(name)
            self._cf_definitions[name] = definition
            return definition

    def _find_definition(self, name: str) -> dict[str, Any] | None:
        definitions = self.list_contact_custom_fields()
        for definition in definitions:
            if str(definition.get("name", "")).strip() == name:
                self._warn_if_not_text(definition)
                return definition
        for definition in definitions:
            if str(definition.get("name", "")).strip().casefold() == name.casefold():
                logger.warning(
                    "custom field %r not found; using %r (same name, other case)",
                    name,
                    definition.get("name"),
                )
                return definition
        return None

    @staticmethod
    def _warn_if_not_text(definition: Mapping[str, Any]) -> None:
        field_type = definition.get("field_type")
        if field_type not in (TEXT_FIELD_TYPE, str(TEXT_FIELD_TYPE), "text", None):
            logger.warning(
                "custom field %r has field_type %r, not text (3): values may be rejected",
                definition.get("name"),
                field_type,
            )

    def _create_definition(self, name: str) -> dict[str, Any]:
        body = {"name": name, "content_type": "contacts", "field_type": TEXT_FIELD_TYPE}
        manual = (
            f"Create a text custom field named '{name}' on contacts by hand in Clientify "
            "(Settings > Custom fields), then run again."
        )
        try:
            created = self._create(
                "/custom-fields/", body, recheck=lambda: self._find_definition(name)
            )
        except (ClientifyValidationError, ClientifyNotFoundError, ClientifyAuthError) as exc:
            # A 401 would have failed the listing just before; a 403 here means this key may
            # read but not define fields, which the user can fix by hand.
            if isinstance(exc, ClientifyAuthError) and exc.status != 403:
                raise
            reason = (
                format_messages(exc.messages)
                if isinstance(exc, ClientifyValidationError)
                else str(exc)
            )
            raise ClientifyCustomFieldError(
                f"Could not create the contact custom field '{name}' "
                f"(POST /custom-fields/ -> {exc.status}: {reason}). {manual}",
                method="POST",
                path=exc.path,
                status=exc.status,
            ) from None
        logger.info("created the contact custom field %r (text)", name)
        if not isinstance(created, dict) or not created.get("name"):
            created = {"name": name, "content_type": "contacts", "field_type": TEXT_FIELD_TYPE}
        return created

    def set_custom_field(self, contact_id: int | str, name: str, value: object) -> dict[str, Any]:
        """Write one custom-field value (``PUT custom_fields=[{field, value}]``, merged by name).

        The API rejects null and (probably) empty values, so those raise ValueError here.
        """
        text = str(value).strip() if value is not None else ""
        if not text:
            raise ValueError("custom field values must be non-empty (the API rejects null/empty)")
        return self.update_contact(contact_id, {"custom_fields": [{"field": name, "value": text}]})

    def get_custom_field(self, contact: Mapping[str, Any] | int | str, name: str) -> str | None:
        """A custom field's text value, from a contact dict or (given an id) its detail."""
        record = contact if isinstance(contact, Mapping) else self.get_contact(contact)
        return custom_field_text(record, name)

    # ------------------------------------------------------------------ account

    def my_account(self) -> dict[str, Any] | None:
        """``results[0]`` of ``GET /settings/my-account/`` (also a credentials check)."""
        data = self._request("GET", self._url("/settings/my-account/"), kind="read")
        results = data.get("results") if isinstance(data, dict) else None
        if isinstance(results, list) and results and isinstance(results[0], dict):
            first: dict[str, Any] = results[0]
            return first
        return None

    def account_country(self) -> str | None:
        """The account's ISO alpha-2 country (what phones are normalized by), or None.

        None when the endpoint has no usable answer: the caller falls back (users' country,
        then its ``country`` setting). Auth errors propagate.
        """
        if self._country_known:
            return self._country
        account = self._account_settings()
        country = account.get("country") if account else None
        value = country.strip().upper() if isinstance(country, str) else ""
        self._country = value if len(value) == 2 and value.isalpha() else None
        self._country_known = True
        return self._country

    def account_time_zone(self) -> str | None:
        """The account's IANA time zone (``results[0].time_zone``, e.g. "Europe/Madrid"), or
        None when the answer has none or names no zone this machine knows."""
        account = self._account_settings()
        value = account.get("time_zone") if account else None
        if not isinstance(value, str) or not value.strip():
            return None
        try:
            return ZoneInfo(value.strip()).key
        except (ZoneInfoNotFoundError, ValueError):
            logger.warning("account time zone %r is not an IANA zone; ignored", value[:40])
            return None

    def _account_settings(self) -> dict[str, Any] | None:
        """``my_account()`` read once per client; None when it has no usable answer."""
        if self._account_known:
            return self._account
        try:
            self._account = self.my_account()
        except (ClientifyNotFoundError, ClientifyValidationError) as exc:
            logger.warning("account settings unavailable: %s", exc)
            self._account = None
        self._account_known = True
        return self._account

    def account_fingerprint(self) -> str:
        """A stable id of the account (API URL and key, hashed): what a cache or a ledger
        belongs to, without storing the key."""
        return self._account_fingerprint()
