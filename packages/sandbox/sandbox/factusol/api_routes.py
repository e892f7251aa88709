"""The emulated FactuSOL API routes (§5): login, reads, queries, writes and deletes.

Each route checks the bearer token, then may answer the transient KO (§8.2), then reads
its body as the ASP.NET service binds it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g, request

from sandbox.factusol import sql
from sandbox.factusol.responses import _field, _lenient_json, _message, envelope, rows_response
from sandbox.factusol.schema import PRIMARY_KEYS, CastError, columns_by_name, find_table
from sandbox.factusol.storage import AlreadyExists

if TYPE_CHECKING:
    from sandbox.factusol.app import FactusolEmulator

__all__ = ["add_api_routes"]


def add_api_routes(app: Flask, emu: FactusolEmulator) -> None:
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
