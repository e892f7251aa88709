"""The messy-data corpus (tests/fixtures/messy) through `meltano run`, both ways, with edits on
both sides in between, asserted per customer: once with the host on UTC, once on Madrid.

What must hold (issue 15): no customer lost (each is synced, or rejected only as a documented
ambiguity with its candidates), none duplicated, no FactuSOL value blanked or overwritten by a
contact that does not own the link, every edit arrives, and one more cycle writes nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from customer_sync import link_code, normalize_email, normalize_phone, normalize_postal_code
from sandbox.launcher import SandboxProcess

from .conftest import ROOT, Project, is_write, link_of

CORPUS = ROOT / "tests" / "fixtures" / "messy"
OWNED = ("NOFCLI", "NIFCLI", "DOMCLI", "POBCLI", "CPOCLI", "PROCLI", "TELCLI", "EMACLI")


def lines(name: str) -> list[dict[str, Any]]:
    text = (CORPUS / name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(params=["UTC", "Europe/Madrid"])
def host_tz(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    # the sandboxes and every meltano process inherit it: the host's zone must not matter
    monkeypatch.setenv("TZ", request.param)
    return str(request.param)


@pytest.fixture
def world(
    meltano_installed: None, host_tz: str, tmp_path: Path
) -> Iterator[tuple[Project, dict[str, int]]]:
    factusol = SandboxProcess("factusol", tmp_path / "factusol")
    factusol.seed("--clients", "0", "--seed", "1")
    clientify = SandboxProcess("clientify", tmp_path / "clientify")
    clientify.seed("--contacts", "0", "--seed", "1")
    with factusol.start(), clientify.start():
        clientify.admin("POST", "seed", {"contacts": 0, "with_link_field": True})
        for row in lines("clients.jsonl"):
            factusol.admin("POST", "clients", row)
        refs: dict[str, int] = {}
        for body in lines("contacts.jsonl"):
            ref = body.pop("ref")
            refs[ref] = int(clientify.admin("POST", "contacts", body)["id"])
        project = Project(factusol, clientify, tmp_path, extra_env={"TZ": host_tz})
        yield project, refs


def links(project: Project) -> dict[int, list[int]]:
    """Client code -> the contacts naming it."""
    named: dict[int, list[int]] = {}
    for cid, contact in project.contacts().items():
        code = link_code(link_of(contact))
        if code is not None:
            named.setdefault(code, []).append(cid)
    return named


def rejects(project: Project, target: str) -> dict[Any, dict[str, Any]]:
    return {
        r["_reject"]["key"]: r["_reject"]
        for r in project.lines("rejects", target)
        if r.get("type") == "RECORD"
    }


def contact_email(contact: dict[str, Any]) -> str:
    emails = contact.get("emails") or []
    main = [e for e in emails if e.get("type") == 4] or emails
    return main[0]["email"] if main else ""


def contact_phone(contact: dict[str, Any], kind: int) -> str:
    found = [p["phone"] for p in contact.get("phones") or [] if p.get("type") == kind]
    return normalize_phone(found[0], "ES") or "" if found else ""


def cycle(project: Project, suffix: str = "") -> None:
    project.run(f"factusol-to-clientify{suffix}")
    project.run(f"clientify-to-factusol{suffix}")


def test_messy_books_sync_both_ways_without_loss_or_duplicates(
    world: tuple[Project, dict[str, int]],
) -> None:
    project, refs = world
    expected = lines("expected.jsonl")
    corpus_codes = {row["CODCLI"] for row in lines("clients.jsonl")}
    before = project.clients()
    last_corpus_contact = max(refs.values())

    cycle(project, "-full")

    clients, contacts, named = project.clients(), project.contacts(), links(project)
    cl_rejects = rejects(project, "target-clientify")
    fs_rejects = rejects(project, "target-factusol")
    outcomes: Counter[str] = Counter()
    for case in expected:
        code, ref, outcome = case["code"], case["contact"], case["outcome"]
        cid = None if ref is None else refs[ref]
        what = f"{case['family']} code={code} contact={ref}: {outcome}"
        outcomes[outcome] += 1
        if outcome in ("link", "update"):
            assert named.get(code) == [cid], what
        elif outcome == "create_contact":
            assert len(named.get(code, [])) == 1, what
            assert named[code][0] > last_corpus_contact, what  # a new contact, not adopted
        elif outcome == "create_client":
            new = link_code(link_of(contacts[cid]))
            assert new is not None, what
            assert new not in corpus_codes, what
            assert named[new] == [cid], what
        elif outcome == "reject:ambiguous_match":
            if code is not None:
                assert code not in named, what
                assert cl_rejects[code]["code"] == "ambiguous_match", what
                assert cl_rejects[code]["candidates"] == [refs[r] for r in case["candidates"]]
            else:
                assert link_of(contacts[cid]) is None, what
                assert fs_rejects[cid]["code"] == "ambiguous_match", what
                assert fs_rejects[cid]["candidates"] == case["candidates"], what
        elif outcome == "reject:claimed_by_several":
            if code is not None:
                assert clients[code] == before[code], what  # nothing written to that client
                assert cl_rejects[code]["code"] == "claimed_by_several", what
                assert sorted(named[code]) == sorted(refs[r] for r in case["candidates"])
            else:
                assert fs_rejects[cid]["code"] == "claimed_by_several", what
        else:
            pytest.fail(f"unknown outcome {outcome}")
        if "contact_email" in case:
            # an address Clientify refuses never travels; FactuSOL keeps what it holds
            assert clients[code]["EMACLI"] == before[code]["EMACLI"], what
            assert contact_email(contacts[named[code][0]]) == case["contact_email"], what

    # 0 duplicated: one contact per client, one client per contact (the claimed one aside)
    assert all(len(cids) == 1 for code, cids in named.items() if code != 10001)
    assert len(clients) == len(before) + outcomes["create_client"]
    assert len(contacts) == len(refs) + outcomes["create_contact"]
    # 0 FactuSOL values blanked
    for code, row in before.items():
        for column in OWNED:
            if str(row[column]).strip():
                assert str(clients[code][column]).strip(), f"{code} {column} blanked"

    # users edit both sides, then the incremental jobs run
    edits = json.loads((CORPUS / "edits.json").read_text(encoding="utf-8"))
    for edit in edits["factusol"]:
        project.factusol.admin("PATCH", f"clients/{edit['code']}", edit["set"])
    for edit in edits["clientify"]:
        project.clientify.admin("PATCH", f"contacts/{refs[edit['contact']]}", edit["set"])
    new_client = project.factusol.admin("POST", "clients", edits["new_clients"][0])
    new_contact = project.clientify.admin("POST", "contacts", edits["new_contacts"][0])

    cycle(project)

    clients, contacts, named = project.clients(), project.contacts(), links(project)
    for edit in edits["factusol"]:
        contact = contacts[named[edit["code"]][0]]
        row = clients[edit["code"]]
        assert _value(contact, row, edit["field"]) == (edit["expect"], edit["expect"]), edit
    for edit in edits["clientify"]:
        contact = contacts[refs[edit["contact"]]]
        row = clients[link_code(link_of(contact))]
        assert _value(contact, row, edit["field"]) == (edit["expect"], edit["expect"]), edit
    assert len(named[int(new_client["CODCLI"])]) == 1
    assert link_code(link_of(contacts[int(new_contact["id"])])) in clients

    # one more cycle, full: nothing to write on either side
    for proc in (project.factusol, project.clientify):
        proc.clear_requests()
    cycle(project, "-full")
    assert project.writes(project.factusol) == []
    assert [r for r in project.writes(project.clientify) if is_write("clientify", r)] == []


def _value(contact: dict[str, Any], row: dict[str, Any], field: str) -> tuple[str, str]:
    """(Clientify's, FactuSOL's) value of one synced field, normalized."""
    if field == "name":
        text = " ".join(p for p in (contact.get("first_name"), contact.get("last_name")) if p)
        return text, row["NOFCLI"]
    if field == "email":
        return contact_email(contact), normalize_email(row["EMACLI"]) or ""
    if field == "phone":
        return contact_phone(contact, 1), normalize_phone(row["TELCLI"], "ES") or ""
    if field == "mobile":
        return contact_phone(contact, 2), normalize_phone(row["MOVCLI"], "ES") or ""
    if field == "postal_code":
        addresses = contact.get("addresses") or [{}]
        return (
            str(addresses[0].get("postal_code") or ""),
            normalize_postal_code(row["CPOCLI"], "ES") or "",
        )
    raise AssertionError(f"no reader for {field}")
