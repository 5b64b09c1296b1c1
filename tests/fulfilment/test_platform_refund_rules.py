"""The rules of a platform's after-sales steps, told straight to the receiver (the inbox path is
``test_platform_refunds.py``): money recorded once and never beyond the total, whichever of the
platform's order status and its refund message comes first; a held order; stock restocked once;
repeated, untimed and misdirected steps."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from apps.fulfilment import refunds
from apps.fulfilment.models import RefundRequest
from apps.fulfilment.platform_refunds import platform_aftersale_apply
from apps.inventory.models import Stock, StockMovement
from apps.orders.models import Order, OrderEvent, OrderStatus
from apps.orders.services.imports import ImportedOrder, ImportLine, order_import
from apps.orders.services.transitions import order_transition
from apps.platforms.processing import order_advance

from ..factories import make_sku

pytestmark = pytest.mark.django_db
S = OrderStatus
R = RefundRequest.Status
T0 = timezone.now() - timedelta(hours=1)


@pytest.fixture
def sku(merchant):  # type: ignore[no-untyped-def]
    return make_sku(merchant, on_hand=10)


def paid_order(merchant: Any, sku: Any, n: int = 1, qty: int = 2, price: str = "50.00") -> Order:
    imported = ImportedOrder(
        merchant_id=merchant.pk, channel="douyin", key=f"douyin·s·{n}", buyer_external_id="douyin:b", buyer_name="",
        buyer_phone="", shipping_address={}, total=Decimal(price) * qty,
        lines=(ImportLine(sku_id=sku.pk, quantity=qty, unit_price=Decimal(price)),),
    )  # fmt: skip
    order = order_import(imported=imported).order
    order_advance(order.pk, S.PAID, actor="douyin")
    return Order.objects.get(pk=order.pk)


def step(order: Order, rid: str, phase: str, t: float | None, amount: str | None = None, kind: str | None = None):  # type: ignore[no-untyped-def]
    return platform_aftersale_apply(
        order_id=order.pk, platform="douyin", refund_id=rid, phase=phase, kind=kind,
        amount=Decimal(amount) if amount is not None else None,
        occurred_at=T0 + timedelta(seconds=t) if t is not None else None, platform_status=phase,
    )  # fmt: skip


def money(order: Order) -> tuple[str, Decimal, Decimal]:
    order.refresh_from_db()
    return order.status, order.refund_due, order.refunded


@pytest.mark.parametrize("part", ["100.00", "30.00"])
def test_the_platforms_cancel_between_agreement_and_payment_owes_the_total_once(merchant, sku, part) -> None:  # type: ignore[no-untyped-def]
    """Agreed (nothing recorded yet), then the order's detail says cancelled (the rest of the total
    is owed), then paid: owed the total, paid back the total."""
    order = paid_order(merchant, sku)
    step(order, "1", "requested", 0, part, "refund")
    step(order, "1", "agreed", 1)
    order_advance(order.pk, S.CANCELLED, actor="douyin")
    step(order, "1", "succeeded", 2)
    assert money(order) == (S.REFUNDED, Decimal("100.00"), Decimal("100.00"))


def test_a_payment_then_the_platforms_cancel_owes_the_rest_only(merchant, sku) -> None:  # type: ignore[no-untyped-def]
    order = paid_order(merchant, sku)
    step(order, "1", "requested", 0, "30.00", "refund")
    step(order, "1", "succeeded", 1)
    assert money(order) == (S.PAID, Decimal("30.00"), Decimal("30.00"))
    order_advance(order.pk, S.CANCELLED, actor="douyin")  # the platform paid the rest back
    assert money(order) == (S.REFUNDED, Decimal("100.00"), Decimal("100.00"))


def test_parts_never_record_more_than_the_total(merchant, sku) -> None:  # type: ignore[no-untyped-def]
    order = paid_order(merchant, sku)
    step(order, "1", "requested", 0, "60.00", "refund")
    step(order, "1", "succeeded", 1)
    step(order, "2", "requested", 2, "100.00", "refund")
    step(order, "2", "succeeded", 3)
    assert money(order) == (S.REFUNDED, Decimal("100.00"), Decimal("100.00"))


def test_paid_back_zero_ends_the_request_and_records_no_money(merchant, sku) -> None:  # type: ignore[no-untyped-def]
    order = paid_order(merchant, sku)
    step(order, "1", "requested", 0, "0", "refund")
    req = step(order, "1", "succeeded", 1, "0")
    assert req.status == R.REFUNDED
    assert money(order) == (S.PAID, Decimal("0"), Decimal("0"))


def test_a_held_order_refunded_whole_is_cancelled_owing_it(merchant, sku) -> None:  # type: ignore[no-untyped-def]
    order = paid_order(merchant, sku)
    order_transition(order=order, to=S.ON_HOLD, actor="risk")
    step(order, "1", "requested", 0, None, "refund")
    step(order, "1", "succeeded", 1)
    assert money(order) == (S.CANCELLED, Decimal("100.00"), Decimal("100.00"))


def test_a_return_asked_before_it_shipped_here_is_restocked_on_receipt(merchant, sku) -> None:  # type: ignore[no-untyped-def]
    order = paid_order(merchant, sku)
    order_transition(order=order, to=S.CONFIRMED, actor="t")
    req = step(order, "1", "requested", 0, None, "return")
    step(order, "1", "return_agreed", 1)
    order_transition(order=order, to=S.SHIPPED, actor="t")  # the detail applied after the step
    on_hand = Stock.objects.get(sku=sku).on_hand
    step(order, "1", "goods_returned", 2)
    refunds.refund_receive(refund=RefundRequest.objects.get(pk=req.pk), actor="staff")
    assert Stock.objects.get(sku=sku).on_hand == on_hand + 2


def test_goods_received_then_refused_are_never_restocked_again(merchant, sku) -> None:  # type: ignore[no-untyped-def]
    order = paid_order(merchant, sku)
    order_transition(order=order, to=S.CONFIRMED, actor="t")
    order_transition(order=order, to=S.SHIPPED, actor="t")
    on_hand = Stock.objects.get(sku=sku).on_hand
    first = step(order, "1", "requested", 0, None, "return")
    step(order, "1", "return_agreed", 1)
    refunds.refund_receive(refund=RefundRequest.objects.get(pk=first.pk), actor="staff")
    step(order, "1", "refused", 2)  # refused on the platform after inspecting the goods
    step(order, "2", "requested", 3, None, "return")
    step(order, "2", "return_agreed", 4)
    step(order, "2", "succeeded", 5)
    assert Stock.objects.get(sku=sku).on_hand == on_hand + 2
    assert StockMovement.objects.filter(kind=StockMovement.Kind.RETURN).count() == 1


def test_the_same_step_again_adds_nothing_to_the_ledger(merchant, sku) -> None:  # type: ignore[no-untyped-def]
    order = paid_order(merchant, sku)
    step(order, "1", "requested", 0, "10.00", "refund")
    step(order, "1", "modified", 1, "8.00", "refund")
    events = OrderEvent.objects.filter(order=order).count()
    step(order, "1", "modified", 1, "8.00", "refund")
    step(order, "1", "modified", 1, "8.00", "refund")
    assert OrderEvent.objects.filter(order=order).count() == events


def test_an_untimed_stale_step_does_not_reopen_a_refused_request(merchant, sku) -> None:  # type: ignore[no-untyped-def]
    order = paid_order(merchant, sku)
    step(order, "1", "requested", 0, "10.00", "refund")
    step(order, "1", "refused", 5)
    assert step(order, "1", "requested", None, "10.00", "refund").status == R.REJECTED


def test_a_platform_id_of_another_order_is_refused_and_changes_nothing(merchant, sku) -> None:  # type: ignore[no-untyped-def]
    a = paid_order(merchant, sku, n=1)
    b = paid_order(merchant, sku, n=2)
    step(a, "1", "requested", 0, "10.00", "refund")
    with pytest.raises(ValueError, match="another order"):
        step(b, "1", "succeeded", 1, "10.00")
    assert money(b) == (S.PAID, Decimal("0"), Decimal("0"))
    assert RefundRequest.objects.get().status == R.REQUESTED


def test_the_buyer_page_offers_no_withdraw_of_a_platforms_request(merchant, sku) -> None:  # type: ignore[no-untyped-def]
    order = paid_order(merchant, sku)
    step(order, "1", "requested", 0, "10.00", "refund")
    panel = refunds.buyer_panel(order)
    assert panel is not None and panel["requests"][0]["can_withdraw"] is False
    assert panel["can_request"] is False
