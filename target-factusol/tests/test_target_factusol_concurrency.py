"""Concurrent writes (max_workers) against both sandboxes: unique codes, one client per contact,
and decisions that depend on earlier records taken in record order whatever the thread count."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest
from factusol_api import FactusolClient
from target_factusol.errors import FatalRunError
from target_factusol.markers import marker_ids
from target_factusol_testlib import Harness, link_of, messages

FIRST_ID = 135000001  # the sandbox's first contact id after a reseed


def contacts_msgs(count: int, **overrides: Any) -> list[dict[str, Any]]:
    """SCHEMA + ``count`` new contacts (ids in the sandbox's sequence), distinct e-mails."""
    schema, record = (m for m in messages("new_contact") if m["type"] in {"SCHEMA", "RECORD"})
    out: list[dict[str, Any]] = [schema]
    for n in range(count):
        rec = copy.deepcopy(record["record"])
        rec.update(
            id=FIRST_ID + n,
            first_name=f"Persona{n}",
            last_name="Concurrente",
            taxpayer_identification_number=None,
            emails=[{"id": 104100000 + n, "type": 4, "email": f"persona{n}@concurrency.test"}],
        )
        rec.update(overrides)
        out.append({"type": "RECORD", "stream": "contacts", "record": rec})
    return out


def marked(clients: dict[int, dict[str, Any]], contact_id: int) -> list[int]:
    return [code for code, row in clients.items() if contact_id in marker_ids(row.get("OBSCLI"))]


def test_concurrent_creations_never_reuse_a_code_and_each_contact_gets_one_client(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    msgs = contacts_msgs(60)
    harness.put_contacts(msgs)
    top = max(harness.clients())
    # Another writer holds top+30, created after our MAX read: one insert answers
    # BDExisteRegistro in the middle of the run while other workers insert around it.
    foreign = harness.put_client(CODCLI=top + 30, NOFCLI="Otro Programa SL")
    real_max = FactusolClient.max_client_code
    monkeypatch.setattr(FactusolClient, "max_client_code", lambda self: real_max(self) - 30)
    harness.fs.configure(faults={"latency_ms": 5.0})  # make the inserts overlap
    threads: set[str] = set()
    real_insert = FactusolClient.insert_client

    def insert(self: FactusolClient, row: dict[str, Any]) -> None:
        threads.add(threading.current_thread().name)
        real_insert(self, row)

    monkeypatch.setattr(FactusolClient, "insert_client", insert)
    harness.clear_logs()

    out = harness.run(msgs, max_workers=8)

    clients, contacts = harness.clients(), harness.contacts()
    ids = [FIRST_ID + n for n in range(60)]
    codes = {cid: marked(clients, cid) for cid in ids}
    assert all(len(found) == 1 for found in codes.values()), codes
    assert {cid: link_of(contacts[cid]) for cid in ids} == {
        cid: str(found[0]) for cid, found in codes.items()
    }
    used = sorted(found[0] for found in codes.values())
    assert len(set(used)) == 60
    assert used == [c for c in range(top + 1, top + 62) if c != top + 30]
    assert clients[top + 30]["NOFCLI"] == foreign["NOFCLI"]
    assert marker_ids(clients[top + 30].get("OBSCLI")) == set()
    log = [r["path"] for r in harness.fs.requests_log()]
    assert log.count("/admin/EscribirRegistro") == 61  # 60 + the one collision
    assert len(threads) > 1  # the inserts really ran on several workers
    assert out.report["counts"]["created"] == 60
    assert out.report["counts"].get("rejected", 0) == 0
    # The plan is in record order whatever the threads did.
    assert [(p["action"], p["key"]) for p in out.plan] == [("create", cid) for cid in ids]
    assert {p["key"]: p["target_id"] for p in out.plan} == {c: f[0] for c, f in codes.items()}


@pytest.mark.parametrize("workers", [1, 8])
def test_two_contacts_matching_one_unlinked_client_link_one_reject_the_other(
    harness: Harness, workers: int
) -> None:
    harness.put_client(CODCLI=601, NOFCLI="Sofía Lara", NIFCLI="87654321X", FUMCLI="2025-01-01")
    msgs = contacts_msgs(2, taxpayer_identification_number="87654321X")
    harness.put_contacts(msgs)
    before = set(harness.clients())

    out = harness.run(msgs, max_workers=workers, max_reject_percent=100)

    contacts = harness.contacts()
    assert link_of(contacts[FIRST_ID]) == "601"  # the first in record order
    assert link_of(contacts[FIRST_ID + 1]) is None
    assert set(harness.clients()) == before  # nothing created
    assert [(p["action"], p["key"]) for p in out.plan] == [
        ("link", FIRST_ID),
        ("reject", FIRST_ID + 1),
    ]
    assert "already linked: 601" in out.plan[1]["reason"]
    assert [r["record"]["id"] for r in out.rejects if r["type"] == "RECORD"] == [FIRST_ID + 1]


@pytest.mark.parametrize(("workers", "batch"), [(1, 500), (8, 500), (8, 1)])
def test_contact_matching_a_client_created_for_an_earlier_contact_is_rejected(
    harness: Harness, workers: int, batch: int
) -> None:
    # Same e-mail, no existing client: the first is created; the second would match it (the
    # same decision whether both are in one batch or not, and whatever the thread count).
    msgs = contacts_msgs(2, emails=[{"id": 104200000, "type": 4, "email": "shared@example.es"}])
    harness.put_contacts(msgs)

    out = harness.run(msgs, max_workers=workers, batch_size_rows=batch, max_reject_percent=100)

    created = marked(harness.clients(), FIRST_ID)
    assert len(created) == 1
    assert marked(harness.clients(), FIRST_ID + 1) == []
    assert [p["action"] for p in out.plan] == ["create", "reject"]
    assert f"already linked: {created[0]}" in out.plan[1]["reason"]


def test_max_workers_below_one_is_a_bad_setting(harness: Harness) -> None:
    with pytest.raises(FatalRunError, match="max_workers"):
        harness.run(contacts_msgs(1), max_workers=0)
    assert harness.writes() == {"factusol": [], "clientify": []}
