"""Platform jobs (django-q2): the stock drain (queued by ``stock_sync.mark``), the shipment push
(queued by ``ship_sync.ship_requested``) and their minute sweeps (schedules in ``apps.py``)."""

from __future__ import annotations

from . import ship_sync, stock_drain


def stock_drain_task(seconds: float | None = None) -> int:
    return stock_drain.stock_drain(seconds)


def stock_sweep() -> dict[str, int]:
    return stock_drain.stock_sweep()


def ship_push(platform_order_id: int) -> str:
    return ship_sync.ship_push(platform_order_id)


def ship_sweep() -> dict[str, int]:
    return ship_sync.ship_sweep()
