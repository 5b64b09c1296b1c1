"""The ASGI fast path for POST /api/v1/orders answers exactly like the DRF view."""

from __future__ import annotations

import json

import pytest
from asgiref.testing import ApplicationCommunicator
from django.test import override_settings

from apps.orders.placement.fastpath import OrderFastPath, host_allowed

from ..factories import make_listing, order_body

pytestmark = pytest.mark.django_db(transaction=True)


async def _passthrough(scope, receive, send):  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": 299, "headers": []})
    await send({"type": "http.response.body", "body": b"django"})


async def call(app, method: str, path: str, body: bytes = b"", headers: dict | None = None):  # type: ignore[no-untyped-def]
    hdrs = [(b"host", b"testserver")] + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "method": method, "path": path, "headers": hdrs, "scheme": "http", "query_string": b""}
    comm = ApplicationCommunicator(app, scope)
    await comm.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await comm.receive_output(10)
    out = await comm.receive_output(10)
    return start["status"], out["body"]


def _headers(token: str, **extra: str) -> dict:
    return {"Authorization": f"Token {token}", "Content-Type": "application/json", **extra}


async def test_fast_path_places_orders_like_the_drf_view(merchant, token, api):
    from asgiref.sync import sync_to_async

    listing = await sync_to_async(make_listing)(merchant, quota=3, limit=2)
    app = OrderFastPath(_passthrough, threads=2)
    status, raw = await call(
        app,
        "POST",
        "/api/v1/orders",
        json.dumps(order_body(listing.pk)).encode(),
        _headers(token, **{"Idempotency-Key": "fp1"}),
    )
    assert status == 201, raw
    fast = json.loads(raw)
    assert fast["status"] == "pending_payment" and fast["status_url"].startswith("http://testserver/o/")
    drf = await sync_to_async(
        lambda: api.post("/api/v1/orders", order_body(listing.pk, buyer="b2"), format="json").json()
    )()
    assert set(fast) == set(drf)
    assert fast["lines"][0].keys() == drf["lines"][0].keys() and fast["lines"][0]["sku"] == drf["lines"][0]["sku"]
    # the same key again replays the same order
    status, raw = await call(
        app,
        "POST",
        "/api/v1/orders",
        json.dumps(order_body(listing.pk)).encode(),
        _headers(token, **{"Idempotency-Key": "fp1"}),
    )
    assert status == 200 and json.loads(raw)["id"] == fast["id"]


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({"Content-Type": "application/json"}, b"{}", 401, "not_authenticated"),
        ({"Authorization": "Token nope", "Content-Type": "application/json"}, b"{}", 401, "authentication_failed"),
        ({"Content-Type": "text/plain"}, b"{}", 415, "unsupported_media_type"),
        ({"Content-Type": "application/json"}, b"{broken", 400, "malformed_request"),
        ({"Content-Type": "application/json"}, b'{"listing": "x"}', 400, "invalid"),
    ],
)
async def test_fast_path_errors_have_codes(token, headers, body, status, code):
    if "Authorization" not in headers and status != 401:
        headers = {**headers, "Authorization": f"Token {token}"}
    got, raw = await call(OrderFastPath(_passthrough, threads=1), "POST", "/api/v1/orders", body, headers)
    assert got == status and json.loads(raw)["code"] == code


async def test_fast_path_sold_out_is_409(merchant, token):
    from asgiref.sync import sync_to_async

    listing = await sync_to_async(make_listing)(merchant, quota=1)
    app = OrderFastPath(_passthrough, threads=1)
    await call(app, "POST", "/api/v1/orders", json.dumps(order_body(listing.pk, buyer="a")).encode(), _headers(token))
    status, raw = await call(
        app, "POST", "/api/v1/orders", json.dumps(order_body(listing.pk, buyer="b")).encode(), _headers(token)
    )
    assert status == 409 and json.loads(raw)["code"] == "sold_out"


async def test_everything_else_goes_to_django():
    app = OrderFastPath(_passthrough, threads=1)
    assert await call(app, "GET", "/api/v1/orders") == (299, b"django")
    assert await call(app, "POST", "/api/v1/orders/o1/cancel") == (299, b"django")


async def test_bad_host_is_400():
    status, raw = await call(
        OrderFastPath(_passthrough, threads=1), "POST", "/api/v1/orders", b"{}", {"Host": "evil.example"}
    )
    assert status == 400 and json.loads(raw)["code"] == "bad_host"


def test_a_remembered_host_is_checked_again_when_the_allowed_hosts_change():
    with override_settings(ALLOWED_HOSTS=["shop.example"]):
        assert host_allowed("shop.example") and host_allowed("shop.example:8443")
        assert not host_allowed("evil.example") and not host_allowed("")
    with override_settings(ALLOWED_HOSTS=["other.example"]):
        assert not host_allowed("shop.example")
        assert host_allowed("other.example")


def test_headers_are_read_as_djangos_asgi_handler_reads_them():
    """A repeated header is joined by "," and a name with "_" is dropped, as Django does: the
    fast path and the DRF view see the same Authorization, Idempotency-Key, Accept-Language."""
    import io

    from django.core.handlers.asgi import ASGIRequest

    from apps.orders.placement.fastpath import request_headers

    raw = [
        (b"host", b"testserver"),
        (b"Idempotency-Key", b"k-1"),
        (b"idempotency-key", b"k-2"),
        (b"idempotency_key", b"sneaky"),
        (b"accept-language", b"zh-hans"),
        (b"Accept-Language", b"en;q=0.5"),
        (b"authorization", b"Token abc"),
        (b"x_request_id", b"not-this-one"),
    ]
    scope = {"type": "http", "method": "POST", "path": "/api/v1/orders", "headers": raw, "query_string": b""}
    django = ASGIRequest(scope, io.BytesIO(b""))
    ours = request_headers(scope)
    for name in ("idempotency-key", "accept-language", "authorization", "host", "x-request-id"):
        assert ours.get(name) == django.headers.get(name), name
    assert ours["idempotency-key"] == "k-1,k-2" and "x-request-id" not in ours
