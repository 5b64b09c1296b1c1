"""After-sales asked on the platforms (Douyin, Kuaishou, Taobao): each platform's simulator sends
its own messages (Douyin's signed pushes 200–208, Kuaishou's encrypted aftersales pushes,
Taobao's TMC refund topics), the inbox stores and processes them through the real clients, and
the request is mirrored here: stock back where it belongs, the order through the state machine
and the ledger, nothing sent to our payment provider, no decision taken here."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Sum

from apps.fulfilment import refunds
from apps.fulfilment.models import ExceptionKind, FulfilmentException, RefundRequest
from apps.inventory.models import Stock, StockMovement
from apps.orders.models import Order, OrderEvent, OrderStatus
from apps.orders.services.transitions import order_transition
from apps.platforms.models import InboxMessage, PlatformOrder
from apps.platforms.protocol.aftersales import aftersale_of
from apps.platforms.protocol.base import MalformedPayload, PushEvent
from apps.platforms.simulator import ShowSpec, SimSku

from ..factories import make_listing, make_session, make_sku
from ..orders.invariants import assert_consistent
from ..platforms.test_intake import _drain, connect

pytestmark = pytest.mark.django_db(transaction=True)
S = OrderStatus
R = RefundRequest.Status
IDS = {"douyin": ("1750000000001", "3600000000001"), "kuaishou": ("88001", "77001"), "taobao": ("5001", "6001")}


@pytest.fixture
def sku(merchant):  # type: ignore[no-untyped-def]
    return make_sku(merchant, on_hand=40, code="LIP-01")


def _on_air(merchant, skus, platform: str):  # type: ignore[no-untyped-def]
    session = make_session(merchant)
    type(session).objects.filter(pk=session.pk).update(platforms=["storefront", platform])
    return [make_listing(merchant, quota=20, on_hand=s.stock.on_hand, sku=s, session=session, limit=5) for s in skus]


@pytest.fixture
def platform_world(request, merchant, sku, live_server) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """A show on ``request.param``'s platform with 2 paid orders of one line each, imported."""
    platform = request.param
    (listing,) = _on_air(merchant, [sku], platform)
    shop, sim = connect(merchant, platform, live_server.url)
    try:
        sku_id, item_id = IDS[platform]
        run = sim.run_show(
            ShowSpec(skus=[SimSku(sku.code, sku_id, item_id, 4990)], orders=2, seed=11, pay_share=1.0,
                     cancel_share=0.0, duplicate_share=0.0, shuffle=0.0, max_lines=1, max_quantity=2, interval=0)
        )  # fmt: skip
        sim.wait_show(run, timeout=30)
        _drain((shop,))
        yield {"platform": platform, "shop": shop, "sim": sim, "listing": listing, "orders": list(run.plan.orders)}
    finally:
        sim.stop()


def _ours(external_id: str) -> Order:
    return PlatformOrder.objects.select_related("order").get(external_id=external_id).order  # type: ignore[return-value]


def _settle(world: dict[str, Any]) -> None:
    sim = world["sim"]
    sim.wait_idle(10)
    _drain((world["shop"],))
    assert not InboxMessage.objects.exclude(state__in=["processed", "ignored"]).exists(), list(
        InboxMessage.objects.exclude(state__in=["processed", "ignored"]).values("state", "error")
    )


def _ship_here(order: Order, sim: Any) -> Order:
    order_transition(order=order, to=S.CONFIRMED, actor="test")
    order = order_transition(order=order, to=S.SHIPPED, actor="test", carrier="SF", tracking_number="SF100")
    with sim.lock:  # the platform heard of the shipment (ship sync's job, tested on its own)
        sim_order = sim.orders[next(oid for oid, po in _externals().items() if po == order.pk)]
        sim_order.status, sim_order.shipped_at = "shipped", time.time()
    return order


def _externals() -> dict[str, int | None]:
    return dict(PlatformOrder.objects.values_list("external_id", "order_id"))


ALL = pytest.mark.parametrize("platform_world", ["douyin", "kuaishou", "taobao"], indirect=True)


@ALL
def test_a_refund_asked_agreed_and_paid_on_the_platform_before_shipping(platform_world, api, merchant, sku):
    """Asked: mirrored, nothing moves. Agreed: the platform pays, not our provider. Paid: the order
    goes to ``refunded`` through ``refund_pending`` and its units go back on sale."""
    w = platform_world
    sim, listing, external = w["sim"], w["listing"], w["orders"][0]
    order = _ours(external)
    assert order.status == S.PAID and order.channel == w["platform"]
    listing.refresh_from_db()
    sold_before = listing.sold

    sale = sim.aftersale(external, "requested", kind="refund")
    _settle(w)
    req = RefundRequest.objects.get()
    assert (req.source, req.kind, req.status) == ("platform", "refund", R.REQUESTED)
    assert req.amount == order.total and req.platform_refund_id == f"{w['platform']}:{sale.refund_id}"
    assert req.platform_phase == "requested" and req.platform_event_at is not None
    order.refresh_from_db()
    assert order.status == S.PAID and order.refund_due == 0

    # the decision is the platform's: approve, reject and withdraw here are refused, with a code
    for verb, body in (("approve", {}), ("reject", {"note": "no"}), ("withdraw", {})):
        r = api.post(f"/api/v1/refunds/{req.public_id}/{verb}", body, format="json")
        assert r.status_code == 409 and r.json()["code"] == "refund_on_platform", r.content
    got = api.get(f"/api/v1/refunds/{req.public_id}").json()
    assert got["source"] == "platform" and got["platform"]["refund_id"] == sale.refund_id
    assert got["platform"]["step"] == "requested" and got["platform"]["name"] == w["platform"]

    sim.aftersale(external, "agreed", refund_id=sale.refund_id)
    _settle(w)
    req.refresh_from_db()
    assert req.status == R.REFUNDING and req.next_attempt_at is None
    assert refunds.refunds_due() == 0  # never sent to our payment provider

    sim.aftersale(external, "succeeded", refund_id=sale.refund_id)
    _settle(w)
    req.refresh_from_db()
    order.refresh_from_db()
    assert req.status == R.REFUNDED and req.refunded_at is not None
    assert order.status == S.REFUNDED and order.refund_due == order.refunded == order.total
    path = list(OrderEvent.objects.filter(order=order).order_by("seq").values_list("to_status", flat=True))
    assert path[-2:] == [S.REFUND_PENDING, S.REFUNDED]
    listing.refresh_from_db()
    assert listing.sold == sold_before - order.lines.aggregate(n=Sum("quantity"))["n"]
    assert not FulfilmentException.objects.filter(kind=ExceptionKind.PLATFORM_CONFLICT).exists()
    assert_consistent(listing.pk)
    # the other order is untouched
    assert _ours(w["orders"][1]).status == S.PAID


@ALL
def test_a_return_after_shipping_is_restocked_once_on_receipt_and_refunded_by_the_platform(platform_world, api, sku):
    w = platform_world
    sim, external = w["sim"], w["orders"][0]
    order = _ship_here(_ours(external), sim)
    units = order.lines.aggregate(n=Sum("quantity"))["n"]
    on_hand = Stock.objects.get(sku=sku).on_hand

    sale = sim.aftersale(external, "requested", kind="return")
    sim.aftersale(external, "return_agreed", refund_id=sale.refund_id)
    _settle(w)
    req = RefundRequest.objects.get()
    assert (req.kind, req.status) == ("return", R.AWAITING_RETURN)
    assert sum(line.quantity for line in req.lines.all()) == units

    sim.aftersale(external, "goods_returned", refund_id=sale.refund_id)
    _settle(w)
    assert Stock.objects.get(sku=sku).on_hand == on_hand  # on the way: not on the shelf yet

    r = api.post(f"/api/v1/refunds/{req.public_id}/receive", {}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == R.AWAITING_RETURN  # the money is the platform's to pay
    assert Stock.objects.get(sku=sku).on_hand == on_hand + units
    again = api.post(f"/api/v1/refunds/{req.public_id}/receive", {}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "refund_state"
    order.refresh_from_db()
    assert order.status == S.SHIPPED and order.refund_due == 0

    sim.aftersale(external, "succeeded", refund_id=sale.refund_id)
    _settle(w)
    req.refresh_from_db()
    order.refresh_from_db()
    assert req.status == R.REFUNDED
    assert order.status == S.REFUNDED and order.refunded == order.refund_due == order.total
    assert Stock.objects.get(sku=sku).on_hand == on_hand + units  # restocked once
    assert StockMovement.objects.filter(kind=StockMovement.Kind.RETURN).count() == 1
    assert not FulfilmentException.objects.filter(kind=ExceptionKind.PLATFORM_CONFLICT).exists()


@pytest.mark.parametrize("platform_world", ["douyin", "taobao"], indirect=True)
def test_a_return_the_platform_pays_before_anyone_marked_the_goods_received_is_restocked_then(platform_world, sku):
    w = platform_world
    sim, external = w["sim"], w["orders"][0]
    order = _ship_here(_ours(external), sim)
    units = order.lines.aggregate(n=Sum("quantity"))["n"]
    on_hand = Stock.objects.get(sku=sku).on_hand
    sale = sim.aftersale(external, "requested", kind="return")
    for step in ("return_agreed", "goods_returned", "succeeded"):
        sim.aftersale(external, step, refund_id=sale.refund_id)
    _settle(w)
    assert Stock.objects.get(sku=sku).on_hand == on_hand + units
    assert RefundRequest.objects.get().status == R.REFUNDED
    assert Order.objects.get(pk=order.pk).status == S.REFUNDED


@pytest.mark.parametrize("platform_world", ["kuaishou"], indirect=True)
def test_money_alone_after_shipping_moves_no_stock_and_a_refusal_can_be_asked_again(platform_world, sku):
    w = platform_world
    sim, external = w["sim"], w["orders"][0]
    order = _ship_here(_ours(external), sim)
    on_hand = Stock.objects.get(sku=sku).on_hand
    t0 = time.time()
    sale = sim.aftersale(external, "requested", kind="refund", amount_fen=1000, at=t0)
    sim.aftersale(external, "refused", refund_id=sale.refund_id, at=t0 + 1)
    _settle(w)
    req = RefundRequest.objects.get()
    assert req.status == R.REJECTED and req.decided_by == "kuaishou" and req.amount == Decimal("10.00")
    sim.aftersale(external, "modified", refund_id=sale.refund_id, amount_fen=800, at=t0 + 2)
    _settle(w)
    req.refresh_from_db()
    assert req.status == R.REQUESTED and req.amount == Decimal("8.00")
    for n, step in enumerate(("agreed", "succeeded")):
        sim.aftersale(external, step, refund_id=sale.refund_id, at=t0 + 3 + n)
    _settle(w)
    req.refresh_from_db()
    order.refresh_from_db()
    assert req.status == R.REFUNDED
    # a part: the order keeps shipping, and what it paid back is recorded (nothing left owed)
    assert order.status == S.SHIPPED and order.refund_due == order.refunded == Decimal("8.00")
    assert Stock.objects.get(sku=sku).on_hand == on_hand
    assert not StockMovement.objects.filter(kind=StockMovement.Kind.RETURN).exists()
    assert refunds.refunds_owed_sweep() == 0


@pytest.mark.parametrize("platform_world", ["douyin"], indirect=True)
def test_repeated_and_out_of_order_messages_have_one_effect(platform_world, sku):
    """The success first, then a stale 'requested' and a repeated success (new message ids, as a
    platform re-sending does): one refund, one order transition, one ledger record of the money."""
    w = platform_world
    sim, external = w["sim"], w["orders"][0]
    order = _ours(external)
    t0 = time.time() - 60
    sale = sim.aftersale(external, "requested", kind="refund", at=t0, send=False)
    late_request = sim.aftersale_message(sale, sim.orders[external])
    paid = sim.aftersale(external, "succeeded", refund_id=sale.refund_id, at=t0 + 30)
    _settle(w)
    order.refresh_from_db()
    assert order.status == S.REFUNDED
    events = OrderEvent.objects.filter(order=order).count()
    sim.send_push([late_request])  # the request, delivered after the success
    again = sim.aftersale_message(paid, sim.orders[external]) | {"msg_id": "7099999999999999999"}
    sim.send_push([again])  # the success again, under a new message id
    sim.send_push([again])  # and that message twice
    _settle(w)
    req = RefundRequest.objects.get()
    order.refresh_from_db()
    assert req.status == R.REFUNDED and req.platform_phase == "succeeded"
    assert order.status == S.REFUNDED and order.refunded == order.total
    assert OrderEvent.objects.filter(order=order).count() == events
    assert InboxMessage.objects.filter(message_id="7099999999999999999").count() == 1


def test_a_sub_order_refund_is_a_part_and_the_second_one_ends_the_order(merchant, live_server):  # type: ignore[no-untyped-def]
    """Douyin names the sub-order (``s_id``): a part of a two-line order is refunded, the order
    ships on; the other line's refund makes the whole, and the order ends refunded."""
    a = make_sku(merchant, on_hand=30, code="DUO-A")
    b = make_sku(merchant, on_hand=30, code="DUO-B")
    listings = _on_air(merchant, [a, b], "douyin")
    shop, sim = connect(merchant, "douyin", live_server.url)
    try:
        skus = [SimSku("DUO-A", "1750000000011", "3600000000011", 2000),
                SimSku("DUO-B", "1750000000012", "3600000000012", 3000)]  # fmt: skip
        run = sim.run_show(
            ShowSpec(skus=skus, orders=6, seed=5, pay_share=1.0, cancel_share=0.0, duplicate_share=0.0,
                     shuffle=0.0, max_lines=2, max_quantity=1, interval=0)
        )  # fmt: skip
        sim.wait_show(run, timeout=30)
        _drain((shop,))
        external = next(oid for oid, o in run.plan.orders.items() if len(o.lines) == 2)
        order = _ours(external)
        first, second = sim.orders[external].lines
        s1 = sim.aftersale(external, "requested", kind="refund", line_id=first.line_id)
        sim.aftersale(external, "succeeded", refund_id=s1.refund_id)
        sim.wait_idle(10)
        _drain((shop,))
        order.refresh_from_db()
        part = Decimal(first.amount_fen) / 100
        assert order.status == S.PAID and order.refund_due == order.refunded == part
        s2 = sim.aftersale(external, "requested", kind="refund", line_id=second.line_id,
                           amount_fen=sim.orders[external].total_fen - first.amount_fen)  # fmt: skip
        sim.aftersale(external, "succeeded", refund_id=s2.refund_id)
        sim.wait_idle(10)
        _drain((shop,))
    finally:
        sim.stop()
    order.refresh_from_db()
    assert RefundRequest.objects.filter(order=order, status=R.REFUNDED).count() == 2
    assert order.status == S.REFUNDED and order.refunded == order.refund_due == order.total
    for listing in listings:
        assert_consistent(listing.pk)


def test_the_parsers_read_each_platforms_words() -> None:
    """Pure: the step, kind, amount and sub-order each platform's message carries."""

    def event(platform: str, topic: str, data: dict[str, Any], raw: dict[str, Any] | None = None) -> PushEvent:
        return PushEvent(platform=platform, message_id="1", kind="refund", topic=topic, order_id=None,  # type: ignore[arg-type]
                         shop_id=None, occurred_at=None, raw=raw or {}, data=data)  # fmt: skip

    dy = aftersale_of(event("douyin", "doudian_refund_ReturnApplyAgreed",
                            {"aftersale_id": 71, "p_id": 69, "s_id": 70, "aftersale_type": 0,
                             "refund_amount": 4990, "update_time": 1700000000}, {"tag": "202"}))  # fmt: skip
    assert dy is not None
    assert (dy.refund_id, dy.order_id, dy.line_id, dy.phase, dy.kind) == ("71", "69", "70", "return_agreed", "return")
    assert dy.amount == Decimal("49.90") and dy.occurred_at is not None
    ks_info = {"orderId": 9, "refundId": 8, "handlingWay": 10, "status": 60, "updateTime": 1700000000000}
    ks = aftersale_of(event("kuaishou", "kwaishop_aftersales_updateRefund", ks_info))
    assert ks is not None and (ks.phase, ks.kind, ks.amount) == ("succeeded", "refund", None)
    tb_content = {"refund_id": "5", "tid": 3, "oid": 3, "refund_fee": "12.30", "status": "WAIT_SELLER_AGREE"}
    tb = aftersale_of(event("taobao", "taobao_refund_RefundSellerAgreeAgreement", tb_content))
    assert tb is not None and (tb.phase, tb.kind, tb.line_id, tb.amount) == ("agreed", None, None, Decimal("12.30"))
    with pytest.raises(MalformedPayload):
        aftersale_of(event("kuaishou", "kwaishop_aftersales_updateRefund", {"orderId": 9, "refundId": 8, "status": 99}))
    with pytest.raises(MalformedPayload):
        aftersale_of(event("taobao", "taobao_refund_RefundCreated", {"tid": 3}))
    assert aftersale_of(PushEvent(platform="douyin", message_id="2", kind="paid", topic="x", order_id="1",
                                  shop_id=None, occurred_at=None, raw={})) is None  # fmt: skip
