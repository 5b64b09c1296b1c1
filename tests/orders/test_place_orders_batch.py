"""``lc_place_orders`` v3 (``apps/orders/placement/sql/lc_place_orders.v3.sql``) on real
PostgreSQL: a batch writes each hot row once, yet every order in it is refused or accepted exactly
as if the orders had been placed one by one with ``lc_place_order`` (the per-order function, v2's
batch did nothing else), and what it leaves is the same: units sold and reserved, the ledger
chain, the rows of the accepted orders and nothing of a refused one."""

from __future__ import annotations

import json
import random
import secrets
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from apps.catalog.models import Listing
from apps.catalog.selectors import listing_info
from apps.inventory.models import Stock, StockMovement
from apps.orders.models import LedgerHead, ListingBuyer, Order, OrderEvent, OrderSignals
from apps.orders.placement.engines.new_order import NewOrder
from apps.orders.placement.engines.postgres import PLACE_SQL, place_params
from apps.orders.placement.pgcall import BATCH_SQL, run_prepared
from apps.orders.placement.request import parse_order_request
from apps.orders.services.ledger import ledger_verify

from ..factories import make_listing, make_sku, order_body

ON_POSTGRES = "postgresql" in settings.DATABASES["default"]["ENGINE"]


def _params(listing: Listing, buyer: str, qty: int = 1, key: str | None = None) -> dict[str, Any]:
    info = listing_info(listing.pk)
    assert info is not None
    req = parse_order_request(order_body(listing.pk, buyer=buyer, quantity=qty))
    new = NewOrder(
        public_id=f"T{secrets.token_hex(8).upper()}",
        idempotency_key=key,
        fingerprint="f" * 64,
        channel="storefront",
        actor=f"buyer:{buyer}",
        signals={"ip": "10.0.0.1", "device_id": "d", "user_agent": "ua", "rules": {}},
    )
    return place_params(info, req, new)


def _batch(orders: list[dict[str, Any]]) -> list[str | None]:
    """One call of lc_place_orders, committed; each order's refusal (None: placed)."""
    items = [{**o, "now": o["now"].isoformat()} for o in orders]
    rows = run_prepared(BATCH_SQL, [json.dumps(items, ensure_ascii=False)])
    assert [r[0] for r in rows] == list(range(len(orders)))
    for r in rows:  # a placed order answers its rows and seq; a refused one nothing
        assert (r[1] is None) == (r[2] is not None) == (r[5] is not None)
    return [r[1] for r in rows]


def _one_by_one(orders: list[dict[str, Any]]) -> list[str | None]:
    """The same orders through lc_place_order, one call (and one commit) each."""
    out: list[str | None] = []
    for o in orders:
        try:
            run_prepared(PLACE_SQL, {**o, "address": json.dumps(o["address"]), "signals": json.dumps(o["signals"])})
            out.append(None)
        except Exception as exc:  # noqa: BLE001 - the refusal is the answer compared
            message = str(exc.__cause__ or exc)
            out.append(
                "lc_refuse:duplicate"
                if "duplicate key" in message
                else next(w for w in message.split() if w.startswith("lc_refuse:"))
            )
    return out


def _left(listing: Listing) -> dict[str, Any]:
    """What the orders left: units, rows, the ledger."""
    listing.refresh_from_db()
    orders = Order.objects.filter(listing_id=listing.pk)
    return {
        "sold": listing.sold,
        "reserved": Stock.objects.get(sku_id=listing.sku_id).reserved,
        "orders": orders.count(),
        "movements": StockMovement.objects.filter(sku_id=listing.sku_id, kind="reserve").count(),
        "signals": OrderSignals.objects.filter(order__listing_id=listing.pk).count(),
        "events": OrderEvent.objects.filter(order__listing_id=listing.pk).count(),
        "buyer_units": sum(ListingBuyer.objects.filter(listing_id=listing.pk).values_list("units", flat=True)),
        "order_units": sum(o.lines.get().quantity for o in orders),
    }


def _short_stock(listing: Listing, on_hand: int) -> None:
    """The SKU's stock counted down below the listing's quota after it opened (a stocktake found
    units missing): the database's stock check refuses what the quota would still allow."""
    Stock.objects.filter(sku_id=listing.sku_id).update(on_hand=on_hand)


def _head(merchant_id: int) -> None:
    LedgerHead.objects.get_or_create(merchant_id=merchant_id)


if ON_POSTGRES:
    pytestmark = pytest.mark.django_db(transaction=True)

    def test_the_database_runs_the_batch_function_of_v3():
        with connection.cursor() as cur:
            cur.execute("SELECT prosrc FROM pg_proc WHERE proname = 'lc_place_orders'")
            (source,) = cur.fetchone()
        assert "t_units" in source  # v3's own: what the batch took, written once

    def test_a_batch_refuses_each_order_on_its_own_and_writes_the_hot_rows_once(merchant):
        listing = make_listing(merchant, quota=3, on_hand=3, limit=1)
        _head(merchant.pk)
        version = listing.version
        a = _params(listing, "a", key="ka")
        orders = [
            a,
            _params(listing, "b"),
            _params(listing, "a"),  # a's second unit: over the limit
            {**_params(listing, "c", key="ka"), "idem": a["idem"]},  # a's key again: a duplicate
            _params(listing, "d"),
            _params(listing, "e"),  # the quota is gone
        ]
        assert _batch(orders) == [
            None,
            None,
            "lc_refuse:buyer",
            "lc_refuse:duplicate",
            None,
            "lc_refuse:listing",
        ]
        left = _left(listing)
        assert left == {
            "sold": 3,
            "reserved": 3,
            "orders": 3,
            "movements": 3,
            "signals": 3,
            "events": 3,
            "buyer_units": 3,
            "order_units": 3,
        }
        assert listing.version == version + 3  # one per accepted order, as before
        seqs = list(OrderEvent.objects.filter(merchant_id=merchant.pk).order_by("seq").values_list("seq", flat=True))
        assert seqs == list(range(1, 4))
        assert LedgerHead.objects.get(merchant_id=merchant.pk).seq == 3
        assert ledger_verify(merchant_id=merchant.pk) == []

    def test_an_order_refused_after_taking_the_locks_leaves_them_to_the_next(merchant):
        """The first order locks the listing and is then refused for stock: its subtransaction's
        locks are gone, so the next order must lock and read the rows again, not trust them."""
        listing = make_listing(merchant, quota=10, limit=5)
        _short_stock(listing, 2)
        _head(merchant.pk)
        assert _batch([_params(listing, "a", qty=3), _params(listing, "b", qty=2), _params(listing, "c")]) == [
            "lc_refuse:stock",
            None,
            "lc_refuse:stock",
        ]
        left = _left(listing)
        assert (left["sold"], left["reserved"], left["orders"], left["movements"]) == (2, 2, 1, 1)
        assert ledger_verify(merchant_id=merchant.pk) == []

    def test_orders_for_two_listings_of_one_sku_in_one_call_share_its_stock(merchant):
        """Never from the batcher (it does not mix listings), but the function stays right: an order
        for another listing first writes what the batch took so far."""
        sku = make_sku(merchant, on_hand=6)
        x = make_listing(merchant, quota=3, limit=1, sku=sku)
        y = make_listing(merchant, quota=3, limit=1, sku=sku)
        _short_stock(x, 3)
        _head(merchant.pk)
        got = _batch([_params(x, "a"), _params(y, "b"), _params(x, "c"), _params(y, "d"), _params(x, "e")])
        assert got == [None, None, None, "lc_refuse:stock", "lc_refuse:stock"]
        x.refresh_from_db()
        y.refresh_from_db()
        assert (x.sold, y.sold, Stock.objects.get(sku_id=sku.pk).reserved) == (2, 1, 3)
        assert LedgerHead.objects.get(merchant_id=merchant.pk).seq == 3
        assert ledger_verify(merchant_id=merchant.pk) == []

    def test_a_merchant_without_a_ledger_head_is_refused_with_nothing_written(merchant):
        listing = make_listing(merchant, quota=3)
        LedgerHead.objects.filter(merchant_id=merchant.pk).delete()
        assert _batch([_params(listing, "a"), _params(listing, "b")]) == ["lc_refuse:ledger"] * 2
        assert _left(listing)["orders"] == 0
        listing.refresh_from_db()
        assert listing.sold == 0

    def test_a_closed_listing_refuses_the_whole_batch(merchant):
        listing = make_listing(merchant, quota=3, open_=False)
        _head(merchant.pk)
        assert _batch([_params(listing, "a"), _params(listing, "b")]) == ["lc_refuse:listing"] * 2
        assert _left(listing)["orders"] == 0

    @pytest.mark.parametrize("seed", range(8))
    def test_a_batch_answers_as_the_orders_placed_one_by_one(merchant, seed):
        """Random orders (a few buyers, quantities 1-3, reused keys) against random quota, stock
        and limit: the batch and the one-by-one placement of the same orders on a twin listing
        refuse the same orders for the same reasons and leave the same figures."""
        rnd = random.Random(seed)
        quota, on_hand, limit = rnd.randint(1, 12), rnd.randint(0, 12), rnd.randint(1, 4)
        twins = [make_listing(merchant, quota=quota, limit=limit) for _ in range(2)]
        for listing in twins:
            _short_stock(listing, min(on_hand, quota))
        _head(merchant.pk)
        plan = []
        for n in range(rnd.randint(1, 16)):
            key = f"k{rnd.randint(0, 20)}" if rnd.random() < 0.5 else None
            plan.append((f"b{rnd.randint(0, 5)}", rnd.randint(1, 3), key, n))
        answers = []
        for listing, place in zip(twins, (_batch, _one_by_one), strict=True):
            answers.append(
                place(
                    [
                        _params(listing, buyer, qty, key=f"{listing.pk}-{key}" if key else None)
                        for buyer, qty, key, _ in plan
                    ]
                )
            )
        assert answers[0] == answers[1], plan
        left = [_left(listing) for listing in twins]
        assert left[0] == left[1]
        assert left[0]["sold"] == left[0]["reserved"] == left[0]["order_units"] == left[0]["buyer_units"]
        assert left[0]["sold"] <= min(quota, on_hand)
        assert ledger_verify(merchant_id=merchant.pk) == []
