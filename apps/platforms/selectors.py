"""Reads of the platforms' configuration: shops, the push URL to register, SKU resolution,
channel allocations."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.catalog.models import SKU, Listing, with_pool_figures

from .models import ListingChannelAllocation, PlatformShop, PlatformSkuMapping

PUSH_URL_NAME = "platforms:push"
"""The URL name reserved for the push receiver (``/hooks/platforms/<platform>/<push_token>``).
The intake registers the view under it; until then :func:`shop_push_url` builds the same path."""
PUSH_PATH = "/hooks/platforms/{platform}/{push_token}"


def shop_list(*, merchant_id: int) -> QuerySet[PlatformShop]:
    return PlatformShop.objects.filter(merchant_id=merchant_id).order_by("platform", "name", "id")


def shop_by_push_token(*, platform: str, push_token: str) -> PlatformShop | None:
    """The enabled shop a push URL names, or None (an unknown or disabled shop's pushes are refused)."""
    return PlatformShop.objects.filter(platform=platform, push_token=push_token, enabled=True).first()


def _base_url(request: HttpRequest | None) -> str:
    if settings.PUBLIC_BASE_URL:
        return settings.PUBLIC_BASE_URL.rstrip("/")
    if request is not None:
        return request.build_absolute_uri("/").rstrip("/")
    return ""


def shop_push_url(shop: PlatformShop, request: HttpRequest | None = None) -> str | None:
    """The absolute URL to register with the platform for pushes: ``PUBLIC_BASE_URL`` (else the
    request's scheme and host) + ``/hooks/platforms/<platform>/<push_token>``. None for Taobao,
    whose messages are pulled. Without either base, the path alone."""
    if not shop.is_pushed:
        return None
    return _base_url(request) + PUSH_PATH.format(platform=shop.platform, push_token=shop.push_token)


def mapping_list(*, shop: PlatformShop) -> QuerySet[PlatformSkuMapping]:
    return PlatformSkuMapping.objects.filter(shop=shop).select_related("sku").order_by("platform_sku_id")


def resolve_sku(shop: PlatformShop, *, platform_sku_id: str, merchant_sku_code: str) -> SKU | None:
    """Our SKU for a platform order line: the shop's explicit mapping of ``platform_sku_id`` first,
    else the merchant's SKU whose code is ``merchant_sku_code`` (Douyin ``code``/``out_sku_id``,
    Kuaishou ``skuNick``, Taobao ``outer_sku_id``). None when neither matches (the order goes to
    the exception queue)."""
    if platform_sku_id:
        mapping = (
            PlatformSkuMapping.objects.filter(shop=shop, platform_sku_id=str(platform_sku_id))
            .select_related("sku")
            .first()
        )
        if mapping is not None:
            return mapping.sku
    code = (merchant_sku_code or "").strip()
    if not code:
        return None
    return SKU.objects.filter(merchant_id=shop.merchant_id, code=code).first()


def allocation_list(*, listing: Listing) -> QuerySet[ListingChannelAllocation]:
    return ListingChannelAllocation.objects.filter(listing=listing).order_by("platform")


def open_pools(*, listing: Listing) -> dict[str, Listing]:
    """The listing's channel pools not closed, by platform."""
    return {p.channel: p for p in Listing.objects.filter(parent_id=listing.pk).exclude(status=Listing.Status.CLOSED)}


def listing_list(*, merchant_id: int) -> QuerySet[Listing]:
    """The merchant's listings (the channel allocations' parents; channel pools are not listings
    of their own here), with their pools' figures."""
    return with_pool_figures(Listing.objects.filter(merchant_id=merchant_id, parent__isnull=True)).order_by("pk")
