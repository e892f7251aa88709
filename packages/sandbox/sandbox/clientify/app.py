"""Flask app emulating Clientify API v1 (clientify-api.md) under `/v1/`, plus `/_sandbox/` admin.

API routes (all need `Authorization: Token <key>` except obtain_token):
  POST   /v1/api-auth/obtain_token/
  GET    /v1/contacts/                      list items, DRF pages, filters of §2
  POST   /v1/contacts/                      201 + detail
  GET    /v1/contacts/<id>/                 detail
  PUT    /v1/contacts/<id>/                 partial update (§4), PATCH the same
  DELETE /v1/contacts/<id>/                 204
  GET    /v1/contacts/<id>/<sub>/           sub = emails | phones | addresses | tags (paginated)
  POST   /v1/contacts/<id>/<sub>/           201 + the item
  DELETE /v1/contacts/<id>/<sub>/<item>/    204
  GET    /v1/custom-fields/  POST /v1/custom-fields/  GET /v1/custom-fields/<id>/
  GET    /v1/settings/my-account/   GET /v1/users/
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, jsonify, redirect, request
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from sandbox.clientify.contacts import (
    BLANK,
    LISTS,
    REQUIRED,
    ContactWriter,
    DuplicateTinError,
    Renderer,
    ValidationError,
    clean_tag_name,
    new_document,
    not_choice,
)
from sandbox.clientify.seed import parse_codes, seed_contacts
from sandbox.clientify.storage import ContactFilter, Store, fold
from sandbox.clientify.switches import DEFAULT_SWITCHES, validate_switches
from sandbox.clientify.timeutil import parse_filter_value, to_us
from sandbox.common import ADMIN_PREFIX, SandboxState, install

API_PREFIX = "/v1/"
MAX_PAGE_SIZE = 100  # §2: max page size 100
OWNER = {"id": 56001, "email": "sandbox@example.com", "name": "Sandbox Owner"}
USER_COMPANY = "Sandbox Demo SL"
DATE_FILTERS = ("created", "modified")
DATE_OPS = ("gt", "gte", "lt", "lte")
KNOWN_FILTERS = {
    "page",
    "page_size",
    "query",
    "email",
    "phone",
    "tag",
    "contact_source",
    "contact_type",
    *(f"{name}[{op}]" for name in DATE_FILTERS for op in DATE_OPS),
}
SUBRESOURCES = {"emails": "email", "phones": "phone", "addresses": "address", "tags": "tag"}

# Django's production 404 page: unknown paths under /v1/ answer HTML, not JSON (§1).
HTML_404 = (
    '<!doctype html>\n<html lang="en">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n'
    "  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n"
    "</body>\n</html>\n"
)
HTML_504 = (
    "<html><body><h1>504 Gateway Time-out</h1>\n"
    "The server didn't respond in time.\n</body></html>\n"
)


def fault_response(kind: str) -> Response:
    """Bodies of injected faults: DRF's throttle message, a gateway's HTML 504 (§7)."""
    if kind == "throttle":
        resp = jsonify({"detail": "Request was throttled."})
        resp.status_code = 429
        return resp
    return Response(HTML_504, status=504, mimetype="text/html")


def detail(message: str, status: int) -> tuple[Response, int]:
    return jsonify({"detail": message}), status


def create_app(
    data_dir: str | Path,
    *,
    api_key: str = "sandbox-api-key",
    country: str = "ES",
    config: dict[str, Any] | None = None,
) -> Flask:
    """Build the emulator. `config` is a `/_sandbox/config` body (faults, switches, clock) plus
    an optional `"auth": {"username", "password"}` that obtain_token then requires."""
    config = dict(config or {})
    problems = validate_switches(config.get("switches") or {})
    if problems:
        raise ValueError("; ".join(problems))
    state = SandboxState(api="clientify", switches=dict(DEFAULT_SWITCHES))
    state.update(config)
    store = Store(data_dir)
    auth: dict[str, str] = dict(config.get("auth") or {})

    app = Flask("clientify")
    app.json.sort_keys = False  # type: ignore[attr-defined]  # DRF keeps serializer order
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["clientify_store"] = store
    install(app, state, fault_response=fault_response)

    def now_us() -> int:
        return to_us(dt.datetime.now(dt.UTC) + state.clock.offset)

    def sw(name: str) -> Any:
        return state.switches[name]

    def renderer() -> Renderer:
        return Renderer(store, state.switches, request.host_url + API_PREFIX.lstrip("/"))

    # -- request pipeline -------------------------------------------------------------------
    @app.before_request
    def _check() -> Any:
        path = request.path
        if path.startswith(ADMIN_PREFIX):
            if path == "/_sandbox/config" and request.method == "POST":
                body = request.get_json(silent=True) or {}
                problems = validate_switches(body.get("switches") or {})
                if problems:
                    return jsonify({"error": "; ".join(problems)}), 400
            return None
        if not path.startswith(API_PREFIX):
            return None
        exc = request.routing_exception
        if isinstance(exc, RequestRedirect):
            # Django's APPEND_SLASH answers 301, which turns a POST into a GET: a client that
            # drops the trailing slash (§1) silently creates nothing.
            return redirect(exc.new_url, code=301)
        if request.url_rule is None and not isinstance(exc, MethodNotAllowed):
            return None  # HTML 404 from the error handler
        if request.endpoint == "obtain_token":
            return None
        return _authenticate()

    def _authenticate() -> Any:
        header = request.headers.get("Authorization", "")
        parts = header.split()
        if not parts or parts[0].lower() != "token":
            # §1: no Authorization header answers 404, not 401.
            return detail("Api key not provided.", 404)
        if len(parts) == 1:
            resp, status = detail("Invalid token header. No credentials provided.", 401)
        elif len(parts) > 2:
            resp, status = detail(
                "Invalid token header. Token string should not contain spaces.", 401
            )
        elif parts[1] != api_key:
            resp, status = detail("Invalid token.", 401)
        else:
            return None
        resp.headers["WWW-Authenticate"] = "Token"
        return resp, status

    @app.errorhandler(404)
    def _not_found(_: NotFound) -> Response:
        return Response(HTML_404, status=404, mimetype="text/html")

    @app.errorhandler(405)
    def _not_allowed(_: MethodNotAllowed) -> Any:
        if request.path.startswith(API_PREFIX):
            return detail(f'Method "{request.method}" not allowed.', 405)
        return Response("Method Not Allowed", status=405)

    # -- pagination (DRF PageNumberPagination) -------------------------------------------------
    def page_url(page: int | None) -> str:
        """DRF's replace_query_param: keep every parameter, set/remove `page`, sort keys."""
        pairs: dict[str, list[str]] = {}
        for key, values in request.args.lists():
            pairs[key] = list(values)
        if page is None:
            pairs.pop("page", None)
        else:
            pairs["page"] = [str(page)]
        query = urlencode(sorted(pairs.items()), doseq=True)
        return request.base_url + (f"?{query}" if query else "")

    def page_size() -> int | tuple[Response, int]:
        default = int(sw("default_page_size"))
        raw = request.args.get("page_size")
        if raw is None:
            return default
        try:
            size = int(raw)
        except ValueError:
            return default  # DRF falls back to the default on garbage
        if size <= 0:
            return default
        if size > MAX_PAGE_SIZE:
            if sw("page_size_above_max") == "400":
                return jsonify(
                    {"page_size": [f"Ensure this value is less than or equal to {MAX_PAGE_SIZE}."]}
                ), 400
            return MAX_PAGE_SIZE  # §2 INFERRED clamp
        return size

    def paginate(
        total: int, fetch: Callable[[int, int], list[dict[str, Any]]]
    ) -> Response | tuple[Response, int]:
        size = page_size()
        if not isinstance(size, int):
            return size
        pages = max(1, -(-total // size))
        raw = request.args.get("page", "1")
        try:
            number = pages if raw == "last" else int(raw)
        except ValueError:
            number = 0
        if number < 1 or number > pages:
            return detail("Invalid page.", 404)  # §2 CONFIRMED
        results = fetch(size, (number - 1) * size)
        return jsonify(
            {
                "count": total,
                "next": page_url(number + 1) if number < pages else None,
                "previous": (
                    None if number == 1 else page_url(None if number == 2 else number - 1)
                ),
                "results": results,
            }
        )

    def paginate_list(items: list[dict[str, Any]]) -> Response | tuple[Response, int]:
        return paginate(len(items), lambda limit, offset: items[offset : offset + limit])

    # -- auth and account ------------------------------------------------------------------------
    @app.post("/v1/api-auth/obtain_token/", endpoint="obtain_token")
    def obtain_token() -> Any:
        body = request.get_json(silent=True) if request.is_json else None
        data = body if isinstance(body, dict) else request.form.to_dict()
        errors = {}
        for key in ("username", "password"):
            if key not in data:
                errors[key] = [REQUIRED]
            elif not str(data[key]).strip():
                errors[key] = [BLANK]
        if errors:
            return jsonify(errors), 400
        if auth and (
            data["username"] != auth.get("username") or data["password"] != auth.get("password")
        ):
            return jsonify(
                {"non_field_errors": ["Unable to log in with provided credentials."]}
            ), 400
        return jsonify({"token": api_key})

    @app.get("/v1/settings/my-account/")
    def my_account() -> Any:
        # §6: results[0].country is the country phones are normalized by.
        account = {
            "language": "es",
            "country": country,
            "time_zone": "Europe/Madrid",
            "currency": "EUR",
            "currency_symbol": "€",
            "currency_format": 1,
            "hour_format": 1,
            "date_format": 1,
            "sub_brand": "",
        }
        return jsonify({"count": 1, "next": None, "previous": None, "results": [account]})

    @app.get("/v1/users/")
    def users() -> Any:
        user = {
            "url": f"{request.host_url}v1/users/{OWNER['id']}/",
            "id": OWNER["id"],
            "username": OWNER["email"],
            "email": OWNER["email"],
            "first_name": "Sandbox",
            "last_name": "Owner",
            "country": country,
            "language": "es",
            "is_active": True,
        }
        return paginate_list([user])

    # -- contacts --------------------------------------------------------------------------------
    def parse_filters() -> ContactFilter | tuple[Response, int]:
        args = request.args
        flt = ContactFilter(exact=sw("filter_match") == "exact")
        unknown = []
        for key in args:
            if key in KNOWN_FILTERS:
                continue
            if key.startswith("cf_") and sw("cf_filter"):
                value = args.get(key, "")
                if value != "":
                    flt.custom.append((key[3:], value))
                continue
            unknown.append(key)  # includes taxpayer_identification_number, search, ordering
        if unknown and sw("unknown_filter") == "400":
            return jsonify(
                {"detail": f"Unknown query parameters: {', '.join(sorted(unknown))}."}
            ), 400
        errors: dict[str, list[str]] = {}
        for name in DATE_FILTERS:
            for op in DATE_OPS:
                key = f"{name}[{op}]"
                raw = args.get(key)
                if raw is None or raw == "":
                    continue
                try:
                    when = parse_filter_value(raw, sw("naive_filter_tz"))
                except ValueError:
                    errors[key] = ["Enter a valid date/time."]
                    continue
                getattr(flt, name).append((op, to_us(when)))
        if errors:
            return jsonify(errors), 400
        if args.get("query"):
            flt.query = fold(args["query"]).split()
        for key in ("email", "phone", "tag", "contact_type", "contact_source"):
            if args.get(key):
                setattr(flt, key, args[key])
        return flt

    @app.get("/v1/contacts/")
    def list_contacts() -> Any:
        flt = parse_filters()
        if not isinstance(flt, ContactFilter):
            return flt
        rend = renderer()
        return paginate(
            store.count_contacts(flt),
            lambda limit, offset: rend.list_items(
                store.list_contacts(flt, sw("order"), limit, offset)
            ),
        )

    def create(body: Any, mode: str) -> Any:
        with store.lock:
            return _create(body, mode)

    def _create(body: Any, mode: str) -> Any:
        doc = new_document(OWNER)
        doc["id"] = store.next_id("contact")
        doc["_created_us"] = doc["_modified_us"] = now_us()
        if mode == "admin_create":
            doc["channel"] = "web"
        try:
            ContactWriter(store, state.switches, mode).apply(doc, body)
        except ValidationError as exc:
            return jsonify(exc.errors), 400
        except DuplicateTinError:
            return detail("A contact with this taxpayer identification number already exists.", 409)
        store.put_contact(doc)
        return jsonify(renderer().detail(doc)), 201

    def update(contact_id: int, body: Any, mode: str) -> Any:
        with store.lock:  # read-modify-write of one document
            return _update(contact_id, body, mode)

    def _update(contact_id: int, body: Any, mode: str) -> Any:
        doc = store.get_contact(contact_id)
        if doc is None:
            return detail("Not found.", 404)
        try:
            ContactWriter(store, state.switches, mode).apply(doc, body)
        except ValidationError as exc:
            return jsonify(exc.errors), 400
        doc["_modified_us"] = now_us()  # §3: modified moves on every write
        store.put_contact(doc)
        return jsonify(renderer().detail(doc))

    @app.post("/v1/contacts/")
    def create_contact() -> Any:
        return create(request.get_json(silent=True), "create")

    @app.get("/v1/contacts/<int:contact_id>/")
    def get_contact(contact_id: int) -> Any:
        doc = store.get_contact(contact_id)
        if doc is None:
            return detail("Not found.", 404)
        return jsonify(renderer().detail(doc))

    @app.route("/v1/contacts/<int:contact_id>/", methods=["PUT", "PATCH"])
    def update_contact(contact_id: int) -> Any:
        # §4: PUT is a partial update, like PATCH.
        return update(contact_id, request.get_json(silent=True), "update")

    @app.delete("/v1/contacts/<int:contact_id>/")
    def delete_contact(contact_id: int) -> Any:
        if not store.delete_contact(contact_id):
            return detail("Not found.", 404)
        return Response(status=204)

    # -- sub-resources (§4) ------------------------------------------------------------------
    def sub_items(doc: dict[str, Any], sub: str) -> list[dict[str, Any]]:
        return [dict(item) for item in doc.get(sub, [])]

    @app.get("/v1/contacts/<int:contact_id>/<any(emails,phones,addresses,tags):sub>/")
    def list_sub(contact_id: int, sub: str) -> Any:
        doc = store.get_contact(contact_id)
        if doc is None:
            return detail("Not found.", 404)
        return paginate_list(sub_items(doc, sub))

    @app.post("/v1/contacts/<int:contact_id>/<any(emails,phones,addresses,tags):sub>/")
    def add_sub(contact_id: int, sub: str) -> Any:
        with store.lock:
            return _add_sub(contact_id, sub)

    def _add_sub(contact_id: int, sub: str) -> Any:
        doc = store.get_contact(contact_id)
        if doc is None:
            return detail("Not found.", 404)
        body = request.get_json(silent=True)
        if sub == "tags":
            raw = body.get("name") if isinstance(body, dict) else None
            if not isinstance(body, dict) or "name" not in body:
                return jsonify({"name": [REQUIRED]}), 400
            name, err = clean_tag_name(raw)
            if err:
                return jsonify({"name": [err]}), 400
            item = next((t for t in doc["tags"] if t["name"] == name), None)
            if item is None:
                item = {"id": store.next_id("tag"), "name": name}
                doc["tags"].append(item)
        else:
            _, cleaner = LISTS[sub]
            cleaned, errors = cleaner(body, 1)
            if errors:
                return jsonify(errors), 400
            item = {"id": store.next_id(SUBRESOURCES[sub]), **cleaned}
            doc[sub].append(item)
        if sw("subresource_moves_modified"):  # §3: unknown live; default yes
            doc["_modified_us"] = now_us()
        store.put_contact(doc)
        return jsonify(item), 201

    @app.delete(
        "/v1/contacts/<int:contact_id>/<any(emails,phones,addresses,tags):sub>/<int:item_id>/"
    )
    def delete_sub(contact_id: int, sub: str, item_id: int) -> Any:
        with store.lock:
            return _delete_sub(contact_id, sub, item_id)

    def _delete_sub(contact_id: int, sub: str, item_id: int) -> Any:
        doc = store.get_contact(contact_id)
        if doc is None:
            return detail("Not found.", 404)
        kept = [item for item in doc[sub] if item["id"] != item_id]
        if len(kept) == len(doc[sub]):
            return detail("Not found.", 404)
        doc[sub] = kept
        if sw("subresource_moves_modified"):
            doc["_modified_us"] = now_us()
        store.put_contact(doc)
        return Response(status=204)

    # -- custom field definitions (§5) -----------------------------------------------------------
    @app.get("/v1/custom-fields/")
    def list_custom_fields() -> Any:
        rend = renderer()
        fields = [rend.custom_field_definition(f, USER_COMPANY) for f in store.custom_fields()]
        return paginate_list(fields)

    @app.get("/v1/custom-fields/<int:field_id>/")
    def get_custom_field(field_id: int) -> Any:
        for field in store.custom_fields():
            if field["id"] == field_id:
                return jsonify(renderer().custom_field_definition(field, USER_COMPANY))
        return detail("Not found.", 404)

    @app.post("/v1/custom-fields/")
    def create_custom_field() -> Any:
        if sw("custom_field_create") == "reject":  # §7: no API add-on / non-admin → 403
            return detail("You do not have permission to perform this action.", 403)
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            body = request.form.to_dict()
        errors: dict[str, list[str]] = {}
        name = body.get("name")
        if "name" not in body:
            errors["name"] = [REQUIRED]
        elif not isinstance(name, str) or not name.strip():
            errors["name"] = [BLANK]
        content_type = body.get("content_type")
        if content_type is None:
            errors["content_type"] = [REQUIRED]
        elif content_type not in ("contact", "contacts", "contacts | contact"):
            # §5 INFERRED body: these three name the contacts model.
            errors["content_type"] = [not_choice(content_type)]
        field_type = body.get("field_type", 3)
        if str(field_type).lower() not in ("3", "text"):
            errors["field_type"] = [not_choice(field_type)]
        if not errors and store.find_custom_field(str(name).strip()) is not None:
            errors["name"] = ["A custom field with this name already exists."]
        if errors:
            return jsonify(errors), 400
        field = store.add_custom_field(
            "contacts",
            str(name).strip(),
            help_text=str(body.get("help_text") or ""),
            default_value=str(body.get("default_value") or ""),
            visible=bool(body.get("visible", False)),
        )
        return jsonify(renderer().custom_field_definition(field, USER_COMPANY)), 201

    # -- admin: act as a CRM user in the web app ---------------------------------------------------
    @app.get("/_sandbox/contacts")
    def admin_list() -> Any:
        rend = renderer()
        docs = list(store.iter_contacts())
        names = store.company_names(d.get("company_id") for d in docs)
        return jsonify({"contacts": [rend.detail(d, names) for d in docs]})

    @app.get("/_sandbox/contacts/<int:contact_id>")
    def admin_get(contact_id: int) -> Any:
        doc = store.get_contact(contact_id)
        if doc is None:
            return jsonify({"error": "not found"}), 404
        return jsonify(renderer().detail(doc))

    @app.patch("/_sandbox/contacts/<int:contact_id>")
    def admin_patch(contact_id: int) -> Any:
        return update(contact_id, request.get_json(silent=True), "admin_update")

    @app.post("/_sandbox/contacts")
    def admin_create() -> Any:
        return create(request.get_json(silent=True), "admin_create")

    @app.delete("/_sandbox/contacts/<int:contact_id>")
    def admin_delete(contact_id: int) -> Any:
        if not store.delete_contact(contact_id):
            return jsonify({"error": "not found"}), 404
        return Response(status=204)

    @app.post("/_sandbox/seed")
    def admin_seed() -> Any:
        body = request.get_json(silent=True) or {}
        try:
            codes = parse_codes(body.get("linked_codes"))
            count = seed_contacts(
                store,
                contacts=int(body.get("contacts", 40)),
                seed=int(body.get("seed", 42)),
                now=dt.datetime.now(dt.UTC) + state.clock.offset,
                linked_codes=codes,
                with_link_field=bool(body.get("with_link_field", False)),
            )
        except (TypeError, ValueError) as exc:
            return jsonify({"error": str(exc)}), 400
        return jsonify({"ok": True, "contacts": count})

    @app.get("/_sandbox/custom-fields")
    def admin_custom_fields() -> Any:
        rend = renderer()
        return jsonify(
            {
                "custom_fields": [
                    rend.custom_field_definition(f, USER_COMPANY) for f in store.custom_fields()
                ]
            }
        )

    return app
