"""Where events come from: order changes (``apps.orders.hooks.order_changed``, sent after commit)
and stock corrections (``apps.inventory.hooks.stock_changed``, after commit). Each receiver asks
the subscription cache first, so a merchant with no endpoint for an event pays nothing more."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.catalog.api.serializers import ListingSerializer
from apps.catalog.models import Listing, with_pool_figures
from apps.inventory.models import Stock
from apps.orders.api.serializers import order_representation
from apps.orders.models import Order, OrderEvent, OrderLine, OrderStatus

from . import subscriptions
from .event_types import EventType
from .models import AlertState, WebhookEndpoint, WebhookEvent
from .services import event_record

log = logging.getLogger(__name__)
S = OrderStatus
LEVELS = frozenset({EventType.STOCK_LOW, EventType.LISTING_SOLD_OUT})
_BY_STATUS = {
    S.PAID: EventType.ORDER_PAID,
    S.CANCELLED: EventType.ORDER_CANCELLED,
    S.SHIPPED: EventType.ORDER_SHIPPED,
    S.REFUNDED: EventType.ORDER_REFUNDED,
}


def order_event_type(*, status: str, from_status: str | None, created: bool) -> str | None:
    """The event an order change is. A merchant cancelling a paid order moves it to
    ``refund_pending``: that is ``order.cancelled`` too (a late payment on a cancelled order is not)."""
    if created:
        return EventType.ORDER_CREATED
    if status == S.REFUND_PENDING and from_status in (S.PAID, S.CONFIRMED, None):
        return EventType.ORDER_CANCELLED
    if from_status == status:
        return None  # a change of money only (a second payment owed back)
    return _BY_STATUS.get(status)  # type: ignore[call-overload]  # a status string; the map is keyed by the enum's values


def stock_low_threshold() -> int:
    return int(getattr(settings, "WEBHOOK_STOCK_LOW_THRESHOLD", 10))


def on_order_changed(
    sender: Any, *, order: Any, from_status: str | None = None, created: bool = False, **_: Any
) -> None:
    """Receiver of ``order_changed``: runs after the order's commit, in the caller's thread."""
    types = subscriptions.subscribed_types(order.merchant_id)
    if not types:
        return
    try:
        kind = order_event_type(status=order.status, from_status=from_status, created=created)
        if kind is not None and kind in types:
            event_record(
                merchant_id=order.merchant_id,
                type=kind,
                source_key=f"order:{order.public_id}:v{order.version}",
                data={"object": order_representation(order, base_url=settings.PUBLIC_BASE_URL)},
            )
        if types & LEVELS:
            lines = list(OrderLine.objects.filter(order_id=order.pk).values_list("sku_id", "listing_id"))
            levels_check(
                merchant_id=order.merchant_id,
                sku_ids={s for s, _ in lines},
                listing_ids={x for _, x in lines if x},
                types=types,
            )
    except Exception:  # noqa: BLE001 - the order is committed; a lost webhook must not fail it
        log.warning("webhook event not recorded", extra={"order": order.public_id}, exc_info=True)


def on_stock_changed(sender: Any, *, merchant_id: int, sku_id: int, **_: Any) -> None:
    types = subscriptions.subscribed_types(merchant_id)
    if not types & LEVELS:
        return
    try:
        listing_ids = set(
            Listing.objects.filter(sku_id=sku_id, status=Listing.Status.OPEN).values_list("pk", flat=True)
        )
        levels_check(merchant_id=merchant_id, sku_ids={sku_id}, listing_ids=listing_ids, types=types)
    except Exception:  # noqa: BLE001
        log.warning("webhook stock event not recorded", extra={"sku": sku_id}, exc_info=True)


def levels_check(*, merchant_id: int, sku_ids: set[int], listing_ids: set[int], types: frozenset[str]) -> None:
    """Send ``stock.low`` / ``listing.sold_out`` when the condition starts (not again while it
    lasts; again after it ended and started anew)."""
    if EventType.STOCK_LOW in types and sku_ids:
        threshold = stock_low_threshold()
        for stock in Stock.objects.filter(sku_id__in=sku_ids, sku__merchant_id=merchant_id).select_related(
            "sku__product"
        ):
            data = {
                "object": {
                    "object": "stock",
                    "sku": stock.sku.code,
                    "sku_id": stock.sku_id,
                    "sku_name": stock.sku.name,
                    "product_name": stock.sku.product.name,
                    "on_hand": stock.on_hand,
                    "reserved": stock.reserved,
                    "available": stock.available,
                    "threshold": threshold,
                }
            }
            _level(
                merchant_id, f"stock.low:sku:{stock.sku_id}", stock.available <= threshold, EventType.STOCK_LOW, data
            )
    if EventType.LISTING_SOLD_OUT in types and listing_ids:
        # A platform's channel pool is part of its listing: the listing (with its pools'
        # figures) is the one checked, sold out when no channel has a unit left.
        pooled = Listing.objects.filter(pk__in=listing_ids, parent__isnull=False).values("parent_id")
        for listing in with_pool_figures(
            Listing.objects.filter(Q(pk__in=listing_ids) | Q(pk__in=pooled), merchant_id=merchant_id)
            .filter(parent__isnull=True)
            .select_related("sku__product")
        ):
            data = {"object": ListingSerializer(listing).data}
            _level(
                merchant_id,
                f"listing.sold_out:listing:{listing.pk}",
                listing.sold_total >= listing.quota_total,
                EventType.LISTING_SOLD_OUT,
                data,
            )


def _level(merchant_id: int, key: str, on: bool, kind: str, data: dict[str, Any]) -> None:
    if not on:
        AlertState.objects.filter(merchant_id=merchant_id, key=key, active=True).update(active=False)
        return
    with transaction.atomic():
        state, _ = AlertState.objects.get_or_create(merchant_id=merchant_id, key=key)
        if AlertState.objects.filter(pk=state.pk, active=False).update(active=True):
            event_record(
                merchant_id=merchant_id,
                type=kind,
                source_key=f"{key}:{timezone.now().isoformat()}",
                data=_json_safe(data),
            )


def _json_safe(data: Any) -> Any:
    import json

    from django.core.serializers.json import DjangoJSONEncoder

    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


ORDER_TYPES = frozenset(
    {
        EventType.ORDER_CREATED,
        EventType.ORDER_PAID,
        EventType.ORDER_CANCELLED,
        EventType.ORDER_SHIPPED,
        EventType.ORDER_REFUNDED,
    }
)


def order_events_catch_up(
    *, now: datetime | None = None, window: timedelta = timedelta(hours=1), settle: timedelta = timedelta(seconds=30)
) -> int:
    """Record the order events the after-commit hook missed (the process died between the commit
    and the hook, or the database failed at that moment), from the ledger: every order change is
    one ledger event and one version bump (version n is the order's n-th event), so each change
    maps to the same ``order:<id>:v<n>`` key the hook uses and nothing is announced twice.
    Looks at changes between ``window`` and ``settle`` ago (the hook's own moment is left to it).
    The payload is the order as it is now. Returns how many events it recorded."""
    now = now or timezone.now()
    recorded = 0
    merchant_ids = set(WebhookEndpoint.objects.filter(is_active=True).values_list("merchant_id", flat=True))
    for merchant_id in sorted(merchant_ids):
        types = subscriptions.subscribed_types(merchant_id) & ORDER_TYPES
        if not types:
            continue
        order_ids = sorted(
            set(
                OrderEvent.objects.filter(
                    merchant_id=merchant_id, created_at__gte=now - window, created_at__lt=now - settle
                ).values_list("order_id", flat=True)
            )
        )
        for start in range(0, len(order_ids), 200):
            chunk = order_ids[start : start + 200]
            history: dict[int, list[tuple[str, str, datetime]]] = {}
            for order_id, from_status, to_status, at in (
                OrderEvent.objects.filter(order_id__in=chunk)
                .order_by("order_id", "seq")
                .values_list("order_id", "from_status", "to_status", "created_at")
            ):
                history.setdefault(order_id, []).append((from_status, to_status, at))
            wanted: dict[str, tuple[int, str]] = {}
            public_ids = dict(Order.objects.filter(pk__in=chunk).values_list("pk", "public_id"))
            for order_id, steps in history.items():
                for version, (from_status, to_status, at) in enumerate(steps, start=1):
                    if not (now - window <= at < now - settle):
                        continue
                    kind = order_event_type(status=to_status, from_status=from_status or None, created=not from_status)
                    if kind in types:
                        wanted[f"order:{public_ids[order_id]}:v{version}"] = (order_id, kind)
            seen = set(
                WebhookEvent.objects.filter(merchant_id=merchant_id, source_key__in=list(wanted)).values_list(
                    "source_key", flat=True
                )
            )
            for key, (order_id, kind) in wanted.items():
                if key in seen:
                    continue
                order = Order.objects.get(pk=order_id)
                data = {"object": order_representation(order, base_url=settings.PUBLIC_BASE_URL)}
                if event_record(merchant_id=merchant_id, type=kind, source_key=key, data=data) is not None:
                    recorded += 1
                    log.info("webhook event caught up from the ledger", extra={"order": order.public_id, "type": kind})
    return recorded
