"""Logs carry keys, counts and reasons, never customers' personal data, at any level."""

from __future__ import annotations

import logging
from pathlib import Path

from rel_harness import (
    clientify_target_config,
    factusol_target_config,
    feed_target,
    singer_lines,
)
from sandbox.launcher import SandboxProcess
from target_clientify.target import TargetClientify
from target_factusol.target import TargetFactusol

NAME = "Zacarías Pérez-Vidrio"
EMAIL = "zacarias.pii@example.org"
BAD_EMAIL = "zacarias@@pii.example"
PHONE = "+34 611 98 76 54"


def assert_no_personal_data(records: list[logging.LogRecord]) -> None:
    assert records, "nothing was logged: the check would pass vacuously"
    text = "\n".join(r.getMessage() for r in records)
    for value in (NAME, EMAIL, BAD_EMAIL, "611987654", "611 98 76 54"):
        assert value not in text, f"{value!r} reached the logs"


def test_target_clientify_logs_no_personal_data_at_debug(
    sandboxes: dict[str, SandboxProcess], tmp_path: Path
) -> None:
    records = [
        {"code": 90001, "fiscal_name": NAME, "email": EMAIL, "phone": PHONE},
        {"code": 90002, "fiscal_name": NAME, "email": BAD_EMAIL, "phone": "12"},
    ]
    logging.getLogger().setLevel(logging.DEBUG)
    feed = feed_target(
        TargetClientify,
        clientify_target_config(sandboxes["clientify"], tmp_path),
        singer_lines("clients", records),
    )
    assert feed.error is None
    assert_no_personal_data(feed.logs)


def test_target_factusol_logs_no_personal_data_at_debug(
    sandboxes: dict[str, SandboxProcess], tmp_path: Path
) -> None:
    contact = sandboxes["clientify"].admin("POST", "contacts", {"first_name": NAME})
    records = [
        {
            "id": contact["id"],
            "first_name": NAME,
            "last_name": "",
            "emails": [{"id": 1, "type": 4, "email": BAD_EMAIL}],
            "phones": [{"id": 2, "type": 1, "phone": PHONE}],
            "addresses": [],
            "custom_fields": [],
            "tags": [],
            "modified": "2026-01-01T10:00:00+01:00",
        }
    ]
    logging.getLogger().setLevel(logging.DEBUG)
    feed = feed_target(
        TargetFactusol,
        factusol_target_config(sandboxes["factusol"], sandboxes["clientify"], tmp_path),
        singer_lines("contacts", records),
    )
    assert feed.error is None
    assert_no_personal_data(feed.logs)
