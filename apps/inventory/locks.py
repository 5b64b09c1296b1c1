"""Row locks for stock, in the one global lock order (``docs/architecture.md``):

    show (session) -> order row -> a buyer's units on a listing -> listing rows (by pk)
        -> stock rows (by pk) -> the merchant's ledger head

Every transaction that locks more than one of these takes them in that order: placement (the
buyer's units, listing, stock, ledger head), transitions (order, the buyer's units, listing,
stock, ledger head), show and listing changes (show, listing, stock) and stock corrections (the
SKU's active listings, then its stock). Two transactions that lock in one order cannot deadlock on
these rows.
"""

from __future__ import annotations

from django.db.models import QuerySet

from apps.catalog.models import Listing

from .models import Stock

ACTIVE = (Listing.Status.SCHEDULED, Listing.Status.OPEN)


def stock_rows_for_update(sku_ids: list[int]) -> QuerySet[Stock]:
    """Lock stock rows in a fixed (pk) order so concurrent writers cannot deadlock."""
    return Stock.objects.filter(sku_id__in=sku_ids).order_by("pk").select_for_update(of=("self",))


def active_listings_for_update(sku_id: int) -> list[Listing]:
    """Lock the SKU's scheduled and open listings (by pk): the step before its stock row."""
    return list(Listing.objects.filter(sku_id=sku_id, status__in=ACTIVE).order_by("pk").select_for_update(of=("self",)))


def stock_change_lock(sku_id: int) -> tuple[list[Listing], Stock]:
    """Everything a stock correction may touch, locked in the global order: the SKU's active
    listings, then its stock row."""
    listings = active_listings_for_update(sku_id)
    stock = stock_rows_for_update([sku_id]).get()
    return listings, stock


def stock_sync_lock(sku_ids: list[int]) -> tuple[dict[int, list[Listing]], dict[int, Stock]]:
    """``stock_change_lock`` for many SKUs at once (a stock sync), in the same global order: the
    active listings of all of them (by pk), then all their stock rows (by pk). Locking SKU by SKU
    would take a stock row before another SKU's listing, against the order a sale locks in."""
    listings: dict[int, list[Listing]] = {}
    for listing in (
        Listing.objects.filter(sku_id__in=sku_ids, status__in=ACTIVE).order_by("pk").select_for_update(of=("self",))
    ):
        listings.setdefault(listing.sku_id, []).append(listing)
    stocks = {stock.sku_id: stock for stock in stock_rows_for_update(sku_ids)}
    return listings, stocks
