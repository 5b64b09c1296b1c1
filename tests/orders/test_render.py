"""The hot path answers with ``order_representation``, not the DRF serializer; the two must say the
same thing for every kind of order, and the order the placement builds in memory must equal the
row it wrote."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import override_settings

from apps.orders.api.serializers import OrderSerializer, order_representation
from apps.orders.models import Order, OrderStatus
from apps.orders.placement.links import check_status_token
from apps.orders.placement.request import parse_order_request
from apps.orders.placement.service import order_place
from apps.orders.services.transitions import order_cancel, order_transition

from ..factories import make_listing, order_body

pytestmark = pytest.mark.django_db(transaction=True)
BASE = "https://shop.example"


def _serializer(order: Order, base_url: str = BASE) -> dict:
    return json.loads(json.dumps(OrderSerializer(order, context={"base_url": base_url}).data))


def _ours(order: Order, base_url: str = BASE) -> dict:
    return json.loads(json.dumps(order_representation(order, base_url=base_url)))


def _same(a: dict, b: dict, base: str = BASE) -> None:
    """Equal but for the status link's signature timestamp, which both must carry validly."""
    link_a, link_b = a.pop("status_url"), b.pop("status_url")
    assert a == b
    assert link_a.split("?t=")[0] == link_b.split("?t=")[0] == base + f"/o/{a['id']}/"
    for link in (link_a, link_b):
        token = link.split("?t=")[1]
        assert check_status_token(a["id"], token)


def _place(listing, buyer="r1", quantity=1, key="k") -> Order:  # type: ignore[no-untyped-def]
    req = parse_order_request(order_body(listing.pk, buyer=buyer, quantity=quantity))
    return order_place(req=req, merchant_id=listing.merchant_id, idempotency_key=key, channel="api").order


def test_the_placed_order_in_memory_renders_like_the_stored_row(merchant):
    listing = make_listing(merchant, quota=9, limit=3, price="19.99")
    placed = _place(listing, quantity=3)
    stored = Order.objects.select_related("buyer").get(pk=placed.pk)
    _same(_ours(placed), _serializer(stored))
    assert _ours(placed)["total"] == "59.97"
    assert _ours(placed)["lines"][0]["unit_price"] == "19.99"


@pytest.mark.parametrize("state", ["pending", "paid", "cancelled", "refund_pending", "shipped"])
def test_every_state_renders_like_the_serializer(merchant, state):
    listing = make_listing(merchant, quota=5, limit=2, price="0.10")
    order = _place(listing, buyer=f"b-{state}", quantity=2, key=f"k-{state}")
    if state in {"paid", "shipped", "refund_pending"}:
        order = order_transition(order=order, to=OrderStatus.PAID, actor="test")
    if state == "shipped":
        order = order_transition(order=order, to=OrderStatus.CONFIRMED, actor="test")
        order = order_transition(
            order=order, to=OrderStatus.SHIPPED, actor="test", carrier="SF 顺丰", tracking_number="SF123"
        )
    if state == "cancelled":
        order = order_cancel(order=order, actor="test", reason="买家取消 <b>")
    if state == "refund_pending":
        order = order_transition(
            order=order, to=OrderStatus.REFUND_PENDING, actor="test", refund_amount=Decimal("0.05")
        )
    stored = Order.objects.select_related("buyer").get(pk=order.pk)
    _same(_ours(stored), _serializer(stored))


def test_edge_values_render_like_the_serializer(merchant):
    listing = make_listing(merchant, quota=5)
    order = Order.objects.select_related("buyer").get(pk=_place(listing).pk)
    order.listing_id = None
    order.session_id = None
    order.pay_by = None
    order.total = Decimal("12345678.5")
    order.refund_due = Decimal("0")
    order.shipping_address = {"name": "名", "nested": {"a": [1, 2]}}
    order.buyer.name = ""
    order.created_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    order.updated_at = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    _same(_ours(order), _serializer(order))
    _same(_ours(order, base_url=""), _serializer(order, base_url=""), base="")
    with override_settings(TIME_ZONE="UTC"):  # "Z" instead of "+00:00", as DRF writes it
        ours, theirs = _ours(order), _serializer(order)
        assert ours["created_at"] == "2026-01-02T03:04:05Z"
        _same(ours, theirs)


def test_the_api_answer_equals_the_serializer_on_the_stored_order(api, merchant):
    listing = make_listing(merchant, quota=5, price="7.77")
    r = api.post("/api/v1/orders", order_body(listing.pk), format="json", HTTP_IDEMPOTENCY_KEY="api-1")
    assert r.status_code == 201, r.content
    stored = Order.objects.select_related("buyer").get(public_id=r.json()["id"])
    _same(r.json(), _serializer(stored, base_url="http://testserver"), base="http://testserver")
    again = api.post("/api/v1/orders", order_body(listing.pk), format="json", HTTP_IDEMPOTENCY_KEY="api-1")
    assert again.status_code == 200
    _same(again.json(), _serializer(stored, base_url="http://testserver"), base="http://testserver")


SIGNALS = {"client", "buyer_registered_at", "received_at"}


def test_the_request_fingerprint_is_the_one_stored_orders_carry():
    """Replays compare against ``request_hash`` of orders written by earlier versions, which hashed
    ``dataclasses.asdict`` of the request: the fingerprint must not drift. The risk signals
    (``client``, ``buyer_registered_at``) and the arrival time (``received_at``) are not the
    order's identity and stay out of it."""
    import hashlib
    from dataclasses import asdict, fields

    body = order_body(7, buyer="名字", quantity=3)
    body["client"] = {"ip": "203.0.113.5", "device_id": "dev-1", "user_agent": "UA/1"}
    body["buyer"]["registered_at"] = "2024-03-02T10:15:00+08:00"
    req = parse_order_request(body)
    identity = {k: v for k, v in asdict(req).items() if k not in SIGNALS}
    legacy = hashlib.sha256(json.dumps(identity, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    assert req.fingerprint() == legacy
    assert req.fingerprint() == parse_order_request(order_body(7, buyer="名字", quantity=3)).fingerprint()
    assert {f.name for f in fields(req)} - SIGNALS == {
        "listing_id",
        "quantity",
        "buyer_external_id",
        "buyer_name",
        "buyer_phone",
        "address",
    }  # a new field must join the fingerprint
