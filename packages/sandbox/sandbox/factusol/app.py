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
import json
import math
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jwt
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, MapAdapter

from sandbox.common import ADMIN_PREFIX, SandboxState, install
from sandbox.factusol import seed as seeding
from sandbox.factusol import sql
from sandbox.factusol.schema import (
    PRIMARY_KEYS,
    CastError,
    Column,
    cast_value,
    columns_by_name,
    find_table,
    format_date,
)
from sandbox.factusol.storage import AlreadyExists, Store, valid_base, valid_year

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


# -- responses ---------------------------------------------------------------------------------
def _json(payload: Any, status: int = 200) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status=status, content_type="application/json; charset=utf-8")


def envelope(resultado: Any, respuesta: str = "OK") -> Response:
    """The envelope of every API answer, HTTP 200 even for errors (§4, §8.1)."""
    return _json({"resultado": resultado, "respuesta": respuesta})


def rows_response(names: list[str], rows: list[tuple[Any, ...]]) -> Response:
    """Rows as lists of {columna, dato} in column order; zero rows -> null (§4).

    A full F_CLI read is one response (§8.3: no paging), 205 cells a row, so the JSON is built
    by hand and streamed instead of going through 20 million dicts for 100k clients.
    """
    if not rows:
        return envelope(None)
    prefixes = [f'{{"columna":{_encode_str(n)},"dato":' for n in names]

    def generate() -> Iterator[str]:
        yield '{"resultado":['
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            text = ",".join(
                "["
                + ",".join([p + _encode_value(v) + "}" for p, v in zip(prefixes, row, strict=True)])
                + "]"
                for row in chunk
            )
            yield text if start == 0 else "," + text
        yield '],"respuesta":"OK"}'

    return Response(generate(), content_type="application/json; charset=utf-8")


_encode_str: Callable[[str], str] = json.encoder.encode_basestring


def _encode_value(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if kind is float:
        return float.__repr__(value) if math.isfinite(value) else "null"
    if kind is bytes:
        return _encode_str(value.decode("latin-1"))
    return json.dumps(value, ensure_ascii=False)


def _message(text: str, status: int) -> Response:
    """ASP.NET Web API error body (§8.1)."""
    return _json({"Message": text}, status)


def _lenient_json(text: str) -> Any:
    """JSON, also accepting single-quoted strings as one PHP client sends (§2, Newtonsoft)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"":
            j, buf = i + 1, []
            while j < n and text[j] != ch:
                if text[j] == "\\" and j + 1 < n:
                    buf.append(text[j : j + 2])
                    j += 2
                    continue
                buf.append(text[j])
                j += 1
            raw = "".join(buf)
            if ch == "'":
                raw = raw.replace("\\'", "'").replace('"', '\\"')
            out.append(f'"{raw}"')
            i = j + 1
        else:
            out.append(ch)
            i += 1
    return json.loads("".join(out))


def _field(body: dict[str, Any], name: str) -> Any:
    """Model binding is case-insensitive in ASP.NET."""
    if name in body:
        return body[name]
    lower = name.lower()
    for key, value in body.items():
        if isinstance(key, str) and key.lower() == lower:
            return value
    return None


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
    _api_routes(app, emu)
    _admin_routes(app, emu)
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


def _api_routes(app: Flask, emu: FactusolEmulator) -> None:
    def body_dict() -> dict[str, Any] | None:
        text = request.get_data(as_text=True)
        try:
            body = _lenient_json(text) if text.strip() else {}
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def guard() -> Response | dict[str, Any]:
        """Auth (§3.3, §3.4), then the transient KO (§8.2), then the request body."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _message("Authorization has been denied for this request.", 401)
        if emu.check_token(token.strip()) is None:
            return envelope("", "Unauthorized")
        ko_rate = float(emu.switches.get("ko_rate") or 0)
        if ko_rate and emu.state.rng.random() < ko_rate:
            g.fault = "ko"
            return envelope("", "KO")
        return {}

    def guarded_body() -> Response | dict[str, Any]:
        verdict = guard()
        if isinstance(verdict, Response):
            return verdict
        body = body_dict()
        if body is None:
            return _message("The request is invalid.", 400)
        return body

    @app.post("/login/autenticar")
    def autenticar() -> Response:
        if request.mimetype == "application/x-www-form-urlencoded":
            body: dict[str, Any] | None = request.form.to_dict()
        else:
            body = body_dict()
        token = emu.login(body or {})
        if token is None:
            return envelope("", "KO")  # §3.2: failure shape not found; INFERRED
        return envelope(token)

    @app.post("/admin/cargatabla")
    def carga_tabla() -> Response:
        body = guarded_body()
        if isinstance(body, Response):
            return body
        year = emu.year(_field(body, "ejercicio"))
        if year is None:
            return envelope("", "BDNoExiste")
        return _read_where(emu, year, _field(body, "tabla"), _field(body, "filtro"))

    @app.get("/admin/leerregistro/<ejercicio>/<tabla>/<filtro>")
    def leer_registro(ejercicio: str, tabla: str, filtro: str) -> Response:
        verdict = guard()
        if isinstance(verdict, Response):
            return verdict
        year = emu.year(ejercicio)
        if year is None:
            return envelope("", "BDNoExiste")
        return _read_where(emu, year, tabla, filtro)  # §5.3: same nested list (I)

    @app.post("/admin/lanzarconsulta")
    def lanzar_consulta() -> Response:
        body = guarded_body()
        if isinstance(body, Response):
            return body
        year = emu.year(_field(body, "ejercicio"))
        if year is None:
            return envelope("", "BDNoExiste")
        consulta = _field(body, "consulta")
        if not isinstance(consulta, str):
            return envelope(None, "KO")
        emu.restyle_dates(year)
        try:
            query = sql.translate_select(consulta, emu.null_sort())
        except sql.NotSelect:
            return envelope(None, "KO")  # §10: non-SELECT -> KO (I)
        except sql.SqlError:
            return envelope(None)
        try:
            names, rows = emu.store.select(emu.base_datos, year, query)
        except sql.SqlError:
            return envelope(None)  # §10: SQL error -> null, like CargaTabla (I)
        return rows_response(sql.result_names(names), rows)

    @app.post("/admin/escribirregistro")
    def escribir_registro() -> Response:
        body = guarded_body()
        if isinstance(body, Response):
            return body
        year = emu.year(_field(body, "ejercicio"))
        if year is None:
            return envelope("", "BDNoExiste")
        error = "BDEscribirRegistroError"
        table = find_table(_field(body, "tabla"))
        if table is None:
            return envelope("", error)
        values = _registro_values(emu, table, _field(body, "registro"))
        if values is None or any(values.get(k) is None for k in PRIMARY_KEYS[table]):
            return envelope("", error)  # unknown column, bad value or no PK (§5.4)
        if emu.switches.get("stamp_fumcli_on_write"):
            values["FUMCLI"] = emu.fumcli_stamp()
        try:
            emu.store.insert(emu.base_datos, year, table, values)
        except AlreadyExists:
            return envelope("", "BDExisteRegistro")
        return envelope("")

    @app.post("/admin/actualizarregistro")
    def actualizar_registro() -> Response:
        body = guarded_body()
        if isinstance(body, Response):
            return body
        year = emu.year(_field(body, "ejercicio"))
        if year is None:
            return envelope("", "BDNoExiste")
        error = "BDActualizarRegistroError"  # §10 (I)
        table = find_table(_field(body, "tabla"))
        if table is None:
            return envelope("", error)
        values = _registro_values(emu, table, _field(body, "registro"))
        keys = PRIMARY_KEYS[table]
        if values is None or any(values.get(k) is None for k in keys):
            return envelope("", error)  # §5.5: registro must carry the PK
        key = {k: values.pop(k) for k in keys}
        if emu.switches.get("stamp_fumcli_on_write"):
            values["FUMCLI"] = emu.fumcli_stamp()
        found = emu.store.update(emu.base_datos, year, table, key, values)
        if not found and emu.switches.get("update_missing_key") == "error":
            return envelope("", error)  # §5.5: unknown; switch update_missing_key
        return envelope("")

    @app.get("/admin/borrarregistros/<ejercicio>/<tabla>/<filtro>")
    def borrar_registros(ejercicio: str, tabla: str, filtro: str) -> Response:
        # §5.6: a GET, the filter URL-encoded in the path; a "/" in it is a 404, as INFERRED.
        verdict = guard()
        if isinstance(verdict, Response):
            return verdict
        year = emu.year(ejercicio)
        if year is None:
            return envelope("", "BDNoExiste")
        table = find_table(tabla)
        if table is None or not filtro.strip():
            return envelope("", "BDBorrarRegistrosError")  # §8.2 (I)
        try:
            emu.store.delete_where(emu.base_datos, year, table, sql.delete_query(tabla, filtro))
        except sql.SqlError:
            return envelope("", "BDBorrarRegistrosError")
        return envelope("")


def _read_where(emu: FactusolEmulator, year: str, tabla: Any, filtro: Any) -> Response:
    """`SELECT * FROM tabla WHERE filtro`; null for no rows and for every error (§5.1)."""
    if not isinstance(tabla, str) or not isinstance(filtro, str) or not tabla.strip():
        return envelope(None)
    emu.restyle_dates(year)
    try:
        query = sql.where_query(tabla, filtro, emu.null_sort())
        names, rows = emu.store.select(emu.base_datos, year, query)
    except sql.SqlError:
        return envelope(None)
    return rows_response(names, rows)


def _registro_values(emu: FactusolEmulator, table: str, registro: Any) -> dict[str, Any] | None:
    """`registro` as {COLUMN: stored value}; None if any column is unknown or any value bad."""
    if not isinstance(registro, list) or not registro:
        return None
    columns = columns_by_name(table)
    values: dict[str, Any] = {}
    for item in registro:
        if not isinstance(item, dict):
            return None
        name = _field(item, "columna")
        column = columns.get(name.strip().upper()) if isinstance(name, str) else None
        if column is None or column.name in values:
            return None  # §5.4: one unknown column fails the whole write
        dato = _field(item, "dato")
        if dato is None and column.name in PRIMARY_KEYS[table]:
            return None
        try:
            values[column.name] = emu.cast(column, dato)
        except CastError:
            return None
    return values


def _admin_routes(app: Flask, emu: FactusolEmulator) -> None:
    """/_sandbox/clients: look at and edit F_CLI "as a desktop user would"."""

    def target() -> tuple[str, str] | Response:
        base = request.args.get("base_datos") or emu.base_datos
        year = request.args.get("ejercicio") or emu.newest_year()
        if not valid_base(base) or not valid_year(year):
            return _json({"error": "bad base_datos or ejercicio"}, 400)
        return base, year

    def desktop_values(body: Any) -> dict[str, Any] | Response:
        if not isinstance(body, dict):
            return _json({"error": "body must be an object {COLUMN: value}"}, 400)
        columns = columns_by_name("F_CLI")
        values: dict[str, Any] = {}
        for name, value in body.items():
            column = columns.get(str(name).upper())
            if column is None:
                return _json({"error": f"unknown column {name!r}"}, 400)
            try:
                values[column.name] = emu.cast(column, value)
            except CastError as exc:
                return _json({"error": str(exc)}, 400)
        return values

    def one(base: str, year: str, code: int) -> dict[str, Any] | None:
        rows = emu.store.rows_as_dicts(base, year, "CODCLI = ?", [code])
        return rows[0] if rows else None

    @app.get("/_sandbox/clients")
    def list_clients() -> Response:
        where = target()
        if isinstance(where, Response):
            return where
        return _json({"clients": emu.store.rows_as_dicts(*where)})

    @app.get("/_sandbox/clients/<int:code>")
    def get_client(code: int) -> Response:
        where = target()
        if isinstance(where, Response):
            return where
        row = one(*where, code)
        return _json(row) if row else _json({"error": "not found"}, 404)

    @app.patch("/_sandbox/clients/<int:code>")
    def patch_client(code: int) -> Response:
        where = target()
        if isinstance(where, Response):
            return where
        values = desktop_values(request.get_json(force=True, silent=True))
        if isinstance(values, Response):
            return values
        values.pop("CODCLI", None)
        values.setdefault("FUMCLI", emu.fumcli_stamp())  # the desktop stamps it on save
        if not emu.store.update(*where, "F_CLI", {"CODCLI": code}, values):
            return _json({"error": "not found"}, 404)
        return _json(one(*where, code))

    @app.post("/_sandbox/clients")
    def create_client() -> Response:
        where = target()
        if isinstance(where, Response):
            return where
        values = desktop_values(request.get_json(force=True, silent=True))
        if isinstance(values, Response):
            return values
        if not values.get("CODCLI"):
            values["CODCLI"] = emu.store.max_code(*where) + 1
        values.setdefault("FALCLI", emu.today_stamp())
        values.setdefault("FUMCLI", emu.fumcli_stamp())
        try:
            emu.store.insert(*where, "F_CLI", values)
        except AlreadyExists:
            return _json({"error": f"CODCLI {values['CODCLI']} exists"}, 409)
        return _json(one(*where, values["CODCLI"]), 201)

    @app.delete("/_sandbox/clients/<int:code>")
    def delete_client(code: int) -> Response:
        where = target()
        if isinstance(where, Response):
            return where
        if not emu.store.delete_key(*where, code):
            return _json({"error": "not found"}, 404)
        return _json({"deleted": code})

    @app.post("/_sandbox/seed")
    def seed() -> Response:
        body = request.get_json(force=True, silent=True) or {}
        base = str(body.get("base_datos") or emu.base_datos)
        year = str(body.get("ejercicio") or emu.newest_year())
        if not valid_base(base) or not valid_year(year):
            return _json({"error": "bad base_datos or ejercicio"}, 400)
        count = seeding.seed_store(
            emu.store,
            base,
            year,
            int(body.get("clients", 60)),
            int(body.get("seed", 42)),
            emu.now(),
            fumcli_has_time=bool(emu.switches.get("fumcli_has_time")),
        )
        return _json({"seeded": count, "base_datos": base, "ejercicio": year})


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
