"""Websocket test helpers: a communicator on the real ASGI application (origin check, session
auth, routing), orders placed and paid through the real services."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from apps.core import events
from apps.merchants import services as merchants
from apps.orders.placement.links import status_path
from apps.orders.placement.request import parse_order_request
from apps.orders.placement.service import order_place
from apps.orders.services import payments
from livecommerce.asgi import application

from ..factories import order_body
from ..waiting import wait_until

ORIGIN = (b"origin", b"http://testserver")
WAIT = 15  # seconds for a message that must come: only a broken test waits this long


def communicator(path: str, *, origin: bool = True, cookie: str = "", headers: list | None = None):
    hdrs = list(headers or [])
    if origin:
        hdrs.append(ORIGIN)
    if cookie:
        hdrs.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, path, headers=hdrs)


async def join(path: str, **kwargs: Any) -> tuple[WebsocketCommunicator, dict]:
    """Connect and return the first message (the snapshot or an error)."""
    comm = communicator(path, **kwargs)
    connected, _ = await comm.connect(timeout=WAIT)
    assert connected
    first = await comm.receive_json_from(timeout=WAIT)
    return comm, first


async def refused(path: str, **kwargs: Any) -> tuple[int, dict]:
    """Connect to a path that must refuse; return (close code, error message)."""
    comm = communicator(path, **kwargs)
    connected, _ = await comm.connect(timeout=WAIT)
    assert connected  # accepted only to say why, then closed
    error = await comm.receive_json_from(timeout=WAIT)
    closing = await comm.receive_output(timeout=WAIT)
    assert closing["type"] == "websocket.close"
    await comm.wait()
    return closing["code"], error


async def receive(comm: WebsocketCommunicator) -> dict:
    """The next message, however busy the machine (a receive that times out ends the consumer)."""
    return await comm.receive_json_from(timeout=WAIT)


async def next_of(comm: WebsocketCommunicator, kind: str, timeout: float = WAIT) -> dict:
    """The next message of ``kind``, skipping others (coalesced stats, listing pushes)."""
    return (await collect_until(comm, lambda m: m["type"] == kind, timeout=timeout, what=kind))[-1]


async def collect_until(comm: WebsocketCommunicator, done: Any, *, timeout: float = WAIT, what: str = "") -> list[dict]:
    """Every message up to and including the first one ``done(message)`` accepts."""
    deadline = time.monotonic() + timeout
    seen: list[dict] = []
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no {what or 'matching message'} within {timeout}s; saw {seen!r}"
        try:
            msg = await comm.receive_json_from(timeout=left)
        except TimeoutError:
            raise AssertionError(f"no {what or 'matching message'} within {timeout}s; saw {seen!r}") from None
        seen.append(msg)
        if done(msg):
            return seen


async def nothing_else(comm: WebsocketCommunicator, group: str) -> None:
    """Assert the socket has received nothing more, without waiting a fixed time for an absence:
    once every coalesced push scheduled so far is out, a marker goes to the socket's group, after
    anything already published (one publisher, in order); the next message must be the marker."""
    await sync_to_async(settle)()
    marker = {"type": "test.marker", "version": 0, "id": uuid.uuid4().hex}
    events.publish(group, marker)
    await sync_to_async(flush)()
    got = await receive(comm)
    assert got == marker, f"expected nothing before the marker, got {got!r}"


def place(listing, buyer: str = "b1", quantity: int = 1, key: str | None = None):  # type: ignore[no-untyped-def]
    req = parse_order_request(order_body(listing.pk, buyer=buyer, quantity=quantity))
    return order_place(req=req, merchant_id=None, idempotency_key=key, channel="storefront").order


def pay(order, txn: str | None = None):  # type: ignore[no-untyped-def]
    body = json.dumps(
        {
            "order": order.public_id,
            "transaction_id": txn or f"txn-{order.public_id}",
            "amount": str(order.total),
            "paid_at": "2026-11-24T12:00:00+08:00",
        }
    ).encode()
    ts = str(int(time.time()))
    return payments.payment_receive(body=body, timestamp=ts, signature=payments.sign(body, ts))


def order_path(order) -> str:  # type: ignore[no-untyped-def]
    return "/ws" + status_path(order).replace("/o/", "/orders/", 1)


def staff_cookie(merchant, username: str) -> str:  # type: ignore[no-untyped-def]
    user = merchants.staff_create(merchant=merchant, username=username, password="pw-123456789")
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def flush() -> None:
    assert events.flush(WAIT), f"the publisher did not drain within {WAIT}s"


def coalesced_pushes_pending() -> list[str]:
    """Coalesced pushes (``events.coalesced``: listing stock, show totals) not out yet: their
    timer is waiting, or is running the push (reading the state, queueing the publish)."""
    return [
        t.name
        for t in threading.enumerate()
        if isinstance(t, threading.Timer) and t.is_alive() and getattr(t.function, "__module__", "") == events.__name__
    ]


def settle() -> None:
    """Wait until every coalesced push scheduled so far has been handed to the publisher, then
    until the publisher has sent everything queued: after this, nothing published before can
    still arrive later."""
    wait_until(lambda: not coalesced_pushes_pending(), timeout=WAIT, what="the coalesced pushes to go out")
    flush()


@pytest.fixture(autouse=True)
def _publisher_drained():  # type: ignore[no-untyped-def]
    """No push from the previous test leaks into this one."""
    settle()
    yield
    settle()
