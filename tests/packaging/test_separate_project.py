"""The connectors used the way another project would: `make dist`'s wheels, a throwaway Meltano
project, a third-party target from PyPI, a full run and then a modified run through Meltano's
state.

- `make dist`'s artefacts (one wheel per connector, our libraries inside it, and its plugin
  definition) are copied to `fcsync/` in a project made with `meltano init` in a temporary
  directory (this venv's `meltano`, pinned in requirements-dev.txt), and each connector is added
  as its README says: `meltano add --plugin-type <type> <name> --from-ref ./fcsync/<name>.yml`,
  which installs the wheel into the plugin's own fresh virtualenv: no editable install, nothing
  of the clone on its path, no distribution of ours resolved from an index.
- The taps' target is target-jsonl from PyPI (a singer-python target that validates each
  record against the SCHEMA), so the JSON types the taps emit are what the test reads back.
- Each of our targets, from its wheel, runs one full sync against both sandboxes: its wheel
  carries several libraries (and their templates), which `--about` alone would not exercise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from sandbox.launcher import SandboxProcess

from .conftest import ConnectorDist, dist_script, plugin_docs

pytestmark = pytest.mark.e2e

MELTANO = str(Path(sys.executable).with_name("meltano"))
TARGET_JSONL = "target-jsonl==0.1.4"
MADRID = ZoneInfo("Europe/Madrid")
CLIENTS = 40
CONTACTS = 30
#: tap-clientify re-reads this much before its bookmark (BOOKMARK_OVERLAP in its streams.py).
CLIENTIFY_OVERLAP = timedelta(minutes=5)

#: `clients` text fields and their F_CLI columns (docs/architecture.md).
CLIENT_COLUMNS = {
    "fiscal_name": "NOFCLI",
    "trade_name": "NOCCLI",
    "nif": "NIFCLI",
    "address": "DOMCLI",
    "city": "POBCLI",
    "postal_code": "CPOCLI",
    "province": "PROCLI",
    "country_code": "PAICLI",
    "phone": "TELCLI",
    "mobile": "MOVCLI",
    "fax": "FAXCLI",
    "email": "EMACLI",
    "web": "WEBCLI",
    "contact_person": "PCOCLI",
    "notes": "OBSCLI",
}


@dataclass
class Project:
    root: Path
    out: Path

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        # Nothing of the calling environment may configure the plugins or point at the clone.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MELTANO_", "TAP_", "TARGET_", "PYTHONPATH", "VIRTUAL_ENV"))
        }
        env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
        return {**env, **extra}

    def meltano(self, *args: str, env: dict[str, str] | None = None) -> str:
        proc = subprocess.run(
            [MELTANO, *args],
            cwd=self.root,
            env=self.env(env or {}),
            capture_output=True,
            text=True,
            timeout=600,
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"meltano {' '.join(args)} failed:\n{output[-6000:]}"
        return proc.stdout

    def run(self, tap: str, name: str, env: dict[str, str]) -> list[dict[str, Any]]:
        """`meltano run <tap> target-jsonl`; the records target-jsonl wrote for this run."""
        dest = self.out / name
        env = {
            **env,
            "TARGET_JSONL_DESTINATION_PATH": str(dest),
            "TARGET_JSONL_DO_TIMESTAMP_FILE": "false",
        }
        self.meltano("run", tap, "target-jsonl", env=env)
        files = list(dest.glob("*.jsonl"))
        assert len(files) == 1, files
        return [json.loads(line) for line in files[0].read_text(encoding="utf-8").splitlines()]

    def bookmark(self, tap: str, stream: str) -> str:
        out = self.meltano("state", "get", f"dev:{tap}-to-target-jsonl")
        state = json.loads(out.strip().splitlines()[-1])
        return str(state["singer_state"]["bookmarks"][stream]["replication_key_value"])

    def venv_python(self, plugin: str) -> Path:
        kind = dist_script.CONNECTORS.get(plugin, "extractors")
        return self.root / ".meltano" / kind / plugin / "venv" / "bin" / "python"


@pytest.fixture(scope="module")
def project(connector_dist: ConnectorDist, tmp_path_factory: pytest.TempPathFactory) -> Project:
    base = tmp_path_factory.mktemp("separate-project")
    subprocess.run(
        [MELTANO, "init", "elsewhere", "--no-usage-stats"],
        cwd=base,
        check=True,
        capture_output=True,
        env=Project(base, base).env({}),
        timeout=300,
    )
    project = Project(base / "elsewhere", base / "out")
    # What the user copies: `cp -r dist <project>/fcsync` (the definitions' default DIST_PREFIX).
    prefix = dist_script.DEFAULT_PIP_PREFIX
    shutil.copytree(connector_dist.directory, project.root / prefix)
    for name, plugin_type in dist_script.CONNECTORS.items():
        kind = plugin_type.removesuffix("s")
        project.meltano("add", "--plugin-type", kind, name, "--from-ref", f"{prefix}/{name}.yml")
    target = project.root / "target-jsonl.yml"
    target.write_text(
        yaml.safe_dump(
            {
                "name": "target-jsonl",
                "namespace": "target_jsonl",
                "pip_url": TARGET_JSONL,
                "settings": [
                    {"name": "destination_path"},
                    {"name": "do_timestamp_file", "kind": "boolean"},
                ],
            }
        ),
        encoding="utf-8",
    )
    project.meltano("add", "--plugin-type", "loader", "target-jsonl", "--from-ref", str(target))
    return project


@pytest.fixture
def factusol(tmp_path: Path) -> Iterator[SandboxProcess]:
    proc = SandboxProcess("factusol", tmp_path / "factusol")
    proc.seed("--clients", str(CLIENTS), "--seed", "11")
    with proc.start():
        yield proc


@pytest.fixture
def clientify(tmp_path: Path) -> Iterator[SandboxProcess]:
    proc = SandboxProcess("clientify", tmp_path / "clientify")
    proc.seed("--contacts", str(CONTACTS), "--seed", "11")
    with proc.start():
        yield proc


def _aware(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


PROBE = """
import importlib.metadata as md, importlib.util, json, sys
dist = md.distribution(sys.argv[1])
out = {"version": dist.version, "direct_url": json.loads(dist.read_text("direct_url.json") or "{}"),
       "files": [str(f) for f in dist.files or []], "modules": {}, "absent": {},
       "requires": dist.requires or []}
for module in sys.argv[2:]:
    out["modules"][module] = importlib.util.find_spec(module).origin
for absent in ("sandbox", "customer_sync"):
    out["absent"][absent] = importlib.util.find_spec(absent) is None
out["distributions"] = sorted(d.metadata["Name"] for d in md.distributions())
print(json.dumps(out))
"""


@pytest.mark.parametrize("connector", list(dist_script.CONNECTORS))
def test_the_connector_runs_from_its_one_wheel_not_from_the_clone(
    project: Project, connector_dist: ConnectorDist, connector: str
) -> None:
    python = project.venv_python(connector)
    package = connector.replace("-", "_")
    libraries = [lib.removeprefix("packages/") for lib in dist_script.plan(connector).libraries]
    proc = subprocess.run(
        [str(python), "-c", PROBE, connector, package, *libraries], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    venv = python.parents[1]
    assert found["version"] == plugin_docs.release_version()
    # installed from the wheel file the definition names, not from an editable checkout
    wheel = connector_dist.wheels[connector].name
    assert found["direct_url"]["url"].endswith(f"/fcsync/{wheel}"), found["direct_url"]
    assert "dir_info" not in found["direct_url"]
    for module, origin in found["modules"].items():
        assert Path(origin).is_relative_to(venv), origin
        assert f"{module}/__init__.py" in found["files"]  # carried by the connector's wheel
    # No distribution of this repository but the connector, and none required.
    ours = set(dist_script.repository_distributions())
    installed = {canonicalize_name(name) for name in found["distributions"]}
    assert installed & ours == {canonicalize_name(connector)}
    assert not [r for r in found["requires"] if canonicalize_name(Requirement(r).name) in ours]
    assert found["absent"]["sandbox"]  # the emulators ship with nothing
    if connector.startswith("tap-"):
        assert found["absent"]["customer_sync"]  # a tap needs no mapping library
    # The installed connector describes the same settings as the code in this clone.
    about = subprocess.run(
        [str(python.with_name(connector)), "--about", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    spec = next(c for c in plugin_docs.CONNECTORS if c.name == connector)
    assert json.loads(about.stdout)["settings"] == plugin_docs.about_json(spec)["settings"]


def _check_client(record: dict[str, Any], row: dict[str, Any]) -> None:
    assert isinstance(record["code"], int)
    assert record["code"] == row["CODCLI"]
    assert isinstance(record["status"], int)
    assert record["status"] == int(row["ESTCLI"])
    for field, column in CLIENT_COLUMNS.items():
        assert isinstance(record[field], str), (record["code"], field)
        assert record[field] == str(row[column] or ""), (record["code"], field)
    for field, column in (("created", "FALCLI"), ("modified", "FUMCLI")):
        if record[field] is None:
            continue
        # FactuSOL's naive local time, emitted with Madrid's offset
        value = _aware(record[field])
        assert value.utcoffset() == value.astimezone(MADRID).utcoffset()
        assert value.replace(tzinfo=None) == datetime.fromisoformat(row[column]), field


def test_tap_factusol_full_then_modified_through_meltano_state(
    project: Project, factusol: SandboxProcess
) -> None:
    env = {
        "TAP_FACTUSOL_API_URL": factusol.api_url,
        "TAP_FACTUSOL_CODIGO_FABRICANTE": "1234",
        "TAP_FACTUSOL_CODIGO_CLIENTE": "56789",
        "TAP_FACTUSOL_BASE_DATOS": "FS001",
        "TAP_FACTUSOL_PASSWORD": "sandbox-password",
    }
    rows = {row["CODCLI"]: row for row in factusol.admin("GET", "clients")["clients"]}
    assert len(rows) == CLIENTS

    full = project.run("tap-factusol", "factusol-full", {**env, "TAP_FACTUSOL_SYNC_MODE": "full"})
    assert sorted(r["code"] for r in full) == sorted(rows)  # each client once
    for record in full:
        assert set(record) == {"code", "status", "created", "modified", *CLIENT_COLUMNS}
        _check_client(record, rows[record["code"]])
    modified = [_aware(r["modified"]) for r in full if r["modified"]]
    bookmark = _aware(project.bookmark("tap-factusol", "clients"))
    assert bookmark == max(modified)

    # The modified run must carry exactly the edited clients plus the bookmark's day, which the
    # tap reads again because FUMCLI is a day stamp (tap README). That day is days old, beyond
    # the 24 h a run without state looks back: seeing it proves Meltano handed the state over.
    boundary_day = bookmark.astimezone(MADRID).date()
    boundary = {
        r["code"] for r in full if r["modified"] and _aware(r["modified"]).date() == boundary_day
    }
    assert boundary
    edited = {code: f"+34 600 000 {code:03d}" for code in sorted(set(rows) - boundary)[:3]}
    for code, phone in edited.items():
        factusol.admin("PATCH", f"clients/{code}", {"TELCLI": phone})

    changed = project.run("tap-factusol", "factusol-modified", env)  # sync_mode: modified
    assert sorted(r["code"] for r in changed) == sorted(set(edited) | boundary)
    after = {row["CODCLI"]: row for row in factusol.admin("GET", "clients")["clients"]}
    for record in changed:
        _check_client(record, after[record["code"]])
        if record["code"] in edited:
            assert record["phone"] == edited[record["code"]]
    assert _aware(project.bookmark("tap-factusol", "clients")) > bookmark


def _check_contact(record: dict[str, Any], contact: dict[str, Any]) -> None:
    assert isinstance(record["id"], int)
    assert record["id"] == contact["id"]
    for field in ("first_name", "last_name"):
        assert record[field] == contact[field]
    assert isinstance(record["emails"], list)
    assert [e["email"] for e in record["emails"]] == [e["email"] for e in contact["emails"]]
    assert all(isinstance(e["id"], int) and isinstance(e["type"], int) for e in record["emails"])
    assert isinstance(record["phones"], list)
    assert isinstance(record["tags"], list)
    assert all(isinstance(tag, str) for tag in record["tags"])
    assert record["factusol_id"] is None or isinstance(record["factusol_id"], str)
    for field in ("created", "modified"):
        assert _aware(record[field]).utcoffset() == timedelta(0)  # emitted in UTC
    assert _aware(record["modified"]) == _aware(contact["modified"])


def test_tap_clientify_full_then_modified_through_meltano_state(
    project: Project, clientify: SandboxProcess
) -> None:
    env = {
        "TAP_CLIENTIFY_API_URL": clientify.api_url,
        "TAP_CLIENTIFY_API_KEY": "sandbox-api-key",
        "TAP_CLIENTIFY_RATE_LIMIT": "200",
    }
    contacts = {c["id"]: c for c in clientify.admin("GET", "contacts")["contacts"]}
    assert len(contacts) == CONTACTS

    full = project.run(
        "tap-clientify", "clientify-full", {**env, "TAP_CLIENTIFY_SYNC_MODE": "full"}
    )
    assert sorted(r["id"] for r in full) == sorted(contacts)
    for record in full:
        _check_contact(record, contacts[record["id"]])
    bookmark = _aware(project.bookmark("tap-clientify", "contacts"))
    assert bookmark == max(_aware(r["modified"]) for r in full)

    # Exactly the edited contacts plus those of the 5 minutes before the bookmark, which the tap
    # reads again (tap README); the bookmark is days old, so they prove the state was used.
    boundary = {r["id"] for r in full if _aware(r["modified"]) >= bookmark - CLIENTIFY_OVERLAP}
    assert boundary
    edited = {cid: f"Editada {n}" for n, cid in enumerate(sorted(set(contacts) - boundary)[:3])}
    for cid, name in edited.items():
        clientify.admin("PATCH", f"contacts/{cid}", {"first_name": name})

    changed = project.run("tap-clientify", "clientify-modified", env)  # sync_mode: modified
    assert sorted(r["id"] for r in changed) == sorted(set(edited) | boundary)
    after = {c["id"]: c for c in clientify.admin("GET", "contacts")["contacts"]}
    for record in changed:
        _check_contact(record, after[record["id"]])
        if record["id"] in edited:
            assert record["first_name"] == edited[record["id"]]
    assert _aware(project.bookmark("tap-clientify", "contacts")) > bookmark


def _factusol_settings(prefix: str, url: str) -> dict[str, str]:
    values = {
        "API_URL": url,
        "CODIGO_FABRICANTE": "1234",
        "CODIGO_CLIENTE": "56789",
        "BASE_DATOS": "FS001",
        "PASSWORD": "sandbox-password",
    }
    return {f"{prefix}{key}": value for key, value in values.items()}


@pytest.mark.parametrize(
    ("tap", "target"), [("tap-factusol", "target-clientify"), ("tap-clientify", "target-factusol")]
)
def test_the_targets_sync_from_their_wheels(
    project: Project,
    factusol: SandboxProcess,
    clientify: SandboxProcess,
    tmp_path: Path,
    tap: str,
    target: str,
) -> None:
    """Each target, whose wheel carries every library it uses, runs a full sync end to end."""
    env = {
        **_factusol_settings("TAP_FACTUSOL_", factusol.api_url),
        "TAP_FACTUSOL_SYNC_MODE": "full",
        "TAP_CLIENTIFY_API_URL": clientify.api_url,
        "TAP_CLIENTIFY_API_KEY": "sandbox-api-key",
        "TAP_CLIENTIFY_SYNC_MODE": "full",
    }
    if target == "target-clientify":
        prefix, source, written, before = "TARGET_CLIENTIFY_", CLIENTS, clientify, CONTACTS
        env |= _factusol_settings(f"{prefix}FACTUSOL_", factusol.api_url)
        env |= {f"{prefix}API_URL": clientify.api_url, f"{prefix}API_KEY": "sandbox-api-key"}
    else:
        prefix, source, written, before = "TARGET_FACTUSOL_", CONTACTS, factusol, CLIENTS
        env |= _factusol_settings(prefix, factusol.api_url)
        env |= {
            f"{prefix}CLIENTIFY_API_URL": clientify.api_url,
            f"{prefix}CLIENTIFY_API_KEY": "sandbox-api-key",
        }
    out = tmp_path / "target-output"
    for name in ("plan_file", "reject_file", "report_file", "index_cache_file", "ledger_uri"):
        env[f"{prefix}{name.upper()}"] = str(out / name)
    project.meltano("run", tap, target, env=env)

    report = json.loads((out / "report_file").read_text(encoding="utf-8"))
    assert report["status"] == "ok", report.get("error")
    counts = report["counts"]
    assert counts["created"] > 0
    assert counts["created"] + counts["linked"] + counts["rejected"] == source
    rows = written.admin("GET", "contacts" if written is clientify else "clients")
    assert len(next(iter(rows.values()))) == before + counts["created"]
