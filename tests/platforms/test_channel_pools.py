"""A platform's allocated channel is real: its units are a channel pool (a child listing) that
only that platform's orders draw on, and that the storefront and the sharing platforms cannot sell.
Units move between the shared part and a pool only while unsold; reads show the whole listing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.test import Client
from django.utils import timezone

from apps.catalog import services as catalog
from apps.catalog.events import listing_payload
from apps.catalog.models import Listing, LiveSession, with_pool_figures
from apps.core.errors import ApplicationError
from apps.inventory.models import Stock
from apps.inventory.services import stock_adjust
from apps.merchants.services import staff_create
from apps.orders.models import Order, OrderLine
from apps.orders.services.transitions import order_cancel
from apps.platforms import processing
from apps.platforms.models import ListingChannelAllocation, PlatformOrder, PlatformShop
from apps.platforms.protocol.base import CanonicalLine, CanonicalOrder
from apps.platforms.services import allocations_set

from ..factories import make_listing, make_session, order_body
from ..orders.invariants import assert_consistent
from .sync_support import import_on, place

pytestmark = pytest.mark.django_db(transaction=True)
ON_POSTGRES = "postgresql" in settings.DATABASES["default"]["ENGINE"]


def on_air(merchant: Any, *, quota: int, on_hand: int | None = None) -> Listing:
    """An open listing in a show sold on the storefront, Douyin and Taobao."""
    session = make_session(merchant)
    LiveSession.objects.filter(pk=session.pk).update(platforms=["storefront", "douyin", "taobao"])
    return make_listing(merchant, quota=quota, on_hand=quota if on_hand is None else on_hand, session=session)


def allocate(listing: Listing, **units: int | None) -> None:
    """``douyin=30`` allocates 30 units to Douyin; ``douyin=None`` puts it back to shared."""
    allocations_set(
        listing=listing,
        allocations=[
            {"platform": p, "mode": "allocated", "units": n} if n is not None else {"platform": p, "mode": "shared"}
            for p, n in units.items()
        ],
    )


def pool_of(listing: Listing, platform: str = "douyin") -> Listing:
    return Listing.objects.get(parent=listing, channel=platform)


def rows(listing: Listing) -> list[tuple]:
    return list(
        Listing.objects.filter(Q(pk=listing.pk) | Q(parent=listing))
        .order_by("pk")
        .values_list("pk", "quota", "sold", "status", "version")
    )


def test_allocating_moves_unsold_units_from_the_shared_part_to_a_pool(merchant) -> None:  # type: ignore[no-untyped-def]
    listing = on_air(merchant, quota=100)
    place(listing, "s1", quantity=1)
    allocate(listing, douyin=30, taobao=None)
    listing.refresh_from_db()
    pool = pool_of(listing)
    assert (listing.quota, listing.sold) == (70, 1)
    assert (pool.quota, pool.sold, pool.status, pool.sku_id, pool.session_id) == (30, 0, "open", listing.sku_id,
                                                                                   listing.session_id)  # fmt: skip
    assert (pool.price, pool.opens_at, pool.closes_at) == (listing.price, listing.opens_at, listing.closes_at)
    figures = with_pool_figures(Listing.objects.filter(pk=listing.pk)).get()
    assert (figures.quota_total, figures.sold_total, figures.available, figures.available_total) == (100, 1, 69, 99)
    # more to Douyin, then less: only unsold units move, the whole stays 100
    allocate(listing, douyin=45)
    listing.refresh_from_db()
    assert (listing.quota, pool_of(listing).quota) == (55, 45)
    allocate(listing, douyin=10)
    listing.refresh_from_db()
    assert (listing.quota, pool_of(listing).quota) == (90, 10)
    assert Listing.objects.filter(parent=listing).count() == 1  # one pool per platform
    assert assert_consistent(listing.pk) is None


def test_allocation_conflict_is_409_with_the_bounds_and_changes_nothing(merchant, api) -> None:  # type: ignore[no-untyped-def]
    listing = on_air(merchant, quota=20)
    allocate(listing, douyin=8)
    for n in range(5):
        import_on(listing, f"d{n}", channel="douyin")  # Douyin sold 5 of its 8
    for n in range(10):
        place(listing, f"s{n}")  # the storefront sold 10 of the shared 12
    url = f"/api/v1/listings/{listing.pk}/channels"
    before = rows(listing), list(ListingChannelAllocation.objects.values_list("platform", "mode", "units"))
    # fewer than Douyin sold: sold units cannot move back
    r = api.put(url, {"channels": [{"platform": "douyin", "mode": "allocated", "units": 4}]}, format="json")
    assert r.status_code == 409, r.content
    assert r.json()["code"] == "allocation_conflict"
    assert r.json()["extra"] == {"field": "units", "platform": "douyin", "least": 5, "most": 10}
    # more than the shared part has unsold (2)
    r = api.put(url, {"channels": [{"platform": "douyin", "mode": "allocated", "units": 11}]}, format="json")
    assert r.status_code == 409 and r.json()["extra"] == {"field": "units", "platform": "douyin", "least": 5,
                                                          "most": 10}  # fmt: skip
    # a new allocation for Taobao beside it: at most the shared part's 2 unsold units
    r = api.put(
        url,
        {"channels": [{"platform": "douyin", "mode": "allocated", "units": 8},
                      {"platform": "taobao", "mode": "allocated", "units": 3}]},
        format="json",
    )  # fmt: skip
    assert r.status_code == 409 and r.json()["extra"]["platform"] == "taobao" and r.json()["extra"]["most"] == 2
    assert (rows(listing), list(ListingChannelAllocation.objects.values_list("platform", "mode", "units"))) == before
    # within the bounds it works
    r = api.put(url, {"channels": [{"platform": "douyin", "mode": "allocated", "units": 10}]}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["quota"] == 20 and r.json()["channels"][0] == {"platform": "douyin", "mode": "allocated",
                                                                   "units": 10}  # fmt: skip


def test_back_to_shared_closes_the_pool_and_returns_its_unsold_units(merchant) -> None:  # type: ignore[no-untyped-def]
    listing = on_air(merchant, quota=20)
    allocate(listing, douyin=8)
    import_on(listing, "d1", channel="douyin", quantity=3)
    allocate(listing, douyin=None)
    listing.refresh_from_db()
    pool = pool_of(listing)
    assert (pool.status, pool.quota, pool.sold) == ("closed", 3, 3)
    assert listing.quota == 17 and listing.quota_total == 20 and listing.sold_total == 3
    # Douyin now shares: its next order draws on the shared part
    order = import_on(listing, "d2", channel="douyin")
    assert order.lines.get().listing_id == listing.pk
    # allocated again: the closed pool reopens with what it sold plus the units moved
    allocate(listing, douyin=5)
    listing.refresh_from_db()
    pool.refresh_from_db()
    assert (pool.status, pool.quota, pool.sold, listing.quota) == ("open", 5, 3, 15)
    assert_consistent(listing.pk)
    assert_consistent(pool.pk)


def _detail(shop: PlatformShop, order_id: str, code: str, quantity: int) -> CanonicalOrder:
    now = datetime.now(UTC)
    line = CanonicalLine(
        line_id=f"{order_id}-1", platform_sku_id=f"P-{code}", platform_item_id="I-1", merchant_sku_code=code,
        quantity=quantity, unit_price=Decimal("9.90"), amount=Decimal("9.90") * quantity,
    )  # fmt: skip
    return CanonicalOrder(
        platform=shop.platform, shop_id=shop.shop_id, order_id=order_id, status="pending_payment", platform_status="1",
        buyer_id=f"buyer-{order_id}", lines=(line,), total=line.amount, freight=Decimal(0), receiver={},
        created_at=now, paid_at=None, updated_at=now, raw={"id": order_id},
    )  # fmt: skip


def _shop(merchant: Any, platform: str) -> PlatformShop:
    return PlatformShop.objects.create(
        merchant=merchant, platform=platform, shop_id=f"{platform}-1", app_key="k", app_secret="s"
    )


def test_intake_of_an_allocated_platform_draws_on_its_pool_and_files_the_order_under_the_listing(merchant) -> None:  # type: ignore[no-untyped-def]
    listing = on_air(merchant, quota=10)
    allocate(listing, douyin=3)
    douyin, taobao = _shop(merchant, "douyin"), _shop(merchant, "taobao")
    code = listing.sku.code
    po = processing.apply_detail(douyin, _detail(douyin, "D1", code, 2))
    pool = pool_of(listing)
    line = po.order.lines.get()
    assert (line.listing_id, line.reserved, po.order.listing_id) == (pool.pk, True, listing.pk)
    assert po.order.session_id == listing.session_id
    # Taobao shares: the shared part
    po_tb = processing.apply_detail(taobao, _detail(taobao, "T1", code, 4))
    assert po_tb.order.lines.get().listing_id == listing.pk
    listing.refresh_from_db()
    pool.refresh_from_db()
    assert (pool.sold, listing.sold) == (2, 4)
    # Douyin beyond its allocation: oversold, never drawn from the shared part
    po2 = processing.apply_detail(douyin, _detail(douyin, "D2", code, 2))
    assert po2.exception == PlatformOrder.Problem.OVERSOLD and po2.oversold_units == 2
    listing.refresh_from_db()
    assert listing.sold == 4
    # a cancel gives the pool its units back
    order_cancel(order=po.order, actor="douyin", reason="test")
    pool.refresh_from_db()
    assert pool.sold == 0
    assert_consistent(listing.pk)
    assert_consistent(pool.pk)


def test_the_storefront_cannot_buy_allocated_units(merchant, api) -> None:  # type: ignore[no-untyped-def]
    listing = on_air(merchant, quota=5)
    allocate(listing, douyin=3)
    pool = pool_of(listing)
    for n in range(2):
        assert api.post("/api/v1/orders", order_body(listing.pk, buyer=f"b{n}"), format="json",
                        HTTP_IDEMPOTENCY_KEY=f"k{n}").status_code == 201  # fmt: skip
    r = api.post("/api/v1/orders", order_body(listing.pk, buyer="b9"), format="json", HTTP_IDEMPOTENCY_KEY="k9")
    assert r.status_code == 409 and r.json()["code"] == "sold_out"  # the 3 Douyin units are not for sale here
    r = api.post("/api/v1/orders", order_body(pool.pk, buyer="b8"), format="json", HTTP_IDEMPOTENCY_KEY="k8")
    assert r.status_code == 404 and r.json()["code"] == "listing_not_found"  # nor is the pool a listing to buy
    pool.refresh_from_db()
    assert pool.sold == 0 and Order.objects.count() == 2


def test_listing_reads_show_the_whole_listing_and_never_a_pool(merchant, api) -> None:  # type: ignore[no-untyped-def]
    listing = on_air(merchant, quota=50, on_hand=100)
    allocate(listing, douyin=20)
    import_on(listing, "d1", channel="douyin", quantity=4)
    place(listing, "s1")
    pool = pool_of(listing)
    r = api.get("/api/v1/listings")
    assert [x["id"] for x in r.json()["results"]] == [listing.pk]
    body = api.get(f"/api/v1/listings/{listing.pk}").json()
    assert (body["quota"], body["sold"], body["available"], body["available_total"]) == (50, 5, 29, 45)
    assert api.get(f"/api/v1/listings/{pool.pk}").status_code == 404
    assert api.get(f"/api/v1/listings/{pool.pk}/channels").status_code == 404
    fresh = with_pool_figures(Listing.objects.filter(pk=listing.pk)).get()
    payload = listing_payload(fresh)
    assert payload["version"] == fresh.version + pool.version
    assert (payload["listing"]["quota"], payload["listing"]["sold"], payload["listing"]["available"]) == (50, 5, 29)
    storefront = Client().get(f"/live/{merchant.slug}/{listing.session_id}/")
    assert storefront.status_code == 200
    assert [x["id"] for x in storefront.context["listings"]] == [listing.pk]
    # a whole quota sent back: the shared part is the whole minus the pool
    r = api.patch(f"/api/v1/listings/{listing.pk}", {"quota": 60, "price": "8.80"}, format="json")
    assert r.status_code == 200 and r.json()["quota"] == 60, r.content
    listing.refresh_from_db()
    pool.refresh_from_db()
    assert (listing.quota, pool.quota, pool.price) == (40, 20, Decimal("8.80"))  # the pool follows the price
    r = api.patch(f"/api/v1/listings/{listing.pk}", {"quota": 20}, format="json")
    assert r.status_code == 400 and r.json()["extra"]["least"] == 21  # 20 allocated + 1 sold shared
    # closing the listing closes its pool; the pool's unsold units come back, the whole stays
    api.post(f"/api/v1/listings/{listing.pk}/close")
    pool.refresh_from_db()
    listing.refresh_from_db()
    assert (pool.status, pool.quota, listing.quota, listing.quota_total) == ("closed", 4, 56, 60)


def test_a_stock_shrink_cuts_the_shared_part_before_a_pool(merchant, api) -> None:  # type: ignore[no-untyped-def]
    listing = on_air(merchant, quota=30, on_hand=30)
    allocate(listing, douyin=10)
    stock_adjust(sku=listing.sku, delta=-15, reason="damaged")
    listing.refresh_from_db()
    assert (listing.quota, pool_of(listing).quota) == (5, 10)
    stock_adjust(sku=listing.sku, delta=-10, reason="damaged")
    listing.refresh_from_db()
    assert (listing.quota, pool_of(listing).quota) == (0, 5)
    assert Stock.objects.get(sku=listing.sku).on_hand == 5
    # the channel read says what Douyin holds now
    body = api.get(f"/api/v1/listings/{listing.pk}/channels").json()
    assert (body["quota"], body["channels"][0]) == (5, {"platform": "douyin", "mode": "allocated", "units": 5})


def test_ending_the_show_closes_the_listing_and_its_pools(merchant) -> None:  # type: ignore[no-untyped-def]
    listing = on_air(merchant, quota=12)
    allocate(listing, douyin=5, taobao=4)
    import_on(listing, "d1", channel="douyin", quantity=2)
    catalog.session_end(session=listing.session)
    listing.refresh_from_db()
    pools = list(Listing.objects.filter(parent=listing).order_by("channel").values_list("channel", "status", "quota"))
    assert listing.status == "closed" and pools == [("douyin", "closed", 2), ("taobao", "closed", 0)]
    assert (listing.quota, listing.quota_total, listing.sold_total) == (10, 12, 2)
    assert processing.channel_pool(listing, "douyin") is None


def test_the_listing_admin_shows_totals_and_allocates_through_the_inline(merchant) -> None:  # type: ignore[no-untyped-def]
    listing = on_air(merchant, quota=40)
    allocate(listing, douyin=15)
    import_on(listing, "d1", channel="douyin", quantity=2)
    client = Client()
    client.force_login(staff_create(merchant=merchant, username="op", password="x", role="operator"))
    page = client.get("/admin/catalog/listing/")
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [listing]
    row = page.context["cl"].result_list[0]
    assert (row.quota_total, row.sold_total, row.available_total) == (40, 2, 38)
    assert client.get(f"/admin/catalog/listing/{pool_of(listing).pk}/change/").status_code in (302, 404)
    form = client.get(f"/admin/catalog/listing/{listing.pk}/change/").context["adminform"].form
    assert form.initial["quota"] == 40  # the whole quota
    allocation = ListingChannelAllocation.objects.get()
    data = {
        "price": "9.90", "quota": "40", "per_buyer_limit": "1", "payment_window_minutes": "15",
        "opens_at_0": "", "opens_at_1": "", "closes_at_0": "", "closes_at_1": "",
        "channel_allocations-TOTAL_FORMS": "1", "channel_allocations-INITIAL_FORMS": "1",
        "channel_allocations-MIN_NUM_FORMS": "0", "channel_allocations-MAX_NUM_FORMS": "3",
        "channel_allocations-0-id": str(allocation.pk), "channel_allocations-0-listing": str(listing.pk),
        "channel_allocations-0-platform": "douyin", "channel_allocations-0-mode": "allocated",
        "channel_allocations-0-units": "25",
    }  # fmt: skip
    listing.refresh_from_db()
    opens = timezone.localtime(listing.opens_at)
    data |= {"opens_at_0": opens.strftime("%Y-%m-%d"), "opens_at_1": opens.strftime("%H:%M:%S")}
    r = client.post(f"/admin/catalog/listing/{listing.pk}/change/", data)
    assert r.status_code == 302, r.context and (r.context["adminform"].form.errors,
                                                r.context["inline_admin_formsets"][-1].formset.errors)  # fmt: skip
    listing.refresh_from_db()
    assert (listing.quota, pool_of(listing).quota, listing.quota_total) == (15, 25, 40)


def test_the_data_migration_turns_allocated_rows_into_pools(merchant) -> None:  # type: ignore[no-untyped-def]
    import importlib

    migration = importlib.import_module("apps.platforms.migrations.0004_allocations_to_pools")
    listing = on_air(merchant, quota=10)
    for n in range(7):
        place(listing, f"s{n}")
    # rows as they were stored before pools existed
    ListingChannelAllocation.objects.create(listing=listing, platform="douyin", mode="allocated", units=5)
    ListingChannelAllocation.objects.create(listing=listing, platform="taobao", mode="shared", units=0)
    with transaction.atomic():
        migration.allocations_to_pools(django_apps, None)
    listing.refresh_from_db()
    pool = pool_of(listing)
    assert (listing.quota, pool.quota, pool.status) == (7, 3, "open")  # capped at the 3 units unsold
    assert ListingChannelAllocation.objects.get(platform="douyin").units == 3
    assert not Listing.objects.filter(parent=listing, channel="taobao").exists()
    with transaction.atomic():
        migration.allocations_to_pools(django_apps, None)  # again: nothing more
    assert Listing.objects.filter(parent=listing).count() == 1
    with transaction.atomic():
        migration.pools_to_allocations(django_apps, None)  # and back
    listing.refresh_from_db()
    assert listing.quota == 10 and not Listing.objects.filter(parent=listing).exists()


if ON_POSTGRES:

    @pytest.mark.slow
    def test_an_allocated_platform_sells_exactly_its_units_while_the_storefront_sells_the_shared_part(merchant) -> None:  # type: ignore[no-untyped-def]
        """PostgreSQL + Redis: Douyin's imports and storefront buyers race on one listing, both
        asking for more than there is; each side ends with exactly its part, nothing oversold."""
        listing = on_air(merchant, quota=40, on_hand=60)
        allocate(listing, douyin=15)
        pool = pool_of(listing)
        start = threading.Barrier(2 * 6)
        errors: list[BaseException] = []
        results: dict[str, list[Any]] = {"storefront": [], "douyin": []}

        def storefront(n: int) -> None:
            try:
                start.wait()
                for k in range(10):
                    try:
                        place(listing, f"s{n}-{k}")
                        results["storefront"].append(1)
                    except ApplicationError as exc:
                        results["storefront"].append(exc.code)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)
            finally:
                connection.close()

        def douyin(n: int) -> None:
            try:
                start.wait()
                for k in range(5):
                    order = import_on(listing, f"d{n}-{k}", channel="douyin")
                    results["douyin"].append(order.lines.get().reserved)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=storefront, args=(n,)) for n in range(6)]
        threads += [threading.Thread(target=douyin, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        assert results["storefront"].count(1) == 25 and len(results["storefront"]) == 60  # the shared part
        assert set(results["storefront"]) <= {1, "sold_out"}
        assert results["douyin"].count(True) == 15 and len(results["douyin"]) == 30  # exactly its allocation
        listing.refresh_from_db()
        pool.refresh_from_db()
        assert (listing.sold, listing.quota, pool.sold, pool.quota) == (25, 25, 15, 15)
        assert not OrderLine.objects.filter(listing=listing, order__channel="douyin").exists()
        assert not OrderLine.objects.filter(listing=pool).exclude(order__channel="douyin").exists()
        assert Stock.objects.get(sku=listing.sku).reserved == 40
        assert_consistent(listing.pk)
        assert_consistent(pool.pk)
