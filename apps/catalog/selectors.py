"""Catalog reads, scoped to a merchant."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import QuerySet

from .models import SKU, Listing, LiveSession, Product


def product_list(*, merchant_id: int) -> QuerySet[Product]:
    return Product.objects.filter(merchant_id=merchant_id)


def sku_list(*, merchant_id: int) -> QuerySet[SKU]:
    return SKU.objects.filter(merchant_id=merchant_id).select_related("stock", "product")


def session_list(*, merchant_id: int) -> QuerySet[LiveSession]:
    return LiveSession.objects.filter(merchant_id=merchant_id)


def listing_list(*, merchant_id: int) -> QuerySet[Listing]:
    return Listing.objects.filter(merchant_id=merchant_id).select_related("sku", "session")


def listings_on_air(*, session: LiveSession) -> QuerySet[Listing]:
    return (
        Listing.objects.filter(session=session)
        .exclude(status=Listing.Status.CLOSED)
        .select_related("sku", "sku__product")
        .order_by("id")
    )


# --- listing facts the hot path needs, cached so a sold-out answer touches no database -------
@dataclass(frozen=True)
class ListingInfo:
    id: int
    merchant_id: int
    session_id: int
    sku_id: int
    price: str
    payment_window_seconds: int
    per_buyer_limit: int


def _info_key(listing_id: int) -> str:
    return f"listing-info:{listing_id}"


def listing_info(listing_id: int) -> ListingInfo | None:
    try:
        hit = cache.get(_info_key(listing_id))
    except Exception:  # noqa: BLE001 - Redis may vanish
        hit = None
    if hit == "-":
        return None
    if hit:
        return ListingInfo(**hit)
    row = (
        Listing.objects.filter(pk=listing_id)
        .values("id", "merchant_id", "session_id", "sku_id", "price", "payment_window_seconds", "per_buyer_limit")
        .first()
    )
    info = ListingInfo(**{**row, "price": str(row["price"])}) if row else None
    try:
        cache.set(_info_key(listing_id), info.__dict__ if info else "-", timeout=300 if info else 5)
    except Exception:  # noqa: BLE001
        pass
    return info


def listing_info_forget(listing_id: int) -> None:
    try:
        cache.delete(_info_key(listing_id))
    except Exception:  # noqa: BLE001
        pass
