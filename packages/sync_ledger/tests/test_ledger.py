"""The ledger on SQLite (file and memory) and, when a server is given, on PostgreSQL."""

import os
import stat
import threading
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text
from sync_ledger import SyncLedger, ledger_url

PG_URI = os.environ.get("FCSYNC_TEST_PG_URI", "")


def _pg_or_skip():
    if PG_URI:
        return PG_URI
    if os.environ.get("FCSYNC_REQUIRE_PG"):
        pytest.fail("FCSYNC_REQUIRE_PG is set but FCSYNC_TEST_PG_URI is not")
    pytest.skip("no PostgreSQL server (set FCSYNC_TEST_PG_URI; .ci/run starts one)")
    return ""


@pytest.fixture(params=["sqlite-file", "postgresql"])
def uri(request, tmp_path):
    if request.param == "sqlite-file":
        return f"sqlite:///{tmp_path / 'ledger' / 'sync-ledger.sqlite'}"
    return _pg_or_skip()


@pytest.fixture
def ledger(uri):
    scope = f"test-{uuid.uuid4().hex[:12]}"  # tests sharing one PostgreSQL never meet
    ledger = SyncLedger(uri, scope=scope)
    yield ledger
    ledger.close()


def test_record_and_read_back(ledger):
    assert ledger.get(10001) is None
    ledger.record(10001, 135000001, {"email": "ana@x.es", "name": "Ñandú, S.L."})
    entry = ledger.get(10001)
    assert entry.contact_id == "135000001"
    assert entry.base == {"email": "ana@x.es", "name": "Ñandú, S.L."}
    assert entry.belongs_to(135000001)
    assert not entry.belongs_to(135000002)
    assert [e.code for e in ledger.by_contact(135000001)] == [10001]
    assert len(ledger) == 1


def test_a_pending_write_is_kept_until_recorded(ledger):
    ledger.record(7, 70, {"email": "old@x.es"})
    ledger.begin(7, 70, "clientify", {"email": "new@x.es"})
    assert ledger.get(7).pending == {"email": ("clientify", "new@x.es")}
    ledger.record(7, 70, {"email": "new@x.es"})
    assert ledger.get(7).pending == {}
    assert ledger.get(7).base == {"email": "new@x.es"}


def test_begin_ignores_pairs_without_an_entry_or_of_another_contact(ledger):
    ledger.begin(8, 80, "factusol", {"email": "x@x.es"})
    assert ledger.get(8) is None
    ledger.record(8, 80, {})
    ledger.begin(8, 81, "factusol", {"email": "x@x.es"})
    assert ledger.get(8).pending == {}


def test_clientify_write_time_is_kept_while_the_contact_stays(ledger):
    moment = datetime(2026, 12, 6, 10, 0, 0, 123456, tzinfo=UTC)
    ledger.record(9, 90, {"city": "Sevilla"}, clientify_written_at=moment)
    ledger.record(9, 90, {"city": "Cádiz"})
    assert ledger.get(9).clientify_written_at == moment
    ledger.record(9, 91, {"city": "Cádiz"})  # the link moved to another contact
    assert ledger.get(9).clientify_written_at is None


def test_scopes_never_see_each_other(uri):
    a = SyncLedger(uri, scope=f"acme-{uuid.uuid4().hex[:8]}")
    b = SyncLedger(uri, scope=f"globex-{uuid.uuid4().hex[:8]}")
    try:
        a.record(1, 10, {"name": "Acme"})
        b.record(1, 20, {"name": "Globex"})
        assert a.get(1).base == {"name": "Acme"}
        assert b.get(1).base == {"name": "Globex"}
        assert [e.contact_id for e in a] == ["10"]
    finally:
        a.close()
        b.close()


def test_concurrent_writers(ledger):
    def write(start):
        for code in range(start, start + 50):
            ledger.record(code, code * 10, {"email": f"c{code}@x.es"})

    threads = [threading.Thread(target=write, args=(n * 50,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ledger) == 200
    assert len(ledger.get_many(range(1000))) == 200


def test_sqlite_file_is_private(tmp_path):
    path = tmp_path / "private" / "ledger.sqlite"
    ledger = SyncLedger(str(path), scope="s")
    ledger.record(1, 1, {})
    ledger.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_deleted_ledger_is_recreated_empty(tmp_path):
    path = tmp_path / "ledger.sqlite"
    SyncLedger(str(path), scope="s").record(1, 1, {"name": "x"})
    path.unlink()
    fresh = SyncLedger(str(path), scope="s")
    assert fresh.get(1) is None
    fresh.close()


def test_urls():
    assert ledger_url("output/l.sqlite").get_backend_name() == "sqlite"
    assert ledger_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert ledger_url("postgresql+psycopg://u:p@h/db").drivername == "postgresql+psycopg"
    memory = SyncLedger("sqlite://", scope="s")
    memory.record(1, 1, {"name": "x"})
    assert memory.get(1).base == {"name": "x"}
    memory.close()


def test_repr_hides_the_password():
    url = ledger_url("postgresql://fcsync:s3cr3t-pw@127.0.0.1:1/none")
    ledger = SyncLedger.__new__(SyncLedger)
    ledger.url, ledger.scope = url, "s"
    assert "s3cr3t-pw" not in repr(ledger)


def test_postgresql_tables_are_plain_sql():
    uri = _pg_or_skip()
    ledger = SyncLedger(uri, scope=f"sql-{uuid.uuid4().hex[:8]}")
    ledger.record(5, 50, {"nif": "B12345674"})
    engine = create_engine(ledger_url(uri))
    with engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM sync_ledger_pair WHERE scope = :s"), {"s": ledger.scope}
        ).scalar_one()
    engine.dispose()
    ledger.close()
    assert count == 1
