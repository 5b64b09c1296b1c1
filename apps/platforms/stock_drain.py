"""The stock sync's worker side (see ``stock_sync`` for the whole picture): the drain that turns
marks into pushes, and the minute sweep that repairs what a lost mark left behind.

One drain runs at a time (the Redis lease ``KEY_LEASE``, taken by whoever marks first; the drain
renews it while it works). Every tick it pops the marked members, marks their links pending and
hands each shop's due links to a thread (one thread per shop at a time: a slow or hanging
platform delays only its own links). It ends when nothing is marked, nothing is in flight and no
retry falls due within ``linger`` seconds, after a last look under the released lease, so a mark
made while it stopped starts the next drain (no lost wake-up). Longer backoffs are picked up by
the sweep.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone

from apps.core import events
from apps.core.redis import get_client

from .models import PlatformSkuLink
from .stock_sync import (
    KEY_DIRTY,
    KEY_LEASE,
    conf,
    desired_values,
    links_from_mappings,
    links_mark,
    merchants_rebuild,
    push_shop,
    queue_drain,
    skus_of,
)

log = logging.getLogger(__name__)
POP_BATCH = 1000


def pop_marked() -> list[str]:
    members: list[str] = get_client().spop(KEY_DIRTY, POP_BATCH) or []
    return members


def due_links(*, busy_shops: set[int], within: float = 0.0) -> dict[int, list[int]]:
    """Pending links of enabled shops whose next attempt is due (``within`` seconds from now),
    by shop; shops with a push in flight are left out."""
    horizon = timezone.now() + timedelta(seconds=within)
    rows = (
        PlatformSkuLink.objects.filter(pending=True, uncertain=False, shop__enabled=True)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=horizon))
        .exclude(shop_id__in=busy_shops)
        .values_list("shop_id", "pk")
    )
    by_shop: dict[int, list[int]] = defaultdict(list)
    for shop_id, pk in rows:
        by_shop[shop_id].append(pk)
    return by_shop


def _push_in_thread(shop_id: int, link_ids: list[int]) -> int:
    try:
        return push_shop(shop_id, link_ids)
    except Exception:  # noqa: BLE001 - a bug or a lost database must not end the drain
        log.warning("stock push of a shop failed", extra={"shop": shop_id}, exc_info=True)
        return 0
    finally:
        close_old_connections()


def stock_drain(seconds: float | None = None) -> int:
    """Drain marks into pushes until idle or ``seconds`` (``PLATFORM_SYNC["drain_seconds"]``)
    have passed. Returns the calls that succeeded. The marks this process queued land first
    (``stock_sync.mark_soon``: a drain run in the process that took the orders sees them)."""
    events.flush()
    client = get_client()
    budget = conf("drain_seconds", 20.0) if seconds is None else seconds
    tick, linger, lease_ms = conf("tick", 0.25), conf("linger", 5.0), int(conf("lease_ms", 10_000))
    deadline = time.monotonic() + budget
    inflight: dict[int, Future[int]] = {}
    pushed = 0
    client.set(KEY_LEASE, "1", px=lease_ms)
    pool = ThreadPoolExecutor(max_workers=int(conf("threads", 8)), thread_name_prefix="stock-push")
    try:
        while True:
            started = time.monotonic()
            members = pop_marked()
            if members:
                links_mark(skus_of(members))
            for shop_id in [s for s, f in inflight.items() if f.done()]:
                pushed += inflight.pop(shop_id).result()
            for shop_id, link_ids in due_links(busy_shops=set(inflight)).items():
                inflight[shop_id] = pool.submit(_push_in_thread, shop_id, link_ids)
            client.pexpire(KEY_LEASE, lease_ms)
            if time.monotonic() >= deadline:
                break
            if not members and not inflight and not due_links(busy_shops=set(), within=linger):
                client.delete(KEY_LEASE)
                if not client.scard(KEY_DIRTY) or not client.set(KEY_LEASE, "1", nx=True, px=lease_ms):
                    return pushed
                continue  # marked while we stopped, and the lease is ours again
            time.sleep(max(0.0, tick - (time.monotonic() - started)))
    finally:
        for future in inflight.values():
            pushed += future.result()
        pool.shutdown()
        close_old_connections()
    client.delete(KEY_LEASE)
    if client.scard(KEY_DIRTY) and client.set(KEY_LEASE, "1", nx=True, px=lease_ms):
        queue_drain()  # out of time with work left: a fresh task, behind whatever else waits
    return pushed


def stock_sweep() -> dict[str, int]:
    """Every minute: the merchant set rebuilt, mapping links followed, every link whose count
    differs from what its platform acknowledged marked pending, then a drain unless one runs."""
    merchants_rebuild()
    links_from_mappings()
    stale = []
    links = list(
        PlatformSkuLink.objects.filter(shop__enabled=True, pending=False, uncertain=False).select_related("shop")
    )
    values = desired_values(links)
    for link in links:
        if values[link.pk] != link.pushed_value:
            stale.append(link.sku_id)
    marked = links_mark(set(stale))
    client = get_client()
    ran = 0
    if client.set(KEY_LEASE, "1", nx=True, px=int(conf("lease_ms", 10_000))):
        ran = stock_drain(seconds=conf("sweep_drain_seconds", 20.0))
    return {"stale": marked, "pushed": ran}
