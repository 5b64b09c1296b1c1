"""Catalog reads, scoped to a merchant."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from datetime import timedelta

from django.core.cache import cache
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from apps.core.refresh_ahead import RefreshAhead, Spawn

from .models import SKU, Listing, LiveSession, Product, with_pool_figures


def product_list(*, merchant_id: int) -> QuerySet[Product]:
    return Product.objects.filter(merchant_id=merchant_id)


def sku_list(*, merchant_id: int) -> QuerySet[SKU]:
    return (
        SKU.objects.filter(merchant_id=merchant_id)
        .select_related("stock", "product")
        .prefetch_related("product__images")  # SKU.image_url without a query per SKU
    )


def session_list(*, merchant_id: int) -> QuerySet[LiveSession]:
    return LiveSession.objects.filter(merchant_id=merchant_id)


def listing_list(*, merchant_id: int) -> QuerySet[Listing]:
    """The merchant's listings (channel pools are part of their listing's figures, not rows)."""
    return with_pool_figures(
        Listing.objects.filter(merchant_id=merchant_id, parent__isnull=True).select_related(
            "sku", "sku__product", "session"
        )
    )


# --- listing facts the hot path needs, cached so a sold-out answer touches no database -------
@dataclass(frozen=True)
class ListingInfo:
    id: int
    merchant_id: int
    session_id: int
    sku_id: int
    sku_code: str
    price: str
    payment_window_seconds: int
    per_buyer_limit: int
    sku_name: str = ""
    product_id: int = 0
    product_name: str = ""

    def sku(self) -> SKU:
        """The SKU as an order's answer shows it (code and names), without a query. One instance
        per listing's facts, shared by the orders placed on them: read it, never change it."""
        return _sku_of(self)


@functools.lru_cache(maxsize=4096)
def _sku_of(info: ListingInfo) -> SKU:
    product = Product(pk=info.product_id, name=info.product_name, merchant_id=info.merchant_id)
    return SKU(pk=info.sku_id, code=info.sku_code, name=info.sku_name, merchant_id=info.merchant_id, product=product)


def _info_key(listing_id: int) -> str:
    return f"listing-info:v3:{listing_id}"


# A few seconds in process memory on top of Redis: the hot path asks for the same listing
# thousands of times a second. Its identity (merchant, session, SKU) never changes; the
# informational fields may lag a change by LOCAL_TTL in other processes — the order transaction
# reads price, limit and payment window from the row itself.
LOCAL_TTL = 5.0
REFRESH_AHEAD = 0.4
_local: dict[int, tuple[float, ListingInfo]] = {}
_ahead = RefreshAhead(REFRESH_AHEAD)


def listing_info(listing_id: int) -> ListingInfo | None:
    hit = listing_info_local(listing_id)
    if hit is not None:
        return hit
    info = _listing_info_shared(listing_id)
    if info is not None:
        if len(_local) > 10_000:
            _local.clear()
        _local[listing_id] = (time.monotonic() + LOCAL_TTL, info)
    return info


def listing_info_local(listing_id: int, refresh: Spawn | None = None) -> ListingInfo | None:
    """``listing_info`` from process memory only (a fresh entry), else None: no shared cache, no
    database (the event loop's read; a miss is ``listing_info``'s to fill). ``refresh``: runs a
    callable in the background; given, a hit in the entry's last ``REFRESH_AHEAD`` of its time
    has it read again there, so a listing on air never leaves process memory."""
    hit_local = _local.get(listing_id)
    if hit_local is None:
        return None
    left = hit_local[0] - time.monotonic()
    if left <= 0:
        return None
    _ahead.hit(listing_id, left, LOCAL_TTL, refresh, _listing_info_refresh, listing_id)
    return hit_local[1]


def _listing_info_refresh(listing_id: int) -> None:
    stamp = _ahead.stamp(listing_id)
    info = _listing_info_shared(listing_id)
    if _ahead.stamp(listing_id) != stamp:  # forgotten meanwhile: keep nothing read before it
        return
    if info is None:
        _local.pop(listing_id, None)
    else:
        _local[listing_id] = (time.monotonic() + LOCAL_TTL, info)


def _listing_info_shared(listing_id: int) -> ListingInfo | None:
    try:
        hit = cache.get(_info_key(listing_id))
    except Exception:  # noqa: BLE001 - Redis may vanish
        hit = None
    if hit == "-":
        return None
    if hit:
        return ListingInfo(**hit)
    row = (
        Listing.objects.filter(pk=listing_id, parent__isnull=True)  # a channel pool is no storefront's to buy
        .values("id", "merchant_id", "session_id", "sku_id", "price", "payment_window_seconds", "per_buyer_limit")
        .annotate(
            sku_code=F("sku__code"),
            sku_name=F("sku__name"),
            product_id=F("sku__product_id"),
            product_name=F("sku__product__name"),
        )
        .first()
    )
    info = (
        ListingInfo(
            id=row["id"],
            merchant_id=row["merchant_id"],
            session_id=row["session_id"],
            sku_id=row["sku_id"],
            sku_code=row["sku_code"],
            price=str(row["price"]),
            payment_window_seconds=row["payment_window_seconds"],
            per_buyer_limit=row["per_buyer_limit"],
            sku_name=row["sku_name"],
            product_id=row["product_id"],
            product_name=row["product_name"],
        )
        if row
        else None
    )
    try:
        cache.set(_info_key(listing_id), info.__dict__ if info else "-", timeout=300 if info else 5)
    except Exception:  # noqa: BLE001
        pass
    return info


def listing_info_forget(listing_id: int) -> None:
    _ahead.forget(listing_id)
    _local.pop(listing_id, None)
    try:
        cache.delete(_info_key(listing_id))
    except Exception:  # noqa: BLE001
        pass


# --- pages and websockets -----------------------------------------------------------------------
def listing_public(*, listing_id: int) -> Listing | None:
    """A listing as the public storefront shows it (stock left is public): its figures with its
    channel pools', ``available`` the shared part."""
    return (
        with_pool_figures(Listing.objects.filter(pk=listing_id, parent__isnull=True))
        .select_related("sku", "sku__product", "session")
        .first()
    )


def session_listings(*, session_id: int) -> QuerySet[Listing]:
    """Every listing of a show, closed ones too (the dashboard keeps their final numbers); channel
    pools are counted in their listing's figures."""
    return with_pool_figures(
        Listing.objects.filter(session_id=session_id, parent__isnull=True)
        .select_related("sku", "sku__product")
        .order_by("id")
    )


def session_for_storefront(*, merchant_slug: str, session_id: int | None = None) -> LiveSession | None:
    """The show a storefront link points at: the given one, or the merchant's current live show
    (else its next scheduled one, else its latest)."""
    qs = LiveSession.objects.filter(merchant__slug=merchant_slug, merchant__is_active=True).select_related("merchant")
    if session_id is not None:
        return qs.filter(pk=session_id).first()
    for status, order in (
        (LiveSession.Status.LIVE, "-started_at"),
        (LiveSession.Status.SCHEDULED, "scheduled_at"),
        (LiveSession.Status.ENDED, "-ended_at"),
    ):
        found = qs.filter(status=status).order_by(order, "-id").first()
        if found is not None:
            return found
    return None


def session_scoped(*, session_id: int, merchant_ids: list[int] | None) -> LiveSession | None:
    """A show if it belongs to one of ``merchant_ids`` (None: any merchant, for superusers)."""
    qs = LiveSession.objects.filter(pk=session_id).select_related("merchant")
    if merchant_ids is not None:
        qs = qs.filter(merchant_id__in=merchant_ids)
    return qs.first()


def sessions_for_dashboard(*, merchant_ids: list[int] | None, limit: int = 50) -> list[LiveSession]:
    """Shows to pick from: live first, then scheduled, then the latest ended."""
    qs = LiveSession.objects.select_related("merchant")
    if merchant_ids is not None:
        qs = qs.filter(merchant_id__in=merchant_ids)
    rank: dict[str, int] = {LiveSession.Status.LIVE: 0, LiveSession.Status.SCHEDULED: 1, LiveSession.Status.ENDED: 2}
    rows = list(qs.order_by("-id")[:limit])
    rows.sort(key=lambda s: rank.get(s.status, 3))
    return rows


def sessions_on_air(*, days: int = 7, limit: int = 24) -> list[LiveSession]:
    """Public: shows live now, then shows scheduled in the next ``days`` (active merchants only)."""
    now = timezone.now()
    return list(
        LiveSession.objects.select_related("merchant")
        .filter(merchant__is_active=True)
        .filter(
            Q(status=LiveSession.Status.LIVE)
            | Q(status=LiveSession.Status.SCHEDULED, scheduled_at__gte=now, scheduled_at__lt=now + timedelta(days=days))
        )
        .order_by("-status", "scheduled_at")[:limit]
    )
