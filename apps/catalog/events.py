"""Listing stock pushes (``listing.<id>`` group), coalesced during a flash sale.

The first change in a window takes a short Redis token (SET NX PX) and schedules one push
``COALESCE_MS`` later that reads the listing as it is then; changes inside the window ride on
that push. The last value always arrives: a change after the read finds the token expired and
schedules the next push.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import connection

from apps.core import events

from .models import Listing, with_pool_figures

log = logging.getLogger(__name__)
COALESCE_MS = 250


def listing_payload(listing: Any, kind: str = "listing.updated") -> dict[str, Any]:
    """A listing with its channel pools: quota and sold of every channel, ``available`` what the
    storefront can still buy (the shared part), versioned by ``version_total``."""
    status = listing.effective_status()
    return {
        "type": kind,
        "version": listing.version_total,
        "listing": {
            "id": listing.pk,
            "session": listing.session_id,
            "status": status,
            "price": str(listing.price),
            "quota": listing.quota_total,
            "sold": listing.sold_total,
            "available": listing.available if status == "open" else 0,
            "per_buyer_limit": listing.per_buyer_limit,
        },
    }


def _push_now(listing_id: int) -> None:
    try:
        listing = with_pool_figures(Listing.objects.filter(pk=listing_id)).first()
        if listing is not None and listing.parent_id is not None:  # a channel pool: its listing's figures moved
            listing_id = listing.parent_id
            listing = with_pool_figures(Listing.objects.filter(pk=listing_id)).first()
        if listing is not None:
            payload = listing_payload(listing)
            events.publish(f"listing.{listing_id}", payload)
            events.publish(f"session.{listing.session_id}", {**payload, "type": "session.listing"})
    except Exception:  # noqa: BLE001 - a dropped push is healed by the next one or a snapshot
        log.warning("listing push failed", extra={"listing": listing_id}, exc_info=True)
    finally:
        connection.close()  # this thread ends: do not leak its connection


def publish_listing(listing_id: int, *, coalesce: bool = True) -> None:
    """Call after commit."""
    if not coalesce:
        _push_now(listing_id)
        return
    events.coalesced(f"listing:{listing_id}", COALESCE_MS, _push_now, listing_id)
