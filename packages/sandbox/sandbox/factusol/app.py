"""The FactuSOL cloud API emulator (reference factusol-api.md §10 is the blueprint).

API routes (case-insensitive, trailing slash tolerated, §2):
  POST /login/Autenticar                                  -> JWT in `resultado`
  POST /admin/CargaTabla      {ejercicio, tabla, filtro}  -> rows or null
  POST /admin/LanzarConsulta  {ejercicio, consulta}       -> rows or null
  POST /admin/EscribirRegistro   {ejercicio, tabla, registro:[{columna, dato}]}
  POST /admin/ActualizarRegistro {ejercicio, tabla, registro:[{columna, dato}]}
  GET  /admin/BorrarRegistros/<ejercicio>/<tabla>/<filtro>
  GET  /admin/LeerRegistro/<ejercicio>/<tabla>/<filtro>

Admin routes (never faulted, never logged) are listed in sandbox/common.py and below, under
/_sandbox/clients and /_sandbox/seed.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import urllib.parse
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jwt
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, MapAdapter

from sandbox.common import ADMIN_PREFIX, SandboxState, install
from sandbox.factusol.admin_routes import add_admin_routes
from sandbox.factusol.api_routes import add_api_routes
from sandbox.factusol.responses import _field, _message
from sandbox.factusol.responses import envelope as envelope  # importable from here, as before
from sandbox.factusol.responses import rows_response as rows_response
from sandbox.factusol.schema import Column, cast_value, format_date
from sandbox.factusol.storage import Store, valid_base, valid_year

DEFAULTS = {
    "codigo_fabricante": "1234",
    "codigo_cliente": "56789",
    "base_datos": "FS001",
    "password": "sandbox-password",
}
CHOICES: dict[str, tuple[Any, ...]] = {
    "stamp_fumcli_on_write": (True, False),
    "fumcli_has_time": (True, False),
    "update_missing_key": ("ok", "error"),
    "overlong_text": ("error", "truncate"),
    "non_cp1252": ("replace", "store", "error"),
    "null_sort": ("low", "high"),
    "date_values": ("datetime", "bare_date", "text_dmy"),
}


def default_switches(today: dt.date, years_on_disk: list[int] | None = None) -> dict[str, Any]:
    """One switch per unknown of the reference (§5.4, §5.5, §7.1, §8.2, §12)."""
    years = sorted({today.year, today.year - 1, *(years_on_disk or [])}, reverse=True)
    return {
        "stamp_fumcli_on_write": False,  # §5.5/§12: does an API write stamp FUMCLI?
        "fumcli_has_time": False,  # §7.1: FUMCLI date-only (00:00:00) or with a time of day
        "update_missing_key": "ok",  # §5.5: ActualizarRegistro on a missing PK: ok | error
        "overlong_text": "error",  # §5.4: text over the column size: error | truncate
        "non_cp1252": "replace",  # §2: characters outside cp1252: replace ('?') | store | error
        # §9: where NULL sorts: low (Access, SQL Server: last under DESC) | high (first under DESC)
        "null_sort": "low",
        # §7.1/§12: stored date text, compared and sorted as text: datetime | bare_date | text_dmy
        "date_values": "datetime",
        "ko_rate": 0.0,  # §8.2: probability of a transient {"respuesta":"KO"} on /admin/*
        "token_ttl_seconds": 180,  # §3.2: JWT lifetime
        "ejercicios": years,  # §6: the years that have a database (others -> BDNoExiste)
        # the office's zone: FUMCLI/FALCLI are its wall-clock times, whatever the host's zone
        "timezone": "Europe/Madrid",
    }


# -- routing: case-insensitive paths (§2) ----------------------------------------------------
def _fold_path(path: str) -> str:
    """Lower-case the controller and action segments; drop one trailing slash."""
    if path.startswith(ADMIN_PREFIX):
        return path
    parts = path.split("/")
    for i in (1, 2):
        if i < len(parts):
            parts[i] = parts[i].lower()
    folded = "/".join(parts)
    return folded[:-1] if len(folded) > 1 and folded.endswith("/") else folded


class _CaseInsensitiveAdapter(MapAdapter):
    def match(
        self,
        path_info: str | None = None,
        method: str | None = None,
        return_rule: bool = False,
        query_args: Any = None,
        websocket: bool | None = None,
    ) -> tuple[Any, Any]:
        folded = _fold_path(self.path_info if path_info is None else path_info)
        return super().match(folded, method, return_rule, query_args, websocket)  # type: ignore[call-overload, no-any-return]


class _CaseInsensitiveMap(Map):
    """Werkzeug's router, matching on the folded path (request.path keeps the original)."""

    def bind(self, *args: Any, **kwargs: Any) -> MapAdapter:
        adapter = super().bind(*args, **kwargs)
        adapter.__class__ = _CaseInsensitiveAdapter
        return adapter

    def bind_to_environ(self, *args: Any, **kwargs: Any) -> MapAdapter:
        adapter = super().bind_to_environ(*args, **kwargs)
        adapter.__class__ = _CaseInsensitiveAdapter
        return adapter


class _FactusolFlask(Flask):
    url_map_class = _CaseInsensitiveMap


# -- the app -----------------------------------------------------------------------------------
class FactusolEmulator:
    """State shared by the routes: settings, store, sandbox state."""

    def __init__(
        self,
        data_dir: str | Path,
        state: SandboxState,
        *,
        codigo_fabricante: str,
        codigo_cliente: str,
        base_datos: str,
        password: str,
    ) -> None:
        self.store = Store(data_dir)
        self.state = state
        self.codigo_fabricante = str(codigo_fabricante)
        self.codigo_cliente = str(codigo_cliente)
        self.base_datos = base_datos
        self.password = password
        # Deterministic key so tokens survive a restart of the emulator.
        self.jwt_key = hashlib.sha256(f"fcsync-sandbox:{password}".encode()).hexdigest()
        self._date_style: dict[tuple[str, str], str] = {}

    @property
    def switches(self) -> dict[str, Any]:
        return self.state.switches

    def now(self) -> dt.datetime:
        """Naive wall-clock time of the office (switch ``timezone``), as FactuSOL stores it."""
        zone = ZoneInfo(str(self.switches.get("timezone") or "Europe/Madrid"))
        return self.state.clock.now().astimezone(zone).replace(tzinfo=None, microsecond=0)

    def years(self) -> list[str]:
        return [str(y).strip() for y in self.switches.get("ejercicios") or []]

    def year(self, value: Any) -> str | None:
        """The `ejercicio` as a 4-digit string if that year has a database (§6), else None."""
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            return None
        text = str(value).strip()
        return text if valid_year(text) and text in self.years() else None

    def newest_year(self) -> str:
        years = sorted(self.years())
        return years[-1] if years else str(self.now().year)

    def fumcli_stamp(self) -> str:
        """FUMCLI as the desktop writes it: the date, plus the time if fumcli_has_time (§7.1)."""
        now = self.now()
        if not self.switches.get("fumcli_has_time"):
            now = now.replace(hour=0, minute=0, second=0)
        return format_date(now)

    def today_stamp(self) -> str:
        return format_date(self.now().replace(hour=0, minute=0, second=0))

    def null_sort(self) -> str:
        return "high" if self.switches.get("null_sort") == "high" else "low"

    def restyle_dates(self, year: str) -> None:
        """Store dates in the form of switch `date_values` before a call reads them."""
        style = str(self.switches.get("date_values") or "datetime")
        key = (self.base_datos, year)
        if style == "datetime" and self._date_style.get(key, "datetime") == "datetime":
            return  # writes and the seed store this form already
        self.store.restyle_dates(self.base_datos, year, style)
        self._date_style[key] = style

    def cast(self, column: Column, value: Any) -> Any:
        return cast_value(
            column,
            value,
            overlong_text=self.switches.get("overlong_text", "error"),
            non_cp1252=self.switches.get("non_cp1252", "replace"),
        )

    # -- login and token -------------------------------------------------------------------
    def login(self, body: dict[str, Any]) -> str | None:
        def code(name: str) -> str:
            value = _field(body, name)
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                return ""
            return str(value).strip()

        if code("codigoFabricante") != self.codigo_fabricante:
            return None
        if code("codigoCliente") != self.codigo_cliente:
            return None
        if _field(body, "baseDatosCliente") != self.base_datos:
            return None
        password = _field(body, "password")
        try:  # §3.1: the password travels base64-encoded
            plain = base64.b64decode(str(password or ""), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if plain != self.password:
            return None
        issued = int(self.state.clock.now().timestamp())
        claims = {
            "role": "AdminUser",  # §3.2
            "codigoFabricante": self.codigo_fabricante,
            "codigoCliente": self.codigo_cliente,
            "baseDatosCliente": self.base_datos,
            "iat": issued,
            "exp": issued + int(float(self.switches.get("token_ttl_seconds", 180))),
        }
        return jwt.encode(claims, self.jwt_key, algorithm="HS256")

    def check_token(self, token: str) -> dict[str, Any] | None:
        """Claims of a valid, unexpired token bound to this company database, else None."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.jwt_key,
                algorithms=["HS256"],
                # time claims are checked below against the sandbox clock, not the wall clock
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.InvalidTokenError:
            return None
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or exp <= self.state.clock.now().timestamp():
            return None  # expiry follows the sandbox clock, so tests can move time
        if claims.get("role") != "AdminUser":
            return None
        if claims.get("codigoCliente") != self.codigo_cliente:
            return None
        if claims.get("baseDatosCliente") != self.base_datos:
            return None
        return claims


def create_app(
    data_dir: str | Path,
    *,
    codigo_fabricante: str = DEFAULTS["codigo_fabricante"],
    codigo_cliente: str = DEFAULTS["codigo_cliente"],
    base_datos: str = DEFAULTS["base_datos"],
    password: str = DEFAULTS["password"],
    config: dict[str, Any] | None = None,
) -> Flask:
    """Build the emulator app; `config` is a /_sandbox/config body applied at start."""
    if not valid_base(base_datos):
        raise ValueError(f"unsupported base name {base_datos!r}")
    store_years = Store(data_dir).years_on_disk(base_datos)
    state = SandboxState(api="factusol", switches=default_switches(dt.date.today(), store_years))
    state.update(config or {})
    emu = FactusolEmulator(
        data_dir,
        state,
        codigo_fabricante=codigo_fabricante,
        codigo_cliente=codigo_cliente,
        base_datos=base_datos,
        password=password,
    )
    app = _FactusolFlask(__name__)
    app.name = "factusol"
    app.extensions["factusol"] = emu
    install(app, state, fault_response=lambda kind: _fault_response(state, kind))
    add_api_routes(app, emu)
    add_admin_routes(app, emu)
    _error_handlers(app)
    return app


def _fault_response(state: SandboxState, kind: str) -> Response:
    """Injected failures, shaped like what sits in front of an ASP.NET service on IIS."""
    if kind == "throttle":
        return _message("Too many requests. Try again later.", 429)
    status = state.rng.choice((500, 502, 503, 504))
    if status == 500:
        return _message("An error has occurred.", 500)
    titles = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
    html = f"<html><head><title>{status} {titles[status]}</title></head><body>"
    html += f"<h1>{status} - {titles[status]}</h1></body></html>"
    return Response(html, status=status, content_type="text/html; charset=utf-8")


def _error_handlers(app: Flask) -> None:
    @app.errorhandler(404)
    def not_found(_: HTTPException) -> Response:
        # §5.7: ASP.NET's text, with the URI as the client sent it.
        path = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
        if not path:
            path = urllib.parse.quote(request.path, safe="/=&?:@!$'()*+,;%")
            if request.query_string:
                path += "?" + request.query_string.decode("latin-1")
        url = f"{request.scheme}://{request.host}{path}"
        return _message(f"No HTTP resource was found that matches the request URI '{url}'.", 404)

    @app.errorhandler(405)
    def not_allowed(_: HTTPException) -> Response:
        return _message(
            f"The requested resource does not support http method '{request.method}'.", 405
        )

    @app.errorhandler(500)
    def server_error(_: Exception) -> Response:
        return _message("An error has occurred.", 500)

    @app.errorhandler(ConnectionAbortedError)
    def dropped(_: ConnectionAbortedError) -> Response:
        # an injected drop (sandbox.common) closed the socket already: nobody reads this, and
        # handling it here keeps Flask from logging a traceback for an intended fault
        return Response(status=500)
