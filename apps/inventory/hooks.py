"""Signals the inventory sends for the apps above it (DESIGN: a lower app reaches a higher one
only through a hook the higher one subscribes to).

- ``stock_changed``: sent **after commit**, once for each SKU whose on hand a change moved (a
  receipt or a correction — ``POST /skus/{id}/stock``, the admin, ``PATCH /skus/{id}`` — or a stock
  sync from the merchant's ERP, ``POST /stock/sync``); never for a change that rolled back, left the
  count as it was or was refused. Reservations, releases and shipments move ``reserved`` and are
  announced per listing instead (``listing_changed`` and the listing pushes). The sales-platform
  sync (issue 12) subscribes to push the new count to Douyin, Kuaishou and Taobao at once.

  kwargs: ``merchant_id``, ``sku_id``, ``sku_code``, ``on_hand``, ``reserved`` (the figures the
  change committed; a receiver that runs later reads the row again), ``source`` (``"adjust"`` or
  ``"sync"``) and ``reference`` (the sync id, or the correction's reference). Receivers are
  called robustly: one that raises is logged and does not fail the request that committed.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.dispatch import Signal

from .models import Stock

log = logging.getLogger(__name__)

stock_changed = Signal()


def stock_changed_on_commit(
    *, merchant_id: int, sku_id: int, sku_code: str, on_hand: int, reserved: int, source: str, reference: str
) -> None:
    """Queue ``stock_changed`` for after the current transaction commits (nothing if it rolls back)."""

    def send() -> None:
        for receiver, result in stock_changed.send_robust(
            sender=Stock,
            merchant_id=merchant_id,
            sku_id=sku_id,
            sku_code=sku_code,
            on_hand=on_hand,
            reserved=reserved,
            source=source,
            reference=reference,
        ):
            if isinstance(result, Exception):
                log.warning(
                    "stock_changed receiver failed",
                    extra={"sku": sku_id, "receiver": getattr(receiver, "__qualname__", repr(receiver))},
                    exc_info=result,
                )

    transaction.on_commit(send)
