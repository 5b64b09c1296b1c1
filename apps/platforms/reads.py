"""What order reads show of a platform's order (``apps.orders.hooks.registry.platform_of``)."""

from __future__ import annotations

from typing import Any


def platform_of(order: Any) -> dict[str, Any] | None:
    """``{name, shop_id, order_id}``; reads ``order.platform_order`` (prefetched by order lists)."""
    try:
        po = order.platform_order
    except Exception:  # noqa: BLE001 - RelatedObjectDoesNotExist: an order with no platform record
        return None
    return {"name": po.platform, "shop_id": po.shop.shop_id, "order_id": po.external_id}
