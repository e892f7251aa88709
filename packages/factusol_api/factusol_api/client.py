"""HTTP client for the FactuSOL cloud API (``api.sdelsol.com``).

The API is a table-level SQL gateway, not a REST API (reference §1): every call is a POST with a
JSON body, every answer an envelope ``{"resultado": …, "respuesta": "OK" | <code>}``, nearly always
with HTTP 200 (reference §4, §8). This module owns login and token renewal, the envelope, retries,
row decoding; the F_CLI helpers used by tap-factusol and target-factusol are in
``client_table`` and the checking of written records in ``registro``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import ipaddress
import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import requests

from factusol_api.client_table import ClientTableMixin
from factusol_api.errors import (
    FactusolAuthError,
    FactusolDatabaseMissingError,
    FactusolError,
    FactusolRecordError,
    FactusolRecordExistsError,
    FactusolTransientError,
)
from factusol_api.registro import build_registro
from factusol_api.registro import prepare_row as prepare_row  # importable from here, as before
from factusol_api.routes import (
    ROUTE_INSERT,
    ROUTE_LOAD_TABLE,
    ROUTE_LOGIN,
    ROUTE_QUERY,
    ROUTE_UPDATE,
)
from factusol_api.sql import sql_identifier

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.sdelsol.com"


# Renew this long before the JWT's exp; without exp assume the token lasts this long
# (tokens live ~3 minutes, reference §3.2 and §11).
TOKEN_RENEW_MARGIN_S = 30.0
TOKEN_DEFAULT_TTL_S = 150.0
# ejercicio="auto" looks back at most this many years (reference §11 "Year rollover").
EJERCICIO_PROBE_YEARS = 5

_YEAR_RE = re.compile(r"[0-9]{4}")


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


class FactusolClient(ClientTableMixin):
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

    # ------------------------------------------------------------------ write preparation

    def _registro(
        self, table: str, record: Mapping[str, Any], *, operation: str
    ) -> list[dict[str, Any]]:
        return build_registro(table, record, operation=operation)


def _error_for(code: str, route: str) -> FactusolError:
    message = f"FactuSOL {route} answered {code}"
    if code == "BDExisteRegistro":
        return FactusolRecordExistsError(message, code=code, route=route)
    if code == "BDNoExiste":
        return FactusolDatabaseMissingError(message, code=code, route=route)
    if route in (ROUTE_INSERT, ROUTE_UPDATE):
        return FactusolRecordError(message, code=code, route=route)
    return FactusolError(message, code=code, route=route)
