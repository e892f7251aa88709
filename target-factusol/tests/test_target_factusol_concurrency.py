"""Concurrent writes (max_workers) against both sandboxes: unique codes, one client per contact,
and decisions that depend on earlier records taken in record order whatever the thread count."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest
from factusol_api import FactusolClient
from target_factusol.markers import marker_ids
from target_factusol.sinks import FatalRunError
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
def test_two_contacts_sharing_a_nif_never_adopt_the_client_each_is_created(
    harness: Harness, workers: int
) -> None:
    # Two CRM contacts with one NIF (two people of one company): the NIF identifies none of
    # them, so neither adopts client 601 and neither is lost: each gets its own client.
    harness.put_client(CODCLI=601, NOFCLI="Sofía Lara", NIFCLI="31415926L", FUMCLI="2025-01-01")
    msgs = contacts_msgs(2, taxpayer_identification_number="31415926L")
    harness.put_contacts(msgs)
    before = harness.clients()

    out = harness.run(msgs, max_workers=workers)

    contacts = harness.contacts()
    links = {link_of(contacts[FIRST_ID]), link_of(contacts[FIRST_ID + 1])}
    assert "601" not in links
    assert len(links) == 2
    assert harness.clients()[601] == before[601]
    assert [p["action"] for p in out.plan] == ["create", "create"]
    assert out.rejects == []


@pytest.mark.parametrize(("workers", "batch"), [(1, 500), (8, 500), (8, 1)])
def test_contacts_sharing_an_email_are_each_created_once(
    harness: Harness, workers: int, batch: int
) -> None:
    # A shared address (a gestoría's) identifies nobody: each contact gets its own client, the
    # same whether both are in one batch or not, and whatever the thread count.
    msgs = contacts_msgs(2, emails=[{"id": 104200000, "type": 4, "email": "shared@example.es"}])
    harness.put_contacts(msgs)

    out = harness.run(msgs, max_workers=workers, batch_size_rows=batch)

    first, second = marked(harness.clients(), FIRST_ID), marked(harness.clients(), FIRST_ID + 1)
    assert len(first) == len(second) == 1
    assert first != second
    assert [p["action"] for p in out.plan] == ["create", "create"]
    again = harness.run(harness.current_messages(), max_workers=workers)
    assert {p["action"] for p in again.plan} == {"unchanged"}


def test_max_workers_below_one_is_a_bad_setting(harness: Harness) -> None:
    with pytest.raises(FatalRunError, match="max_workers"):
        harness.run(contacts_msgs(1), max_workers=0)
    assert harness.writes() == {"factusol": [], "clientify": []}
