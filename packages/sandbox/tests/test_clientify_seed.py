"""Seeding: deterministic, idempotent, realistic, unlinked by default, fast."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from sandbox.clientify import create_app
from sandbox.clientify.cli import build_parser
from sandbox.clientify.cli import main as cli_main
from sandbox.clientify.seed import parse_codes, seed_contacts
from sandbox.clientify.storage import Store

TOKEN = {"Authorization": "Token sandbox-api-key"}


def contacts_of(data_dir: Any) -> list[dict[str, Any]]:
    client = create_app(data_dir).test_client()
    result: list[dict[str, Any]] = client.get("/_sandbox/contacts").get_json()["contacts"]
    return result


def definitions(data_dir: Any) -> list[tuple[str, str]]:
    client = create_app(data_dir).test_client()
    body = client.get("/v1/custom-fields/?page_size=100", headers=TOKEN).get_json()
    return [(f["name"], f["content_type"]) for f in body["results"]]


def test_cli_defaults() -> None:
    args = build_parser().parse_args(["serve", "--data-dir", "d"])
    assert (args.host, args.port, args.api_key, args.country, args.config) == (
        "127.0.0.1",
        8766,
        "sandbox-api-key",
        "ES",
        None,
    )
    args = build_parser().parse_args(["seed", "--data-dir", "d"])
    assert (args.contacts, args.seed, args.linked_codes, args.with_link_field) == (
        40,
        42,
        None,
        False,
    )


def test_seed_is_deterministic_and_idempotent(tmp_path: Any) -> None:
    assert cli_main(["seed", "--data-dir", str(tmp_path / "a"), "--contacts", "40"]) == 0
    assert cli_main(["seed", "--data-dir", str(tmp_path / "b"), "--contacts", "40"]) == 0
    first = contacts_of(tmp_path / "a")

    def stable(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in c.items() if k not in ("created", "modified")} for c in items]

    assert len(first) == 40
    assert stable(first) == stable(contacts_of(tmp_path / "b"))
    assert cli_main(["seed", "--data-dir", str(tmp_path / "a"), "--contacts", "40"]) == 0
    again = contacts_of(tmp_path / "a")
    assert len(again) == 40
    assert stable(again) == stable(first)
    assert cli_main(["seed", "--data-dir", str(tmp_path / "a"), "--contacts", "5"]) == 0
    assert len(contacts_of(tmp_path / "a")) == 5
    cli_main(["seed", "--data-dir", str(tmp_path / "c"), "--contacts", "40", "--seed", "7"])
    assert stable(contacts_of(tmp_path / "c")) != stable(first)


def test_seed_data_is_realistic_and_odd(tmp_path: Any) -> None:
    store = Store(tmp_path)
    seed_contacts(store, contacts=300, seed=42)
    store.close()
    contacts = contacts_of(tmp_path)
    emails = [e["email"] for c in contacts for e in c["emails"]]
    phones = [p["phone"] for c in contacts for p in c["phones"]]
    countries = {a["country"] for c in contacts for a in c["addresses"]}
    assert any(len(c["emails"]) > 1 for c in contacts)
    assert any(len(c["phones"]) > 1 for c in contacts)
    assert any(e != e.lower() for e in emails)
    assert any(p.isdigit() and len(p) == 9 for p in phones)  # without prefix
    assert any(p.startswith("+34 ") for p in phones)
    assert {"España", "Spain", "ES"} <= countries
    assert any(c["first_name"] != c["first_name"].strip() for c in contacts)
    assert any(c["taxpayer_identification_number"] for c in contacts)
    assert any(c["company"] for c in contacts)
    # nothing linked to FactuSOL, and no factusol_id definition on contacts
    assert not any(cf["field"] == "factusol_id" for c in contacts for cf in c["custom_fields"])
    assert ("factusol_id", "contacts | contact") not in definitions(tmp_path)


def test_modified_is_2_to_300_days_old_so_a_first_run_sees_nothing(tmp_path: Any) -> None:
    cli_main(["seed", "--data-dir", str(tmp_path), "--contacts", "200"])
    now = dt.datetime.now(dt.UTC)
    for contact in contacts_of(tmp_path):
        age = now - dt.datetime.fromisoformat(contact["modified"])
        assert dt.timedelta(days=2) <= age <= dt.timedelta(days=300)
        assert contact["created"] <= contact["modified"]
    client = create_app(tmp_path).test_client()
    since = (now - dt.timedelta(hours=24)).isoformat().replace("+00:00", "Z")
    resp = client.get("/v1/contacts/", headers=TOKEN, query_string={"modified[gte]": since})
    assert resp.get_json()["count"] == 0


def test_link_field_and_linked_codes(tmp_path: Any) -> None:
    cli_main(["seed", "--data-dir", str(tmp_path / "f"), "--contacts", "5", "--with-link-field"])
    assert ("factusol_id", "contacts | contact") in definitions(tmp_path / "f")
    assert not any(
        c["custom_fields"] and any(x["field"] == "factusol_id" for x in c["custom_fields"])
        for c in contacts_of(tmp_path / "f")
    )

    cli_main(
        ["seed", "--data-dir", str(tmp_path / "l"), "--contacts", "15", "--linked-codes", "1-10"]
    )
    linked = {
        c["id"]: x["value"]
        for c in contacts_of(tmp_path / "l")
        for x in c["custom_fields"]
        if x["field"] == "factusol_id"
    }
    assert sorted(linked.values(), key=int) == [str(i) for i in range(1, 11)]
    assert ("factusol_id", "contacts | contact") in definitions(tmp_path / "l")


def test_parse_codes() -> None:
    assert parse_codes("1-3,7, 9-10") == [1, 2, 3, 7, 9, 10]
    assert parse_codes(None) == []
    assert parse_codes([3, 1]) == [1, 3]
    with pytest.raises(ValueError, match="range"):
        parse_codes("5-1")


def test_admin_seed_uses_the_sandbox_clock(tmp_path: Any) -> None:
    client = create_app(tmp_path).test_client()
    client.post("/_sandbox/config", json={"clock_offset_seconds": 400 * 86400})
    client.post("/_sandbox/seed", json={"contacts": 10, "seed": 3, "linked_codes": "1-2"})
    contacts = client.get("/_sandbox/contacts").get_json()["contacts"]
    now = dt.datetime.now(dt.UTC)
    assert all(dt.datetime.fromisoformat(c["modified"]) > now for c in contacts)  # moved clock
    linked = [
        c
        for c in contacts
        if c["custom_fields"] and any(x["field"] == "factusol_id" for x in c["custom_fields"])
    ]
    assert len(linked) == 2


def test_ids_continue_after_a_seed(tmp_path: Any) -> None:
    client = create_app(tmp_path).test_client()
    client.post("/_sandbox/seed", json={"contacts": 10})
    seeded = client.get("/_sandbox/contacts").get_json()["contacts"]
    created = client.post("/v1/contacts/", headers=TOKEN, json={"email": "n@x.es"}).get_json()
    assert created["id"] > max(c["id"] for c in seeded)
    seeded_emails = {e["id"] for c in seeded for e in c["emails"]}
    assert created["emails"][0]["id"] not in seeded_emails
    company = client.post("/v1/contacts/", headers=TOKEN, json={"company": "Nueva SL"}).get_json()
    assert company["company"] not in {c["company"] for c in seeded}


def test_100k_contacts_seed_well_under_a_minute(tmp_path: Any) -> None:
    start = time.monotonic()
    store = Store(tmp_path)
    assert seed_contacts(store, contacts=100_000, seed=42) == 100_000
    store.close()
    assert time.monotonic() - start < 45
    client = create_app(tmp_path).test_client()
    body = client.get("/v1/contacts/?page_size=100&page=1000", headers=TOKEN).get_json()
    assert body["count"] == 100_000
    assert len(body["results"]) == 100
    assert body["next"] is None
