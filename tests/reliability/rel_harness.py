"""Helpers of the in-process reliability tests: corpus, loopback sandboxes, Singer feeding.

The targets run in this process (`Target(config=...).listen(io.StringIO(...))`) against both
emulators started once per module with `SandboxProcess`, so the 900+ corpus cases take seconds.
Figures (outcomes by class, crashes, ...) go to `output/reliability/*.json`; docs/reliability.md
is written from them.
"""

from __future__ import annotations

import functools
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sandbox.launcher import SandboxProcess

ROOT = Path(__file__).resolve().parents[2]
CORPUS_DIR = ROOT / "tests" / "fixtures" / "hostile"
FIGURES_DIR = ROOT / "output" / "reliability"

FACTUSOL_CREDS = {
    "codigo_fabricante": "1234",
    "codigo_cliente": "56789",
    "base_datos": "FS001",
    "password": "sandbox-password",
}
CLIENTIFY_KEY = "sandbox-api-key"


def load_corpus(name: str) -> list[dict[str, Any]]:
    """Cases of `tests/fixtures/hostile/<name>.jsonl` (see generate.py there)."""
    path = CORPUS_DIR / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def write_figures(name: str, figures: dict[str, Any]) -> Path:
    """Write one figures file (merged into docs/reliability.md by hand or by a reviewer)."""
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    path = FIGURES_DIR / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"\nfigures: {path.relative_to(ROOT)}\n{json.dumps(figures, indent=2, sort_keys=True)}")
    return path


@functools.cache
def stream_schemas() -> dict[str, dict[str, Any]]:
    """The SCHEMA messages the taps emit (discovery only: no API call)."""
    from tap_clientify.tap import TapClientify
    from tap_factusol.tap import TapFactusol

    fs = TapFactusol(
        config={**FACTUSOL_CREDS, "api_url": "http://127.0.0.1:9"}, parse_env_config=False
    )
    cl = TapClientify(
        config={"api_key": "x", "api_url": "http://127.0.0.1:9/v1"}, parse_env_config=False
    )
    out = {}
    for tap, name in ((fs, "clients"), (cl, "contacts")):
        stream = tap.streams[name]
        out[name] = {
            "type": "SCHEMA",
            "stream": name,
            "schema": stream.schema,
            "key_properties": list(stream.primary_keys or []),
        }
    return out


def singer_lines(stream: str, records: list[dict[str, Any]]) -> str:
    """A Singer stream: the tap's SCHEMA, then one RECORD per record (ASCII-escaped JSON)."""
    lines = [json.dumps(stream_schemas()[stream])]
    lines += [json.dumps({"type": "RECORD", "stream": stream, "record": r}) for r in records]
    return "\n".join(lines) + "\n"


@dataclass
class Feed:
    """What one in-process target run did."""

    error: BaseException | None
    logs: list[logging.LogRecord] = field(default_factory=list)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def feed_target(target_cls: type, config: dict[str, Any], text: str) -> Feed:
    """Run a target in-process over `text`; every exception is returned, never raised."""
    handler = _Collect()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        target = target_cls(config=config, parse_env_config=False, validate_config=True)
        target.listen(io.StringIO(text))
    except BaseException as exc:
        return Feed(exc, handler.records)
    finally:
        root.removeHandler(handler)
    return Feed(None, handler.records)


@pytest.fixture(scope="module")
def sandboxes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SandboxProcess]]:
    """Both emulators, seeded, on loopback for the whole module."""
    base = tmp_path_factory.mktemp("sandboxes")
    fs = SandboxProcess("factusol", base / "factusol")
    fs.seed("--clients", "40", "--seed", "11")
    cl = SandboxProcess("clientify", base / "clientify")
    cl.seed("--contacts", "20", "--seed", "11")
    with fs.start(), cl.start():
        yield {"factusol": fs, "clientify": cl}


def clientify_target_config(cl: SandboxProcess, out: Path, **extra: Any) -> dict[str, Any]:
    return {
        "api_url": cl.api_url,
        "api_key": CLIENTIFY_KEY,
        "rate_limit": 1_000_000,
        "max_reject_percent": 100,
        "match_fallback": [],
        "plan_file": str(out / "plan-clientify.jsonl"),
        "reject_file": str(out / "rejects-clientify.jsonl"),
        "report_file": str(out / "report-clientify.json"),
        "index_cache_file": str(out / "contacts.sqlite"),
        "ledger_uri": str(out / "ledger.sqlite"),
        "timeout": 10,
        "max_retries": 1,
        **extra,
    }


def factusol_target_config(
    fs: SandboxProcess, cl: SandboxProcess, out: Path, **extra: Any
) -> dict[str, Any]:
    return {
        **FACTUSOL_CREDS,
        "api_url": fs.api_url,
        "clientify_api_url": cl.api_url,
        "clientify_api_key": CLIENTIFY_KEY,
        "clientify_rate_limit": 1_000_000,
        "max_reject_percent": 100,
        "match_fallback": [],
        "plan_file": str(out / "plan-factusol.jsonl"),
        "reject_file": str(out / "rejects-factusol.jsonl"),
        "report_file": str(out / "report-factusol.json"),
        "index_cache_file": str(out / "contacts.sqlite"),
        "ledger_uri": str(out / "ledger.sqlite"),
        "timeout": 10,
        "max_retries": 1,
        **extra,
    }


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
