"""The kept contact cache in a full run: the run's own stream brings it current (no window read
at its start; the few contacts it cannot vouch for read one by one at its end)."""

from __future__ import annotations

import logging

import pytest
from clientify_api import ClientifyClient, ContactIndex
from target_factusol_testlib import API_KEY, Harness, messages

STREAMED = "contact cache brought current by this run's stream"


def contact_reads(harness: Harness) -> int:
    """GET /contacts/ calls (pages or counts: the sandbox's log has no query string)."""
    return sum(
        1
        for r in harness.cl.requests_log()
        if r["method"] == "GET" and r["path"].rstrip("/").endswith("/contacts")
    )


def watermark(harness: Harness):
    client = ClientifyClient(API_KEY, harness.cl.api_url, rate_limit=None)
    index = ContactIndex(path=harness.tmp / "contacts.sqlite", scope=client.account_fingerprint())
    try:
        state = index.sync_state(client.account_fingerprint())
        assert state is not None
        return state[1]
    finally:
        index.close()


def test_a_full_run_after_another_reads_no_refresh_window(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    msgs = messages("two_new_contacts")
    harness.put_contacts(msgs)
    harness.run(msgs)  # the first run scans Clientify into the cache, writes the links back
    before = watermark(harness)
    stream = harness.current_messages()  # what a full tap-clientify run emits now
    harness.clear_logs()

    with caplog.at_level(logging.INFO):
        out = harness.run(stream)

    assert [p["action"] for p in out.plan] == ["unchanged", "unchanged"]
    # The links written back moved both contacts' `modified`: the ledger's write times say
    # those changes are the sync's own, so the cache is current without reading a window.
    assert STREAMED in caplog.text
    assert contact_reads(harness) == 1  # the end's count check, no page
    assert watermark(harness) > before


def detail_reads(harness: Harness) -> list[str]:
    """GET /contacts/{id}/ calls: the contacts read one by one."""
    return [
        r["path"].rstrip("/").rsplit("/", 1)[1]
        for r in harness.cl.requests_log()
        if r["method"] == "GET" and r["path"].rstrip("/").rsplit("/", 1)[1].isdigit()
    ]


def test_an_edit_the_cache_lacks_is_read_one_by_one_at_the_end(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    msgs = messages("two_new_contacts")
    harness.put_contacts(msgs)
    harness.run(msgs)
    current = harness.current_messages()
    first = next(m["record"] for m in current if m["type"] == "RECORD")
    # An edit in the second after the sync's write reads as the sync's own (the Date header
    # has whole seconds): this one comes later, on the sandbox's clock (no sleeping).
    harness.cl.configure(clock_offset_seconds=5)
    try:
        harness.cl.admin("PATCH", f"contacts/{first['id']}", {"last_name": "Editada"})
        stream = harness.current_messages()
        harness.clear_logs()

        with caplog.at_level(logging.INFO):
            harness.run(stream)
    finally:
        harness.cl.configure(clock_offset_seconds=0)

    assert STREAMED in caplog.text  # no window: that contact alone is read again
    assert detail_reads(harness) == [str(first["id"])]
    assert contact_reads(harness) == 1  # then the count check
    client = ClientifyClient(API_KEY, harness.cl.api_url, rate_limit=None)
    index = ContactIndex(path=harness.tmp / "contacts.sqlite", scope=client.account_fingerprint())
    try:
        assert (index.get(first["id"]) or {}).get("last_name") == "Editada"
    finally:
        index.close()
