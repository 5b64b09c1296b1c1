"""The SMS side of ``apps.orders.hooks.order_changed`` (sent after commit, for every order change,
placements included): return at once unless the change is one buyers are told about and the
merchant sends SMS for it (a cached answer), then record the message."""

from __future__ import annotations

import logging
from typing import Any

from . import enabled, services

log = logging.getLogger(__name__)


def on_order_changed(
    sender: Any, *, order: Any, from_status: str | None = None, created: bool = False, **_: Any
) -> None:
    event = services.sms_event_of(status=order.status, from_status=from_status, created=created)
    if event is None:
        return
    try:
        if event not in enabled.enabled_events(order.merchant_id):
            return
        services.message_enqueue(order=order, event=event)
    except Exception:  # noqa: BLE001 - the order is committed; the sweep catches up from the ledger
        log.warning("sms not recorded", extra={"order": getattr(order, "public_id", None)}, exc_info=True)
