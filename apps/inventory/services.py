"""Stock writes. Every change of a Stock row also appends a StockMovement in the same transaction.

Hot-path reservations use conditional ``UPDATE`` statements (one statement holds the row lock)
rather than ``SELECT ... FOR UPDATE`` + ``UPDATE``; the CHECK constraint is the last line.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from apps.catalog.hooks import listing_changed
from apps.catalog.models import MAX_UNITS, SKU, Listing

from .errors import InsufficientStock, StockError
from .hooks import stock_changed_on_commit
from .locks import stock_change_lock, stock_rows_for_update
from .models import Stock, StockMovement

log = logging.getLogger(__name__)
MAX_DELTA = MAX_UNITS
_BATCH = 500  # rows per statement of a many-SKU change


def stock_for(*, sku: SKU) -> Stock:
    return Stock.objects.get(sku_id=sku.pk)


def stock_lock(*, sku: SKU) -> Stock:
    return stock_rows_for_update([sku.pk]).get()


def stock_init(*, sku: SKU, on_hand: int) -> Stock:
    stock = Stock.objects.create(sku=sku, on_hand=on_hand, reserved=0)
    if on_hand:
        StockMovement.objects.create(
            merchant_id=sku.merchant_id,
            sku=sku,
            kind=StockMovement.Kind.RECEIVE,
            on_hand_delta=on_hand,
            reason="initial stock",
        )
    return stock


@transaction.atomic
def stock_adjust(*, sku: SKU, delta: int, reason: str, reference: str = "", kind: str | None = None) -> Stock:
    """Receive goods (delta > 0) or correct stock (either sign).

    Locks the SKU's active listings, then its stock row (the global lock order, ``locks.py``; a
    correction during a live sale cannot deadlock with orders). On hand stays within
    ``0..MAX_UNITS`` and may not go below what live orders hold; listings whose unsold quota no
    longer fits in what is left are shrunk, and the gate follows after commit.
    """
    if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0 or abs(delta) > MAX_DELTA:
        raise StockError(f"delta must be a non-zero integer within ±{MAX_DELTA}", extra={"field": "delta"})
    if not reason.strip():
        raise StockError("a reason is required", extra={"field": "reason"})
    kind = kind or (StockMovement.Kind.RECEIVE if delta > 0 else StockMovement.Kind.ADJUST)
    if kind not in (StockMovement.Kind.RECEIVE, StockMovement.Kind.ADJUST):
        raise StockError("kind must be 'receive' or 'adjust'", extra={"field": "kind"})
    if kind == StockMovement.Kind.RECEIVE and delta < 0:
        raise StockError("a receipt adds stock: delta must be positive", extra={"field": "delta"})
    listings, stock = stock_change_lock(sku.pk)
    return stock_adjust_locked(sku, listings, stock, delta=delta, reason=reason, reference=reference, kind=kind)


@transaction.atomic
def stock_return(*, sku: SKU, quantity: int, reason: str, reference: str) -> Stock:
    """Returned goods back on the shelf (after-sales, on receipt): on hand grows by ``quantity``
    with a ``return`` movement naming the refund, under the same locks as a receipt."""
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 0 < quantity <= MAX_DELTA:
        raise StockError(f"quantity must be a positive integer up to {MAX_DELTA}", extra={"field": "quantity"})
    listings, stock = stock_change_lock(sku.pk)
    return stock_adjust_locked(
        sku, listings, stock, delta=quantity, reason=reason, reference=reference, kind=StockMovement.Kind.RETURN
    )


@transaction.atomic
def stock_set(*, sku: SKU, on_hand: int, reason: str, reference: str = "") -> Stock:
    """Set on hand to an absolute count (a stocktake, an ERP's figure). The difference is taken
    from the row as it is once locked, so two concurrent "set to 100" end at 100 and an order
    or shipment landing meanwhile is not undone. Same bounds and effects as ``stock_adjust``."""
    if not isinstance(on_hand, int) or isinstance(on_hand, bool) or not 0 <= on_hand <= MAX_UNITS:
        raise StockError(f"on_hand must be within 0..{MAX_UNITS}", code="stock_limit", extra={"field": "on_hand"})
    if not reason.strip():
        raise StockError("a reason is required", extra={"field": "reason"})
    listings, stock = stock_change_lock(sku.pk)
    delta = on_hand - stock.on_hand
    if delta == 0:
        return stock
    kind = StockMovement.Kind.RECEIVE if delta > 0 else StockMovement.Kind.ADJUST
    return stock_adjust_locked(sku, listings, stock, delta=delta, reason=reason, reference=reference, kind=kind)


def stock_adjust_locked(
    sku: SKU,
    listings: list[Listing],
    stock: Stock,
    *,
    delta: int,
    reason: str,
    reference: str,
    kind: str,
    source: str = "adjust",
) -> Stock:
    """Apply a correction to a stock row locked with its listings (``stock_change_lock``, or
    ``stock_sync_lock`` for many SKUs): checks it (``stock_change_check``, raising before any
    write), moves on hand, appends the movement, cuts the listings' quotas to fit a shrink (the
    gate follows after commit) and announces ``stock_changed`` after commit."""
    stock_change_check(stock, delta)
    Stock.objects.filter(pk=stock.pk).update(on_hand=F("on_hand") + delta)
    StockMovement.objects.create(
        merchant_id=sku.merchant_id,
        sku=sku,
        kind=kind,
        on_hand_delta=delta,
        reason=reason[:200],
        reference=reference[:100],
    )
    stock.refresh_from_db()
    if delta < 0:
        _shrink_quotas_to_fit(stock, listings)
    stock_changed_on_commit(
        merchant_id=sku.merchant_id,
        sku_id=sku.pk,
        sku_code=sku.code,
        on_hand=stock.on_hand,
        reserved=stock.reserved,
        source=source,
        reference=reference[:100],
    )
    return stock


def stock_change_check(stock: Stock, delta: int) -> None:
    """Whether a locked stock row may move by ``delta``: never below what live orders hold
    (``InsufficientStock``), never outside ``0..MAX_UNITS`` (``StockError`` ``stock_limit``).
    Raises before anything is written."""
    if stock.on_hand + delta < stock.reserved:
        raise InsufficientStock(
            f"on hand cannot go below the {stock.reserved} units reserved by orders",
            extra={"on_hand": stock.on_hand, "reserved": stock.reserved},
        )
    if stock.on_hand + delta > MAX_UNITS:
        raise StockError(
            f"on hand cannot exceed {MAX_UNITS} units",
            code="stock_limit",
            extra={"field": "delta", "on_hand": stock.on_hand, "max": MAX_UNITS},
        )


@dataclass(frozen=True)
class LockedChange:
    """One SKU's checked correction: its stock row and active listings locked (``stock_sync_lock``)."""

    sku: SKU
    listings: list[Listing]
    stock: Stock
    delta: int
    kind: str


def stocks_adjust_locked(changes: list[LockedChange], *, reason: str, reference: str, source: str) -> None:
    """``stock_adjust_locked`` for many SKUs in a fixed number of statements (a stock sync of a
    thousand SKUs holds its row locks for a few statements, not a few thousand).

    The rows must be locked by the caller's transaction, so on hand is set to the locked figure
    plus the delta (nothing else can have moved it). Checks every change first (``stock_change_check``:
    raises before any write), then sets on hand, appends the movements, cuts the listings' quotas
    to fit each shrink (the gate follows after commit) and announces ``stock_changed`` after
    commit. Updates the ``Stock`` objects in place."""
    for change in changes:
        stock_change_check(change.stock, change.delta)
    if not changes:
        return
    now = timezone.now()
    for change in changes:
        change.stock.on_hand += change.delta
        change.stock.updated_at = now
    _set_on_hand_locked([c.stock for c in changes], now)
    StockMovement.objects.bulk_create(
        [
            StockMovement(
                merchant_id=c.sku.merchant_id,
                sku_id=c.sku.pk,
                kind=c.kind,
                on_hand_delta=c.delta,
                reason=reason[:200],
                reference=reference[:100],
            )
            for c in changes
        ],
        batch_size=_BATCH,
    )
    for change in changes:
        if change.delta < 0 and change.listings:
            _shrink_quotas_to_fit(change.stock, change.listings)
        stock_changed_on_commit(
            merchant_id=change.sku.merchant_id,
            sku_id=change.sku.pk,
            sku_code=change.sku.code,
            on_hand=change.stock.on_hand,
            reserved=change.stock.reserved,
            source=source,
            reference=reference[:100],
        )


def _set_on_hand_locked(stocks: list[Stock], now: datetime) -> None:
    """Write each locked row's new on hand: one ``UPDATE ... SET on_hand = CASE sku_id WHEN ...``
    per 500 rows (Django's ``bulk_update`` builds the same statement, but spends about a
    millisecond of Python per row doing it, while the row locks are held)."""
    qn = connection.ops.quote_name
    table, pk, on_hand, updated_at = qn(Stock._meta.db_table), qn("sku_id"), qn("on_hand"), qn("updated_at")
    stamp = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cur:
        for start in range(0, len(stocks), _BATCH):
            batch = stocks[start : start + _BATCH]
            whens = " ".join(["WHEN %s THEN %s"] * len(batch))
            ids = ", ".join(["%s"] * len(batch))
            params: list[Any] = [v for stock in batch for v in (stock.pk, stock.on_hand)]
            cur.execute(
                f"UPDATE {table} SET {on_hand} = CASE {pk} {whens} END, {updated_at} = %s WHERE {pk} IN ({ids})",
                [*params, stamp, *(stock.pk for stock in batch)],
            )


def _shrink_quotas_to_fit(stock: Stock, listings: list[Listing]) -> None:
    """Cut the unsold quota of active listings (locked by the caller) until they fit in available
    stock (a listing cut down to what it already sold is simply sold out): the shared parts
    first, newest first, then the platforms' channel pools, newest first. The excess is
    recomputed from the rows before each cut."""
    for listing in listings:
        listing.refresh_from_db(fields=["quota", "sold"])
    room = stock.on_hand - stock.reserved
    for listing in sorted(listings, key=lambda x: (x.parent_id is not None, -x.pk)):
        excess = sum(max(x.quota - x.sold, 0) for x in listings) - room
        if excess <= 0:
            break
        cut = min(excess, listing.quota - listing.sold)
        if cut <= 0:
            continue
        Listing.objects.filter(pk=listing.pk).update(quota=F("quota") - cut, version=F("version") + 1)
        listing.quota -= cut
        log.info("listing quota cut to fit stock", extra={"listing": listing.pk, "cut": cut})
        listing_changed.send(sender=Listing, listing_id=listing.pk)


# --- hot path (called inside the order transaction) ------------------------------------------
def stock_reserve_record(*, sku_id: int, merchant_id: int, quantity: int, reference: str) -> None:
    """The ledger row of a reservation; written before the hot rows are touched (it rolls back
    with them if the reservation fails)."""
    StockMovement.objects.create(
        merchant_id=merchant_id,
        sku_id=sku_id,
        kind=StockMovement.Kind.RESERVE,
        reserved_delta=quantity,
        reference=reference,
        reason="order",
    )


def stock_reserve(*, sku_id: int, quantity: int) -> bool:
    """Reserve units with one conditional UPDATE; False when the stock cannot cover them.
    Pair with ``stock_reserve_record`` in the same transaction."""
    updated = Stock.objects.filter(sku_id=sku_id, reserved__lte=F("on_hand") - quantity).update(
        reserved=F("reserved") + quantity
    )
    return updated == 1


def stock_release(*, sku_id: int, merchant_id: int, quantity: int, reference: str, reason: str) -> None:
    StockMovement.objects.create(
        merchant_id=merchant_id,
        sku_id=sku_id,
        kind=StockMovement.Kind.RELEASE,
        reserved_delta=-quantity,
        reference=reference,
        reason=reason[:200],
    )
    updated = Stock.objects.filter(sku_id=sku_id, reserved__gte=quantity).update(reserved=F("reserved") - quantity)
    if updated != 1:
        raise InsufficientStock("stock release would make reserved negative", extra={"sku": sku_id})


def stock_ship(*, sku_id: int, merchant_id: int, quantity: int, reference: str) -> None:
    stock_ship_many(merchant_id=merchant_id, lines=[ShipLine(sku_id=sku_id, quantity=quantity, reference=reference)])


@dataclass(frozen=True)
class ShipLine:
    """Units of one SKU leaving the warehouse for one order (``reference``: its public id)."""

    sku_id: int
    quantity: int
    reference: str


def stock_ship_many(*, merchant_id: int, lines: Sequence[ShipLine]) -> None:
    """Reserved units leave the warehouse: a ``ship`` movement per line (the trail names each
    order), then each SKU's stock row moved once by the lines' total, in SKU (pk) order, with a
    conditional UPDATE (one statement holds the row lock). Raises InsufficientStock, before the
    transaction commits, when a SKU has fewer units reserved than its lines ship."""
    if not lines:
        return
    StockMovement.objects.bulk_create(
        [
            StockMovement(
                merchant_id=merchant_id,
                sku_id=line.sku_id,
                kind=StockMovement.Kind.SHIP,
                on_hand_delta=-line.quantity,
                reserved_delta=-line.quantity,
                reference=line.reference,
                reason="shipped",
            )
            for line in lines
        ],
        batch_size=_BATCH,
    )
    totals: dict[int, int] = defaultdict(int)
    for line in lines:
        totals[line.sku_id] += line.quantity
    for sku_id in sorted(totals):
        quantity = totals[sku_id]
        updated = Stock.objects.filter(sku_id=sku_id, reserved__gte=quantity).update(
            reserved=F("reserved") - quantity, on_hand=F("on_hand") - quantity
        )
        if updated != 1:
            raise InsufficientStock("shipping more than is reserved", extra={"sku": sku_id})


def stock_recompute(*, sku_id: int) -> tuple[int, int]:
    """(on_hand, reserved) as the movement ledger says they should be."""

    agg = StockMovement.objects.filter(sku_id=sku_id).aggregate(o=Sum("on_hand_delta"), r=Sum("reserved_delta"))
    return agg["o"] or 0, agg["r"] or 0


class CatalogStockHooks:
    """What the catalog needs of stock (``apps.catalog.hooks.StockHooks``), registered in
    ``InventoryConfig.ready``."""

    def init(self, *, sku: SKU, on_hand: int) -> None:
        if not 0 <= on_hand <= MAX_UNITS:
            raise StockError(f"on_hand must be within 0..{MAX_UNITS}", extra={"field": "on_hand"})
        stock_init(sku=sku, on_hand=on_hand)

    def on_hand(self, *, sku: SKU) -> int:
        return stock_for(sku=sku).on_hand

    def lock_available(self, *, sku: SKU) -> int:
        stock = stock_lock(sku=sku)
        return stock.on_hand - stock.reserved

    def adjust(self, *, sku: SKU, delta: int, reason: str, kind: str | None = None, reference: str = "") -> None:
        stock_adjust(sku=sku, delta=delta, reason=reason, kind=kind, reference=reference)

    def set_on_hand(self, *, sku: SKU, on_hand: int, reason: str) -> None:
        stock_set(sku=sku, on_hand=on_hand, reason=reason)
