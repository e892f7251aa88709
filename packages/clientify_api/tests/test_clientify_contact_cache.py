"""load_contact_index with a cache file: full scan, incremental refresh, the checks that force a
rescan, server time from the Date header, and the fallback when the file is locked."""

from __future__ import annotations

import json
import os
import re
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
    """Answers GET /contacts/ like Clientify: `count`, a `modified[gte]` window, page_size=1;
    and GET /contacts/{id}/ (404 for an id it does not hold)."""

    def __init__(
        self, rsps, contacts: list[dict], *, server_now: datetime | None = SERVER_NOW
    ) -> None:
        self.contacts = contacts
        self.server_now = server_now
        self.windows: list[str | None] = []
        rsps.add_callback("GET", CONTACTS, callback=self._answer)
        rsps.add_callback("GET", re.compile(rf"{re.escape(CONTACTS)}\d+/$"), callback=self._detail)

    def _detail(self, request):
        cid = int(urlsplit(request.url).path.rstrip("/").rsplit("/", 1)[1])
        found = [c for c in self.contacts if c["id"] == cid]
        if not found:
            return 404, {}, json.dumps({"detail": "Not found."})
        return 200, {}, json.dumps(found[0])

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


# ---------------------------------------------------------------- a stream that completes it


def reads(rsps) -> list[str]:
    """The GET /contacts/ calls so far: "count" (page_size=1), the window sent ("scan"), or
    "#<id>" for one contact's detail."""
    out = []
    for call in rsps.calls:
        url = urlsplit(call.request.url)
        query = parse_qs(url.query)
        if url.path.rstrip("/").rsplit("/", 1)[1].isdigit():
            out.append("#" + url.path.rstrip("/").rsplit("/", 1)[1])
        elif query.get("page_size") == ["1"]:
            out.append("count")
        else:
            out.append(query.get("modified[gte]", ["scan"])[0])
    return out


def after_f2c(client, rsps, cache) -> FakeAccount:
    """A cache refreshed an hour ago, then a run that created contact 3 and added its body."""
    account = FakeAccount(rsps, [contact(1, "10"), contact(2)])
    load(client, cache).close()
    created = contact(3, "30", modified="2026-03-02T10:20:00+00:00")
    account.contacts.append(created)
    index = load(client, cache)
    index.add(created)
    index.close()
    account.server_now = SERVER_NOW + timedelta(hours=1)
    rsps.calls.reset()
    return account


def open_streamed(client, cache):
    client.count_contacts()  # what start() does first: learns the server's time
    index, check = client.open_contact_index(cache=cache)
    return index, check


def test_a_complete_stream_moves_the_watermark_without_reading_a_window(client, rsps, cache):
    account = after_f2c(client, rsps, cache)
    index, check = open_streamed(client, cache)
    assert check is not None
    assert reads(rsps) == ["count"]  # start()'s own call: no window at opening
    assert [c["id"] for c in index.by_factusol_id("30")] == [3]
    check.note(account.contacts[:2])
    check.note([account.contacts[2], account.contacts[0]])  # a contact twice: one id
    assert check.complete() == "stream"
    assert reads(rsps) == ["count", "count"]  # the end's count check only
    index.close()
    # The watermark is the opening's server time: the next window starts there (- 5 min).
    state = ContactIndex(path=cache, scope=client.account_fingerprint())
    assert state.sync_state(client.account_fingerprint())[1] == SERVER_NOW + timedelta(hours=1)
    state.close()


def test_the_watermark_starts_when_the_stream_began(client, rsps, cache):
    account = after_f2c(client, rsps, cache)
    client.count_contacts()
    index, check = client.open_contact_index(cache=cache, stream_began_ago=timedelta(minutes=7))
    check.note(account.contacts)
    check.complete()
    state = index.sync_state(client.account_fingerprint())
    assert state[1] == SERVER_NOW + timedelta(hours=1) - timedelta(minutes=7)
    index.close()


@pytest.mark.parametrize(
    ("why", "read"),
    [
        ("stale", ["#2"]),
        ("not cached", ["#4"]),
        ("no modified", ["#1"]),
        ("missing", ["#1"]),
        ("deleted", ["#1"]),
    ],
)
def test_a_few_contacts_the_stream_cannot_vouch_for_are_read_one_by_one(
    client, rsps, cache, why, read
):
    account = after_f2c(client, rsps, cache)
    index, check = open_streamed(client, cache)
    stream = [dict(c) for c in account.contacts]
    if why == "stale":  # edited after the cache read it
        stream[1] = contact(2, "20", modified="2026-03-02T10:40:00+00:00")
        account.contacts[1] = {**stream[1], "modified": "2026-03-02T10:45:00+00:00"}
    elif why == "not cached":  # created elsewhere, read by the tap
        stream.append(contact(4, "40", modified="2026-03-02T10:50:00+00:00"))
        account.contacts.append(stream[-1])
    elif why == "no modified":
        stream[0] = {**stream[0], "modified": None}
    elif why == "missing":  # the paging skipped a cached contact (edited while paged)
        del stream[0]
    else:  # deleted in Clientify before the tap read its page
        del stream[0]
        del account.contacts[0]
    check.note(stream)
    assert check.complete() == "stream"
    assert reads(rsps) == ["count", *read, "count"]  # no window: one read per contact
    if why == "stale":  # the account's current body, not the stream's
        assert index.get(2)["modified"] == "2026-03-02T10:45:00+00:00"
        assert [c["id"] for c in index.by_factusol_id("20")] == [2]
    if why == "not cached":
        assert [c["id"] for c in index.by_factusol_id("40")] == [4]
    assert (1 in index) is (why != "deleted")
    assert len(index) == len(account.contacts)
    state = index.sync_state(client.account_fingerprint())
    assert state[1] == SERVER_NOW + timedelta(hours=1)  # the opening's server time
    index.close()


@pytest.mark.parametrize("why", ["many stale", "many missing", "incremental", "count", "no id"])
def test_a_stream_that_cannot_vouch_runs_the_skipped_window_refresh(client, rsps, cache, why):
    account = after_f2c(client, rsps, cache)
    index, check = open_streamed(client, cache)
    limit = check.READ_ONE_BY_ONE
    stream = [dict(c) for c in account.contacts]
    if why == "many stale":  # more edits than one-by-one reads are worth
        stream += [contact(100 + n, modified="2026-03-02T10:50:00+00:00") for n in range(limit + 1)]
        account.contacts += stream[3:]
    elif why == "many missing":  # an incremental run: most cached contacts not carried
        for n in range(limit):
            index.add(contact(200 + n, modified="2026-03-01T09:00:00+01:00"))
        account.contacts += [index.get(200 + n) for n in range(limit)]
        del stream[0]
    elif why == "incremental":  # left out more than it carried: the window is cheaper
        del stream[:2]
    elif why == "count":  # Clientify holds a contact neither the stream nor the cache has
        account.contacts.append(contact(5, modified="2026-03-01T09:00:00+01:00"))
    else:
        stream[0] = {k: v for k, v in stream[0].items() if k != "id"}
    check.note(stream)
    assert check.complete() == "window"
    window = [r for r in reads(rsps) if r != "count"]
    assert not [r for r in window if r.startswith("#")]  # nothing read one by one first
    if why == "count":
        # the window finds nothing new, the count still differs: a full scan, as at a start
        assert window == ["2026-03-02T09:55:00Z", "scan"]
        assert 5 in index
    else:
        assert window == ["2026-03-02T09:55:00Z"]  # the refresh the opening skipped
    if why == "many stale":
        assert 100 + limit in index
    state = index.sync_state(client.account_fingerprint())
    assert state[1] == SERVER_NOW + timedelta(hours=1)  # that refresh's own start
    index.close()


def test_the_syncs_own_later_write_is_not_a_change_the_cache_lacks(client, rsps, cache):
    # A writer's PUT answers the contact (cached), then its e-mail POST moves `modified` again:
    # the ledger's write time (taken after the last call, whole seconds) vouches for it.
    account = after_f2c(client, rsps, cache)
    index, check = open_streamed(client, cache)
    moved = {**account.contacts[2], "modified": "2026-03-02T10:20:00.800000+00:00"}
    wrote = datetime(2026, 3, 2, 10, 20, tzinfo=UTC)  # the Date header's second
    check.note([account.contacts[0], account.contacts[1], moved], written_at={3: wrote})
    assert check.stale == 0
    later = {**moved, "modified": "2026-03-02T10:20:01.200000+00:00"}  # someone else's
    check.note([later], written_at={3: wrote})
    assert check.stale == 1
    assert check.complete() == "stream"  # after reading that one contact again
    assert reads(rsps) == ["count", "#3", "count"]
    index.close()


def test_a_run_that_stops_leaves_the_watermark_as_it_was(client, rsps, cache):
    account = after_f2c(client, rsps, cache)
    index, check = open_streamed(client, cache)
    check.note(account.contacts)
    index.add(contact(2, "20", modified="2026-03-02T11:01:00+00:00"))  # a write of the run
    index.close()  # stopped: complete() never called
    rsps.calls.reset()
    load(client, cache).close()  # the next run, without a stream to complete it
    assert [r for r in reads(rsps) if r != "count"] == ["2026-03-02T09:55:00Z"]


def test_an_old_watermark_or_cache_refreshes_at_opening(client, rsps, cache):
    after_f2c(client, rsps, cache)
    client.count_contacts()
    index, check = client.open_contact_index(cache=cache, max_age=timedelta(minutes=30))
    assert check is None  # refreshed now, as load_contact_index does
    assert [r for r in reads(rsps) if r != "count"] == ["2026-03-02T09:55:00Z"]
    index.close()


def test_modified_of_reads_the_cached_bodies_in_batches(cache):
    index = ContactIndex(path=cache)
    for cid in range(1200):
        index.add(contact(cid, modified=f"2026-03-01T09:{cid % 60:02d}:00+01:00"))
    found = index.modified_of([*range(1199, -1, -1), 5000])
    assert len(found) == 1200
    assert 5000 not in found
    assert found[61] == "2026-03-01T09:01:00+01:00"
    index._json_extract = False  # an SQLite without JSON1 (and PostgreSQL): bodies parsed here
    assert index.modified_of([*range(1199, -1, -1), 5000]) == found
    index.close()
