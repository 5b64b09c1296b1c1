"""Order reads, scoped to a merchant."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import QuerySet, Sum

from .models import LIVE_STATUSES, Order


def order_list(*, merchant_id: int) -> QuerySet[Order]:
    return (
        Order.objects.filter(merchant_id=merchant_id)
        .select_related("buyer", "listing", "listing__sku")
        .prefetch_related("lines")
    )


def session_gmv(*, session_id: int) -> Decimal:
    paid = Order.objects.filter(session_id=session_id, status__in=LIVE_STATUSES).exclude(status="pending_payment")
    return paid.aggregate(s=Sum("total"))["s"] or Decimal("0")


def order_for_merchant(*, merchant_id: int, public_id: str) -> Order | None:
    return order_list(merchant_id=merchant_id).filter(public_id=public_id).first()


def order_public(*, public_id: str) -> Order | None:
    return (
        Order.objects.filter(public_id=public_id)
        .select_related("listing", "listing__sku", "listing__sku__product", "session", "merchant", "buyer")
        .prefetch_related("lines", "lines__sku", "lines__sku__product")
        .first()
    )


def order_timeline(*, order: Order) -> QuerySet:
    from .models import OrderEvent

    return OrderEvent.objects.filter(order=order).order_by("seq")


def session_summary(*, session_id: int) -> dict:
    """Running totals of a show: GMV (paid and later), counts by stage, latest ledger seq."""
    from django.db.models import Count, Max, Q

    from .models import LedgerHead, OrderStatus

    s = OrderStatus
    paid_like = [s.PAID, s.ON_HOLD, s.CONFIRMED, s.SHIPPED, s.DELIVERED, s.COMPLETED]
    agg = Order.objects.filter(session_id=session_id).aggregate(
        orders=Count("id"),
        unpaid=Count("id", filter=Q(status=s.PENDING_PAYMENT)),
        paid=Count("id", filter=Q(status__in=paid_like)),
        cancelled=Count("id", filter=Q(status__in=[s.CANCELLED, s.REFUND_PENDING, s.REFUNDED])),
        gmv=Sum("total", filter=Q(status__in=paid_like)),
        placed_value=Sum("total", filter=Q(status__in=LIVE_STATUSES)),
        merchant_id=Max("merchant_id"),
    )
    seq = 0
    if agg["merchant_id"]:
        seq = LedgerHead.objects.filter(pk=agg["merchant_id"]).values_list("seq", flat=True).first() or 0
    return {
        "session": session_id,
        "orders": agg["orders"],
        "unpaid": agg["unpaid"],
        "paid": agg["paid"],
        "cancelled": agg["cancelled"],
        "gmv": str(agg["gmv"] or Decimal("0")),
        "placed_value": str(agg["placed_value"] or Decimal("0")),
        "version": seq,
    }
