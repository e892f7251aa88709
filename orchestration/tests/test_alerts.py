"""The promise, watched: a fake SMTP server and a webhook receiver on loopback get exactly one
message per incident (failed after retries, refused credential, not synced for too long), none
per retry, and a success closes the incident. Clocks are injected: nothing sleeps."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from fcsync_orchestration.alerts import Alert, Notifier, Watch
from fcsync_orchestration.definitions import build_definitions
from fcsync_orchestration.runner import build_env
from fcsync_orchestration.tenants import Tenants, TenantsError, load_tenants

from .conftest import SECRETS, fake_calls, two_companies

pytestmark = [
    pytest.mark.filterwarnings("error"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]
WEBHOOK_TOKEN = "hook-token-91c2"  # the webhook URL's secret part
SMTP_PASSWORD = "smtp-pw-77aa"


# ------------------------------------------------------------------------- loopback receivers
class Webhook:
    """A webhook receiver on loopback; `fail` makes it answer 500."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.fail:
                    self.send_response(500)
                else:
                    outer.received.append({"path": self.path, "json": json.loads(body)})
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/{WEBHOOK_TOKEN}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Smtp:
    """Just enough SMTP (EHLO, AUTH PLAIN, MAIL, RCPT, DATA) on loopback, no TLS."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.recipients: list[list[str]] = []
        self.logins: list[str] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                self.reply("220 fake ESMTP")
                rcpt: list[str] = []
                while line := self.rfile.readline():
                    command = line.decode().strip()
                    verb = command.split(" ", 1)[0].upper()
                    if verb == "EHLO":
                        self.reply("250-fake")
                        self.reply("250 AUTH PLAIN")
                    elif verb == "AUTH":
                        outer.logins.append(command)
                        self.reply("235 ok")
                    elif verb == "MAIL":
                        rcpt = []
                        self.reply("250 ok")
                    elif verb == "RCPT":
                        rcpt.append(command.split(":", 1)[1].strip(" <>"))
                        self.reply("250 ok")
                    elif verb == "DATA":
                        self.reply("354 go on")
                        data = b""
                        while (chunk := self.rfile.readline()) != b".\r\n":
                            data += chunk
                        outer.messages.append(message_from_bytes(data, policy=policy.default))
                        outer.recipients.append(rcpt)
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 ok")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp()
    yield server
    server.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tenants(
    write_tenants: Callable[[dict[str, Any]], Path],
    webhook: Webhook,
    smtp: Smtp,
    monkeypatch: pytest.MonkeyPatch,
) -> Tenants:
    monkeypatch.setenv("FCSYNC_ALERT_WEBHOOK_URL", webhook.url)
    monkeypatch.setenv("FCSYNC_SMTP_PASSWORD", SMTP_PASSWORD)
    doc = two_companies(
        alerts={
            "email": {
                "host": "127.0.0.1",
                "port": smtp.port,
                "security": "none",  # the fake speaks no TLS; loopback only
                "username": "fcsync",
                "password_env": "FCSYNC_SMTP_PASSWORD",
                "from": "fcsync@example.com",
                "to": ["ops@example.com"],
            },
            "webhook": {"url_env": "FCSYNC_ALERT_WEBHOOK_URL"},
        }
    )
    doc["companies"][0]["alert_to"] = "admin@acme.example"
    doc["companies"][0]["stale_after_minutes"] = 20
    return load_tenants(write_tenants(doc))


def run(defs: dg.Definitions, job: str) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(job).execute_in_process(raise_on_error=False)


def retries(result: dg.ExecuteInProcessResult) -> int:
    return sum(e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY for e in result.all_events)


# ------------------------------------------------------------------------------------- tests
def test_a_run_failing_after_its_retries_sends_one_alert_and_success_closes_it(
    tenants: Tenants,
    clock: Clock,
    webhook: Webhook,
    smtp: Smtp,
    tmp_path: Path,
    secrets_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defs = build_definitions(tenants, clock=clock)
    monkeypatch.setenv("FAKE_MELTANO_PLAN", "fail")

    first = run(defs, "acme__factusol_to_clientify")
    assert not first.success
    assert retries(first) == 2  # three attempts, one alert
    (hook,) = webhook.received
    assert hook["path"] == f"/hooks/{WEBHOOK_TOKEN}"
    payload = hook["json"]
    assert payload["company"] == "acme"
    assert payload["direction"] == "factusol_to_clientify"
    assert payload["kind"] == "failed"
    assert (
        payload["text"]
        == "[fcsync] Acme, S.L. (acme): FactuSOL -> Clientify failed after its retries"
    )
    assert "KO after 5 retries for ***" in payload["detail"]
    (mail,) = smtp.messages
    assert str(mail["Subject"]).strip() == payload["text"]  # unfolded
    assert smtp.recipients == [["ops@example.com", "admin@acme.example"]]
    body = mail.get_payload()
    assert "KO after 5 retries for ***" in str(body)
    everything = json.dumps(webhook.received) + str(body)
    for secret in (*SECRETS.values(), SMTP_PASSWORD):
        assert secret not in everything

    # The next scheduled runs fail too: still the same incident, nothing more is sent.
    clock.advance(minutes=5)
    assert not run(defs, "acme__factusol_to_clientify").success
    assert len(webhook.received) == len(smtp.messages) == 1
    # The other direction is another incident; its failure alerts once on its own.
    assert not run(defs, "acme__clientify_to_factusol").success
    assert [h["json"]["direction"] for h in webhook.received] == [
        "factusol_to_clientify",
        "clientify_to_factusol",
    ]

    # A success closes the factusol_to_clientify incident; the next failure is a new one.
    monkeypatch.setenv("FAKE_MELTANO_PLAN", "ok")
    clock.advance(minutes=5)
    assert run(defs, "acme__factusol_to_clientify").success
    monkeypatch.setenv("FAKE_MELTANO_PLAN", "fail")
    clock.advance(minutes=5)
    assert not run(defs, "acme__factusol_to_clientify").success
    assert len(webhook.received) == len(smtp.messages) == 3
    assert webhook.received[2]["json"]["opened_at"] == clock.now.isoformat(timespec="seconds")


def test_a_refused_credential_alerts_at_once_without_retries(
    tenants: Tenants,
    clock: Clock,
    webhook: Webhook,
    smtp: Smtp,
    tmp_path: Path,
    secrets_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defs = build_definitions(tenants, clock=clock)
    monkeypatch.setenv("FAKE_MELTANO_PLAN", "auth")
    result = run(defs, "globex__clientify_to_factusol")
    assert not result.success
    assert retries(result) == 0
    assert len(fake_calls(tmp_path)) == 1
    (hook,) = webhook.received
    assert hook["json"]["kind"] == "credentials"
    assert "Clientify rejected the API key" in hook["json"]["detail"]
    assert len(smtp.messages) == 1
    assert smtp.recipients == [["ops@example.com"]]  # globex has no alert_to of its own
    # An unset variable is the same kind of incident, once too (another direction here).
    monkeypatch.delenv("GLOBEX_FACTUSOL_PASSWORD")
    assert not run(defs, "globex__factusol_to_clientify").success
    assert [h["json"]["kind"] for h in webhook.received] == ["credentials", "settings"]
    assert "GLOBEX_FACTUSOL_PASSWORD" in webhook.received[1]["json"]["detail"]


def test_a_company_not_synced_for_longer_than_its_setting_alerts_once(
    tenants: Tenants,
    clock: Clock,
    webhook: Webhook,
    smtp: Smtp,
    secrets_env: dict[str, str],
) -> None:
    defs = build_definitions(tenants, clock=clock)
    sensor = defs.resolve_sensor_def("fcsync_watch")
    instance = dg.DagsterInstance.ephemeral()

    def tick() -> str:
        context = dg.build_sensor_context(instance=instance)
        result = sensor.evaluate_tick(context)
        assert not result.run_requests
        return str(result.skip_message)

    # acme (active) is watched in both directions; globex is inactive: never watched.
    assert tick() == "2 company directions watched, 0 with an open incident"
    assert run(defs, "acme__factusol_to_clientify").success
    clock.advance(minutes=19)
    tick()
    assert webhook.received == []
    clock.advance(minutes=2)  # 21 minutes: acme's limit is 20
    assert tick() == "2 company directions watched, 2 with an open incident"
    kinds = sorted((h["json"]["direction"], h["json"]["kind"]) for h in webhook.received)
    assert kinds == [("clientify_to_factusol", "stale"), ("factusol_to_clientify", "stale")]
    detail = next(
        h["json"]["detail"]
        for h in webhook.received
        if h["json"]["direction"] == "factusol_to_clientify"
    )
    assert detail == "last successful sync 2026-12-07T09:00:00+00:00 (21 min ago; limit 20)"
    for _ in range(3):
        clock.advance(minutes=10)
        tick()
    assert len(webhook.received) == len(smtp.messages) == 2
    # A success closes it: the age starts again, and so would a new incident.
    assert run(defs, "acme__factusol_to_clientify").success
    status = Watch(tenants, clock=clock).status(tenants.company("acme"), "factusol_to_clientify")
    assert status.incident is None
    assert status.age(clock.now) == timedelta(0)


def test_an_alert_that_cannot_go_out_is_sent_by_the_next_tick_once(
    tenants: Tenants, clock: Clock, webhook: Webhook, smtp: Smtp, secrets_env: dict[str, str]
) -> None:
    smtp.close()  # e-mail down
    webhook.fail = True  # and the webhook answering 500
    watch = Watch(tenants, clock=clock)
    acme = tenants.company("acme")
    assert watch.failed(acme, "factusol_to_clientify", "failed", "exit 1") is False
    assert watch.status(acme, "factusol_to_clientify").incident is not None
    webhook.fail = False
    watch.check()
    watch.check()
    assert [h["json"]["kind"] for h in webhook.received] == ["failed"]


def test_a_run_whose_job_is_held_succeeds_without_materializing_or_retrying(
    tenants: Tenants,
    clock: Clock,
    webhook: Webhook,
    tmp_path: Path,
    secrets_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defs = build_definitions(tenants, clock=clock)
    monkeypatch.setenv("FAKE_MELTANO_PLAN", "held")
    result = run(defs, "acme__clientify_to_factusol")
    assert result.success
    assert retries(result) == 0
    assert len(fake_calls(tmp_path)) == 1
    assert list(result.asset_materializations_for_node("acme__factusol_clients")) == []
    assert webhook.received == []
    # Nothing was synced: the watch did not count it as a success.
    status = Watch(tenants, clock=clock).status(tenants.company("acme"), "clientify_to_factusol")
    assert status.last_success_at is None


def test_alert_settings_take_secrets_by_variable_and_runs_never_see_them(
    tenants: Tenants, write_tenants: Callable[[dict[str, Any]], Path], tmp_path: Path
) -> None:
    alerts = tenants.alerts
    assert alerts is not None
    assert alerts.smtp_password_env == "FCSYNC_SMTP_PASSWORD"
    environ = {**SECRETS, "FCSYNC_SMTP_PASSWORD": "x", "FCSYNC_ALERT_WEBHOOK_URL": "y"}
    env, _ = build_env(tenants, tenants.company("acme"), environ=environ, sys_dir=tmp_path)
    assert "FCSYNC_SMTP_PASSWORD" not in env
    assert "FCSYNC_ALERT_WEBHOOK_URL" not in env
    for bad, message in (
        ({"email": {"host": "h", "from": "a@b.es", "to": "x", "password": "p"}}, "never written"),
        ({"email": {"host": "h", "from": "a@b.es"}}, "to is required"),
        ({"webhook": {"url": "ftp://x"}}, "not an http"),
        ({}, "give email:, webhook: or both"),
    ):
        with pytest.raises(TenantsError, match=message):
            load_tenants(write_tenants(two_companies(alerts=bad)))


def test_without_alert_settings_incidents_are_only_logged(
    write_tenants: Callable[[dict[str, Any]], Path], clock: Clock
) -> None:
    tenants = load_tenants(write_tenants(two_companies()))
    notifier = Notifier(tenants.alerts, {})
    assert not notifier.configured
    alert = Alert("acme", "Acme", "factusol_to_clientify", "stale", clock.now)
    assert notifier.send(alert) is True  # nothing to retry: logged as a warning
