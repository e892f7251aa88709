"""Clientify emulator through Flask's test client: shapes, auth, pagination, filters, writes."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sandbox.clientify import create_app

TOKEN = {"Authorization": "Token sandbox-api-key"}
MADRID = ZoneInfo("Europe/Madrid")
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+0[12]:00$")

# Keys of the reference's recorded detail (§3), without the "…" placeholder.
DETAIL_KEYS = {
    "url", "id", "owner", "owner_id", "owner_name", "first_name", "last_name", "status", "title",
    "company", "company_details", "contact_type", "contact_source", "emails", "phones",
    "addresses", "custom_fields", "tags", "websites", "description", "remarks", "summary",
    "taxpayer_identification_number", "country", "created", "modified", "last_contact",
    "birthday", "gdpr_accept", "channel", "picture_url", "other_companies", "deals",
    "related_tasks", "integrations", "unsubscribed", "lead_scoring", "medium", "linkedin_url",
}  # fmt: skip
LIST_KEYS = {
    "url", "id", "owner", "owner_name", "first_name", "last_name", "status", "title", "company",
    "company_name", "taxpayer_identification_number", "medium", "channel", "contact_source",
    "emails", "phones", "addresses", "picture_url", "custom_fields", "tags", "created",
    "modified", "last_contact", "birthday", "gdpr_accept", "gdpr_acceptance_date",
    "gdpr_revoke_date", "disclaimer",
}  # fmt: skip


@pytest.fixture
def client(tmp_path: Any) -> Any:
    return create_app(tmp_path / "data").test_client()


def call(client: Any, method: str, path: str, **kw: Any) -> Any:
    return client.open(path, method=method, headers=TOKEN, **kw)


def set_now(client: Any, utc: str) -> None:
    """Move the sandbox clock to a UTC instant (independent of the machine's time zone)."""
    target = dt.datetime.fromisoformat(utc).replace(tzinfo=dt.UTC)
    offset = (target - dt.datetime.now(dt.UTC)).total_seconds()
    assert client.post("/_sandbox/config", json={"clock_offset_seconds": offset}).status_code == 200


def new_contact(client: Any, **body: Any) -> dict[str, Any]:
    resp = call(client, "POST", "/v1/contacts/", json=body or {"first_name": "Ana"})
    assert resp.status_code == 201, resp.get_json()
    result: dict[str, Any] = resp.get_json()
    return result


def seed(client: Any, n: int, s: int = 42) -> None:
    assert client.post("/_sandbox/seed", json={"contacts": n, "seed": s}).status_code == 200


def ids_of(resp: Any) -> list[int]:
    return [item["id"] for item in resp.get_json()["results"]]


# -- shapes ---------------------------------------------------------------------------------------
def test_create_returns_201_and_the_detail_shape(client: Any) -> None:
    body = {
        "first_name": "John",
        "last_name": "Doe",
        "email": "john.doe@example.com",
        "phone": "+1234567890",
        "tags": ["some tag"],
    }
    resp = call(client, "POST", "/v1/contacts/", json=body)
    assert resp.status_code == 201
    detail = resp.get_json()
    assert set(detail) >= DETAIL_KEYS
    assert detail["url"] == f"http://localhost/v1/contacts/{detail['id']}/"
    assert detail["status"] == "cold-lead"
    assert detail["emails"] == [
        {"id": detail["emails"][0]["id"], "type": 4, "email": "john.doe@example.com"}
    ]
    assert detail["phones"] == [
        {"id": detail["phones"][0]["id"], "type": 1, "phone": "+1234567890", "unsubscribed": False}
    ]
    assert list(detail["emails"][0]) == ["id", "type", "email"]
    assert list(detail["phones"][0]) == ["id", "type", "phone", "unsubscribed"]
    assert detail["tags"] == ["some tag"]
    assert detail["company"] is None
    assert detail["company_details"] is None
    assert detail["custom_fields"] == []
    assert detail["addresses"] == []
    assert detail["taxpayer_identification_number"] == ""
    assert detail["country"] == ""
    assert STAMP.match(detail["created"])
    assert STAMP.match(detail["modified"])
    assert call(client, "GET", detail["url"]).get_json() == detail


def test_list_items_have_the_shorter_list_shape(client: Any) -> None:
    new_contact(client, first_name="Ana", company="ACME SL")
    item = call(client, "GET", "/v1/contacts/").get_json()["results"][0]
    assert set(item) == LIST_KEYS
    assert item["company"].startswith("http://localhost/v1/companies/")
    assert item["company_name"] == "ACME SL"
    assert STAMP.match(item["modified"])


def test_company_name_on_write_links_or_creates_a_company(client: Any) -> None:
    first = new_contact(client, first_name="A", company="Talleres Pepe SL")
    second = new_contact(client, first_name="B", company="Talleres Pepe SL")
    other = new_contact(client, first_name="C", company="Otra SL")
    assert first["company"] == second["company"] != other["company"]
    assert first["company_name"] == "Talleres Pepe SL"
    cleared = call(client, "PUT", first["url"], json={"company": ""}).get_json()
    assert cleared["company"] is None


def test_phones_are_stored_verbatim_and_may_repeat(client: Any) -> None:
    body = {
        "phones": [
            {"phone": " 600 11-22 33 ", "type": 2},
            {"phone": "600112233", "type": 2},
            {"phone": "600112233", "type": 6},
        ]
    }
    contact = new_contact(client, **body)
    assert [p["phone"] for p in contact["phones"]] == [" 600 11-22 33 ", "600112233", "600112233"]


def test_datetimes_use_the_madrid_offset_with_microseconds(client: Any) -> None:
    set_now(client, "2026-07-01T10:00:00.000001")
    summer = new_contact(client)["created"]
    set_now(client, "2026-01-15T10:00:00")
    winter = new_contact(client)["created"]
    assert summer.endswith("+02:00")
    assert winter.endswith("+01:00")
    assert STAMP.match(winter)


def test_account_and_users(tmp_path: Any) -> None:
    client = create_app(tmp_path, country="PT").test_client()
    account = call(client, "GET", "/v1/settings/my-account/").get_json()
    assert account["count"] == 1
    assert account["next"] is None
    assert account["results"][0] == {
        "language": "es", "country": "PT", "time_zone": "Europe/Madrid", "currency": "EUR",
        "currency_symbol": "€", "currency_format": 1, "hour_format": 1, "date_format": 1,
        "sub_brand": "",
    }  # fmt: skip
    users = call(client, "GET", "/v1/users/").get_json()
    assert users["count"] == 1
    assert users["results"][0]["country"] == "PT"


def test_obtain_token_json_form_and_errors(tmp_path: Any) -> None:
    client = create_app(tmp_path, api_key="k-123").test_client()
    url = "/v1/api-auth/obtain_token/"
    assert client.post(url, json={"username": "u", "password": "p"}).get_json() == {
        "token": "k-123"
    }
    assert client.post(url, data={"username": "u", "password": "p"}).get_json() == {
        "token": "k-123"
    }
    resp = client.post(url, json={"username": "u"})
    assert resp.status_code == 400
    assert resp.get_json() == {"password": ["This field is required."]}
    strict = create_app(tmp_path / "b", config={"auth": {"username": "u", "password": "p"}})
    resp = strict.test_client().post(url, json={"username": "u", "password": "nope"})
    assert resp.status_code == 400
    assert resp.get_json() == {"non_field_errors": ["Unable to log in with provided credentials."]}


# -- auth and errors ------------------------------------------------------------------------------
def test_no_authorization_header_is_404_api_key_not_provided(client: Any) -> None:
    for path in ("/v1/contacts/", "/v1/custom-fields/", "/v1/settings/my-account/"):
        resp = client.get(path)
        assert resp.status_code == 404
        assert resp.get_json() == {"detail": "Api key not provided."}


def test_wrong_token_is_401_invalid_token(client: Any) -> None:
    resp = client.get("/v1/contacts/", headers={"Authorization": "Token wrong"})
    assert resp.status_code == 401
    assert resp.get_json() == {"detail": "Invalid token."}
    assert resp.headers["WWW-Authenticate"] == "Token"


def test_unknown_id_is_404_not_found(client: Any) -> None:
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        resp = call(client, method, "/v1/contacts/999/", json={})
        assert resp.status_code == 404
        assert resp.get_json() == {"detail": "Not found."}


def test_unknown_path_under_v1_is_an_html_page(client: Any) -> None:
    for headers in (TOKEN, {}):
        resp = client.get("/v1/contactos/", headers=headers)
        assert resp.status_code == 404
        assert resp.mimetype == "text/html"
        assert b"Not Found" in resp.data


def test_missing_trailing_slash_redirects_with_301(client: Any) -> None:
    resp = call(client, "POST", "/v1/contacts", json={"first_name": "x"})
    assert resp.status_code == 301
    assert resp.headers["Location"].endswith("/v1/contacts/")
    assert call(client, "GET", "/v1/contacts/").get_json()["count"] == 0


def test_method_not_allowed_is_drf_json(client: Any) -> None:
    resp = call(client, "DELETE", "/v1/contacts/")
    assert resp.status_code == 405
    assert resp.get_json() == {"detail": 'Method "DELETE" not allowed.'}


def test_delete_is_204_with_an_empty_body(client: Any) -> None:
    contact = new_contact(client)
    resp = call(client, "DELETE", contact["url"])
    assert resp.status_code == 204
    assert resp.data == b""
    assert call(client, "GET", contact["url"]).status_code == 404


# -- pagination -----------------------------------------------------------------------------------
def test_pages_follow_next_to_the_end(client: Any) -> None:
    seed(client, 45)
    first = call(client, "GET", "/v1/contacts/")
    body = first.get_json()
    assert body["count"] == 45
    assert len(body["results"]) == 20
    assert body["previous"] is None
    assert body["next"] == "http://localhost/v1/contacts/?page=2"
    seen = ids_of(first)
    url = body["next"]
    pages = 1
    while url:
        page = call(client, "GET", url).get_json()
        seen += [item["id"] for item in page["results"]]
        url = page["next"]
        pages += 1
        if pages == 2:
            assert page["previous"] == "http://localhost/v1/contacts/"
    assert pages == 3
    assert len(seen) == len(set(seen)) == 45
    assert seen == sorted(seen, reverse=True)  # default order "-id"


def test_next_repeats_the_filters_url_encoded(client: Any) -> None:
    seed(client, 30)
    resp = call(
        client,
        "GET",
        "/v1/contacts/?page_size=10&modified[gte]=2020-01-01T00:00:00+02:00".replace("+", "%2B"),
    )
    body = resp.get_json()
    assert body["next"] == (
        "http://localhost/v1/contacts/?modified%5Bgte%5D=2020-01-01T00%3A00%3A00%2B02%3A00"
        "&page=2&page_size=10"
    )
    page3 = call(client, "GET", body["next"].replace("page=2", "page=3")).get_json()
    assert page3["previous"].endswith("page=2&page_size=10")
    assert page3["next"] is None


def test_page_past_the_end_is_404_invalid_page(client: Any) -> None:
    seed(client, 5)
    for query in ("page=2", "page=0", "page=abc", "page=-1"):
        resp = call(client, "GET", f"/v1/contacts/?{query}")
        assert resp.status_code == 404, query
        assert resp.get_json() == {"detail": "Invalid page."}
    assert call(client, "GET", "/v1/contacts/?page=last").status_code == 200


def test_empty_account_page_one_is_fine(client: Any) -> None:
    assert call(client, "GET", "/v1/contacts/").get_json() == {
        "count": 0, "next": None, "previous": None, "results": []
    }  # fmt: skip


def test_page_size_is_clamped_at_100_and_garbage_falls_back(client: Any) -> None:
    seed(client, 130)
    assert len(ids_of(call(client, "GET", "/v1/contacts/?page_size=1000"))) == 100
    assert len(ids_of(call(client, "GET", "/v1/contacts/?page_size=100"))) == 100
    assert len(ids_of(call(client, "GET", "/v1/contacts/?page_size=0"))) == 20
    assert len(ids_of(call(client, "GET", "/v1/contacts/?page_size=x"))) == 20
    assert len(ids_of(call(client, "GET", "/v1/contacts/?limit=5"))) == 20  # `limit` ignored


# -- filters --------------------------------------------------------------------------------------
def test_query_is_fuzzy_over_names_emails_and_tin(client: Any) -> None:
    target = new_contact(
        client,
        first_name="José",
        last_name="García Núñez",
        email="Pepe.Garcia@Example.ES",
        taxpayer_identification_number="12345678Z",
    )
    new_contact(client, first_name="Otro", last_name="Señor", email="otro@example.es")
    for query in ("garcia", "jose garc", "NÚÑEZ", "pepe.garcia@example", "12345678z", "5678Z"):
        assert ids_of(call(client, "GET", f"/v1/contacts/?query={query}")) == [target["id"]], query
    assert ids_of(call(client, "GET", "/v1/contacts/?query=nadie")) == []


@pytest.mark.parametrize(
    ("param", "value", "expected"),
    [
        ("email", "ana@ejemplo.es", [0]),
        ("email", "EJEMPLO.ES", [1, 0]),  # partial, case-insensitive (§2 INFERRED)
        ("phone", "600 111", [0]),
        ("tag", "vip", [1]),
        ("contact_type", "client", [1]),
        ("contact_source", "Feria", [0]),
    ],
)
def test_simple_filters(client: Any, param: str, value: str, expected: list[int]) -> None:
    made = [
        new_contact(
            client,
            email="ana@ejemplo.es",
            phone="600 111 222",
            tags=["cliente"],
            contact_source="Feria",
        ),
        new_contact(
            client,
            email="luis@ejemplo.es",
            phone="933 000 111",
            tags=["vip"],
            contact_type="client",
        ),
    ]
    resp = call(client, "GET", "/v1/contacts/", query_string={param: value})
    assert ids_of(resp) == [made[i]["id"] for i in expected]


def test_created_and_modified_filters_accept_every_form(client: Any) -> None:
    set_now(client, "2025-12-09T13:50:00")  # 14:50 Madrid
    old = new_contact(client, first_name="old")
    set_now(client, "2026-03-01T12:00:00")
    new = new_contact(client, first_name="new")
    forms = [
        "2026-01-01",
        "2026/01/01",
        "2025-12-09T15:00",
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00.000Z",
        "2026-01-01T00:00:00+00:00",
    ]
    for form in forms:
        for field in ("created", "modified"):
            got = ids_of(call(client, "GET", "/v1/contacts/", query_string={f"{field}[gte]": form}))
            assert got == [new["id"]], (field, form)
            got = ids_of(call(client, "GET", "/v1/contacts/", query_string={f"{field}[lt]": form}))
            assert got == [old["id"]], (field, form)
    # gt vs gte on the exact stamp (ties are what `>` loses)
    stamp = new["modified"]
    assert ids_of(call(client, "GET", "/v1/contacts/", query_string={"modified[gte]": stamp})) == [
        new["id"]
    ]
    assert ids_of(call(client, "GET", "/v1/contacts/", query_string={"modified[gt]": stamp})) == []
    assert ids_of(call(client, "GET", "/v1/contacts/", query_string={"modified[lte]": stamp})) == [
        new["id"],
        old["id"],
    ]


def test_naive_filter_dates_are_read_in_madrid(client: Any) -> None:
    set_now(client, "2026-07-01T08:00:00")  # UTC = 10:00 Madrid
    contact = new_contact(client)

    def count(value: str) -> int:
        resp = call(client, "GET", "/v1/contacts/", query_string={"modified[gte]": value})
        return int(resp.get_json()["count"])

    assert count("2026-07-01T09:59") == 1  # Madrid 09:59 < 10:00
    assert count("2026-07-01T10:01") == 0
    assert count("2026-07-01T08:01:00Z") == 0
    assert contact["modified"].startswith("2026-07-01T10:00:00")


def test_unparseable_date_is_400(client: Any) -> None:
    for value in ("yesterday", "2026-13-01", "2026-01-01T00:00:00 00:00"):  # `+` not encoded
        resp = call(client, "GET", "/v1/contacts/", query_string={"modified[gte]": value})
        assert resp.status_code == 400, value
        assert resp.get_json() == {"modified[gte]": ["Enter a valid date/time."]}


@pytest.mark.parametrize(
    "query",
    [
        "taxpayer_identification_number=B00000000",
        "search=nobody",
        "ordering=-modified",
        "cf_factusol_id=1",
        "emails=nobody@x.es",
        "created=2099-01-01",
        "name=nobody",
    ],
)
def test_unsupported_filters_are_silently_ignored(client: Any, query: str) -> None:
    # §2 CONFIRMED trap: 200 with the whole account.
    seed(client, 12)
    resp = call(client, "GET", f"/v1/contacts/?{query}")
    assert resp.status_code == 200
    assert resp.get_json()["count"] == 12


# -- validation -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"email": "not-an-email"}, {"email": ["Enter a valid email address."]}),
        (
            {"emails": [{"email": "a@b.es"}, {"email": "bad @x.es"}]},
            {"emails": [{}, {"email": ["Enter a valid email address."]}]},
        ),
        ({"status": "customer"}, {"status": ['"customer" is not a valid choice.']}),
        ({"tags": ["ok", " "]}, {"tags": {"1": ["This field may not be blank."]}}),
        (
            {"custom_fields": [{"field": "Origen", "value": None}]},
            {"custom_fields": [{"value": ["This field may not be null."]}]},
        ),
        (
            {"phones": [{"phone": "600", "type": 9}]},
            {"phones": [{"type": ['"9" is not a valid choice.']}]},
        ),
        (
            {"birthday": "01/02/1990"},
            {"birthday": ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."]},
        ),
        ({"first_name": None}, {"first_name": ["This field may not be null."]}),
        ({"emails": "a@b.es"}, {"emails": ['Expected a list of items but got type "str".']}),
    ],
)
def test_validation_errors_are_drf_field_maps(client: Any, body: Any, errors: Any) -> None:
    resp = call(client, "POST", "/v1/contacts/", json=body)
    assert resp.status_code == 400
    assert resp.get_json() == errors
    assert call(client, "GET", "/v1/contacts/").get_json()["count"] == 0  # nothing half-written


def test_update_validation_writes_nothing(client: Any) -> None:
    contact = new_contact(client, first_name="Ana")
    resp = call(client, "PUT", contact["url"], json={"first_name": "Eva", "status": "x"})
    assert resp.status_code == 400
    assert call(client, "GET", contact["url"]).get_json() == contact


# -- updates --------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_put_and_patch_are_partial_updates(client: Any, method: str) -> None:
    contact = new_contact(
        client,
        first_name="Ana",
        last_name="Ruiz",
        email="ana@x.es",
        tags=["a"],
        taxpayer_identification_number="12345678Z",
    )
    resp = call(client, method, contact["url"], json={"last_name": "Ruiz Gil", "title": "CEO"})
    assert resp.status_code == 200
    updated = resp.get_json()
    assert updated["last_name"] == "Ruiz Gil"
    assert updated["title"] == "CEO"
    assert updated["emails"] == contact["emails"]
    assert updated["tags"] == ["a"]
    assert updated["taxpayer_identification_number"] == "12345678Z"
    assert updated["modified"] > contact["modified"]
    assert updated["created"] == contact["created"]


def test_tags_in_put_replace(client: Any) -> None:
    contact = new_contact(client, tags=["a", "b"])
    updated = call(client, "PUT", contact["url"], json={"tags": ["c"]}).get_json()
    assert updated["tags"] == ["c"]


def test_flat_phone_on_put_adds_a_main_phone(client: Any) -> None:
    contact = new_contact(client, first_name="Sin teléfono")
    updated = call(client, "PUT", contact["url"], json={"phone": "+34 600 000 000"}).get_json()
    assert [(p["type"], p["phone"]) for p in updated["phones"]] == [(1, "+34 600 000 000")]


def test_read_only_keys_echoed_back_are_ignored(client: Any) -> None:
    contact = new_contact(client, first_name="Ana")
    echoed = {**contact, "first_name": "Eva", "id": 1, "created": "2000-01-01"}
    echoed.pop("emails")
    echoed.pop("phones")
    echoed.pop("company")
    echoed.pop("custom_fields")
    resp = call(client, "PUT", contact["url"], json=echoed)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["first_name"] == "Eva"
    assert resp.get_json()["id"] == contact["id"]


# -- sub-resources (§4) ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sub", "body", "expected"),
    [
        ("emails", {"email": "b@x.es", "type": 1}, {"type": 1, "email": "b@x.es"}),
        (
            "phones",
            {"phone": "600 00 00 00", "type": 2},
            {"type": 2, "phone": "600 00 00 00", "unsubscribed": False},
        ),
        (
            "addresses",
            {
                "type": 5,
                "street": "Calle Mayor, 1",
                "city": "Madrid",
                "state": "Madrid",
                "country": "España",
                "postal_code": "28013",
            },
            {
                "type": 5,
                "street": "Calle Mayor, 1",
                "city": "Madrid",
                "state": "Madrid",
                "country": "España",
                "postal_code": "28013",
            },
        ),
        ("tags", {"name": "factusol"}, {"name": "factusol"}),
    ],
)
def test_subresources_post_get_delete(
    client: Any, sub: str, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    contact = new_contact(client, first_name="Ana")
    base = f"/v1/contacts/{contact['id']}/{sub}/"
    resp = call(client, "POST", base, json=body)
    assert resp.status_code == 201
    item = resp.get_json()
    assert isinstance(item["id"], int)
    assert {k: v for k, v in item.items() if k != "id"} == expected
    listing = call(client, "GET", base).get_json()
    assert set(listing) == {"count", "next", "previous", "results"}
    assert listing["results"] == [item]
    after_post = call(client, "GET", contact["url"]).get_json()
    assert after_post["modified"] > contact["modified"]
    assert call(client, "DELETE", f"{base}{item['id']}/").status_code == 204
    assert call(client, "GET", base).get_json()["count"] == 0
    assert call(client, "DELETE", f"{base}{item['id']}/").get_json() == {"detail": "Not found."}
    assert call(client, "GET", contact["url"]).get_json()["modified"] > after_post["modified"]


def test_subresource_validation_and_unknown_contact(client: Any) -> None:
    contact = new_contact(client)
    base = f"/v1/contacts/{contact['id']}"
    bad_email = call(client, "POST", f"{base}/emails/", json={"email": "x", "type": 1})
    assert bad_email.status_code == 400
    assert bad_email.get_json() == {"email": ["Enter a valid email address."]}
    blank_tag = call(client, "POST", f"{base}/tags/", json={"name": ""})
    assert blank_tag.status_code == 400
    assert blank_tag.get_json() == {"name": ["This field may not be blank."]}
    assert call(client, "GET", "/v1/contacts/1/emails/").status_code == 404
    assert call(client, "GET", f"{base}/websites/").status_code == 404  # not a sub-resource


# -- custom fields (§5) ---------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", ["contact", "contacts", "contacts | contact"])
@pytest.mark.parametrize("field_type", [3, "text"])
def test_create_custom_field_definition(client: Any, content_type: str, field_type: Any) -> None:
    resp = call(
        client,
        "POST",
        "/v1/custom-fields/",
        json={"name": "factusol_id", "content_type": content_type, "field_type": field_type},
    )
    assert resp.status_code == 201
    field = resp.get_json()
    assert field == {
        "url": f"http://localhost/v1/custom-fields/{field['id']}/", "id": field["id"],
        "user_company": "Sandbox Demo SL", "content_type": "contacts | contact",
        "name": "factusol_id", "help_text": "", "field_type": 3, "field_type_display": "Text",
        "default_value": "", "dropdown_choices": [], "visible": False,
    }  # fmt: skip
    listing = call(client, "GET", "/v1/custom-fields/").get_json()
    assert listing["results"] == [field]
    assert call(client, "GET", field["url"]).get_json() == field


def test_custom_field_definition_errors(client: Any) -> None:
    url = "/v1/custom-fields/"
    resp = call(client, "POST", url, json={"name": "x", "content_type": "deals", "field_type": 3})
    assert resp.status_code == 400
    assert "content_type" in resp.get_json()
    resp = call(
        client, "POST", url, json={"name": "x", "content_type": "contacts", "field_type": 1}
    )
    assert resp.status_code == 400
    assert "field_type" in resp.get_json()
    resp = call(client, "POST", url, json={"content_type": "contacts"})
    assert resp.get_json() == {"name": ["This field is required."]}
    body = {"name": "dup", "content_type": "contacts", "field_type": 3}
    assert call(client, "POST", url, json=body).status_code == 201
    assert call(client, "POST", url, json=body).status_code == 400


def test_custom_field_values_read_shape_and_merge_by_name(client: Any) -> None:
    for name in ("factusol_id", "verified"):
        call(
            client,
            "POST",
            "/v1/custom-fields/",
            json={"name": name, "content_type": "contacts", "field_type": 3},
        )
    contact = new_contact(client, custom_fields=[{"field": "factusol_id", "value": "7"}])
    (value,) = contact["custom_fields"]
    assert list(value) == ["id", "field", "value"]
    assert value["value"] == "7"
    updated = call(
        client,
        "PUT",
        contact["url"],
        json={"custom_fields": [{"field": "verified", "value": "yes"}]},
    ).get_json()
    assert [(c["field"], c["value"]) for c in updated["custom_fields"]] == [
        ("factusol_id", "7"),
        ("verified", "yes"),
    ]
    again = call(
        client,
        "PUT",
        contact["url"],
        json={"custom_fields": [{"field": "factusol_id", "value": 8}]},
    ).get_json()
    assert again["custom_fields"][0] == {"id": value["id"], "field": "factusol_id", "value": "8"}


def test_value_for_undefined_field_is_400_by_default(client: Any) -> None:
    resp = call(
        client,
        "POST",
        "/v1/contacts/",
        json={"custom_fields": [{"field": "factusol_id", "value": "1"}]},
    )
    assert resp.status_code == 400
    assert resp.get_json() == {
        "custom_fields": [{"field": ['Custom field "factusol_id" does not exist.']}]
    }


def test_seeded_definitions_include_other_models(client: Any) -> None:
    seed(client, 3)
    fields = call(client, "GET", "/v1/custom-fields/").get_json()["results"]
    labels = {(f["name"], f["content_type"]) for f in fields}
    # a `factusol_id` on deals must not be taken for the contact field: filter on content_type
    assert ("factusol_id", "deals | oportunidad") in labels
    assert not any(n == "factusol_id" and c.startswith("contacts") for n, c in labels)


# -- modified moves on every change, movable clock ------------------------------------------------
def test_modified_moves_on_every_change(client: Any) -> None:
    contact = new_contact(client, email="a@x.es")
    url = contact["url"]
    stamps = [contact["modified"]]

    def step(offset: int, method: str, path: str, body: Any = None) -> None:
        client.post("/_sandbox/config", json={"clock_offset_seconds": offset})
        assert call(client, method, path, json=body).status_code in (200, 201, 204)
        stamps.append(call(client, "GET", url).get_json()["modified"])

    step(10, "PUT", url, {"first_name": "x"})
    step(20, "PATCH", url, {"first_name": "y"})
    step(30, "PUT", url, {})  # even an empty write
    step(40, "POST", f"{url}emails/", {"email": "b@x.es", "type": 1})
    step(50, "POST", f"{url}tags/", {"name": "t"})
    step(60, "PATCH", f"/_sandbox/contacts/{contact['id']}", {"last_name": "z"})
    assert stamps == sorted(set(stamps))
    assert len(stamps) == 7


def test_clock_offset_stamps_modified_in_the_past(client: Any) -> None:
    resp = client.post("/_sandbox/config", json={"clock_offset_seconds": -259200})
    assert resp.status_code == 200
    contact = new_contact(client)
    modified = dt.datetime.fromisoformat(contact["modified"])
    age = dt.datetime.now(dt.UTC) - modified
    assert dt.timedelta(days=3) - dt.timedelta(minutes=1) < age < dt.timedelta(days=3, minutes=1)
    since = (dt.datetime.now(MADRID) - dt.timedelta(days=1)).isoformat()
    assert (
        call(client, "GET", "/v1/contacts/", query_string={"modified[gte]": since}).get_json()[
            "count"
        ]
        == 0
    )


# -- admin routes ---------------------------------------------------------------------------------
def test_admin_patch_edits_like_a_crm_user(client: Any) -> None:
    contact = new_contact(client, first_name="Ana", email="a@x.es", phone="600", tags=["a"])
    client.post("/_sandbox/config", json={"clock_offset_seconds": 3600})
    resp = client.patch(
        f"/_sandbox/contacts/{contact['id']}",
        json={
            "last_name": "Santamaría",
            "emails": [{"email": "new@x.es", "type": 1}],
            "custom_fields": [{"field": "factusol_id", "value": "12"}],
            "tags": ["b"],
            "taxpayer_identification_number": "B12345674",
        },
    )
    assert resp.status_code == 200
    edited = client.get(f"/_sandbox/contacts/{contact['id']}").get_json()
    assert edited == resp.get_json()
    assert edited["last_name"] == "Santamaría"
    assert edited["first_name"] == "Ana"
    assert [e["email"] for e in edited["emails"]] == ["new@x.es"]  # lists replace
    assert edited["phones"] == contact["phones"]
    assert edited["tags"] == ["b"]
    assert [(c["field"], c["value"]) for c in edited["custom_fields"]] == [("factusol_id", "12")]
    assert edited["modified"] > contact["modified"]
    # the definition now exists (a CRM user created the field)
    names = [f["name"] for f in call(client, "GET", "/v1/custom-fields/").get_json()["results"]]
    assert names == ["factusol_id"]


def test_admin_create_list_delete_and_seed(client: Any) -> None:
    resp = client.post(
        "/_sandbox/contacts",
        json={
            "first_name": "Lucía",
            "email": "lucia@example.es",
            "custom_fields": [{"field": "factusol_id", "value": "3"}],
        },
    )
    assert resp.status_code == 201
    created = resp.get_json()
    assert created["custom_fields"][0]["value"] == "3"
    listed = client.get("/_sandbox/contacts").get_json()["contacts"]
    assert listed == [created]
    assert client.delete(f"/_sandbox/contacts/{created['id']}").status_code == 204
    assert client.get(f"/_sandbox/contacts/{created['id']}").status_code == 404
    assert client.post("/_sandbox/seed", json={"contacts": 7, "seed": 1}).get_json() == {
        "ok": True, "contacts": 7
    }  # fmt: skip
    assert len(client.get("/_sandbox/contacts").get_json()["contacts"]) == 7


def test_admin_routes_are_not_logged_nor_faulted(client: Any) -> None:
    client.post("/_sandbox/config", json={"faults": {"error_rate": 1.0}})
    assert client.get("/_sandbox/contacts").status_code == 200
    resp = call(client, "GET", "/v1/contacts/")
    assert resp.status_code == 504
    assert resp.mimetype == "text/html"
    log = client.get("/_sandbox/requests").get_json()["requests"]
    assert [(r["path"], r["status"], r["fault"]) for r in log] == [("/v1/contacts/", 504, "error")]


def test_throttle_fault_is_drf_429_with_retry_after(client: Any) -> None:
    client.post(
        "/_sandbox/config", json={"faults": {"throttle_rate": 1.0, "retry_after_seconds": 3}}
    )
    resp = call(client, "GET", "/v1/contacts/")
    assert resp.status_code == 429
    assert resp.get_json() == {"detail": "Request was throttled."}
    assert resp.headers["Retry-After"] == "3"


def test_rate_limit_high_passes_low_throttles(client: Any) -> None:
    client.post("/_sandbox/config", json={"faults": {"rate_limit": 1_000_000}})
    assert {call(client, "GET", "/v1/users/").status_code for _ in range(20)} == {200}
    client.post("/_sandbox/config", json={"faults": {"rate_limit": 2}})
    statuses = [call(client, "GET", "/v1/users/") for _ in range(10)]
    throttled = [r for r in statuses if r.status_code == 429]
    assert len(throttled) >= 7
    assert all(int(r.headers["Retry-After"]) >= 1 for r in throttled)
    assert throttled[0].get_json() == {"detail": "Request was throttled."}


def test_bad_switch_values_are_refused(client: Any) -> None:
    resp = client.post("/_sandbox/config", json={"switches": {"lists_on_update": "merge"}})
    assert resp.status_code == 400
    resp = client.post("/_sandbox/config", json={"switches": {"no_such_switch": 1}})
    assert resp.status_code == 400


def test_concurrent_subresource_writes_lose_nothing(client: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    contact = new_contact(client)
    base = f"/v1/contacts/{contact['id']}"

    def add(i: int) -> int:
        body = {"email": f"e{i}@x.es", "type": 1}
        return int(call(client, "POST", f"{base}/emails/", json=body).status_code)

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(add, range(40))) == {201}
    emails = call(client, "GET", f"{base}/").get_json()["emails"]
    assert len(emails) == 40
    assert len({e["id"] for e in emails}) == 40


# Issue 15's real-data addresses: the real service (DRF + Django's EmailValidator) refuses them
# on every write path, so the sandbox does too.
DJANGO_REFUSES = [
    "x@dominio.e",
    "x@-dominio.es",
    "<x@dominio.es>",
    "a" * 65 + "@dominio.es",
    "josé@correo.es",
    "a..b@x.es",
    "x@dominio.es.",
]


@pytest.mark.parametrize("address", DJANGO_REFUSES)
def test_every_write_path_refuses_what_django_refuses(client: Any, address: str) -> None:
    bad = {"email": ["Enter a valid email address."]}
    post = call(client, "POST", "/v1/contacts/", json={"first_name": "A", "email": address})
    assert (post.status_code, post.get_json()) == (400, bad)
    listed = call(client, "POST", "/v1/contacts/", json={"emails": [{"email": address}]})
    assert (listed.status_code, listed.get_json()) == (400, {"emails": [bad]})
    contact = new_contact(client)
    for method in ("PUT", "PATCH"):
        resp = call(client, method, contact["url"], json={"email": address})
        assert (resp.status_code, resp.get_json()) == (400, bad), method
        resp = call(client, method, contact["url"], json={"emails": [{"email": address}]})
        assert (resp.status_code, resp.get_json()) == (400, {"emails": [bad]}), method
    sub = call(client, "POST", f"/v1/contacts/{contact['id']}/emails/", json={"email": address})
    assert (sub.status_code, sub.get_json()) == (400, bad)


@pytest.mark.parametrize("address", ["a" * 64 + "@dominio.es", "ana@ñandú.es", "x@localhost"])
def test_what_django_accepts_is_accepted(client: Any, address: str) -> None:
    post = call(client, "POST", "/v1/contacts/", json={"first_name": "A", "email": address})
    assert post.status_code == 201
    assert post.get_json()["emails"][0]["email"] == address
