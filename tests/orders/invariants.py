"""Whole-system invariants checked after every concurrency scenario."""

from __future__ import annotations

from collections import Counter

from django.db.models import Sum

from apps.catalog.models import Listing
from apps.inventory.models import Stock
from apps.inventory.services import stock_recompute
from apps.orders.models import (
    LIVE_STATUSES,
    PLATFORM_CHANNELS,
    RESERVING_STATUSES,
    ListingBuyer,
    Order,
    OrderEvent,
    OrderLine,
)
from apps.orders.placement.gate import scripts as gate
from apps.orders.placement.gate.rebuild import buyer_key
from apps.orders.services.ledger import ledger_verify


def assert_consistent(listing_id: int, *, expect_sold: int | None = None, check_redis: bool = True) -> None:
    listing = Listing.objects.get(pk=listing_id)
    lines = OrderLine.objects.filter(listing_id=listing_id)
    live = lines.filter(order__status__in=LIVE_STATUSES)
    sold = live.aggregate(n=Sum("quantity"))["n"] or 0
    assert listing.sold == sold, f"listing.sold {listing.sold} != live units {sold}"
    assert 0 <= listing.sold <= listing.quota
    if expect_sold is not None:
        assert sold == expect_sold, f"sold {sold}, expected {expect_sold}"

    stock = Stock.objects.get(sku_id=listing.sku_id)
    reserving = (
        OrderLine.objects.filter(sku_id=listing.sku_id, order__status__in=RESERVING_STATUSES, reserved=True).aggregate(
            n=Sum("quantity")
        )["n"]
        or 0
    )
    assert stock.reserved == reserving, f"stock.reserved {stock.reserved} != reserving units {reserving}"
    assert 0 <= stock.reserved <= stock.on_hand
    assert stock_recompute(sku_id=listing.sku_id) == (stock.on_hand, stock.reserved), "movement ledger drift"

    per_buyer: Counter[int] = Counter()
    # (a sales platform's orders: the platform applied its own limits)
    for buyer_id, qty in live.exclude(order__channel__in=PLATFORM_CHANNELS).values_list("order__buyer_id", "quantity"):
        per_buyer[buyer_id] += qty
    for lb in ListingBuyer.objects.filter(listing_id=listing_id):
        assert lb.units == per_buyer.get(lb.buyer_id, 0), f"buyer {lb.buyer_id} units {lb.units}"
        assert lb.units <= listing.per_buyer_limit
    assert all(q <= listing.per_buyer_limit for q in per_buyer.values())

    assert ledger_verify(merchant_id=listing.merchant_id) == []
    for order in Order.objects.filter(listing_id=listing_id).prefetch_related("events"):
        evs = sorted(order.events.all(), key=lambda e: e.seq)
        assert evs and evs[0].from_status == "" and evs[-1].to_status == order.status
        assert len(evs) == order.version, f"{order.public_id}: {len(evs)} events, version {order.version}"
    assert (
        OrderEvent.objects.filter(order__listing_id=listing_id).count()
        >= Order.objects.filter(listing_id=listing_id).count()
    )

    if check_redis:
        state = gate.gate_state(listing_id)
        assert state is not None, "gate not loaded"
        live_orders = {
            pid: ("*" if channel in PLATFORM_CHANNELS else buyer_key(ext), qty)
            for pid, ext, qty, channel in live.values_list(
                "order__public_id", "order__buyer__external_id", "quantity", "order__channel"
            )
        }
        redis_holds = {pid: (b, q) for pid, (b, q, _ts) in state["holds"].items()}
        assert redis_holds == live_orders, "redis holds differ from live orders"
        assert state["left"] == listing.quota - sold, f"redis left {state['left']} != {listing.quota - sold}"
        buyers: Counter[str] = Counter()
        for b, q in live_orders.values():
            buyers[b] += q
        assert {k: v for k, v in state["buyers"].items() if v} == dict(buyers)
