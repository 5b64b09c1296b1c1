"""``orders_transition_many``: many orders moved in one transaction with set-based writes, with
the checks and effects of ``order_transition`` order by order: an order that may not move is
refused alone, stock ships exactly, the ledger chain verifies, every change is published after
commit, another merchant's order is out of reach, and a cancel racing a bulk ship on the
configured database (PostgreSQL under CI) leaves every order in exactly one of the two outcomes."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from apps.core import events as core_events
from apps.inventory.models import Stock, StockMovement
from apps.orders.errors import InvalidTransition, OrderNotFound
from apps.orders.models import Order, OrderEvent, OrderLine, OrderStatus
from apps.orders.services.ledger import LedgerEntry, ledger_append_many, ledger_verify
from apps.orders.services.transitions import (
    TransitionItem,
    order_cancel,
    order_transition,
    orders_transition_many,
)

from ..factories import make_listing, order_body
from .invariants import assert_consistent

S = OrderStatus


def _confirmed(api: Any, listing: Any, n: int, prefix: str = "b") -> list[Order]:
    ids = []
    for i in range(n):
        r = api.post("/api/v1/orders", order_body(listing.pk, buyer=f"{prefix}{i}"), format="json")
        assert r.status_code == 201, r.content
        public_id = r.json()["id"]
        order_transition(public_id=public_id, to=S.PAID, actor="payment", reason="paid")
        order_transition(public_id=public_id, to=S.CONFIRMED, actor="test", reason="confirmed")
        ids.append(public_id)
    return list(Order.objects.filter(public_id__in=ids).order_by("pk"))


def _items(orders: list[Order]) -> list[TransitionItem]:
    return [
        TransitionItem(pk=o.pk, reason=f"中通快递 W{o.pk}", carrier="中通快递", tracking_number=f"W{o.pk}")
        for o in orders
    ]


@pytest.fixture
def pushes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    sent: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(core_events, "publish", lambda group, payload: sent.append((group, payload)))
    return sent


@pytest.mark.django_db
def test_bulk_ship_moves_the_confirmed_and_refuses_alone_the_one_no_longer_confirmed(  # type: ignore[no-untyped-def]
    api, merchant, pushes, django_capture_on_commit_callbacks
) -> None:
    listing = make_listing(merchant, quota=6, limit=1)
    orders = _confirmed(api, listing, 5)
    gone = orders[2]
    with django_capture_on_commit_callbacks(execute=True):  # the gate gives its units back after commit
        order_cancel(order=gone, actor="staff:1", reason="buyer changed their mind")  # confirmed -> refund_pending
    pushes.clear()

    with django_capture_on_commit_callbacks(execute=True):
        done = orders_transition_many(
            merchant_id=merchant.pk,
            items=_items(orders),
            to=S.SHIPPED,
            actor="ship batch #1",
            allowed_from=(S.CONFIRMED,),
        )

    shipped = [o for o in orders if o.pk != gone.pk]
    assert [o.pk for o in done.moved] == [o.pk for o in shipped]
    assert list(done.refused) == [gone.pk]
    refusal = done.refused[gone.pk]
    assert isinstance(refusal, InvalidTransition)
    assert refusal.extra == {"from": S.REFUND_PENDING, "to": S.SHIPPED, "order": gone.public_id}
    for o in shipped:
        o.refresh_from_db()
        assert (o.status, o.carrier, o.tracking_number, o.version) == (S.SHIPPED, "中通快递", f"W{o.pk}", 4)
        last = o.events.order_by("-seq").first()
        assert last is not None
        assert (last.from_status, last.to_status, last.actor, last.reason) == (
            S.CONFIRMED,
            S.SHIPPED,
            "ship batch #1",
            f"中通快递 W{o.pk}",
        )
        # published after commit, as order_transition publishes: the buyer's page and the dashboards
        assert [p["order"]["status"] for g, p in pushes if g == f"order.{o.public_id}"] == [S.SHIPPED]
        assert [p["version"] for g, p in pushes if g == f"order.{o.public_id}"] == [4]
    gone.refresh_from_db()
    assert (gone.status, gone.tracking_number, gone.version) == (S.REFUND_PENDING, "", 4)
    assert not [g for g, _p in pushes if g == f"order.{gone.public_id}"]
    stock = Stock.objects.get(sku_id=listing.sku_id)
    assert (stock.on_hand, stock.reserved) == (6 - 4, 0)
    ships = StockMovement.objects.filter(sku_id=listing.sku_id, kind=StockMovement.Kind.SHIP)
    assert sorted(ships.values_list("reference", flat=True)) == sorted(o.public_id for o in shipped)
    assert {(m.on_hand_delta, m.reserved_delta) for m in ships} == {(-1, -1)}
    assert_consistent(listing.pk, expect_sold=4)  # stock recomputes from its movements; ledger verifies


@pytest.mark.django_db
def test_bulk_ship_refuses_alone_an_order_with_a_line_that_holds_no_stock(api, merchant) -> None:  # type: ignore[no-untyped-def]
    listing = make_listing(merchant, quota=4, limit=1)
    orders = _confirmed(api, listing, 3)
    short = orders[0]
    OrderLine.objects.filter(order=short).update(reserved=False)  # a platform oversold it
    Stock.objects.filter(sku_id=listing.sku_id).update(reserved=2)  # so the short line holds nothing

    done = orders_transition_many(
        merchant_id=merchant.pk, items=_items(orders), to=S.SHIPPED, actor="batch", allowed_from=(S.CONFIRMED,)
    )

    assert [o.pk for o in done.moved] == [o.pk for o in orders[1:]]
    refusal = done.refused[short.pk]
    assert isinstance(refusal, InvalidTransition) and refusal.extra["reason"] == "line_not_reserved"
    short.refresh_from_db()
    assert short.status == S.CONFIRMED
    stock = Stock.objects.get(sku_id=listing.sku_id)
    assert (stock.on_hand, stock.reserved) == (4 - 2, 0)
    assert ledger_verify(merchant_id=merchant.pk) == []


@pytest.mark.django_db
def test_another_merchants_order_is_not_found_and_left_alone(api, merchant, other_merchant, other_api) -> None:  # type: ignore[no-untyped-def]
    mine = _confirmed(api, make_listing(merchant, quota=2), 1)
    theirs = _confirmed(other_api, make_listing(other_merchant, quota=2), 1, prefix="o")

    done = orders_transition_many(merchant_id=merchant.pk, items=_items(mine + theirs), to=S.SHIPPED, actor="batch")

    assert [o.pk for o in done.moved] == [mine[0].pk]
    assert isinstance(done.refused[theirs[0].pk], OrderNotFound)
    assert Order.objects.get(pk=theirs[0].pk).status == S.CONFIRMED
    assert not OrderEvent.objects.filter(order=theirs[0], to_status=S.SHIPPED).exists()
    assert ledger_verify() == []


@pytest.mark.django_db
@pytest.mark.parametrize("to", [S.CANCELLED, S.REFUND_PENDING, S.PAID, S.ON_HOLD])
def test_steps_with_releases_or_money_are_not_taken_in_bulk(api, merchant, to) -> None:  # type: ignore[no-untyped-def]
    orders = _confirmed(api, make_listing(merchant, quota=2), 1)
    with pytest.raises(ValueError, match="order_transition"):
        orders_transition_many(merchant_id=merchant.pk, items=_items(orders), to=to, actor="x")
    assert Order.objects.get(pk=orders[0].pk).status == S.CONFIRMED


@pytest.mark.django_db
def test_bulk_steps_chain_between_single_ones_and_the_ledger_verifies(api, merchant) -> None:  # type: ignore[no-untyped-def]
    listing = make_listing(merchant, quota=5, limit=1)
    orders = _confirmed(api, listing, 4)
    orders_transition_many(merchant_id=merchant.pk, items=_items(orders[:3]), to=S.SHIPPED, actor="batch")
    order_transition(order=orders[3], to=S.SHIPPED, actor="one", carrier="SF", tracking_number="SF1")
    orders_transition_many(merchant_id=merchant.pk, items=_items(orders[1:]), to=S.DELIVERED, actor="carrier")
    order_transition(order=orders[0], to=S.DELIVERED, actor="one")

    seqs = list(OrderEvent.objects.filter(merchant=merchant).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert set(Order.objects.filter(pk__in=[o.pk for o in orders]).values_list("status", flat=True)) == {S.DELIVERED}
    assert_consistent(listing.pk, expect_sold=4)
    entry = LedgerEntry(order=orders[0], from_status=S.DELIVERED, to_status=S.DELIVERED, actor="x", reason="")
    with pytest.raises(ValueError):  # one chain per merchant: an order of another is refused
        ledger_append_many(merchant_id=merchant.pk + 1, entries=[entry])


@pytest.mark.django_db(transaction=True)
def test_merchant_cancels_racing_a_bulk_ship_leave_each_order_in_exactly_one_outcome(api, merchant) -> None:  # type: ignore[no-untyped-def]
    """Threads on their own connections: one ships the orders in chunks of three, two others
    cancel half of them at the same time. Each order is decided under its row lock: shipped (the
    cancel is refused) or refund pending (the ship refuses it), never both, and stock, listing and
    ledger stay exact."""
    listing = make_listing(merchant, quota=24, limit=1)
    orders = _confirmed(api, listing, 24)
    targets = orders[::2]
    start = threading.Barrier(3)
    refused: dict[int, Exception] = {}
    cancelled: list[int] = []
    cancel_refused: list[int] = []
    errors: list[BaseException] = []

    def ship() -> None:
        try:
            start.wait(timeout=30)
            for i in range(0, len(orders), 3):
                done = orders_transition_many(
                    merchant_id=merchant.pk,
                    items=_items(orders[i : i + 3]),
                    to=S.SHIPPED,
                    actor="batch",
                    allowed_from=(S.CONFIRMED,),
                )
                refused.update(done.refused)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            connection.close()

    def cancel(mine: list[Order]) -> None:
        try:
            start.wait(timeout=30)
            for o in mine:
                try:
                    order_cancel(order=o, actor="staff:1", reason="out of stock")
                    cancelled.append(o.pk)
                except InvalidTransition:
                    cancel_refused.append(o.pk)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=ship),
        threading.Thread(target=cancel, args=(targets[::2],)),
        threading.Thread(target=cancel, args=(targets[1::2],)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert all(isinstance(e, InvalidTransition) for e in refused.values())
    assert set(refused) == set(cancelled)  # a cancelled order was refused by the ship ...
    assert sorted(cancelled + cancel_refused) == sorted(o.pk for o in targets)  # ... and every cancel decided
    status = dict(Order.objects.filter(pk__in=[o.pk for o in orders]).values_list("pk", "status"))
    assert {pk for pk, s in status.items() if s == S.REFUND_PENDING} == set(cancelled)
    assert {pk for pk, s in status.items() if s == S.SHIPPED} == {o.pk for o in orders} - set(cancelled)
    shipped = len(orders) - len(cancelled)
    stock = Stock.objects.get(sku_id=listing.sku_id)
    assert (stock.on_hand, stock.reserved) == (24 - shipped, 0)
    assert_consistent(listing.pk, expect_sold=shipped)
