"""What the merchant back office shows about orders, defined once: the order-list tabs (and the
statuses behind each) and the home page's figures. The admin (``orders/admin.py``) and the home
page (``templatetags/merchant_admin.py``) read them from here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from apps.catalog.models import LiveSession
from apps.inventory.models import Stock

from .models import Order, OrderStatus
from .selectors import session_summary

S = OrderStatus


@dataclass(frozen=True)
class OrderTab:
    key: str
    label: Promise
    statuses: tuple[str, ...]  # empty: every order


# The order list's tabs, as 抖店 / 快手小店 merchants know them. A status belongs to at most one tab
# besides "all"; completed and cancelled orders are under "all" (and the status filter).
ORDER_TABS: tuple[OrderTab, ...] = (
    OrderTab("all", _("All"), ()),
    OrderTab("pending_payment", _("To be paid"), (S.PENDING_PAYMENT,)),
    OrderTab("to_ship", _("To ship"), (S.PAID, S.CONFIRMED)),
    OrderTab("shipped", _("Shipped"), (S.SHIPPED, S.DELIVERED)),
    OrderTab("after_sales", _("After-sales"), (S.REFUND_PENDING, S.REFUNDED)),
    OrderTab("exception", _("Exceptions"), (S.ON_HOLD,)),
)
TABS_BY_KEY = {t.key: t for t in ORDER_TABS}


def tab_counts(orders: QuerySet[Order]) -> dict[str, int]:
    """One query: how many of ``orders`` each tab holds."""
    agg = orders.aggregate(
        **{t.key: Count("id", filter=Q(status__in=t.statuses)) if t.statuses else Count("id") for t in ORDER_TABS}
    )
    return {k: int(v or 0) for k, v in agg.items()}


def home_figures(*, merchant_ids: list[int] | None) -> dict:
    """The home page: today's orders and GMV, orders to handle per tab, today's shows and
    low-stock SKUs. ``merchant_ids`` None means every merchant (a superuser)."""
    now = timezone.localtime()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    orders = Order.objects.all()
    shows = LiveSession.objects.select_related("merchant")
    stock = Stock.objects.select_related("sku", "sku__product")
    if merchant_ids is not None:
        orders = orders.filter(merchant_id__in=merchant_ids)
        shows = shows.filter(merchant_id__in=merchant_ids)
        stock = stock.filter(sku__merchant_id__in=merchant_ids)
    paid_like = [S.PAID, S.ON_HOLD, S.CONFIRMED, S.SHIPPED, S.DELIVERED, S.COMPLETED]
    today = orders.filter(created_at__gte=start).aggregate(
        orders=Count("id"),
        paid=Count("id", filter=Q(status__in=paid_like)),
        gmv=Sum("total", filter=Q(status__in=paid_like)),
    )
    todays_shows = shows.filter(
        Q(status=LiveSession.Status.LIVE)
        | Q(scheduled_at__gte=start, scheduled_at__lt=start + timedelta(days=1))
        | Q(started_at__gte=start)
    ).order_by("-status", "scheduled_at")[:20]
    low = (
        stock.annotate(units_free=F("on_hand") - F("reserved"))
        .filter(units_free__lte=settings.LOW_STOCK_THRESHOLD)
        .order_by("units_free", "sku__code")[:10]
    )
    return {
        "today": now.date(),
        "orders_today": today["orders"],
        "paid_today": today["paid"],
        "gmv_today": f"{Decimal(today['gmv'] or 0):.2f}",
        "tabs": [(t, n) for t, n in zip(ORDER_TABS, tab_counts(orders).values(), strict=True) if t.key != "all"],
        "shows": [{"show": s, "stats": session_summary(session_id=s.pk)} for s in todays_shows],
        "low_stock": list(low),
        "low_stock_threshold": settings.LOW_STOCK_THRESHOLD,
    }
