"""Catalog writes: products, SKUs, live shows, listings.

Listing changes are announced with ``hooks.listing_changed`` (the gate follows after commit);
stock is reached through ``hooks.stock()`` (registered by the inventory app).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from apps.merchants.models import Merchant

from . import hooks
from .errors import InvalidInput, ListingStateError, QuotaExceedsSupply, SessionEnded
from .models import SKU, Listing, LiveSession, Platform, Product

ACTIVE_LISTING = (Listing.Status.SCHEDULED, Listing.Status.OPEN)


def _check_price(price: Decimal) -> None:
    if price <= 0:
        raise InvalidInput("price must be greater than 0", extra={"field": "price"})


# --- products and SKUs -----------------------------------------------------------------------
@transaction.atomic
def product_create(*, merchant: Merchant, name: str, description: str = "", is_active: bool = True) -> Product:
    return Product.objects.create(merchant=merchant, name=name, description=description, is_active=is_active)


@transaction.atomic
def product_update(*, product: Product, data: dict[str, Any]) -> Product:
    for field in ("name", "description", "is_active"):
        if field in data:
            setattr(product, field, data[field])
    product.save()
    return product


def sku_check(*, merchant_id: int, sku_id: int | None, data: dict[str, Any]) -> None:
    """The rules of a SKU's own fields (price, code unique per merchant); raises InvalidInput.
    ``sku_create`` and ``sku_update`` run it; forms run it to show the error on the field."""
    if "price" in data:
        if data["price"] is None:
            raise InvalidInput("price is required", extra={"field": "price"})
        _check_price(data["price"])
    if "code" in data:
        taken = SKU.objects.filter(merchant_id=merchant_id, code=data["code"])
        if sku_id is not None:
            taken = taken.exclude(pk=sku_id)
        if taken.exists():
            raise InvalidInput(
                f"SKU code {data['code']!r} already exists", code="duplicate_code", extra={"field": "code"}
            )
    if "on_hand" in data and (data["on_hand"] is None or data["on_hand"] < 0):
        raise InvalidInput("on_hand cannot be negative", extra={"field": "on_hand"})


@transaction.atomic
def sku_create(*, merchant: Merchant, product: Product, code: str, name: str, price: Decimal, on_hand: int) -> SKU:
    """Create a SKU and its stock row; initial stock is a ``receive`` movement."""
    _check_price(price)
    if product.merchant_id != merchant.pk:
        raise InvalidInput("product belongs to another merchant", code="not_found", http_status=404)
    sku_check(merchant_id=merchant.pk, sku_id=None, data={"code": code, "on_hand": on_hand})
    sku = SKU.objects.create(merchant=merchant, product=product, code=code, name=name, price=price)
    hooks.stock().init(sku=sku, on_hand=on_hand)
    return sku


@transaction.atomic
def sku_update(*, sku: SKU, data: dict[str, Any], reason: str = "set on hand via API") -> SKU:
    sku_check(merchant_id=sku.merchant_id, sku_id=sku.pk, data=data)
    if "product" in data and data["product"].merchant_id != sku.merchant_id:
        raise InvalidInput("product belongs to another merchant", code="not_found", http_status=404)
    for field in ("name", "price", "code", "product"):
        if field in data:
            setattr(sku, field, data[field])
    sku.save()
    if "on_hand" in data:
        hooks.stock().set_on_hand(sku=sku, on_hand=data["on_hand"], reason=reason)
    return sku


# --- live shows ------------------------------------------------------------------------------
def _check_platforms(platforms: Any) -> list[str]:
    allowed = set(Platform.values)
    if not isinstance(platforms, list) or any(p not in allowed for p in platforms):
        raise InvalidInput(f"platforms must be a list drawn from {sorted(allowed)}", extra={"field": "platforms"})
    return list(dict.fromkeys(platforms))


@transaction.atomic
def session_create(
    *, merchant: Merchant, title: str, streamer: str, platforms: list[str], scheduled_at: datetime | None
) -> LiveSession:
    return LiveSession.objects.create(
        merchant=merchant,
        title=title,
        streamer=streamer,
        platforms=_check_platforms(platforms),
        scheduled_at=scheduled_at,
    )


@transaction.atomic
def session_update(*, session: LiveSession, data: dict[str, Any]) -> LiveSession:
    session = _session_lock(session.pk)  # decided on the row as it is, not as the caller read it
    if session.status == LiveSession.Status.ENDED:
        raise SessionEnded("an ended show cannot be changed")
    if "platforms" in data:
        data["platforms"] = _check_platforms(data["platforms"])
    for field in ("title", "streamer", "platforms", "scheduled_at"):
        if field in data:
            setattr(session, field, data[field])
    session.save()
    return session


@transaction.atomic
def _session_lock(session_id: int) -> LiveSession:
    """Lock a show's row: the first lock of the global order (``apps/inventory/locks.py``)."""
    return LiveSession.objects.select_for_update().get(pk=session_id)


def session_start(*, session: LiveSession) -> LiveSession:
    session = _session_lock(session.pk)
    if session.status == LiveSession.Status.ENDED:
        raise SessionEnded("this show has ended")
    if session.status == LiveSession.Status.SCHEDULED:
        session.status = LiveSession.Status.LIVE
        session.started_at = timezone.now()
        session.save(update_fields=["status", "started_at"])
    return session


@transaction.atomic
def session_end(*, session: LiveSession) -> LiveSession:
    """End the show and close every listing still on air (their unsold quota returns). Locks the
    show, then its listings (the global lock order)."""
    session = _session_lock(session.pk)
    if session.status == LiveSession.Status.ENDED:
        return session
    session.status = LiveSession.Status.ENDED
    session.ended_at = timezone.now()
    if session.started_at is None:
        session.started_at = session.ended_at
    session.save(update_fields=["status", "ended_at", "started_at"])
    for listing in Listing.objects.filter(session=session, status__in=ACTIVE_LISTING):
        listing_close(listing=listing)
    return session


# --- listings --------------------------------------------------------------------------------
def sku_stock_adjust(*, sku: SKU, delta: int, reason: str, kind: str | None = None, reference: str = "") -> None:
    """Receive goods or correct stock (the inventory app's rules; the gate follows after commit)."""
    hooks.stock().adjust(sku=sku, delta=delta, reason=reason, kind=kind, reference=reference)


def listing_supply(*, sku: SKU, exclude_listing_id: int | None = None) -> int:
    """Units the SKU can still give a listing: stock available minus other listings' unsold quota.
    Locks the stock row (inside the caller's transaction) so the answer holds until commit."""
    available = hooks.stock().lock_available(sku=sku)
    others = Listing.objects.filter(sku=sku, status__in=ACTIVE_LISTING)
    if exclude_listing_id:
        others = others.exclude(pk=exclude_listing_id)
    committed = others.aggregate(n=Sum(F("quota") - F("sold")))["n"] or 0
    return available - committed


def listing_validate(listing: Listing) -> None:
    """Raise an ApplicationError unless the listing fits its SKU's stock and its own rules."""
    _check_price(listing.price)
    if listing.per_buyer_limit < 1:
        raise InvalidInput("per_buyer_limit must be at least 1", extra={"field": "per_buyer_limit"})
    if listing.quota < 1:
        raise InvalidInput("quota must be at least 1", extra={"field": "quota"})
    if listing.payment_window_seconds < 30:
        raise InvalidInput("payment_window_seconds must be at least 30", extra={"field": "payment_window_seconds"})
    if listing.opens_at and listing.closes_at and listing.closes_at <= listing.opens_at:
        raise InvalidInput("closes_at must be after opens_at", extra={"field": "closes_at"})
    if listing.quota < listing.sold:
        raise InvalidInput(f"quota cannot go below the {listing.sold} units already sold", extra={"field": "quota"})
    if listing.sku.merchant_id != listing.merchant_id or listing.session.merchant_id != listing.merchant_id:
        raise InvalidInput("sku and session must belong to your merchant", code="not_found", http_status=404)
    if listing.status != Listing.Status.CLOSED:
        # listing_supply locks the stock row: two listings cannot carve the same units concurrently.
        supply = listing_supply(sku=listing.sku, exclude_listing_id=listing.pk)
        unsold = listing.quota - listing.sold
        if unsold > supply:
            raise QuotaExceedsSupply(
                f"quota {listing.quota} exceeds what the SKU can supply ({supply + listing.sold})",
                extra={"field": "quota", "supply": supply + listing.sold},
            )


@transaction.atomic
def listing_create(
    *,
    merchant: Merchant,
    session: LiveSession,
    sku: SKU,
    price: Decimal,
    quota: int,
    per_buyer_limit: int = 1,
    payment_window_seconds: int = 900,
    opens_at: datetime | None = None,
    closes_at: datetime | None = None,
) -> Listing:
    session = _session_lock(session.pk)  # a show that ends meanwhile cannot gain a listing
    if session.status == LiveSession.Status.ENDED:
        raise SessionEnded("cannot add a listing to an ended show")
    listing = Listing(
        merchant=merchant,
        session=session,
        sku=sku,
        price=price,
        quota=quota,
        per_buyer_limit=per_buyer_limit,
        payment_window_seconds=payment_window_seconds,
        opens_at=opens_at,
        closes_at=closes_at,
    )
    listing_validate(listing)
    listing.save()
    return listing


@transaction.atomic
def listing_update(*, listing: Listing, data: dict[str, Any]) -> Listing:
    listing = Listing.objects.select_for_update(of=("self",)).select_related("sku", "session").get(pk=listing.pk)
    if listing.status == Listing.Status.CLOSED:
        raise ListingStateError("a closed listing cannot be changed")
    for field in ("price", "quota", "per_buyer_limit", "payment_window_seconds", "opens_at", "closes_at"):
        if field in data:
            setattr(listing, field, data[field])
    listing_validate(listing)
    listing.version = F("version") + 1
    listing.save()
    listing.refresh_from_db()
    hooks.listing_changed.send(sender=Listing, listing_id=listing.pk)
    return listing


@transaction.atomic
def listing_open(*, listing: Listing) -> Listing:
    """Open now (the window starts now unless one was set and is still ahead). Locks the show,
    then the listing (the global lock order: ``session_end`` locks them the same way)."""
    session = _session_lock(Listing.objects.filter(pk=listing.pk).values_list("session_id", flat=True).get())
    listing = Listing.objects.select_for_update(of=("self",)).select_related("sku", "session").get(pk=listing.pk)
    if session.status == LiveSession.Status.ENDED:
        raise SessionEnded("a listing of an ended show cannot open")
    if listing.status == Listing.Status.CLOSED:
        raise ListingStateError("a closed listing cannot reopen; create a new listing")
    now = timezone.now()
    if listing.closes_at and listing.closes_at <= now:
        raise ListingStateError("the listing's window has already ended")
    if listing.status != Listing.Status.OPEN:
        listing.status = Listing.Status.OPEN
        if listing.opens_at is None or listing.opens_at > now:
            listing.opens_at = now
        listing.version = F("version") + 1
        listing.save(update_fields=["status", "opens_at", "version"])
        listing.refresh_from_db()
        if session.status == LiveSession.Status.SCHEDULED:
            session_start(session=session)
        hooks.listing_changed.send(sender=Listing, listing_id=listing.pk)
    return listing


@transaction.atomic
def listing_close(*, listing: Listing) -> Listing:
    listing = Listing.objects.select_for_update(of=("self",)).select_related("sku", "session").get(pk=listing.pk)
    if listing.status != Listing.Status.CLOSED:
        listing.status = Listing.Status.CLOSED
        now = timezone.now()
        if listing.closes_at is None or listing.closes_at > now:
            listing.closes_at = now
        if listing.opens_at and listing.opens_at >= listing.closes_at:
            listing.opens_at = None  # never opened: keep the window ordered
        listing.version = F("version") + 1
        listing.save(update_fields=["status", "closes_at", "opens_at", "version"])
        listing.refresh_from_db()
        hooks.listing_changed.send(sender=Listing, listing_id=listing.pk)
    return listing
