"""A fake Meltano project (fake_meltano.py as its `meltano`) and two companies' tenants file."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

HERE = Path(__file__).resolve().parent
SECRETS = {
    "ACME_FACTUSOL_PASSWORD": "acme-fs-pw-7d1c",
    "ACME_CLIENTIFY_API_KEY": "acme-cl-key-55e0",
    "GLOBEX_FACTUSOL_PASSWORD": "globex-fs-pw-a9b2",
    "GLOBEX_CLIENTIFY_API_KEY": "globex-cl-key-3f41",
}


def two_companies(**top: Any) -> dict[str, Any]:
    """A tenants document with companies acme and globex (sharing a DELSOL licence)."""
    return {
        "version": 1,
        "project_dir": "project",
        "work_dir": "work",
        "defaults": {"retries": {"max_retries": 2, "delay_seconds": 0}},
        "companies": [
            {
                "id": "acme",
                "name": "Acme, S.L.",
                "factusol": {
                    "codigo_fabricante": "1234",
                    "codigo_cliente": "56789",
                    "base_datos": "FS001",
                    "password_env": "ACME_FACTUSOL_PASSWORD",
                    "api_url": "http://127.0.0.1:9/fs",
                },
                "clientify": {"api_key_env": "ACME_CLIENTIFY_API_KEY"},
            },
            {
                "id": "globex",
                "factusol": {
                    "codigo_fabricante": "1234",
                    "codigo_cliente": "56789",
                    "base_datos": "FS002",
                    "password_env": "GLOBEX_FACTUSOL_PASSWORD",
                },
                "clientify": {"api_key_env": "GLOBEX_CLIENTIFY_API_KEY", "account": "globex-crm"},
                "schedules": {"clientify-to-factusol": ["50 7 * * 1-5", "50 14 * * 1-5"]},
                "active": False,
            },
        ],
        **top,
    }


@pytest.fixture
def fake_project(tmp_path: Path) -> Path:
    """tmp_path/project: installed-plugin dirs and an executable `meltano` (fake_meltano.py)."""
    project = tmp_path / "project"
    for kind in ("extractors", "loaders"):
        (project / ".meltano" / kind).mkdir(parents=True)
    meltano = project / "meltano"
    meltano.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{HERE / "fake_meltano.py"}" "$@"\n')
    meltano.chmod(0o755)
    (tmp_path / "calls").mkdir()
    return project


@pytest.fixture
def write_tenants(tmp_path: Path, fake_project: Path) -> Callable[[dict[str, Any]], Path]:
    def write(doc: dict[str, Any]) -> Path:
        doc = {"meltano": "./meltano", **doc} if "meltano" not in doc else doc
        path = tmp_path / "tenants.yaml"
        path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        return path

    return write


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FAKE_MELTANO_DIR", str(tmp_path / "calls"))
    return dict(SECRETS)


def fake_calls(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "calls" / "calls.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]
