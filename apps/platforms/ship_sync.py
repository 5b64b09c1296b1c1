"""Shipment sync out: an order that came from a platform and ships has its waybill pushed to that
platform (Douyin ``order.logisticsAdd``, Kuaishou ``open.seller.order.goods.deliver``, Taobao
``taobao.logistics.offline.send``), retried until accepted.

State on :class:`PlatformOrder`: ``ship_state`` (``pending`` → ``pushed``, or ``failed`` with
``ship_error`` and ``ship_attempts``, retried by the minute sweep with a growing wait;
``skipped`` when the platform already had the order shipped, e.g. shipped in its own back office).
The first attempt is queued after the shipment commits (``order_changed`` → :func:`ship_requested`);
``ship_sweep`` retries what failed and picks up shipments whose signal was lost. One push per
order at a time (a Redis lease); the push is idempotent: a second push of the same waybill is
accepted by the platforms, and a refusal after an attempt whose answer was lost is checked
against the platform's order detail (already shipped: ``pushed``).

Carrier codes: our ``Order.carrier`` is free text. :func:`company_code` normalises it to a key
(``SF``, ``ZTO``, ``YTO``, ``STO``, ``YUNDA``, ``EMS``, ``JD``: the aliases below, Chinese names
included) and looks that key up per platform in ``settings.PLATFORM_CARRIER_CODES`` (merged over
``DEFAULT_CARRIER_CODES``). A carrier the table lacks is passed through as the platform's own code
(Kuaishou: only when numeric); otherwise the push fails with ``unknown_carrier`` until the table
or the order is fixed (the sweep keeps retrying, so the fix is enough).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from secrets import token_hex
from typing import Any

from django.conf import settings
from django.utils import timezone
from django_q.tasks import async_task

from apps.core.redis import get_client
from apps.orders.models import OrderStatus

from .models import PlatformOrder
from .protocol.base import PlatformError, PlatformRejected

log = logging.getLogger(__name__)


class ShipState:
    PENDING = "pending"
    PUSHED = "pushed"
    FAILED = "failed"
    SKIPPED = "skipped"


PLATFORM_CHANNELS = frozenset({"douyin", "kuaishou", "taobao"})
SHIPPED_ONWARD = (OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.COMPLETED)
PLATFORM_SHIPPED = frozenset({"shipped", "delivered", "completed"})
LOCK_KEY = "lc:{psync}:ship:%d"
LOCK_MS = 60_000

CARRIER_ALIASES: dict[str, str] = {
    "SF": "SF", "SFEXPRESS": "SF", "SHUNFENG": "SF", "顺丰": "SF", "顺丰速运": "SF",
    "ZTO": "ZTO", "ZHONGTONG": "ZTO", "中通": "ZTO", "中通快递": "ZTO",
    "YTO": "YTO", "YUANTONG": "YTO", "圆通": "YTO", "圆通速递": "YTO",
    "STO": "STO", "SHENTONG": "STO", "申通": "STO", "申通快递": "STO",
    "YUNDA": "YUNDA", "YD": "YUNDA", "韵达": "YUNDA", "韵达快递": "YUNDA",
    "EMS": "EMS", "中国邮政": "EMS", "邮政EMS": "EMS",
    "JD": "JD", "JINGDONG": "JD", "京东": "JD", "京东物流": "JD", "京东快递": "JD",
}  # fmt: skip
"""Free-text carrier names (upper-cased, spaces, dashes and underscores removed) to our keys."""

DEFAULT_CARRIER_CODES: dict[str, dict[str, str]] = {
    # Douyin: codes from /order/logisticsCompanyList (pinyin names). Unconfirmed per shop.
    "douyin": {"SF": "shunfeng", "ZTO": "zhongtong", "YTO": "yuantong", "STO": "shentong", "YUNDA": "yunda",
               "EMS": "ems", "JD": "jd"},
    # Taobao: taobao.logistics.companies.get codes.
    "taobao": {"SF": "SF", "ZTO": "ZTO", "YTO": "YTO", "STO": "STO", "YUNDA": "YUNDA", "EMS": "EMS", "JD": "JD"},
    # Kuaishou: integer expressCode values. UNCONFIRMED (no public table was available): check them
    # against the express company list of your Kuaishou app and override in PLATFORM_CARRIER_CODES.
    "kuaishou": {"SF": "4", "ZTO": "8", "YTO": "6", "STO": "1", "YUNDA": "2", "EMS": "3", "JD": "14"},
}  # fmt: skip


class UnknownCarrier(ValueError):
    pass


def carrier_key(carrier: str) -> str:
    cleaned = "".join(ch for ch in carrier.strip().upper() if ch not in " -_")
    return CARRIER_ALIASES.get(cleaned, cleaned)


def company_code(platform: str, carrier: str) -> str:
    """The platform's company code for our free-text ``carrier``. Raises UnknownCarrier."""
    overrides = getattr(settings, "PLATFORM_CARRIER_CODES", {}).get(platform, {})
    table = {**DEFAULT_CARRIER_CODES.get(platform, {}), **overrides}
    key = carrier_key(carrier)
    if not key:
        raise UnknownCarrier("the order has no carrier")
    if key in table:
        return table[key]
    raw = carrier.strip()
    if platform == "kuaishou" and not raw.isdigit():
        raise UnknownCarrier(f"no Kuaishou express code for carrier {carrier!r}: set PLATFORM_CARRIER_CODES")
    return raw


def backoff(attempts: int) -> timedelta:
    """Between sweeps' retries: 30 s, 1 min, 2 min, ... at most 15 min."""
    return timedelta(seconds=min(900, 30 * 2 ** max(0, attempts - 1)))


# --- after a shipment commits -----------------------------------------------------------------------


def ship_requested(order: Any) -> None:
    """An order moved to ``shipped``: if it came from a platform, queue its push (not already
    pushed). Cheap for other orders (no query unless the channel is a platform's)."""
    if order.channel not in PLATFORM_CHANNELS:
        return
    try:
        ids = list(
            PlatformOrder.objects.filter(order_id=order.pk)
            .exclude(ship_state__in=(ShipState.PUSHED, ShipState.SKIPPED))
            .values_list("pk", flat=True)
        )
        if not ids:
            return
        PlatformOrder.objects.filter(pk__in=ids).update(ship_state=ShipState.PENDING, updated_at=timezone.now())
        for pk in ids:
            async_task("apps.platforms.tasks.ship_push", pk, q_options={"task_name": f"ship sync {pk} {token_hex(3)}"})
    except Exception:  # noqa: BLE001 - the shipment is committed; the sweep pushes it
        log.warning("shipment sync not queued", extra={"order": order.pk}, exc_info=True)


# --- the push ------------------------------------------------------------------------------------------


def ship_push(platform_order_id: int) -> str:
    """Push one platform order's waybill if it is pending or failed. Returns the state after."""
    client = get_client()
    key, token = LOCK_KEY % platform_order_id, token_hex(8)
    if not client.set(key, token, nx=True, px=LOCK_MS):
        return "busy"
    try:
        return _push(platform_order_id)
    finally:
        if client.get(key) == token:
            client.delete(key)


def _push(platform_order_id: int) -> str:
    from .clients import client_for

    po = PlatformOrder.objects.select_related("shop", "order").filter(pk=platform_order_id).first()
    if po is None or po.ship_state not in (ShipState.PENDING, ShipState.FAILED):
        return po.ship_state if po is not None else "gone"
    order = po.order
    if order is None or order.status not in SHIPPED_ONWARD:
        return po.ship_state
    rows = PlatformOrder.objects.filter(pk=po.pk)
    if po.status in PLATFORM_SHIPPED:
        rows.update(ship_state=ShipState.SKIPPED, ship_error="", updated_at=timezone.now())
        return ShipState.SKIPPED
    try:
        code = company_code(po.platform, order.carrier)
        if not order.tracking_number:
            raise UnknownCarrier("the order has no tracking number")
        with client_for(po.shop) as api:
            try:
                api.ship(po.external_id, code, order.tracking_number)
            except PlatformRejected:
                if po.ship_attempts and _already_shipped(api, po.external_id):
                    pass  # an earlier attempt went through, its answer was lost
                else:
                    raise
    except (PlatformError, UnknownCarrier, ValueError) as exc:
        error = f"{exc.code}: {exc.message}" if isinstance(exc, PlatformError) else f"unknown_carrier: {exc}"
        rows.update(ship_state=ShipState.FAILED, ship_attempts=po.ship_attempts + 1, ship_error=error[:500],
                    updated_at=timezone.now())  # fmt: skip
        log.info("shipment push failed", extra={"platform_order": po.pk, "error": error})
        return ShipState.FAILED
    now = timezone.now()
    rows.update(ship_state=ShipState.PUSHED, ship_attempts=po.ship_attempts + 1, ship_error="", ship_pushed_at=now,
                updated_at=now)  # fmt: skip
    return ShipState.PUSHED


def _already_shipped(api: Any, external_id: str) -> bool:
    try:
        return api.order_detail(external_id).status in PLATFORM_SHIPPED
    except PlatformError:
        return False


def ship_sweep(limit: int = 200) -> dict[str, int]:
    """Every minute: shipped platform orders whose push was never queued become pending; pending
    and failed ones whose wait is over are pushed."""
    now = timezone.now()
    found = PlatformOrder.objects.filter(
        ship_state="", order__status__in=SHIPPED_ONWARD, order__channel__in=PLATFORM_CHANNELS
    ).update(ship_state=ShipState.PENDING, updated_at=now)
    results: dict[str, int] = {"found": found}
    candidates = PlatformOrder.objects.filter(ship_state__in=(ShipState.PENDING, ShipState.FAILED)).order_by(
        "updated_at"
    )[:limit]
    for pk, attempts, updated_at in candidates.values_list("pk", "ship_attempts", "updated_at"):
        if attempts and updated_at + backoff(attempts) > now:
            continue
        state = ship_push(pk)
        results[state] = results.get(state, 0) + 1
    return results
