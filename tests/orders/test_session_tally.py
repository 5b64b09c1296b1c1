"""The live dashboard's show totals kept up to date from the ledger
(``selectors.session_stats_pushed``): after any sequence of order changes they equal a full
count of the show (``session_stats_live``) at the same version, and between counts a push reads
only the events since the last one, never the whole show."""

from __future__ import annotations

import random
import threading
import time

import pytest
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.orders import selectors
from apps.orders.models import Order, OrderStatus
from apps.orders.placement.request import parse_order_request
from apps.orders.placement.service import order_place
from apps.orders.services.transitions import order_cancel, order_record_event

from ..factories import make_listing, make_session, order_body
from ..realtime.conftest import pay
from ..waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _place(listing, buyer: str, channel: str, qty: int = 1) -> Order:  # type: ignore[no-untyped-def]
    req = parse_order_request(order_body(listing.pk, buyer=buyer, quantity=qty))
    return order_place(req=req, merchant_id=listing.merchant_id, idempotency_key=None, channel=channel).order


def _full(session_id: int) -> dict:
    return selectors.session_stats_live(session_id=session_id)


@pytest.mark.parametrize("seed", range(3))
def test_the_tally_equals_a_full_count_after_any_changes(merchant, other_merchant, seed):
    rnd = random.Random(seed)
    show = make_session(merchant)
    listings = [make_listing(merchant, quota=40, limit=3, session=show, price=p) for p in ("9.90", "25.00")]
    elsewhere = make_listing(merchant, quota=40, limit=3)  # the same merchant's other show: its events are skipped
    theirs = make_listing(other_merchant, quota=40, limit=3)
    empty = selectors.session_stats_pushed(session_id=show.pk)
    assert (empty["orders"], empty["gmv"], empty["channels"]) == (0, "0.00", [])
    placed: list[Order] = []
    for step in range(40):
        op = rnd.random()
        if op < 0.45 or not placed:
            listing = rnd.choice([*listings, elsewhere, theirs])
            order = _place(listing, f"b{step}", rnd.choice(["storefront", "api", "douyin"]), rnd.randint(1, 3))
            if listing in listings:
                placed.append(order)
        else:
            order = Order.objects.get(pk=rnd.choice(placed).pk)
            if op < 0.7 and order.status == OrderStatus.PENDING_PAYMENT:
                pay(order)
            elif op < 0.85 and order.status in (OrderStatus.PENDING_PAYMENT, OrderStatus.PAID):
                order_cancel(order=order, actor="staff:1", reason="test")
            else:
                order_record_event(order=order, actor="staff:1", reason="a note")  # seq moves, status not
        if rnd.random() < 0.4:  # pushes come now and then, over several changes
            pushed = selectors.session_stats_pushed(session_id=show.pk)
            assert pushed == _full(show.pk), f"step {step}"
    pushed = selectors.session_stats_pushed(session_id=show.pk)
    full = _full(show.pk)
    assert pushed == full
    assert full["orders"] == len(placed) and full["paid"] + full["unpaid"] + full["cancelled"] == len(placed)


def test_a_push_between_counts_reads_the_new_events_not_the_show(merchant):
    show = make_session(merchant)
    listing = make_listing(merchant, quota=50, limit=1, session=show)
    for n in range(20):
        _place(listing, f"b{n}", "storefront")
    selectors.session_stats_pushed(session_id=show.pk)  # the first push counts the show
    order = _place(listing, "late", "api")
    with CaptureQueriesContext(connection) as seen:
        pushed = selectors.session_stats_pushed(session_id=show.pk)
    sql = [q["sql"] for q in seen.captured_queries]
    assert len(sql) == 2, sql  # the ledger head, then the events after the tally's version
    assert "orders_orderevent" in sql[1] and "seq" in sql[1]
    assert pushed["orders"] == 21 and pushed["version"] == selectors.ledger_seq(merchant_id=merchant.pk)
    assert {c["channel"]: c["orders"] for c in pushed["channels"]} == {"storefront": 20, "api": 1}
    with CaptureQueriesContext(connection) as seen:
        assert selectors.session_stats_pushed(session_id=show.pk) == pushed
    assert len(seen.captured_queries) == 1  # nothing changed: the head only
    assert Order.objects.get(pk=order.pk).channel == "api"


def test_the_show_is_counted_afresh_after_a_while(merchant, monkeypatch):
    show = make_session(merchant)
    listing = make_listing(merchant, quota=5, limit=1, session=show)
    _place(listing, "a", "storefront")
    selectors.session_stats_pushed(session_id=show.pk)
    # A change the ledger does not show (none exists in the product; here by hand): only a count sees it.
    Order.objects.filter(session_id=show.pk).update(channel="api")
    assert selectors.session_stats_pushed(session_id=show.pk)["channels"][0]["channel"] == "storefront"
    monkeypatch.setattr(selectors, "TALLY_RECOUNT_S", 0.0)
    assert selectors.session_stats_pushed(session_id=show.pk)["channels"][0]["channel"] == "api"


def test_pushes_from_several_threads_while_orders_arrive_count_each_event_once(merchant):
    """Pushes run in timer threads; one that outlasts the coalescing window meets the next. The
    show's pushes run one at a time, each moves the tally forward only, and the figures end equal
    to a full count."""
    show = make_session(merchant)
    listing = make_listing(merchant, quota=200, limit=1, session=show)
    _place(listing, "first", "storefront")
    selectors.session_stats_pushed(session_id=show.pk)
    stop = threading.Event()
    seen: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def pusher(n: int) -> None:
        versions = seen.setdefault(n, [])
        try:
            while not stop.is_set():
                versions.append(selectors.session_stats_pushed(session_id=show.pk)["version"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pusher, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        for n in range(40):
            _place(listing, f"b{n}", "api" if n % 3 else "storefront")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors
    for versions in seen.values():
        assert versions == sorted(versions)  # never backwards
    assert sum(len(v) for v in seen.values()) > 4
    pushed = selectors.session_stats_pushed(session_id=show.pk)
    assert pushed == _full(show.pk)
    assert pushed["orders"] == 41


def test_a_count_during_a_flood_is_kept_on_postgresql(merchant):
    """On PostgreSQL the full count reads the head and the totals in one snapshot, so a count
    taken while orders keep arriving is exact and starts the tally (before, it was dropped and
    every push counted the whole show again)."""
    show = make_session(merchant)
    listing = make_listing(merchant, quota=200, limit=1, session=show)
    stop = threading.Event()

    def flood() -> None:
        try:
            n = 0
            while not stop.is_set():
                _place(listing, f"f{n}", "storefront")
                n += 1
        finally:
            connection.close()

    t = threading.Thread(target=flood)
    t.start()
    try:
        wait_until(lambda: Order.objects.filter(session_id=show.pk).count() >= 5, what="the flood to start")
        stats = selectors.session_stats_pushed(session_id=show.pk)
        kept = selectors._tallies.get(show.pk)
    finally:
        stop.set()
        t.join(30)
    if connection.vendor == "postgresql":
        assert kept is not None and kept.version == stats["version"]
    assert selectors.session_stats_pushed(session_id=show.pk) == _full(show.pk)


def test_a_full_count_gives_way_to_a_statement_locking_its_tables(merchant):
    """The count's snapshot transaction holds a share lock on each table it has read; a TRUNCATE or
    DDL statement taking the tables one by one would deadlock with it (the test suite's flush
    between tests did). The count waits for a table lock only briefly and fails instead."""
    show = make_session(merchant)
    listing = make_listing(merchant, quota=5, limit=1, session=show)
    _place(listing, "a", "storefront")
    if connection.vendor != "postgresql":
        assert selectors.session_stats_pushed(session_id=show.pk)["orders"] == 1  # no snapshot transaction
        return
    holding, done = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute("LOCK TABLE orders_order IN ACCESS EXCLUSIVE MODE")
                holding.set()
                done.wait(30)
        finally:
            connection.close()

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert holding.wait(30)
        began = time.monotonic()
        with pytest.raises(OperationalError) as err:
            selectors.session_stats_pushed(session_id=show.pk)
        assert "lock timeout" in str(err.value)
        # Its own short wait, not the connection's lock_timeout (10 s, DB_LOCK_TIMEOUT_MS), which
        # would end the same way only much later: the bound is far from both.
        assert time.monotonic() - began < 5
    finally:
        done.set()
        t.join(30)
    assert selectors.session_stats_pushed(session_id=show.pk)["orders"] == 1
