"""Secrets never leak (logs at DEBUG, stdout/stderr, exceptions, reprs, written files), and
plain http:// is refused for non-loopback hosts by each of the four connectors.

The sandboxes here run with distinctive credentials, so any occurrence of them (or of their
Base64 forms, which is how the FactuSOL login sends the password) is a leak.
"""

from __future__ import annotations

import base64
import functools
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rel_harness import (
    FACTUSOL_CREDS,
    feed_target,
    singer_lines,
    write_figures,
)
from sandbox.launcher import SandboxProcess
from tap_clientify.tap import TapClientify
from tap_factusol.tap import TapFactusol
from target_clientify.target import TargetClientify
from target_factusol.target import TargetFactusol

FS_PASSWORD = "Fs-Pw-9c41e7d2-ñandú-SECRET"
CL_KEY = "cl-key-5b7f03aa91d64e2c8f0e-SECRET"
WRONG_PASSWORD = "Wrong-Pw-1f2e3d4c-SECRET"
WRONG_KEY = "wrong-key-a9b8c7d6e5f4-SECRET"
SECRETS = (FS_PASSWORD, CL_KEY, WRONG_PASSWORD, WRONG_KEY)


def _forms(secret: str) -> list[str]:
    raw = secret.encode("utf-8")
    forms = {secret, base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    forms |= {f.rstrip("=") for f in list(forms)}
    return sorted(forms)


def _find_leaks(texts: dict[str, str]) -> list[str]:
    return [
        f"{where}: {form[:12]}…"
        for where, text in texts.items()
        for secret in SECRETS
        for form in _forms(secret)
        if form in text
    ]


@pytest.fixture(scope="module")
def secret_sandboxes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("secret-sandboxes")
    fs = SandboxProcess("factusol", base / "factusol", extra_args=["--password", FS_PASSWORD])
    fs.seed("--clients", "8", "--seed", "3")
    cl = SandboxProcess("clientify", base / "clientify", extra_args=["--api-key", CL_KEY])
    cl.seed("--contacts", "5", "--seed", "3")
    with fs.start(), cl.start():
        yield {"factusol": fs, "clientify": cl}


def _tap_factusol_config(fs: SandboxProcess, password: str) -> dict[str, Any]:
    return {
        **FACTUSOL_CREDS,
        "password": password,
        "api_url": fs.api_url,
        "sync_mode": "full",
        "max_retries": 1,
        "timeout": 5,
    }


def _target_factusol_config(fs: SandboxProcess, cl: SandboxProcess, out: Path, **kw: Any) -> dict:
    return {
        **FACTUSOL_CREDS,
        "password": FS_PASSWORD,
        "api_url": fs.api_url,
        "clientify_api_url": cl.api_url,
        "clientify_api_key": CL_KEY,
        "max_reject_percent": 100,
        "plan_file": str(out / "plan-f.jsonl"),
        "reject_file": str(out / "rejects-f.jsonl"),
        "report_file": str(out / "report-f.json"),
        "index_cache_file": str(out / "contacts.sqlite"),
        "ledger_uri": str(out / "ledger.sqlite"),
        "max_retries": 1,
        "timeout": 5,
        **kw,
    }


def _target_clientify_config(cl: SandboxProcess, out: Path, **kw: Any) -> dict:
    return {
        "api_key": CL_KEY,
        "api_url": cl.api_url,
        "rate_limit": 1_000_000,
        "max_reject_percent": 100,
        "plan_file": str(out / "plan-c.jsonl"),
        "reject_file": str(out / "rejects-c.jsonl"),
        "report_file": str(out / "report-c.json"),
        "index_cache_file": str(out / "contacts.sqlite"),
        "ledger_uri": str(out / "ledger.sqlite"),
        "max_retries": 1,
        "timeout": 5,
        **kw,
    }


def _run_tap(tap_cls: type, config: dict[str, Any]) -> tuple[str, BaseException | None]:
    """Sync a tap in-process; returns what it wrote to stdout and the error it ended with."""
    try:
        tap = tap_cls(config=config, parse_env_config=False)
        tap.sync_all()
    except BaseException as exc:
        return "", exc
    return "", None


def test_no_secret_in_any_output_at_debug(
    secret_sandboxes: dict[str, Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import target_runtime.settings as sync
    from clientify_api import ClientifyClient, ClientifyError
    from factusol_api import FactusolClient, FactusolCredentials, FactusolError

    monkeypatch.setattr(sync, "ClientifyClient", functools.partial(ClientifyClient, rate_limit=1e6))
    caplog.set_level(logging.DEBUG)
    logging.getLogger().setLevel(logging.DEBUG)
    fs, cl = secret_sandboxes["factusol"], secret_sandboxes["clientify"]
    errors: list[BaseException] = []
    reprs: list[str] = []
    scenarios: list[str] = []

    def note(name: str, error: BaseException | None) -> None:
        scenarios.append(f"{name}: {'error ' + type(error).__name__ if error else 'ok'}")
        if error is not None:
            errors.append(error)

    # taps: a good run, wrong credentials, a server that always fails
    note("tap-factusol ok", _run_tap(TapFactusol, _tap_factusol_config(fs, FS_PASSWORD))[1])
    note(
        "tap-factusol wrong password",
        _run_tap(TapFactusol, _tap_factusol_config(fs, WRONG_PASSWORD))[1],
    )
    tap_cl = {"api_key": CL_KEY, "api_url": cl.api_url, "sync_mode": "full", "rate_limit": 1e6}
    note("tap-clientify ok", _run_tap(TapClientify, {**tap_cl, "max_retries": 1})[1])
    note("tap-clientify wrong key", _run_tap(TapClientify, {**tap_cl, "api_key": WRONG_KEY})[1])
    # targets: a good run, wrong credentials, server errors
    clients = [{"code": 70001, "fiscal_name": "Secreto, S.L.", "email": "s@example.org"}]
    out = tmp_path / "out"
    feed = feed_target(
        TargetClientify, _target_clientify_config(cl, out), singer_lines("clients", clients)
    )
    note("target-clientify ok", feed.error)
    feed = feed_target(
        TargetClientify,
        _target_clientify_config(cl, out, api_key=WRONG_KEY),
        singer_lines("clients", clients),
    )
    note("target-clientify wrong key", feed.error)
    contact = cl.admin("POST", "contacts", {"first_name": "Secreto", "last_name": "Uno"})
    contacts = [{"id": contact["id"], "first_name": "Secreto", "last_name": "Uno", "emails": []}]
    feed = feed_target(
        TargetFactusol, _target_factusol_config(fs, cl, out), singer_lines("contacts", contacts)
    )
    note("target-factusol ok", feed.error)
    for name, kw in (
        ("target-factusol wrong password", {"password": WRONG_PASSWORD}),
        ("target-factusol wrong clientify key", {"clientify_api_key": WRONG_KEY}),
    ):
        feed = feed_target(
            TargetFactusol,
            _target_factusol_config(fs, cl, out, **kw),
            singer_lines("contacts", contacts),
        )
        note(name, feed.error)
    fs.configure(faults={"error_rate": 1.0, "seed": 1})
    cl.configure(faults={"error_rate": 1.0, "seed": 1})
    try:
        note("tap-factusol 5xx", _run_tap(TapFactusol, _tap_factusol_config(fs, FS_PASSWORD))[1])
        note("tap-clientify 5xx", _run_tap(TapClientify, {**tap_cl, "max_retries": 1})[1])
        feed = feed_target(
            TargetClientify, _target_clientify_config(cl, out), singer_lines("clients", clients)
        )
        note("target-clientify 5xx", feed.error)
        feed = feed_target(
            TargetFactusol,
            _target_factusol_config(fs, cl, out),
            singer_lines("contacts", contacts),
        )
        note("target-factusol 5xx", feed.error)
    finally:
        fs.configure(faults={"error_rate": 0.0})
        cl.configure(faults={"error_rate": 0.0})
    # library objects: reprs and errors of direct calls
    creds = FactusolCredentials("1234", "56789", "FS001", WRONG_PASSWORD)
    fs_client = FactusolClient(creds, api_url=fs.api_url, max_retries=0, sleep=lambda _s: None)
    cl_client = ClientifyClient(WRONG_KEY, cl.api_url, max_retries=0, sleep=lambda _s: None)
    reprs += [repr(creds), str(creds), repr(fs_client), repr(cl_client)]
    for call in (lambda: fs_client.ejercicio, cl_client.account_country):
        try:
            call()
        except (FactusolError, ClientifyError) as exc:
            errors.append(exc)

    captured = capsys.readouterr()
    texts: dict[str, str] = {
        "stdout": captured.out,
        "stderr": captured.err,
        "logs": "\n".join(f"{r.name} {r.levelname} {r.getMessage()}" for r in caplog.records),
        "log args": "\n".join(repr(r.args) for r in caplog.records),
        "errors": "\n".join(f"{e!r} {e}" for e in errors),
        "reprs": "\n".join(reprs),
    }
    for path in tmp_path.rglob("*"):
        if path.is_file():
            texts[str(path.relative_to(tmp_path))] = path.read_text(
                encoding="utf-8", errors="replace"
            )
    leaks = _find_leaks(texts)
    write_figures(
        "secrets-in-process",
        {
            "scenarios": scenarios,
            "log_records_searched": len(caplog.records),
            "debug_records": sum(r.levelno == logging.DEBUG for r in caplog.records),
            "files_searched": len(texts) - 6,
            "secret_forms_searched": sum(len(_forms(s)) for s in SECRETS),
            "leaks": leaks,
        },
    )
    # the failing scenarios really failed, and every credential error names its credential
    assert len(errors) >= 8, scenarios
    assert leaks == []


# ------------------------------------------------------------------------------ HTTPS


def _error_of(call: Any) -> str:
    try:
        call()
    except BaseException as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


HTTP_URL = "http://example.com"


@pytest.mark.parametrize(
    "connector", ["tap-factusol", "tap-clientify", "target-clientify", "target-factusol"]
)
def test_plain_http_refused_for_non_loopback(connector: str, tmp_path: Path) -> None:
    """An http:// URL on a non-loopback host is a clear error at start; nothing is sent."""
    import requests

    sent: list[str] = []
    original = requests.Session.request

    def spy(self: requests.Session, method: str, url: str, *a: Any, **kw: Any) -> Any:
        sent.append(url)
        return original(self, method, url, *a, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(requests.Session, "request", spy)
        if connector == "tap-factusol":
            config = {**FACTUSOL_CREDS, "api_url": HTTP_URL, "sync_mode": "full"}
            error = _error_of(lambda: TapFactusol(config=config, parse_env_config=False).sync_all())
        elif connector == "tap-clientify":
            config = {"api_key": "k", "api_url": HTTP_URL + "/v1", "sync_mode": "full"}
            error = _error_of(
                lambda: TapClientify(config=config, parse_env_config=False).sync_all()
            )
        elif connector == "target-clientify":
            config = _target_clientify_config_for(HTTP_URL + "/v1", tmp_path)
            error = _error_of(
                lambda: TargetClientify(config=config, parse_env_config=False).listen(
                    io.StringIO(singer_lines("clients", [{"code": 1}]))
                )
            )
        else:
            config = {
                **FACTUSOL_CREDS,
                "api_url": HTTP_URL,
                "clientify_api_url": "https://api.clientify.net/v1",
                "clientify_api_key": "k",
                "plan_file": str(tmp_path / "p.jsonl"),
                "reject_file": str(tmp_path / "r.jsonl"),
                "report_file": str(tmp_path / "r.json"),
                "index_cache_file": str(tmp_path / "contacts.sqlite"),
                "ledger_uri": str(tmp_path / "ledger.sqlite"),
            }
            error = _error_of(
                lambda: TargetFactusol(config=config, parse_env_config=False).listen(
                    io.StringIO(singer_lines("contacts", [{"id": 1}]))
                )
            )
    assert "https" in error.lower(), error
    assert "example.com" in error, error
    assert sent == []


def _target_clientify_config_for(url: str, tmp_path: Path) -> dict[str, Any]:
    return {
        "api_key": "k",
        "api_url": url,
        "plan_file": str(tmp_path / "p.jsonl"),
        "reject_file": str(tmp_path / "r.jsonl"),
        "report_file": str(tmp_path / "r.json"),
        "index_cache_file": str(tmp_path / "contacts.sqlite"),
        "ledger_uri": str(tmp_path / "ledger.sqlite"),
    }


@pytest.mark.parametrize("url", ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"])
def test_plain_http_allowed_on_loopback(url: str) -> None:
    from clientify_api import ClientifyClient
    from factusol_api import FactusolClient, FactusolCredentials

    FactusolClient(FactusolCredentials("1", "2", "FS001", "p"), api_url=url)
    ClientifyClient("k", url + "/v1")


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1.example.com", "http://localhost.example.com", "ftp://127.0.0.1"],
)
def test_lookalike_loopback_refused(url: str) -> None:
    from clientify_api import ClientifyClient
    from factusol_api import FactusolClient, FactusolCredentials

    with pytest.raises(ValueError, match="https"):
        FactusolClient(FactusolCredentials("1", "2", "FS001", "p"), api_url=url)
    with pytest.raises(ValueError, match="http"):
        ClientifyClient("k", url + "/v1")
