"""Stock sync out against the three simulators over real sockets: orders, cancels and stock
corrections reach every shop that sells the SKU and converge on the truth; bursts are coalesced
with the last value sent; a platform that fails or times out for a while is retried and
converges; a Kuaishou update whose outcome is unknown is never sent twice; the order path costs
one Redis call; the sweep repairs a lost mark; the admin list shows the state in Chinese."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django_q.conf import Conf

from apps.catalog.models import SKU
from apps.core.redis import get_client
from apps.inventory.models import Stock
from apps.inventory.services import stock_adjust
from apps.merchants.services import staff_create
from apps.orders.services.transitions import order_cancel
from apps.platforms import receivers, stock_sync
from apps.platforms.models import ListingChannelAllocation, PlatformSkuLink
from apps.platforms.services import allocations_set, mapping_set
from apps.platforms.simulator import SimSku
from apps.platforms.stock_drain import stock_drain, stock_sweep
from apps.platforms.stock_sync import KEY_DIRTY, KEY_LEASE, links_from_mappings, sku_link_seen, stock_count_confirm

from ..factories import make_listing, make_session, make_sku
from .sync_support import FAST, Platforms, import_on, place, running_platforms, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def platforms(merchant: Any, settings: Any) -> Iterator[Platforms]:
    with running_platforms(merchant, settings) as running:
        yield running


def link_all(p: Platforms, sku: SKU, *, kuaishou_count: int) -> dict[str, PlatformSkuLink]:
    """Douyin and Taobao learn the SKU from an order line, Kuaishou from an explicit mapping (its
    count on the platform confirmed, as the merchant does in the admin)."""
    ids = {"douyin": ("3600000000001", "1750000000001"), "kuaishou": ("8800000000002", "2200000000002"),
           "taobao": ("6000000000003", "5000000000003")}  # fmt: skip
    for platform, (item, sku_id) in ids.items():
        p.sims[platform].add_skus([SimSku(sku.code, sku_id, item, 9900)])
    for platform in ("douyin", "taobao"):
        item, sku_id = ids[platform]
        sku_link_seen(shop=p.shops[platform], sku=sku, platform_item_id=item, platform_sku_id=sku_id,
                      merchant_sku_code=sku.code)  # fmt: skip
    item, sku_id = ids["kuaishou"]
    mapping_set(shop=p.shops["kuaishou"], platform_sku_id=sku_id, sku=sku, platform_item_id=item)
    links_from_mappings([sku.pk])
    p.sims["kuaishou"].set_platform_stock(sku.code, kuaishou_count)
    ks = PlatformSkuLink.objects.get(shop=p.shops["kuaishou"])
    assert ks.uncertain and ks.pushed_value is None  # an incremental platform's count is not known yet
    stock_count_confirm(link=ks, platform_count=kuaishou_count)
    return {x.shop.platform: x for x in PlatformSkuLink.objects.select_related("shop").filter(sku=sku)}


def available(sku: SKU) -> int:
    stock = Stock.objects.get(sku=sku)
    return stock.on_hand - stock.reserved


def platform_counts(p: Platforms, sku: SKU) -> dict[str, int | None]:
    return {name: sim.stock.get(sku.code) for name, sim in p.sims.items()}


def converged(p: Platforms, sku: SKU, expected: dict[str, int] | None = None) -> bool:
    truth = available(sku)
    return platform_counts(p, sku) == (expected or {name: truth for name in p.sims})


def settle(p: Platforms, sku: SKU, seconds: float = 10.0, expected: dict[str, int] | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        stock_drain(seconds=2.0)
        if converged(p, sku, expected):
            return
        time.sleep(0.05)
    raise AssertionError(f"not converged: {platform_counts(p, sku)} != {expected or available(sku)}")


def test_orders_cancels_and_corrections_reach_every_shop(platforms: Platforms, merchant: Any) -> None:
    listing = make_listing(merchant, quota=30, on_hand=30)
    links = link_all(platforms, listing.sku, kuaishou_count=12)
    orders = [place(listing, f"b{i}") for i in range(8)]
    for order in orders[:3]:
        order_cancel(order=order, actor="merchant", reason="test")
    stock_adjust(sku=listing.sku, delta=5, reason="receipt")
    settle(platforms, listing.sku)
    assert available(listing.sku) == 30 - 8 + 3 + 5
    for link in PlatformSkuLink.objects.filter(pk__in=[x.pk for x in links.values()]):
        assert (link.pushed_value, link.pending, link.uncertain, link.last_error) == (30, False, False, "")
        assert link.pushed_at is not None
    # Kuaishou got differences from the confirmed 12, never a full count; Douyin a full count.
    ks_calls = platforms.sims["kuaishou"].calls("stock")
    assert all(c.params["skuChangeStock"] > 0 for c in ks_calls) and ks_calls
    assert platforms.sims["douyin"].calls("stock")[-1].params["incremental"] is False


def test_a_burst_is_coalesced_and_the_last_value_is_sent(
    platforms: Platforms, merchant: Any, settings: Any, monkeypatch: Any
) -> None:
    settings.PLATFORM_SYNC = {**settings.PLATFORM_SYNC, "min_interval": 0.2, "tick": 0.05, "linger": 0.5}
    listing = make_listing(merchant, quota=120, on_hand=120, limit=1)
    link_all(platforms, listing.sku, kuaishou_count=120)
    settle(platforms, listing.sku)
    for sim in platforms.sims.values():
        sim.clear_calls()
    # As in production: a mark queues a drain task for a worker (here: the thread below), it does
    # not run it inline.
    monkeypatch.setattr(Conf, "SYNC", False)
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            stock_drain(seconds=5.0)
            time.sleep(0.01)
        connection.close()

    drain = threading.Thread(target=worker)
    started = time.monotonic()
    drain.start()
    for i in range(80):
        place(listing, f"burst{i}")
    wait_for(lambda: converged(platforms, listing.sku), what="convergence")
    elapsed = time.monotonic() - started
    stop.set()
    drain.join(30)
    assert available(listing.sku) == 40
    for name, sim in platforms.sims.items():
        calls = len(sim.calls("stock"))
        # at most one call per link per min_interval (plus the first and the last), never one per order
        assert 1 <= calls <= elapsed / 0.2 + 2, (name, calls, elapsed)
        assert calls < 40, (name, calls, elapsed)


def test_faulty_platforms_are_retried_and_converge(platforms: Platforms, merchant: Any, settings: Any) -> None:
    settings.PLATFORM_SYNC = {**settings.PLATFORM_SYNC, "timeout": 0.5}
    listing = make_listing(merchant, quota=20, on_hand=20)
    links = link_all(platforms, listing.sku, kuaishou_count=20)
    settle(platforms, listing.sku)
    platforms.sims["douyin"].set_fault("error", 3.0)
    platforms.sims["kuaishou"].set_fault("timeout", 3.0, hang=0.1)  # answers 504: not applied, resent
    platforms.sims["taobao"].set_fault("timeout", 3.0, hang=5)  # no answer: a full count is simply resent
    for i in range(3):
        place(listing, f"f{i}")
    stock_drain(seconds=0.5)
    during = {x.shop.platform: x for x in PlatformSkuLink.objects.select_related("shop").filter(sku=listing.sku)}
    assert all(x.pending and x.attempts >= 1 and x.last_error for x in during.values()), [
        (x.shop.platform, x.pending, x.attempts, x.last_error) for x in during.values()
    ]
    assert platform_counts(platforms, listing.sku) == {"douyin": 20, "kuaishou": 20, "taobao": 20}
    settle(platforms, listing.sku, seconds=15)
    assert available(listing.sku) == 17
    for sim in platforms.sims.values():
        assert sim.calls("fault")  # the fault was hit, and the pushes after it converged
    for link in PlatformSkuLink.objects.filter(pk__in=[x.pk for x in links.values()]):
        assert (link.pushed_value, link.pending, link.attempts, link.uncertain) == (17, False, 0, False)


def test_a_kuaishou_update_with_an_unknown_outcome_is_never_sent_twice(
    platforms: Platforms, merchant: Any, settings: Any
) -> None:
    settings.PLATFORM_SYNC = {**settings.PLATFORM_SYNC, "timeout": 0.3}
    listing = make_listing(merchant, quota=10, on_hand=10)
    links = link_all(platforms, listing.sku, kuaishou_count=10)
    ks = platforms.sims["kuaishou"]
    ks.set_fault("timeout", 1.0, hang=1.0)  # the answer never comes within our timeout
    place(listing, "u1")
    stock_drain(seconds=0.5)
    link = PlatformSkuLink.objects.get(pk=links["kuaishou"].pk)
    assert link.uncertain and link.pending and "outcome unknown" in link.last_error
    time.sleep(1.1)  # the fault is over; still nothing is sent while the outcome is unknown
    stock_drain(seconds=0.5)
    stock_sweep()
    assert len(ks.calls("fault")) == 1 and not ks.calls("stock")
    assert PlatformSkuLink.objects.get(pk=link.pk).uncertain
    # The merchant reads the count on Kuaishou (the call was not applied: still 10) and says so.
    stock_count_confirm(link=link, platform_count=ks.stock[listing.sku.code])
    settle(platforms, listing.sku)
    assert ks.stock[listing.sku.code] == 9 and [c.params["skuChangeStock"] for c in ks.calls("stock")] == [1]


def test_an_allocated_channel_pushes_what_its_allocation_has_left(
    platforms: Platforms, merchant: Any, settings: Any
) -> None:
    session = make_session(merchant)
    session.platforms = ["storefront", "douyin", "taobao"]
    session.save(update_fields=["platforms"])
    sku = make_sku(merchant, on_hand=50)
    listing = make_listing(merchant, quota=20, session=session, sku=sku)
    allocations_set(listing=listing, allocations=[{"platform": "douyin", "mode": "allocated", "units": 6}])
    assert ListingChannelAllocation.objects.filter(listing=listing).count() == 1
    link_all(platforms, sku, kuaishou_count=50)
    import_on(listing, "d1", channel="douyin")
    import_on(listing, "d2", channel="douyin", quantity=1)
    place(listing, "s1")
    # douyin: its pool's 6 units - 2 sold there; taobao (shared, on air): the shared part's 14
    # units - 1 sold; kuaishou (not in the show): the SKU's 47 available.
    settle(platforms, sku, expected={"douyin": 4, "taobao": 13, "kuaishou": 47})


def test_the_order_path_marks_off_its_thread_batched_and_nothing_without_a_shop(
    merchant: Any, other_merchant: Any, django_assert_num_queries: Any, settings: Any, monkeypatch: Any
) -> None:
    """An order's change costs its thread no Redis call and no query: the publisher thread marks,
    every mark queued meanwhile in one round trip, each member once."""
    from apps.core import events

    settings.PLATFORM_SYNC = dict(FAST)
    listing = make_listing(other_merchant, quota=5)
    order = place(listing, "x1")
    stock_sync.merchants_rebuild()
    get_client().delete(KEY_DIRTY)
    with django_assert_num_queries(0):
        receivers.on_order_changed(order=order, from_status=None, created=True)
    assert events.flush()
    assert not get_client().smembers(KEY_DIRTY)  # a merchant with no shop: nothing marked
    stock_sync.merchant_has_shop(other_merchant.pk)
    get_client().set(KEY_LEASE, "1", px=5000)  # a drain runs: the mark only adds
    trips: list[tuple[str, int]] = []
    real = events.run_together

    def counted(calls, client=None):  # type: ignore[no-untyped-def]
        trips.append((threading.current_thread().name, len(calls)))
        return real(calls, client)

    monkeypatch.setattr(events, "run_together", counted)
    busy, release = threading.Event(), threading.Event()

    def hold(_reply: Any) -> None:  # keeps the publisher thread busy while the marks queue up
        busy.set()
        release.wait(5)

    nobody = [stock_sync.KEY_MERCHANTS, KEY_DIRTY, KEY_LEASE]
    events.run_script_soon(stock_sync._mark_script, nobody, ["999999999", "probe", 1000], then=hold)  # noqa: SLF001
    assert busy.wait(5)
    with django_assert_num_queries(0):
        for _ in range(20):
            receivers.on_order_changed(order=order, from_status=None, created=True)
    release.set()
    assert events.flush()
    assert get_client().smembers(KEY_DIRTY) == {f"l:{listing.pk}"}
    # the probe's trip, then twenty marks of one member in one trip, as one call
    assert trips == [("lc-publisher", 1), ("lc-publisher", 1)], trips


def test_the_sweep_repairs_a_lost_mark(platforms: Platforms, merchant: Any) -> None:
    listing = make_listing(merchant, quota=10, on_hand=10)
    link_all(platforms, listing.sku, kuaishou_count=10)
    settle(platforms, listing.sku)
    get_client().set(KEY_LEASE, "1", px=60_000)
    place(listing, "lost1")
    get_client().flushdb()  # Redis lost the marks (and the merchant set, and the lease)
    assert platform_counts(platforms, listing.sku) == {"douyin": 10, "kuaishou": 10, "taobao": 10}
    stock_sweep()
    assert converged(platforms, listing.sku)
    assert get_client().sismember(stock_sync.KEY_MERCHANTS, str(merchant.pk))


def test_the_admin_lists_the_sync_state_read_only_in_chinese(platforms: Platforms, merchant: Any) -> None:
    listing = make_listing(merchant, quota=10, on_hand=10)
    links = link_all(platforms, listing.sku, kuaishou_count=10)
    settle(platforms, listing.sku)
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(staff_create(merchant=merchant, username="owner", password="pw-long-enough-1", role="owner"))
    page = client.get("/admin/platforms/platformskulink/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "库存同步" in html and "上次推送值" in html and listing.sku.code in html
    assert client.get("/admin/platforms/platformskulink/add/").status_code == 403
    douyin = client.get(f"/admin/platforms/platformskulink/{links['douyin'].pk}/change/")
    assert douyin.status_code == 200 and 'name="platform_count"' not in douyin.content.decode()
    ks_url = f"/admin/platforms/platformskulink/{links['kuaishou'].pk}/change/"
    assert 'name="platform_count"' in client.get(ks_url).content.decode()
    platforms.sims["kuaishou"].set_platform_stock(listing.sku.code, 4)  # changed in Kuaishou's back office
    r = client.post(ks_url, {"platform_count": "4"})
    assert r.status_code == 302, r.content
    assert PlatformSkuLink.objects.get(pk=links["kuaishou"].pk).pushed_value in (4, 10)  # 10 once re-pushed
    settle(platforms, listing.sku)
    assert platforms.sims["kuaishou"].stock[listing.sku.code] == 10
