"""HTTP client for the FactuSOL cloud API (``api.sdelsol.com``).

The API is a table-level SQL gateway, not a REST API (reference §1): every call is a POST with a
JSON body, every answer an envelope ``{"resultado": …, "respuesta": "OK" | <code>}``, nearly always
with HTTP 200 (reference §4, §8). This module owns login and token renewal, the envelope, retries,
row decoding and the F_CLI helpers used by tap-factusol and target-factusol.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import ipaddress
import json
import logging
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import requests

from factusol_api.columns import F_CLI_COLUMNS, F_CLI_PRIMARY_KEY, TABLE_COLUMNS, ColumnSpec
from factusol_api.errors import (
    FactusolAuthError,
    FactusolDatabaseMissingError,
    FactusolError,
    FactusolRecordError,
    FactusolRecordExistsError,
    FactusolTransientError,
)
from factusol_api.sql import sql_columns, sql_identifier, sql_int

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.sdelsol.com"

ROUTE_LOGIN = "/login/Autenticar"
ROUTE_LOAD_TABLE = "/admin/CargaTabla"
ROUTE_QUERY = "/admin/LanzarConsulta"
ROUTE_INSERT = "/admin/EscribirRegistro"
ROUTE_UPDATE = "/admin/ActualizarRegistro"

# Renew this long before the JWT's exp; without exp assume the token lasts this long
# (tokens live ~3 minutes, reference §3.2 and §11).
TOKEN_RENEW_MARGIN_S = 30.0
TOKEN_DEFAULT_TTL_S = 150.0
# ejercicio="auto" looks back at most this many years (reference §11 "Year rollover").
EJERCICIO_PROBE_YEARS = 5

_INT_RANGES = {2: (-(2**15), 2**15 - 1), 4: (-(2**31), 2**31 - 1)}
_YEAR_RE = re.compile(r"[0-9]{4}")
# Write records must not carry a NUL: it cannot be stored in an Access/SQL Server text column.
_NUL = "\x00"


@dataclass(frozen=True)
class FactusolCredentials:
    """The four login fields of ``POST /login/Autenticar`` (reference §3.1).

    ``password`` is the plain API password; the client Base64-encodes it. It never appears in
    ``repr()``.
    """

    codigo_fabricante: str
    codigo_cliente: str
    base_datos: str
    password: str = field(repr=False)

    def describe(self) -> str:
        """Name this credential set for messages, without the password."""
        return (
            f"fabricante={self.codigo_fabricante} cliente={self.codigo_cliente} "
            f"base_datos={self.base_datos}"
        )


def rows_to_dicts(resultado: Any) -> list[dict[str, Any]]:
    """Turn a read ``resultado`` into one dict per row.

    Rows arrive as lists of ``{"columna", "dato"}`` cells; zero rows arrive as ``null``, not ``[]``
    (reference §4). A bare single row (a list of cells) is accepted too: that is the inferred shape
    of ``LeerRegistro`` (reference §5.3).
    """
    if resultado is None or resultado == "":
        return []
    if not isinstance(resultado, list):
        raise FactusolError(f"unexpected read result of type {type(resultado).__name__}")
    if resultado and isinstance(resultado[0], dict):
        resultado = [resultado]
    rows: list[dict[str, Any]] = []
    for row in resultado:
        if not isinstance(row, list):
            raise FactusolError(f"unexpected row of type {type(row).__name__} in read result")
        rows.append({cell["columna"]: cell.get("dato") for cell in row})
    return rows


def check_api_url(api_url: str) -> str:
    """Return ``api_url`` without a trailing slash, after checking it is HTTPS or loopback.

    Raises:
        ValueError: the scheme is not https and the host is not a loopback address.
    """
    parts = urlsplit(api_url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return api_url.rstrip("/")
    if parts.scheme == "http" and _is_loopback(host):
        return api_url.rstrip("/")
    # Show scheme and host only: a URL may carry user:password@.
    shown = f"{parts.scheme or '(no scheme)'}://{host}"
    raise ValueError(
        f"api_url must use https:// (plain http:// is only allowed on loopback hosts "
        f"127.0.0.0/8, ::1 and localhost, e.g. a local sandbox); got {shown}"
    )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _jwt_exp(token: str) -> float | None:
    """Read ``exp`` from a JWT payload without verifying the signature (we only need timing)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    segment = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        payload = json.loads(base64.urlsafe_b64decode(segment.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)


def _retry_after_seconds(value: str | None, now: float) -> float | None:
    """Parse ``Retry-After`` (seconds or an HTTP date) into a delay in seconds."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - now)


class _Retry(Exception):
    """Internal: this attempt failed transiently."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Relogin(Exception):
    """Internal: the token was refused; log in again."""


class FactusolClient:
    """Client for one FactuSOL company database (one credential set).

    Args:
        credentials: The login fields.
        api_url: Base URL. HTTPS is required except on loopback hosts (for the sandbox).
        ejercicio: Fiscal year as 4 digits, or ``"auto"``: the current year if its database
            exists, else the newest of the previous 5 years that exists (a warning names it).
        timeout: Seconds per HTTP request.
        max_retries: Retries of a transient failure before ``FactusolTransientError``.
        clock: Returns epoch seconds; drives token renewal and the current year.
        sleep: Called with the backoff delay; tests pass a recorder and never sleep.
        backoff_base: First backoff delay in seconds; doubles on each retry.
        max_backoff: Cap on any single delay, including a server's ``Retry-After``.
        timezone: IANA zone used to decide which year is "current" for ``ejercicio="auto"``.
        session: A ``requests.Session`` to reuse; one is created otherwise.

    Thread-safety: token renewal and the ``ejercicio`` probe are each guarded by a lock, so one
    client may be shared by worker threads. ``calls`` counts HTTP requests by kind (``login``,
    ``read``, ``query``, ``write``), retries included.
    """

    def __init__(
        self,
        credentials: FactusolCredentials,
        *,
        api_url: str = DEFAULT_API_URL,
        ejercicio: str | int = "auto",
        timeout: float = 30.0,
        max_retries: int = 5,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        backoff_base: float = 0.5,
        max_backoff: float = 60.0,
        timezone: str = "Europe/Madrid",
        session: requests.Session | None = None,
    ) -> None:
        self._credentials = credentials
        self._api_url = check_api_url(api_url)
        ejercicio = str(ejercicio).strip()
        if ejercicio.lower() != "auto" and not _YEAR_RE.fullmatch(ejercicio):
            raise ValueError(f"ejercicio must be 'auto' or a 4-digit year, got {ejercicio!r}")
        self._ejercicio_setting = ejercicio.lower() if ejercicio.lower() == "auto" else ejercicio
        self._ejercicio: str | None = None if ejercicio.lower() == "auto" else ejercicio
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self._timeout = float(timeout)
        self._max_retries = int(max_retries)
        self._clock = clock
        self._sleep = sleep
        self._backoff_base = float(backoff_base)
        self._max_backoff = float(max_backoff)
        self._tz = ZoneInfo(timezone)
        self._session = session if session is not None else requests.Session()
        self._token: str | None = None
        self._token_renew_at = 0.0
        self._token_lock = threading.Lock()
        self._ejercicio_lock = threading.Lock()
        self._calls_lock = threading.Lock()
        self.calls: Counter[str] = Counter()

    def __repr__(self) -> str:
        return (
            f"FactusolClient(api_url={self._api_url!r}, "
            f"base_datos={self._credentials.base_datos!r}, ejercicio={self._ejercicio_setting!r})"
        )

    def __enter__(self) -> FactusolClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    @property
    def api_url(self) -> str:
        """The base URL in use."""
        return self._api_url

    # ------------------------------------------------------------------ ejercicio

    @property
    def ejercicio(self) -> str:
        """The fiscal year used for every call, resolved on first use when ``"auto"``."""
        if self._ejercicio is None:
            with self._ejercicio_lock:
                if self._ejercicio is None:
                    self._ejercicio = self._resolve_ejercicio()
        return self._ejercicio

    def _resolve_ejercicio(self) -> str:
        # Each year is its own database and the new one only exists once someone opens it in
        # FactuSOL, often weeks into January (reference §11 "Year rollover").
        current = dt.datetime.fromtimestamp(self._clock(), tz=self._tz).year
        tried: list[str] = []
        for year in range(current, current - EJERCICIO_PROBE_YEARS - 1, -1):
            candidate = str(year)
            tried.append(candidate)
            try:
                self._post(
                    ROUTE_QUERY,
                    {"ejercicio": candidate, "consulta": "SELECT TOP 1 CODCLI FROM F_CLI"},
                    kind="query",
                )
            except FactusolDatabaseMissingError:
                logger.info("FactuSOL ejercicio %s does not exist (BDNoExiste)", candidate)
                continue
            if year != current:
                logger.warning(
                    "FactuSOL ejercicio %s does not exist yet; using %s, the newest that does",
                    current,
                    candidate,
                )
            else:
                logger.info("FactuSOL ejercicio %s", candidate)
            return candidate
        raise FactusolDatabaseMissingError(
            f"no FactuSOL database for ejercicio {', '.join(tried)} "
            f"({self._credentials.describe()})",
            code="BDNoExiste",
            route=ROUTE_QUERY,
        )

    # ------------------------------------------------------------------ auth

    def _get_token(self) -> str:
        with self._token_lock:
            if self._token is None or self._clock() >= self._token_renew_at:
                self._login_locked()
            assert self._token is not None
            return self._token

    def _invalidate_token(self, token: str) -> None:
        with self._token_lock:
            # Another thread may already have replaced it.
            if self._token == token:
                self._token = None

    def _login_locked(self) -> None:
        creds = self._credentials
        payload = {
            "codigoFabricante": creds.codigo_fabricante,
            "codigoCliente": creds.codigo_cliente,
            "baseDatosCliente": creds.base_datos,
            # The API wants the password Base64-encoded (reference §3.1).
            "password": base64.b64encode(creds.password.encode("utf-8")).decode("ascii"),
        }
        token = self._post(ROUTE_LOGIN, payload, kind="login", login=True)
        if not isinstance(token, str) or not token:
            raise FactusolAuthError(
                f"FactuSOL login failed for {creds.describe()}: empty token",
                code="OK",
                route=ROUTE_LOGIN,
            )
        now = self._clock()
        exp = _jwt_exp(token)
        if exp is not None and exp > now:
            # 30 s before exp; a token shorter-lived than twice that renews at half its life
            self._token_renew_at = exp - min(TOKEN_RENEW_MARGIN_S, (exp - now) / 2)
        else:
            # No exp, or one already in the past by our clock (skew): fall back to a short TTL;
            # an early "Unauthorized" still triggers one re-login.
            self._token_renew_at = now + TOKEN_DEFAULT_TTL_S
        self._token = token
        logger.debug("FactuSOL login OK for %s", creds.describe())

    # ------------------------------------------------------------------ transport

    def _count(self, kind: str) -> None:
        with self._calls_lock:
            self.calls[kind] += 1

    def _post(
        self, route: str, payload: Mapping[str, Any], *, kind: str, login: bool = False
    ) -> Any:
        """POST ``payload`` to ``route`` and return ``resultado``, with retries and re-login."""
        attempt = 0
        relogged = False
        while True:
            token = None if login else self._get_token()
            try:
                return self._attempt(route, payload, kind=kind, token=token)
            except _Relogin as exc:
                if login or relogged or token is None:
                    raise FactusolAuthError(
                        f"FactuSOL {route}: token refused again right after a fresh login "
                        f"({self._credentials.describe()})",
                        code=str(exc),
                        route=route,
                    ) from None
                relogged = True
                logger.info("FactuSOL %s: token refused (%s); logging in again", route, exc)
                self._invalidate_token(token)
            except _Retry as exc:
                # after a pause, a refusal is no longer "right after a fresh login"
                relogged = False
                attempt += 1
                if attempt > self._max_retries:
                    raise FactusolTransientError(
                        f"FactuSOL {route}: {exc.reason}; gave up after {attempt} attempts",
                        code=exc.reason,
                        route=route,
                    ) from None
                delay = self._backoff_delay(attempt, exc.retry_after)
                logger.warning(
                    "FactuSOL %s: %s; retry %d/%d in %.1f s",
                    route,
                    exc.reason,
                    attempt,
                    self._max_retries,
                    delay,
                )
                self._sleep(delay)

    def _backoff_delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self._max_backoff)
        return float(min(self._backoff_base * 2 ** (attempt - 1), self._max_backoff))

    def _attempt(
        self, route: str, payload: Mapping[str, Any], *, kind: str, token: str | None
    ) -> Any:
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self._count(kind)
        try:
            response = self._session.post(
                self._api_url + route, json=payload, headers=headers, timeout=self._timeout
            )
        except requests.Timeout:
            raise _Retry("timeout") from None
        except requests.ConnectionError:
            raise _Retry("connection error") from None

        status = response.status_code
        if status == 401:
            if token is None:
                raise FactusolAuthError(
                    f"FactuSOL login failed for {self._credentials.describe()}: HTTP 401",
                    code="HTTP 401",
                    route=route,
                )
            raise _Relogin("HTTP 401")
        if status == 429 or status >= 500:
            raise _Retry(
                f"HTTP {status}",
                _retry_after_seconds(response.headers.get("Retry-After"), self._clock()),
            )
        if status >= 400:
            raise FactusolError(
                f"FactuSOL {route}: HTTP {status}", code=f"HTTP {status}", route=route
            )
        try:
            body = response.json()
        except ValueError:
            raise FactusolError(
                f"FactuSOL {route}: HTTP {status} with a body that is not JSON",
                code=f"HTTP {status}",
                route=route,
            ) from None
        if not isinstance(body, dict):
            raise FactusolError(f"FactuSOL {route}: unexpected envelope", route=route)
        respuesta = body.get("respuesta")
        resultado = body.get("resultado")
        if token is None:
            # Login: anything but OK with a token is a credential problem (reference §3.2).
            if respuesta != "OK" or not resultado:
                raise FactusolAuthError(
                    f"FactuSOL login failed for {self._credentials.describe()}: "
                    f"respuesta {respuesta!r}",
                    code=str(respuesta),
                    route=route,
                )
            return resultado
        if respuesta == "OK":
            return resultado
        if respuesta == "Unauthorized":
            # Expired token comes back as HTTP 200 + "Unauthorized" (reference §3.4).
            raise _Relogin("Unauthorized")
        if respuesta == "KO":
            # Bare KO was seen on a call that worked a minute earlier: transient (reference §8.2).
            raise _Retry("respuesta KO")
        raise _error_for(str(respuesta), route)

    # ------------------------------------------------------------------ generic routes

    def load_table(self, table: str, filtro: str = "1=1") -> list[dict[str, Any]]:
        """Read every row of ``table`` matching ``filtro`` (``CargaTabla``).

        ``filtro`` is raw SQL after ``WHERE``: build its literals with :func:`sql_literal` and
        :func:`sql_int`. An empty filter would return no rows at all (reference §5.1), so it is
        refused.
        """
        sql_identifier(table)
        if not filtro or not filtro.strip():
            raise ValueError("filtro must not be empty; use '1=1' for all rows")
        resultado = self._post(
            ROUTE_LOAD_TABLE,
            {"ejercicio": self.ejercicio, "tabla": table, "filtro": filtro},
            kind="read",
        )
        return rows_to_dicts(resultado)

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run a SELECT (``LanzarConsulta``); literals must come from the ``sql_*`` helpers."""
        if not sql.lstrip()[:7].upper().startswith("SELECT"):
            raise ValueError("LanzarConsulta only accepts SELECT statements")
        resultado = self._post(
            ROUTE_QUERY, {"ejercicio": self.ejercicio, "consulta": sql}, kind="query"
        )
        return rows_to_dicts(resultado)

    def insert(self, table: str, record: Mapping[str, Any]) -> None:
        """Insert one record (``EscribirRegistro``); the record carries the primary key.

        For tables the client knows (F_CLI) every column is checked and fitted, as in
        :meth:`insert_client`.
        """
        registro = self._registro(table, record, operation="insert")
        self._post(
            ROUTE_INSERT,
            {"ejercicio": self.ejercicio, "tabla": table, "registro": registro},
            kind="write",
        )

    def update(self, table: str, record: Mapping[str, Any]) -> None:
        """Update one record by primary key (``ActualizarRegistro``, PK inside ``record``)."""
        registro = self._registro(table, record, operation="update")
        self._post(
            ROUTE_UPDATE,
            {"ejercicio": self.ejercicio, "tabla": table, "registro": registro},
            kind="write",
        )

    # ------------------------------------------------------------------ F_CLI helpers

    def iter_client_pages(
        self,
        *,
        page_size: int = 500,
        columns: Sequence[str] | None = None,
        after_code: int = 0,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield F_CLI rows one keyset page at a time, in ascending CODCLI order.

        Each page is ``SELECT TOP n <cols> FROM F_CLI WHERE CODCLI > <last> ORDER BY CODCLI``
        (``LanzarConsulta``): there is no LIMIT/OFFSET (reference §5.1), and keyset pages stay
        correct while rows are inserted. Pages are fetched lazily, so memory holds one page.
        ``columns=None`` selects ``*``; otherwise CODCLI is always included.
        """
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ValueError("page_size must be a positive integer")
        if columns is None:
            projection = "*"
        else:
            names = sql_columns(columns, F_CLI_COLUMNS)
            if F_CLI_PRIMARY_KEY not in names:
                names.insert(0, F_CLI_PRIMARY_KEY)
            projection = ", ".join(dict.fromkeys(names))
        last = int(sql_int(after_code))
        first = True
        while True:
            # Safe: page_size and last are ints, projection is whitelisted column names.
            sql = f"SELECT TOP {page_size} {projection} FROM F_CLI WHERE CODCLI > {last}"  # noqa: S608
            rows = self.query(sql + " ORDER BY CODCLI")
            if not rows:
                if first and columns is not None:
                    self._check_projection_not_silently_empty(last, projection)
                return
            first = False
            high = max(int(sql_int(row.get(F_CLI_PRIMARY_KEY))) for row in rows)
            if high <= last:
                raise FactusolError(
                    f"keyset paging of F_CLI did not advance past CODCLI {last}", route=ROUTE_QUERY
                )
            yield rows
            if len(rows) < page_size:
                return
            last = high

    def _check_projection_not_silently_empty(self, last: int, projection: str) -> None:
        # A column the server lacks makes a read return null, not an error (reference §5.1):
        # tell that apart from "no rows" with a query that names only CODCLI.
        probe = self.query(f"SELECT TOP 1 CODCLI FROM F_CLI WHERE CODCLI > {last}")  # noqa: S608
        if probe:
            raise FactusolError(
                f"F_CLI read of columns {projection} returned no rows although F_CLI has "
                "rows; a column probably does not exist in this database",
                route=ROUTE_QUERY,
            )

    def iter_clients(
        self,
        *,
        page_size: int = 500,
        columns: Sequence[str] | None = None,
        after_code: int = 0,
    ) -> Iterator[dict[str, Any]]:
        """Yield F_CLI rows one by one in ascending CODCLI order (see :meth:`iter_client_pages`)."""
        for page in self.iter_client_pages(
            page_size=page_size, columns=columns, after_code=after_code
        ):
            yield from page

    def newest_clients(
        self, top: int, *, columns: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """The ``top`` most recently modified clients, newest first (one ``LanzarConsulta``).

        ``SELECT TOP n <cols> FROM F_CLI WHERE FUMCLI IS NOT NULL ORDER BY FUMCLI DESC,
        CODCLI DESC``: no date literal (their syntax is unconfirmed, reference §8.4 item 6); NULLs
        are filtered out whatever end they sort to (§9); the key ends the ORDER BY so ``TOP``
        never returns a tie group (Access returns every row tied at the cut, §9). ``columns=None``
        selects ``*``; otherwise CODCLI and FUMCLI are always included. The caller must check the
        order it got: the engine's date ordering is not confirmed.
        """
        size = int(sql_int(top))
        if size < 1:
            raise ValueError("top must be a positive integer")
        if columns is None:
            projection = "*"
        else:
            names = sql_columns(columns, F_CLI_COLUMNS)
            projection = ", ".join(dict.fromkeys([F_CLI_PRIMARY_KEY, "FUMCLI", *names]))
        # Safe: size is an int, projection is whitelisted column names.
        return self.query(
            f"SELECT TOP {size} {projection} FROM F_CLI WHERE FUMCLI IS NOT NULL "  # noqa: S608
            "ORDER BY FUMCLI DESC, CODCLI DESC"
        )

    def get_clients(self, codes: Iterable[int], *, batch_size: int = 500) -> list[dict[str, Any]]:
        """Fetch full F_CLI rows by CODCLI (``CargaTabla`` with ``CODCLI IN (…)``), sorted by code.

        Codes that do not exist are simply absent from the result.

        Raises:
            ValueError: a code is not an integer (checked before any call).
        """
        if batch_size < 1:
            raise ValueError("batch_size must be a positive integer")
        wanted = sorted({int(sql_int(code)) for code in codes})
        rows: list[dict[str, Any]] = []
        for start in range(0, len(wanted), batch_size):
            batch = wanted[start : start + batch_size]
            rows.extend(self.load_table("F_CLI", f"CODCLI IN ({', '.join(str(c) for c in batch)})"))
        rows.sort(key=lambda row: int(sql_int(row.get(F_CLI_PRIMARY_KEY))))
        return rows

    def max_client_code(self) -> int:
        """Return the highest CODCLI, 0 when F_CLI is empty (for ``MAX+1`` numbering, §5.4)."""
        rows = self.query("SELECT TOP 1 CODCLI FROM F_CLI ORDER BY CODCLI DESC")
        if not rows:
            return 0
        return int(sql_int(rows[0].get(F_CLI_PRIMARY_KEY)))

    def insert_client(self, row: Mapping[str, Any]) -> None:
        """Insert one F_CLI row; CODCLI is required (the API never assigns it, §5.4)."""
        self.insert("F_CLI", row)

    def update_client(self, row: Mapping[str, Any]) -> None:
        """Update one F_CLI row by CODCLI with the other columns of ``row``."""
        self.update("F_CLI", row)

    # ------------------------------------------------------------------ write preparation

    def _registro(
        self, table: str, record: Mapping[str, Any], *, operation: str
    ) -> list[dict[str, Any]]:
        sql_identifier(table)
        columns = TABLE_COLUMNS.get(table.upper())
        if columns is None:
            # A table we have no column list for: only check names are plain identifiers.
            registro = []
            for name, value in record.items():
                sql_identifier(name)
                registro.append({"columna": name, "dato": _generic_value(value)})
            if not registro:
                raise ValueError(f"{operation} into {table}: empty record")
            return registro
        return prepare_row(table.upper(), columns, record, operation=operation)


def prepare_row(
    table: str,
    columns: Mapping[str, ColumnSpec],
    record: Mapping[str, Any],
    *,
    operation: str,
) -> list[dict[str, Any]]:
    """Build a checked ``registro`` for a known table.

    Only existing columns are accepted (one unknown column fails the whole write, reference §5.4);
    text is cut to the column size with a warning naming column and key, never the value; dates
    are sent as ``YYYY-MM-DD`` (the one format with tested inserts, §5.4); ``None`` leaves a
    column out of the write.

    Raises:
        ValueError: unknown columns, a missing or non-integer key, or a value of the wrong type.
    """
    canonical = sql_columns(record.keys(), columns)
    values = dict(zip(canonical, record.values(), strict=True))
    if len(values) != len(canonical):
        raise ValueError(f"{operation} into {table}: a column is given twice")
    key_value = values.get(F_CLI_PRIMARY_KEY)
    if key_value is None:
        raise ValueError(f"{operation} into {table}: {F_CLI_PRIMARY_KEY} is required")
    code = int(sql_int(key_value))
    if code <= 0:
        raise ValueError(f"{operation} into {table}: {F_CLI_PRIMARY_KEY} must be positive")
    registro: list[dict[str, Any]] = []
    for name, value in values.items():
        if value is None:
            continue
        spec = columns[name]
        registro.append({"columna": name, "dato": _fit(spec, value, table=table, code=code)})
    if operation == "update" and len(registro) < 2:
        raise ValueError(f"update of {table} {code}: nothing to update besides the key")
    return registro


def _fit(spec: ColumnSpec, value: Any, *, table: str, code: int) -> Any:
    where = f"{table}.{spec.name} (CODCLI {code})"
    if spec.kind == "int":
        try:
            number = int(sql_int(int(value) if isinstance(value, bool) else value))
        except ValueError:
            raise ValueError(f"{where}: expected an integer") from None
        low, high = _INT_RANGES.get(spec.size or 4, _INT_RANGES[4])
        if not low <= number <= high:
            raise ValueError(f"{where}: integer out of range for the column")
        return number
    if spec.kind == "money":
        if isinstance(value, bool):
            raise ValueError(f"{where}: expected a number")
        try:
            number_f = float(Decimal(value) if isinstance(value, str) else value)
        except (ValueError, TypeError, ArithmeticError):
            raise ValueError(f"{where}: expected a number") from None
        if not math.isfinite(number_f):
            raise ValueError(f"{where}: expected a finite number")
        return number_f
    if spec.kind == "datetime":
        return _date_string(value, where)
    text = value if isinstance(value, str) else str(value)
    if _NUL in text:
        raise ValueError(f"{where}: text contains a NUL character")
    if spec.size is not None and len(text) > spec.size:
        logger.warning(
            "%s.%s truncated from %d to %d characters for CODCLI %s",
            table,
            spec.name,
            len(text),
            spec.size,
            code,
        )
        text = text[: spec.size]
    return text


def _date_string(value: Any, where: str) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return dt.date.fromisoformat(text).isoformat()
            return dt.datetime.fromisoformat(text.replace(" ", "T", 1)).date().isoformat()
        except ValueError:
            pass
    raise ValueError(f"{where}: expected a date (YYYY-MM-DD)")


def _generic_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _error_for(code: str, route: str) -> FactusolError:
    message = f"FactuSOL {route} answered {code}"
    if code == "BDExisteRegistro":
        return FactusolRecordExistsError(message, code=code, route=route)
    if code == "BDNoExiste":
        return FactusolDatabaseMissingError(message, code=code, route=route)
    if route in (ROUTE_INSERT, ROUTE_UPDATE):
        return FactusolRecordError(message, code=code, route=route)
    return FactusolError(message, code=code, route=route)
