"""How the platform sync hears of changes elsewhere (connected in ``PlatformsConfig.ready``).
Each receiver runs after commit (or defers itself to it) and costs one Redis call when the
merchant sells on a platform, nothing more; none raises. An order's change costs its thread none:
its mark is batched in the publisher thread (``stock_sync.mark_soon``)."""

from __future__ import annotations

from typing import Any

from apps.orders.models import OrderStatus

from . import ship_sync, stock_sync
from .models import ListingChannelAllocation, PlatformShop, PlatformSkuMapping


def on_order_changed(
    sender: Any = None, *, order: Any, from_status: str | None = None, created: bool = False, **_: Any
) -> None:
    """Every order change may move its SKU's available count (placed, expired, cancelled, shipped,
    refunded); a shipment of a platform's order is pushed to that platform."""
    if created or from_status != order.status:
        member = f"l:{order.listing_id}" if order.listing_id else f"o:{order.pk}"
        stock_sync.mark_soon(member, merchant_id=order.merchant_id)
    if order.status == OrderStatus.SHIPPED and from_status != order.status:
        ship_sync.ship_requested(order)


def on_stock_changed(sender: Any = None, *, merchant_id: int, sku_id: int, **_: Any) -> None:
    """On hand moved (a receipt, a correction, an ERP sync): after commit already."""
    stock_sync.mark(f"s:{sku_id}", merchant_id=merchant_id)


def on_listing_changed(sender: Any = None, *, listing_id: int, **_: Any) -> None:
    """A listing's window or quota changed (sent inside its transaction)."""
    stock_sync.mark_on_commit(f"l:{listing_id}", merchant_id=None)


def on_allocation_saved(sender: Any, instance: ListingChannelAllocation, raw: bool = False, **_: Any) -> None:
    if not raw:
        stock_sync.mark_on_commit(f"l:{instance.listing_id}", merchant_id=None)


def on_mapping_saved(sender: Any, instance: PlatformSkuMapping, raw: bool = False, **_: Any) -> None:
    """A mapping added, re-pointed or removed: the SKU's links follow at the next drain (a
    re-pointed mapping's old SKU loses the link there; its new SKU is marked here)."""
    if not raw:
        stock_sync.mark_on_commit(f"s:{instance.sku_id}", merchant_id=None)
        stock_sync.mark_on_commit(f"h:{instance.shop_id}", merchant_id=None)


def on_shop_saved(sender: Any, instance: PlatformShop, raw: bool = False, **_: Any) -> None:
    """A shop connected or enabled: its merchant's changes are marked from now on, and its SKUs
    pushed."""
    if raw or not instance.enabled:
        return
    merchant_id, shop_id = instance.merchant_id, instance.pk

    def after() -> None:
        stock_sync.merchant_has_shop(merchant_id)
        stock_sync.mark(f"h:{shop_id}", merchant_id=merchant_id)

    from django.db import transaction

    transaction.on_commit(after)
