"""The FactuSOL emulator as a real server process on port 0, driven with plain `requests`."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

YEAR = str(dt.date.today().year)
LOGIN = {
    "codigoFabricante": "1234",
    "codigoCliente": "56789",
    "baseDatosCliente": "FS001",
    "password": base64.b64encode(b"sandbox-password").decode(),
}


@contextmanager
def server(data_dir: Path, *extra: str) -> Iterator[str]:
    cmd = [sys.executable, "-m", "sandbox", "factusol", "serve", "--port", "0"]
    cmd += ["--host", "127.0.0.1", "--data-dir", str(data_dir), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        url = ""
        for line in proc.stdout:
            match = re.search(r"sandbox factusol listening on (http://127\.0\.0\.1:\d+)", line)
            if match:
                url = match.group(1)
                break
        assert url, "server did not start"
        assert not url.endswith(":0")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def login(url: str, **overrides: Any) -> str:
    body = requests.post(f"{url}/login/Autenticar", json={**LOGIN, **overrides}, timeout=10).json()
    assert body["respuesta"] == "OK", body
    token: str = body["resultado"]
    return token


def call(url: str, token: str, action: str, timeout: float = 10, **body: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    resp = requests.post(f"{url}/admin/{action}", json=body, headers=headers, timeout=timeout)
    resp.raise_for_status()
    return resp.json()


def test_real_server_roundtrip_persistence_and_faults(tmp_path: Path) -> None:
    seeded = subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox",
            "factusol",
            "seed",
            "--data-dir",
            str(tmp_path),
            "--clients",
            "25",
            "--seed",
            "42",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "seeded 25 clients" in seeded.stdout

    with server(tmp_path) as url:
        token = login(url)
        rows = call(url, token, "CargaTabla", ejercicio=YEAR, tabla="F_CLI", filtro="1=1")
        assert len(rows["resultado"]) == 25
        registro = [
            {"columna": "CODCLI", "dato": 100},
            {"columna": "NOFCLI", "dato": "Construcciones Pérez Núñez, S.L."},
        ]
        written = call(
            url, token, "EscribirRegistro", ejercicio=YEAR, tabla="F_CLI", registro=registro
        )
        assert written == {"resultado": "", "respuesta": "OK"}
        # BorrarRegistros: a GET with the URL-encoded filter in the path
        resp = requests.get(
            f"{url}/admin/BorrarRegistros/{YEAR}/F_CLI/CODCLI%3D1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert resp.json() == {"resultado": "", "respuesta": "OK"}
        # real 404 text carries the URL as sent
        resp = requests.get(f"{url}/admin/Nope", timeout=10)
        assert resp.status_code == 404
        assert resp.json()["Message"].endswith(f"request URI '{url}/admin/Nope'.")

        # faults: dropped connection, slow response, then off again; admin routes unaffected
        requests.post(f"{url}/_sandbox/config", json={"faults": {"drop_rate": 1.0}}, timeout=10)
        with pytest.raises(requests.ConnectionError):
            call(url, token, "CargaTabla", ejercicio=YEAR, tabla="F_CLI", filtro="1=1")
        assert requests.get(f"{url}/_sandbox/clients/100", timeout=10).status_code == 200
        requests.post(
            f"{url}/_sandbox/config",
            json={"faults": {"drop_rate": 0.0, "slow_rate": 1.0, "slow_seconds": 1.0}},
            timeout=10,
        )
        with pytest.raises(requests.Timeout):
            call(url, token, "CargaTabla", 0.3, ejercicio=YEAR, tabla="F_CLI", filtro="1=1")
        requests.post(f"{url}/_sandbox/config", json={"faults": {"slow_rate": 0.0}}, timeout=10)
        deadline = time.monotonic() + 10  # the slow call is logged once its sleep ends
        while time.monotonic() < deadline:
            log = requests.get(f"{url}/_sandbox/requests", timeout=10).json()["requests"]
            if [r["fault"] for r in log][-2:] == ["drop", "slow"]:
                break
            time.sleep(0.05)
        assert [r["fault"] for r in log][-2:] == ["drop", "slow"]

    # persistence across a restart; the old token still verifies (same signing key)
    with server(tmp_path) as url:
        body = call(url, token, "CargaTabla", ejercicio=YEAR, tabla="F_CLI", filtro="CODCLI=100")
        assert body["resultado"][0][3] == {
            "columna": "NOFCLI",
            "dato": "Construcciones Pérez Núñez, S.L.",
        }
        assert (
            call(url, token, "CargaTabla", ejercicio=YEAR, tabla="F_CLI", filtro="CODCLI=1")[
                "resultado"
            ]
            is None
        )
        clients = requests.get(f"{url}/_sandbox/clients", timeout=10).json()["clients"]
        assert len(clients) == 25


def test_real_server_config_file_and_credentials(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "switches": {"ko_rate": 1.0, "token_ttl_seconds": 60},
                "faults": {"throttle_rate": 0.0},
            }
        ),
        encoding="utf-8",
    )
    extra = ["--codigo-fabricante", "77", "--codigo-cliente", "88", "--base-datos", "3FS003"]
    extra += ["--password", "otra", "--config", str(config)]
    with server(tmp_path / "data", *extra) as url:
        password = base64.b64encode(b"otra").decode()
        token = login(
            url,
            codigoFabricante=77,
            codigoCliente=88,
            baseDatosCliente="3FS003",
            password=password,
        )
        body = call(url, token, "CargaTabla", ejercicio=YEAR, tabla="F_CLI", filtro="1=1")
        assert body == {"resultado": "", "respuesta": "KO"}
        switches = requests.get(f"{url}/_sandbox/config", timeout=10).json()["switches"]
        assert switches["token_ttl_seconds"] == 60
        # form-encoded login over the wire
        resp = requests.post(f"{url}/login/autenticar", data=LOGIN, timeout=10)
        assert resp.json() == {"resultado": "", "respuesta": "KO"}  # default credentials refused
