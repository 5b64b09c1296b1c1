from __future__ import annotations

from decimal import Decimal
from typing import TypedDict

from rest_framework import serializers

from apps.catalog.models import (
    CATEGORY_MAX_LENGTH,
    MAX_UNITS,
    SKU,
    VARIANT_MAX_LENGTH,
    Listing,
    LiveSession,
    Platform,
    Product,
)
from apps.core.api import DateTimeField, ScopedPrimaryKeyRelatedField


class MoneyInput(TypedDict):
    max_digits: int
    decimal_places: int
    min_value: Decimal
    max_value: Decimal


MONEY_FIELD: MoneyInput = {
    "max_digits": 12,
    "decimal_places": 2,
    "min_value": Decimal("0.01"),
    "max_value": Decimal("9999999999.99"),
}


class ProductSerializer(serializers.ModelSerializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(allow_blank=True, required=False, default="", max_length=20000)
    category = serializers.CharField(
        allow_blank=True,
        required=False,
        default="",
        max_length=CATEGORY_MAX_LENGTH,
        help_text="What the reports group sales by, e.g. 美妆 or 服饰 (blank: none)",
    )

    class Meta:
        model = Product
        fields = ["id", "name", "description", "category", "is_active", "created_at"]
        read_only_fields = ["id", "created_at"]


class SKUSerializer(serializers.ModelSerializer):
    product = ScopedPrimaryKeyRelatedField(queryset=Product.objects.all())
    code = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200, allow_blank=True, required=False, default="")
    color = serializers.CharField(
        max_length=VARIANT_MAX_LENGTH,
        allow_blank=True,
        required=False,
        default="",
        help_text="Variant colour, e.g. 红色",
    )
    size = serializers.CharField(
        max_length=VARIANT_MAX_LENGTH, allow_blank=True, required=False, default="", help_text="Variant size, e.g. XL"
    )
    price = serializers.DecimalField(**MONEY_FIELD)
    on_hand = serializers.IntegerField(min_value=0, max_value=MAX_UNITS, source="stock.on_hand")
    reserved = serializers.IntegerField(source="stock.reserved", read_only=True)
    available = serializers.IntegerField(source="stock.available", read_only=True)
    image_url = serializers.SerializerMethodField(
        help_text="The SKU's picture, else its product's main picture (absolute URL), or null"
    )

    class Meta:
        model = SKU
        fields = [
            "id",
            "product",
            "code",
            "name",
            "color",
            "size",
            "price",
            "on_hand",
            "reserved",
            "available",
            "image_url",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        validators: list = []  # uniqueness (code, variant) is the service's, with its own error codes

    def get_image_url(self, obj: SKU) -> str | None:
        url = obj.image_url
        if not url:
            return None
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url


class SKUUpdateSerializer(SKUSerializer):
    class Meta(SKUSerializer.Meta):
        read_only_fields = ["id", "created_at", "product"]


class StockAdjustSerializer(serializers.Serializer):
    delta = serializers.IntegerField(min_value=-MAX_UNITS, max_value=MAX_UNITS)
    reason = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=["receive", "adjust"], required=False)
    reference = serializers.CharField(max_length=100, required=False, default="", allow_blank=True)


class SessionSerializer(serializers.ModelSerializer):
    title = serializers.CharField(max_length=200)
    streamer = serializers.CharField(max_length=100)
    platforms = serializers.ListField(child=serializers.ChoiceField(choices=Platform.choices), max_length=4)
    scheduled_at = DateTimeField(required=False, allow_null=True)

    class Meta:
        model = LiveSession
        fields = ["id", "title", "streamer", "platforms", "scheduled_at", "started_at", "ended_at", "status"]
        read_only_fields = ["id", "started_at", "ended_at", "status"]


class ListingSerializer(serializers.ModelSerializer):
    session = ScopedPrimaryKeyRelatedField(queryset=LiveSession.objects.all())
    sku = ScopedPrimaryKeyRelatedField(queryset=SKU.objects.all())
    price = serializers.DecimalField(**MONEY_FIELD)
    quota = serializers.IntegerField(min_value=1, max_value=MAX_UNITS)
    per_buyer_limit = serializers.IntegerField(min_value=1, max_value=10_000, default=1)
    payment_window_seconds = serializers.IntegerField(min_value=30, max_value=7 * 86400, default=900)
    opens_at = DateTimeField(required=False, allow_null=True)
    closes_at = DateTimeField(required=False, allow_null=True)
    status = serializers.SerializerMethodField()
    available = serializers.SerializerMethodField(
        help_text="Units the storefront can still buy (with channel pools: the shared part)."
    )
    available_total = serializers.SerializerMethodField(
        help_text="Units left on every channel: the shared part and the platforms' allocated units not sold."
    )
    sku_code = serializers.CharField(source="sku.code", read_only=True)
    sku_name = serializers.CharField(source="sku.name", read_only=True)
    product_name = serializers.CharField(source="sku.product.name", read_only=True)

    class Meta:
        model = Listing
        fields = [
            "id",
            "session",
            "sku",
            "sku_code",
            "sku_name",
            "product_name",
            "price",
            "quota",
            "sold",
            "available",
            "available_total",
            "per_buyer_limit",
            "payment_window_seconds",
            "opens_at",
            "closes_at",
            "status",
            "version",
            "created_at",
        ]
        read_only_fields = ["id", "sold", "version", "created_at"]

    def get_status(self, obj: Listing) -> str:
        return obj.effective_status()

    def get_available(self, obj: Listing) -> int:
        return obj.available

    def get_available_total(self, obj: Listing) -> int:
        return obj.available_total

    def to_representation(self, instance: Listing) -> dict:
        """Quota, sold and version of the whole listing, its channel pools included (a quota
        sent back is the whole quota: ``listing_update``)."""
        data = super().to_representation(instance)
        data.update(quota=instance.quota_total, sold=instance.sold_total, version=instance.version_total)
        return data

    def validate(self, attrs: dict) -> dict:
        opens = attrs.get("opens_at", getattr(self.instance, "opens_at", None))
        closes = attrs.get("closes_at", getattr(self.instance, "closes_at", None))
        if opens and closes and closes <= opens:
            raise serializers.ValidationError({"closes_at": "closes_at must be after opens_at"})
        return attrs


class ListingUpdateSerializer(ListingSerializer):
    class Meta(ListingSerializer.Meta):
        read_only_fields = ["id", "sold", "version", "created_at", "session", "sku"]
