"""Websocket test helpers: a communicator on the real ASGI application (origin check, session
auth, routing), orders placed and paid through the real services."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
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

ORIGIN = (b"origin", b"http://testserver")


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
    connected, _ = await comm.connect(timeout=5)
    assert connected
    first = await comm.receive_json_from(timeout=5)
    return comm, first


async def refused(path: str, **kwargs: Any) -> tuple[int, dict]:
    """Connect to a path that must refuse; return (close code, error message)."""
    comm = communicator(path, **kwargs)
    connected, _ = await comm.connect(timeout=5)
    assert connected  # accepted only to say why, then closed
    error = await comm.receive_json_from(timeout=5)
    closing = await comm.receive_output(timeout=5)
    assert closing["type"] == "websocket.close"
    await comm.wait()
    return closing["code"], error


async def next_of(comm: WebsocketCommunicator, kind: str, timeout: float = 5) -> dict:
    """The next message of ``kind``, skipping others (coalesced stats, listing pushes)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no {kind} within {timeout}s"
        msg = await comm.receive_json_from(timeout=left)
        if msg["type"] == kind:
            return msg


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
    assert events.flush(5)


def settle() -> None:
    """Let the coalesced pushes (listing stock, show totals: a few hundred ms) go out."""
    time.sleep(1.0)
    flush()


@pytest.fixture(autouse=True)
def _publisher_drained():  # type: ignore[no-untyped-def]
    """No push from the previous test leaks into this one."""
    events.flush(5)
    yield
    events.flush(5)
