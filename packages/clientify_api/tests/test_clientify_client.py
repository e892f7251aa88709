"""ClientifyClient against mocked HTTP (responses): paging, filters, errors, retries, secrets."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from clientify_api import (
    ClientifyAuthError,
    ClientifyClient,
    ClientifyCustomFieldError,
    ClientifyError,
    ClientifyNotFoundError,
    ClientifyRetryError,
    ClientifyValidationError,
)
from responses import matchers

API = "https://api.test/v1"
KEY = "sEcReT-KeY-0123456789"
CONTACTS = f"{API}/contacts/"


def contact(cid: int, *, modified: str = "2025-11-18T08:36:13.023747+01:00", **extra) -> dict:
    base = {
        "id": cid,
        "url": f"{API}/contacts/{cid}/",
        "first_name": f"Name{cid}",
        "last_name": "Doe",
        "emails": [{"id": cid * 10, "type": 4, "email": f"user{cid}@empresa.es"}],
        "phones": [],
        "custom_fields": [],
        "tags": [],
        "taxpayer_identification_number": "",
        "created": "2025-11-18T08:36:12.997736+01:00",
        "modified": modified,
    }
    base.update(extra)
    return base


def page(results: list[dict], next_url: str | None = None, count: int | None = None) -> dict:
    return {
        "count": len(results) if count is None else count,
        "next": next_url,
        "previous": None,
        "results": results,
    }


def query_of(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


# --------------------------------------------------------------------------- construction


def test_https_required_except_loopback():
    with pytest.raises(ValueError, match="https://"):
        ClientifyClient(KEY, "http://api.clientify.net/v1")
    for ok in ("http://127.0.0.1:8766/v1", "http://localhost:8766/v1", "http://[::1]:8766/v1"):
        assert ClientifyClient(KEY, ok).api_url == ok
    assert ClientifyClient(KEY, "https://api.clientify.com/v1/").api_url == (
        "https://api.clientify.com/v1"
    )
    with pytest.raises(ValueError, match="api_key"):
        ClientifyClient("  ", API)


def test_repr_hides_key(client):
    text = repr(client)
    assert KEY not in text
    assert "***" in text


def test_token_header_trailing_slash_and_page_size(client, rsps):
    rsps.get(CONTACTS, json=page([contact(1)]))
    assert [c["id"] for c in client.iter_contacts()] == [1]
    request = rsps.calls[0].request
    assert request.headers["Authorization"] == f"Token {KEY}"
    assert urlsplit(request.url).path == "/v1/contacts/"
    assert query_of(rsps.calls[0])["page_size"] == ["100"]


def test_page_size_is_capped_at_100(make_client, rsps):
    client = make_client(page_size=500)
    rsps.get(CONTACTS, json=page([]))
    list(client.iter_contacts())
    assert query_of(rsps.calls[0])["page_size"] == ["100"]


# --------------------------------------------------------------------------- pagination


def test_pagination_follows_next_and_stops_on_null(client, rsps):
    # The server's own parameter order and encoding; page_size missing from the link.
    rsps.get(
        CONTACTS,
        match=[matchers.query_param_matcher({"page_size": "100"})],
        json=page([contact(1), contact(2)], f"{API}/contacts/?page=2", count=5),
    )
    rsps.get(
        CONTACTS,
        match=[matchers.query_param_matcher({"page": "2", "page_size": "100"})],
        json=page([contact(3), contact(4)], f"{API}/contacts/?page_size=100&page=3", count=5),
    )
    rsps.get(
        CONTACTS,
        match=[matchers.query_param_matcher({"page": "3", "page_size": "100"})],
        json=page([contact(5)], None, count=5),
    )
    assert [c["id"] for c in client.iter_contacts()] == [1, 2, 3, 4, 5]
    assert len(rsps.calls) == 3
    assert client.calls["read"] == 3


def test_pagination_treats_404_invalid_page_as_end(client, rsps):
    rsps.get(
        CONTACTS,
        match=[matchers.query_param_matcher({"page_size": "100"})],
        json=page([contact(1)], f"{API}/contacts/?page=2&page_size=100", count=2),
    )
    rsps.get(
        CONTACTS,
        match=[matchers.query_param_matcher({"page": "2", "page_size": "100"})],
        status=404,
        json={"detail": "Invalid page."},
    )
    assert [c["id"] for c in client.iter_contacts()] == [1]


class PagedAccount:
    """GET /contacts/ answered page by page from a list of ids (pages of 2 here; `count`,
    `next` with `page=N`, 404 "Invalid page." past the end), recording the pages asked."""

    def __init__(self, rsps, ids: list[int], *, size: int = 2, count: bool = True) -> None:
        self.ids, self.size, self.count = ids, size, count
        self.asked: list[int] = []
        rsps.add_callback("GET", CONTACTS, callback=self._answer)

    def _answer(self, request):
        number = int(parse_qs(urlsplit(request.url).query).get("page", ["1"])[0])
        self.asked.append(number)
        chunk = self.ids[(number - 1) * self.size : number * self.size]
        if not chunk and number > 1:
            return 404, {}, json.dumps({"detail": "Invalid page."})
        more = number * self.size < len(self.ids)
        body = {
            "next": f"{API}/contacts/?page={number + 1}&page_size=100" if more else None,
            "previous": None,
            "results": [contact(cid) for cid in chunk],
        }
        if self.count:
            body["count"] = len(self.ids)
        return 200, {}, json.dumps(body)


def test_read_ahead_requests_the_pages_count_announces_and_yields_them_in_order(client, rsps):
    account = PagedAccount(rsps, list(range(1, 12)))  # 11 contacts: 6 pages of 2
    assert [c["id"] for c in client.iter_contacts(read_ahead=3)] == list(range(1, 12))
    assert sorted(account.asked) == [1, 2, 3, 4, 5, 6]  # each page once, none past the end


@pytest.mark.parametrize("change", ["grew", "shrank"])
def test_read_ahead_follows_a_listing_that_changed_while_read(client, rsps, change):
    account = PagedAccount(rsps, list(range(1, 8)))  # count 7: pages 1-4

    def reads():
        for item in client.iter_contacts(read_ahead=2):
            if item["id"] == 1:  # after the first page told the count
                if change == "grew":
                    account.ids += [8, 9, 10]  # pages 5 (from the last page's next)
                else:
                    del account.ids[5:]  # page 4 is past the end now
            yield item["id"]

    got = list(reads())
    if change == "grew":
        assert got == list(range(1, 11))
        assert sorted(account.asked) == [1, 2, 3, 4, 5]
    else:
        assert got == [1, 2, 3, 4, 5]
        assert sorted(account.asked) == [1, 2, 3, 4]  # 4 answered 404: the end


def test_read_ahead_without_a_count_reads_one_page_at_a_time(client, rsps):
    account = PagedAccount(rsps, list(range(1, 6)), count=False)
    assert [c["id"] for c in client.iter_contacts(read_ahead=4)] == [1, 2, 3, 4, 5]
    assert account.asked == [1, 2, 3]


def test_read_ahead_stops_asking_when_the_reader_stops(client, rsps):
    account = PagedAccount(rsps, list(range(1, 41)))  # 20 pages
    contacts = client.iter_contacts(read_ahead=3)
    assert [next(contacts)["id"] for _ in range(4)] == [1, 2, 3, 4]
    contacts.close()
    assert max(account.asked) <= 2 + 3  # the pages in flight, not the rest


def test_next_link_keeps_filters_and_stays_on_our_host(client, rsps):
    since = datetime(2025, 11, 1, tzinfo=UTC)
    rsps.get(
        CONTACTS,
        match=[
            matchers.query_param_matcher(
                {"modified[gte]": "2025-11-01T00:00:00Z", "page_size": "100"}
            )
        ],
        # Another host in the link (proxy): the key must only go to api_url.
        json=page([contact(1)], "https://elsewhere.test/v1/contacts/?page=2&page_size=100"),
    )
    rsps.get(
        CONTACTS,
        match=[
            matchers.query_param_matcher(
                {"modified[gte]": "2025-11-01T00:00:00Z", "page": "2", "page_size": "100"}
            )
        ],
        json=page([contact(2)]),
    )
    assert [c["id"] for c in client.iter_contacts(modified_gte=since)] == [1, 2]
    assert all(urlsplit(c.request.url).netloc == "api.test" for c in rsps.calls)


def test_pagination_loop_is_detected(client, rsps):
    rsps.get(CONTACTS, json=page([contact(1)], f"{API}/contacts/?page_size=100&page=2"))
    with pytest.raises(ClientifyError, match="same next page"):
        list(client.iter_contacts())


# --------------------------------------------------------------------------- filters


def test_modified_filter_sent_with_offset_and_verified_when_ignored(client, rsps):
    since = datetime(2025, 11, 18, 8, 0, tzinfo=UTC)
    # The server ignores the filter and answers with the whole account.
    rsps.get(
        CONTACTS,
        json=page(
            [
                contact(1, modified="2025-11-18T10:00:00.000001+01:00"),  # 09:00 UTC: keep
                contact(2, modified="2025-11-18T08:59:59.999999+01:00"),  # 07:59 UTC: drop
                contact(3, modified="2025-11-18T09:00:00+01:00"),  # 08:00 UTC: keep (>=)
                contact(4, modified=None),  # unknown: keep
            ]
        ),
    )
    ids = [c["id"] for c in client.iter_contacts(modified_gte=since)]
    assert ids == [1, 3, 4]
    assert query_of(rsps.calls[0])["modified[gte]"] == ["2025-11-18T08:00:00Z"]
    assert "modified%5Bgte%5D=2025-11-18T08%3A00%3A00Z" in rsps.calls[0].request.url


def test_naive_datetime_filter_is_rejected(client):
    with pytest.raises(ValueError, match="timezone-aware"):
        list(client.iter_contacts(modified_gte=datetime(2025, 1, 1)))


def test_ignored_email_filter_is_caught_client_side(client, rsps):
    rsps.get(
        CONTACTS,
        json=page(
            [
                contact(1),
                contact(2, emails=[{"id": 1, "type": 1, "email": "Ana@Example.com"}]),
                contact(3, emails=[{"id": 2, "type": 1, "email": "ana@example.com.evil"}]),
            ]
        ),
    )
    found = list(client.iter_contacts(email="ana@example.com"))
    assert [c["id"] for c in found] == [2]
    assert query_of(rsps.calls[0])["email"] == ["ana@example.com"]
    assert client.calls["lookup"] == 1


def test_phone_tag_and_query_filters_are_verified(client, rsps):
    everyone = [
        contact(1, phones=[{"id": 1, "type": 1, "phone": "+34 600 111 222"}], tags=["FactuSOL"]),
        contact(2, phones=[{"id": 2, "type": 1, "phone": "600 999 888"}], tags=["other"]),
        contact(3, first_name="José", taxpayer_identification_number="B-1234567.8"),
    ]
    rsps.get(CONTACTS, json=page(everyone))
    assert [c["id"] for c in client.iter_contacts(phone="600111222")] == [1]
    assert [c["id"] for c in client.iter_contacts(tag="factusol")] == [1]
    assert [c["id"] for c in client.iter_contacts(query="jose")] == [3]
    assert [c["id"] for c in client.iter_contacts(query="B12345678")] == [3]


def test_find_by_custom_field_verifies_every_value(client, rsps):
    def cf(value):
        return [{"field": "factusol_id", "value": value}]

    rsps.get(
        CONTACTS,
        match=[matchers.query_param_matcher({"cf_factusol_id": "123", "page_size": "100"})],
        json=page(
            [
                contact(1, custom_fields=cf("123")),
                contact(2, custom_fields=cf("1234")),  # a fuzzy server match
                contact(3, custom_fields=[{"id": 9, "field": "other", "value": "123"}]),
                contact(4, custom_fields=[{"field": "factusol_id", "value": ["123"]}]),
                contact(5, custom_fields=cf(None)),
            ]
        ),
    )
    found = client.find_by_custom_field("factusol_id", 123)
    assert [c["id"] for c in found] == [1, 4]
    assert client.custom_field_filter_supported is False
    with pytest.raises(ClientifyError, match="ContactIndex"):
        client.find_by_custom_field("factusol_id", "123", scan_if_ignored=False)


def test_find_by_custom_field_honoured_filter(client, rsps):
    rsps.get(
        CONTACTS,
        json=page([contact(7, custom_fields=[{"field": "factusol_id", "value": "42"}])]),
    )
    assert [c["id"] for c in client.find_by_custom_field("factusol_id", "42")] == [7]
    assert client.custom_field_filter_supported is True
    assert client.calls["lookup"] == 1


def test_build_contact_index_is_one_scan(client, rsps):
    rsps.get(
        CONTACTS,
        json=page(
            [contact(1, custom_fields=[{"field": "factusol_id", "value": "9"}])],
            f"{API}/contacts/?page=2&page_size=100",
        ),
    )
    rsps.get(
        CONTACTS,
        match=[matchers.query_param_matcher({"page": "2", "page_size": "100"})],
        json=page([contact(2, taxpayer_identification_number="b-12.345 674")]),
    )
    index = client.build_contact_index()
    assert len(rsps.calls) == 2
    assert [c["id"] for c in index.by_factusol_id("9")] == [1]
    assert [c["id"] for c in index.by_nif("B12345674")] == [2]
    assert [c["id"] for c in index.by_email("USER2@empresa.es ")] == [2]


# --------------------------------------------------------------------------- errors


def test_400_becomes_validation_error_with_field_message(client, rsps):
    rsps.post(CONTACTS, status=400, json={"email": ["Enter a valid email address."]})
    with pytest.raises(ClientifyValidationError) as info:
        client.create_contact({"first_name": "A", "email": "not-an-email"})
    err = info.value
    assert err.status == 400
    assert err.messages == {"email": ["Enter a valid email address."]}
    assert "POST /v1/contacts/ -> 400" in str(err)
    assert "Enter a valid email address." in str(err)
    assert "not-an-email" not in str(err)  # never the body we sent
    assert len(rsps.calls) == 1  # not retried


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (["Duplicate contact."], {"non_field_errors": ["Duplicate contact."]}),
        ("Bad thing", {"detail": ["Bad thing"]}),
        (
            {"custom_fields": [{"value": ["may not be null"]}]},
            {"custom_fields": ["value: may not be null"]},
        ),
    ],
)
def test_validation_error_bodies(client, rsps, body, expected):
    kwargs = {"json": body} if not isinstance(body, str) else {"body": body}
    rsps.put(f"{API}/contacts/5/", status=400, **kwargs)
    with pytest.raises(ClientifyValidationError) as info:
        client.update_contact(5, {"title": "x"})
    assert info.value.messages == expected


def test_401_is_auth_error(client, rsps):
    rsps.get(CONTACTS, status=401, json={"detail": "Invalid token."})
    with pytest.raises(ClientifyAuthError, match="Clientify rejected the API key"):
        list(client.iter_contacts())
    assert len(rsps.calls) == 1


def test_404_api_key_not_provided_is_auth_error(client, rsps):
    rsps.get(CONTACTS, status=404, json={"detail": "Api key not provided."})
    with pytest.raises(ClientifyAuthError, match="did not receive the API key"):
        list(client.iter_contacts())


def test_403_is_auth_error(client, rsps):
    rsps.get(f"{API}/settings/my-account/", status=403, json={"detail": "Forbidden"})
    with pytest.raises(ClientifyAuthError, match="no API access"):
        client.account_country()


def test_404_is_not_found(client, rsps):
    rsps.get(f"{API}/contacts/99/", status=404, json={"detail": "Not found."})
    with pytest.raises(ClientifyNotFoundError, match="GET /v1/contacts/99/ -> 404"):
        client.get_contact(99)
    rsps.get(f"{API}/contacts/98/", status=404, body="<html>Page not found</html>")
    with pytest.raises(ClientifyNotFoundError, match="check api_url"):
        client.get_contact(98)


def test_ids_must_be_integers(client):
    with pytest.raises(ValueError, match="integers"):
        client.get_contact("1/../../users")


# --------------------------------------------------------------------------- retries


def test_429_retry_after_seconds_is_waited_out(client, clock, rsps):
    rsps.get(CONTACTS, status=429, headers={"Retry-After": "7"}, json={"detail": "Throttled"})
    rsps.get(CONTACTS, json=page([contact(1)]))
    assert [c["id"] for c in client.iter_contacts()] == [1]
    assert clock.sleeps == [7.0]
    assert client.retries == 1
    assert client.calls["read"] == 1  # one logical call, one retry


def test_429_retry_after_http_date(make_client, clock, rsps):
    # wall clock 1_700_000_000 = Tue, 14 Nov 2023 22:13:20 GMT; the header says 30 s later.
    client = make_client()
    rsps.get(CONTACTS, status=429, headers={"Retry-After": "Tue, 14 Nov 2023 22:13:50 GMT"})
    rsps.get(CONTACTS, json=page([]))
    list(client.iter_contacts())
    assert clock.sleeps == [30.0]


def test_429_holds_every_thread(make_client, clock, rsps):
    client = make_client(rate_limit=1000.0)
    rsps.get(CONTACTS, status=429, headers={"Retry-After": "5"})
    rsps.get(CONTACTS, json=page([]))
    list(client.iter_contacts())
    start = clock()
    client.rate_limiter.hold(5)
    client.rate_limiter.acquire()
    assert clock() - start >= 5


def test_504_is_retried_with_exponential_backoff(client, clock, rsps):
    rsps.get(CONTACTS, status=504, body="Gateway Time-out")
    rsps.get(CONTACTS, status=504, body="Gateway Time-out")
    rsps.get(CONTACTS, json=page([contact(1)]))
    assert [c["id"] for c in client.iter_contacts()] == [1]
    assert clock.sleeps == [1.0, 2.0]


def test_backoff_is_capped(make_client, clock, rsps):
    client = make_client(max_retries=8, backoff_cap=5.0)
    rsps.get(CONTACTS, status=503)
    with pytest.raises(ClientifyRetryError):
        list(client.iter_contacts())
    assert max(clock.sleeps) == 5.0
    assert clock.sleeps[:3] == [1.0, 2.0, 4.0]


def test_retries_exhausted_gives_one_line_error(client, rsps):
    rsps.get(CONTACTS, status=504, body="<html>Gateway Time-out</html>")
    with pytest.raises(ClientifyRetryError) as info:
        list(client.iter_contacts())
    message = str(info.value)
    assert message == "GET /v1/contacts/ failed after 4 attempts (last: 504)"
    assert "\n" not in message
    assert info.value.attempts == 4
    assert len(rsps.calls) == 4


def test_connection_errors_and_timeouts_are_retried(client, rsps):
    rsps.get(f"{API}/contacts/1/", body=requests.ConnectionError("reset"))
    rsps.get(f"{API}/contacts/1/", body=requests.ReadTimeout("slow"))
    rsps.get(f"{API}/contacts/1/", json=contact(1))
    assert client.get_contact(1)["id"] == 1
    assert client.retries == 2


def test_post_is_not_resent_blindly_after_504(client, rsps):
    rsps.post(CONTACTS, status=504)
    with pytest.raises(ClientifyRetryError) as info:
        client.create_contact({"first_name": "Ana"})
    assert info.value.maybe_applied
    assert len(rsps.calls) == 1


def test_post_504_resolved_by_looking_up_the_link_field(client, rsps):
    body = {"first_name": "Ana", "custom_fields": [{"field": "factusol_id", "value": "77"}]}
    rsps.post(CONTACTS, status=504)
    created = contact(5, custom_fields=[{"field": "factusol_id", "value": "77"}])
    rsps.get(CONTACTS, json=page([created]))
    assert client.create_contact(body)["id"] == 5
    assert [c.request.method for c in rsps.calls] == ["POST", "GET"]


def test_post_504_not_applied_is_sent_again(client, rsps):
    body = {"first_name": "Ana", "custom_fields": [{"field": "factusol_id", "value": "77"}]}
    rsps.post(CONTACTS, status=504)
    rsps.get(CONTACTS, json=page([]))
    rsps.post(CONTACTS, status=201, json=contact(6))
    assert client.create_contact(body)["id"] == 6
    # look up, resend, then check that the first POST did not land late after all
    assert [c.request.method for c in rsps.calls] == ["POST", "GET", "POST", "GET"]


def test_post_that_lands_after_the_recheck_leaves_no_duplicate(make_client, rsps, clock):
    # The first POST times out but the server applies it later: the recheck (after waiting the
    # client's timeout) still misses it, the resend creates a second contact, which is deleted.
    client = make_client(timeout=7.0)
    link = [{"field": "factusol_id", "value": "77"}]
    body = {"first_name": "Ana", "custom_fields": link}
    rsps.post(CONTACTS, body=requests.exceptions.ReadTimeout("read timed out"))
    rsps.get(CONTACTS, json=page([]))
    rsps.post(CONTACTS, status=201, json=contact(9, custom_fields=link))
    rsps.get(CONTACTS, json=page([contact(5, custom_fields=link), contact(9, custom_fields=link)]))
    rsps.delete(f"{API}/contacts/9/", status=204)

    assert client.create_contact(body)["id"] == 5
    assert [c.request.method for c in rsps.calls] == ["POST", "GET", "POST", "GET", "DELETE"]
    assert clock.sleeps[0] >= 7.0  # the in-flight request had its time to finish


def test_post_429_is_resent(client, rsps):
    rsps.post(CONTACTS, status=429, headers={"Retry-After": "0"})
    rsps.post(CONTACTS, status=201, json=contact(8))
    assert client.create_contact({"first_name": "B"})["id"] == 8


# --------------------------------------------------------------------------- writes


def test_contact_writes_and_sub_resources(client, rsps):
    rsps.post(CONTACTS, status=201, json=contact(1))
    rsps.put(f"{API}/contacts/1/", json=contact(1, title="CEO"))
    rsps.post(f"{API}/contacts/1/emails/", status=201, json={"id": 5, "type": 1, "email": "a@b.c"})
    rsps.delete(f"{API}/contacts/1/emails/5/", status=204)
    rsps.post(f"{API}/contacts/1/phones/", status=201, json={"id": 6, "type": 2, "phone": "600"})
    rsps.delete(f"{API}/contacts/1/phones/6/", status=204)
    rsps.post(f"{API}/contacts/1/addresses/", status=201, json={"id": 7, "type": 3})
    rsps.delete(f"{API}/contacts/1/addresses/7/", status=204)
    rsps.post(f"{API}/contacts/1/tags/", status=201, json={"id": 8, "name": "factusol"})
    rsps.delete(f"{API}/contacts/1/tags/8/", status=204)

    assert client.create_contact({"first_name": "A"})["id"] == 1
    assert client.update_contact(1, {"title": "CEO"})["title"] == "CEO"
    assert client.add_email(1, "a@b.c", type=1)["id"] == 5
    client.delete_email(1, 5)
    assert client.add_phone(1, "600", type=2)["id"] == 6
    client.delete_phone(1, 6)
    assert client.add_address(1, {"type": 3, "street": "Mayor 1", "city": "Madrid"})["id"] == 7
    client.delete_address(1, 7)
    assert client.add_tag(1, "factusol")["id"] == 8
    client.delete_tag(1, 8)

    methods = [(c.request.method, urlsplit(c.request.url).path) for c in rsps.calls]
    assert methods[1] == ("PUT", "/v1/contacts/1/")
    assert json.loads(rsps.calls[2].request.body) == {"email": "a@b.c", "type": 1}
    assert json.loads(rsps.calls[4].request.body) == {"phone": "600", "type": 2}
    assert json.loads(rsps.calls[8].request.body) == {"name": "factusol"}
    assert client.calls["write"] == 10


def test_set_and_get_custom_field(client, rsps):
    rsps.put(
        f"{API}/contacts/3/",
        match=[
            matchers.json_params_matcher(
                {"custom_fields": [{"field": "factusol_id", "value": "12"}]}
            )
        ],
        json=contact(3, custom_fields=[{"field": "factusol_id", "value": "12"}]),
    )
    updated = client.set_custom_field(3, "factusol_id", 12)
    assert client.get_custom_field(updated, "factusol_id") == "12"
    with pytest.raises(ValueError, match="non-empty"):
        client.set_custom_field(3, "factusol_id", "")


# --------------------------------------------------------------------------- custom fields


def definition(name: str, content_type: str, fid: int = 1, field_type: int = 3) -> dict:
    return {
        "url": f"{API}/custom-fields/{fid}/",
        "id": fid,
        "content_type": content_type,
        "name": name,
        "field_type": field_type,
        "field_type_display": "Text",
    }


def test_ensure_custom_field_creates_once(client, rsps):
    rsps.get(
        f"{API}/custom-fields/",
        json=page(
            [definition("verified", "contacts | contact")],
            f"{API}/custom-fields/?page=2&page_size=100",
        ),
    )
    rsps.get(
        f"{API}/custom-fields/",
        match=[matchers.query_param_matcher({"page": "2", "page_size": "100"})],
        # Same name on another model does not count.
        json=page([definition("factusol_id", "companies | empresa", 2)]),
    )
    rsps.post(
        f"{API}/custom-fields/",
        status=201,
        match=[
            matchers.json_params_matcher(
                {"name": "factusol_id", "content_type": "contacts", "field_type": 3}
            )
        ],
        json=definition("factusol_id", "contacts | contact", 3),
    )
    first = client.ensure_custom_field("factusol_id")
    second = client.ensure_custom_field("factusol_id")
    assert first == second
    assert first["id"] == 3
    assert [c.request.method for c in rsps.calls] == ["GET", "GET", "POST"]


@pytest.mark.parametrize("content_type", ["contacts | contacto", "contact", "contacts", "contacto"])
def test_ensure_custom_field_is_noop_when_present(client, rsps, content_type):
    rsps.get(f"{API}/custom-fields/", json=page([definition("factusol_id", content_type, 9)]))
    assert client.ensure_custom_field()["id"] == 9
    assert [c.request.method for c in rsps.calls] == ["GET"]


def test_ensure_custom_field_4xx_asks_for_manual_creation(client, rsps):
    rsps.get(f"{API}/custom-fields/", json=page([]))
    rsps.post(f"{API}/custom-fields/", status=400, json={"content_type": ["Invalid value."]})
    with pytest.raises(ClientifyCustomFieldError) as info:
        client.ensure_custom_field("factusol_id")
    message = str(info.value)
    assert "by hand" in message
    assert "text custom field named 'factusol_id' on contacts" in message
    assert "Invalid value." in message
    assert not isinstance(info.value, ClientifyValidationError)  # not a per-record rejection


def test_ensure_custom_field_403_asks_for_manual_creation(client, rsps):
    rsps.get(f"{API}/custom-fields/", json=page([]))
    rsps.post(f"{API}/custom-fields/", status=403, json={"detail": "Permission denied."})
    with pytest.raises(ClientifyCustomFieldError) as info:
        client.ensure_custom_field("factusol_id")
    assert "by hand" in str(info.value)


def test_list_contact_custom_fields_filters_content_type(client, rsps):
    rsps.get(
        f"{API}/custom-fields/",
        json=page(
            [
                definition("a", "contacts | contact", 1),
                definition("b", "deals | oportunidad", 2),
                definition("c", "contacts | contacto", 3),
            ]
        ),
    )
    assert [d["name"] for d in client.list_contact_custom_fields()] == ["a", "c"]


# --------------------------------------------------------------------------- account


def test_account_country(client, rsps):
    rsps.get(
        f"{API}/settings/my-account/",
        json=page([{"language": "es", "country": "es", "time_zone": "Europe/Madrid"}]),
    )
    assert client.account_country() == "ES"
    assert client.account_country() == "ES"
    assert len(rsps.calls) == 1


def test_account_time_zone_read_once_with_the_country(client, rsps):
    rsps.get(
        f"{API}/settings/my-account/",
        json=page([{"country": "ES", "time_zone": "Atlantic/Canary"}]),
    )
    assert client.account_time_zone() == "Atlantic/Canary"
    assert client.account_country() == "ES"
    assert len(rsps.calls) == 1


@pytest.mark.parametrize("value", [None, "", "Mars/Olympus", "../../etc/passwd", 5])
def test_account_time_zone_unknown(client, rsps, value):
    rsps.get(f"{API}/settings/my-account/", json=page([{"country": "ES", "time_zone": value}]))
    assert client.account_time_zone() is None


def test_account_country_fallback_none(client, rsps):
    rsps.get(f"{API}/settings/my-account/", json=page([]))
    assert client.account_country() is None


# --------------------------------------------------------------------------- secrets


def test_api_key_never_in_logs_or_errors(make_client, rsps, caplog):
    caplog.set_level(logging.DEBUG)
    client = make_client(max_retries=1)
    rsps.get(CONTACTS, status=429, headers={"Retry-After": "0"})
    rsps.get(CONTACTS, json=page([contact(1)]))
    rsps.get(f"{API}/contacts/2/", status=401, json={"detail": "Invalid token."})
    rsps.get(f"{API}/contacts/3/", status=500)
    rsps.post(CONTACTS, status=400, json={"email": ["bad"]})
    errors = []
    list(client.iter_contacts())
    for call in (
        lambda: client.get_contact(2),
        lambda: client.get_contact(3),
        lambda: client.create_contact({"email": "x"}),
    ):
        with pytest.raises(ClientifyError) as info:
            call()
        errors.append(str(info.value))
        errors.append(repr(info.value))
    assert caplog.records  # DEBUG/WARNING lines were written
    assert KEY not in caplog.text
    assert all(KEY not in e for e in errors)
    assert KEY not in repr(client)
    assert KEY not in repr(client.__dict__.get("rate_limiter"))


@responses.activate
def test_shared_session_can_be_injected():
    session = requests.Session()
    client = ClientifyClient(KEY, API, rate_limit=None, session=session)
    responses.get(f"{API}/contacts/1/", json=contact(1))
    assert client.get_contact(1)["id"] == 1
    client.close()


def test_importing_the_client_does_not_load_sqlalchemy() -> None:
    """A change probe imports the client every few minutes: the index's SQLAlchemy (~0.2 CPU-s)
    loads only when an index is built."""
    import subprocess
    import sys

    def loaded_after(name: str) -> str:
        code = (
            f"import sys, clientify_api; clientify_api.{name}; print('sqlalchemy' in sys.modules)"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        return done.stdout.strip()

    assert loaded_after("ClientifyClient") == "False"
    assert loaded_after("ContactIndex") == "True"
