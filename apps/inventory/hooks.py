"""Hooks the apps above inventory register, so inventory never imports them.

- ``stock_changed``: sent after a stock correction (``stock_adjust``, ``stock_set``) has
  committed, kwargs ``merchant_id`` and ``sku_id``. Order reservations and releases are announced
  by the orders app instead (``apps.orders.hooks.order_changed``).
"""

from __future__ import annotations

from django.dispatch import Signal

stock_changed = Signal()
