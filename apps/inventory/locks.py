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
