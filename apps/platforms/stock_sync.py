"""Stock sync out: every change of a linked SKU's available count reaches each enabled shop that
sells it (Douyin ``sku.syncStock``, Kuaishou ``open.item.sku.stock.update``, Taobao
``taobao.item.quantity.update``).

How a change travels:

1. **Mark** (the only cost on the order path): after commit, ``order_changed``,
   ``stock_changed``, ``listing_changed`` and the shop/mapping/allocation saves call :func:`mark`
   with what changed (``s:<sku>``, ``l:<listing>``, ``o:<order>``, ``h:<shop>``): one Lua call
   (``lua/stock_mark.lua``) adds it to a Redis set, for merchants that have a shop, and takes the
   drain's lease when it is free; only then is a drain task queued (django-q2).
2. **Drain** (``stock_drain.py``, in a worker): every ``PLATFORM_SYNC_TICK`` seconds it empties
   the set, marks the SKUs' links pending (``generation`` + 1) and pushes each due link, shops in
   parallel. Each push reads the figures afresh, so the last value is always the one sent and a
   burst of orders on one SKU costs at most one call per link per tick.
3. **Sweep** (every minute): rebuilds the merchant set, marks every link whose value differs
   from what the platform acknowledged, and drains: what a lost mark or a lost Redis left behind.

Which SKUs a shop sells: its links (:class:`PlatformSkuLink`) — its explicit mappings and the
platform SKUs seen in its imported orders (:func:`sku_link_seen`, called by the intake).

The value pushed (:func:`desired_values`): the SKU's ``on_hand - reserved``; while a listing of
the SKU is on air for the shop's platform (open, its show lists the platform), no more than the
listing can still sell on that platform: in ``allocated`` mode what its channel pool has left (the
pool's unsold units), in ``shared`` mode the listing's unsold shared quota.

Idempotent: Douyin and Taobao get the full count (a Douyin ``idempotent_id`` per link, mark
generation and value); Kuaishou is incremental: the difference from ``pushed_value``, the count it
last acknowledged. A Kuaishou call whose outcome is unknown (the answer was lost after the request
went out) is never resent: the link turns ``uncertain`` until the merchant states the platform's
count (:func:`stock_count_confirm`, the admin). A refused connection, an error envelope or an HTTP
error answer mean "not applied" and are retried with exponential backoff.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from secrets import token_hex
from typing import Any

import httpx
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django_q.tasks import async_task

from apps.catalog.models import SKU, Listing
from apps.core import events
from apps.core.redis import LuaScript, get_client
from apps.inventory.models import Stock
from apps.orders.models import OrderLine

from .models import PlatformShop, PlatformSkuLink, PlatformSkuMapping
from .protocol.base import PlatformError, PlatformTimeout, PlatformUnavailable, StockTarget

log = logging.getLogger(__name__)

KEY_MERCHANTS = "lc:{psync}:merchants"
KEY_DIRTY = "lc:{psync}:dirty"
KEY_LEASE = "lc:{psync}:drain"
SENTINEL = "0"
INCREMENTAL = frozenset({"kuaishou"})
_mark_script = LuaScript(Path(__file__).parent / "lua" / "stock_mark.lua", 3)


def conf(name: str, default: float) -> float:
    """``settings.PLATFORM_SYNC[name]`` (read at call time), else the default."""
    return float(getattr(settings, "PLATFORM_SYNC", {}).get(name, default))


# --- 1. mark ---------------------------------------------------------------------------------------


def mark(member: str, *, merchant_id: int | None) -> None:
    """Note a possible change of available stock (after commit; never raises). ``merchant_id``
    None: any merchant with a shop counts (the caller does not know whose it is)."""
    try:
        result = _mark_script(
            [KEY_MERCHANTS, KEY_DIRTY, KEY_LEASE],
            ["" if merchant_id is None else str(merchant_id), member, int(conf("lease_ms", 10_000))],
        )
    except Exception:  # noqa: BLE001 - the order is committed; the minute sweep catches up
        log.warning("stock sync mark failed", extra={"member": member}, exc_info=True)
        return
    if result == 1:
        queue_drain()


def mark_soon(member: str, *, merchant_id: int | None) -> None:
    """``mark`` without waiting for it (the order path: after commit, every order): the publisher
    thread marks, with the other marks queued meanwhile in one round trip, each member once. A
    mark lost with the process is the minute sweep's to repair, as a failed one is."""
    events.run_script_soon(
        _mark_script,
        [KEY_MERCHANTS, KEY_DIRTY, KEY_LEASE],
        ["" if merchant_id is None else str(merchant_id), member, int(conf("lease_ms", 10_000))],
        then=_marked,
    )


def _marked(result: Any) -> None:
    if result == 1:
        try:
            queue_drain()
        finally:
            connection.close()  # the publisher thread holds no connection between batches


def mark_on_commit(member: str, *, merchant_id: int | None) -> None:
    transaction.on_commit(lambda: mark(member, merchant_id=merchant_id))


def queue_drain() -> None:
    """Queue a drain; the caller holds the lease (released here if queueing fails, or when
    ``PLATFORM_STOCK_DRAIN_QUEUE`` is off: the tests drain explicitly, never inline in a request)."""
    if not settings.PLATFORM_STOCK_DRAIN_QUEUE:
        try:
            get_client().delete(KEY_LEASE)
        except Exception:  # noqa: BLE001
            pass
        return
    try:
        async_task("apps.platforms.tasks.stock_drain_task", q_options={"task_name": f"stock sync {token_hex(4)}"})
    except Exception:  # noqa: BLE001 - the sweep drains within a minute
        log.warning("stock sync drain not queued", exc_info=True)
        try:
            get_client().delete(KEY_LEASE)
        except Exception:  # noqa: BLE001
            pass


def merchant_has_shop(merchant_id: int) -> None:
    """A merchant connected a shop: its changes are marked from now on (no database query)."""
    try:
        get_client().sadd(KEY_MERCHANTS, SENTINEL, str(merchant_id))
    except Exception:  # noqa: BLE001 - rebuilt by the sweep
        log.warning("stock sync merchant set not updated", exc_info=True)


def merchants_rebuild() -> None:
    ids = [str(m) for m in PlatformShop.objects.filter(enabled=True).values_list("merchant_id", flat=True).distinct()]
    pipe = get_client().pipeline(transaction=True)
    pipe.delete(KEY_MERCHANTS)
    pipe.sadd(KEY_MERCHANTS, SENTINEL, *ids)
    pipe.execute()


# --- links ------------------------------------------------------------------------------------------


def sku_link_seen(
    *, shop: PlatformShop, sku: SKU, platform_item_id: str, platform_sku_id: str, merchant_sku_code: str = ""
) -> PlatformSkuLink | None:
    """Record that ``shop`` sells ``sku`` as ``platform_sku_id`` of item ``platform_item_id`` (an
    imported order's line), so its stock is pushed there from now on. Idempotent; an explicit
    mapping of the platform SKU keeps the upper hand (its SKU stays). Call it from the intake,
    inside or outside a transaction: the push follows after commit. Returns the link (None
    without a platform SKU id)."""
    platform_sku_id = str(platform_sku_id or "").strip()
    if not platform_sku_id:
        return None
    link, created = PlatformSkuLink.objects.get_or_create(
        shop=shop,
        platform_sku_id=platform_sku_id,
        defaults={
            "sku": sku,
            "platform_item_id": str(platform_item_id or ""),
            "merchant_sku_code": merchant_sku_code or "",
            "uncertain": shop.platform in INCREMENTAL,
        },
    )
    if not created:
        changes: dict[str, Any] = {}
        if link.source == PlatformSkuLink.Source.ORDER and link.sku_id != sku.pk:
            changes["sku"] = sku
        if platform_item_id and not link.platform_item_id:
            changes["platform_item_id"] = str(platform_item_id)
        if merchant_sku_code and link.merchant_sku_code != merchant_sku_code:
            changes["merchant_sku_code"] = merchant_sku_code
        if changes:
            PlatformSkuLink.objects.filter(pk=link.pk).update(**changes, updated_at=timezone.now())
    mark_on_commit(f"s:{sku.pk}", merchant_id=shop.merchant_id)
    return link


def links_from_mappings(sku_ids: Iterable[int] | None = None) -> None:
    """Make the links of explicit mappings (of ``sku_ids``, else all) follow them: one link per
    mapped platform SKU, pointing at the mapped SKU; a mapping's link whose mapping is gone goes."""
    mappings = PlatformSkuMapping.objects.select_related("shop")
    links = PlatformSkuLink.objects.filter(source=PlatformSkuLink.Source.MAPPING)
    if sku_ids is not None:
        ids = list(sku_ids)
        mappings, links = mappings.filter(sku_id__in=ids), links.filter(sku_id__in=ids)
    wanted = {(m.shop_id, m.platform_sku_id): m for m in mappings}
    have = {(x.shop_id, x.platform_sku_id): x for x in links}
    for key in have.keys() - wanted.keys():
        have[key].delete()
    for key, m in wanted.items():
        link = have.get(key)
        if link is not None and link.sku_id == m.sku_id and link.platform_item_id == (m.platform_item_id or ""):
            continue
        PlatformSkuLink.objects.update_or_create(
            shop_id=m.shop_id,
            platform_sku_id=m.platform_sku_id,
            defaults={"sku_id": m.sku_id, "source": PlatformSkuLink.Source.MAPPING,
                      "platform_item_id": m.platform_item_id or (link.platform_item_id if link else ""),
                      "pending": True},  # fmt: skip
            create_defaults={"sku_id": m.sku_id, "source": PlatformSkuLink.Source.MAPPING,
                             "platform_item_id": m.platform_item_id, "uncertain": m.shop.platform in INCREMENTAL},
        )  # fmt: skip


def skus_of(members: Iterable[str]) -> set[int]:
    """The SKU ids that marked members stand for."""
    by_kind: dict[str, set[int]] = defaultdict(set)
    for member in members:
        kind, _, ident = member.partition(":")
        if ident.isdigit():
            by_kind[kind].add(int(ident))
    skus = set(by_kind["s"])
    if by_kind["l"]:
        skus |= set(Listing.objects.filter(pk__in=by_kind["l"]).values_list("sku_id", flat=True))
    if by_kind["o"]:
        skus |= set(OrderLine.objects.filter(order_id__in=by_kind["o"]).values_list("sku_id", flat=True))
    if by_kind["h"]:
        skus |= set(PlatformSkuLink.objects.filter(shop_id__in=by_kind["h"]).values_list("sku_id", flat=True))
        skus |= set(PlatformSkuMapping.objects.filter(shop_id__in=by_kind["h"]).values_list("sku_id", flat=True))
    return skus


def links_mark(sku_ids: set[int]) -> int:
    """Mark the links of these SKUs pending (a new generation). Returns how many."""
    if not sku_ids:
        return 0
    links_from_mappings(sku_ids)
    return PlatformSkuLink.objects.filter(sku_id__in=sku_ids).update(
        pending=True, generation=F("generation") + 1, updated_at=timezone.now()
    )


# --- the value to push ------------------------------------------------------------------------------


def desired_values(links: Iterable[PlatformSkuLink], now: datetime | None = None) -> dict[int, int]:
    """``{link id: count}`` for links whose shop is loaded (``select_related("shop")``)."""
    links = list(links)
    now = now or timezone.now()
    sku_ids = {x.sku_id for x in links}
    rows = Stock.objects.filter(sku_id__in=sku_ids).values_list("sku_id", "on_hand", "reserved")
    available = {s: max(0, on_hand - reserved) for s, on_hand, reserved in rows}
    on_air: dict[tuple[int, str], Listing] = {}
    for listing in (
        Listing.objects.filter(sku_id__in=sku_ids, parent__isnull=True)
        .exclude(status=Listing.Status.CLOSED)
        .select_related("session")
    ):
        if listing.is_open(now):
            for platform in listing.session.platforms or []:
                on_air.setdefault((listing.sku_id, platform), listing)
    # An allocated platform sells its channel pool (the units set aside for it), not the shared part.
    pools = {
        (pool.parent_id, pool.channel): pool
        for pool in Listing.objects.filter(parent_id__in={x.pk for x in on_air.values()}).exclude(
            status=Listing.Status.CLOSED
        )
    }
    values: dict[int, int] = {}
    for link in links:
        value = available.get(link.sku_id, 0)
        air = on_air.get((link.sku_id, link.shop.platform))
        if air is not None:
            pool = pools.get((air.pk, link.shop.platform))
            value = min(value, (pool or air).available)
        values[link.pk] = value
    return values


# --- pushing one shop's due links ----------------------------------------------------------------


def backoff(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s, ... up to ``backoff_max`` (60 s)."""
    return timedelta(seconds=min(conf("backoff_max", 60.0), conf("backoff_base", 1.0) * 2 ** max(0, attempts - 1)))


def outcome_unknown(exc: PlatformError) -> bool:
    """Could the call have been applied although no success came back? Not when the connection
    was never made, nor when the platform answered (an error envelope, an HTTP error status)."""
    cause = exc.__cause__
    if isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return False
    if isinstance(exc, PlatformTimeout):
        return True
    return isinstance(exc, PlatformUnavailable) and (exc.http_status is None or exc.code == "bad_response")


def claim(link_ids: Iterable[int], now: datetime) -> list[PlatformSkuLink]:
    """Take the links for one push each (a lease on the row: two drains never push one link at
    once, so Kuaishou differences never overlap)."""
    until = now + timedelta(seconds=conf("claim_seconds", 60.0))
    claimed = [
        pk
        for pk in link_ids
        if PlatformSkuLink.objects.filter(pk=pk)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=until)
    ]
    return list(PlatformSkuLink.objects.filter(pk__in=claimed).select_related("shop").order_by("pk"))


def push_shop(shop_id: int, link_ids: list[int]) -> int:
    """Push the claimed links of one shop with one client. Returns the calls that succeeded."""
    from .clients import client_for

    now = timezone.now()
    links = claim(link_ids, now)
    if not links:
        return 0
    done = 0
    try:
        values = desired_values(links, now)
        with client_for(links[0].shop, timeout=conf("timeout", 5.0)) as client:
            for link in links:
                done += push_link(client, link, values[link.pk])
    finally:
        PlatformSkuLink.objects.filter(pk__in=[x.pk for x in links]).update(claimed_until=None)
    return done


def push_link(client: Any, link: PlatformSkuLink, value: int) -> int:
    """One link: skip when the platform already has ``value``, else one call and its outcome
    recorded. Returns 1 when a call succeeded."""
    gen, platform = link.generation, link.shop.platform
    rows = PlatformSkuLink.objects.filter(pk=link.pk)
    settled = Case(When(generation=gen, then=Value(False)), default=Value(True))
    if link.uncertain:
        rows.update(desired_value=value)
        return 0
    if link.pushed_value == value:
        rows.update(desired_value=value, pending=settled)
        return 0
    target = StockTarget(
        platform_item_id=link.platform_item_id,
        platform_sku_id=link.platform_sku_id or None,
        merchant_sku_code=link.merchant_sku_code or None,
    )
    try:
        client.set_stock(target, value, idempotency_key=f"lc-{link.pk}-{gen}-{value}", last_known=link.pushed_value)
    except PlatformError as exc:
        _failed(link, value, f"{exc.code}: {exc.message}", retryable=exc.retryable,
                unknown=platform in INCREMENTAL and outcome_unknown(exc))  # fmt: skip
        return 0
    except ValueError as exc:  # the link lacks what the platform needs (an item id)
        _failed(link, value, f"invalid: {exc}", retryable=False, unknown=False)
        return 0
    now = timezone.now()
    rows.update(
        pushed_value=value, pushed_at=now, desired_value=value, attempts=0, last_error="", pending=settled,
        next_attempt_at=now + timedelta(seconds=conf("min_interval", 0.25)), updated_at=now,
    )  # fmt: skip
    return 1


def _failed(link: PlatformSkuLink, value: int, error: str, *, retryable: bool, unknown: bool) -> None:
    now = timezone.now()
    attempts = link.attempts + 1
    changes: dict[str, Any] = {"desired_value": value, "attempts": attempts, "last_error": error[:500],
                               "last_error_at": now, "updated_at": now}  # fmt: skip
    if unknown:
        changes["uncertain"] = True
        changes["last_error"] = ("outcome unknown, nothing resent until the platform's count is confirmed: " + error)[
            :500
        ]
    else:
        wait = backoff(attempts) if retryable else timedelta(seconds=conf("backoff_max", 60.0))
        changes["next_attempt_at"] = now + wait
    PlatformSkuLink.objects.filter(pk=link.pk).update(**changes)
    log.info("stock push failed", extra={"link": link.pk, "error": error, "retryable": retryable})


def stock_count_confirm(*, link: PlatformSkuLink, platform_count: int) -> None:
    """The merchant states the count the platform shows now (a Kuaishou link before its first
    push, or after a call whose outcome is unknown): the next difference starts from it."""
    if platform_count < 0:
        raise ValueError("platform_count must be >= 0")
    PlatformSkuLink.objects.filter(pk=link.pk).update(
        pushed_value=platform_count, uncertain=False, pending=True, generation=F("generation") + 1,
        next_attempt_at=None, attempts=0, last_error="", updated_at=timezone.now(),
    )  # fmt: skip
    mark_on_commit(f"s:{link.sku_id}", merchant_id=None)
