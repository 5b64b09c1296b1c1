"""The request signals of an order (issue 11, "Signals, captured on every order"): the buyer's IP,
device id and user agent, and the account's registration time, from the API's ``client`` block and
``buyer.registered_at`` (both entry points alike) or from the storefront's request, as they reach
``order_place``. Storing them and the risk script are not here yet."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client, RequestFactory, override_settings

from apps.core import middleware
from apps.core.client_ip import client_ip
from apps.orders import views
from apps.orders.models import Order
from apps.orders.placement import accept, handler
from apps.orders.placement.request import NO_CLIENT, ClientSignals, OrderRequest
from apps.orders.storefront_client import DEVICE_COOKIE

from ..factories import make_listing, order_body
from .test_bad_input import _drf, _fast, both

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def placed(monkeypatch) -> list[OrderRequest]:  # type: ignore[no-untyped-def]
    """Every OrderRequest that reaches ``order_place`` (from the API handler or the storefront),
    recorded on its way through to the real service."""
    seen: list[OrderRequest] = []
    real = handler.order_place

    def spy(*, req: OrderRequest, **kwargs: Any) -> Any:
        seen.append(req)
        return real(req=req, **kwargs)

    async def loop_spy(parsed: Any, *args: Any, **kwargs: Any) -> Any:  # accepted from the event loop
        seen.append(parsed.req)
        return await loop_real(parsed, *args, **kwargs)

    loop_real = accept.place
    monkeypatch.setattr(handler, "order_place", spy)
    monkeypatch.setattr(views, "order_place", spy)
    monkeypatch.setattr(accept, "place", loop_spy)
    return seen


def _with_signals(listing_id: int, buyer: str = "relayed") -> dict:
    body = order_body(listing_id, buyer=buyer)
    body["client"] = {
        "ip": " ::ffff:112.10.36.21 ",
        "device_id": "dy-did-5f0c8e2a",
        "user_agent": "Mozilla/5.0 aweme/29",
    }
    body["buyer"]["registered_at"] = "2024-03-02T10:15:00+08:00"
    return body


# --- API ---------------------------------------------------------------------------------------
def test_api_order_carries_the_relayed_client_and_registration_time(merchant, token, placed):
    listing = make_listing(merchant, quota=10, limit=5)
    raw = json.dumps(_with_signals(listing.pk)).encode()
    fast = _fast(token, raw, {"Idempotency-Key": "sig-fast"})
    drf = _drf(token, raw, {"Idempotency-Key": "sig-drf"})
    assert fast[0] == drf[0] == 201, (fast, drf)
    assert len(placed) == 2
    for req in placed:  # the same request reached order_place through either entry point
        assert req.client == ClientSignals(
            ip="112.10.36.21", device_id="dy-did-5f0c8e2a", user_agent="Mozilla/5.0 aweme/29"
        )
        assert req.buyer_registered_at == datetime(2024, 3, 2, 2, 15, tzinfo=UTC)
    assert Order.objects.count() == 2


def test_api_order_without_client_has_empty_signals_whatever_the_tools_request_says(merchant, token, placed):
    listing = make_listing(merchant, quota=10, limit=5)
    raw = json.dumps(order_body(listing.pk)).encode()
    headers = {"User-Agent": "streamer-tool/3.1", "X-Forwarded-For": "198.51.100.1", "Idempotency-Key": "k1"}
    assert _drf(token, raw, headers)[0] == 201
    assert _fast(token, raw, {**headers, "Idempotency-Key": "k2"})[0] == 201
    assert [(r.client, r.buyer_registered_at) for r in placed] == [(NO_CLIENT, None)] * 2


BAD_SIGNALS: list[tuple[str, Any, str]] = [
    ("client", "112.10.36.21", "client"),
    ("client", ["112.10.36.21"], "client"),
    ("client", {"ip": "not-an-ip"}, "client.ip"),
    ("client", {"ip": "1.2.3.256"}, "client.ip"),
    ("client", {"ip": "1.2.3.4/24"}, "client.ip"),
    ("client", {"ip": "fe80::1%eth0"}, "client.ip"),
    ("client", {"ip": 16909060}, "client.ip"),
    ("client", {"ip": "1.2.3.4", "imei": "86"}, "client.imei"),
    ("client", {"device_id": "设备"}, "client.device_id"),
    ("client", {"device_id": "a b"}, "client.device_id"),
    ("client", {"device_id": "x" * 129}, "client.device_id"),
    ("client", {"user_agent": "x" * 513}, "client.user_agent"),
    ("client", {"user_agent": "Mozilla\r\nX-Evil: 1"}, "client.user_agent"),
    ("client", {"user_agent": 5}, "client.user_agent"),
    ("buyer.registered_at", "2024-03-02", "buyer.registered_at"),
    ("buyer.registered_at", "2024-03-02T10:15:00", "buyer.registered_at"),  # no offset
    ("buyer.registered_at", "2024-02-30T10:15:00Z", "buyer.registered_at"),
    ("buyer.registered_at", "1999-12-31T23:59:59Z", "buyer.registered_at"),
    ("buyer.registered_at", "2100-01-01T00:00:00Z", "buyer.registered_at"),
    ("buyer.registered_at", "2098-01-01T00:00:00+08:00", "buyer.registered_at"),  # the future
    ("buyer.registered_at", 1709345700, "buyer.registered_at"),
]


@pytest.mark.parametrize(("where", "value", "field"), BAD_SIGNALS, ids=[f"{b[2]}={b[1]!r}"[:60] for b in BAD_SIGNALS])
def test_bad_signals_are_a_400_naming_the_field_on_both_entry_points(merchant, token, where, value, field):
    listing = make_listing(merchant, quota=10, limit=5)
    body = order_body(listing.pk)
    if where == "client":
        body["client"] = value
    else:
        body["buyer"]["registered_at"] = value
    status, answer = both(token, body, {"Idempotency-Key": "bad-signal"})
    assert status == 400 and answer["code"] == "invalid", answer
    assert field in answer["extra"]["fields"], answer
    assert Order.objects.count() == 0


def test_a_replay_with_another_client_block_is_the_same_order(merchant, token):
    """Decision: the signals are not the order's identity (``OrderRequest.fingerprint``): the same
    Idempotency-Key from another IP or device (a retry after a network switch) is the same order."""
    listing = make_listing(merchant, quota=10, limit=5)
    first = _with_signals(listing.pk)
    again = _with_signals(listing.pk)
    again["client"] = {"ip": "203.0.113.77", "device_id": "other"}
    del again["buyer"]["registered_at"]
    s1, b1, _ = _fast(token, json.dumps(first).encode(), {"Idempotency-Key": "replay"})
    raw = json.dumps(again).encode()
    s2, b2, _ = _fast(token, raw, {"Idempotency-Key": "replay"})
    s3, b3, _ = _drf(token, raw, {"Idempotency-Key": "replay"})
    assert (s1, s2, s3) == (201, 200, 200) and b1["id"] == b2["id"] == b3["id"]
    assert Order.objects.count() == 1


def test_the_schema_documents_client_and_registered_at(client: Client):
    served = client.get("/api/schema/?format=json").json()
    post = served["paths"]["/api/v1/orders"]["post"]["requestBody"]["content"]["application/json"]
    schema = post["schema"]
    assert set(schema["properties"]["client"]["properties"]) == {"ip", "device_id", "user_agent"}
    assert schema["properties"]["client"]["additionalProperties"] is False
    assert "client" not in schema["required"]
    assert schema["properties"]["buyer"]["properties"]["registered_at"]["format"] == "date-time"
    assert "registered_at" not in schema["properties"]["buyer"]["required"]
    examples = [e["value"] for e in post["examples"].values()]
    assert any("client" in e and "registered_at" in e["buyer"] for e in examples), examples


# --- the client's IP ----------------------------------------------------------------------------
def _req(xff: str | None = None, remote: str = "10.0.0.5") -> Any:
    extra = {"REMOTE_ADDR": remote}
    if xff is not None:
        extra["HTTP_X_FORWARDED_FOR"] = xff
    return RequestFactory().get("/", **extra)


@pytest.mark.parametrize(
    ("proxies", "xff", "remote", "want"),
    [
        (0, None, "10.0.0.5", "10.0.0.5"),
        (0, "198.51.100.1", "10.0.0.5", "10.0.0.5"),  # spoofed: not believed without proxies
        (0, "198.51.100.1, 203.0.113.9", "10.0.0.5", "10.0.0.5"),
        (1, "203.0.113.9", "10.0.0.5", "203.0.113.9"),
        (1, "6.6.6.6, 203.0.113.9", "10.0.0.5", "203.0.113.9"),  # the client wrote 6.6.6.6
        (2, "6.6.6.6, 203.0.113.9, 10.0.0.2", "10.0.0.5", "203.0.113.9"),
        (2, "203.0.113.9,10.0.0.2", "10.0.0.5", "203.0.113.9"),
        (2, "10.0.0.2", "10.0.0.5", "10.0.0.5"),  # fewer entries than proxies
        (1, "garbage", "10.0.0.5", "10.0.0.5"),
        (1, "6.6.6.6, 203.0.113.999", "10.0.0.5", "10.0.0.5"),
        (1, "", "10.0.0.5", "10.0.0.5"),
        (1, "203.0.113.9:51234", "10.0.0.5", "203.0.113.9"),
        (1, "[2001:DB8::9]:443", "10.0.0.5", "2001:db8::9"),
        (1, "::ffff:203.0.113.9", "10.0.0.5", "203.0.113.9"),
    ],
)
def test_client_ip_believes_x_forwarded_for_only_behind_trusted_proxies(proxies, xff, remote, want):
    with override_settings(TRUSTED_PROXY_COUNT=proxies):
        assert client_ip(_req(xff, remote)) == want


def test_login_throttle_ip_is_remote_addr_without_trusted_proxies():
    request = _req("198.51.100.1", "203.0.113.9")
    with override_settings(TRUSTED_PROXY_COUNT=0):
        assert middleware.client_ip(request) == "203.0.113.9"
    with override_settings(TRUSTED_PROXY_COUNT=1):
        assert middleware.client_ip(request) == "198.51.100.1"
        assert middleware.client_ip(_req("6.6.6.6, 198.51.100.1", "203.0.113.9")) == "198.51.100.1"


# --- storefront ---------------------------------------------------------------------------------
def _page(listing: Any) -> str:
    return f"/live/{listing.merchant.slug}/{listing.session_id}/"


def _buy(browser: Client, listing: Any, **extra: Any) -> Any:
    page = browser.get(_page(listing), **extra)
    assert page.status_code == 200
    form = {
        "listing": listing.pk,
        "quantity": 1,
        "name": "买家",
        "phone": "13911112222",
        "province": "浙江省",
        "city": "杭州市",
        "district": "",
        "detail": "文三路 1 号",
        "form_token": page.context["form_token"],
    }
    return browser.post(_page(listing), form, **extra)


def test_storefront_sets_the_device_cookie_once(merchant):
    listing = make_listing(merchant, quota=10, limit=5)
    browser = Client()
    first = browser.get(_page(listing))
    cookie = first.cookies[DEVICE_COOKIE]
    assert len(cookie.value) == 32 and int(cookie.value, 16) >= 0
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]
    assert cookie["max-age"] == 365 * 24 * 3600
    second = browser.get(_page(listing))
    assert DEVICE_COOKIE not in second.cookies  # kept, not renewed
    assert browser.cookies[DEVICE_COOKIE].value == cookie.value
    other = Client().get(_page(listing))
    assert other.cookies[DEVICE_COOKIE].value != cookie.value


def test_storefront_device_cookie_is_secure_on_https_and_a_malformed_one_is_replaced(merchant):
    listing = make_listing(merchant, quota=10, limit=5)
    assert Client().get(_page(listing), secure=True).cookies[DEVICE_COOKIE]["secure"]
    browser = Client()
    browser.cookies[DEVICE_COOKIE] = "not-a-device-id"
    fresh = browser.get(_page(listing)).cookies[DEVICE_COOKIE].value
    assert fresh != "not-a-device-id" and len(fresh) == 32


def test_storefront_order_carries_ip_device_and_user_agent(merchant, placed):
    listing = make_listing(merchant, quota=10, limit=5)
    browser = Client()
    ua = "Mozilla/5.0 (iPhone) " + "x" * 600
    with override_settings(TRUSTED_PROXY_COUNT=1):
        r = _buy(
            browser, listing, REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="6.6.6.6, 112.10.36.21", HTTP_USER_AGENT=ua
        )
    assert r.status_code == 303, r.content
    device = browser.cookies[DEVICE_COOKIE].value
    assert [req.client for req in placed] == [ClientSignals(ip="112.10.36.21", device_id=device, user_agent=ua[:512])]
    assert Order.objects.count() == 1


def test_storefront_ignores_a_spoofed_forwarded_for_without_trusted_proxies(merchant, placed):
    listing = make_listing(merchant, quota=10, limit=5)
    r = _buy(Client(), listing, REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="6.6.6.6", HTTP_USER_AGENT="UA\x07 1")
    assert r.status_code == 303
    assert placed[0].client.ip == "203.0.113.9"
    assert placed[0].client.user_agent == "UA 1"  # a control character dropped, not a refused order


def test_storefront_post_without_a_device_cookie_has_no_device(merchant, placed):
    """A first-party cookie only counts when the browser sent it back: a client that keeps no
    cookies (a script posting straight away) has no device id, and gets one offered."""
    listing = make_listing(merchant, quota=10, limit=5)
    browser = Client()
    page = browser.get(_page(listing))
    browser.cookies.pop(DEVICE_COOKIE)
    form = {
        "listing": listing.pk,
        "quantity": 1,
        "name": "买家",
        "phone": "13911113333",
        "province": "浙江省",
        "city": "杭州市",
        "district": "",
        "detail": "文三路 1 号",
        "form_token": page.context["form_token"],
    }
    r = browser.post(_page(listing), form)
    assert r.status_code == 303
    assert placed[0].client.device_id == ""
    assert DEVICE_COOKIE in r.cookies


# --- arrival time --------------------------------------------------------------------------------
def _asgi_post(app: Any, token: str, body: bytes, key: str) -> tuple[int, dict]:
    async def go():  # type: ignore[no-untyped-def]
        from asgiref.testing import ApplicationCommunicator

        hdrs = {
            "authorization": f"Token {token}",
            "content-type": "application/json",
            "content-length": str(len(body)),
            "idempotency-key": key,
        }
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "path": "/api/v1/orders",
            "raw_path": b"/api/v1/orders",
            "root_path": "",
            "headers": [(b"host", b"testserver")] + [(k.encode(), v.encode()) for k, v in hdrs.items()],
            "scheme": "http",
            "query_string": b"",
            "client": ("127.0.0.1", 5000),
            "server": ("testserver", 80),
        }
        comm = ApplicationCommunicator(app, scope)
        await comm.send_input({"type": "http.request", "body": body, "more_body": False})
        start = await comm.receive_output(20)
        chunks = []
        while True:
            msg = await comm.receive_output(20)
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        return start["status"], json.loads(b"".join(chunks))

    import asyncio

    return asyncio.run(go())


@pytest.mark.parametrize("entry", ["fast path", "django"])
def test_an_order_keeps_when_its_request_arrived_not_when_a_busy_server_wrote_it(merchant, token, monkeypatch, entry):
    """A request that waited for a thread keeps its arrival (stamped by the outermost ASGI app),
    so risk control times the buyer, not the server's queue (apps.core.arrival)."""
    import time as _time

    from django.core.asgi import get_asgi_application

    from apps.core.arrival import ArrivalStamp
    from apps.fraud.scoring import order_facts
    from apps.orders.models import OrderSignals
    from apps.orders.placement.fastpath import OrderFastPath

    listing = make_listing(merchant, quota=10, limit=5)
    real = handler.order_place

    def slow(*, req: OrderRequest, **kwargs: Any) -> Any:
        _time.sleep(0.4)  # the queue for a worker thread (or SQLite's write lock) in a burst
        return real(req=req, **kwargs)

    monkeypatch.setattr(handler, "order_place", slow)
    django_app = get_asgi_application()
    app = ArrivalStamp(OrderFastPath(django_app, threads=1) if entry == "fast path" else django_app)
    before = datetime.now(UTC)
    raw = json.dumps(_with_signals(listing.pk)).encode()
    status, body = _asgi_post(app, token, raw, f"arrive-{entry.replace(' ', '-')}")
    assert status == 201, body
    order = Order.objects.get(public_id=body["id"])
    signals = OrderSignals.objects.get(order=order)
    assert signals.received_at is not None
    assert before <= signals.received_at <= order.created_at
    assert (order.created_at - signals.received_at).total_seconds() >= 0.35
    facts = order_facts(order, signals)  # the detector's clock is the arrival
    assert facts.placed_ms == int(signals.received_at.timestamp() * 1000)
    assert facts.since_open_ms == facts.placed_ms - int(order.listing.opens_at.timestamp() * 1000)


def test_an_order_from_a_server_that_stamps_nothing_is_timed_by_its_row(merchant, token):
    from apps.fraud.scoring import order_facts
    from apps.orders.models import OrderSignals

    listing = make_listing(merchant, quota=10, limit=5)
    status, body, _ = _drf(token, json.dumps(_with_signals(listing.pk)).encode(), {"Idempotency-Key": "wsgi"})
    assert status == 201, body
    order = Order.objects.get(public_id=body["id"])
    signals = OrderSignals.objects.get(order=order)
    assert signals.received_at is None  # the test client is no ASGI server
    assert order_facts(order, signals).placed_ms == int(order.created_at.timestamp() * 1000)
