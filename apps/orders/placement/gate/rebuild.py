"""Keeping the gate a faithful cache of database truth for one listing: its parameters (window,
quota, limit) follow every listing change after commit, and a listing Redis forgot is rebuilt
from the database under a per-listing lock (one rebuilder)."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Sum

from apps.catalog import window
from apps.catalog.events import publish_listing
from apps.catalog.models import Listing
from apps.catalog.selectors import listing_info_forget
from apps.orders.models import LIVE_STATUSES, PLATFORM_CHANNELS, OrderLine

from . import scripts as gate
from .keys import buyer_key

log = logging.getLogger(__name__)


def gate_meta_for(listing: Listing) -> gate.GateMeta:
    closed, opens, closes = window.gate_window(
        status=listing.status, opens_at=listing.opens_at, closes_at=listing.closes_at
    )
    return gate.GateMeta(
        closed=closed, opens_ms=opens, closes_ms=closes, quota=listing.quota, limit=listing.per_buyer_limit
    )


def live_holds(listing_id: int) -> list[tuple[str, str, int]]:
    """(hold id, buyer key, units) of every order that holds units of the listing."""
    rows = (
        OrderLine.objects.filter(listing_id=listing_id, order__status__in=LIVE_STATUSES)
        .values_list("order__public_id", "order__buyer__external_id", "order__channel")
        .annotate(units=Sum("quantity"))  # one hold per order: a platform order may have two lines here
        .order_by()
    )
    # A sales platform's order is held for the buyer "*" (reserve.lua: no per-buyer limit).
    return [(pid, "*" if ch in PLATFORM_CHANNELS else buyer_key(ext), qty) for pid, ext, ch, qty in rows]


def gate_rebuild(listing_id: int) -> bool:
    """Rebuild the listing's keys from the database under the rebuild lock (one rebuilder)."""
    with gate.gate_rebuild_lock(listing_id) as acquired:
        if not acquired:
            return False
        if gate.gate_state(listing_id) is not None:
            return True  # someone else rebuilt it while we waited
        listing = Listing.objects.filter(pk=listing_id).first()
        if listing is None:
            return False
        gate.gate_load(listing_id, gate_meta_for(listing), live_holds(listing_id))
        log.info("gate rebuilt from the database", extra={"listing": listing_id})
        return True


def gate_sync(listing_id: int) -> None:
    """Push the listing's window/quota/limit to the gate (run after commit). A listing that may
    sell and is not loaded yet is loaded now, so the first second of a sale does not queue every
    buyer behind one rebuild. Then the listing's subscribers hear of it."""
    listing_info_forget(listing_id)
    fresh = Listing.objects.filter(pk=listing_id).first()
    if fresh is None:
        return
    try:
        if (
            gate.gate_meta(listing_id, gate_meta_for(fresh)) == gate.NOT_LOADED
            and fresh.status != Listing.Status.CLOSED
        ):
            gate_rebuild(listing_id)
    except Exception:  # noqa: BLE001 - Redis may vanish; the reconciler repairs
        log.warning("gate meta sync failed", extra={"listing": listing_id}, exc_info=True)
    publish_listing(listing_id)


def on_listing_changed(*, listing_id: int, **_: object) -> None:
    """Receiver of ``apps.catalog.hooks.listing_changed`` (sent inside the changing
    transaction): the gate follows after commit."""
    transaction.on_commit(lambda: gate_sync(listing_id))
