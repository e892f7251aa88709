"""FactuSOL emulator behaviour (reference factusol-api.md §10), through Flask's test client."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sandbox.factusol import create_app
from sandbox.factusol.schema import F_CLI
from sandbox.factusol.seed import seed_store
from sandbox.factusol.storage import Store

YEAR = str(dt.date.today().year)
PREVIOUS = str(dt.date.today().year - 1)
PASSWORD_B64 = base64.b64encode(b"sandbox-password").decode()
LOGIN = {
    "codigoFabricante": 1234,
    "codigoCliente": 56789,
    "baseDatosCliente": "FS001",
    "password": PASSWORD_B64,
}


class Api:
    """A deliberately naive client for the tests: no retries, no escaping."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.token = ""

    def login(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = self.client.post(
            "/login/Autenticar", json={**LOGIN, **overrides}
        ).json
        if body["respuesta"] == "OK":
            self.token = body["resultado"]
        return body

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def post(self, action: str, **body: Any) -> dict[str, Any]:
        resp = self.client.post(f"/admin/{action}", json=body, headers=self.headers)
        assert resp.status_code == 200, resp.data
        result: dict[str, Any] = json.loads(resp.data)
        return result

    def get(self, action: str, *parts: str) -> dict[str, Any]:
        path = "/".join(urllib.parse.quote(p, safe="") for p in parts)
        resp = self.client.get(f"/admin/{action}/{path}", headers=self.headers)
        assert resp.status_code == 200, resp.data
        result: dict[str, Any] = json.loads(resp.data)
        return result

    def carga(self, filtro: str, tabla: str = "F_CLI", ejercicio: Any = YEAR) -> Any:
        return self.post("CargaTabla", ejercicio=ejercicio, tabla=tabla, filtro=filtro)

    def consulta(self, consulta: str, ejercicio: Any = YEAR) -> dict[str, Any]:
        return self.post("LanzarConsulta", ejercicio=ejercicio, consulta=consulta)

    def escribir(self, values: dict[str, Any], **extra: Any) -> dict[str, Any]:
        registro = [{"columna": k, "dato": v} for k, v in values.items()]
        body = {"ejercicio": YEAR, "tabla": "F_CLI", "registro": registro, **extra}
        return self.post("EscribirRegistro", **body)

    def actualizar(self, values: dict[str, Any], **extra: Any) -> dict[str, Any]:
        registro = [{"columna": k, "dato": v} for k, v in values.items()]
        body = {"ejercicio": YEAR, "tabla": "F_CLI", "registro": registro, **extra}
        return self.post("ActualizarRegistro", **body)

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        resp = self.client.open(f"/_sandbox/{path}", method=method, json=body)
        return resp.status_code, resp.json

    def config(self, **body: Any) -> dict[str, Any]:
        resp = self.client.post("/_sandbox/config", json=body)
        assert resp.status_code == 200, resp.data
        result: dict[str, Any] = resp.json
        return result

    def row(self, code: int) -> dict[str, Any]:
        status, body = self.admin("GET", f"clients/{code}")
        assert status == 200
        result: dict[str, Any] = body
        return result


def as_dicts(resultado: Any) -> list[dict[str, Any]]:
    return [{c["columna"]: c["dato"] for c in row} for row in resultado or []]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    seed_store(Store(tmp_path), "FS001", YEAR, 30, 7, dt.datetime.now())
    return tmp_path


@pytest.fixture
def app(data_dir: Path) -> Flask:
    return create_app(data_dir)


@pytest.fixture
def api(app: Flask) -> Api:
    client = Api(app.test_client())
    assert client.login()["respuesta"] == "OK"
    return client


# -- routing -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path", ["/login/Autenticar", "/login/autenticar", "/Login/Autenticar", "/LOGIN/AUTENTICAR/"]
)
def test_login_routes_are_case_insensitive_and_tolerate_trailing_slash(
    app: Flask, path: str
) -> None:
    body = app.test_client().post(path, json=LOGIN).json
    assert body["respuesta"] == "OK"
    assert body["resultado"].count(".") == 2


@pytest.mark.parametrize("path", ["/admin/cargatabla", "/ADMIN/CargaTabla/", "/Admin/CARGATABLA"])
def test_admin_routes_are_case_insensitive(api: Api, path: str) -> None:
    body = {"ejercicio": YEAR, "tabla": "F_CLI", "filtro": "CODCLI=1"}
    resp = api.client.post(path, json=body, headers=api.headers)
    assert resp.json["respuesta"] == "OK"
    assert resp.json["resultado"][0][0] == {"columna": "CODCLI", "dato": 1}


def test_unknown_route_is_aspnet_404(app: Flask) -> None:
    resp = app.test_client().get("/admin/GenerarPDF?x=1")
    assert resp.status_code == 404
    assert resp.json == {
        "Message": "No HTTP resource was found that matches the request URI "
        "'http://localhost/admin/GenerarPDF?x=1'."
    }
    assert app.test_client().post("/registros/CargaTabla", json={}).status_code == 404


def test_route_resolved_before_auth_and_wrong_method(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/admin/NoSuchThing").status_code == 404
    resp = client.get("/admin/CargaTabla")
    assert resp.status_code == 405
    assert "does not support http method 'GET'" in resp.json["Message"]


# -- login -------------------------------------------------------------------------------------
def test_login_token_claims(api: Api) -> None:
    claims = jwt.decode(api.token, options={"verify_signature": False})
    assert jwt.get_unverified_header(api.token)["alg"] == "HS256"
    assert claims["role"] == "AdminUser"
    assert claims["codigoCliente"] == "56789"
    assert claims["baseDatosCliente"] == "FS001"
    assert 179 <= claims["exp"] - dt.datetime.now().timestamp() <= 181


def test_login_accepts_strings_and_form_encoding(app: Flask) -> None:
    client = app.test_client()
    as_strings = {**LOGIN, "codigoFabricante": "1234", "codigoCliente": "56789"}
    assert client.post("/login/Autenticar", json=as_strings).json["respuesta"] == "OK"
    assert client.post("/login/Autenticar", data=as_strings).json["respuesta"] == "OK"
    # one PHP client posts single-quoted pseudo-JSON (§2)
    text = "{'codigoFabricante':'1234','codigoCliente':'56789','baseDatosCliente':'FS001',"
    text += f"'password':'{PASSWORD_B64}'}}"
    resp = client.post("/login/Autenticar", data=text, content_type="application/json")
    assert resp.json["respuesta"] == "OK"


@pytest.mark.parametrize(
    "override",
    [
        {"password": "sandbox-password"},  # not base64
        {"password": base64.b64encode(b"wrong").decode()},
        {"codigoFabricante": 1},
        {"codigoCliente": "1"},
        {"baseDatosCliente": "FS002"},
        {"password": None},
    ],
)
def test_login_failure_is_200_ko(app: Flask, override: dict[str, Any]) -> None:
    resp = app.test_client().post("/login/Autenticar", json={**LOGIN, **override})
    assert resp.status_code == 200
    assert resp.json == {"resultado": "", "respuesta": "KO"}


def test_custom_credentials(data_dir: Path) -> None:
    app = create_app(
        data_dir, codigo_fabricante="9", codigo_cliente="8", base_datos="3FS003", password="pw"
    )
    body = {
        "codigoFabricante": 9,
        "codigoCliente": "8",
        "baseDatosCliente": "3FS003",
        "password": base64.b64encode(b"pw").decode(),
    }
    assert app.test_client().post("/login/Autenticar", json=body).json["respuesta"] == "OK"
    assert app.test_client().post("/login/Autenticar", json=LOGIN).json["respuesta"] == "KO"


# -- auth --------------------------------------------------------------------------------------
def test_missing_token_is_401(app: Flask) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
        resp = app.test_client().post("/admin/CargaTabla", json={}, headers=headers)
        assert resp.status_code == 401
        assert resp.json == {"Message": "Authorization has been denied for this request."}
    resp = app.test_client().get(f"/admin/BorrarRegistros/{YEAR}/F_CLI/CODCLI%3D1")
    assert resp.status_code == 401


def test_invalid_token_is_200_unauthorized(api: Api) -> None:
    forged = jwt.encode(
        {"role": "AdminUser", "exp": 9999999999, "codigoCliente": "56789"}, "x" * 32, "HS256"
    )
    for token in ("garbage", forged):
        api.token = token
        assert api.carga("1=1") == {"resultado": "", "respuesta": "Unauthorized"}


def test_token_expiry_follows_the_sandbox_clock(api: Api) -> None:
    assert api.carga("CODCLI=1")["respuesta"] == "OK"
    api.config(clock_offset_seconds=170)
    assert api.carga("CODCLI=1")["respuesta"] == "OK"
    api.config(clock_offset_seconds=200)
    assert api.carga("CODCLI=1") == {"resultado": "", "respuesta": "Unauthorized"}
    # logging in again under the moved clock works
    api.login()
    assert api.carga("CODCLI=1")["respuesta"] == "OK"


def test_token_ttl_switch(api: Api) -> None:
    api.config(switches={"token_ttl_seconds": 1000})
    api.login()
    api.config(clock_offset_seconds=900)
    assert api.carga("CODCLI=1")["respuesta"] == "OK"
    api.config(clock_offset_seconds=1001)
    assert api.carga("CODCLI=1")["respuesta"] == "Unauthorized"


# -- CargaTabla --------------------------------------------------------------------------------
def test_carga_tabla_rows_in_column_order_with_types(api: Api) -> None:
    body = api.carga("CODCLI = 1")
    assert body["respuesta"] == "OK"
    (row,) = body["resultado"]
    assert [c["columna"] for c in row] == [c.name for c in F_CLI]
    assert len(row) == 205
    values = {c["columna"]: c["dato"] for c in row}
    assert values["CODCLI"] == 1
    assert isinstance(values["CODCLI"], int)
    assert isinstance(values["DT1CLI"], float)
    assert isinstance(values["NOFCLI"], str)
    assert values["NOFCLI"]
    assert values["FAXCLI"] == ""
    assert len(values["FUMCLI"]) == 19
    assert values["FUMCLI"][10] == "T"
    assert values["FNACLI"] is None or values["FNACLI"].endswith("T00:00:00")


def test_carga_tabla_filters(api: Api) -> None:
    everything = as_dicts(api.carga("1=1")["resultado"])
    assert len(everything) == 30
    desc = as_dicts(api.carga("1=1 ORDER BY CODCLI DESC")["resultado"])
    assert desc[0]["CODCLI"] == max(r["CODCLI"] for r in everything)
    assert len(as_dicts(api.carga("CODCLI != 1")["resultado"])) == 29
    assert len(as_dicts(api.carga("CODCLI <> 1")["resultado"])) == 29
    assert len(as_dicts(api.carga("CODCLI IN (1, 2, 3)")["resultado"])) == 3
    assert as_dicts(api.carga("CODCLI = '2'")["resultado"])[0]["CODCLI"] == 2
    name = everything[0]["NOFCLI"]
    word = name.split()[1].upper()
    found = as_dicts(api.carga(f"UPPER(NOFCLI) LIKE '%{word}%'")["resultado"])
    assert everything[0]["CODCLI"] in [r["CODCLI"] for r in found]
    assert all(word.casefold() in r["NOFCLI"].casefold() for r in found)
    # text comparisons are case-insensitive, also for accented letters (§12 INFERRED)
    assert as_dicts(api.carga(f"NOFCLI = '{name.upper()}'")["resultado"])[0]["NOFCLI"] == name
    after = everything[0]["FUMCLI"][:10]
    assert api.carga(f"FUMCLI >= '{after}'")["resultado"]


@pytest.mark.parametrize(
    "filtro",
    ["", "   ", "NOMCLI = 'x'", "CODCLI = ", "1=1 LIMIT 5", "CODCLI = 999999"],
)
def test_carga_tabla_null_results(api: Api, filtro: str) -> None:
    assert api.carga(filtro) == {"resultado": None, "respuesta": "OK"}


def test_carga_tabla_unknown_table_is_null(api: Api) -> None:
    assert api.carga("1=1", tabla="F_ART") == {"resultado": None, "respuesta": "OK"}
    assert api.carga("1=1", tabla="sqlite_master") == {"resultado": None, "respuesta": "OK"}


def test_unknown_ejercicio_is_bdnoexiste(api: Api) -> None:
    expected = {"resultado": "", "respuesta": "BDNoExiste"}
    assert api.carga("1=1", ejercicio="2020") == expected
    assert api.carga("1=1", ejercicio="abcd") == expected
    assert api.consulta("SELECT CODCLI FROM F_CLI", ejercicio="2019") == expected
    assert api.escribir({"CODCLI": 500}, ejercicio="2019") == expected
    assert api.get("LeerRegistro", "2019", "F_CLI", "CODCLI=1") == expected
    assert api.get("BorrarRegistros", "2019", "F_CLI", "CODCLI=1") == expected
    # a number binds too; the previous year exists (empty)
    assert api.carga("1=1", ejercicio=int(YEAR))["respuesta"] == "OK"
    assert api.carga("1=1", ejercicio=PREVIOUS) == {"resultado": None, "respuesta": "OK"}


def test_ejercicios_switch(api: Api) -> None:
    api.config(switches={"ejercicios": [int(PREVIOUS)]})
    assert api.carga("1=1")["respuesta"] == "BDNoExiste"  # the new year's DB not opened yet
    assert api.carga("1=1", ejercicio=PREVIOUS)["respuesta"] == "OK"
    api.config(switches={"ejercicios": [YEAR, "2020"]})
    assert api.carga("1=1", ejercicio="2020") == {"resultado": None, "respuesta": "OK"}


# -- injection ---------------------------------------------------------------------------------
def test_injection_reads_like_the_real_api_but_cannot_escape(api: Api, data_dir: Path) -> None:
    # a filter built from unescaped input is injectable exactly like the real API (§5.1) ...
    assert len(api.carga("NOFCLI = 'x' OR '1'='1'")["resultado"]) == 30
    # ... but cannot write, attach files or run a second statement from a read call
    attempts = [
        "1=1; DELETE FROM F_CLI",
        "1=1; DROP TABLE F_CLI",
        "CODCLI IN (SELECT CODCLI FROM sqlite_master)",
        "1=0 UNION SELECT * FROM pragma_table_info('F_CLI')",
    ]
    for filtro in attempts:
        assert api.carga(filtro)["resultado"] is None
    for consulta in [
        "SELECT 1; DELETE FROM F_CLI",
        "ATTACH DATABASE '/tmp/x.db' AS x",
        "PRAGMA table_info(F_CLI)",
        "SELECT load_extension('x')",
        "SELECT name FROM sqlite_master",
    ]:
        assert api.consulta(consulta)["resultado"] is None
    assert len(api.carga("1=1")["resultado"]) == 30
    assert sorted(p.name for p in data_dir.iterdir() if not p.name.endswith(("-wal", "-shm"))) == [
        f"FS001_{YEAR}.sqlite3"
    ]
    # BorrarRegistros runs the filter raw too: only F_CLI rows can go
    api.get("BorrarRegistros", YEAR, "F_CLI", "CODCLI=1 OR 1=1")
    assert api.carga("1=1")["resultado"] is None


# -- LanzarConsulta ----------------------------------------------------------------------------
def test_lanzar_consulta_top_alias_aggregates(api: Api) -> None:
    body = api.consulta("SELECT TOP 1 CODCLI FROM F_CLI ORDER BY CODCLI DESC")
    top = as_dicts(body["resultado"])
    assert len(top) == 1
    assert list(top[0]) == ["CODCLI"]
    body = api.consulta("SELECT MAX(CODCLI) AS MAXNUM, COUNT(*) AS N FROM F_CLI")
    assert as_dicts(body["resultado"]) == [{"MAXNUM": top[0]["CODCLI"], "N": 30}]
    body = api.consulta("SELECT MAX(CODCLI), COUNT(*), CODCLI FROM F_CLI WHERE CODCLI = 1")
    assert [c["columna"] for c in body["resultado"][0]] == ["Expr1000", "Expr1001", "CODCLI"]
    assert api.consulta("select top (2) F_CLI.CODCLI from F_CLI;")["resultado"][1][0]["dato"] == 2
    assert len(api.consulta("SELECT DISTINCT TOP 3 PAICLI FROM F_CLI")["resultado"]) <= 3


def test_lanzar_consulta_where_like_in_join(api: Api) -> None:
    rows = as_dicts(
        api.consulta(
            "SELECT a.CODCLI, b.NOFCLI AS NOMBRE FROM F_CLI a JOIN F_CLI b ON a.CODCLI = b.CODCLI "
            "WHERE a.CODCLI IN (1, 2) AND UPPER(b.NOFCLI) LIKE '%' ORDER BY a.CODCLI"
        )["resultado"]
    )
    assert [r["CODCLI"] for r in rows] == [1, 2]
    assert set(rows[0]) == {"CODCLI", "NOMBRE"}
    left = api.consulta("SELECT F_CLI.CODCLI FROM F_CLI LEFT JOIN F_ART ON 1=1")
    assert left == {"resultado": None, "respuesta": "OK"}  # F_ART does not exist here
    like = api.consulta("SELECT CODCLI FROM F_CLI WHERE FUMCLI LIKE '2%' AND CODCLI = 3")
    assert as_dicts(like["resultado"]) == [{"CODCLI": 3}]
    api.escribir({"CODCLI": 950, "NOFCLI": "Ñandú 7 S.L.", "NIFCLI": "b_1"})
    for condition in [
        "NOFCLI LIKE 'ñandú [0-9] %'",
        "NOFCLI LIKE '%[^a-z,] S._.'",
        "UPPER(NOFCLI) = 'ÑANDÚ 7 S.L.'",
        "LOWER(NOFCLI) = 'ñandú 7 s.l.'",
        "NIFCLI LIKE 'B!_%' ESCAPE '!'",
        "LEN(NIFCLI) = 3 AND ISNULL(FUMCLI, 'x') = 'x'",
    ]:
        body = api.consulta(f"SELECT CODCLI FROM F_CLI WHERE {condition}")
        assert as_dicts(body["resultado"]) == [{"CODCLI": 950}], condition


@pytest.mark.parametrize(
    "consulta",
    ["DELETE FROM F_CLI", "UPDATE F_CLI SET NOFCLI='x'", "DROP TABLE F_CLI", "", "  "],
)
def test_lanzar_consulta_select_only(api: Api, consulta: str) -> None:
    assert api.consulta(consulta) == {"resultado": None, "respuesta": "KO"}
    assert len(api.carga("1=1")["resultado"]) == 30


@pytest.mark.parametrize(
    "consulta",
    ["SELECT * FROM F_CLI LIMIT 1", "SELECT NOPE FROM F_CLI", "SELECT * FROM F_XYZ", "SELECT ("],
)
def test_lanzar_consulta_errors_are_null(api: Api, consulta: str) -> None:
    assert api.consulta(consulta) == {"resultado": None, "respuesta": "OK"}


def test_lanzar_consulta_limit_inside_a_string_is_fine(api: Api) -> None:
    body = api.consulta("SELECT CODCLI FROM F_CLI WHERE NOFCLI = 'LIMIT 1'")
    assert body == {"resultado": None, "respuesta": "OK"}  # no rows, but no error either
    api.escribir({"CODCLI": 900, "NOFCLI": "LIMIT 1"})
    body = api.consulta("SELECT CODCLI FROM F_CLI WHERE NOFCLI = 'LIMIT 1'")
    assert as_dicts(body["resultado"]) == [{"CODCLI": 900}]


# -- EscribirRegistro --------------------------------------------------------------------------
def test_escribir_registro_ok_and_defaults(api: Api) -> None:
    body = api.escribir(
        {
            "CODCLI": 1000,
            "NOFCLI": "Construcciones Pérez Núñez, S.L.",
            "NIFCLI": "B12345674",
            "CPOCLI": "08001",
            "PAICLI": 724,  # a number into a text column converts
            "ESTCLI": "1",  # every dato as a string works (§5.4)
            "DT1CLI": "12.5",
            "FALCLI": "2026-01-15",
            "FNACLI": "1980-05-04T10:11:12",
        }
    )
    assert body == {"resultado": "", "respuesta": "OK"}
    row = api.row(1000)
    assert row["NOFCLI"] == "Construcciones Pérez Núñez, S.L."
    assert row["CPOCLI"] == "08001"
    assert row["PAICLI"] == "724"
    assert row["ESTCLI"] == 1
    assert row["DT1CLI"] == 12.5
    assert row["FALCLI"] == "2026-01-15T00:00:00"
    assert row["FNACLI"] == "1980-05-04T10:11:12"
    assert row["FUMCLI"] is None  # not stamped by default
    assert row["TELCLI"] == ""
    assert row["AGECLI"] == 0
    read = as_dicts(api.carga("CODCLI=1000")["resultado"])[0]
    assert read["FALCLI"] == "2026-01-15T00:00:00"
    assert read["ESTCLI"] == 1


def test_escribir_registro_existing_pk(api: Api) -> None:
    assert api.escribir({"CODCLI": 1, "NOFCLI": "x"}) == {
        "resultado": "",
        "respuesta": "BDExisteRegistro",
    }


@pytest.mark.parametrize(
    "values",
    [
        {"CODCLI": 1001, "NOMCLI": "invented column"},
        {"CODCLI": 1001, "CIFCLI": "B1"},
        {"NOFCLI": "no primary key"},
        {"CODCLI": None, "NOFCLI": "null primary key"},
        {"CODCLI": "abc"},
        {"CODCLI": 1.5},
        {"CODCLI": 2**31},
        {"CODCLI": 1001, "DP1CLI": 40000},  # Entero is 16-bit
        {"CODCLI": 1001, "ESTCLI": "uno"},
        {"CODCLI": 1001, "DT1CLI": "12,5"},
        {"CODCLI": 1001, "FALCLI": "15/01/2026"},
        {"CODCLI": 1001, "FALCLI": "2026-02-30"},
        {"CODCLI": 1001, "FALCLI": ""},
        {"CODCLI": 1001, "NIFCLI": "X" * 19},  # Text 18
        {"CODCLI": 1001, "FAVCLI": "ab"},  # Text 1
        {"CODCLI": 1001, "NOFCLI": True},
        {"CODCLI": 1001, "NOFCLI": {"a": 1}},
    ],
)
def test_escribir_registro_error(api: Api, values: dict[str, Any]) -> None:
    assert api.escribir(values) == {"resultado": "", "respuesta": "BDEscribirRegistroError"}
    assert api.admin("GET", "clients/1001")[0] == 404


def test_escribir_registro_malformed(api: Api) -> None:
    error = {"resultado": "", "respuesta": "BDEscribirRegistroError"}
    base = {"ejercicio": YEAR, "tabla": "F_CLI"}
    assert api.post("EscribirRegistro", **base, registro=[]) == error
    assert api.post("EscribirRegistro", **base, registro="CODCLI=1") == error
    assert api.post("EscribirRegistro", **base) == error
    dup = [{"columna": "CODCLI", "dato": 5000}, {"columna": "codcli", "dato": 5001}]
    assert api.post("EscribirRegistro", **base, registro=dup) == error
    wrong_table = {"ejercicio": YEAR, "tabla": "F_ART", "registro": [{"columna": "X", "dato": 1}]}
    assert api.post("EscribirRegistro", **wrong_table) == error


def test_escribir_registro_max_text_and_memo(api: Api) -> None:
    long_memo = "línea\n" * 5000
    values = {"CODCLI": 1002, "NIFCLI": "X" * 18, "OBSCLI": long_memo, "FAVCLI": "S"}
    assert api.escribir(values)["respuesta"] == "OK"
    assert api.row(1002)["OBSCLI"] == long_memo


def test_invalid_json_body_is_400(api: Api) -> None:
    resp = api.client.post(
        "/admin/CargaTabla", data="{nope", content_type="application/json", headers=api.headers
    )
    assert resp.status_code == 400


# -- ActualizarRegistro ------------------------------------------------------------------------
def test_actualizar_registro(api: Api) -> None:
    before = api.row(2)
    assert api.actualizar({"CODCLI": 2, "TELCLI": "600000000", "ESTCLI": 3}) == {
        "resultado": "",
        "respuesta": "OK",
    }
    after = api.row(2)
    assert after["TELCLI"] == "600000000"
    assert after["ESTCLI"] == 3
    assert after["NOFCLI"] == before["NOFCLI"]
    assert after["FUMCLI"] == before["FUMCLI"]  # not stamped by default (§5.5 unknown)
    # only the key: nothing to change, still OK
    assert api.actualizar({"CODCLI": 2})["respuesta"] == "OK"


@pytest.mark.parametrize(
    "values",
    [
        {"CODCLI": 2, "NOMCLI": "x"},
        {"TELCLI": "600000000"},
        {"CODCLI": 2, "ESTCLI": "x"},
        {"CODCLI": 2, "FUMCLI": "2026/01/01"},
    ],
)
def test_actualizar_registro_errors(api: Api, values: dict[str, Any]) -> None:
    before = api.row(2)
    assert api.actualizar(values) == {"resultado": "", "respuesta": "BDActualizarRegistroError"}
    assert api.row(2) == before


def test_update_missing_key_switch(api: Api) -> None:
    assert api.actualizar({"CODCLI": 4242, "TELCLI": "1"}) == {"resultado": "", "respuesta": "OK"}
    assert api.admin("GET", "clients/4242")[0] == 404  # no upsert
    api.config(switches={"update_missing_key": "error"})
    assert api.actualizar({"CODCLI": 4242, "TELCLI": "1"})["respuesta"] == (
        "BDActualizarRegistroError"
    )
    assert api.actualizar({"CODCLI": 2, "TELCLI": "1"})["respuesta"] == "OK"


# -- BorrarRegistros / LeerRegistro ------------------------------------------------------------
def test_borrar_registros(api: Api) -> None:
    assert api.get("BorrarRegistros", YEAR, "F_CLI", "CODCLI=3") == {
        "resultado": "",
        "respuesta": "OK",
    }
    assert api.carga("CODCLI=3")["resultado"] is None
    assert len(api.carga("1=1")["resultado"]) == 29
    # LIKE with % travels URL-encoded
    api.escribir({"CODCLI": 700, "NOFCLI": "Borrar Pérez"})
    api.get("BorrarRegistros", YEAR, "f_cli", "NOFCLI LIKE 'Borrar%'")
    assert api.carga("CODCLI=700")["resultado"] is None
    # a filter matching nothing is fine; an unknown column or table is an error (I)
    assert api.get("BorrarRegistros", YEAR, "F_CLI", "CODCLI=99999")["respuesta"] == "OK"
    assert api.get("BorrarRegistros", YEAR, "F_CLI", "NOPE=1")["respuesta"] == (
        "BDBorrarRegistrosError"
    )
    assert api.get("BorrarRegistros", YEAR, "F_ART", "1=1")["respuesta"] == (
        "BDBorrarRegistrosError"
    )


def test_borrar_registros_slash_in_filter_is_404(api: Api) -> None:
    resp = api.client.get(f"/admin/BorrarRegistros/{YEAR}/F_CLI/NOFCLI='a/b'", headers=api.headers)
    assert resp.status_code == 404


def test_leer_registro(api: Api) -> None:
    body = api.get("LeerRegistro", YEAR, "F_CLI", "CODCLI=5")
    assert body["respuesta"] == "OK"
    assert as_dicts(body["resultado"])[0]["CODCLI"] == 5
    assert api.get("LeerRegistro", YEAR, "F_CLI", "CODCLI=99999")["resultado"] is None
    assert api.get("LeerRegistro", YEAR, "F_CLI", "NOPE=1")["resultado"] is None


# -- switches ----------------------------------------------------------------------------------
def test_stamp_fumcli_on_write_switch(api: Api) -> None:
    api.config(now="2031-03-04T15:16:17")
    api.login()
    api.escribir({"CODCLI": 800, "NOFCLI": "a"})
    api.actualizar({"CODCLI": 1, "NOFCLI": "b"})
    assert api.row(800)["FUMCLI"] is None
    assert api.row(1)["FUMCLI"] != "2031-03-04T00:00:00"

    api.config(switches={"stamp_fumcli_on_write": True})
    api.escribir({"CODCLI": 801, "NOFCLI": "a"})
    api.actualizar({"CODCLI": 1, "NOFCLI": "c"})
    assert api.row(801)["FUMCLI"] == "2031-03-04T00:00:00"
    assert api.row(1)["FUMCLI"] == "2031-03-04T00:00:00"

    api.config(switches={"fumcli_has_time": True})
    api.actualizar({"CODCLI": 1, "NOFCLI": "d"})
    assert api.row(1)["FUMCLI"][:16] == "2031-03-04T15:16"


def test_fumcli_has_time_switch_on_desktop_edits(api: Api) -> None:
    api.config(now="2030-06-07T08:09:10")
    assert api.admin("PATCH", "clients/1", {"TELCLI": "1"})[1]["FUMCLI"] == "2030-06-07T00:00:00"
    api.config(switches={"fumcli_has_time": True})
    stamped = api.admin("PATCH", "clients/1", {"TELCLI": "2"})[1]["FUMCLI"]
    assert stamped[:16] == "2030-06-07T08:09"


def test_fumcli_is_the_office_wall_clock_whatever_the_host_zone(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 09:30 UTC in July is 11:30 in Madrid: a desktop in Madrid stamps 11:30, on any host
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        api.config(now="2030-07-01T09:30:00+00:00", switches={"fumcli_has_time": True})
        stamped = api.admin("PATCH", "clients/1", {"TELCLI": "1"})[1]["FUMCLI"]
        assert stamped[:16] == "2030-07-01T11:30"
        api.config(switches={"timezone": "Atlantic/Canary"})
        stamped = api.admin("PATCH", "clients/1", {"TELCLI": "2"})[1]["FUMCLI"]
        assert stamped[:16] == "2030-07-01T10:30"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_overlong_text_switch(api: Api) -> None:
    values = {"CODCLI": 810, "POBCLI": "x" * 31}  # Text 30
    assert api.escribir(values)["respuesta"] == "BDEscribirRegistroError"
    assert api.actualizar({"CODCLI": 1, "POBCLI": "y" * 31})["respuesta"] == (
        "BDActualizarRegistroError"
    )
    api.config(switches={"overlong_text": "truncate"})
    assert api.escribir(values)["respuesta"] == "OK"
    assert api.row(810)["POBCLI"] == "x" * 30
    assert api.actualizar({"CODCLI": 1, "POBCLI": "y" * 31})["respuesta"] == "OK"
    assert api.row(1)["POBCLI"] == "y" * 30


def test_non_cp1252_switch(api: Api) -> None:
    name = "Łódź Café 😀 Ñandú €"  # Ł, ó... ź and the emoji are not cp1252; é, Ñ, ú, € are
    assert api.escribir({"CODCLI": 820, "NOFCLI": name})["respuesta"] == "OK"
    assert api.row(820)["NOFCLI"] == "?ód? Café ? Ñandú €"
    api.config(switches={"non_cp1252": "store"})
    assert api.escribir({"CODCLI": 821, "NOFCLI": name})["respuesta"] == "OK"
    assert api.row(821)["NOFCLI"] == name
    read = as_dicts(api.carga("CODCLI=821")["resultado"])[0]
    assert read["NOFCLI"] == name
    api.config(switches={"non_cp1252": "error"})
    assert api.escribir({"CODCLI": 822, "NOFCLI": name})["respuesta"] == "BDEscribirRegistroError"
    assert api.escribir({"CODCLI": 822, "NOFCLI": "Ñandú €"})["respuesta"] == "OK"


def test_ko_rate_switch(api: Api) -> None:
    api.config(switches={"ko_rate": 1.0})
    assert api.carga("1=1") == {"resultado": "", "respuesta": "KO"}
    assert api.consulta("SELECT 1") == {"resultado": "", "respuesta": "KO"}
    assert api.escribir({"CODCLI": 830}) == {"resultado": "", "respuesta": "KO"}
    assert api.admin("GET", "clients/830")[0] == 404
    # login and admin routes are not affected
    assert api.login()["respuesta"] == "OK"
    assert api.admin("GET", "clients/1")[0] == 200
    log = api.client.get("/_sandbox/requests").json["requests"]
    assert [r["fault"] for r in log if r["path"].startswith("/admin/")] == ["ko"] * 3
    api.config(switches={"ko_rate": 0.0})
    assert api.carga("CODCLI=1")["respuesta"] == "OK"


def test_switch_defaults_and_unknown_switch(app: Flask) -> None:
    config = app.test_client().get("/_sandbox/config").json
    assert config["api"] == "factusol"
    switches = config["switches"]
    assert switches == {
        "stamp_fumcli_on_write": False,
        "fumcli_has_time": False,
        "update_missing_key": "ok",
        "overlong_text": "error",
        "non_cp1252": "replace",
        "null_sort": "low",
        "date_values": "datetime",
        "ko_rate": 0.0,
        "token_ttl_seconds": 180,
        "ejercicios": [int(YEAR), int(PREVIOUS)],
        "timezone": "Europe/Madrid",
    }
    assert all(v == 0 or v is None for v in config["faults"].values() if v != 1.0)
    resp = app.test_client().post("/_sandbox/config", json={"switches": {"nope": 1}})
    assert resp.status_code == 400


def test_config_at_start(data_dir: Path) -> None:
    app = create_app(
        data_dir,
        config={"switches": {"ko_rate": 1.0, "ejercicios": [2020]}, "faults": {"latency_ms": 0}},
    )
    api = Api(app.test_client())
    api.login()
    assert api.carga("1=1", ejercicio="2020")["respuesta"] == "KO"


# -- fault injection ---------------------------------------------------------------------------
def test_error_faults_every_call_but_never_admin_routes(api: Api) -> None:
    api.client.delete("/_sandbox/requests")
    api.config(faults={"error_rate": 1.0, "seed": 1})
    statuses = set()
    for _ in range(20):
        resp = api.client.post(
            "/admin/CargaTabla", json={"ejercicio": YEAR, "tabla": "F_CLI", "filtro": "1=1"}
        )
        assert resp.status_code in (500, 502, 503, 504)
        statuses.add(resp.status_code)
    assert len(statuses) > 1
    assert api.client.post("/login/Autenticar", json=LOGIN).status_code >= 500
    assert api.admin("GET", "clients/1")[0] == 200
    assert api.client.get("/_sandbox/health").status_code == 200
    log = api.client.get("/_sandbox/requests").json["requests"]
    assert len(log) == 21
    assert all(r["fault"] == "error" for r in log)
    api.config(faults={"error_rate": 0.0})
    assert api.carga("CODCLI=1")["respuesta"] == "OK"


def test_throttle_faults(api: Api) -> None:
    api.config(faults={"throttle_rate": 1.0, "retry_after_seconds": 3})
    resp = api.client.post("/admin/CargaTabla", json={}, headers=api.headers)
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "3"
    assert "Message" in resp.json
    assert api.admin("GET", "clients")[0] == 200


# -- admin routes ------------------------------------------------------------------------------
def test_admin_clients_list_and_get(api: Api) -> None:
    status, body = api.admin("GET", "clients")
    assert status == 200
    assert len(body["clients"]) == 30
    assert list(body["clients"][0])[:3] == ["CODCLI", "CCOCLI", "NIFCLI"]
    assert api.admin("GET", f"clients?ejercicio={PREVIOUS}") == (200, {"clients": []})
    assert api.admin("GET", "clients?base_datos=FS999") == (200, {"clients": []})
    assert api.admin("GET", "clients/99999")[0] == 404
    assert api.admin("GET", "clients?ejercicio=../x")[0] == 400


def test_admin_patch_stamps_fumcli(api: Api) -> None:
    api.config(now="2030-01-02T03:04:05")
    api.login()
    status, row = api.admin("PATCH", "clients/1", {"EMACLI": "nuevo@example.es"})
    assert status == 200
    assert row["EMACLI"] == "nuevo@example.es"
    assert row["FUMCLI"] == "2030-01-02T00:00:00"
    _, row = api.admin("PATCH", "clients/1", {"TELCLI": "1", "FUMCLI": "2029-12-31"})
    assert row["FUMCLI"] == "2029-12-31T00:00:00"
    assert api.admin("PATCH", "clients/1", {"NOPE": 1})[0] == 400
    assert api.admin("PATCH", "clients/1", {"POBCLI": "x" * 31})[0] == 400
    assert api.admin("PATCH", "clients/4040", {"TELCLI": "1"})[0] == 404
    # the change is visible through the API
    assert as_dicts(api.carga("CODCLI=1")["resultado"])[0]["EMACLI"] == "nuevo@example.es"


def test_admin_create_and_delete(api: Api) -> None:
    api.config(now="2030-01-02T03:04:05")
    api.login()
    top = max(r["CODCLI"] for r in api.admin("GET", "clients")[1]["clients"])
    status, row = api.admin("POST", "clients", {"NOFCLI": "María José Fernández Gómez"})
    assert status == 201
    assert row["CODCLI"] == top + 1
    assert row["FALCLI"] == "2030-01-02T00:00:00"
    assert row["FUMCLI"] == "2030-01-02T00:00:00"
    status, row = api.admin("POST", "clients", {"CODCLI": 5555, "NOFCLI": "x"})
    assert status == 201
    assert row["CODCLI"] == 5555
    assert api.admin("POST", "clients", {"CODCLI": 5555})[0] == 409
    assert api.admin("DELETE", "clients/5555") == (200, {"deleted": 5555})
    assert api.admin("DELETE", "clients/5555")[0] == 404
    assert api.carga("CODCLI=5555")["resultado"] is None


def test_admin_seed_replaces_data(api: Api) -> None:
    api.escribir({"CODCLI": 9999, "NOFCLI": "extra"})
    status, body = api.admin("POST", "seed", {"clients": 12, "seed": 3})
    assert status == 200
    assert body["seeded"] == 12
    rows = api.admin("GET", "clients")[1]["clients"]
    assert len(rows) == 12
    assert 9999 not in [r["CODCLI"] for r in rows]
    again = api.admin("POST", "seed", {"clients": 12, "seed": 3})
    assert again[0] == 200
    assert api.admin("GET", "clients")[1]["clients"] == rows


def test_admin_routes_are_not_logged(api: Api) -> None:
    api.client.delete("/_sandbox/requests")
    api.admin("GET", "clients")
    api.carga("CODCLI=1")
    log = api.client.get("/_sandbox/requests").json["requests"]
    assert [r["path"] for r in log] == ["/admin/CargaTabla"]  # the path as the client sent it


# -- switches null_sort and date_values (reference §9, §12) -------------------------------------
NEWEST = "SELECT TOP 4 CODCLI, FUMCLI FROM F_CLI ORDER BY FUMCLI DESC, CODCLI DESC"


def test_null_sort_switch(api: Api) -> None:
    for code in (2, 3):
        assert api.admin("PATCH", f"clients/{code}", {"FUMCLI": None})[0] == 200
    low = as_dicts(api.consulta(NEWEST)["resultado"])
    assert all(row["FUMCLI"] is not None for row in low)  # NULL lowest: last under DESC
    api.config(switches={"null_sort": "high"})
    high = as_dicts(api.consulta(NEWEST)["resultado"])
    assert [(r["CODCLI"], r["FUMCLI"]) for r in high[:2]] == [(3, None), (2, None)]
    assert high[2]["FUMCLI"] == low[0]["FUMCLI"]
    ascending = as_dicts(api.carga("1=1 ORDER BY FUMCLI, CODCLI")["resultado"])
    assert [r["FUMCLI"] is None for r in ascending[-2:]] == [True, True]  # last ascending
    filtered = api.consulta(NEWEST.replace("FROM F_CLI", "FROM F_CLI WHERE FUMCLI IS NOT NULL"))
    assert all(row["FUMCLI"] is not None for row in as_dicts(filtered["resultado"]))


def test_null_order_rewrites_only_the_last_order_by() -> None:
    from sandbox.factusol.sql import null_order

    sql = "SELECT A FROM T WHERE B IN (SELECT C FROM U ORDER BY C) ORDER BY F(A, B) DESC, A"
    assert null_order(sql, "low") == sql
    assert null_order(sql, "high") == (
        "SELECT A FROM T WHERE B IN (SELECT C FROM U ORDER BY C) "
        "ORDER BY F(A, B) DESC NULLS FIRST, A NULLS LAST"
    )


def test_date_values_switch(api: Api) -> None:
    api.admin("PATCH", "clients/2", {"FUMCLI": "2026-03-04"})
    api.admin("PATCH", "clients/3", {"FUMCLI": "2026-03-04T09:15:00"})
    query = "SELECT TOP 2 CODCLI, FUMCLI FROM F_CLI WHERE CODCLI IN (2, 3) ORDER BY CODCLI"

    def fumcli() -> list[Any]:
        return [row["FUMCLI"] for row in as_dicts(api.consulta(query)["resultado"])]

    assert fumcli() == ["2026-03-04T00:00:00", "2026-03-04T09:15:00"]
    api.config(switches={"date_values": "bare_date"})
    assert fumcli() == ["2026-03-04", "2026-03-04T09:15:00"]  # a date without time is bare
    assert as_dicts(api.carga("FUMCLI = '2026-03-04'")["resultado"])[0]["CODCLI"] == 2
    api.admin("PATCH", "clients/4", {"FUMCLI": "2030-01-01"})  # the newest by far
    api.config(switches={"date_values": "text_dmy"})
    assert fumcli() == ["04/03/2026 00:00:00", "04/03/2026 09:15:00"]
    newest = as_dicts(api.consulta(NEWEST)["resultado"])
    assert newest[0]["CODCLI"] != 4  # sorted as text, day of month first: "01/01/2030" is low
    api.config(switches={"date_values": "datetime"})
    assert fumcli() == ["2026-03-04T00:00:00", "2026-03-04T09:15:00"]
    assert as_dicts(api.consulta(NEWEST)["resultado"])[0]["CODCLI"] == 4
