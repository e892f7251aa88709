"""FactusolClient against mocked HTTP (responses): auth, envelope, retries, reads, writes."""

from __future__ import annotations

import base64
import json
import logging
import threading
import tracemalloc
from typing import Any

import pytest
import requests
import responses
from factusol_api import (
    F_CLI_COLUMNS,
    FactusolAuthError,
    FactusolClient,
    FactusolCredentials,
    FactusolDatabaseMissingError,
    FactusolError,
    FactusolRecordError,
    FactusolRecordExistsError,
    FactusolTransientError,
)

API = "https://api.factusol.test"
LOGIN = f"{API}/login/Autenticar"
QUERY = f"{API}/admin/LanzarConsulta"
LOAD = f"{API}/admin/CargaTabla"
INSERT = f"{API}/admin/EscribirRegistro"
UPDATE = f"{API}/admin/ActualizarRegistro"
PASSWORD = "s3cr3t-Pässword"
PASSWORD_B64 = base64.b64encode(PASSWORD.encode()).decode()
CREDS = FactusolCredentials(
    codigo_fabricante="1234", codigo_cliente="56789", base_datos="FS001", password=PASSWORD
)
T0 = 1_790_000_000.0  # 2026-09-21 UTC


def make_jwt(exp: float | None, marker: str = "a") -> str:
    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    payload: dict[str, Any] = {"role": "AdminUser", "n": marker}
    if exp is not None:
        payload["exp"] = int(exp)
    return f"{b64({'alg': 'HS256'})}.{b64(payload)}.c2lnbmF0dXJl{marker}"


def envelope(resultado: Any, respuesta: str = "OK") -> dict[str, Any]:
    return {"resultado": resultado, "respuesta": respuesta}


def cells(*rows: dict[str, Any]) -> list[list[dict[str, Any]]]:
    return [[{"columna": k, "dato": v} for k, v in row.items()] for row in rows]


def body(call: Any) -> dict[str, Any]:
    return json.loads(call.request.body)


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(clock: FakeClock, sleeps: list[float]) -> FactusolClient:
    return FactusolClient(
        CREDS, api_url=API, ejercicio="2026", clock=clock, sleep=sleeps.append, max_retries=3
    )


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def add_login(rsps: responses.RequestsMock, token: str | None = None) -> str:
    token = token or make_jwt(T0 + 180)
    rsps.post(LOGIN, json=envelope(token))
    return token


def calls_to(rsps: responses.RequestsMock, url: str) -> list[Any]:
    return [c for c in rsps.calls if c.request.url == url]


# ----------------------------------------------------------------------------- login and tokens


def test_login_sends_codes_and_base64_password_then_bearer(rsps, client):
    token = add_login(rsps)
    rsps.post(QUERY, json=envelope(cells({"CODCLI": 1})))
    assert client.query("SELECT TOP 1 CODCLI FROM F_CLI") == [{"CODCLI": 1}]
    login = calls_to(rsps, LOGIN)[0]
    assert body(login) == {
        "codigoFabricante": "1234",
        "codigoCliente": "56789",
        "baseDatosCliente": "FS001",
        "password": PASSWORD_B64,
    }
    query = calls_to(rsps, QUERY)[0]
    assert query.request.headers["Authorization"] == f"Bearer {token}"
    assert body(query) == {"ejercicio": "2026", "consulta": "SELECT TOP 1 CODCLI FROM F_CLI"}


def test_token_is_cached_and_renewed_30s_before_exp(rsps, client, clock):
    first, second = make_jwt(T0 + 180, "1"), make_jwt(T0 + 400, "2")
    rsps.post(LOGIN, json=envelope(first))
    rsps.post(LOGIN, json=envelope(second))
    rsps.post(QUERY, json=envelope(None))
    client.query("SELECT 1")
    clock.now = T0 + 149  # 31 s before exp: still the cached token
    client.query("SELECT 1")
    assert client.calls["login"] == 1
    clock.now = T0 + 150  # 30 s before exp: renew
    client.query("SELECT 1")
    assert client.calls["login"] == 2
    auth = [c.request.headers["Authorization"] for c in calls_to(rsps, QUERY)]
    assert auth == [f"Bearer {first}", f"Bearer {first}", f"Bearer {second}"]


def test_token_without_exp_is_assumed_to_last_150s(rsps, client, clock):
    rsps.post(LOGIN, json=envelope("opaque-token-without-exp"))
    rsps.post(QUERY, json=envelope(None))
    client.query("SELECT 1")
    clock.now = T0 + 149
    client.query("SELECT 1")
    assert client.calls["login"] == 1
    clock.now = T0 + 150
    client.query("SELECT 1")
    assert client.calls["login"] == 2


def test_unauthorized_envelope_logs_in_again_and_retries_once(rsps, client):
    old, new = make_jwt(T0 + 180, "old"), make_jwt(T0 + 180, "new")
    rsps.post(LOGIN, json=envelope(old))
    rsps.post(LOGIN, json=envelope(new))
    rsps.post(QUERY, json=envelope("", "Unauthorized"))
    rsps.post(QUERY, json=envelope(cells({"CODCLI": 7})))
    assert client.query("SELECT CODCLI FROM F_CLI") == [{"CODCLI": 7}]
    auth = [c.request.headers["Authorization"] for c in calls_to(rsps, QUERY)]
    assert auth == [f"Bearer {old}", f"Bearer {new}"]
    assert client.calls == {"login": 2, "query": 2}


def test_http_401_logs_in_again_and_retries_once(rsps, client):
    add_login(rsps)
    rsps.post(
        QUERY, status=401, json={"Message": "Authorization has been denied for this request."}
    )
    rsps.post(QUERY, json=envelope(cells({"CODCLI": 3})))
    assert client.query("SELECT CODCLI FROM F_CLI") == [{"CODCLI": 3}]
    assert client.calls == {"login": 2, "query": 2}


def test_token_refused_twice_is_an_auth_error(rsps, client):
    add_login(rsps)
    rsps.post(QUERY, json=envelope("", "Unauthorized"))
    with pytest.raises(FactusolAuthError, match="token refused again"):
        client.query("SELECT 1")
    assert client.calls == {"login": 2, "query": 2}


@pytest.mark.parametrize(
    "answer",
    [envelope("", "KO"), envelope("", "OK"), envelope(None, "LoginIncorrecto")],
)
def test_login_failure_names_the_credential_set_but_never_the_password(rsps, client, answer):
    rsps.post(LOGIN, json=answer)
    with pytest.raises(FactusolAuthError) as info:
        client.query("SELECT 1")
    message = str(info.value)
    assert "fabricante=1234 cliente=56789 base_datos=FS001" in message
    assert PASSWORD not in message
    assert PASSWORD_B64 not in message
    assert info.value.route == "/login/Autenticar"
    assert not calls_to(rsps, QUERY)


# ----------------------------------------------------------------------------- envelope and retries


def test_ko_is_retried_with_backoff_then_ok(rsps, client, sleeps):
    add_login(rsps)
    rsps.post(QUERY, json=envelope("", "KO"))
    rsps.post(QUERY, json=envelope("", "KO"))
    rsps.post(QUERY, json=envelope(cells({"CODCLI": 1})))
    assert client.query("SELECT 1") == [{"CODCLI": 1}]
    assert sleeps == [0.5, 1.0]
    assert client.calls["query"] == 3


def test_ko_exhausted_raises_transient_error_with_one_line_message(rsps, client, sleeps):
    add_login(rsps)
    rsps.post(QUERY, json=envelope("", "KO"))
    with pytest.raises(FactusolTransientError) as info:
        client.query("SELECT 1")
    assert "\n" not in str(info.value)
    assert str(info.value) == (
        "FactuSOL /admin/LanzarConsulta: respuesta KO; gave up after 4 attempts"
    )
    assert sleeps == [0.5, 1.0, 2.0]
    assert client.calls["query"] == 4


def test_429_retry_after_is_honored(rsps, client, sleeps):
    add_login(rsps)
    rsps.post(QUERY, status=429, headers={"Retry-After": "7"})
    rsps.post(QUERY, json=envelope(None))
    assert client.query("SELECT 1") == []
    assert sleeps == [7.0]


def test_retry_after_is_capped(rsps, clock, sleeps):
    client = FactusolClient(
        CREDS, api_url=API, ejercicio="2026", clock=clock, sleep=sleeps.append, max_backoff=20
    )
    add_login(rsps)
    rsps.post(QUERY, status=503, headers={"Retry-After": "3600"})
    rsps.post(QUERY, json=envelope(None))
    client.query("SELECT 1")
    assert sleeps == [20.0]


def test_5xx_connection_errors_and_timeouts_are_retried(rsps, client, sleeps):
    add_login(rsps)
    rsps.post(QUERY, status=502)
    rsps.post(QUERY, body=requests.ConnectionError("reset"))
    rsps.post(QUERY, body=requests.ReadTimeout("slow"))
    rsps.post(QUERY, json=envelope(cells({"CODCLI": 5})))
    assert client.query("SELECT 1") == [{"CODCLI": 5}]
    assert sleeps == [0.5, 1.0, 2.0]


def test_other_http_errors_are_not_retried(rsps, client, sleeps):
    add_login(rsps)
    rsps.post(QUERY, status=404, json={"Message": "No HTTP resource was found"})
    with pytest.raises(FactusolError, match="HTTP 404") as info:
        client.query("SELECT 1")
    assert info.value.code == "HTTP 404"
    assert sleeps == []


def test_bd_existe_registro_raises_record_exists_error(rsps, client):
    add_login(rsps)
    rsps.post(INSERT, json=envelope("", "BDExisteRegistro"))
    with pytest.raises(FactusolRecordExistsError) as info:
        client.insert_client({"CODCLI": 12, "NOFCLI": "Ana Pérez"})
    assert isinstance(info.value, FactusolRecordError)
    assert info.value.code == "BDExisteRegistro"
    assert info.value.route == "/admin/EscribirRegistro"
    assert "Ana" not in str(info.value)


def test_other_codes_raise_typed_errors_naming_code_and_route(rsps, client):
    add_login(rsps)
    rsps.post(UPDATE, json=envelope("", "BDEscribirRegistroError"))
    rsps.post(QUERY, json=envelope("", "BDNoExiste"))
    with pytest.raises(FactusolRecordError) as write_error:
        client.update_client({"CODCLI": 12, "TELCLI": "600000000"})
    assert write_error.value.code == "BDEscribirRegistroError"
    assert "/admin/ActualizarRegistro" in str(write_error.value)
    assert "600000000" not in str(write_error.value)
    with pytest.raises(FactusolDatabaseMissingError) as read_error:
        client.query("SELECT 1")
    assert read_error.value.code == "BDNoExiste"


def test_null_resultado_means_no_rows(rsps, client):
    add_login(rsps)
    rsps.post(LOAD, json=envelope(None))
    assert client.load_table("F_CLI", "CODCLI = 999") == []


def test_load_table_sends_the_three_fields_and_refuses_an_empty_filter(rsps, client):
    add_login(rsps)
    rsps.post(
        LOAD, json=envelope(cells({"CODCLI": 1, "NOFCLI": "A"}, {"CODCLI": 2, "NOFCLI": "B"}))
    )
    assert client.load_table("F_CLI") == [
        {"CODCLI": 1, "NOFCLI": "A"},
        {"CODCLI": 2, "NOFCLI": "B"},
    ]
    assert body(calls_to(rsps, LOAD)[0]) == {"ejercicio": "2026", "tabla": "F_CLI", "filtro": "1=1"}
    with pytest.raises(ValueError, match="filtro"):
        client.load_table("F_CLI", "  ")
    with pytest.raises(ValueError, match="identifier"):
        client.load_table("F_CLI; DROP TABLE F_CLI", "1=1")


def test_query_accepts_only_select(client):
    with pytest.raises(ValueError, match="SELECT"):
        client.query("DELETE FROM F_CLI")


def test_calls_counter_by_kind(rsps, client):
    add_login(rsps)
    rsps.post(QUERY, json=envelope(None))
    rsps.post(LOAD, json=envelope(None))
    rsps.post(INSERT, json=envelope(""))
    client.query("SELECT 1")
    client.load_table("F_CLI")
    client.insert_client({"CODCLI": 1})
    assert client.calls == {"login": 1, "query": 1, "read": 1, "write": 1}


def test_token_renewal_is_thread_safe(rsps, client):
    add_login(rsps)
    rsps.post(QUERY, json=envelope(None))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                client.query("SELECT 1")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert client.calls == {"login": 1, "query": 40}


# ----------------------------------------------------------------------------- injection


INJECTIONS = ["' OR 1=1 --", "'; DELETE FROM F_CLI; --"]


@pytest.mark.parametrize("bad", [*INJECTIONS, "1 OR 1=1", "12a", 1.5, None, True, "0x10"])
def test_non_integer_codes_are_rejected_before_any_call(rsps, client, bad):
    with pytest.raises(ValueError, match="integer"):
        client.get_clients([1, bad])
    assert len(rsps.calls) == 0


def test_get_clients_sends_an_in_list_of_validated_integers(rsps, client):
    add_login(rsps)
    rsps.post(LOAD, json=envelope(cells({"CODCLI": 3}, {"CODCLI": 1})))
    rsps.post(LOAD, json=envelope(cells({"CODCLI": 10})))
    rows = client.get_clients(["3", 1, 10, 3, " 1 "], batch_size=2)
    assert [r["CODCLI"] for r in rows] == [1, 3, 10]
    assert [body(c)["filtro"] for c in calls_to(rsps, LOAD)] == [
        "CODCLI IN (1, 3)",
        "CODCLI IN (10)",
    ]
    assert client.get_clients([]) == []


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_in_a_literal_cannot_alter_the_filter(rsps, client, evil):
    from factusol_api import sql_literal

    add_login(rsps)
    rsps.post(LOAD, json=envelope(None))
    client.load_table("F_CLI", f"NIFCLI = {sql_literal(evil)}")
    sent = body(calls_to(rsps, LOAD)[0])["filtro"]
    assert sent == "NIFCLI = '" + evil.replace("'", "''") + "'"
    # The literal is one quoted token: every quote inside it is doubled.
    inner = sent[len("NIFCLI = '") : -1]
    assert inner.replace("''", "").count("'") == 0


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_in_written_data_is_sent_as_data(rsps, client, evil):
    add_login(rsps)
    rsps.post(INSERT, json=envelope(""))
    client.insert_client({"CODCLI": 5, "NOFCLI": evil, "NIFCLI": evil[:18]})
    assert body(calls_to(rsps, INSERT)[0])["registro"] == [
        {"columna": "CODCLI", "dato": 5},
        {"columna": "NOFCLI", "dato": evil},
        {"columna": "NIFCLI", "dato": evil[:18]},
    ]


@pytest.mark.parametrize("evil", [*INJECTIONS, "CODCLI FROM F_CLI; --"])
def test_injection_in_column_names_is_refused(rsps, client, evil):
    with pytest.raises(ValueError, match="unknown column"):
        list(client.iter_clients(columns=["CODCLI", evil]))
    with pytest.raises(ValueError, match="unknown column"):
        client.insert_client({"CODCLI": 1, evil: "x"})
    with pytest.raises(ValueError, match="integer"):
        list(client.iter_clients(after_code=evil))  # type: ignore[arg-type]
    assert len(rsps.calls) == 0


# ----------------------------------------------------------------------------- writes


def test_unknown_column_in_a_write_raises_before_any_call(rsps, client):
    with pytest.raises(ValueError, match="unknown column") as info:
        client.insert_client({"CODCLI": 1, "NOMCLI": "x", "CIFCLI": "B1"})
    assert "CIFCLI" in str(info.value)
    assert "NOMCLI" in str(info.value)
    with pytest.raises(ValueError, match="CODCLI is required"):
        client.update_client({"NOFCLI": "x"})
    with pytest.raises(ValueError, match="nothing to update"):
        client.update_client({"CODCLI": 1})
    assert len(rsps.calls) == 0


def test_write_fits_values_to_the_columns(rsps, client, caplog):
    add_login(rsps)
    rsps.post(UPDATE, json=envelope(""))
    secret_name = "Nombre-" + "x" * 120
    with caplog.at_level(logging.WARNING, logger="factusol_api"):
        client.update_client(
            {
                "codcli": "42",
                "NOFCLI": secret_name,
                "FUMCLI": "2026-03-04T10:11:12",
                "FALCLI": "2026-01-02",
                "ESTCLI": True,
                "FINCLI": "1.25",
                "TELCLI": None,
                "OBSCLI": "y" * 5000,
            }
        )
    assert body(calls_to(rsps, UPDATE)[0]) == {
        "ejercicio": "2026",
        "tabla": "F_CLI",
        "registro": [
            {"columna": "CODCLI", "dato": 42},
            {"columna": "NOFCLI", "dato": secret_name[:100]},
            {"columna": "FUMCLI", "dato": "2026-03-04"},
            {"columna": "FALCLI", "dato": "2026-01-02"},
            {"columna": "ESTCLI", "dato": 1},
            {"columna": "FINCLI", "dato": 1.25},
            {"columna": "OBSCLI", "dato": "y" * 5000},
        ],
    }
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["F_CLI.NOFCLI truncated from 127 to 100 characters for CODCLI 42"]
    assert "Nombre" not in caplog.text


@pytest.mark.parametrize(
    ("column", "value", "match"),
    [
        ("ESTCLI", "uno", "integer"),
        ("DP1CLI", 70000, "out of range"),
        ("FINCLI", "abc", "number"),
        ("FUMCLI", "ayer", "date"),
        ("NOFCLI", "a\x00b", "NUL"),
    ],
)
def test_bad_values_are_refused_before_any_call(rsps, client, column, value, match):
    with pytest.raises(ValueError, match=match):
        client.insert_client({"CODCLI": 1, column: value})
    assert len(rsps.calls) == 0


def test_max_client_code(rsps, client):
    add_login(rsps)
    rsps.post(QUERY, json=envelope(None))
    rsps.post(QUERY, json=envelope(cells({"CODCLI": 4531})))
    assert client.max_client_code() == 0
    assert client.max_client_code() == 4531
    assert body(calls_to(rsps, QUERY)[0])["consulta"] == (
        "SELECT TOP 1 CODCLI FROM F_CLI ORDER BY CODCLI DESC"
    )


def test_newest_clients_orders_by_fumcli_then_key_without_date_literals(rsps, client):
    add_login(rsps)
    rsps.post(QUERY, json=envelope(cells({"CODCLI": 7, "FUMCLI": "2026-01-02T00:00:00"})))
    rsps.post(QUERY, json=envelope(None))
    assert client.newest_clients(25, columns=["nofcli", "FUMCLI"]) == [
        {"CODCLI": 7, "FUMCLI": "2026-01-02T00:00:00"}
    ]
    assert client.newest_clients(3) == []
    assert [body(c)["consulta"] for c in calls_to(rsps, QUERY)] == [
        "SELECT TOP 25 CODCLI, FUMCLI, NOFCLI FROM F_CLI WHERE FUMCLI IS NOT NULL "
        "ORDER BY FUMCLI DESC, CODCLI DESC",
        "SELECT TOP 3 * FROM F_CLI WHERE FUMCLI IS NOT NULL ORDER BY FUMCLI DESC, CODCLI DESC",
    ]


@pytest.mark.parametrize("top", [0, -1, "5; DROP", 2.5, True])
def test_newest_clients_validates_top_and_columns(rsps, client, top):
    with pytest.raises(ValueError, match="integer"):
        client.newest_clients(top)
    with pytest.raises(ValueError, match="unknown column"):
        client.newest_clients(5, columns=["FUMCLI) --"])
    assert len(rsps.calls) == 0


# ----------------------------------------------------------------------------- keyset paging


def test_keyset_pages_are_requested_lazily(rsps, client):
    add_login(rsps)
    rsps.post(
        QUERY, json=envelope(cells({"CODCLI": 1, "FUMCLI": None}, {"CODCLI": 4, "FUMCLI": None}))
    )
    rsps.post(QUERY, json=envelope(cells({"CODCLI": 9, "FUMCLI": "2026-01-01T00:00:00"})))
    pages = client.iter_client_pages(page_size=2, columns=["FUMCLI"])
    assert client.calls["query"] == 0  # a generator: nothing sent yet
    first = next(pages)
    assert [r["CODCLI"] for r in first] == [1, 4]
    assert client.calls["query"] == 1
    second = next(pages)
    assert [r["CODCLI"] for r in second] == [9]
    assert next(pages, None) is None  # short page: no third query
    assert [body(c)["consulta"] for c in calls_to(rsps, QUERY)] == [
        "SELECT TOP 2 CODCLI, FUMCLI FROM F_CLI WHERE CODCLI > 0 ORDER BY CODCLI",
        "SELECT TOP 2 CODCLI, FUMCLI FROM F_CLI WHERE CODCLI > 4 ORDER BY CODCLI",
    ]


def test_iter_clients_full_pages_and_after_code(rsps, client):
    add_login(rsps)
    rsps.post(QUERY, json=envelope(cells({"CODCLI": 11}, {"CODCLI": 12})))
    rsps.post(QUERY, json=envelope(None))
    assert [r["CODCLI"] for r in client.iter_clients(page_size=2, after_code=10)] == [11, 12]
    assert [body(c)["consulta"] for c in calls_to(rsps, QUERY)] == [
        "SELECT TOP 2 * FROM F_CLI WHERE CODCLI > 10 ORDER BY CODCLI",
        "SELECT TOP 2 * FROM F_CLI WHERE CODCLI > 12 ORDER BY CODCLI",
    ]


def test_keyset_paging_that_does_not_advance_fails(rsps, client):
    add_login(rsps)
    rsps.post(QUERY, json=envelope(cells({"CODCLI": 1}, {"CODCLI": 2})))
    with pytest.raises(FactusolError, match="did not advance"):
        list(client.iter_clients(page_size=2, after_code=5))


def test_a_projection_that_silently_returns_nothing_is_detected(rsps, client):
    # Unknown columns give resultado null, not an error (reference §5.1).
    add_login(rsps)
    rsps.post(QUERY, json=envelope(None))
    rsps.post(QUERY, json=envelope(cells({"CODCLI": 1})))
    with pytest.raises(FactusolError, match="column probably does not exist"):
        list(client.iter_clients(columns=["FUMCLI"]))


class _PageSession:
    """A stand-in for requests.Session that builds pages on demand and keeps nothing."""

    def __init__(self, total_rows: int) -> None:
        self.total_rows = total_rows

    def post(self, url: str, json: dict[str, Any], **_: Any) -> Any:
        if url.endswith("/login/Autenticar"):
            return _Response(envelope(make_jwt(T0 + 180)))
        sql = json["consulta"]
        size = int(sql.split()[2])
        last = int(sql.split("CODCLI > ")[1].split()[0])
        codes = range(last + 1, min(last + size, self.total_rows) + 1)
        return _Response(
            envelope(cells(*({"CODCLI": c, "NOFCLI": "n" * 80} for c in codes)) or None)
        )

    def close(self) -> None:
        pass


class _Response:
    status_code = 200
    headers: dict[str, str] = {}  # noqa: RUF012

    def __init__(self, payload: dict[str, Any]) -> None:
        self._payload = payload

    def json(self) -> dict[str, Any]:
        return self._payload


def _peak_memory_of_scan(total_rows: int) -> int:
    client = FactusolClient(
        CREDS, api_url=API, ejercicio="2026", clock=FakeClock(), session=_PageSession(total_rows)
    )  # type: ignore[arg-type]
    tracemalloc.start()
    count = sum(1 for _ in client.iter_clients(page_size=100))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == total_rows
    return peak


def test_memory_does_not_grow_with_table_size():
    small = _peak_memory_of_scan(1_000)
    large = _peak_memory_of_scan(20_000)
    # 20x the rows, same page size: the peak is one page, not the table.
    assert large < small * 1.5


# ----------------------------------------------------------------------------- ejercicio


def test_ejercicio_auto_falls_back_to_the_newest_existing_year(rsps, clock, caplog):
    clock.now = 1_767_312_000.0  # 2026-01-02 00:00 UTC
    client = FactusolClient(CREDS, api_url=API, clock=clock, sleep=lambda _: None)
    add_login(rsps, make_jwt(clock.now + 180))
    rsps.post(QUERY, json=envelope("", "BDNoExiste"))
    rsps.post(QUERY, json=envelope("", "BDNoExiste"))
    rsps.post(QUERY, json=envelope(cells({"CODCLI": 1})))
    with caplog.at_level(logging.WARNING, logger="factusol_api"):
        assert client.ejercicio == "2024"
    assert [body(c)["ejercicio"] for c in calls_to(rsps, QUERY)] == ["2026", "2025", "2024"]
    assert body(calls_to(rsps, QUERY)[0])["consulta"] == "SELECT TOP 1 CODCLI FROM F_CLI"
    assert "using 2024" in caplog.text
    assert client.ejercicio == "2024"  # resolved once
    assert client.calls["query"] == 3


def test_ejercicio_auto_uses_the_current_year_in_the_configured_zone(rsps, clock):
    clock.now = 1_767_222_000.0  # 2025-12-31 23:00 UTC = 2026-01-01 00:00 Madrid
    client = FactusolClient(CREDS, api_url=API, clock=clock, sleep=lambda _: None)
    add_login(rsps, make_jwt(clock.now + 180))
    rsps.post(QUERY, json=envelope(None))
    assert client.ejercicio == "2026"


def test_ejercicio_auto_gives_up_after_five_earlier_years(rsps, clock):
    client = FactusolClient(CREDS, api_url=API, clock=clock, sleep=lambda _: None)
    add_login(rsps)
    rsps.post(QUERY, json=envelope("", "BDNoExiste"))
    with pytest.raises(FactusolDatabaseMissingError, match="2026, 2025, 2024, 2023, 2022, 2021"):
        _ = client.ejercicio
    assert client.calls["query"] == 6


def test_explicit_ejercicio_is_used_as_given(rsps, clock):
    client = FactusolClient(CREDS, api_url=API, ejercicio=2023, clock=clock)
    assert client.ejercicio == "2023"
    assert len(rsps.calls) == 0
    with pytest.raises(ValueError, match="ejercicio"):
        FactusolClient(CREDS, api_url=API, ejercicio="23")


# ----------------------------------------------------------------------------- url and secrets


@pytest.mark.parametrize(
    "url",
    [
        "https://api.sdelsol.com",
        "http://127.0.0.1:8765",
        "http://127.9.9.9",
        "http://localhost:80/",
        "http://[::1]:8765",
    ],
)
def test_https_or_loopback_urls_are_accepted(url):
    assert FactusolClient(CREDS, api_url=url).api_url == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "http://api.sdelsol.com",
        "http://10.0.0.1:8765",
        "ftp://127.0.0.1",
        "api.sdelsol.com",
        "http://user:pw@example.com",
    ],
)
def test_plain_http_to_a_remote_host_is_refused(url):
    with pytest.raises(ValueError, match="https") as info:
        FactusolClient(CREDS, api_url=url)
    assert "pw" not in str(info.value)


def test_password_and_token_never_in_reprs_errors_or_debug_logs(rsps, clock, caplog):
    token = make_jwt(T0 + 180, "tok")
    client = FactusolClient(CREDS, api_url=API, clock=clock, sleep=lambda _: None, max_retries=1)
    rsps.post(LOGIN, json=envelope(token))
    rsps.post(QUERY, json=envelope(None))  # ejercicio probe
    rsps.post(QUERY, json=envelope("", "Unauthorized"))
    rsps.post(QUERY, json=envelope("", "KO"))
    rsps.post(QUERY, json=envelope("", "KO"))
    with caplog.at_level(logging.DEBUG), pytest.raises(FactusolTransientError) as info:
        client.query("SELECT 1")
    texts = [caplog.text, repr(CREDS), str(CREDS), repr(client), str(info.value)]
    for text in texts:
        assert PASSWORD not in text
        assert PASSWORD_B64 not in text
        assert token not in text
        assert token.split(".")[1] not in text
    assert "password" not in repr(CREDS)


def test_columns_follow_the_reference():
    names = list(F_CLI_COLUMNS)
    assert len(names) == 205
    assert names[:5] == ["CODCLI", "CCOCLI", "NIFCLI", "NOFCLI", "NOCCLI"]
    assert names[-4:] == ["ATVCLI", "DECCLI", "SDCCLI", "CROCLI"]
    assert F_CLI_COLUMNS["FUMCLI"].kind == "datetime"
    assert F_CLI_COLUMNS["NOFCLI"].size == 100
    assert F_CLI_COLUMNS["OBSCLI"] == F_CLI_COLUMNS["OBSCLI"]._replace(kind="memo", size=None)
    assert [n for n, c in F_CLI_COLUMNS.items() if c.kind == "datetime"] == [
        "FALCLI",
        "FNACLI",
        "FUMCLI",
        "MFECLI",
    ]
    for invented in ("NOMCLI", "CIFCLI", "DIRCLI", "NACCLI"):
        assert invented not in F_CLI_COLUMNS


def test_short_lived_tokens_renew_at_half_life_and_survive_a_retry_pause(rsps, clock):
    # a 3 s token (the faults test's sandbox): renewed at 1.5 s, and a refusal after a retry
    # pause is a plain expiry (log in again), not "refused right after a fresh login"
    def sleep(seconds: float) -> None:
        clock.now += seconds

    client = FactusolClient(CREDS, api_url=API, ejercicio="2026", clock=clock, sleep=sleep)
    rsps.post(LOGIN, json=envelope(make_jwt(T0 + 3, "1")))
    rsps.post(LOGIN, json=envelope(make_jwt(T0 + 3, "2")))
    rsps.post(LOGIN, json=envelope(make_jwt(T0 + 20, "3")))
    rsps.post(QUERY, json=envelope("", "Unauthorized"))
    rsps.post(QUERY, status=504)
    rsps.post(QUERY, json=envelope("", "Unauthorized"))
    rsps.post(QUERY, json=envelope(cells({"CODCLI": 1})))
    assert client.query("SELECT CODCLI FROM F_CLI") == [{"CODCLI": 1}]
    assert client.calls["login"] == 3
