"""The promise, watched: one alert per incident, per company and direction.

An incident opens when a sync fails after its retries, when an API refuses a credential (or a
variable the tenants file names is unset), or when a direction has not synced for longer than
the company's `stale_after_minutes`. Its alert goes out once, by e-mail (SMTP) and/or a webhook
(JSON POST) as the tenants file's `alerts:` says; whatever else goes wrong while it is open is
recorded on it, not sent again. The next successful sync closes it.

Each company's watch state (last success per direction, the open incident) is a small JSON file
in its directory, `<work_dir>/<company>/watch.json` (0600), updated under an `fcntl` lock: the
sync steps and the watch sensor run in different processes. No Dagster here: `definitions`
calls `Watch` from the sync step and from its sensor, with an injectable clock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import smtplib
import ssl
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from .tenants import AlertSettings, Company, Tenants

__all__ = ["KINDS", "Alert", "Notifier", "Watch", "WatchStatus"]

logger = logging.getLogger(__name__)

# Incident kinds, and how an alert names them.
KINDS = {
    "failed": "failed after its retries",
    "credentials": "a credential was refused",
    "settings": "cannot start: a setting is missing",
    "stale": "not synced for too long",
}
ARROWS = {
    "factusol_to_clientify": "FactuSOL -> Clientify",
    "clientify_to_factusol": "Clientify -> FactuSOL",
}
_DETAIL_CHARS = 2000


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _parse(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Alert:
    """One incident's message. `detail` is the run's last error lines, already redacted."""

    company: str
    company_name: str
    direction: str
    kind: str
    opened_at: datetime
    detail: str = ""
    log: str | None = None

    @property
    def summary(self) -> str:
        arrow = ARROWS.get(self.direction, self.direction)
        what = KINDS.get(self.kind, self.kind)
        return f"[fcsync] {self.company_name} ({self.company}): {arrow} {what}"

    def body(self) -> str:
        lines = [
            self.summary,
            "",
            f"company: {self.company} ({self.company_name})",
            f"direction: {ARROWS.get(self.direction, self.direction)}",
            f"since: {_iso(self.opened_at)}",
        ]
        if self.log:
            lines.append(f"log: {self.log}")
        if self.detail:
            lines += ["", self.detail[-_DETAIL_CHARS:]]
        lines += [
            "",
            "One message per incident: nothing more is sent until a sync of this company and "
            "direction succeeds, which closes it.",
        ]
        return "\n".join(lines)

    def payload(self) -> dict[str, Any]:
        """The webhook's JSON (`text` is what chat webhooks such as Slack's display)."""
        return {
            "text": self.summary,
            "company": self.company,
            "company_name": self.company_name,
            "direction": self.direction,
            "kind": self.kind,
            "opened_at": _iso(self.opened_at),
            "detail": self.detail[-_DETAIL_CHARS:],
            "log": self.log,
        }


class Notifier:
    """Sends an alert through every configured channel; never raises (it logs and reports)."""

    def __init__(self, settings: AlertSettings | None, environ: Mapping[str, str]) -> None:
        self.settings = settings
        self.environ = environ

    @property
    def configured(self) -> bool:
        return self.settings is not None and (
            self.settings.smtp_host is not None or self.settings.webhook is not None
        )

    def send(self, alert: Alert, extra_to: tuple[str, ...] = ()) -> bool:
        """True when at least one channel took the message (or none is configured)."""
        settings = self.settings
        if settings is None or not self.configured:
            logger.warning("alert not sent (no alerts: in the tenants file): %s", alert.summary)
            return True
        sent = False
        if settings.smtp_host is not None:
            try:
                self._mail(settings, alert, extra_to)
                sent = True
            except (OSError, smtplib.SMTPException, ValueError) as exc:
                logger.warning("alert e-mail failed (%s): %s", type(exc).__name__, alert.summary)
        if settings.webhook is not None:
            try:
                self._post(settings, alert)
                sent = True
            except (OSError, ValueError) as exc:
                logger.warning("alert webhook failed (%s): %s", type(exc).__name__, alert.summary)
        return sent

    def _secret(self, name: str | None) -> str | None:
        if name is None:
            return None
        value = self.environ.get(name)
        if not value:
            raise ValueError(f"variable {name} is not set")
        return value

    def _mail(self, settings: AlertSettings, alert: Alert, extra_to: tuple[str, ...]) -> None:
        message = EmailMessage()
        message["Subject"] = alert.summary
        message["From"] = settings.mail_from
        message["To"] = ", ".join(dict.fromkeys((*settings.mail_to, *extra_to)))
        message.set_content(alert.body())
        host, port = settings.smtp_host or "", settings.smtp_port
        password = self._secret(settings.smtp_password_env)
        if settings.smtp_security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                host, port, timeout=settings.timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(host, port, timeout=settings.timeout)
        with client:
            if settings.smtp_security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if settings.smtp_username and password:
                client.login(settings.smtp_username, password)
            client.send_message(message)

    def _post(self, settings: AlertSettings, alert: Alert) -> None:
        assert settings.webhook is not None
        url = settings.webhook.resolve(self.environ)
        if not url:
            raise ValueError(f"variable {settings.webhook.env} is not set")
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked when parsed
            url,
            data=json.dumps(alert.payload()).encode("utf-8"),
            headers={"Content-Type": "application/json", "User-Agent": "fcsync-alerts"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=settings.timeout) as response:  # noqa: S310
            if not 200 <= response.status < 300:
                raise OSError(f"webhook answered {response.status}")


@dataclass
class WatchStatus:
    """One company's direction, as the watch sees it."""

    company: str
    direction: str
    last_success_at: datetime | None
    first_seen_at: datetime
    incident: dict[str, Any] | None = field(default=None)

    def age(self, now: datetime) -> timedelta:
        """Since the last successful sync (since the watch first saw it, when none yet)."""
        return now - (self.last_success_at or self.first_seen_at)


class Watch:
    """Records each sync's outcome and opens, alerts and closes incidents."""

    def __init__(
        self,
        tenants: Tenants,
        *,
        notifier: Notifier | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.tenants = tenants
        self.clock = clock
        self.notifier = notifier or Notifier(
            tenants.alerts, os.environ if environ is None else environ
        )

    # -- the state file ---------------------------------------------------------------------
    def _path(self, company: Company) -> Path:
        return self.tenants.work_dir / company.id / "watch.json"

    @contextlib.contextmanager
    def _state(self, company: Company) -> Iterator[dict[str, Any]]:
        """The company's watch state, locked against other processes, written back on exit."""
        path = self._path(company)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(fd, "r+", encoding="utf-8") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            text = handle.read()
            try:
                state = json.loads(text) if text.strip() else {}
            except ValueError:
                logger.warning("watch state of %s was unreadable: started again", company.id)
                state = {}
            if not isinstance(state, dict):
                state = {}
            before = json.dumps(state, sort_keys=True)
            yield state
            after = json.dumps(state, sort_keys=True)
            if after != before:
                handle.seek(0)
                handle.truncate()
                handle.write(json.dumps(state, indent=1, sort_keys=True))
                handle.flush()

    def _entry(self, state: dict[str, Any], direction: str, now: datetime) -> dict[str, Any]:
        entry = state.get(direction)
        if not isinstance(entry, dict):
            entry = state[direction] = {}
        entry.setdefault("first_seen_at", _iso(now))
        return entry

    def status(self, company: Company, direction: str) -> WatchStatus:
        now = self.clock()
        with self._state(company) as state:
            entry = self._entry(state, direction, now)
            return WatchStatus(
                company=company.id,
                direction=direction,
                last_success_at=_parse(entry.get("last_success_at")),
                first_seen_at=_parse(entry.get("first_seen_at")) or now,
                incident=entry.get("incident"),
            )

    # -- what the sync step reports ---------------------------------------------------------
    def succeeded(self, company: Company, direction: str) -> bool:
        """A sync succeeded: the last success is now, an open incident closes (True if one did)."""
        now = self.clock()
        with self._state(company) as state:
            entry = self._entry(state, direction, now)
            entry["last_success_at"] = _iso(now)
            incident = entry.pop("incident", None)
        if incident:
            logger.info(
                "%s %s: incident %r since %s closed by a successful sync",
                company.id,
                direction,
                incident.get("kind"),
                incident.get("opened_at"),
            )
        return bool(incident)

    def failed(
        self,
        company: Company,
        direction: str,
        kind: str,
        detail: str = "",
        log: str | None = None,
    ) -> bool:
        """A sync failed for good (`kind` in KINDS). Opens an incident and sends its alert
        unless one is open already. True when an alert went out now."""
        return self._open(company, direction, kind, detail, log)

    def _open(
        self, company: Company, direction: str, kind: str, detail: str, log: str | None
    ) -> bool:
        now = self.clock()
        with self._state(company) as state:
            entry = self._entry(state, direction, now)
            incident = entry.get("incident")
            if incident is None:
                incident = {"kind": kind, "opened_at": _iso(now), "detail": detail[-_DETAIL_CHARS:]}
                if log:
                    incident["log"] = log
                entry["incident"] = incident
            else:
                # Still the same incident: note what happened since, send nothing new.
                incident["last_event"] = {"kind": kind, "at": _iso(now)}
            if incident.get("alerted_at"):
                return False
            # Sent while the state is locked: two processes never both send one incident.
            alert = Alert(
                company=company.id,
                company_name=company.name,
                direction=direction,
                kind=str(incident["kind"]),
                opened_at=_parse(incident["opened_at"]) or now,
                detail=str(incident.get("detail", "")),
                log=incident.get("log"),
            )
            if self.notifier.send(alert, company.alert_to):
                incident["alerted_at"] = _iso(now)
                return True
            return False  # retried by the next event or sensor tick

    # -- what the sensor checks -------------------------------------------------------------
    def watched(self, company: Company, direction: str) -> bool:
        """Whether a direction is expected to sync at all (active, with a schedule)."""
        if not company.active:
            return False
        jobs = [kind for kind in company.schedules if kind.replace("-", "_").startswith(direction)]
        return any(company.schedules.get(kind) for kind in jobs)

    def check(self) -> list[WatchStatus]:
        """Every watched direction of every company: opens a `stale` incident where the last
        success is older than the company's setting, and re-sends an alert that could not go
        out before. Returns every status (for the sensor's log)."""
        from .runner import DIRECTIONS  # no cycle at import time

        statuses = []
        for company in self.tenants.companies:
            for direction in DIRECTIONS:
                if not self.watched(company, direction):
                    continue
                status = self.status(company, direction)
                now = self.clock()
                limit = timedelta(minutes=company.stale_after_minutes)
                incident = status.incident
                if incident is not None and incident.get("alerted_at"):
                    statuses.append(status)  # open and told: nothing more until it closes
                    continue
                if status.age(now) > limit or incident is not None:
                    minutes = int(status.age(now).total_seconds() // 60)
                    since = (
                        f"last successful sync {_iso(status.last_success_at)}"
                        if status.last_success_at
                        else f"no successful sync since {_iso(status.first_seen_at)}"
                    )
                    detail = f"{since} ({minutes} min ago; limit {company.stale_after_minutes})"
                    self._open(company, direction, "stale", detail, None)
                    status = self.status(company, direction)
                statuses.append(status)
        return statuses
