"""Websocket consumers: who may join what, snapshot first, versioned pushes, nothing for a rollback."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction

from apps.orders.models import Order
from apps.orders.placement.links import status_token
from apps.orders.services.transitions import order_cancel, order_transition

from ..factories import make_listing, make_session, make_token
from .conftest import flush, join, next_of, order_path, pay, place, refused, settle, staff_cookie

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
    update = await comm.receive_json_from(timeout=5)
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
    assert await comm.receive_nothing(0.3)
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


async def test_listing_pushes_are_coalesced_and_the_last_value_arrives(merchant):
    listing = await db(make_listing)(merchant, quota=50)
    comm, snap = await join(f"/ws/listings/{listing.pk}/")
    started = time.monotonic()
    for i in range(12):
        await db(place)(listing, buyer=f"buyer-{i}")
    elapsed = time.monotonic() - started
    await db(flush)()
    pushes = []
    while not await comm.receive_nothing(1.0):  # (a timed-out receive would end the consumer)
        pushes.append(await comm.receive_json_from())
    assert pushes, "no listing push"
    assert all(m["type"] == "listing.updated" for m in pushes)
    # one push per 250 ms window at most (plus the window still open when the orders stopped)
    assert len(pushes) <= elapsed / 0.25 + 2, f"{len(pushes)} pushes for 12 orders in {elapsed:.2f}s"
    assert len(pushes) < 12 or elapsed > 2.5
    versions = [m["version"] for m in pushes]
    assert versions == sorted(versions)
    assert pushes[-1]["listing"]["sold"] == 12
    assert pushes[-1]["listing"]["available"] == 38
    await comm.disconnect()


async def test_listing_viewers_share_one_fan_out_feed(merchant):
    from apps.orders import fanout

    listing = await db(make_listing)(merchant, quota=9)
    group = f"listing.{listing.pk}"
    first, _ = await join(f"/ws/listings/{listing.pk}/")
    second, _ = await join(f"/ws/listings/{listing.pk}/")
    assert len(fanout._loop_feeds()[group].subscribers) == 2
    await db(place)(listing, buyer="a")
    await db(settle)()
    for comm in (first, second):
        push = await comm.receive_json_from()
        assert (push["type"], push["listing"]["sold"]) == ("listing.updated", 1)
    await first.disconnect()
    await db(place)(listing, buyer="b")
    await db(settle)()
    assert (await second.receive_json_from())["listing"]["sold"] == 2
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
    assert await comm.receive_nothing(0.5)
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
    await db(flush)()
    assert await buyer.receive_nothing(0.8)
    assert await show.receive_nothing(0.2)
    assert await stock.receive_nothing(0.2)
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
    assert (await comm.receive_json_from())["type"] == "pong"
    await comm.send_json_to({"type": "resync"})
    again = await comm.receive_json_from()
    assert again["type"] == "order.snapshot"
    await comm.send_to(text_data="not json")
    assert (await comm.receive_json_from())["code"] == "malformed_message"
    await comm.send_json_to({"type": "subscribe"})
    assert (await comm.receive_json_from())["code"] == "unknown_message"
    await comm.disconnect()


def test_the_publisher_uses_the_layers_own_group_channel_and_format():
    """``events`` publishes batches straight to Redis; what it writes must be exactly what
    channels_redis's ``group_send`` writes, or consumers would hear nothing."""
    import asyncio

    from channels.layers import get_channel_layer
    from django.conf import settings

    from apps.core import events

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
            await asyncio.sleep(0.05)  # the subscription is live
            events.publish("unit-test-group", {"type": "x", "version": 3, "n": [1, "二"]})
            assert await asyncio.to_thread(events.flush)
            message = await asyncio.wait_for(layer.receive(name), 5)
            assert message == {"type": "broadcast", "payload": {"type": "x", "version": 3, "n": [1, "二"]}}
        finally:
            await layer.group_discard("unit-test-group", name)

    asyncio.run(check())
