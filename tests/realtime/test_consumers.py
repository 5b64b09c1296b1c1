"""Websocket consumers: who may join what, snapshot first, versioned pushes, nothing for a rollback."""

from __future__ import annotations

import threading
import types
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction

from apps.core import events
from apps.core.redis import get_client
from apps.orders.models import Order
from apps.orders.placement.links import status_token
from apps.orders.services.transitions import order_cancel, order_transition

from ..factories import make_listing, make_session, make_token
from ..waiting import wait_until
from .conftest import (
    collect_until,
    flush,
    join,
    next_of,
    nothing_else,
    order_path,
    pay,
    place,
    receive,
    refused,
    settle,
    staff_cookie,
)

pytestmark = pytest.mark.django_db(transaction=True)
db = sync_to_async


# --- a buyer's order ------------------------------------------------------------------------------
async def test_order_socket_sends_snapshot_then_versioned_updates(merchant):
    listing = await db(make_listing)(merchant, quota=5, price="19.90")
    order = await db(place)(listing, quantity=1)
    await db(flush)()
    comm, snap = await join(order_path(order))
    assert snap["type"] == "order.snapshot"
    assert snap["version"] == 1
    assert snap["order"]["id"] == order.public_id
    assert snap["order"]["status"] == "pending_payment"
    assert snap["order"]["total"] == "19.90"
    assert snap["order"]["items"][0]["quantity"] == 1
    assert [step["status"] for step in snap["order"]["timeline"]] == ["pending_payment"]
    assert snap["server_time"]

    await db(pay)(order)
    await db(flush)()
    update = await receive(comm)
    assert update["type"] == "order.updated"
    assert update["version"] == 2
    assert update["order"]["status"] == "paid"
    assert update["order"]["paid_at"]
    await comm.disconnect()


async def test_order_updates_arrive_in_version_order_with_shipping_details(merchant):
    listing = await db(make_listing)(merchant, quota=5)
    order = await db(place)(listing)
    comm, snap = await join(order_path(order))
    await db(pay)(order)
    await db(order_transition)(order=order, to="confirmed", actor="staff:1")
    await db(order_transition)(
        order=order, to="shipped", actor="staff:1", carrier="顺丰速运", tracking_number="SF1234567890"
    )
    await db(flush)()
    seen = [await next_of(comm, "order.updated") for _ in range(3)]
    assert [m["version"] for m in seen] == [2, 3, 4]
    assert [m["order"]["status"] for m in seen] == ["paid", "confirmed", "shipped"]
    assert seen[-1]["order"]["carrier"] == "顺丰速运"
    assert seen[-1]["order"]["tracking_number"] == "SF1234567890"
    await nothing_else(comm, f"order.{order.public_id}")
    await comm.disconnect()


async def test_order_socket_refuses_without_token(merchant):
    listing = await db(make_listing)(merchant, quota=5)
    order = await db(place)(listing)
    code, error = await refused(f"/ws/orders/{order.public_id}/")
    assert code == 4401
    assert error == {"type": "error", "code": "token_required", "message": error["message"]}


async def test_order_socket_refuses_forged_token(merchant):
    listing = await db(make_listing)(merchant, quota=5)
    order = await db(place)(listing)
    code, error = await refused(f"/ws/orders/{order.public_id}/?t=1xVzin:forgedforgedforgedforged")
    assert code == 4403
    assert error["code"] == "invalid_token"


async def test_order_socket_refuses_another_orders_token(merchant):
    listing = await db(make_listing)(merchant, quota=5, limit=2)
    mine = await db(place)(listing, buyer="me")
    theirs = await db(place)(listing, buyer="them")
    code, _ = await refused(f"/ws/orders/{theirs.public_id}/?t={status_token(mine.public_id)}")
    assert code == 4403


async def test_order_socket_refuses_expired_token(merchant, settings):
    listing = await db(make_listing)(merchant, quota=5)
    order = await db(place)(listing)
    settings.ORDER_STATUS_LINK_MAX_AGE = -1  # every link is past its age
    code, error = await refused(order_path(order))
    assert code == 4403
    assert error["code"] == "invalid_token"


async def test_listing_socket_is_public_and_starts_with_stock(merchant):
    listing = await db(make_listing)(merchant, quota=7, price="9.90", limit=2)
    await db(place)(listing, quantity=2)
    comm, snap = await join(f"/ws/listings/{listing.pk}/", origin=False)  # an overlay: no browser
    assert snap["type"] == "listing.snapshot"
    assert snap["listing"]["id"] == listing.pk
    assert snap["listing"]["available"] == 5
    assert snap["listing"]["sold"] == 2
    assert snap["listing"]["status"] == "open"
    assert snap["version"] >= 1
    await comm.disconnect()


async def test_listing_socket_unknown_listing_is_4404():
    code, error = await refused("/ws/listings/987654/")
    assert code == 4404
    assert error["code"] == "listing_not_found"


def sold(count: int):  # type: ignore[no-untyped-def]
    return lambda m: m["type"] == "listing.updated" and m["listing"]["sold"] == count


async def test_listing_pushes_never_outnumber_changes_and_the_last_value_arrives(merchant):
    """Whatever the machine's speed (12 changes in one window or one window each): at most one
    push per change, in version order, and the last value always arrives."""
    listing = await db(make_listing)(merchant, quota=50)
    await db(settle)()  # the listing's own opening push is out before we join
    comm, snap = await join(f"/ws/listings/{listing.pk}/")
    for i in range(12):
        await db(place)(listing, buyer=f"buyer-{i}")
    pushes = await collect_until(comm, sold(12), what="the push with sold == 12")
    # A push that read the final state may be followed by one more that reads it again.
    await db(settle)()
    group = f"listing.{listing.pk}"
    marker = {"type": "test.marker", "version": 0}
    events.publish(group, marker)
    pushes += (await collect_until(comm, lambda m: m == marker, what="the marker"))[:-1]
    assert all(m["type"] == "listing.updated" for m in pushes), pushes
    assert 1 <= len(pushes) <= 12, [m["listing"]["sold"] for m in pushes]
    versions = [m["version"] for m in pushes]
    assert versions == sorted(versions) and versions[0] > snap["version"]
    assert [m["listing"]["sold"] for m in pushes] == sorted(m["listing"]["sold"] for m in pushes)
    assert (pushes[-1]["listing"]["sold"], pushes[-1]["listing"]["available"]) == (12, 38)
    await comm.disconnect()


class _HeldTimer:
    def __init__(self, owner: HeldTimers, interval: float, function: Any, args: Any = None, kwargs: Any = None):
        self.owner, self.interval, self.function = owner, interval, function
        self.args, self.kwargs = args or (), kwargs or {}
        self.daemon = True

    def start(self) -> None:
        self.owner.held.append(self)


class HeldTimers:
    """``threading.Timer`` for ``apps.core.events`` only: a coalescing window stays open until the
    test closes it, so "these changes fell in one window" is a fact, not a race with the clock."""

    def __init__(self) -> None:
        self.held: list[_HeldTimer] = []

    def module(self) -> types.SimpleNamespace:
        return types.SimpleNamespace(**{**vars(threading), "Timer": self.timer})

    def timer(self, interval: float, function: Any, args: Any = None, kwargs: Any = None) -> _HeldTimer:
        return _HeldTimer(self, interval, function, args, kwargs)

    def close_windows(self) -> None:
        """Fire every held timer as a real one would: in its own thread, after its delay, when
        its cross-process token (SET NX PX delay) has expired too."""
        held, self.held = self.held, []
        if not held:
            return
        wait_until(lambda: not get_client().keys("lc:push:*"), what="the coalescing tokens to expire")
        for t in held:
            thread = threading.Thread(target=t.function, args=t.args, kwargs=t.kwargs)
            thread.start()
            thread.join(30)
            assert not thread.is_alive(), "a coalesced push did not finish"


@pytest.fixture
def held_timers(monkeypatch):  # type: ignore[no-untyped-def]
    held = HeldTimers()
    monkeypatch.setattr(events, "threading", held.module())
    yield held
    held.close_windows()  # nothing stays pending in ``events`` for later tests


async def test_changes_inside_one_window_ride_on_one_push_and_a_later_change_gets_its_own(merchant, held_timers):
    listing = await db(make_listing)(merchant, quota=50)
    await db(held_timers.close_windows)()  # the opening push, before we join
    await db(settle)()
    group = f"listing.{listing.pk}"
    comm, snap = await join(f"/ws/listings/{listing.pk}/")
    for i in range(12):  # all inside one window, however long they take
        await db(place)(listing, buyer=f"buyer-{i}")
    await nothing_else(comm, group)  # nothing goes out while the window is open
    await db(held_timers.close_windows)()
    push = await receive(comm)
    assert (push["type"], push["listing"]["sold"], push["listing"]["available"]) == ("listing.updated", 12, 38)
    assert push["version"] > snap["version"]
    await nothing_else(comm, group)  # one push for twelve changes

    await db(place)(listing, buyer="after-the-window")  # a change after the push: a new window
    await db(held_timers.close_windows)()
    push = await receive(comm)
    assert (push["type"], push["listing"]["sold"]) == ("listing.updated", 13)
    await nothing_else(comm, group)
    await comm.disconnect()


async def test_listing_viewers_share_one_fan_out_feed(merchant):
    from apps.orders import fanout

    listing = await db(make_listing)(merchant, quota=9)
    await db(settle)()  # the listing's opening push is out before anyone joins
    group = f"listing.{listing.pk}"
    first, _ = await join(f"/ws/listings/{listing.pk}/")
    second, _ = await join(f"/ws/listings/{listing.pk}/")
    assert len(fanout._loop_feeds()[group].subscribers) == 2
    await db(place)(listing, buyer="a")
    for comm in (first, second):
        assert [m["listing"]["sold"] for m in await collect_until(comm, sold(1), what="sold == 1")] == [1]
    await first.disconnect()
    await db(place)(listing, buyer="b")
    assert [m["listing"]["sold"] for m in await collect_until(second, sold(2), what="sold == 2")] == [2]
    await second.disconnect()
    assert group not in fanout._loop_feeds()


# --- a show: staff and API tokens, tenant walls ---------------------------------------------------------
async def test_session_socket_for_own_staff_sends_snapshot_then_order_events(merchant):
    listing = await db(make_listing)(merchant, quota=10, price="50.00")
    first = await db(place)(listing, buyer="early")
    await db(pay)(first)
    cookie = await db(staff_cookie)(merchant, "alice")
    comm, snap = await join(f"/ws/sessions/{listing.session_id}/", cookie=cookie)
    assert snap["type"] == "session.snapshot"
    assert snap["stats"]["orders"] == 1
    assert snap["stats"]["paid"] == 1
    assert snap["stats"]["gmv"] == "50.00"
    assert snap["version"] == snap["stats"]["version"] == 2  # placed + paid
    assert [x["id"] for x in snap["listings"]] == [listing.pk]
    assert snap["listings"][0]["available"] == 9
    assert [o["id"] for o in snap["orders"]] == [first.public_id]
    assert snap["orders"][0]["seq"] == 2
    assert sum(b["n"] for b in snap["per_minute"]) == 1

    second = await db(place)(listing, buyer="late")
    await db(flush)()
    line = await next_of(comm, "session.order")
    assert line["version"] == 3  # the merchant's ledger seq: after the snapshot's
    assert line["order"]["id"] == second.public_id
    assert line["order"]["order_version"] == 1
    stats = await next_of(comm, "session.stats")
    assert stats["version"] == 3
    assert stats["stats"]["orders"] == 2
    assert stats["stats"]["unpaid"] == 1
    await comm.disconnect()


async def test_session_socket_sends_listing_stock(merchant):
    listing = await db(make_listing)(merchant, quota=3)
    token = await db(make_token)(merchant)
    comm, _ = await join(f"/ws/sessions/{listing.session_id}/?token={token}", origin=False)
    await db(place)(listing)
    await db(flush)()
    push = await next_of(comm, "session.listing")
    assert push["listing"]["id"] == listing.pk
    assert push["listing"]["available"] == 2
    await comm.disconnect()


async def test_session_socket_accepts_api_token_in_authorization_header(merchant):
    listing = await db(make_listing)(merchant, quota=3)
    token = await db(make_token)(merchant)
    comm, snap = await join(
        f"/ws/sessions/{listing.session_id}/", origin=False, headers=[(b"authorization", f"Token {token}".encode())]
    )
    assert snap["type"] == "session.snapshot"
    await comm.disconnect()


async def test_session_socket_refuses_anonymous_and_bad_tokens(merchant):
    session = await db(make_session)(merchant)
    code, error = await refused(f"/ws/sessions/{session.pk}/")
    assert (code, error["code"]) == (4401, "authentication_required")
    code, error = await refused(f"/ws/sessions/{session.pk}/?token=lc_not-a-real-token")
    assert (code, error["code"]) == (4401, "invalid_token")


async def test_session_socket_tenant_wall_for_tokens_and_staff(merchant, other_merchant):
    session = await db(make_session)(merchant)
    rival_token = await db(make_token)(other_merchant)
    code, _ = await refused(f"/ws/sessions/{session.pk}/?token={rival_token}")
    assert code == 4403
    rival_staff = await db(staff_cookie)(other_merchant, "mallory")
    code, _ = await refused(f"/ws/sessions/{session.pk}/", cookie=rival_staff)
    assert code == 4403


async def test_staff_cookie_without_origin_is_ignored(merchant):
    """Only a browser page of ours may use the admin session: an origin-less client must bring a token."""
    session = await db(make_session)(merchant)
    cookie = await db(staff_cookie)(merchant, "alice")
    code, _ = await refused(f"/ws/sessions/{session.pk}/", cookie=cookie, origin=False)
    assert code == 4401


async def test_foreign_origin_is_rejected_at_handshake(merchant):
    session = await db(make_session)(merchant)
    cookie = await db(staff_cookie)(merchant, "alice")
    from .conftest import communicator

    comm = communicator(f"/ws/sessions/{session.pk}/", origin=False, cookie=cookie)
    comm.scope["headers"].append((b"origin", b"https://evil.example"))
    connected, _ = await comm.connect(timeout=5)
    assert not connected


# --- a merchant's feed ------------------------------------------------------------------------------------
async def test_merchant_socket_with_token_gets_its_orders_only(merchant, other_merchant):
    listing = await db(make_listing)(merchant, quota=5)
    rival_listing = await db(make_listing)(other_merchant, quota=5)
    token = await db(make_token)(merchant)
    comm, snap = await join(f"/ws/merchant/?token={token}", origin=False)
    assert snap["type"] == "merchant.snapshot"
    assert snap["merchant"] == merchant.pk
    await db(place)(rival_listing)
    mine = await db(place)(listing)
    await db(flush)()
    line = await next_of(comm, "merchant.order")
    assert line["order"]["id"] == mine.public_id
    assert line["session"] == listing.session_id
    await nothing_else(comm, f"merchant.{merchant.pk}")  # the rival's order never came
    await comm.disconnect()


async def test_merchant_socket_refuses_other_merchants_staff(merchant, other_merchant):
    cookie = await db(staff_cookie)(other_merchant, "mallory")
    code, _ = await refused(f"/ws/merchant/?merchant={merchant.pk}", cookie=cookie)
    assert code == 4403
    code, _ = await refused("/ws/merchant/")
    assert code == 4401


# --- after commit only; reconnects see the truth ---------------------------------------------------------
async def test_nothing_is_published_for_a_change_that_rolled_back(merchant):
    listing = await db(make_listing)(merchant, quota=5)
    order = await db(place)(listing)
    token = await db(make_token)(merchant)
    await db(settle)()
    buyer, _ = await join(order_path(order))
    show, _ = await join(f"/ws/sessions/{listing.session_id}/?token={token}", origin=False)
    stock, _ = await join(f"/ws/listings/{listing.pk}/")

    def cancel_then_fail() -> None:
        with transaction.atomic():
            order_cancel(order=order, actor="buyer", reason="changed mind", by_buyer=True)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await db(cancel_then_fail)()
    await nothing_else(buyer, f"order.{order.public_id}")
    await nothing_else(show, f"session.{listing.session_id}")
    await nothing_else(stock, f"listing.{listing.pk}")
    assert (await db(Order.objects.get)(pk=order.pk)).status == "pending_payment"
    for comm in (buyer, show, stock):
        await comm.disconnect()


async def test_reconnect_gets_the_state_missed_while_away(merchant):
    listing = await db(make_listing)(merchant, quota=5)
    order = await db(place)(listing)
    comm, snap = await join(order_path(order))
    assert snap["order"]["status"] == "pending_payment"
    await comm.disconnect()
    await db(order_cancel)(order=order, actor="buyer", reason="wrong size", by_buyer=True)  # pushed to nobody
    await db(flush)()
    again, snap = await join(order_path(order))
    assert snap["order"]["status"] == "cancelled"
    assert snap["order"]["cancel_reason"] == "wrong size"
    assert snap["version"] == 2
    assert [s["status"] for s in snap["order"]["timeline"]] == ["pending_payment", "cancelled"]
    await again.disconnect()


async def test_ping_and_resync(merchant):
    listing = await db(make_listing)(merchant, quota=5)
    order = await db(place)(listing)
    comm, _ = await join(order_path(order))
    await comm.send_json_to({"type": "ping"})
    assert (await receive(comm))["type"] == "pong"
    await comm.send_json_to({"type": "resync"})
    again = await receive(comm)
    assert again["type"] == "order.snapshot"
    await comm.send_to(text_data="not json")
    assert (await receive(comm))["code"] == "malformed_message"
    await comm.send_json_to({"type": "subscribe"})
    assert (await receive(comm))["code"] == "unknown_message"
    await comm.disconnect()


def test_the_publisher_uses_the_layers_own_group_channel_and_format():
    """``events`` publishes batches straight to Redis; what it writes must be exactly what
    channels_redis's ``group_send`` writes, or consumers would hear nothing."""
    import asyncio

    from channels.layers import get_channel_layer
    from django.conf import settings

    layer = get_channel_layer()
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"].get("prefix", "asgi")

    async def check() -> None:
        name = await layer.new_channel()
        await layer.group_add("unit-test-group", name)
        try:
            loop_layer = layer._get_layer()
            assert loop_layer._get_group_channel_name("unit-test-group") == events.group_channel(
                prefix, "unit-test-group"
            )
            # group_add sends SUBSCRIBE without waiting for Redis to confirm it: wait until
            # Redis counts the subscriber, or the publish below could reach nobody.
            channel = events.group_channel(prefix, "unit-test-group")
            await asyncio.to_thread(
                wait_until,
                lambda: sum(n for _, n in get_client().pubsub_numsub(channel)) >= 1,
                what=f"Redis to count a subscriber on {channel}",
            )
            events.publish("unit-test-group", {"type": "x", "version": 3, "n": [1, "二"]})
            assert await asyncio.to_thread(events.flush)
            message = await asyncio.wait_for(layer.receive(name), 15)
            assert message == {"type": "broadcast", "payload": {"type": "x", "version": 3, "n": [1, "二"]}}
        finally:
            await layer.group_discard("unit-test-group", name)

    asyncio.run(check())
