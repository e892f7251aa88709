"""Test library for target-factusol (a unique module name: the repo runs pytest in importlib
mode). Harness: both sandboxes per module, reseeded per test, and helpers that
feed a `.singer` fixture into the target in-process and read back plan, report and rejects."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from clientify_api import ClientifyClient
from sandbox.launcher import SandboxProcess
from target_factusol.target import TargetFactusol

FIXTURES = Path(__file__).parent / "fixtures"
SEEDED_CLIENTS = 20
API_KEY = "sandbox-api-key"
PASSWORD = "sandbox-password"
DEFAULT_FAULTS = {
    "latency_ms": 0.0,
    "error_rate": 0.0,
    "throttle_rate": 0.0,
    "drop_rate": 0.0,
    "slow_rate": 0.0,
    "rate_limit": 0.0,
}


@pytest.fixture(scope="module")
def fs_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    proc = SandboxProcess("factusol", tmp_path_factory.mktemp("factusol"))
    proc.seed("--clients", str(SEEDED_CLIENTS), "--seed", "7")
    with proc.start():
        yield proc


@pytest.fixture(scope="module")
def cl_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    proc = SandboxProcess("clientify", tmp_path_factory.mktemp("clientify"))
    proc.seed("--contacts", "0", "--seed", "7")
    with proc.start():
        yield proc


def messages(name: str) -> list[dict[str, Any]]:
    """The messages of `fixtures/<name>.singer`."""
    text = (FIXTURES / f"{name}.singer").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def records(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["record"] for m in msgs if m["type"] == "RECORD"]


@dataclass
class RunOutput:
    plan: list[dict[str, Any]]
    report: dict[str, Any]
    rejects: list[dict[str, Any]]
    stdout: str


@dataclass
class Harness:
    fs: SandboxProcess
    cl: SandboxProcess
    tmp: Path
    runs: int = 0

    def config(self, **overrides: Any) -> dict[str, Any]:
        config: dict[str, Any] = {
            "api_url": self.fs.api_url,
            "codigo_fabricante": "1234",
            "codigo_cliente": "56789",
            "base_datos": "FS001",
            "password": PASSWORD,
            "clientify_api_url": self.cl.api_url,
            "clientify_api_key": API_KEY,
            "plan_file": str(self.tmp / "plan.jsonl"),
            "reject_file": str(self.tmp / "rejects.jsonl"),
            "report_file": str(self.tmp / "report.json"),
            "index_cache_file": str(self.tmp / "contacts.sqlite"),
            "ledger_uri": str(self.tmp / "ledger.sqlite"),
            "max_retries": 1,
        }
        config.update(overrides)
        return config

    # -- sandboxes -------------------------------------------------------------------------
    def put_contacts(self, msgs: list[dict[str, Any]]) -> None:
        """Create the fixture's contacts in the Clientify sandbox, with the fixture's ids."""
        seen: set[int] = set()
        for record in records(msgs):
            if record["id"] in seen:
                continue
            seen.add(record["id"])
            body: dict[str, Any] = {
                "first_name": record.get("first_name") or "",
                "last_name": record.get("last_name") or "",
                "emails": [{"email": e["email"], "type": e["type"]} for e in record["emails"]],
                "phones": [{"phone": p["phone"], "type": p["type"]} for p in record["phones"]],
                "addresses": [
                    {k: v for k, v in a.items() if k != "id"} for a in record["addresses"]
                ],
            }
            if record.get("taxpayer_identification_number"):
                body["taxpayer_identification_number"] = record["taxpayer_identification_number"]
            if record.get("tags"):
                body["tags"] = list(record["tags"])
            if record.get("custom_fields"):
                body["custom_fields"] = [
                    {"field": f["field"], "value": f["value"]} for f in record["custom_fields"]
                ]
            created = self.cl.admin("POST", "contacts", body)
            assert created["id"] == record["id"], "fixture ids follow the sandbox's sequence"

    def put_client(self, **columns: Any) -> dict[str, Any]:
        row: dict[str, Any] = self.fs.admin("POST", "clients", columns)
        return row

    def clients(self) -> dict[int, dict[str, Any]]:
        return {int(r["CODCLI"]): r for r in self.fs.admin("GET", "clients")["clients"]}

    def contacts(self) -> dict[int, dict[str, Any]]:
        return {int(c["id"]): c for c in self.cl.admin("GET", "contacts")["contacts"]}

    def current_messages(self) -> list[dict[str, Any]]:
        """The contacts as they are now in Clientify, shaped like tap-clientify's records."""
        schema = messages("new_contact")[0]
        client = ClientifyClient(API_KEY, self.cl.api_url, rate_limit=None)
        out: list[dict[str, Any]] = [schema]
        props = schema["schema"]["properties"]
        for contact in client.iter_contacts():
            record = {k: contact.get(k) for k in props if k != "factusol_id"}
            record["factusol_id"] = link_of(contact)
            out.append({"type": "RECORD", "stream": "contacts", "record": record})
        return out

    def writes(self) -> dict[str, list[tuple[str, str]]]:
        fs = [
            (r["method"], r["path"])
            for r in self.fs.requests_log()
            if "registro" in r["path"].lower() and "leer" not in r["path"].lower()
        ]
        cl = [
            (r["method"], r["path"])
            for r in self.cl.requests_log()
            if r["method"] in {"POST", "PUT", "PATCH", "DELETE"}
        ]
        return {"factusol": fs, "clientify": cl}

    def clear_logs(self) -> None:
        self.fs.clear_requests()
        self.cl.clear_requests()

    # -- the target ------------------------------------------------------------------------
    def run(
        self,
        msgs: list[dict[str, Any]] | str,
        capsys: pytest.CaptureFixture[str] | None = None,
        **overrides: Any,
    ) -> RunOutput:
        if isinstance(msgs, str):
            msgs = messages(msgs)
        text = "\n".join(json.dumps(m, ensure_ascii=False) for m in msgs) + "\n"
        self.runs += 1
        target = TargetFactusol(config=self.config(**overrides))
        try:
            target.listen(io.StringIO(text))
        finally:
            release_job_lock(target)
        return self.output(capsys)

    def output(self, capsys: pytest.CaptureFixture[str] | None = None) -> RunOutput:
        def lines(path: Path) -> list[dict[str, Any]]:
            if not path.exists():
                return []
            return [json.loads(x) for x in path.read_text("utf-8").splitlines() if x.strip()]

        report_path = self.tmp / "report.json"
        report = json.loads(report_path.read_text("utf-8")) if report_path.exists() else {}
        return RunOutput(
            plan=lines(self.tmp / "plan.jsonl"),
            report=report,
            rejects=lines(self.tmp / "rejects.jsonl"),
            stdout=capsys.readouterr().out if capsys else "",
        )


def release_job_lock(target: Any) -> None:
    """What a killed process does for free: a run interrupted in process (a simulated kill)
    would otherwise keep its job lock until garbage collection."""
    run = getattr(target, "_run", None)
    if run is not None:
        run.job.release()


def link_of(contact: dict[str, Any], name: str = "factusol_id") -> str | None:
    for item in contact.get("custom_fields") or []:
        if item.get("field") == name and item.get("value") not in (None, ""):
            return str(item["value"])
    return None


@pytest.fixture
def harness(fs_sandbox: SandboxProcess, cl_sandbox: SandboxProcess, tmp_path: Path) -> Harness:
    """Fresh data in both sandboxes (20 seeded clients, no contacts), faults and logs cleared."""
    fs_sandbox.admin("POST", "seed", {"clients": SEEDED_CLIENTS, "seed": 7})
    cl_sandbox.admin("POST", "seed", {"contacts": 0, "with_link_field": True})
    for proc in (fs_sandbox, cl_sandbox):
        proc.configure(faults=DEFAULT_FAULTS)
    fs_sandbox.configure(switches={"stamp_fumcli_on_write": False, "ko_rate": 0.0})
    cl_sandbox.configure(switches={"custom_field_create": "accept"})
    fs_sandbox.clear_requests()
    cl_sandbox.clear_requests()
    return Harness(fs_sandbox, cl_sandbox, tmp_path)
