"""Every switch of the Clientify emulator, both ways (defaults first)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sandbox.clientify import DEFAULT_SWITCHES, create_app

TOKEN = {"Authorization": "Token sandbox-api-key"}


@pytest.fixture
def client(tmp_path: Any) -> Any:
    return create_app(tmp_path).test_client()


def call(client: Any, method: str, path: str, **kw: Any) -> Any:
    return client.open(path, method=method, headers=TOKEN, **kw)


def set_now(client: Any, utc: str) -> None:
    """Move the sandbox clock to a UTC instant (independent of the machine's time zone)."""
    target = dt.datetime.fromisoformat(utc).replace(tzinfo=dt.UTC)
    offset = (target - dt.datetime.now(dt.UTC)).total_seconds()
    assert client.post("/_sandbox/config", json={"clock_offset_seconds": offset}).status_code == 200


def switch(client: Any, **values: Any) -> None:
    resp = client.post("/_sandbox/config", json={"switches": values})
    assert resp.status_code == 200, resp.get_json()


def new_contact(client: Any, **body: Any) -> dict[str, Any]:
    resp = call(client, "POST", "/v1/contacts/", json=body)
    assert resp.status_code == 201, resp.get_json()
    result: dict[str, Any] = resp.get_json()
    return result


def define(client: Any, name: str) -> None:
    body = {"name": name, "content_type": "contacts", "field_type": 3}
    assert call(client, "POST", "/v1/custom-fields/", json=body).status_code == 201


def ids(resp: Any) -> list[int]:
    return [r["id"] for r in resp.get_json()["results"]]


def test_defaults_are_the_documented_ones() -> None:
    assert DEFAULT_SWITCHES == {
        "default_page_size": 20, "page_size_above_max": "clamp", "order": "-id",
        "unknown_filter": "ignore", "cf_filter": False, "filter_match": "partial",
        "naive_filter_tz": "Europe/Madrid", "list_addresses": True, "custom_fields_shape": "id",
        "custom_fields_on_update": "merge", "empty_custom_value": "reject",
        "unknown_custom_field": "reject", "content_type_label": "contacts | contact",
        "custom_field_create": "accept", "flat_on_update": "append", "lists_on_update": "append",
        "subresource_moves_modified": True, "duplicate_tin_on_create": "allow",
        "unknown_body_keys": "ignore",
    }  # fmt: skip


def test_config_file_switches_apply_at_start(tmp_path: Any) -> None:
    app = create_app(tmp_path, config={"switches": {"default_page_size": 3}})
    app.test_client().post("/_sandbox/seed", json={"contacts": 5})
    assert len(ids(call(app.test_client(), "GET", "/v1/contacts/"))) == 3
    with pytest.raises(ValueError, match="order"):
        create_app(tmp_path / "x", config={"switches": {"order": "name"}})


def test_default_page_size(client: Any) -> None:
    client.post("/_sandbox/seed", json={"contacts": 30})
    assert len(ids(call(client, "GET", "/v1/contacts/"))) == 20
    switch(client, default_page_size=7)
    assert len(ids(call(client, "GET", "/v1/contacts/"))) == 7


def test_page_size_above_max(client: Any) -> None:
    client.post("/_sandbox/seed", json={"contacts": 3})
    assert call(client, "GET", "/v1/contacts/?page_size=500").status_code == 200
    switch(client, page_size_above_max="400")
    resp = call(client, "GET", "/v1/contacts/?page_size=500")
    assert resp.status_code == 400
    assert resp.get_json() == {"page_size": ["Ensure this value is less than or equal to 100."]}


def test_order(client: Any) -> None:
    a = new_contact(client, first_name="a")["id"]
    b = new_contact(client, first_name="b")["id"]
    call(client, "PUT", f"/v1/contacts/{a}/", json={"title": "touched"})
    assert ids(call(client, "GET", "/v1/contacts/")) == [b, a]
    switch(client, order="id")
    assert ids(call(client, "GET", "/v1/contacts/")) == [a, b]
    switch(client, order="-modified")
    assert ids(call(client, "GET", "/v1/contacts/")) == [a, b]
    switch(client, order="created")
    assert ids(call(client, "GET", "/v1/contacts/")) == [a, b]


def test_unknown_filter(client: Any) -> None:
    new_contact(client, first_name="a")
    assert call(client, "GET", "/v1/contacts/?search=zzz").get_json()["count"] == 1
    switch(client, unknown_filter="400")
    resp = call(client, "GET", "/v1/contacts/?search=zzz&ordering=id")
    assert resp.status_code == 400
    assert "ordering" in resp.get_json()["detail"]
    assert "search" in resp.get_json()["detail"]
    assert call(client, "GET", "/v1/contacts/?cf_factusol_id=1").status_code == 400
    assert call(client, "GET", "/v1/contacts/?email=a@x.es&page_size=5").status_code == 200


def test_cf_filter(client: Any) -> None:
    define(client, "factusol_id")
    one = new_contact(client, custom_fields=[{"field": "factusol_id", "value": "1"}])
    new_contact(client, custom_fields=[{"field": "factusol_id", "value": "11"}])
    new_contact(client, first_name="unlinked")
    assert call(client, "GET", "/v1/contacts/?cf_factusol_id=1").get_json()["count"] == 3
    switch(client, cf_filter=True)
    assert ids(call(client, "GET", "/v1/contacts/?cf_factusol_id=1")) == [one["id"]]
    assert ids(call(client, "GET", "/v1/contacts/?cf_factusol_id=99")) == []


def test_filter_match(client: Any) -> None:
    c = new_contact(client, email="ana.ruiz@example.es", phone="600 111 222", tags=["cliente"])
    for query in ("email=ana.ruiz@example.es", "email=ruiz@example", "phone=111", "tag=client"):
        assert ids(call(client, "GET", f"/v1/contacts/?{query}")) == [c["id"]], query
    switch(client, filter_match="exact")
    assert ids(call(client, "GET", "/v1/contacts/?email=ANA.RUIZ@example.es")) == [c["id"]]
    assert ids(call(client, "GET", "/v1/contacts/?email=ruiz@example")) == []
    assert ids(call(client, "GET", "/v1/contacts/?phone=111")) == []
    assert ids(call(client, "GET", "/v1/contacts/?tag=client")) == []
    assert ids(call(client, "GET", "/v1/contacts/?tag=cliente")) == [c["id"]]


def test_naive_filter_tz(client: Any) -> None:
    set_now(client, "2026-07-01T08:00:00")  # 10:00 Madrid
    new_contact(client)

    def count() -> int:
        resp = call(
            client, "GET", "/v1/contacts/", query_string={"modified[gte]": "2026-07-01T09:00"}
        )
        return int(resp.get_json()["count"])

    assert count() == 1
    switch(client, naive_filter_tz="UTC")
    assert count() == 0


def test_list_addresses(client: Any) -> None:
    new_contact(client, addresses=[{"street": "Calle Mayor 1", "city": "Madrid", "type": 5}])
    item = call(client, "GET", "/v1/contacts/").get_json()["results"][0]
    assert item["addresses"][0]["city"] == "Madrid"
    switch(client, list_addresses=False)
    item = call(client, "GET", "/v1/contacts/").get_json()["results"][0]
    assert "addresses" not in item
    detail = call(client, "GET", item["url"]).get_json()
    assert detail["addresses"][0]["city"] == "Madrid"  # the detail still has them


def test_custom_fields_shape(client: Any) -> None:
    define(client, "factusol_id")
    c = new_contact(client, custom_fields=[{"field": "factusol_id", "value": "5"}])
    assert set(c["custom_fields"][0]) == {"id", "field", "value"}
    switch(client, custom_fields_shape="plain")
    detail = call(client, "GET", c["url"]).get_json()
    assert detail["custom_fields"] == [{"field": "factusol_id", "value": "5"}]
    switch(client, custom_fields_shape="detail")
    item = call(client, "GET", "/v1/contacts/").get_json()["results"][0]
    (value,) = item["custom_fields"]
    assert value["field"] == "factusol_id"
    assert value["field_detail"]["name"] == "factusol_id"


def test_custom_fields_on_update(client: Any) -> None:
    define(client, "a")
    define(client, "b")
    c = new_contact(client, custom_fields=[{"field": "a", "value": "1"}])
    merged = call(client, "PUT", c["url"], json={"custom_fields": [{"field": "b", "value": "2"}]})
    assert [x["field"] for x in merged.get_json()["custom_fields"]] == ["a", "b"]
    switch(client, custom_fields_on_update="replace")
    replaced = call(client, "PUT", c["url"], json={"custom_fields": [{"field": "b", "value": "3"}]})
    assert [(x["field"], x["value"]) for x in replaced.get_json()["custom_fields"]] == [("b", "3")]


def test_empty_custom_value(client: Any) -> None:
    define(client, "factusol_id")
    c = new_contact(client, custom_fields=[{"field": "factusol_id", "value": "5"}])
    empty = {"custom_fields": [{"field": "factusol_id", "value": ""}]}
    resp = call(client, "PUT", c["url"], json=empty)
    assert resp.status_code == 400
    assert resp.get_json() == {"custom_fields": [{"value": ["This field may not be blank."]}]}
    switch(client, empty_custom_value="ignore")
    resp = call(client, "PUT", c["url"], json=empty)
    assert resp.status_code == 200
    assert resp.get_json()["custom_fields"][0]["value"] == "5"
    switch(client, empty_custom_value="store")
    resp = call(client, "PUT", c["url"], json=empty)
    assert resp.status_code == 200
    assert resp.get_json()["custom_fields"][0]["value"] == ""


def test_unknown_custom_field(client: Any) -> None:
    body = {"first_name": "x", "custom_fields": [{"field": "factusol_id", "value": "9"}]}
    assert call(client, "POST", "/v1/contacts/", json=body).status_code == 400
    switch(client, unknown_custom_field="ignore")
    ignored = new_contact(client, **body)
    assert ignored["custom_fields"] == []
    assert call(client, "GET", "/v1/custom-fields/").get_json()["count"] == 0
    switch(client, unknown_custom_field="autocreate")
    created = new_contact(client, **body)
    assert created["custom_fields"][0]["value"] == "9"
    fields = call(client, "GET", "/v1/custom-fields/").get_json()["results"]
    assert [(f["name"], f["content_type"]) for f in fields] == [
        ("factusol_id", "contacts | contact")
    ]


def test_content_type_label(client: Any) -> None:
    define(client, "factusol_id")
    switch(client, content_type_label="contacts | contacto")
    field = call(client, "GET", "/v1/custom-fields/").get_json()["results"][0]
    assert field["content_type"] == "contacts | contacto"
    switch(client, content_type_label="contact")
    field = call(client, "GET", "/v1/custom-fields/").get_json()["results"][0]
    assert field["content_type"] == "contact"


def test_custom_field_create(client: Any) -> None:
    define(client, "one")
    switch(client, custom_field_create="reject")
    body = {"name": "two", "content_type": "contacts", "field_type": 3}
    resp = call(client, "POST", "/v1/custom-fields/", json=body)
    assert resp.status_code == 403
    assert resp.get_json() == {"detail": "You do not have permission to perform this action."}


def test_flat_on_update(client: Any) -> None:
    c = new_contact(client, email="old@x.es", phone="600")
    appended = call(client, "PUT", c["url"], json={"email": "new@x.es", "phone": "700"}).get_json()
    assert [(e["type"], e["email"]) for e in appended["emails"]] == [
        (4, "old@x.es"),
        (4, "new@x.es"),
    ]
    assert [p["phone"] for p in appended["phones"]] == ["600", "700"]
    switch(client, flat_on_update="replace_main")
    c2 = new_contact(client, email="old@x.es", phone="600")
    replaced = call(client, "PUT", c2["url"], json={"email": "new@x.es", "phone": "700"}).get_json()
    assert [(e["type"], e["email"]) for e in replaced["emails"]] == [(4, "new@x.es")]
    assert replaced["emails"][0]["id"] == c2["emails"][0]["id"]
    assert [(p["type"], p["phone"]) for p in replaced["phones"]] == [(1, "700")]


def test_lists_on_update(client: Any) -> None:
    c = new_contact(client, emails=[{"email": "a@x.es", "type": 1}])
    body = {"emails": [{"email": "b@x.es", "type": 2}], "addresses": [{"city": "Vigo"}]}
    appended = call(client, "PUT", c["url"], json=body).get_json()
    assert [e["email"] for e in appended["emails"]] == ["a@x.es", "b@x.es"]
    switch(client, lists_on_update="replace")
    replaced = call(client, "PUT", c["url"], json={"emails": [{"email": "c@x.es"}]}).get_json()
    assert [e["email"] for e in replaced["emails"]] == ["c@x.es"]
    assert [a["city"] for a in replaced["addresses"]] == ["Vigo"]  # lists not sent are kept


def test_subresource_moves_modified(client: Any) -> None:
    c = new_contact(client)
    call(client, "POST", f"{c['url']}tags/", json={"name": "t"})
    moved = call(client, "GET", c["url"]).get_json()["modified"]
    assert moved > c["modified"]
    switch(client, subresource_moves_modified=False)
    call(client, "POST", f"{c['url']}emails/", json={"email": "z@x.es", "type": 3})
    tag_id = call(client, "GET", f"{c['url']}tags/").get_json()["results"][0]["id"]
    call(client, "DELETE", f"{c['url']}tags/{tag_id}/")
    after = call(client, "GET", c["url"]).get_json()
    assert after["modified"] == moved
    assert after["tags"] == []
    assert len(after["emails"]) == 1


def test_duplicate_tin_on_create(client: Any) -> None:
    new_contact(client, taxpayer_identification_number="B12345674")
    new_contact(client, taxpayer_identification_number="B12345674")  # allowed by default
    switch(client, duplicate_tin_on_create="409")
    resp = call(
        client, "POST", "/v1/contacts/", json={"taxpayer_identification_number": "b-12345674"}
    )
    assert resp.status_code == 409
    assert "taxpayer" in resp.get_json()["detail"]
    assert call(client, "GET", "/v1/contacts/").get_json()["count"] == 2
    new_contact(client, taxpayer_identification_number="")  # empty never conflicts
    new_contact(client, taxpayer_identification_number="")


def test_unknown_body_keys(client: Any) -> None:
    body = {"first_name": "a", "nif": "B12345674", "url": "ignored-as-read-only"}
    assert new_contact(client, **body)["first_name"] == "a"
    switch(client, unknown_body_keys="400")
    resp = call(client, "POST", "/v1/contacts/", json=body)
    assert resp.status_code == 400
    assert resp.get_json() == {"nif": ["Unknown field."]}
