"""Platform shops (connect, read, change, disconnect; SKU mappings) and the channel allocations
of a listing, for the token's merchant. Another merchant's shop or listing is a 404.

Secrets are write-only: no answer carries them (reads say ``has_app_secret`` and so on)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.catalog.models import Listing
from apps.merchants import roles
from apps.merchants.viewsets import MerchantScopedViewSet
from apps.platforms import selectors, services
from apps.platforms.models import ChannelMode, PlatformShop, ShopPlatform

from .serializers import (
    ListingChannelsInputSerializer,
    ListingChannelsSerializer,
    MappingDeleteQuerySerializer,
    PlatformShopInputSerializer,
    PlatformShopPatchSerializer,
    PlatformShopSerializer,
    SkuMappingSerializer,
)

# Error responses: apps.core.error_codes.ENDPOINT_ERRORS (the schema hook documents them).

SHOP = {
    "id": 3,
    "platform": "kuaishou",
    "shop_id": "2161524184",
    "name": "快手旗舰店",
    "app_key": "ks699183844582124027",
    "has_app_secret": True,
    "has_access_token": True,
    "has_msg_secret": True,
    "api_base_url": "",
    "gateway": "https://openapi.kwaixiaodian.com",
    "push_url": "https://shop.example.com/hooks/platforms/kuaishou/q8Xz0vN3kS2mB7yT1cR4wL6pH9dF5gJa",
    "enabled": True,
    "last_message_at": "2026-06-18T20:04:12.118204+08:00",
    "last_pull_at": None,
    "last_error": "",
    "last_error_at": None,
    "created_at": "2026-06-01T10:00:00.000000+08:00",
    "updated_at": "2026-06-18T20:04:12.118204+08:00",
}
SHOP_INPUT = {
    "platform": "kuaishou",
    "shop_id": "2161524184",
    "name": "快手旗舰店",
    "app_key": "ks699183844582124027",
    "app_secret": "sign-secret-from-the-open-platform",
    "access_token": "ChFvYXV0aC5hY2Nlc3NUb2tlbhJg",
    "msg_secret": "MDEyMzQ1Njc4OWFiY2RlZg==",
    "api_base_url": "",
}
SHOP_EXAMPLES = [
    OpenApiExample("Kuaishou", summary="A Kuaishou shop", value=SHOP_INPUT, request_only=True),
    OpenApiExample(
        "Taobao",
        summary="A Taobao shop on the sandbox gateway",
        value={
            "platform": "taobao",
            "shop_id": "shop-nick",
            "name": "天猫店",
            "app_key": "12345678",
            "app_secret": "top-app-secret",
            "access_token": "6100a2b3c4d5e6f7session",
            "api_base_url": "https://gw.api.tbsandbox.com/router/rest",
        },
        request_only=True,
    ),
    OpenApiExample("Connected", summary="A connected shop", value=SHOP, response_only=True),
]
MAPPING = {
    "id": 9,
    "platform_sku_id": "1740000000001",
    "platform_item_id": "3400000000123",
    "sku": 15,
    "sku_code": "LIP-RED-01",
    "created_at": "2026-06-02T09:00:00.000000+08:00",
}
CHANNELS = {
    "listing": 42,
    "quota": 300,
    "allocated": 80,
    "channels": [
        {"platform": "douyin", "mode": "allocated", "units": 50},
        {"platform": "kuaishou", "mode": "allocated", "units": 30},
        {"platform": "taobao", "mode": "shared", "units": 0},
    ],
}
SHOP_ERRORS = (
    "400 `invalid` (a field), `invalid_msg_secret` (Kuaishou needs the base64 of a 16/24/32-byte AES key), "
    "`invalid_url` (api_base_url not http(s)); 409 `shop_exists` (this merchant already has the shop, or it is "
    "connected and enabled elsewhere)."
)


@extend_schema_view(
    list=extend_schema(
        description="The merchant's platform shops (secrets are never shown).",
        examples=[OpenApiExample("Connected", value=SHOP, response_only=True)],
    ),
    retrieve=extend_schema(
        description="One shop with its push URL and sync state.",
        examples=[OpenApiExample("Connected", value=SHOP, response_only=True)],
    ),
)
class PlatformShopViewSet(MerchantScopedViewSet):
    """Douyin, Kuaishou and Taobao shops whose orders come in and whose stock is pushed."""

    queryset = PlatformShop.objects.none()
    role_area = roles.INTEGRATIONS  # app secrets: the owner's, reads included
    selector = staticmethod(selectors.shop_list)
    serializer_class = PlatformShopSerializer

    def _read(self, shop: PlatformShop, http_status: int = status.HTTP_200_OK) -> Response:
        return Response(PlatformShopSerializer(shop, context={"request": self.request}).data, status=http_status)

    @extend_schema(
        request=PlatformShopInputSerializer,
        responses={201: PlatformShopSerializer},
        examples=SHOP_EXAMPLES,
        description="Connect a shop. Register the answer's `push_url` with the platform (Douyin, Kuaishou). "
        + SHOP_ERRORS,
    )
    def create(self, request: Request) -> Response:
        s = PlatformShopInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        shop = services.shop_create(merchant=self.merchant, **s.validated_data)
        return self._read(shop, status.HTTP_201_CREATED)

    @extend_schema(
        request=PlatformShopPatchSerializer,
        responses={200: PlatformShopSerializer},
        examples=[
            OpenApiExample("NewToken", value={"access_token": "a-refreshed-token"}, request_only=True),
            OpenApiExample("Changed", value=SHOP, response_only=True),
        ],
        description="Change the fields sent (a secret left out is kept; the platform does not change). " + SHOP_ERRORS,
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        shop = self.get_object()
        s = PlatformShopPatchSerializer(data=request.data, partial=True)
        s.is_valid(raise_exception=True)
        return self._read(services.shop_update(shop=shop, data=dict(s.validated_data)))

    @extend_schema(responses={204: None}, description="Disconnect a shop (its SKU mappings go with it).")
    def destroy(self, request: Request, pk: str) -> Response:
        services.shop_delete(shop=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        responses={200: SkuMappingSerializer(many=True)},
        examples=[OpenApiExample("Mappings", value=MAPPING, response_only=True)],
        description="The shop's explicit SKU mappings, paginated like every list. A platform SKU without one "
        "matches our SKU by the merchant SKU code the platform carries (Douyin `code`, Kuaishou `skuNick`, "
        "Taobao `outer_sku_id`).",
    )
    @action(detail=True, methods=["get"], url_path="sku-mappings")
    def sku_mappings(self, request: Request, pk: str) -> Response:
        shop = self.get_object()
        page = self.paginate_queryset(selectors.mapping_list(shop=shop))
        return self.get_paginated_response(SkuMappingSerializer(page, many=True).data)

    @extend_schema(
        request=SkuMappingSerializer,
        responses={200: SkuMappingSerializer, 201: SkuMappingSerializer},
        examples=[
            OpenApiExample(
                "Map",
                value={"platform_sku_id": "1740000000001", "platform_item_id": "3400000000123", "sku": 15},
                request_only=True,
            ),
            OpenApiExample("Mapped", value=MAPPING, response_only=True),
        ],
        description="Map a platform SKU to one of our SKUs: 201 when new, 200 when it replaces the "
        "platform SKU's earlier mapping. 400 `invalid` for another merchant's SKU.",
    )
    @sku_mappings.mapping.post
    def sku_mapping_set(self, request: Request, pk: str) -> Response:
        shop = self.get_object()
        s = SkuMappingSerializer(data=request.data, context={"request": request})
        s.is_valid(raise_exception=True)
        mapping, created = services.mapping_set(shop=shop, **s.validated_data)
        mapping = selectors.mapping_list(shop=shop).get(pk=mapping.pk)
        return Response(
            SkuMappingSerializer(mapping).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    @extend_schema(
        parameters=[MappingDeleteQuerySerializer],
        responses={204: None},
        description="Remove the mapping of `?platform_sku_id=` (that SKU then matches by code again); "
        "404 when the shop has no such mapping.",
    )
    @sku_mappings.mapping.delete
    def sku_mapping_delete(self, request: Request, pk: str) -> Response:
        shop = self.get_object()
        q = MappingDeleteQuerySerializer(data=request.query_params)
        q.is_valid(raise_exception=True)
        services.mapping_delete(shop=shop, platform_sku_id=q.validated_data["platform_sku_id"])
        return Response(status=status.HTTP_204_NO_CONTENT)


def channels_body(listing: Listing) -> dict[str, Any]:
    """Every platform's channel on the listing: its own row, else shared. An allocated channel's
    units are its channel pool's quota (the truth: a stock shrink may have cut it since)."""
    rows = {r.platform: r for r in selectors.allocation_list(listing=listing)}
    pools = selectors.open_pools(listing=listing)
    channels: list[dict[str, Any]] = []
    for platform in sorted(ShopPlatform.values):
        row = rows.get(platform)
        if row is None or row.mode != ChannelMode.ALLOCATED:
            channels.append({"platform": platform, "mode": "shared", "units": 0})
        else:
            pool = pools.get(platform)
            channels.append(
                {"platform": platform, "mode": row.mode, "units": pool.quota if pool is not None else row.units}
            )
    allocated = sum(int(c["units"]) for c in channels)
    return {"listing": listing.pk, "quota": listing.quota_total, "allocated": allocated, "channels": channels}


class ListingChannelsViewSet(MerchantScopedViewSet):
    """How each platform draws on a listing: the shared quota, or units allocated to it."""

    queryset = Listing.objects.none()
    role_area = roles.SHOWS
    selector = staticmethod(selectors.listing_list)
    serializer_class = ListingChannelsSerializer

    @extend_schema(
        responses={200: ListingChannelsSerializer},
        examples=[OpenApiExample("Channels", value=CHANNELS, response_only=True)],
        description="Each platform's channel on the listing (a platform not set shares the quota).",
        operation_id="listings_channels_retrieve",
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="The listing's id.")],
    )
    def channels(self, request: Request, pk: str) -> Response:
        return Response(channels_body(self.get_object()))

    @extend_schema(
        request=ListingChannelsInputSerializer,
        responses={200: ListingChannelsSerializer},
        examples=[
            OpenApiExample(
                "Allocate",
                value={
                    "channels": [
                        {"platform": "douyin", "mode": "allocated", "units": 50},
                        {"platform": "kuaishou", "mode": "allocated", "units": 30},
                        {"platform": "taobao", "mode": "shared"},
                    ]
                },
                request_only=True,
            ),
            OpenApiExample("Channels", value=CHANNELS, response_only=True),
        ],
        description="Replace the listing's channels (a platform left out shares the quota). An allocated "
        "platform's orders draw only on its units, and the storefront and the sharing platforms no longer sell "
        "them. Only unsold units move: 400 `allocation_exceeds_quota` when the platforms ask for more than the "
        "whole quota; 409 `allocation_conflict` (with `platform`, `least`, `most`) when a platform would get "
        "fewer units than it sold or more than the shared part has unsold; 409 `invalid_listing_state` for a "
        "closed listing. Back to shared, a platform's unsold units return to the shared part. Nothing changes "
        "on an error.",
        operation_id="listings_channels_update",
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="The listing's id.")],
    )
    def set_channels(self, request: Request, pk: str) -> Response:
        listing = self.get_object()
        s = ListingChannelsInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        services.allocations_set(listing=listing, allocations=s.validated_data["channels"])
        return Response(channels_body(self.get_queryset().get(pk=listing.pk)))
