"""The Clientify emulator as a real process: `requests`, the third-party clientify-python 1.0.1
client (written against the real API, used unchanged), persistence across a restart."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from clientify.client import ClientifyClient

TOKEN = {"Authorization": "Token sandbox-api-key"}


class Server:
    def __init__(self, data_dir: Path, *extra: str) -> None:
        cmd = [
            sys.executable,
            "-m",
            "sandbox",
            "clientify",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            *extra,
        ]
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        self.url = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                self.url = match.group(1)
                break
            if not line and self.proc.poll() is not None:
                break
        assert self.url, "server did not start"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data")
    yield srv
    srv.stop()


@pytest.fixture
def cfy(server: Server, monkeypatch: pytest.MonkeyPatch) -> ClientifyClient:
    monkeypatch.setattr(ClientifyClient, "BASE_URL", f"{server.url}/v1")
    return ClientifyClient()


def test_clientify_python_works_unchanged(server: Server, cfy: ClientifyClient) -> None:
    assert cfy.authenticate("user@example.com", "secret") is True
    assert cfy.token == "sandbox-api-key"

    created = cfy.contacts.create_contact(
        {
            "first_name": "Ana",
            "last_name": "Ruiz",
            "email": "ana.ruiz@example.es",
            "phone": "+34 600 111 222",
            "tags": ["factusol"],
        }
    )
    assert isinstance(created, dict)
    assert created["emails"][0]["type"] == 4
    other = cfy.contacts.create_contact({"first_name": "Luis", "email": "luis@example.es"})

    listing = cfy.contacts.list_contacts()
    assert listing["count"] == 2
    assert [c["id"] for c in listing["results"]] == [other["id"], created["id"]]
    found = cfy.contacts.query_contacts({"email": "ana.ruiz@example.es"})
    assert [c["id"] for c in found["results"]] == [created["id"]]
    ignored = cfy.contacts.query_contacts({"taxpayer_identification_number": "nope"})
    assert ignored["count"] == 2  # the §2 trap, seen through a third-party client

    detail = cfy.contacts.contact_details(created["id"])
    assert detail == created
    edited = cfy.contacts.edit_contact_details(created["id"], {"last_name": "Ruiz Gil"})
    assert edited["last_name"] == "Ruiz Gil"
    assert edited["tags"] == ["factusol"]
    assert edited["modified"] > created["modified"]

    # 204, empty body. clientify-python catches only the stdlib JSONDecodeError; when simplejson
    # is installed requests raises simplejson's on the empty body (against the real API too).
    with contextlib.suppress(requests.JSONDecodeError):
        assert cfy.contacts.delete_contact(created["id"]) is None
    missing = cfy.contacts.contact_details(created["id"])
    assert json.loads(missing) == {"detail": "Not found."}  # the client hands back raw bytes

    cfy.token = "wrong"
    assert json.loads(cfy.contacts.list_contacts()) == {"detail": "Invalid token."}
    cfy.token = None
    assert json.loads(cfy.users.list_users()) == {"detail": "Api key not provided."}


def test_requests_pagination_over_http(server: Server) -> None:
    requests.post(f"{server.url}/_sandbox/seed", json={"contacts": 230, "seed": 5}, timeout=30)
    url: str | None = f"{server.url}/v1/contacts/?page_size=100&modified%5Bgte%5D=2000-01-01"
    seen: list[int] = []
    while url:
        resp = requests.get(url, headers=TOKEN, timeout=10)
        assert resp.status_code == 200
        body = resp.json()
        seen += [c["id"] for c in body["results"]]
        url = body["next"]
        if url:
            assert url.startswith(f"{server.url}/v1/contacts/?modified%5Bgte%5D=2000-01-01&page=")
    assert len(seen) == len(set(seen)) == 230
    past = requests.get(
        f"{server.url}/v1/contacts/?page=4&page_size=100", headers=TOKEN, timeout=10
    )
    assert past.status_code == 404
    assert past.json() == {"detail": "Invalid page."}
    html = requests.get(f"{server.url}/v1/nope/", headers=TOKEN, timeout=10)
    assert html.status_code == 404
    assert html.headers["Content-Type"].startswith("text/html")


def test_rate_limit_over_http(server: Server) -> None:
    requests.post(f"{server.url}/_sandbox/config", json={"faults": {"rate_limit": 3}}, timeout=10)
    time.sleep(0.7)  # the bucket starts empty: let it earn two tokens at 3/s
    with requests.Session() as session:
        answers = [
            session.get(f"{server.url}/v1/users/", headers=TOKEN, timeout=10) for _ in range(12)
        ]
    throttled = [r for r in answers if r.status_code == 429]
    assert throttled
    assert len(throttled) < 12
    assert all(int(r.headers["Retry-After"]) >= 1 for r in throttled)
    assert throttled[0].json() == {"detail": "Request was throttled."}


def test_data_persists_across_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = Server(data, "--api-key", "k1", "--country", "PT")
    try:
        headers = {"Authorization": "Token k1"}
        requests.post(
            f"{first.url}/v1/custom-fields/",
            headers=headers,
            timeout=10,
            json={"name": "factusol_id", "content_type": "contacts", "field_type": 3},
        )
        created = requests.post(
            f"{first.url}/v1/contacts/",
            headers=headers,
            json={
                "first_name": "Persistente",
                "custom_fields": [{"field": "factusol_id", "value": "4"}],
            },
            timeout=10,
        ).json()
        account = requests.get(f"{first.url}/v1/settings/my-account/", headers=headers, timeout=10)
        assert account.json()["results"][0]["country"] == "PT"
    finally:
        first.stop()
    second = Server(data, "--api-key", "k1")
    try:
        url = f"{second.url}/v1/contacts/{created['id']}/"
        again = requests.get(url, headers={"Authorization": "Token k1"}, timeout=10).json()
        stable = {k: v for k, v in created.items() if k != "url"}
        assert {k: v for k, v in again.items() if k != "url"} == stable
        new = requests.post(
            f"{second.url}/v1/contacts/",
            headers={"Authorization": "Token k1"},
            json={"first_name": "Nuevo"},
            timeout=10,
        ).json()
        assert new["id"] > created["id"]
    finally:
        second.stop()


def test_config_file_and_port_zero(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"switches": {"default_page_size": 2}}), encoding="utf-8")
    srv = Server(tmp_path / "d", "--config", str(cfg))
    try:
        assert not srv.url.endswith(":0")
        got: dict[str, Any] = requests.get(f"{srv.url}/_sandbox/config", timeout=10).json()
        assert got["switches"]["default_page_size"] == 2
        assert got["api"] == "clientify"
    finally:
        srv.stop()
