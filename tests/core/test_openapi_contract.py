"""The served OpenAPI schema against what the API really does (issue 10: "every error code each
endpoint can answer", realistic examples, a token scheme Swagger UI accepts as is).

- Every error code of the registry (``apps.core.error_codes``) that API endpoints answer is
  documented on at least one endpoint, each documented code is in the registry at its status,
  and every code raised anywhere in ``apps/`` is in the registry.
- A table of real bad requests: the code each answers is among the codes documented for that
  endpoint and status, and the body validates against the documented schema.
- ``docs/api.md``'s reference table is the registry's.
- The examples validate against their schemas, and the order and payment examples, sent to the
  API as they are, succeed.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from apps.catalog import services as catalog
from apps.catalog.models import Listing
from apps.core import api_policy, exception_handler
from apps.core.error_codes import ENDPOINT_ERRORS, ERROR_CODES, REQUEST_LEVEL, markdown_table
from apps.fulfilment.services import carrier_account_create
from apps.orders.models import Order, Payment
from apps.orders.services.transitions import order_cancel

from ..factories import ProductFactory, make_listing, make_session, make_sku, order_body
from ..orders.test_bad_input import _fast

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "/api/v1"
METHODS = {"get", "post", "patch", "put", "delete"}


def served_schema() -> dict[str, Any]:
    response = Client().get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def schema() -> dict[str, Any]:
    return served_schema()


# --- OpenAPI 3.0 schema -> JSON Schema, to validate bodies and examples --------------------------
def to_json_schema(node: Any, root: dict[str, Any], depth: int = 0) -> Any:
    """Inline ``$ref``s and turn OpenAPI's ``nullable`` into JSON Schema's null type."""
    assert depth < 40, "a recursive schema: this helper does not handle one"
    if isinstance(node, list):
        return [to_json_schema(n, root, depth + 1) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].removeprefix("#/components/schemas/")
        return to_json_schema(root["components"]["schemas"][name], root, depth + 1)
    out = {k: to_json_schema(v, root, depth + 1) for k, v in node.items() if k not in ("nullable", "example")}
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def validate(instance: Any, openapi_schema: dict[str, Any], root: dict[str, Any]) -> None:
    jsonschema.validate(instance, to_json_schema(openapi_schema, root), format_checker=jsonschema.FormatChecker())


def operations(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``"METHOD /path"`` (without the /api/v1 prefix) -> the operation."""
    return {
        f"{method.upper()} {path.removeprefix(PREFIX)}": op
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def documented_codes(op: dict[str, Any], status: int) -> list[str]:
    response = op["responses"].get(str(status))
    if response is None:
        return []
    narrowing = response["content"]["application/json"]["schema"]["allOf"][1]
    return narrowing["properties"]["code"]["enum"]


API_CODES = {code for code, spec in ERROR_CODES.items() if not spec.where}


# --- the token scheme -----------------------------------------------------------------------------
def swagger_ui_authorization(scheme: dict[str, Any], pasted: str) -> tuple[str, str]:
    """The header Swagger UI sends after a user pastes ``pasted`` into the Authorize dialog for
    ``scheme`` (swagger-ui's ``auth`` plugin: an http bearer scheme prefixes "Bearer ", an
    apiKey scheme sends the value as typed)."""
    if scheme["type"] == "http" and scheme["scheme"].lower() == "bearer":
        return "Authorization", f"Bearer {pasted}"
    if scheme["type"] == "apiKey" and scheme["in"] == "header":
        return scheme["name"], pasted
    raise AssertionError(f"a scheme Swagger UI cannot fill from a pasted token: {scheme}")


def test_the_token_scheme_is_http_bearer(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["MerchantToken"]["type"] == "http" and schemes["MerchantToken"]["scheme"] == "bearer"
    secured = [op for op in operations(schema).values() if op.get("security")]
    assert secured and all(op["security"] == [{"MerchantToken": []}] for op in secured)


def test_a_token_pasted_into_swagger_ui_authenticates_every_entry_point(schema, merchant, token):
    header, value = swagger_ui_authorization(schema["components"]["securitySchemes"]["MerchantToken"], token)
    meta = {f"HTTP_{header.upper().replace('-', '_')}": value}
    listing = make_listing(merchant, quota=5, limit=2)
    assert Client().get("/api/v1/listings", **meta).status_code == 200
    drf = Client().post(
        "/api/v1/orders", json.dumps(order_body(listing.pk, buyer="swagger")), "application/json", **meta
    )
    assert drf.status_code == 201, drf.json()
    fast = _fast(token, json.dumps(order_body(listing.pk, buyer="swagger-2")).encode(), {header: value})
    assert fast[0] == 201, fast
    # the other spelling still works, and a wrong token is still refused
    assert Client().get("/api/v1/listings", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    assert Client().get("/api/v1/listings", HTTP_AUTHORIZATION="Bearer not-a-token").status_code == 401


# --- the registry and the documented codes --------------------------------------------------------
def test_every_api_code_is_documented_on_some_endpoint_and_nothing_else_is(schema):
    documented: set[str] = set()
    for endpoint, op in operations(schema).items():
        for status in op["responses"]:
            if int(status) < 400:
                continue
            codes = documented_codes(op, int(status))
            assert codes, (endpoint, status)
            for code in codes:
                assert code in API_CODES, (endpoint, code)
                assert ERROR_CODES[code].status == int(status), (endpoint, code, status)
            documented |= set(codes)
    assert documented == API_CODES, {"undocumented": API_CODES - documented}


def test_the_endpoint_mapping_names_exactly_the_schemas_endpoints(schema):
    assert set(operations(schema)) == set(ENDPOINT_ERRORS)
    for endpoint, codes in ENDPOINT_ERRORS.items():
        assert set(codes) <= API_CODES, (endpoint, set(codes) - API_CODES)
    assert set(REQUEST_LEVEL) <= set(ERROR_CODES)
    for code in REQUEST_LEVEL:
        assert f"`{code}`" in schema["info"]["description"]


def test_every_error_response_has_one_valid_example_per_code(schema):
    for endpoint, op in operations(schema).items():
        for status, response in op["responses"].items():
            if int(status) < 400:
                continue
            media = response["content"]["application/json"]
            assert set(media["examples"]) == set(documented_codes(op, int(status))), endpoint
            for code, example in media["examples"].items():
                assert example["value"]["code"] == code
                validate(example["value"], media["schema"], schema)
                assert set(example["value"]["extra"]) <= set(ERROR_CODES[code].extra_keys), (endpoint, code)
        assert op["responses"].get("503", {}).get("headers", {}).get("Retry-After"), endpoint


# Codes that appear in the source but are never answered by anything (each with why).
NOT_ANSWERED = {
    "error": "ApplicationError's default: every raise names its code",
    "conflict": "Conflict's default: every subclass names its code",
    "out_of_range": "a form field's validation code, answered inside `invalid`",
    "request_timeout": "ApiPolicyMiddleware's name for a 408, which nothing in the app answers",
    "bad_gateway": "ApiPolicyMiddleware's name for a 502, which nothing in the app answers",
    "throttled": "no throttle is configured (asserted below)",
    "permission_denied": "IsMerchantToken refuses no valid token; with staff roles on tokens, register it (403)",
}
_RAISED = [
    re.compile(r"""\bcode\s*=\s*["']([a-z_]+)["']"""),
    re.compile(r"""_error\(\s*\d+\s*,\s*["']([a-z_]+)["']"""),
    re.compile(r"""\berror\(\s*\d+\s*,\s*["']([a-z_]+)["']"""),  # eventloop.error(...), the loop's answers
]


def test_every_code_the_code_can_answer_is_in_the_registry():
    found: dict[str, str] = {}
    for path in (ROOT / "apps").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        if "platforms" in path.parts and {"protocol", "simulator"} & set(path.parts):
            continue  # the platforms' own error codes: what their APIs answer us, never what ours answers
        if "fulfilment" in path.parts and {"carriers", "clients", "simulator"} & set(path.parts):
            continue  # the carriers' codes (and our transport's names for their failures), never answered by our API
        if "notifications" in path.parts and {"providers", "clients"} & set(path.parts):
            continue  # the SMS provider's codes and our transport's names for its failures, never answered either
        text = path.read_text()
        for pattern in _RAISED:
            for code in pattern.findall(text):
                found.setdefault(code, str(path.relative_to(ROOT)))
    for code in [*exception_handler._CODES.values(), *api_policy._STATUS_CODES.values()]:
        found.setdefault(code, "the error handlers")
    missing = {code: where for code, where in found.items() if code not in ERROR_CODES and code not in NOT_ANSWERED}
    assert not missing, f"codes answered but not in apps/core/error_codes.py: {missing}"
    assert not settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_CLASSES"), "throttling answers `throttled`: register it"
    assert set(found) >= {"sold_out", "bad_host", "invalid_cursor", "unknown_parameter"}  # the scan sees them


def test_docs_api_md_has_the_registrys_reference_table():
    text = (ROOT / "docs" / "api.md").read_text()
    assert markdown_table() in text, "regenerate: python -c 'from apps.core.error_codes import markdown_table'"
    section = text.split("## Error codes", 1)[1]
    table_codes = set(re.findall(r"^\| \d{3} \| `([a-z_]+)` \|", section, flags=re.M))
    assert table_codes == set(ERROR_CODES)


# --- real bad requests answer documented codes ----------------------------------------------------
def _sign(raw: bytes, ts: int) -> str:
    """As the endpoint's description says: hex HMAC-SHA256 of "{timestamp}.{raw body}"."""
    return hmac.new(settings.PAYMENT_WEBHOOK_SECRET.encode(), f"{ts}.".encode() + raw, hashlib.sha256).hexdigest()


def _notify(client: Client, body: bytes, *, ts: int | None = None, sig: str | None = None) -> Any:
    ts = int(time.time()) if ts is None else ts
    return client.post(
        "/api/v1/payments/notify",
        body,
        content_type="application/json",
        HTTP_X_TIMESTAMP=str(ts),
        HTTP_X_SIGNATURE=_sign(body, ts) if sig is None else sig,
    )


def _payment(order: str, txn: str, amount: str = "9.90") -> bytes:
    return json.dumps(
        {"order": order, "transaction_id": txn, "amount": amount, "paid_at": "2026-06-18T20:04:12+08:00"}
    ).encode()


@pytest.fixture
def world(merchant, token):  # type: ignore[no-untyped-def]
    """A merchant's catalogue in every state the table needs, and clients."""
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    open_listing = make_listing(merchant, quota=2, on_hand=2, limit=1)
    sku = make_sku(merchant, on_hand=10, code="TAKEN-01")
    ended = make_session(merchant, "Ended show")
    closed = make_listing(merchant, quota=1, session=ended)
    catalog.session_end(session=ended)
    closed.refresh_from_db()
    assert closed.status == Listing.Status.CLOSED
    placed = api.post("/api/v1/orders", order_body(open_listing.pk, buyer="w1"), format="json")
    assert placed.status_code == 201, placed.json()
    reserved_sku = open_listing.sku  # its 2 units end held by orders
    cancelled = api.post("/api/v1/orders", order_body(open_listing.pk, buyer="w2"), format="json").json()
    order_cancel(order=Order.objects.get(public_id=cancelled["id"]), actor="test", reason="test")
    last = api.post("/api/v1/orders", order_body(open_listing.pk, buyer="w3"), format="json")
    assert last.status_code == 201, last.json()  # the unit the cancel freed: now sold out
    paid_txn = "txn-already-used"
    assert _notify(Client(), _payment(placed.json()["id"], paid_txn)).status_code == 200
    return {
        "api": api,
        "listing": open_listing,
        "sku": sku,
        "reserved_sku": reserved_sku,
        "ended": ended,
        "closed": closed,
        "order": placed.json()["id"],
        "cancelled": cancelled["id"],
        "paid_txn": paid_txn,
        "product": ProductFactory(merchant=merchant),
        "carrier_account": carrier_account_create(
            merchant=merchant,
            carrier="kdniao",
            app_id="1700001",
            app_key="k",
            express="SF",
            sender={
                "name": "仓",
                "mobile": "13800000001",
                "province": "浙江省",
                "city": "杭州市",
                "district": "余杭区",
                "detail": "文一西路1号",
            },  # fmt: skip
        ),
    }


# (what, endpoint as documented, how to send it given the world) -> the code it must answer
Send = Callable[[dict[str, Any]], Any]
CASES: list[tuple[str, str, Send, str]] = [
    ("no token", "GET /products", lambda w: APIClient().get("/api/v1/products"), "not_authenticated"),
    (
        "unknown token",
        "GET /products",
        lambda w: APIClient().get("/api/v1/products", HTTP_AUTHORIZATION="Bearer nope"),
        "authentication_failed",
    ),
    ("misspelt filter", "GET /orders", lambda w: w["api"].get("/api/v1/orders?staus=paid"), "unknown_parameter"),
    ("bad filter value", "GET /listings", lambda w: w["api"].get("/api/v1/listings?session=abc"), "invalid"),
    ("page past the end", "GET /orders", lambda w: w["api"].get("/api/v1/orders?page=99"), "not_found"),
    (
        "foreign cursor",
        "GET /orders/changes",
        lambda w: w["api"].get("/api/v1/orders/changes?cursor=zzz"),
        "invalid_cursor",
    ),
    (
        "bad updated_since",
        "GET /orders/changes",
        lambda w: w["api"].get("/api/v1/orders/changes?updated_since=yesterday"),
        "invalid",
    ),
    ("no such SKU", "GET /skus/{id}", lambda w: w["api"].get("/api/v1/skus/99999"), "not_found"),
    ("no such order", "GET /orders/{id}", lambda w: w["api"].get("/api/v1/orders/nope"), "not_found"),
    (
        "asks for HTML",
        "GET /products",
        lambda w: w["api"].get("/api/v1/products", HTTP_ACCEPT="text/html"),
        "not_acceptable",
    ),
    (
        "text body",
        "POST /products",
        lambda w: w["api"].post("/api/v1/products", "x", content_type="text/plain"),
        "unsupported_media_type",
    ),
    (
        "broken JSON",
        "POST /products",
        lambda w: w["api"].post("/api/v1/products", "{", content_type="application/json"),
        "malformed_request",
    ),
    ("no name", "POST /products", lambda w: w["api"].post("/api/v1/products", {}, format="json"), "invalid"),
    (
        "SKU code taken",
        "POST /skus",
        lambda w: w["api"].post(
            "/api/v1/skus",
            {"product": w["product"].pk, "code": "TAKEN-01", "price": "9.90", "on_hand": 1},
            format="json",
        ),
        "duplicate_code",
    ),
    (
        "on hand below what orders hold",
        "PATCH /skus/{id}",
        lambda w: w["api"].patch(f"/api/v1/skus/{w['reserved_sku'].pk}", {"on_hand": 0}, format="json"),
        "insufficient_stock",
    ),
    (
        "a receipt that removes stock",
        "POST /skus/{id}/stock",
        lambda w: w["api"].post(
            f"/api/v1/skus/{w['sku'].pk}/stock", {"delta": -1, "reason": "x", "kind": "receive"}, format="json"
        ),
        "invalid_stock_change",
    ),
    (
        "stock over the maximum",
        "POST /skus/{id}/stock",
        lambda w: w["api"].post(
            f"/api/v1/skus/{w['sku'].pk}/stock", {"delta": 9_999_999, "reason": "x"}, format="json"
        ),
        "stock_limit",
    ),
    (
        "stock below what orders hold",
        "POST /skus/{id}/stock",
        lambda w: w["api"].post(
            f"/api/v1/skus/{w['reserved_sku'].pk}/stock", {"delta": -2, "reason": "x"}, format="json"
        ),
        "insufficient_stock",
    ),
    (
        "quota over supply",
        "POST /listings",
        lambda w: w["api"].post(
            "/api/v1/listings",
            {"session": w["listing"].session_id, "sku": w["sku"].pk, "price": "9.90", "quota": 11},
            format="json",
        ),
        "quota_exceeds_supply",
    ),
    (
        "listing on an ended show",
        "POST /listings",
        lambda w: w["api"].post(
            "/api/v1/listings",
            {"session": w["ended"].pk, "sku": w["sku"].pk, "price": "9.90", "quota": 1},
            format="json",
        ),
        "session_ended",
    ),
    (
        "change a closed listing",
        "PATCH /listings/{id}",
        lambda w: w["api"].patch(f"/api/v1/listings/{w['closed'].pk}", {"quota": 1}, format="json"),
        "invalid_listing_state",
    ),
    (
        "reopen a listing of an ended show",
        "POST /listings/{id}/open",
        lambda w: w["api"].post(f"/api/v1/listings/{w['closed'].pk}/open"),
        "session_ended",
    ),
    (
        "change an ended show",
        "PATCH /sessions/{id}",
        lambda w: w["api"].patch(f"/api/v1/sessions/{w['ended'].pk}", {"title": "x"}, format="json"),
        "session_ended",
    ),
    (
        "start an ended show",
        "POST /sessions/{id}/start",
        lambda w: w["api"].post(f"/api/v1/sessions/{w['ended'].pk}/start"),
        "session_ended",
    ),
    (
        "quantity zero",
        "POST /orders",
        lambda w: w["api"].post("/api/v1/orders", order_body(w["listing"].pk, quantity=0), format="json"),
        "invalid",
    ),
    (
        "over the buyer's limit",
        "POST /orders",
        lambda w: w["api"].post("/api/v1/orders", order_body(w["listing"].pk, buyer="w1"), format="json"),
        "over_buyer_limit",
    ),
    (
        "sold out",
        "POST /orders",
        lambda w: w["api"].post("/api/v1/orders", order_body(w["listing"].pk, buyer="late"), format="json"),
        "sold_out",
    ),
    (
        "closed listing",
        "POST /orders",
        lambda w: w["api"].post("/api/v1/orders", order_body(w["closed"].pk), format="json"),
        "listing_closed",
    ),
    (
        "unknown listing",
        "POST /orders",
        lambda w: w["api"].post("/api/v1/orders", order_body(999_999), format="json"),
        "listing_not_found",
    ),
    (
        "bad Idempotency-Key",
        "POST /orders",
        lambda w: w["api"].post(
            "/api/v1/orders", order_body(w["listing"].pk), format="json", HTTP_IDEMPOTENCY_KEY="sp ace"
        ),
        "invalid_idempotency_key",
    ),
    (
        "order body over 64 KiB",
        "POST /orders",
        lambda w: w["api"].post("/api/v1/orders", "[" + "1," * 40_000 + "1]", content_type="application/json"),
        "payload_too_large",
    ),
    (
        "order body as text",
        "POST /orders",
        lambda w: w["api"].post("/api/v1/orders", "x", content_type="text/plain"),
        "unsupported_media_type",
    ),
    (
        "cancel a cancelled order",
        "POST /orders/{id}/cancel",
        lambda w: w["api"].post(f"/api/v1/orders/{w['cancelled']}/cancel", {}, format="json"),
        "invalid_transition",
    ),
    (
        "carrier account with no sender",
        "POST /carrier-accounts",
        lambda w: w["api"].post(
            "/api/v1/carrier-accounts",
            {"carrier": "kdniao", "app_id": "1700001", "app_key": "k", "express": "SF"},
            format="json",
        ),
        "invalid",
    ),
    (
        "carrier account on an ftp gateway",
        "PATCH /carrier-accounts/{id}",
        lambda w: w["api"].patch(
            f"/api/v1/carrier-accounts/{w['carrier_account'].pk}", {"api_base_url": "ftp://x"}, format="json"
        ),
        "invalid_url",
    ),
    (
        "unsigned notification",
        "POST /payments/notify",
        lambda w: Client().post("/api/v1/payments/notify", _payment(w["order"], "t1"), "application/json"),
        "signature_invalid",
    ),
    (
        "notification signed an hour ago",
        "POST /payments/notify",
        lambda w: _notify(Client(), _payment(w["order"], "t2"), ts=int(time.time()) - 3600),
        "timestamp_stale",
    ),
    (
        "notification not JSON",
        "POST /payments/notify",
        lambda w: _notify(Client(), b"{"),
        "malformed_request",
    ),
    (
        "notification without an amount",
        "POST /payments/notify",
        lambda w: _notify(Client(), json.dumps({"order": w["order"], "transaction_id": "t3"}).encode()),
        "invalid",
    ),
    (
        "notification for no order",
        "POST /payments/notify",
        lambda w: _notify(Client(), _payment("nope", "t4")),
        "order_not_found",
    ),
    (
        "notification with the wrong amount",
        "POST /payments/notify",
        lambda w: _notify(Client(), _payment(w["order"], "t5", amount="1.00")),
        "amount_mismatch",
    ),
    (
        "a transaction id used for another order",
        "POST /payments/notify",
        lambda w: _notify(Client(), _payment(w["cancelled"], w["paid_txn"])),
        "transaction_id_reused",
    ),
    (
        "notification over 64 KiB",
        "POST /payments/notify",
        lambda w: _notify(Client(), b'{"pad": "' + b"x" * 70_000 + b'"}'),
        "payload_too_large",
    ),
]


def test_real_bad_requests_answer_codes_their_endpoint_documents(schema, world):
    ops = operations(schema)
    answered: set[str] = set()
    for what, endpoint, send, code in CASES:
        response = send(world)
        body = response.json()
        assert body.get("code") == code, (what, response.status_code, body)
        op = ops[endpoint]
        assert code in documented_codes(op, response.status_code), (what, endpoint, response.status_code, code)
        media = op["responses"][str(response.status_code)]["content"]["application/json"]
        validate(body, media["schema"], schema)
        assert set(body["extra"]) <= set(ERROR_CODES[code].extra_keys), (what, body)
        answered.add(code)
    # the table reaches most of the registry: keep it so when codes are added
    assert len(answered) >= 25, sorted(API_CODES - answered)


# --- examples -------------------------------------------------------------------------------------
def _all_examples(schema: dict[str, Any]) -> list[tuple[str, Any, dict[str, Any]]]:
    found = []
    for endpoint, op in operations(schema).items():
        media_types = list(op.get("requestBody", {}).get("content", {}).values())
        media_types += [m for r in op["responses"].values() for m in r.get("content", {}).values()]
        for media in media_types:
            for name, example in media.get("examples", {}).items():
                found.append((f"{endpoint} {name}", example["value"], media["schema"]))
    return found


def test_every_example_in_the_schema_validates_against_its_schema(schema):
    found = _all_examples(schema)
    assert len(found) > 100  # every error response has its examples, and the endpoints theirs
    for where, value, media_schema in found:
        try:
            validate(value, media_schema, schema)
        except jsonschema.ValidationError as exc:
            raise AssertionError(f"{where}: {exc.message}") from None


def _example(op: dict[str, Any], name: str, *, status: str | None = None) -> Any:
    media = op["responses"][status]["content"] if status else op["requestBody"]["content"]
    return media["application/json"]["examples"][name]["value"]


def test_the_order_example_posted_as_documented_places_the_order_it_shows(schema, merchant, token):
    op = operations(schema)["POST /orders"]
    body = copy.deepcopy(_example(op, "FlashSaleOrder"))
    key = next(p for p in op["parameters"] if p["name"] == "Idempotency-Key")["examples"]
    key = next(iter(key.values()))["value"]
    sku = make_sku(merchant, on_hand=300, price="89.00", code="LIP-RED-01")
    listing = make_listing(merchant, quota=300, limit=2, price="89.00", sku=sku)
    body["listing"] = listing.pk  # the one thing that depends on the database
    header, value = swagger_ui_authorization(schema["components"]["securitySchemes"]["MerchantToken"], token)
    meta = {f"HTTP_{header.upper()}": value, "HTTP_IDEMPOTENCY_KEY": key}
    response = Client().post("/api/v1/orders", json.dumps(body, ensure_ascii=False), "application/json", **meta)
    assert response.status_code == 201, response.json()
    placed = response.json()
    validate(placed, op["responses"]["201"]["content"]["application/json"]["schema"], schema)
    shown = _example(op, "Placed", status="201")
    assert set(placed) == set(shown)
    for field in ("status", "channel", "buyer", "total", "currency", "shipping_address", "refund_due", "version"):
        assert placed[field] == shown[field], field
    assert [
        {k: v for k, v in line.items() if k != "listing" and k not in ("sku_name", "product_name")}
        for line in placed["lines"]
    ] == [
        {k: v for k, v in line.items() if k != "listing" and k not in ("sku_name", "product_name")}
        for line in shown["lines"]
    ]
    again = Client().post("/api/v1/orders", json.dumps(body, ensure_ascii=False), "application/json", **meta)
    assert again.status_code == 200 and again.json()["id"] == placed["id"]  # the documented retry

    # the payment example, for this order, signed as the description says: the order is paid
    notify = operations(schema)["POST /payments/notify"]
    assert "HMAC-SHA256" in notify["description"] and "X-Signature" in notify["description"]
    payment = {**_example(notify, "Payment"), "order": placed["id"]}
    raw = json.dumps(payment).encode()
    answer = _notify(Client(), raw)
    assert answer.status_code == 200, answer.json()
    assert answer.json() == {**_example(notify, "Applied", status="200"), "order": placed["id"]}
    assert Payment.objects.get(transaction_id=payment["transaction_id"]).order.public_id == placed["id"]
    assert _notify(Client(), raw).json() == answer.json()  # a redelivery: the same answer, no second effect
    assert Payment.objects.count() == 1

    # the order list example has the real list's shape
    listed = Client().get("/api/v1/orders", HTTP_AUTHORIZATION=value).json()
    shown_list = _example(operations(schema)["GET /orders"], "Paid", status="200")
    assert set(listed) == set(shown_list) and set(listed["results"][0]) == set(shown_list["results"][0])
    validate(
        listed, operations(schema)["GET /orders"]["responses"]["200"]["content"]["application/json"]["schema"], schema
    )


def test_the_codes_answered_before_any_endpoint_are_the_described_ones(schema, api):
    """Not under an endpoint (no operation sees these requests), so the description lists them."""
    answers = {
        "bad_request": api.get("/api/v1/products", HTTP_HOST="evil.example"),
        "method_not_allowed": api.put("/api/v1/products", {}, format="json"),
    }
    big = json.dumps({"name": "x", "description": "y" * 3_000_000})
    answers["bad_request (body)"] = api.post("/api/v1/products", big, content_type="application/json")
    for what, response in answers.items():
        code = response.json()["code"]
        assert what.startswith(code), (what, response.json())
        assert code in REQUEST_LEVEL and ERROR_CODES[code].status == response.status_code
        assert f"`{code}`" in schema["info"]["description"]
    assert "GET" in answers["method_not_allowed"]["Allow"]
