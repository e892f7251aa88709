"""load_contact_index with a cache file: full scan, incremental refresh, the checks that force a
rescan, server time from the Date header, and the fallback when the file is locked."""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from clientify_api import ClientifyClient, ContactIndex

API = "https://api.test/v1"
CONTACTS = f"{API}/contacts/"
SERVER_NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def contact(cid: int, link: str | None = None, **extra) -> dict:
    body = {
        "id": cid,
        "first_name": f"Name{cid}",
        "emails": [{"id": cid, "type": 4, "email": f"user{cid}@empresa.es"}],
        "custom_fields": [{"field": "factusol_id", "value": link}] if link else [],
        "taxpayer_identification_number": "",
        "modified": "2026-03-01T09:00:00+01:00",
    }
    body.update(extra)
    return body


class FakeAccount:
    """Answers GET /contacts/ like Clientify: `count`, a `modified[gte]` window, page_size=1."""

    def __init__(
        self, rsps, contacts: list[dict], *, server_now: datetime | None = SERVER_NOW
    ) -> None:
        self.contacts = contacts
        self.server_now = server_now
        self.windows: list[str | None] = []
        rsps.add_callback("GET", CONTACTS, callback=self._answer)

    def _answer(self, request):
        query = parse_qs(urlsplit(request.url).query)
        since = query.get("modified[gte]", [None])[0]
        size = int(query.get("page_size", ["100"])[0])
        chosen = self.contacts
        if since is not None:
            bound = datetime.fromisoformat(since.replace("Z", "+00:00"))
            chosen = [c for c in chosen if datetime.fromisoformat(c["modified"]) >= bound]
        if size > 1:
            self.windows.append(since)
        body = {"count": len(chosen), "next": None, "previous": None, "results": chosen[:size]}
        headers = {}
        if self.server_now is not None:
            headers["Date"] = format_datetime(self.server_now, usegmt=True)
        return 200, headers, json.dumps(body)


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache" / "contacts.sqlite"


def load(client: ClientifyClient, cache, **kwargs) -> ContactIndex:
    client.count_contacts()  # what a target's start() does first: learns the server's time
    return client.load_contact_index(cache=cache, **kwargs)


def test_first_run_scans_then_only_the_window(client, rsps, cache):
    account = FakeAccount(rsps, [contact(1, "10"), contact(2)])
    index = load(client, cache)
    assert [c["id"] for c in index.by_factusol_id("10")] == [1]
    assert account.windows == [None]  # one full scan
    index.close()

    # A contact edited after the refresh started, and a new one.
    account.contacts[1] = contact(2, "20", modified="2026-03-02T11:30:00+01:00")
    account.contacts.append(contact(3, modified="2026-03-02T11:40:00+01:00"))
    account.server_now = SERVER_NOW + timedelta(hours=1)
    index = load(client, cache)
    # Window = the server's time (Date header) when the last refresh started, minus the
    # 5-minute overlap, sent with an explicit offset.
    assert len(account.windows) == 2
    assert account.windows[1] is not None
    assert datetime.fromisoformat(account.windows[1].replace("Z", "+00:00")) == (
        SERVER_NOW - timedelta(minutes=5)
    )
    assert [c["id"] for c in index.by_factusol_id("20")] == [2]
    assert len(index) == 3
    index.close()


def test_without_a_date_header_our_clock_never_runs_ahead_of_the_data(make_client, rsps, cache):
    # No Date header and our clock three days ahead of the server's: the next window starts at
    # the newest change the refresh read (or stays where it was), not at our clock.
    ahead = (SERVER_NOW + timedelta(days=3)).timestamp()
    client = make_client(wall_clock=lambda: ahead)
    account = FakeAccount(rsps, [contact(1, modified="2026-03-02T09:00:00+00:00")], server_now=None)
    load(client, cache).close()
    account.contacts.append(contact(2, "20", modified="2026-03-02T09:30:00+00:00"))
    index = load(client, cache)
    assert account.windows[-1] == "2026-03-02T08:55:00Z"
    assert [c["id"] for c in index.by_factusol_id("20")] == [2]
    index.close()
    load(client, cache).close()
    assert account.windows[-1] == "2026-03-02T09:25:00Z"


def test_deleted_contact_forces_a_full_scan(client, rsps, cache):
    account = FakeAccount(rsps, [contact(1, "10"), contact(2, "20")])
    load(client, cache).close()
    del account.contacts[0]  # deletion leaves no trace in `modified`
    index = load(client, cache)
    assert account.windows[-1] is None  # count 1 != 2 cached -> full scan
    assert index.by_factusol_id("10") == []
    assert len(index) == 1
    index.close()


def test_old_cache_other_account_or_field_rescans(make_client, rsps, cache):
    account = FakeAccount(rsps, [contact(1, "10")])
    client = make_client()
    load(client, cache).close()
    account.server_now = SERVER_NOW + timedelta(hours=25)
    load(client, cache, rescan_after=timedelta(hours=24)).close()
    assert account.windows == [None, None]

    other = ClientifyClient("another-key-000000000000", api_url=API, rate_limit=None)
    load(other, cache).close()
    assert account.windows[-1] is None
    load(other, cache, field="link_code").close()
    assert account.windows[-1] is None
    assert len(account.windows) == 4


def test_changes_after_the_refresh_are_kept_at_once(client, rsps, cache):
    FakeAccount(rsps, [contact(1)])
    index = load(client, cache)
    index.add(contact(1, "10"))  # what a target writes during the run
    index.close()  # no explicit commit: autocommit after a refresh
    reopened = ContactIndex(path=cache, scope=client.account_fingerprint())
    assert [c["id"] for c in reopened.by_factusol_id("10")] == [1]
    reopened.close()


def test_a_damaged_file_is_rebuilt(client, rsps, cache):
    FakeAccount(rsps, [contact(1, "10")])
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"not a database at all" * 100)
    index = load(client, cache)
    assert [c["id"] for c in index.by_factusol_id("10")] == [1]
    index.close()


def test_a_locked_file_falls_back_to_a_private_scan(make_client, rsps, cache, monkeypatch):
    FakeAccount(rsps, [contact(1, "10")])
    client = make_client()
    load(client, cache).close()
    holder = sqlite3.connect(cache)
    holder.execute("BEGIN EXCLUSIVE")  # another run holding the file
    original = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: original(*a, **{**k, "timeout": 0.1}))
    try:
        index = client.load_contact_index(cache=cache)
        assert index.path is None  # its own temporary index
        assert [c["id"] for c in index.by_factusol_id("10")] == [1]
    finally:
        holder.rollback()
        holder.close()


def test_server_time_comes_from_the_date_header(client, rsps):
    FakeAccount(rsps, [], server_now=SERVER_NOW)
    client.count_contacts()
    # wall_clock is frozen in the fixture: server time = the header's time exactly.
    assert client.server_now() == SERVER_NOW


def test_index_rows_live_on_disk_not_in_python_objects(cache):
    index = ContactIndex(path=cache)
    for cid in range(2000):
        index.add(contact(cid, str(cid)))
    index.commit()
    assert len(index) == 2000
    assert [c["id"] for c in index.by_email("USER1999@empresa.es")] == [1999]
    assert sum(1 for _ in index) == 2000
    index.close()
    assert cache.stat().st_size > 100_000


def test_two_date_headers_are_not_trusted(client, rsps):
    # A proxy adding its own Date: "real, server" arrives joined; neither is used.
    rsps.get(
        CONTACTS,
        json={"count": 0, "next": None, "previous": None, "results": []},
        headers={"Date": "Wed, 25 Nov 2026 15:09:38 GMT, Mon, 23 Nov 2026 08:09:38 GMT"},
    )
    client.count_contacts()
    assert client.server_now() == datetime.fromtimestamp(1_700_000_000, tz=UTC)  # our clock


PG_URI = os.environ.get("FCSYNC_TEST_PG_URI", "")


def test_a_cache_in_postgresql_is_shared_by_accounts_without_mixing_them(rsps):
    if not PG_URI:
        if os.environ.get("FCSYNC_REQUIRE_PG"):
            pytest.fail("FCSYNC_REQUIRE_PG is set but FCSYNC_TEST_PG_URI is not")
        pytest.skip("no PostgreSQL server (set FCSYNC_TEST_PG_URI; .ci/run starts one)")
    account = FakeAccount(rsps, [contact(1, "10"), contact(2, "20")])
    # fresh keys: the server outlives test runs, each run is a first run
    acme = ClientifyClient(f"acme-key-{uuid.uuid4().hex}", api_url=API, rate_limit=None)
    globex = ClientifyClient(f"globex-key-{uuid.uuid4().hex}", api_url=API, rate_limit=None)
    first = acme.load_contact_index(cache=PG_URI)
    assert repr(first).endswith("postgresql)")  # never the URL (it may hold a password)
    first.close()
    other = globex.load_contact_index(cache=PG_URI)
    other.add(contact(3, "30"))
    other.close()
    again = acme.load_contact_index(cache=PG_URI)
    assert sorted(c["id"] for c in again) == [1, 2]  # globex's contact 3 is not acme's
    assert len(account.windows) == 3
    assert account.windows[-1] is not None  # a refresh, not a full scan: the cache held
    again.close()


def test_a_cache_written_before_sqlalchemy_is_read_and_rebuilt_once(tmp_path):
    # the hand-written sqlite3 store's schema 4 (same tables), one contact in it
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE contact_index_contact (scope TEXT NOT NULL, pk TEXT NOT NULL,
            seq BIGINT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (scope, pk));
        CREATE INDEX contact_index_contact_seq ON contact_index_contact (scope, seq);
        CREATE TABLE contact_index_key (scope TEXT NOT NULL, kind TEXT NOT NULL,
            key TEXT NOT NULL, pk TEXT NOT NULL);
        CREATE INDEX contact_index_key_lookup ON contact_index_key (scope, kind, key);
        CREATE INDEX contact_index_key_contact ON contact_index_key (scope, pk);
        CREATE TABLE contact_index_meta (scope TEXT NOT NULL, name TEXT NOT NULL,
            value TEXT NOT NULL, PRIMARY KEY (scope, name));
        INSERT INTO contact_index_contact VALUES ('local', '1', 1, '{"id": 1}');
        INSERT INTO contact_index_meta VALUES ('local', 'field', 'factusol_id');
        INSERT INTO contact_index_meta VALUES ('local', 'version', '4');
        """
    )
    db.commit()
    db.close()
    index = ContactIndex(path=path)
    assert len(index) == 0  # NIF keys changed meaning: rebuilt from a scan
    index.add(contact(2, "20"))
    index.close(commit=True)
    again = ContactIndex(path=path)
    assert [c["id"] for c in again.by_factusol_id(20)] == [2]  # kept from now on
    again.close()
