"""fcsync-activate against both sandboxes (real servers on loopback, the checks in-process).

Every failing case must say what is wrong on one line and write nothing: the sandboxes' request
logs are checked for writes. The one write the command may make, creating the missing link
field, happens only when every other check passed.
"""

from __future__ import annotations

import base64
import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sandbox.launcher import SandboxProcess, meltano_env
from sync_activation import FAIL, OK, SKIP, Settings, main, run_checks

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "sandbox-password"  # the sandboxes' defaults
API_KEY = "sandbox-api-key"
CLIENTS, CONTACTS = 30, 12
THIS_YEAR = dt.datetime.now(ZoneInfo("Europe/Madrid")).year


@pytest.fixture(scope="module")
def factusol(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    proc = SandboxProcess("factusol", tmp_path_factory.mktemp("factusol"))
    proc.seed("--clients", str(CLIENTS), "--seed", "7")
    with proc.start():
        yield proc


@pytest.fixture(scope="module")
def clientify(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    proc = SandboxProcess("clientify", tmp_path_factory.mktemp("clientify"))
    proc.seed("--contacts", str(CONTACTS), "--seed", "7")  # no factusol_id definition
    with proc.start():
        yield proc


@pytest.fixture
def sandboxes(
    factusol: SandboxProcess, clientify: SandboxProcess
) -> tuple[SandboxProcess, SandboxProcess]:
    """Both servers as a fresh account: reseeded Clientify (no link field), default switches,
    empty request logs."""
    clientify.admin("POST", "seed", {"contacts": CONTACTS, "seed": 7})
    clientify.configure(switches={"custom_field_create": "accept"})
    factusol.clear_requests()
    clientify.clear_requests()
    return factusol, clientify


def settings(factusol: SandboxProcess, clientify: SandboxProcess, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "codigo_fabricante": "1234",
        "codigo_cliente": "56789",
        "base_datos": "FS001",
        "password": PASSWORD,
        "clientify_api_key": API_KEY,
        "factusol_api_url": factusol.api_url,
        "clientify_api_url": clientify.api_url,
        "max_retries": 0,
        "timeout": 10.0,
    }
    values.update(changes)
    return Settings(**values)


def writes(proc: SandboxProcess) -> list[dict[str, Any]]:
    if proc.api == "factusol":
        words = ("escribirregistro", "actualizarregistro", "borrar")
        return [r for r in proc.requests_log() if any(w in r["path"].lower() for w in words)]
    return [r for r in proc.requests_log() if r["method"] in {"POST", "PUT", "PATCH", "DELETE"}]


def link_field_defined(clientify: SandboxProcess) -> bool:
    definitions = clientify.admin("GET", "custom-fields")["custom_fields"]
    return any(
        d["name"] == "factusol_id" and str(d["content_type"]).startswith("contact")
        for d in definitions
    )


def run(s: Settings) -> tuple[bool, list[str]]:
    lines: list[str] = []
    report = run_checks(s, emit=lambda line: lines.append(line.render(s.secrets())))
    return report.ok, lines


def one(lines: list[str], prefix: str) -> str:
    found = [line for line in lines if line.split(":", 1)[0].endswith(prefix)]
    assert len(found) == 1, (prefix, lines)
    return found[0]


def assert_no_secret(text: str, s: Settings) -> None:
    for secret in (s.password, s.clientify_api_key, PASSWORD, API_KEY):
        assert secret not in text
    assert base64.b64encode(PASSWORD.encode()).decode() not in text


def assert_nothing_written(factusol: SandboxProcess, clientify: SandboxProcess) -> None:
    assert writes(factusol) == []
    assert writes(clientify) == []
    assert not link_field_defined(clientify)


# ---------------------------------------------------------------------------------- passing


def test_a_fresh_account_passes_and_gets_the_link_field_then_finds_it(
    sandboxes: tuple[SandboxProcess, SandboxProcess],
) -> None:
    factusol, clientify = sandboxes
    s = settings(factusol, clientify)
    ok, lines = run(s)
    assert ok, lines
    assert all(line[0] == OK for line in lines), lines
    assert (
        one(lines, "FactuSOL clientes · clients")
        == f"✓ FactuSOL clientes · clients: {CLIENTS} clientes en F_CLI · clients"
    )
    assert f"{THIS_YEAR} (auto: el año en curso" in one(lines, "FactuSOL ejercicio · year")
    assert "ES, Europe/Madrid" in one(lines, "country and time zone")
    assert f"{CONTACTS} contactos" in one(lines, "Clientify contactos · contacts")
    assert "creado ahora" in one(lines, "custom field")
    # the one write: the definition, created last
    (created,) = writes(clientify)
    assert (created["method"], created["path"], created["status"]) == (
        "POST",
        "/v1/custom-fields/",
        201,
    )
    assert writes(factusol) == []
    assert link_field_defined(clientify)
    assert_no_secret("\n".join(lines), s)

    clientify.clear_requests()
    ok, lines = run(s)
    assert ok
    assert "existe en contactos" in one(lines, "custom field")
    assert writes(clientify) == []


def test_auto_falls_back_to_the_newest_year_that_exists(tmp_path: Path) -> None:
    last_year = THIS_YEAR - 1
    factusol = SandboxProcess(
        "factusol", tmp_path / "fs", config={"switches": {"ejercicios": [str(last_year)]}}
    )
    factusol.seed("--clients", "5", "--seed", "3", "--ejercicio", str(last_year))
    clientify = SandboxProcess("clientify", tmp_path / "cl")
    clientify.seed("--contacts", "2", "--seed", "3", "--with-link-field")
    with factusol.start(), clientify.start():
        ok, lines = run(settings(factusol, clientify))
    assert ok, lines
    year = one(lines, "FactuSOL ejercicio · year")
    assert year.startswith(
        f"✓ FactuSOL ejercicio · year: {last_year} (auto: {THIS_YEAR} aún no existe"
    )
    assert "5 clientes" in one(lines, "FactuSOL clientes · clients")


# ---------------------------------------------------------------------------------- failing


def test_wrong_factusol_password(sandboxes: tuple[SandboxProcess, SandboxProcess]) -> None:
    factusol, clientify = sandboxes
    s = settings(factusol, clientify, password="not-the-password")
    ok, lines = run(s)
    assert not ok
    login = one(lines, "FactuSOL acceso · login")
    assert login.startswith(f"{FAIL} ")
    assert "FactuSOL rechaza estas credenciales" in login
    # Clientify is still checked (one run shows every problem) but nothing is created
    assert one(lines, "Clientify acceso · login").startswith(OK)
    assert one(lines, "custom field").startswith(SKIP)
    assert_nothing_written(factusol, clientify)
    assert_no_secret("\n".join(lines), s)
    assert "not-the-password" not in "\n".join(lines)


def test_wrong_clientify_key(sandboxes: tuple[SandboxProcess, SandboxProcess]) -> None:
    factusol, clientify = sandboxes
    s = settings(factusol, clientify, clientify_api_key="wrong-key-123")
    ok, lines = run(s)
    assert not ok
    login = one(lines, "Clientify acceso · login")
    assert login.startswith(FAIL)
    assert "Clientify rechaza la API key (401)" in login
    assert one(lines, "FactuSOL acceso · login").startswith(OK)
    assert not any("custom field" in line for line in lines)
    assert_nothing_written(factusol, clientify)
    assert "wrong-key-123" not in "\n".join(lines)


def test_a_year_that_does_not_exist(sandboxes: tuple[SandboxProcess, SandboxProcess]) -> None:
    factusol, clientify = sandboxes
    s = settings(factusol, clientify, ejercicio="2019")
    ok, lines = run(s)
    assert not ok
    assert one(lines, "FactuSOL acceso · login").startswith(OK)
    year = one(lines, "FactuSOL ejercicio · year")
    assert year.startswith(FAIL)
    assert "el ejercicio 2019 no existe en FS001" in year
    assert one(lines, "custom field").startswith(SKIP)
    assert_nothing_written(factusol, clientify)


def test_an_account_that_refuses_to_create_the_field(
    sandboxes: tuple[SandboxProcess, SandboxProcess],
) -> None:
    factusol, clientify = sandboxes
    clientify.configure(switches={"custom_field_create": "reject"})
    s = settings(factusol, clientify)
    ok, lines = run(s)
    assert not ok
    field = one(lines, "custom field")
    assert field.startswith(FAIL)
    assert "créelo a mano" in field
    assert "create it by hand" in field
    # every other check passed; the only write tried was the refused definition
    assert [line[0] for line in lines].count(FAIL) == 1
    assert [(w["method"], w["path"], w["status"]) for w in writes(clientify)] == [
        ("POST", "/v1/custom-fields/", 403)
    ]
    assert writes(factusol) == []
    assert not link_field_defined(clientify)


def test_missing_settings_are_named_and_nothing_is_called(
    sandboxes: tuple[SandboxProcess, SandboxProcess],
) -> None:
    factusol, clientify = sandboxes
    s = settings(factusol, clientify, password="", clientify_api_key="")
    ok, lines = run(s)
    assert not ok
    assert "FACTUSOL_PASSWORD" in one(lines, "FactuSOL credenciales · credentials")
    assert "CLIENTIFY_API_KEY" in one(lines, "Clientify credenciales · credentials")
    assert factusol.requests_log() == []
    assert clientify.requests_log() == []


# ---------------------------------------------------------------------------------- the command


def test_cli_from_env_exit_status_and_no_secret_printed(
    sandboxes: tuple[SandboxProcess, SandboxProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    factusol, clientify = sandboxes
    env = {
        "FACTUSOL_API_URL": factusol.api_url,
        "FACTUSOL_CODIGO_FABRICANTE": "1234",
        "FACTUSOL_CODIGO_CLIENTE": "56789",
        "FACTUSOL_BASE_DATOS": "FS001",
        "FACTUSOL_PASSWORD": PASSWORD,
        "CLIENTIFY_API_URL": clientify.api_url,
        "CLIENTIFY_API_KEY": API_KEY,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out: list[str] = []
    assert main(["--from-env", "--ejercicio", "2019"], out=out.append) == 1
    assert out[-1].startswith("No se puede sincronizar todavía")
    out.clear()
    assert main(["--from-env"], out=out.append) == 0
    assert out[0] == "Comprobando las cuentas · checking the accounts (ajustes de env)"
    assert out[-1] == "Listo: se puede sincronizar · Ready: a sync can run."
    assert_no_secret("\n".join(out), Settings(password=PASSWORD, clientify_api_key=API_KEY))


def test_cli_reads_every_plugins_config_through_meltano(
    sandboxes: tuple[SandboxProcess, SandboxProcess], tmp_path: Path
) -> None:
    """The way the sync reads its settings: Meltano's resolved config of each plugin (here the
    dev environment, pointed at the sandboxes through Meltano's env variables); a plugin given
    its own password is named as disagreeing, never its value."""
    factusol, clientify = sandboxes
    env = meltano_env(tmp_path, factusol=factusol, clientify=clientify, project_root=ROOT)
    from sync_activation.settings import settings_from_meltano

    meltano = str(Path(sys.executable).with_name("meltano"))
    s = settings_from_meltano("dev", project_root=ROOT, meltano=meltano, env=env)
    assert (s.factusol_api_url, s.clientify_api_url) == (factusol.api_url, clientify.api_url)
    assert (s.codigo_fabricante, s.base_datos, s.clientify_api_key) == ("1234", "FS001", API_KEY)
    assert s.password == PASSWORD
    assert s.disagreements == ()  # one variable per credential, read by every plugin

    env["TARGET_FACTUSOL_PASSWORD"] = "wrong-for-this-test"
    s = settings_from_meltano("dev", project_root=ROOT, meltano=meltano, env=env)
    assert s.password == "wrong-for-this-test"
    assert s.source == "meltano --environment=dev"
    (line,) = s.disagreements
    assert line.startswith(
        "FactuSOL password: target-factusol (TARGET_FACTUSOL_PASSWORD) no usa el mismo valor "
        "que tap-factusol, tap-factusol--full, target-clientify"
    )
    assert "wrong-for-this-test" not in repr(s)
    assert API_KEY not in repr(s)


def test_a_wrong_clientify_key_given_to_one_plugin_fails_the_check(
    sandboxes: tuple[SandboxProcess, SandboxProcess],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 23: target-clientify's own key outranked the shared one and the check, reading
    target-factusol's copy only, passed; the first run then failed."""
    factusol, clientify = sandboxes
    env = meltano_env(tmp_path, factusol=factusol, clientify=clientify, project_root=ROOT)
    env["TARGET_CLIENTIFY_API_KEY"] = "wrong-key-for-one-plugin"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out: list[str] = []
    meltano = str(Path(sys.executable).with_name("meltano"))
    argv = ["--environment", "dev", "--project-root", str(ROOT), "--meltano", meltano]
    assert main(argv, out=out.append) == 1, out
    failed = [line for line in out if line.startswith(FAIL)]
    assert failed == [
        "✗ Ajustes de los plugins · plugin settings: Clientify api_key: target-clientify "
        "(TARGET_CLIENTIFY_API_KEY) no usa el mismo valor que tap-clientify, "
        "tap-clientify--full, target-factusol · does not use the same value: quite esa "
        "variable o use la compartida · unset that variable or use the shared one"
    ]
    assert one(out, "custom field").startswith(SKIP)  # nothing created
    assert_nothing_written(factusol, clientify)
    assert "wrong-key-for-one-plugin" not in "\n".join(out)
    assert_no_secret("\n".join(out), Settings(password=PASSWORD, clientify_api_key=API_KEY))


def test_make_activate_end_to_end_through_meltano(
    sandboxes: tuple[SandboxProcess, SandboxProcess],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What `make activate ENV=dev` runs, with dev pointed at these sandboxes."""
    factusol, clientify = sandboxes
    env = meltano_env(tmp_path, factusol=factusol, clientify=clientify, project_root=ROOT)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out: list[str] = []
    meltano = str(Path(sys.executable).with_name("meltano"))
    argv = ["--environment", "dev", "--project-root", str(ROOT), "--meltano", meltano]
    assert main(argv, out=out.append) == 0, out
    assert out[0].endswith("(ajustes de meltano --environment=dev)")
    assert "creado ahora" in one(out, "custom field")
    assert_no_secret("\n".join(out), Settings(password=PASSWORD, clientify_api_key=API_KEY))


def test_cli_unknown_meltano_environment_exits_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MELTANO_DATABASE_URI", f"sqlite:///{tmp_path / 'meltano.db'}")
    out: list[str] = []
    code = main(["--environment", "no-such-env", "--project-root", str(ROOT)], out=out.append)
    assert code == 2
    (line,) = out
    assert line.startswith("✗ Ajustes · settings: `meltano --environment=no-such-env config")
