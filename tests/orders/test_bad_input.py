"""Bad input gets a clear 4xx with a machine-readable code, never a 500, and changes nothing
(DESIGN.md invariant 8). Every order request here goes through BOTH entry points of
``POST /api/v1/orders`` (the DRF view through Django's stack, and the ASGI fast path) and the two
must answer with the same status and the same body."""

from __future__ import annotations

import json
import time

import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from rest_framework.test import APIClient

from apps.catalog.models import Listing
from apps.core.phone import normalize_cn_mobile, normalize_phone
from apps.core.redis import close_async_client
from apps.inventory.models import Stock, StockMovement
from apps.orders.models import Buyer, Order, Payment
from apps.orders.placement.fastpath import OrderFastPath
from apps.orders.services import payments

from ..factories import make_listing, make_session, make_sku, order_body
from .test_fastpath import _passthrough

pytestmark = pytest.mark.django_db(transaction=True)


def _fast(
    token: str,
    body: bytes,
    headers: dict | None = None,
    *,
    event_loop: bool | None = None,
    hops: list[str] | None = None,
) -> tuple[int, dict, dict]:
    """POST through the ASGI fast path: its event loop first (``event_loop``: the setting's
    default; False: straight to a worker thread). ``hops`` collects what the worker pool was
    given to run (``_handle``, ``_handle_parsed``: the answer; ``_side_effect``: a refusal's
    follow-up, in the side pool); the refusal's background work has finished when this returns."""
    hdrs = {"Authorization": f"Token {token}", "Content-Type": "application/json", **(headers or {})}
    app = OrderFastPath(_passthrough, threads=1, event_loop=event_loop)
    for pool in (app.pool, app.side_pool):

        def counted(fn, *args, _submit=pool.submit, **kwargs):  # type: ignore[no-untyped-def]
            if hops is not None:
                hops.append(fn.__name__)
            return _submit(fn, *args, **kwargs)

        pool.submit = counted  # type: ignore[method-assign]

    async def go():  # type: ignore[no-untyped-def]
        from asgiref.testing import ApplicationCommunicator

        raw_headers = [(b"host", b"testserver")] + [(k.lower().encode(), v.encode()) for k, v in hdrs.items()]
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/api/v1/orders",
            "headers": raw_headers,
            "scheme": "http",
            "query_string": b"",
        }
        comm = ApplicationCommunicator(app, scope)
        try:
            await comm.send_input({"type": "http.request", "body": body, "more_body": False})
            start = await comm.receive_output(10)
            out = await comm.receive_output(10)
        finally:
            await close_async_client()
        return start["status"], out["body"], {k.decode().lower(): v.decode() for k, v in start["headers"]}

    try:
        status, raw, out_headers = async_to_sync(go)()
    finally:
        app.shutdown()
    return status, json.loads(raw), out_headers


def _drf(token: str, body: bytes, headers: dict | None = None) -> tuple[int, dict, dict]:
    hdrs = {"Authorization": f"Token {token}", **(headers or {})}
    content_type = hdrs.pop("Content-Type", "application/json")
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in hdrs.items()}
    r = APIClient().generic("POST", "/api/v1/orders", body, content_type=content_type, **extra)
    return r.status_code, r.json(), {k.lower(): v for k, v in r.headers.items()}


def both(token: str, body: bytes | dict, headers: dict | None = None) -> tuple[int, dict]:
    """POST the same input through both entry points; assert they agree; return (status, body)."""
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    fs, fb, _ = _fast(token, raw, headers)
    ds, db, _ = _drf(token, raw, headers)
    assert (fs, fb) == (ds, db), {"fast": (fs, fb), "drf": (ds, db)}
    assert fs < 500, fb
    return fs, fb


def _same_order(a: dict, b: dict) -> bool:
    """The same order rendered twice (the signed status link carries its signing second)."""
    return {**a, "status_url": None} == {**b, "status_url": None}


def _error(status: int, body: dict, want_status: int, code: str) -> dict:
    assert status == want_status, body
    assert set(body) == {"code", "message", "extra"} and body["code"] == code and body["message"], body
    return body


# --- 1. deeply nested JSON ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", [b"[" * 20000, b'{"a":' * 10000, b"[" * 20000 + b"]" * 20000], ids=["arrays", "objects", "closed"]
)
def test_deeply_nested_json_is_400_malformed_request(token, raw):
    _error(*both(token, raw), 400, "malformed_request")
    assert Order.objects.count() == 0


@pytest.mark.parametrize("raw", [b"{broken", b"", b"\xff\xfe{", b'{"listing": NaN}', b"[1,]"])
def test_malformed_json_is_400_malformed_request_on_both_paths(token, raw):
    _error(*both(token, raw), 400, "malformed_request")


# --- 2. integers: ASCII digits only -------------------------------------------------------------


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"quantity": "²"}, "quantity"),
        ({"quantity": "２"}, "quantity"),
        ({"quantity": "٢"}, "quantity"),
        ({"quantity": " 2"}, "quantity"),
        ({"quantity": "+2"}, "quantity"),
        ({"quantity": "2.0"}, "quantity"),
        ({"listing": "¹"}, "listing"),
        ({"listing": "１"}, "listing"),
        ({"listing": "９" * 30}, "listing"),
    ],
)
def test_non_ascii_digit_strings_are_400_invalid(merchant, token, over, field):
    listing = make_listing(merchant, quota=5, limit=5)
    body = {**order_body(listing.pk), **over}
    err = _error(*both(token, body), 400, "invalid")
    assert field in err["extra"]["fields"]
    assert Order.objects.count() == 0


def test_ascii_digit_strings_are_still_accepted(merchant, token):
    listing = make_listing(merchant, quota=5, limit=5)
    raw = json.dumps({**order_body(listing.pk), "listing": str(listing.pk), "quantity": "2"}).encode()
    fs, fb, _ = _fast(token, raw, {"Idempotency-Key": "digits"})
    ds, db, _ = _drf(token, raw, {"Idempotency-Key": "digits"})
    assert (fs, ds) == (201, 200) and _same_order(fb, db) and fb["lines"][0]["quantity"] == 2


# --- 3. body size -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [64 * 1024 + 1, 3 * 1024 * 1024])
def test_body_over_64_kib_is_413_payload_too_large(merchant, token, size):
    listing = make_listing(merchant, quota=5)
    body = order_body(listing.pk)
    body["pad"] = "x" * size
    _error(*both(token, body), 413, "payload_too_large")
    assert Order.objects.count() == 0


def test_body_just_under_64_kib_is_accepted(merchant, token):
    listing = make_listing(merchant, quota=5, limit=5)
    body = order_body(listing.pk)
    body["pad"] = ""
    body["pad"] = "x" * (64 * 1024 - len(json.dumps(body).encode()))
    assert len(json.dumps(body).encode()) == 64 * 1024
    fs, _, _ = _fast(token, json.dumps(body).encode())
    ds, _, _ = _drf(token, json.dumps({**body, "buyer": {**body["buyer"], "external_id": "b2"}}).encode())
    assert (fs, ds) == (201, 201)


# --- 4. X-Request-ID: one validator -------------------------------------------------------------


@pytest.mark.parametrize(
    ("incoming", "echoed"),
    [
        ("req-12345678", True),
        ("a.b_c-DEF0123", True),
        ("short", False),
        ("x" * 65, False),
        ("evil\x7fvalue-1234", False),
        ("<script>alert(1)</script>", False),
        ("id with spaces 123", False),
    ],
)
def test_request_id_is_validated_alike_on_both_paths(token, incoming, echoed):
    _, _, fast = _fast(token, b"{broken", {"X-Request-ID": incoming})
    _, _, drf = _drf(token, b"{broken", {"X-Request-ID": incoming})
    for got in (fast["x-request-id"], drf["x-request-id"]):
        if echoed:
            assert got == incoming
        else:
            assert got != incoming and len(got) == 32 and got.isalnum()


def test_request_id_is_sent_on_413_too(token):
    _, _, fast = _fast(token, b"x" * (65 * 1024), {"X-Request-ID": "req-12345678"})
    assert fast["x-request-id"] == "req-12345678"


# --- 5. phones: one normaliser ------------------------------------------------------------------

MOBILE = "13911110000"


@pytest.mark.parametrize(
    "written",
    [
        "13911110000",
        "+86 13911110000",
        "+8613911110000",
        "0086-13911110000",
        "008613911110000",
        "8613911110000",
        "013911110000",
        "+86-139-1111-0000",
        "139 1111 0000",
        "139-1111-0000",
        " 139 1111 0000 ",
        "１３９１１１１００００",
        "＋８６ １３９１１１１００００",
        "+86 (0)139 1111 0000".replace("(0)", "0"),
        "139\u30001111\u30000000",
    ],
)
def test_normalize_cn_mobile_variants(written):
    assert normalize_cn_mobile(written) == MOBILE
    assert normalize_phone(written) == MOBILE


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("0571-8888-1234", "057188881234"),  # a Hangzhou landline
        ("010 6552 9988", "01065529988"),  # a Beijing landline
        ("+44 20 7946 0958", "+442079460958"),  # London
        ("+1-415-555-0100", "+14155550100"),
        ("+852 9123 4567", "+85291234567"),  # a Hong Kong mobile is not a mainland one
        ("12911110000", "12911110000"),  # 12x is not a mobile prefix
        ("1391111000", "1391111000"),  # ten digits
        ("139111100001", "139111100001"),  # twelve
        ("", ""),
    ],
)
def test_normalize_phone_keeps_other_numbers_as_written_without_separators(written, kept):
    assert normalize_cn_mobile(written) is None
    assert normalize_phone(written) == kept


@pytest.mark.parametrize("bad", ["¹³⁹¹¹¹¹⁰⁰⁰⁰", "١٣٩١١١١٠٠٠٠", "13911110000x", "phone"])
def test_normalize_cn_mobile_rejects_other_scripts(bad):
    assert normalize_cn_mobile(bad) is None


@pytest.mark.parametrize("written", ["+86 13911110000", "0086-13911110000", "013911110000", "１３９-1111-0000"])
def test_api_stores_the_normalised_phone(merchant, token, written):
    listing = make_listing(merchant, quota=5, limit=5)
    body = order_body(listing.pk)
    body["buyer"]["phone"] = written
    body["shipping_address"]["phone"] = written
    raw = json.dumps(body, ensure_ascii=False).encode()
    fs, fb, _ = _fast(token, raw, {"Idempotency-Key": "phone-1"})
    ds, db, _ = _drf(token, raw, {"Idempotency-Key": "phone-1"})
    assert (fs, ds) == (201, 200) and _same_order(fb, db)
    assert fb["buyer"]["phone"] == MOBILE
    order = Order.objects.get()
    assert order.buyer.phone == MOBILE and order.shipping_address["phone"] == MOBILE


@pytest.mark.parametrize("bad", ["¹³⁹¹¹¹¹⁰⁰⁰⁰", "+86 139(1111)0000", "call me"])
def test_api_rejects_a_phone_that_is_not_one(merchant, token, bad):
    listing = make_listing(merchant, quota=5, limit=5)
    body = order_body(listing.pk)
    body["buyer"]["phone"] = bad
    err = _error(*both(token, body), 400, "invalid")
    assert "buyer.phone" in err["extra"]["fields"]


def _storefront_post(listing: Listing, phone: str) -> int:
    page = Client().get(f"/live/{listing.merchant.slug}/{listing.session_id}/")
    assert page.status_code == 200
    token = page.context["form_token"]
    r = Client().post(
        f"/live/{listing.merchant.slug}/{listing.session_id}/",
        {
            "listing": listing.pk,
            "quantity": 1,
            "name": "买家",
            "phone": phone,
            "province": "浙江省",
            "city": "杭州市",
            "district": "",
            "detail": "文三路 1 号",
            "form_token": token,
        },
    )
    return r.status_code


def test_storefront_buyer_limit_holds_however_the_phone_is_written(merchant):
    listing = make_listing(merchant, quota=10, limit=1)
    assert _storefront_post(listing, "13911110000") == 303
    variants = ("+86 13911110000", "0086-13911110000", "013911110000", "+86-139-1111-0000", "１３９１１１１００００")
    for written in variants:
        assert _storefront_post(listing, written) == 409, written
    assert Order.objects.count() == 1
    assert list(Buyer.objects.values_list("external_id", "phone")) == [(f"phone:{MOBILE}", MOBILE)]


# --- 6. date-times in range ---------------------------------------------------------------------


def _notify(body: dict):  # type: ignore[no-untyped-def]
    raw = json.dumps(body).encode()
    ts = int(time.time())
    return APIClient().generic(
        "POST",
        "/api/v1/payments/notify",
        raw,
        content_type="application/json",
        HTTP_X_TIMESTAMP=str(ts),
        HTTP_X_SIGNATURE=payments.sign(raw, ts),
    )


@pytest.mark.parametrize(
    "paid_at",
    [
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-23:59",
        "9999-12-31T23:59:59Z",
        "1999-12-31T23:59:59Z",
        "2000-01-01T07:59:59+08:00",  # 1999 in UTC
        "2100-01-01T00:00:00Z",
    ],
)
def test_payment_paid_at_out_of_range_is_400_and_records_nothing(api, merchant, settings, paid_at):
    settings.PAYMENT_WEBHOOK_SECRET = "s3cret"
    listing = make_listing(merchant, quota=5)
    order = Order.objects.get(public_id=api.post("/api/v1/orders", order_body(listing.pk), format="json").json()["id"])
    r = _notify({"order": order.public_id, "transaction_id": "t1", "amount": str(order.total), "paid_at": paid_at})
    body = _error(r.status_code, r.json(), 400, "invalid")
    assert "paid_at" in body["extra"]["fields"]
    assert Payment.objects.count() == 0
    order.refresh_from_db()
    assert order.status == "pending_payment" and order.paid_at is None


def test_payment_paid_at_in_range_is_accepted(api, merchant, settings):
    settings.PAYMENT_WEBHOOK_SECRET = "s3cret"
    listing = make_listing(merchant, quota=5)
    order = Order.objects.get(public_id=api.post("/api/v1/orders", order_body(listing.pk), format="json").json()["id"])
    paid_at = "2000-01-01T08:00:00+08:00"  # the first second of 2000 in UTC
    r = _notify({"order": order.public_id, "transaction_id": "t1", "amount": str(order.total), "paid_at": paid_at})
    assert r.status_code == 200, r.content


@pytest.mark.parametrize(
    "when",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-23:59",
        "9999-12-31T23:59:59Z",
        "1999-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
        "2099-12-31T23:59:59-01:00",  # 2100 in UTC
    ],
)
def test_catalog_datetimes_out_of_range_are_400(api, merchant, when):
    sku, session = make_sku(merchant, on_hand=10), make_session(merchant)
    body = {"sku": sku.pk, "session": session.pk, "price": "9.90", "quota": 5, "opens_at": when}
    r = api.post("/api/v1/listings", body, format="json")
    err = _error(r.status_code, r.json(), 400, "invalid")
    assert "opens_at" in err["extra"]["fields"]
    r = api.post("/api/v1/sessions", {"title": "t", "streamer": "s", "scheduled_at": when}, format="json")
    err = _error(r.status_code, r.json(), 400, "invalid")
    assert "scheduled_at" in err["extra"]["fields"]
    assert Listing.objects.count() == 0


# --- 7. stock bound -----------------------------------------------------------------------------


def test_stock_adjust_past_the_bound_is_400_stock_limit(api, merchant):
    sku = make_sku(merchant, on_hand=0)
    url = f"/api/v1/skus/{sku.pk}/stock"
    r = api.post(url, {"delta": 9_999_999, "reason": "delivery"}, format="json")
    assert r.status_code == 200 and r.json()["on_hand"] == 9_999_999
    for _ in range(3):
        r = api.post(url, {"delta": 9_999_999, "reason": "delivery"}, format="json")
        _error(r.status_code, r.json(), 400, "stock_limit")
    r = api.post(url, {"delta": 2, "reason": "delivery"}, format="json")
    _error(r.status_code, r.json(), 400, "stock_limit")
    r = api.post(url, {"delta": 1, "reason": "delivery"}, format="json")
    assert r.status_code == 200 and r.json()["on_hand"] == 10_000_000
    assert Stock.objects.get(sku=sku).on_hand == 10_000_000
    assert StockMovement.objects.filter(sku=sku).count() == 2  # only the two adjustments that fit


@pytest.mark.parametrize("on_hand", [10_000_001, 2**31, 2**63])
def test_sku_patch_on_hand_above_the_bound_is_400(api, merchant, on_hand):
    sku = make_sku(merchant, on_hand=10)
    r = api.patch(f"/api/v1/skus/{sku.pk}", {"on_hand": on_hand}, format="json")
    err = _error(r.status_code, r.json(), 400, "invalid")
    assert "on_hand" in err["extra"]["fields"]
    assert Stock.objects.get(sku=sku).on_hand == 10
