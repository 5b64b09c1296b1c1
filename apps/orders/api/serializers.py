"""Order API shapes for output. The order body's input definition (its validation and its schema)
is ``apps.orders.placement.request.ORDER_INPUT``."""

from __future__ import annotations

from datetime import datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.api import DateTimeField
from apps.orders.hooks import order_platform, order_risk
from apps.orders.models import Order, OrderLine, OrderStatus, Payment
from apps.orders.placement.links import status_path


class OrderLineSerializer(serializers.ModelSerializer):
    sku = serializers.CharField(source="sku.code", read_only=True)
    sku_name = serializers.CharField(source="sku.name", read_only=True)
    product_name = serializers.CharField(source="sku.product.name", read_only=True)

    class Meta:
        model = OrderLine
        fields = ["sku", "sku_name", "product_name", "listing", "quantity", "unit_price", "line_total", "reserved"]


class PlatformRefSerializer(serializers.Serializer):
    """Where a sales platform's order came from (null for the storefront's and the API's own)."""

    name = serializers.ChoiceField(choices=["douyin", "kuaishou", "taobao"], help_text="The platform.")
    shop_id = serializers.CharField(help_text="The shop's id on the platform (Taobao: the seller nick).")
    order_id = serializers.CharField(help_text="The platform's order id.")


class RiskSerializer(serializers.Serializer):
    """Risk control's verdict (null until the order is assessed, within seconds of placing it)."""

    score = serializers.FloatField(
        allow_null=True, help_text="0-100 from the risk model; null when only the rules decided."
    )
    decision = serializers.ChoiceField(
        choices=["allow", "review", "block"],
        help_text="`review`: held (`on_hold`) once paid until the merchant approves or rejects it.",
    )
    reasons = serializers.ListField(
        child=serializers.CharField(), help_text="Why, in words, in the request's language."
    )


class OrderSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)
    buyer = serializers.SerializerMethodField()
    lines = OrderLineSerializer(many=True, read_only=True)
    status_url = serializers.SerializerMethodField()
    risk = serializers.SerializerMethodField()
    platform = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = [
            "id",
            "status",
            "listing",
            "session",
            "channel",
            "platform",
            "buyer",
            "lines",
            "total",
            "currency",
            "pay_by",
            "paid_at",
            "status_url",
            "shipping_address",
            "cancel_reason",
            "refund_due",
            "refunded",
            "carrier",
            "tracking_number",
            "risk",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_buyer(self, obj: Order) -> dict[str, str]:
        return {"external_id": obj.buyer.external_id, "name": obj.buyer.name, "phone": obj.buyer.phone}

    @extend_schema_field(RiskSerializer(allow_null=True))
    def get_risk(self, obj: Order) -> dict[str, Any] | None:
        return order_risk(obj)

    @extend_schema_field(PlatformRefSerializer(allow_null=True))
    def get_platform(self, obj: Order) -> dict[str, Any] | None:
        return order_platform(obj)

    def get_status_url(self, obj: Order) -> str:
        path = status_path(obj)
        base = self.context.get("base_url")
        if base:
            return base.rstrip("/") + path
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class OrderCancelSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class PaymentNotifySerializer(serializers.Serializer):
    """The payment notification's body (documentation: the view verifies and parses the raw bytes)."""

    order = serializers.CharField(max_length=32, help_text="The order's public id (`id` in the order API).")
    transaction_id = serializers.CharField(
        max_length=100, help_text="The provider's transaction id: payments are unique on it."
    )
    amount = serializers.CharField(
        help_text="Amount paid, a decimal string with at most 2 decimals (e.g. '178.00'); must equal the total."
    )
    paid_at = DateTimeField(help_text="When the buyer paid (ISO 8601).")


class PaymentResultSerializer(serializers.Serializer):
    transaction_id = serializers.CharField()
    order = serializers.CharField()
    outcome = serializers.ChoiceField(
        choices=Payment.Outcome.choices, help_text="What the payment did (recorded whatever it is)."
    )
    order_status = serializers.ChoiceField(choices=OrderStatus.choices, help_text="The order's status after it.")


# --- the hot path's renderer -------------------------------------------------------------------------
_CENT = Decimal("0.01")


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{Decimal(value).quantize(_CENT, rounding=ROUND_HALF_UP):f}"


def _when(value: datetime | None, tz: tzinfo | None = None) -> str | None:
    """As ``DateTimeField``: in the current time zone (``tz``, when the caller looked it up once
    for several fields), UTC written as ``Z``."""
    if value is None:
        return None
    text = timezone.localtime(value, tz).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def order_representation(order: Order, *, base_url: str, assessed: bool = True) -> dict[str, Any]:
    """Exactly ``OrderSerializer(order, context={"base_url": base_url}).data``, without building
    DRF fields per call (about ten times cheaper). Placement answers every accepted order with it;
    ``tests/orders/test_render.py`` holds the two to the same output. ``assessed=False`` (an order
    placed just now) answers ``risk: null`` without asking: it cannot be assessed yet."""
    prefetched: dict[str, Any] = getattr(order, "_prefetched_objects_cache", {})
    lines = prefetched["lines"] if "lines" in prefetched else list(order.lines.select_related("sku"))
    buyer = order.buyer
    tz = timezone.get_current_timezone()
    return {
        "id": order.public_id,
        "status": order.status,
        "listing": order.listing_id,
        "session": order.session_id,
        "channel": order.channel,
        "platform": order_platform(order),
        "buyer": {"external_id": buyer.external_id, "name": buyer.name, "phone": buyer.phone},
        "lines": [
            {
                "sku": line.sku.code,
                "sku_name": line.sku.name,
                "product_name": line.sku.product.name,
                "listing": line.listing_id,
                "quantity": line.quantity,
                "unit_price": _money(line.unit_price),
                "line_total": _money(line.line_total),
                "reserved": line.reserved,
            }
            for line in lines
        ],
        "total": _money(order.total),
        "currency": order.currency,
        "pay_by": _when(order.pay_by, tz),
        "paid_at": _when(order.paid_at, tz),
        "status_url": base_url.rstrip("/") + status_path(order) if base_url else status_path(order),
        "shipping_address": order.shipping_address,
        "cancel_reason": order.cancel_reason,
        "refund_due": _money(order.refund_due),
        "refunded": _money(order.refunded),
        "carrier": order.carrier,
        "tracking_number": order.tracking_number,
        "risk": order_risk(order) if assessed else None,
        "version": order.version,
        "created_at": _when(order.created_at, tz),
        "updated_at": _when(order.updated_at, tz),
    }
