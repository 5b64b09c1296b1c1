"""Hooks the apps above catalog register, so catalog never imports them (DESIGN: a lower app
reacts to a higher one through a hook the higher app registers).

- ``listing_changed``: sent inside the transaction that changed a listing's window, quota or
  limit (kwargs ``listing_id``). The order placement registers the gate's follower.
- ``session_gmv``: a show's GMV for the catalog's admin (registered by the orders app).
- ``stock``: the stock operations a SKU's and a listing's rules need (creating a SKU's stock row,
  reading and locking it, correcting it). The inventory app registers its services at startup.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from django.dispatch import Signal

listing_changed = Signal()


class StockHooks(Protocol):
    def init(self, *, sku: Any, on_hand: int) -> None: ...

    def on_hand(self, *, sku: Any) -> int: ...

    def lock_available(self, *, sku: Any) -> int:
        """Lock the SKU's stock row (inside the caller's transaction); units on hand not reserved."""
        ...

    def adjust(self, *, sku: Any, delta: int, reason: str, kind: str | None = None, reference: str = "") -> None: ...

    def set_on_hand(self, *, sku: Any, on_hand: int, reason: str) -> None:
        """Set on hand to a count, the difference taken under the stock row's lock."""
        ...


_stock: StockHooks | None = None


def register_stock(hooks: StockHooks) -> None:
    global _stock
    _stock = hooks


def stock() -> StockHooks:
    if _stock is None:  # pragma: no cover - the inventory app registers in AppConfig.ready
        raise RuntimeError("no stock hooks registered: is apps.inventory in INSTALLED_APPS?")
    return _stock


_session_gmv: Callable[[int], Decimal] | None = None


def register_session_gmv(fn: Callable[[int], Decimal]) -> None:
    global _session_gmv
    _session_gmv = fn


def session_gmv(session_id: int) -> Decimal | None:
    """The show's GMV, or None when no app that knows orders is installed."""
    return _session_gmv(session_id) if _session_gmv is not None else None
