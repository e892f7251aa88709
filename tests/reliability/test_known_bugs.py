"""Bugs the reliability suite found, each pinned by a minimal case (strict xfail: when the owner
fixes one, its test passes, xfail-strict turns that into a failure, and the marker comes off).
The target-factusol cases without a marker were fixed in 83f361d and stay as regression tests.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from rel_harness import (
    clientify_target_config,
    factusol_target_config,
    feed_target,
    read_jsonl,
    singer_lines,
)
from sandbox.launcher import SandboxProcess
from target_clientify.target import TargetClientify
from target_factusol.target import TargetFactusol


def _client(code: int | None, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "code": code,
        "fiscal_name": f"Bug {code}, S.L.",
        "email": f"bug{code}@example.org",
        "modified": "2025-06-01T00:00:00+02:00",
        **extra,
    }
    return {k: v for k, v in record.items() if v is not None or k != "code"}


def _links(cl: SandboxProcess) -> list[str]:
    out = []
    for contact in cl.admin("GET", "contacts")["contacts"]:
        for item in contact.get("custom_fields") or []:
            if item.get("field") == "factusol_id" and item.get("value"):
                out.append(str(item["value"]))
    return out


def test_clientify_record_without_code_is_rejected_not_fatal(
    sandboxes: dict[str, SandboxProcess], tmp_path: Path
) -> None:
    cl = sandboxes["clientify"]
    records = [_client(880001), {"fiscal_name": "No code", "email": "nocode@example.org"}]
    feed = feed_target(
        TargetClientify, clientify_target_config(cl, tmp_path), singer_lines("clients", records)
    )
    assert feed.error is None
    assert "880001" in _links(cl)
    assert len(read_jsonl(tmp_path / "rejects-clientify.jsonl")) == 2  # SCHEMA + the record


def test_clientify_bad_modified_is_not_fatal(
    sandboxes: dict[str, SandboxProcess], tmp_path: Path
) -> None:
    cl = sandboxes["clientify"]
    records = [_client(880002, modified="0000-00-00"), _client(880003)]
    feed = feed_target(
        TargetClientify, clientify_target_config(cl, tmp_path), singer_lines("clients", records)
    )
    assert feed.error is None
    assert "880003" in _links(cl)


def _contact(cl: SandboxProcess, **changes: Any) -> dict[str, Any]:
    made = cl.admin("POST", "contacts", {"first_name": "Bug", "last_name": "Contact"})
    record: dict[str, Any] = {
        "id": made["id"],
        "first_name": "Bug",
        "last_name": f"Contact {made['id']}",
        "emails": [{"id": 1, "type": 4, "email": f"bug{made['id']}@example.org"}],
        "phones": [],
        "addresses": [],
        "custom_fields": [],
        "factusol_id": None,
        "modified": "2025-06-01T00:00:00Z",
    }
    record.update(changes)
    return record


def _created_for(fs: SandboxProcess, contact_id: int) -> list[dict[str, Any]]:
    from target_factusol.markers import marker_ids

    rows = fs.admin("GET", "clients")["clients"]
    return [row for row in rows if contact_id in marker_ids(row.get("OBSCLI"))]


def test_factusol_schema_invalid_record_is_rejected_not_fatal(
    sandboxes: dict[str, SandboxProcess], tmp_path: Path
) -> None:
    fs, cl = sandboxes["factusol"], sandboxes["clientify"]
    good, bad = _contact(cl), _contact(cl, first_name=12345)
    feed = feed_target(
        TargetFactusol,
        factusol_target_config(fs, cl, tmp_path),
        singer_lines("contacts", [bad, good]),
    )
    assert feed.error is None
    assert len(_created_for(fs, good["id"])) == 1


def test_factusol_bad_modified_is_not_fatal(
    sandboxes: dict[str, SandboxProcess], tmp_path: Path
) -> None:
    fs, cl = sandboxes["factusol"], sandboxes["clientify"]
    good, bad = _contact(cl), _contact(cl, modified="yesterday")
    feed = feed_target(
        TargetFactusol,
        factusol_target_config(fs, cl, tmp_path),
        singer_lines("contacts", [bad, good]),
    )
    assert feed.error is None
    assert len(_created_for(fs, good["id"])) == 1


def test_factusol_value_that_does_not_fit_is_warned(
    sandboxes: dict[str, SandboxProcess], tmp_path: Path
) -> None:
    fs, cl = sandboxes["factusol"], sandboxes["clientify"]
    long_email = "a" * 300 + "@example.com"
    record = _contact(cl, emails=[{"id": 1, "type": 4, "email": long_email}])
    feed = feed_target(
        TargetFactusol, factusol_target_config(fs, cl, tmp_path), singer_lines("contacts", [record])
    )
    assert feed.error is None
    rows = _created_for(fs, record["id"])
    assert len(rows) == 1
    assert rows[0]["EMACLI"] == ""  # dropped: it cannot be stored
    warnings = [r.getMessage() for r in feed.logs if r.levelname == "WARNING"]
    assert any(str(record["id"]) in m and "email" in m for m in warnings), warnings


def test_reject_file_keeps_numbers_as_numbers(tmp_path: Path) -> None:
    from customer_sync import RejectWriter

    path = tmp_path / "rejects.jsonl"
    with RejectWriter(path) as writer:
        writer.reject(
            "clients",
            {"code": 7, "tarcli": Decimal("1.5")},
            reason="test",
            key=7,
            schema={"properties": {"code": {"type": "integer"}, "tarcli": {"type": "number"}}},
        )
    record = json.loads(path.read_text(encoding="utf-8").splitlines()[-1])["record"]
    assert record["tarcli"] == 1.5


def test_factusol_record_without_id_is_rejected_not_fatal(
    sandboxes: dict[str, SandboxProcess], tmp_path: Path
) -> None:
    fs, cl = sandboxes["factusol"], sandboxes["clientify"]
    good, bad = _contact(cl), _contact(cl)
    bad.pop("id")
    feed = feed_target(
        TargetFactusol,
        factusol_target_config(fs, cl, tmp_path),
        singer_lines("contacts", [bad, good]),
    )
    assert feed.error is None
    assert len(_created_for(fs, good["id"])) == 1
