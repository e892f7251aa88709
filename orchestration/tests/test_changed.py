"""`fcsync-changed`: the tap's config resolved from meltano.yml as Meltano would, the job's state
from Meltano's system database, and the tap's real probe against the Clientify sandbox (in this
process, and with another Python as the tap's Meltano venv would be)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fcsync_orchestration import changed
from fcsync_orchestration.changed import main, read_dotenv, resolve_job, tap_config
from sandbox.launcher import SandboxProcess
from tap_clientify.tap import TapClientify

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]
REPO = Path(__file__).resolve().parents[2]
MELTANO = str(Path(sys.executable).with_name("meltano"))
API_KEY = "changed-cl-key"
STATE_ID = "dev:tap-clientify-to-target-factusol:acme"

PROJECT = """
default_environment: dev
env: {SHARED: project-level}
environments:
- name: dev
  env: {FS_PASSWORD: from-environment, SHARED: environment-level}
  config:
    plugins:
      extractors:
      - name: tap-x
        config: {api_url: "http://127.0.0.1:1/dev"}
- name: prod
plugins:
  extractors:
  - name: tap-x
    namespace: tap_factusol
    config: {password: "${FS_PASSWORD}", note: "$SHARED and ${UNSET}", page_size: 50}
    settings:
    - {name: api_url, kind: string, value: "https://api.example"}
    - {name: password, kind: string, sensitive: true}
    - {name: note, kind: string}
    - {name: page_size, kind: integer, value: 500}
    - {name: include_all_columns, kind: boolean, value: false}
    - {name: timeout, kind: integer, value: 30}
  - name: tap-x--full
    inherit_from: tap-x
    config: {sync_mode: full}
  loaders:
  - name: target-y
jobs:
- name: x-to-y
  tasks: [tap-x target-y]
- name: x-to-y-full
  tasks: [tap-x--full target-y]
"""


def test_the_tap_config_is_resolved_as_meltano_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = yaml.safe_load(PROJECT)
    (tmp_path / ".env").write_text(
        "# secrets\nexport FS_PASSWORD='from-dotenv'\nTAP_FACTUSOL_TIMEOUT=7 # seconds\n"
    )
    assert read_dotenv(tmp_path / ".env") == {
        "FS_PASSWORD": "from-dotenv",
        "TAP_FACTUSOL_TIMEOUT": "7",
    }
    assert resolve_job(project, "x-to-y-full") == ("tap-x--full", "target-y")
    monkeypatch.delenv("FS_PASSWORD", raising=False)
    monkeypatch.setenv("TAP_X_INCLUDE_ALL_COLUMNS", "true")
    monkeypatch.setenv("TAP_FACTUSOL_INCLUDE_ALL_COLUMNS", "false")  # the name outranks it
    variables = changed._variables(tmp_path, project, "dev")
    config, namespace = tap_config(project, "tap-x", "dev", variables)
    assert namespace == "tap_factusol"
    assert config == {
        "api_url": "http://127.0.0.1:1/dev",  # the environment's config over the plugin's
        "password": "from-dotenv",  # .env over the environment's env:
        "note": "environment-level and ",  # unset variables expand to nothing
        "page_size": 50,  # the plugin's config over the default
        "include_all_columns": True,  # TAP_X_ over TAP_FACTUSOL_, typed by kind
        "timeout": 7,  # from .env, typed
    }
    monkeypatch.setenv("FS_PASSWORD", "from-process")
    variables = changed._variables(tmp_path, project, "prod")
    config, _ = tap_config(project, "tap-x--full", "prod", variables)
    assert config["password"] == "from-process"
    assert config["sync_mode"] == "full"  # the child's config over its parent's
    assert config["api_url"] == "https://api.example"


@pytest.fixture(scope="module")
def clientify(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    proc = SandboxProcess(
        "clientify", tmp_path_factory.mktemp("clientify"), extra_args=["--api-key", API_KEY]
    )
    proc.seed("--contacts", "5", "--seed", "3")
    with proc.start():
        yield proc


@pytest.fixture
def meltano_env(
    clientify: SandboxProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> str:
    """This repository's meltano.yml (dev), the tap pointed at the sandbox through the
    variables a cron user would set, and acme's bookmark from a real tap run."""
    uri = f"sqlite:///{tmp_path / 'meltano.db'}"
    config = {"api_key": API_KEY, "api_url": clientify.api_url, "rate_limit": 1000}
    TapClientify(
        config={**config, "start_date": "2000-01-01T00:00:00Z"}, parse_env_config=False
    ).sync_all()
    messages = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    state = [m["value"] for m in messages if m["type"] == "STATE"][-1]
    env = {"MELTANO_DATABASE_URI": uri, "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"}
    subprocess.run(
        [MELTANO, "state", "set", "--force", STATE_ID, json.dumps({"singer_state": state})],
        cwd=REPO,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=120,
    )
    monkeypatch.setenv("MELTANO_PROJECT_ROOT", str(REPO))
    monkeypatch.setenv("MELTANO_DATABASE_URI", uri)
    monkeypatch.setenv("CLIENTIFY_API_KEY", API_KEY)  # outranks dev's env: sandbox-api-key
    monkeypatch.setenv("TAP_CLIENTIFY_API_URL", clientify.api_url)
    monkeypatch.setenv("TAP_CLIENTIFY_RATE_LIMIT", "1000")
    monkeypatch.delenv("MELTANO_ENVIRONMENT", raising=False)
    clientify.clear_requests()
    return uri


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_idle_then_changed_then_no_state(
    clientify: SandboxProcess, meltano_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    job = ["clientify-to-factusol", "--state-id-suffix", "acme"]
    assert main(job) == 1
    assert lines(capsys) == [
        f"clientify-to-factusol: no change since the bookmark of {STATE_ID}; nothing to run"
    ]
    assert [(r["method"], r["path"]) for r in clientify.requests_log()] == [
        ("GET", "/v1/contacts/")
    ]
    assert main([*job, "--environment", "prod"]) == 0  # prod's state id has no state
    assert lines(capsys) == [
        "clientify-to-factusol: no state yet for prod:tap-clientify-to-target-factusol:acme; run it"
    ]
    contact = clientify.admin("GET", "contacts")["contacts"][-1]
    clientify.admin("PATCH", f"contacts/{contact['id']}", {"title": "Gerente"})
    assert main(job) == 0
    assert lines(capsys) == [
        f"clientify-to-factusol: changes since the bookmark of {STATE_ID}; run it"
    ]


def test_any_doubt_runs_the_job(
    meltano_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLIENTIFY_API_KEY", "refused-key-71c2")
    assert main(["clientify-to-factusol", "--state-id-suffix", "acme"]) == 0
    (line,) = lines(capsys)
    assert line.startswith("clientify-to-factusol: cannot tell (ClientifyAuthError")
    assert "refused-key-71c2" not in line
    assert main(["no-such-job"]) == 0
    assert "defines no job 'no-such-job'" in lines(capsys)[0]
    monkeypatch.setenv("MELTANO_STATE_BACKEND_URI", "s3://bucket/state")
    assert main(["clientify-to-factusol"]) == 0
    assert lines(capsys) == [
        "clientify-to-factusol: state kept outside Meltano's database (s3); run it"
    ]


def test_the_probe_runs_in_the_taps_own_python_when_not_importable_here(
    clientify: SandboxProcess, meltano_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tap_clientify" else real(name, *a),
    )
    state = changed.read_state(meltano_env, STATE_ID)
    assert state is not None
    config: dict[str, Any] = {"api_key": API_KEY, "api_url": clientify.api_url}
    probe = "tap_clientify.probe:has_changes"
    python = Path(sys.executable)  # stands in for .meltano/extractors/tap-clientify/venv
    assert changed.run_probe(probe, config, state, python) is False
    with pytest.raises(RuntimeError, match="the probe exited 2: ClientifyAuthError"):
        changed.run_probe(probe, {**config, "api_key": "nope"}, state, python)
    with pytest.raises(RuntimeError, match="neither importable here nor installed"):
        changed.run_probe(probe, config, state, Path("/nonexistent/python"))
