"""Generated history (issue 14): ``manage.py generate_history`` and ``apps.reports.history``.

Deterministic for a seed, exact counts, no listing sold past its quota, money and statuses that
agree, the weekday × hour seasonality and repeat buyers visible, one merchant's data only,
``--replace`` that removes only generated history, clear errors that change nothing, and no sweep,
job or check acting on the history."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.catalog.models import SKU, Listing, LiveSession, Product
from apps.core.normalise import normalise_address
from apps.inventory.models import Stock, StockMovement
from apps.inventory.services import stock_recompute
from apps.merchants.models import Merchant
from apps.orders.models import (
    LIVE_STATUSES,
    PLATFORM_CHANNELS,
    Buyer,
    ListingBuyer,
    Order,
    OrderEvent,
    OrderLine,
    OrderSignals,
    OrderStatus,
)
from apps.orders.placement.request import ADDRESS_FIELDS
from apps.orders.services.ledger import ledger_verify
from apps.orders.services.transitions import order_transition, orders_expire_due
from apps.reports import history_tables
from apps.reports.errors import HistoryError
from apps.reports.history import HistoryParams, HistoryResult, history_delete, history_generate

from ..factories import make_listing, order_body

S = OrderStatus
FINAL = {S.COMPLETED, S.DELIVERED, S.SHIPPED, S.CANCELLED, S.REFUNDED}
CHANNELS = {"storefront", "api", "douyin", "kuaishou", "taobao"}
TZ = ZoneInfo(settings.TIME_ZONE)


@pytest.fixture
def end() -> datetime:
    """The history's end: yesterday, on the hour (fixed within a test, so two runs compare)."""
    return (timezone.now() - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)


def generate(merchant: Merchant, end: datetime, **kw: Any) -> HistoryResult:
    params = {"orders": 1500, "shows": 30, "weeks": 8, "seed": 11, **kw}
    return history_generate(merchant=merchant, params=HistoryParams(end=end, **params))


def counts(merchant: Merchant) -> dict[str, int]:
    return {
        "shows": LiveSession.objects.filter(merchant=merchant).count(),
        "generated": LiveSession.objects.filter(merchant=merchant, generated=True).count(),
        "listings": Listing.objects.filter(merchant=merchant).count(),
        "orders": Order.objects.filter(merchant=merchant).count(),
        "lines": OrderLine.objects.filter(order__merchant=merchant).count(),
        "buyers": Buyer.objects.filter(merchant=merchant).count(),
        "products": Product.objects.filter(merchant=merchant).count(),
        "skus": SKU.objects.filter(merchant=merchant).count(),
        "movements": StockMovement.objects.filter(merchant=merchant).count(),
        "events": OrderEvent.objects.filter(merchant=merchant).count(),
    }


def snapshot(merchant: Merchant) -> dict[str, list[Any]]:
    """Everything generated, as values (no ids, no order numbers)."""
    return {
        "shows": list(
            LiveSession.objects.filter(merchant=merchant, generated=True)
            .order_by("scheduled_at")
            .values_list("title", "streamer", "platforms", "scheduled_at", "started_at", "ended_at", "status")
        ),
        "listings": list(
            Listing.objects.filter(merchant=merchant)
            .order_by("opens_at", "pk")
            .values_list("sku__code", "price", "quota", "sold", "per_buyer_limit", "opens_at", "closes_at")
        ),
        "orders": list(
            Order.objects.filter(merchant=merchant)
            .order_by("pk")
            .values_list(
                "buyer__external_id",
                "channel",
                "status",
                "total",
                "pay_by",
                "paid_at",
                "created_at",
                "updated_at",
                "shipping_address",
                "cancel_reason",
                "refund_due",
                "refunded",
                "carrier",
                "tracking_number",
                "version",
            )
        ),
        "lines": list(
            OrderLine.objects.filter(order__merchant=merchant)
            .order_by("order_id", "pk")
            .values_list("sku__code", "quantity", "unit_price", "line_total", "listing__price")
        ),
    }


# --- what is made ----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_same_seed_makes_the_same_history_and_another_seed_another(merchant, other_merchant, end) -> None:  # type: ignore[no-untyped-def]
    generate(merchant, end)
    generate(other_merchant, end)
    first, second = snapshot(merchant), snapshot(other_merchant)
    assert first == second
    assert len(first["orders"]) == 1500

    third = Merchant.objects.create(slug="third", name="Third")
    generate(third, end, seed=12)
    assert snapshot(third)["orders"] != first["orders"]


@pytest.mark.django_db
def test_it_makes_exactly_the_orders_and_shows_asked_in_the_period_asked(merchant, end) -> None:  # type: ignore[no-untyped-def]
    result = generate(merchant, end, orders=1234, shows=17, weeks=6)
    assert (result.orders, result.shows) == (1234, 17)
    assert Order.objects.filter(merchant=merchant).count() == 1234
    shows = LiveSession.objects.filter(merchant=merchant)
    assert shows.count() == shows.filter(generated=True, status=LiveSession.Status.ENDED).count() == 17
    assert not Order.objects.filter(merchant=merchant).exclude(session__generated=True).exists()
    begin = end - timedelta(weeks=6)
    for show in shows:
        assert begin <= show.scheduled_at <= show.started_at < show.ended_at <= end
        listings = list(Listing.objects.filter(session=show))
        assert 3 <= len(listings) <= 12
        for li in listings:
            assert li.status == Listing.Status.CLOSED and show.started_at <= li.opens_at < li.closes_at <= show.ended_at
    # shows never overlap (one live room)
    spans = sorted(shows.values_list("started_at", "ended_at"))
    assert all(a_end <= b_start for (_a, a_end), (b_start, _b) in zip(spans, spans[1:], strict=False))
    # the catalogue: categories, prices, stock rows as the inventory keeps them
    products = Product.objects.filter(merchant=merchant)
    assert {p.category for p in products} == {c.name for c in history_tables.CATALOGUE}
    for sku in SKU.objects.filter(merchant=merchant):
        stock = Stock.objects.get(sku=sku)
        assert sku.price > 0 and stock.reserved == 0 and stock.on_hand > 0
        assert stock_recompute(sku_id=sku.pk) == (stock.on_hand, stock.reserved)


@pytest.mark.django_db
def test_no_listing_sells_past_its_quota_and_its_counters_are_its_orders(merchant, end) -> None:  # type: ignore[no-untyped-def]
    generate(merchant, end, orders=2500, shows=20)
    ordered: Counter[int] = Counter()
    kept: Counter[int] = Counter()
    per_buyer: Counter[tuple[int, int]] = Counter()  # every own order (the generator's stricter rule)
    kept_per_buyer: Counter[tuple[int, int]] = Counter()
    rows = OrderLine.objects.filter(order__merchant=merchant, listing__isnull=False).values_list(
        "listing_id", "quantity", "order__status", "order__channel", "order__buyer_id"
    )
    for listing_id, qty, status, channel, buyer_id in rows:
        ordered[listing_id] += qty
        if status in LIVE_STATUSES:
            kept[listing_id] += qty
        if channel not in PLATFORM_CHANNELS:
            per_buyer[(listing_id, buyer_id)] += qty
            if status in LIVE_STATUSES:
                kept_per_buyer[(listing_id, buyer_id)] += qty
    sold_out = 0
    limits = dict(Listing.objects.filter(merchant=merchant).values_list("pk", "per_buyer_limit"))
    for li in Listing.objects.filter(merchant=merchant):
        assert ordered[li.pk] <= li.quota, f"listing {li.pk}: {ordered[li.pk]} ordered of {li.quota}"
        assert li.sold == kept[li.pk] <= li.quota
        sold_out += ordered[li.pk] == li.quota
    assert sold_out > 0  # some sold out, as flash sales do
    assert all(units <= limits[listing_id] for (listing_id, _b), units in per_buyer.items())
    stored = {(lb.listing_id, lb.buyer_id): lb.units for lb in ListingBuyer.objects.filter(listing__merchant=merchant)}
    assert stored == dict(kept_per_buyer)


@pytest.mark.django_db
def test_totals_are_their_lines_and_statuses_agree_with_the_money_and_the_times(merchant, end) -> None:  # type: ignore[no-untyped-def]
    generate(merchant, end, orders=2000)
    orders = list(Order.objects.filter(merchant=merchant).prefetch_related("lines").select_related("buyer"))
    shares: Counter[str] = Counter()
    zero = Decimal("0")
    for o in orders:
        lines = list(o.lines.all())
        assert lines and all(ln.line_total == ln.unit_price * ln.quantity and ln.quantity >= 1 for ln in lines)
        assert o.total == sum((ln.line_total for ln in lines), zero) > 0
        assert o.status in FINAL and o.currency == "CNY"
        assert o.channel in CHANNELS
        assert o.created_at < o.updated_at <= end
        platform = o.channel in PLATFORM_CHANNELS
        assert o.buyer.external_id.startswith(f"{o.channel}:") == platform
        assert (o.pay_by is None) == platform
        if not platform:
            assert o.pay_by == o.created_at + timedelta(seconds=900)
        if o.status == S.REFUNDED:
            assert o.paid_at is not None and o.refunded == o.refund_due == o.total > 0
            kind = "refunded"
        else:
            assert o.refund_due == o.refunded == 0
        if o.status == S.CANCELLED:
            assert o.paid_at is None and o.carrier == "" and o.cancel_reason
            kind = "expired" if o.cancel_reason == history_tables.EXPIRED_REASON else "cancelled"
        elif o.status != S.REFUNDED:
            assert o.created_at < o.paid_at < o.updated_at  # type: ignore[operator]
            assert o.carrier and o.tracking_number and o.cancel_reason == ""
            kind = "kept"
        shares[kind] += 1
    n = len(orders)
    assert 0.03 < shares["expired"] / n < 0.15
    assert 0.01 < shares["cancelled"] / n < 0.06
    assert 0.02 < shares["refunded"] / n < 0.07
    assert shares["kept"] / n > 0.75
    statuses = Counter(o.status for o in orders)
    assert statuses[S.COMPLETED] > statuses[S.DELIVERED] > 0 and statuses[S.SHIPPED] > 0
    # shipped orders are the recent ones, completed ones the old ones
    latest_completed = max(o.paid_at for o in orders if o.status == S.COMPLETED)  # type: ignore[type-var]
    assert all(o.paid_at > end - timedelta(days=8) for o in orders if o.status == S.SHIPPED)  # type: ignore[operator]
    assert latest_completed < end


@pytest.mark.django_db
def test_evenings_and_weekends_sell_more_per_show_than_weekday_mornings(merchant, end) -> None:  # type: ignore[no-untyped-def]
    generate(merchant, end, orders=3000, shows=80, weeks=12)
    strong: list[int] = []
    weak: list[int] = []
    for show in LiveSession.objects.filter(merchant=merchant):
        local = show.scheduled_at.astimezone(TZ)
        n = Order.objects.filter(session=show).count()
        if local.weekday() < 5 and local.hour < 12:
            weak.append(n)
        elif local.hour >= 18 or (local.weekday() >= 5 and local.hour >= 12):
            strong.append(n)
    assert len(weak) >= 3 and len(strong) >= 20
    assert sum(strong) / len(strong) > 2 * sum(weak) / len(weak)
    # ... and more shows go to the strong slots than to the weak ones
    assert len(strong) > 3 * len(weak)


@pytest.mark.django_db
def test_buyers_come_back_ship_to_their_own_address_and_china_s_regions_weigh_in(merchant, end) -> None:  # type: ignore[no-untyped-def]
    generate(merchant, end, orders=2500)
    shows_of: defaultdict[int, set[int]] = defaultdict(set)
    addresses: defaultdict[int, set[str]] = defaultdict(set)
    provinces: Counter[str] = Counter()
    for buyer_id, session_id, address in Order.objects.filter(merchant=merchant).values_list(
        "buyer_id", "session_id", "shipping_address"
    ):
        assert set(address) == set(ADDRESS_FIELDS)
        key = normalise_address(address)
        assert key is not None and "|" in key
        shows_of[buyer_id].add(session_id)
        addresses[buyer_id].add(key)
        provinces[address["province"]] += 1
    repeat = sum(1 for s in shows_of.values() if len(s) > 1) / len(shows_of)
    assert 0.1 < repeat < 0.6, repeat
    assert all(len(a) == 1 for a in addresses.values())  # a buyer ships home
    top = [p for p, _n in provinces.most_common(3)]
    assert top[0] == "广东省" and set(top) <= {"广东省", "浙江省", "江苏省", "山东省"}
    assert len(provinces) > 20


# --- whose data, and --replace --------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_only_the_given_merchant_s_data_is_touched(merchant, other_merchant, other_api, end) -> None:  # type: ignore[no-untyped-def]
    listing = make_listing(other_merchant, quota=5)
    assert other_api.post("/api/v1/orders", order_body(listing.pk), format="json").status_code == 201
    generate(other_merchant, end, orders=300, shows=5)
    before = counts(other_merchant)
    theirs = snapshot(other_merchant)

    call_command("generate_history", merchant="acme", orders=400, shows=6, seed=3, verbosity=0)
    call_command("generate_history", merchant=str(merchant.pk), orders=200, shows=3, seed=4, replace=True, verbosity=0)

    assert counts(other_merchant) == before and snapshot(other_merchant) == theirs
    assert counts(merchant)["orders"] == 200
    # everything generated for acme is acme's: its shows, listings, SKUs, buyers
    acme = Order.objects.filter(merchant=merchant)
    assert not acme.exclude(session__merchant=merchant).exists()
    assert not acme.exclude(buyer__merchant=merchant).exists()
    assert not OrderLine.objects.filter(order__merchant=merchant).exclude(sku__merchant=merchant).exists()
    assert not Listing.objects.filter(session__merchant=merchant).exclude(sku__merchant=merchant).exists()
    assert ledger_verify() == []


@pytest.mark.django_db(transaction=True)
def test_replace_removes_only_generated_history_and_a_second_run_adds(merchant, api, end) -> None:  # type: ignore[no-untyped-def]
    listing = make_listing(merchant, quota=5)
    r = api.post("/api/v1/orders", order_body(listing.pk, buyer="real-buyer"), format="json")
    assert r.status_code == 201
    real = Order.objects.get(public_id=r.json()["id"])

    generate(merchant, end, orders=300, shows=5)
    catalogue = (Product.objects.count(), SKU.objects.count(), StockMovement.objects.count())
    generate(merchant, end, orders=200, shows=4, seed=12)  # a second run adds
    assert LiveSession.objects.filter(merchant=merchant, generated=True).count() == 9
    assert Order.objects.filter(merchant=merchant).count() == 1 + 500
    assert (Product.objects.count(), SKU.objects.count(), StockMovement.objects.count()) == catalogue  # reused

    call_command("generate_history", merchant="acme", orders=100, shows=2, seed=5, replace=True, verbosity=0)

    assert LiveSession.objects.filter(merchant=merchant, generated=True).count() == 2
    assert Order.objects.filter(merchant=merchant).count() == 1 + 100
    assert LiveSession.objects.filter(pk=listing.session_id, generated=False).exists()
    real.refresh_from_db()
    assert real.status == S.PENDING_PAYMENT and real.events.count() == 1
    assert Buyer.objects.filter(merchant=merchant, external_id="real-buyer").exists()
    # buyers left with no order went with their history
    assert not Buyer.objects.filter(merchant=merchant, orders__isnull=True).exists()
    assert (Product.objects.count(), SKU.objects.count()) == catalogue[:2]
    assert ledger_verify(merchant_id=merchant.pk) == []


# --- bad input ---------------------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"merchant": "acme", "orders": -1, "shows": 5}, "orders must be"),
        ({"merchant": "acme", "orders": 10, "shows": 0}, "shows must be"),
        ({"merchant": "acme", "orders": 10, "shows": 200, "weeks": 1}, "do not fit"),
        ({"merchant": "acme", "orders": 10, "shows": 2, "weeks": 0}, "weeks must be"),
        ({"merchant": "nobody", "orders": 10, "shows": 2}, "no merchant 'nobody'"),
        ({"merchant": "99999", "orders": 10, "shows": 2}, "no merchant '99999'"),
    ],
)
def test_bad_input_ends_with_a_clear_error_and_changes_nothing(merchant, end, args, message) -> None:  # type: ignore[no-untyped-def]
    generate(merchant, end, orders=100, shows=3)
    before, kept = counts(merchant), snapshot(merchant)
    with pytest.raises(CommandError, match=message):
        call_command("generate_history", replace=True, verbosity=0, **args)
    assert counts(merchant) == before and snapshot(merchant) == kept


@pytest.mark.django_db
def test_bad_input_on_a_merchant_without_history_writes_nothing_at_all(merchant) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match="orders must be"):
        call_command("generate_history", merchant="acme", orders=-1, shows=3, verbosity=0)
    assert counts(merchant) == dict.fromkeys(counts(merchant), 0)


# --- nothing automatic acts on history ------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_sweeps_jobs_and_checks_leave_generated_history_alone(merchant, end) -> None:  # type: ignore[no-untyped-def]
    from apps.fraud.scoring import score_pending
    from apps.fulfilment.automation import auto_complete, auto_confirm, flag_stale_parcels
    from apps.fulfilment.exception_queue import exception_counts
    from apps.fulfilment.refunds import refunds_due, refunds_owed_sweep
    from apps.orders.placement.gate.reconcile import reconcile_all
    from apps.platforms.ship_sync import ship_sweep

    # a show that ended a few hours ago: its listings are among those the reconciler checks
    generate(merchant, timezone.now().replace(second=0, microsecond=0), orders=1200, shows=12, weeks=2)
    rows = ("status", "version", "updated_at", "refund_due", "refunded", "paid_at")
    before = list(Order.objects.filter(merchant=merchant).order_by("pk").values_list(*rows))
    listings = list(Listing.objects.filter(merchant=merchant).order_by("pk").values_list("quota", "sold", "version"))

    assert orders_expire_due() == 0
    assert refunds_owed_sweep() == 0 and refunds_due() == 0
    assert auto_confirm() == 0 and auto_complete() == 0 and flag_stale_parcels() == 0
    assert score_pending() == 0
    assert ship_sweep() == {"found": 0}
    reconcile_all()  # loads the gates of the recent ones from the database ...
    assert reconcile_all()["repaired"] == []  # ... and then finds nothing to repair
    assert ledger_verify() == []
    assert sum(row["count"] for row in exception_counts(merchant_ids=[merchant.pk])) == 0

    assert list(Order.objects.filter(merchant=merchant).order_by("pk").values_list(*rows)) == before
    assert list(Listing.objects.filter(merchant=merchant).order_by("pk").values_list("quota", "sold", "version")) == (
        listings
    )
    assert not OrderEvent.objects.filter(merchant=merchant).exists()
    assert not OrderSignals.objects.filter(order__merchant=merchant).exists()


@pytest.mark.django_db(transaction=True)
def test_history_someone_acted_on_is_checked_like_any_order_and_not_deleted(merchant, end) -> None:  # type: ignore[no-untyped-def]
    generate(merchant, end, orders=200, shows=3)
    order = Order.objects.filter(merchant=merchant, status=S.COMPLETED).order_by("pk").first()
    assert order is not None
    order_transition(order=order, to=S.REFUND_PENDING, actor="staff:1", reason="goods came back")
    assert ledger_verify(merchant_id=merchant.pk) == []  # its first event starts where the history left it

    before = counts(merchant)
    with pytest.raises(HistoryError, match="1 order"):
        history_delete(merchant=merchant)
    with pytest.raises(CommandError, match="ledger events"):
        call_command("generate_history", merchant="acme", orders=10, shows=1, replace=True, verbosity=0)
    assert counts(merchant) == before

    # ... and its status is held to its events again: a status written by hand is caught
    Order.objects.filter(pk=order.pk).update(status=S.COMPLETED)
    assert any("last ledger event says 'refund_pending'" in str(p) for p in ledger_verify(merchant_id=merchant.pk))


@pytest.mark.django_db
def test_only_a_generated_show_s_orders_may_have_no_ledger_event(merchant, end) -> None:  # type: ignore[no-untyped-def]
    generate(merchant, end, orders=50, shows=2)
    assert ledger_verify(merchant_id=merchant.pk) == []
    generated = Order.objects.filter(merchant=merchant).order_by("pk").first()
    assert generated is not None
    LiveSession.objects.filter(pk=generated.session_id).update(generated=False)  # as if it had happened
    problems = [str(p) for p in ledger_verify(merchant_id=merchant.pk)]
    assert any(f"order {generated.public_id} is" in p and "has no ledger event" in p for p in problems)
