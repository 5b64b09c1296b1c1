"""An order batcher keeps its database connection between the batches of a sale
(``ORDER_BATCHER_IDLE_SECONDS``) and drops one the server has closed meanwhile before using it."""

from __future__ import annotations

import os
import resource
import socket
import threading
import time

import pytest
from django.conf import settings
from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from rest_framework.test import APIClient

from apps.orders.placement.batcher import Batcher, readable, release_connections

from ..factories import make_listing, order_body
from .invariants import assert_consistent

pytestmark = pytest.mark.django_db(transaction=True)
ON_POSTGRES = "postgresql" in settings.DATABASES["default"]["ENGINE"]


@pytest.fixture(autouse=True)
def _batchers_let_go():  # type: ignore[no-untyped-def]
    """The linger tests' batchers hand their connections back before the database is flushed or
    dropped (``release_connections``, which is tested by this too: a kept connection would make
    the test database's teardown fail)."""
    yield
    release_connections()


def _batcher_counts(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often the batcher threads open (check out) a connection and hand one back."""
    counts = {"connect": 0, "close": 0}
    connect, close = BaseDatabaseWrapper.connect, Batcher._close_connection

    def counted_connect(self: BaseDatabaseWrapper) -> None:
        if threading.current_thread().name.startswith("lc-order-batcher"):
            counts["connect"] += 1
        connect(self)

    def counted_close() -> None:
        counts["close"] += 1
        close()

    monkeypatch.setattr(BaseDatabaseWrapper, "connect", counted_connect)
    monkeypatch.setattr(Batcher, "_close_connection", staticmethod(counted_close))
    return counts


def _first_order(merchant, token: str) -> tuple[APIClient, int]:  # type: ignore[no-untyped-def]
    """A listing of 10 units and a client whose first order on it has been placed."""
    listing = make_listing(merchant, quota=10, on_hand=10, limit=1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    _order(client, listing.pk, "first")
    return client, listing.pk


def _order(client: APIClient, listing_id: int, buyer: str) -> None:
    r = client.post("/api/v1/orders", order_body(listing_id, buyer=buyer), format="json")
    assert r.status_code == 201, r.content


def test_the_closed_connection_check_works_on_descriptors_past_1023():
    """A worker holding many websockets gives its database connections high descriptor numbers,
    which ``select`` refuses: the check must not take every such connection for a closed one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1601:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    a, b = socket.socketpair()
    high = os.dup2(a.fileno(), 1600)
    try:
        assert not readable(high)
        b.sendall(b"x")
        assert readable(high)
        b.close()
        os.read(high, 1)
        assert readable(high)  # the end of the stream: the peer has gone
    finally:
        os.close(high)
        a.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


if ON_POSTGRES:

    def test_a_batcher_keeps_its_connection_between_batches(merchant, token, settings, monkeypatch):
        settings.ORDER_BATCHER_IDLE_SECONDS = 30.0
        client, listing_id = _first_order(merchant, token)  # the batcher has a connection now
        counts = _batcher_counts(monkeypatch)
        for i in range(4):  # one at a time: each is a batch of its own, after an empty queue
            _order(client, listing_id, f"b{i}")
        assert counts == {"connect": 0, "close": 0}, counts
        assert_consistent(listing_id, expect_sold=5)
        release_connections()  # asked: it lets go at once, though its linger has 30 s to run
        assert counts["close"] >= 1, counts

    def test_without_the_linger_each_batch_after_an_empty_queue_checks_a_connection_out(
        merchant, token, settings, monkeypatch
    ):
        settings.ORDER_BATCHER_IDLE_SECONDS = 0.0
        client, listing_id = _first_order(merchant, token)
        counts = _batcher_counts(monkeypatch)
        for i in range(4):
            _order(client, listing_id, f"b{i}")
        assert counts["connect"] == 4 and counts["close"] >= 4, counts

    def test_a_kept_connection_the_server_closed_is_dropped_before_the_next_batch(
        merchant, token, settings, monkeypatch
    ):
        settings.ORDER_BATCHER_IDLE_SECONDS = 30.0
        client, listing_id = _first_order(merchant, token)
        with connection.cursor() as cur:  # the batcher's connection: idle, its last statement the batch
            cur.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle' "
                "AND query LIKE '%%lc_place_orders%%' AND pid <> pg_backend_pid()"
            )
            pids = [row[0] for row in cur.fetchall()]
            assert pids, "no idle batcher connection found"
            cur.execute("SELECT count(pg_terminate_backend(pid)) FROM unnest(%s::int[]) AS pid", [pids])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with connection.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [pids])
                if cur.fetchone()[0] == 0:
                    break
            time.sleep(0.05)
        counts = _batcher_counts(monkeypatch)
        _order(client, listing_id, "after")  # not a 503: the dead connection never served it
        assert counts["connect"] == 1, counts
        assert_consistent(listing_id, expect_sold=2)
