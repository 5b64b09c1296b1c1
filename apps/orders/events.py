"""Order pushes to websocket groups, after commit.

``order.<public id>`` gets every change of one order (versioned by ``Order.version``);
``session.<id>`` and ``merchant.<id>`` get a line per order event (versioned by the merchant's
ledger sequence, which commits in order) and coalesced session totals.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import connection, transaction

from apps.catalog.events import publish_listing
from apps.core import events

from .hooks import order_changed
from .payloads import order_payload
from .selectors import session_stats_pushed

log = logging.getLogger(__name__)
STATS_COALESCE_MS = 300


def order_changed_on_commit(
    order: Any,
    *,
    listing_id: int | None,
    seq: int | None = None,
    created: bool = False,
    from_status: str | None = None,
) -> None:
    """Queue the pushes for an order change; they go out only if the transaction commits. A new
    order (``created``) has no ``order.<id>`` subscriber yet: its buyer learns the id from the
    answer and gets the snapshot on connect, so only the session, merchant and listing hear of it.
    The apps above hear of it through ``hooks.order_changed`` (outbound webhooks), after commit too."""
    payload = None if created else order_payload(order)
    session_line = {
        "type": "session.order",
        "version": seq if seq is not None else 0,
        "order": {
            "id": order.public_id,
            "status": order.status,
            "total": str(order.total),
            "listing": listing_id,
            "session": order.session_id,
            "channel": order.channel,
            "created_at": order.created_at.isoformat() if order.created_at else None,
            # 1 on placement: the dashboard counts new orders per minute from these.
            "order_version": order.version,
        },
    }
    merchant_id, session_id = order.merchant_id, order.session_id

    def _send() -> None:
        if payload is not None:
            events.publish(f"order.{order.public_id}", payload)
        events.publish(f"merchant.{merchant_id}", {**session_line, "type": "merchant.order", "session": session_id})
        if session_id:
            events.publish(f"session.{session_id}", session_line)
            publish_session_stats(session_id)
        if listing_id:
            publish_listing(listing_id)
        order_changed.send_robust(sender=None, order=order, from_status=from_status, created=created)

    if connection.in_atomic_block:
        transaction.on_commit(_send)
    else:
        # Nothing to wait for (PostgreSQL placement commits in the server). Django's on_commit
        # would run it now too, but only after checking the connection's autocommit, which checks
        # a connection out of the pool (a health-check round trip) for a thread that needs none.
        _send()


def _push_stats(session_id: int) -> None:
    try:
        stats = session_stats_pushed(session_id=session_id)
        events.publish(f"session.{session_id}", {"type": "session.stats", "version": stats["version"], "stats": stats})
    except Exception:  # noqa: BLE001 - the next push or a snapshot heals a lost one
        log.warning("session stats push failed", extra={"session": session_id}, exc_info=True)
    finally:
        connection.close()


def publish_session_stats(session_id: int) -> None:
    events.coalesced(f"session-stats:{session_id}", STATS_COALESCE_MS, _push_stats, session_id)
