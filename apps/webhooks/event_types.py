"""The events an endpoint can subscribe to: one table, used by validation, the admin's checkboxes,
the API schema and the docs."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class EventType(models.TextChoices):
    ORDER_CREATED = "order.created", _("Order created")
    ORDER_PAID = "order.paid", _("Order paid")
    ORDER_CANCELLED = "order.cancelled", _("Order cancelled")
    ORDER_SHIPPED = "order.shipped", _("Order shipped")
    ORDER_REFUNDED = "order.refunded", _("Order refunded")
    STOCK_LOW = "stock.low", _("Stock low")
    LISTING_SOLD_OUT = "listing.sold_out", _("Listing sold out")


EVENT_TYPES: frozenset[str] = frozenset(EventType.values)
