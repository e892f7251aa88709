"""Pure contact helpers and ContactIndex (table tests + a hypothesis model check)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from clientify_api import (
    ContactIndex,
    contact_emails,
    custom_field_text,
    format_filter_datetime,
    is_contact_field_definition,
    parse_api_datetime,
    to_utc_iso,
)
from clientify_api.errors import normalize_messages
from clientify_api.timeutil import retry_after_seconds
from customer_sync import IdentityKeys, email_identity, nif_identity
from hypothesis import given, settings
from hypothesis import strategies as st


# Test keys: any non-empty text is a NIF (upper-case, separators dropped), e-mails folded. The
# real ones are customer_sync's (test_index_keys_nifs_and_emails_as_matching_does).
def _test_nif(value: object) -> str | None:
    text = "".join(ch for ch in str(value or "") if ch.isalnum()).upper()
    return text or None


def _test_email(value: object) -> str | None:
    return str(value).strip().lower() or None if isinstance(value, str) else None


KEYS = IdentityKeys("test", _test_nif, _test_email)


@pytest.mark.parametrize(
    "typed",
    [" b-12.345 674 ", "ES B12345674", "B/12345674", "5.837.261-e", "837261S", "y579135d"],
)
def test_index_keys_nifs_and_emails_as_matching_does(typed):
    # No keys given: the index takes customer_sync's identity functions, the ones matching uses
    index = ContactIndex.build(
        [make(1, nif=typed, email=" Ana@Example.ES "), make(2, nif="00000000T")]
    )
    identity = nif_identity(typed)
    assert identity is not None
    assert [c["id"] for c in index.by_nif(identity)] == [1]
    assert [c["id"] for c in index.by_nif(typed)] == [1]
    assert index.by_nif("00000000T") == []  # a placeholder identifies nobody
    assert [c["id"] for c in index.by_email(email_identity("ana@example.es"))] == [1]


def test_index_rebuilds_a_kept_cache_when_the_keys_change(tmp_path):
    path = tmp_path / "cache.sqlite"
    index = ContactIndex(path=path, keys=KEYS)
    index.add(make(1, "7"))
    index.close(commit=True)
    assert len(ContactIndex(path=path, keys=KEYS)) == 1
    assert len(ContactIndex(path=path, keys=IdentityKeys("test-2", _test_nif, _test_email))) == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [("  12 ", "12"), (["", "7"], "7"), ([], None), (None, None), ("", None), (42, "42")],
)
def test_custom_field_text(value, expected):
    contact = {"custom_fields": [{"id": 1, "field": "factusol_id", "value": value}]}
    assert custom_field_text(contact, "factusol_id") == expected


def test_custom_field_text_missing_keys():
    assert custom_field_text({}, "factusol_id") is None
    assert custom_field_text({"custom_fields": None}, "factusol_id") is None


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("contacts | contact", True),
        ("contacts | contacto", True),
        ("contact", True),
        ("Contacts", True),
        ("companies | empresa", False),
        ("deals | oportunidad", False),
        (None, False),
    ],
)
def test_contact_content_type(content_type, expected):
    assert is_contact_field_definition({"content_type": content_type}) is expected


def test_contact_emails_all_and_lowercase():
    contact = {"emails": [{"email": " A@X.com"}, {"email": "b@x.com"}, {"email": None}]}
    assert contact_emails(contact) == ["a@x.com", "b@x.com"]


def test_datetimes():
    parsed = parse_api_datetime("2025-11-18T08:36:12.997736+01:00")
    assert parsed is not None
    assert to_utc_iso(parsed) == "2025-11-18T07:36:12.997736+00:00"
    assert parse_api_datetime("2024/01/01") == datetime(2023, 12, 31, 23, 0, tzinfo=UTC)
    assert parse_api_datetime("garbage") is None
    moment = datetime(2025, 1, 1, 12, 0, 0, 500000, tzinfo=UTC)
    assert format_filter_datetime(moment) == "2025-01-01T12:00:00Z"
    assert format_filter_datetime(moment, round_up=True) == "2025-01-01T12:00:01Z"


def test_retry_after_forms():
    assert retry_after_seconds("12", now=0) == 12
    assert retry_after_seconds("-3", now=0) == 0
    assert retry_after_seconds("Thu, 01 Jan 1970 00:01:40 GMT", now=40) == 60
    assert retry_after_seconds("soon", now=0) is None
    assert retry_after_seconds(None, now=0) is None


def test_normalize_messages():
    assert normalize_messages({"a": "x", "b": ["y", "z"]}) == {"a": ["x"], "b": ["y", "z"]}
    assert normalize_messages(None) == {}


def make(cid: int, link: str | None = None, nif: str = "", email: str | None = None) -> dict:
    """A contact list item."""
    return {
        "id": cid,
        "custom_fields": [{"field": "factusol_id", "value": link}] if link else [],
        "taxpayer_identification_number": nif,
        "emails": [{"id": 1, "type": 4, "email": email}] if email else [],
    }


def test_index_add_replaces_and_remove_forgets():
    index = ContactIndex.build([make(1, "10", "B-1", "a@x.com"), make(2, "10")], keys=KEYS)
    assert [c["id"] for c in index.by_factusol_id(10)] == [1, 2]  # ambiguity is reported
    index.add(make(1, "11", "C1", "b@x.com"))  # new version of contact 1
    assert [c["id"] for c in index.by_factusol_id("10")] == [2]
    assert index.by_email("a@x.com") == []
    assert index.by_nif("b1") == []
    assert [c["id"] for c in index.by_nif("c-1")] == [1]
    index.remove(2)
    assert index.by_factusol_id("10") == []
    index.remove({"id": 1})
    assert len(index) == 0
    with pytest.raises(ValueError, match="without an id"):
        index.add({"first_name": "x"})


def test_index_link_values_name_the_same_code():
    # hand-typed links: " 10001 " and "0010001" name client 10001, as the target reads them
    index = ContactIndex.build(
        [make(1, " 10001 "), make(2, "0010001"), make(3, "10001"), make(4, "x1")], keys=KEYS
    )
    assert [c["id"] for c in index.by_factusol_id(10001)] == [1, 2, 3]
    assert [c["id"] for c in index.by_factusol_id("010001")] == [1, 2, 3]
    assert [c["id"] for c in index.by_factusol_id("x1")] == [4]


ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "add_many", "remove"]),
        st.integers(1, 5),
        st.sampled_from([None, "1", "2"]),
        st.sampled_from(["", "B-1", "b1", "C.2"]),
        st.sampled_from([None, "a@x.com", "A@X.COM", "b@x.com"]),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_index_matches_brute_force(operations):
    index = ContactIndex(keys=KEYS)
    model: dict[int, dict] = {}
    for op, cid, link, nif, email in operations:
        if op == "add":
            contact = make(cid, link, nif, email)
            index.add(contact)
            model[cid] = contact
        elif op == "add_many":  # a page: this contact, a neighbour, this one again (later wins)
            page = [make(cid, link, nif, email), make(cid % 5 + 1, link), make(cid, link, nif)]
            assert index.add_many(page) == 2
            model.update({contact["id"]: contact for contact in page})
        else:
            index.remove(cid)
            model.pop(cid, None)
    for link in ("1", "2"):
        expected = {c for c, v in model.items() if custom_field_text(v, "factusol_id") == link}
        assert {c["id"] for c in index.by_factusol_id(link)} == expected
    for nif in ("B1", "C2"):
        expected = {
            c for c, v in model.items() if _test_nif(v["taxpayer_identification_number"]) == nif
        }
        assert {c["id"] for c in index.by_nif(nif)} == expected
    for email in ("a@x.com", "b@x.com"):
        expected = {c for c, v in model.items() if email in contact_emails(v)}
        assert {c["id"] for c in index.by_email(email)} == expected
    assert len(index) == len(model)
