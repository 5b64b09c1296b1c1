"""Hypothesis stateful test of inventory + orders: reserve, pay, cancel, expire, ship, adjust
stock, lose Redis — after every step stock and quota are exact and every store agrees."""

from __future__ import annotations

import itertools
import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from apps.catalog.models import Listing
from apps.core.errors import ApplicationError
from apps.core.redis import get_client
from apps.inventory import services as inventory
from apps.inventory.models import Stock
from apps.orders.models import Order, OrderStatus
from apps.orders.placement.gate import scripts as gate
from apps.orders.placement.request import parse_order_request
from apps.orders.placement.service import order_place
from apps.orders.services import payments
from apps.orders.services.transitions import order_cancel, order_transition, orders_expire_due

from ..factories import MerchantFactory, make_listing, order_body
from .invariants import assert_consistent

_ids = itertools.count()
S = OrderStatus


class FlashSale(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        get_client().flushdb()
        self.merchant = MerchantFactory(slug=f"hyp{next(_ids)}-{time.time_ns()}")
        self.listing = make_listing(self.merchant, quota=6, on_hand=9, limit=2)
        self.on_hand = 9
        self.orders: list[str] = []
        self.redis_lost = False

    # --- model helpers ---
    def _live_units(self, statuses) -> int:  # type: ignore[no-untyped-def]
        return sum(o.lines.first().quantity for o in Order.objects.filter(listing=self.listing, status__in=statuses))

    @rule(buyer=st.integers(0, 3), qty=st.integers(1, 2), keyed=st.booleans())
    def place(self, buyer: int, qty: int, keyed: bool) -> None:
        req = parse_order_request(order_body(self.listing.pk, buyer=f"b{buyer}", quantity=qty))
        before = Listing.objects.get(pk=self.listing.pk)
        try:
            placed = order_place(
                req=req, merchant_id=self.merchant.pk, idempotency_key=f"k{len(self.orders)}" if keyed else None
            )
            self.orders.append(placed.order.public_id)
            self.redis_lost = False
        except ApplicationError as exc:
            assert exc.code in {"sold_out", "over_buyer_limit"}, exc.code
            if exc.code == "sold_out":
                stock = Stock.objects.get(sku_id=self.listing.sku_id)
                assert before.sold + qty > before.quota or stock.reserved + qty > stock.on_hand

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def pay(self, data: st.DataObject) -> None:
        pid = data.draw(st.sampled_from(self.orders))
        order = Order.objects.get(public_id=pid)
        body = json.dumps(
            {
                "order": pid,
                "transaction_id": f"t-{pid}-{order.version}",
                "amount": str(order.total),
                "paid_at": timezone.now().isoformat(),
            }
        ).encode()
        ts = str(int(time.time()))
        before = order.status
        payment = payments.payment_receive(body=body, timestamp=ts, signature=payments.sign(body, ts))
        after = Order.objects.get(public_id=pid).status
        if before == S.PENDING_PAYMENT:
            assert after == S.PAID and payment.outcome == "applied"
        elif before == S.CANCELLED:
            assert after == S.REFUND_PENDING and payment.outcome == "late"

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        pid = data.draw(st.sampled_from(self.orders))
        order = Order.objects.get(public_id=pid)
        try:
            order_cancel(order=order, actor="merchant", reason="test")
        except ApplicationError as exc:
            assert exc.code == "invalid_transition"

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def ship(self, data: st.DataObject) -> None:
        pid = data.draw(st.sampled_from(self.orders))
        order = Order.objects.get(public_id=pid)
        if order.status == S.PAID:
            order_transition(order=order, to=S.CONFIRMED, actor="merchant")
            order_transition(order=order, to=S.SHIPPED, actor="merchant", carrier="SF", tracking_number="1")
            self.on_hand -= order.lines.first().quantity

    @rule()
    def expire(self) -> None:
        orders_expire_due(now=timezone.now() + timedelta(hours=1))

    @rule(delta=st.integers(-4, 4).filter(bool))
    def adjust(self, delta: int) -> None:
        try:
            inventory.stock_adjust(sku=self.listing.sku, delta=delta, reason="hypothesis")
            self.on_hand += delta
        except ApplicationError as exc:
            assert exc.code == "insufficient_stock"

    @rule()
    def lose_redis(self) -> None:
        get_client().flushdb()
        self.redis_lost = True

    @invariant()
    def stock_and_quota_are_exact(self) -> None:
        stock = Stock.objects.get(sku_id=self.listing.sku_id)
        assert stock.on_hand == self.on_hand
        assert stock.reserved == self._live_units([S.PENDING_PAYMENT, S.PAID, S.ON_HOLD, S.CONFIRMED])
        listing = Listing.objects.get(pk=self.listing.pk)
        assert listing.sold == self._live_units(
            [S.PENDING_PAYMENT, S.PAID, S.ON_HOLD, S.CONFIRMED, S.SHIPPED, S.DELIVERED, S.COMPLETED]
        )
        assert listing.sold <= listing.quota
        assert_consistent(self.listing.pk, check_redis=gate.gate_state(self.listing.pk) is not None)


@pytest.mark.django_db(transaction=True)
def test_flash_sale_state_machine() -> None:
    run_state_machine_as_test(
        FlashSale,
        settings=settings(
            max_examples=20,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
