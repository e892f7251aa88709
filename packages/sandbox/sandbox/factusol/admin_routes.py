"""The sandbox's admin routes for F_CLI: list, read, edit, create and delete clients as a
desktop user would, and seed a database. Never faulted, never logged (sandbox/common.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request

from sandbox.factusol import seed as seeding
from sandbox.factusol.responses import _json
from sandbox.factusol.schema import CastError, columns_by_name
from sandbox.factusol.storage import AlreadyExists, valid_base, valid_year

if TYPE_CHECKING:
    from sandbox.factusol.app import FactusolEmulator

__all__ = ["add_admin_routes"]


def add_admin_routes(app: Flask, emu: FactusolEmulator) -> None:
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
