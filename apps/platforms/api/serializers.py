from __future__ import annotations

from rest_framework import serializers

from apps.catalog.models import SKU
from apps.core.api import ScopedPrimaryKeyRelatedField
from apps.platforms.models import (
    ChannelMode,
    PlatformShop,
    PlatformSkuMapping,
    ShopPlatform,
)
from apps.platforms.selectors import shop_push_url

SECRET_HELP = "Write-only: never returned (reads say has_{name}). Stored encrypted."


class PlatformShopSerializer(serializers.ModelSerializer):
    """A connected shop as read: never its secrets, only whether each is set."""

    has_app_secret = serializers.SerializerMethodField()
    has_access_token = serializers.SerializerMethodField()
    has_msg_secret = serializers.SerializerMethodField()
    api_base_url = serializers.CharField(
        read_only=True, help_text="The gateway set for this shop (a sandbox, a simulator), or empty."
    )
    gateway = serializers.CharField(
        read_only=True, help_text="Where API calls go: api_base_url, else the platform's production gateway."
    )
    push_url = serializers.SerializerMethodField(
        help_text="The absolute URL to register with the platform for pushes; null for Taobao (pulled)."
    )

    class Meta:
        model = PlatformShop
        fields = [
            "id",
            "platform",
            "shop_id",
            "name",
            "app_key",
            "has_app_secret",
            "has_access_token",
            "has_msg_secret",
            "api_base_url",
            "gateway",
            "push_url",
            "enabled",
            "last_message_at",
            "last_pull_at",
            "last_error",
            "last_error_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_has_app_secret(self, obj: PlatformShop) -> bool:
        return bool(obj.app_secret)

    def get_has_access_token(self, obj: PlatformShop) -> bool:
        return bool(obj.access_token)

    def get_has_msg_secret(self, obj: PlatformShop) -> bool:
        return bool(obj.msg_secret)

    def get_push_url(self, obj: PlatformShop) -> str | None:
        return shop_push_url(obj, self.context.get("request"))


def _secret(name: str, *, required: bool = False, max_length: int = 512) -> serializers.CharField:
    return serializers.CharField(
        write_only=True,
        required=required,
        allow_blank=not required,
        max_length=max_length,
        trim_whitespace=True,
        style={"input_type": "password"},
        help_text=SECRET_HELP.format(name=name),
    )


class PlatformShopInputSerializer(serializers.Serializer):
    platform = serializers.ChoiceField(choices=ShopPlatform.choices)
    shop_id = serializers.CharField(max_length=64, help_text="The shop's id on the platform.")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    app_key = serializers.CharField(max_length=128)
    app_secret = _secret("app_secret", required=True)
    access_token = _secret("access_token", max_length=4000)
    msg_secret = _secret("msg_secret", max_length=200)
    api_base_url = serializers.CharField(
        max_length=300,
        required=False,
        allow_blank=True,
        default="",
        help_text="http(s) URL; empty = the platform's production gateway (a sandbox or simulator is set here).",
    )
    enabled = serializers.BooleanField(required=False, default=True)

    def validate(self, attrs: dict) -> dict:
        attrs.setdefault("access_token", "")
        attrs.setdefault("msg_secret", "")
        return attrs


class PlatformShopPatchSerializer(serializers.Serializer):
    """Only the fields sent change; a secret left out is kept."""

    platform = serializers.ChoiceField(choices=ShopPlatform.choices, required=False)
    shop_id = serializers.CharField(max_length=64, required=False)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    app_key = serializers.CharField(max_length=128, required=False)
    app_secret = _secret("app_secret")
    access_token = _secret("access_token", max_length=4000)
    msg_secret = _secret("msg_secret", max_length=200)
    api_base_url = serializers.CharField(max_length=300, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)


class SkuMappingSerializer(serializers.ModelSerializer):
    sku = ScopedPrimaryKeyRelatedField(queryset=SKU.objects.all(), help_text="Our SKU's id.")
    sku_code = serializers.CharField(source="sku.code", read_only=True)
    platform_sku_id = serializers.CharField(max_length=64)
    platform_item_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")

    class Meta:
        model = PlatformSkuMapping
        fields = ["id", "platform_sku_id", "platform_item_id", "sku", "sku_code", "created_at"]
        read_only_fields = ["id", "sku_code", "created_at"]


class MappingDeleteQuerySerializer(serializers.Serializer):
    platform_sku_id = serializers.CharField(max_length=64, help_text="The platform SKU whose mapping to remove.")


class ChannelSerializer(serializers.Serializer):
    platform = serializers.ChoiceField(choices=ShopPlatform.choices)
    mode = serializers.ChoiceField(choices=ChannelMode.choices, required=False, default=ChannelMode.SHARED)
    units = serializers.IntegerField(
        min_value=0,
        max_value=10_000_000,
        required=False,
        allow_null=True,
        default=None,
        help_text="Allocated mode: the units set aside for the platform (required). Shared: 0 or left out.",
    )


class ListingChannelsSerializer(serializers.Serializer):
    """Every platform's channel on a listing (a platform with no row of its own shares the quota)."""

    listing = serializers.IntegerField(read_only=True)
    quota = serializers.IntegerField(read_only=True)
    allocated = serializers.IntegerField(read_only=True, help_text="Units set aside for allocated channels.")
    channels = ChannelSerializer(many=True)


class ListingChannelsInputSerializer(serializers.Serializer):
    channels = serializers.ListField(child=ChannelSerializer(), allow_empty=True, max_length=len(ShopPlatform.values))
