"""Refusals of ``POST /api/v1/orders`` answered on the event loop (``placement/eventloop.py``):
no database, no worker thread, the same answers; revocation keeps its bound; a Redis outage
mid-flood still answers, the database deciding alone (real Redis, real database)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any

import pytest
import redis
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.core.cache import cache
from django.db import connection, transaction
from django.db.backends import utils as db_utils
from django.utils import timezone

from apps.core import events
from apps.core.redis import close_async_client, get_async_client, reset_clients, run_together_async
from apps.fraud import rules
from apps.merchants.models import ApiToken
from apps.merchants.tokens import hash_token, local_tokens, token_cache_key
from apps.orders.models import Order
from apps.orders.placement.fastpath import OrderFastPath
from apps.orders.placement.gate import scripts as gate

from ..factories import make_listing, order_body
from .test_bad_input import _drf, _fast
from .test_fastpath import _passthrough

pytestmark = pytest.mark.django_db(transaction=True)


class DatabaseTrap:
    """Every query and every transaction opened, in any thread: (thread name, what)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[tuple[str, str]] = []
        execute, enter = db_utils.CursorWrapper._execute_with_wrappers, transaction.Atomic.__enter__

        def traced_execute(cursor, sql, *args, **kwargs):  # type: ignore[no-untyped-def]
            self.seen.append((threading.current_thread().name, sql))
            return execute(cursor, sql, *args, **kwargs)

        def traced_enter(atomic):  # type: ignore[no-untyped-def]
            self.seen.append((threading.current_thread().name, "atomic"))
            return enter(atomic)

        monkeypatch.setattr(db_utils.CursorWrapper, "_execute_with_wrappers", traced_execute)
        monkeypatch.setattr(transaction.Atomic, "__enter__", traced_enter)

    def ours(self) -> list[tuple[str, str]]:
        """What was seen, less a coalesced live push of a listing's figures (a timer thread the
        set-up's orders started, which reads the listing whenever its delay runs out)."""
        return [(thread, what) for thread, what in self.seen if not thread.startswith(events.PUSH_THREAD_PREFIX)]


def _raw(body: dict) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def _sold_out_listing(merchant, token):  # type: ignore[no-untyped-def]
    listing = make_listing(merchant, quota=1, limit=1)
    assert _fast(token, _raw(order_body(listing.pk, buyer="first")), event_loop=False)[0] == 201
    return listing


def test_a_sold_out_refusal_on_the_loop_makes_no_query_no_transaction_and_no_thread_hop(merchant, token, monkeypatch):
    listing = _sold_out_listing(merchant, token)
    before = _fast(token, _raw(order_body(listing.pk, buyer="late-0")), event_loop=False)
    trap, hops = DatabaseTrap(monkeypatch), []
    got = _fast(token, _raw(order_body(listing.pk, buyer="late-1")), event_loop=True, hops=hops)
    assert got[:2] == before[:2] and got[0] == 409 and got[1]["code"] == "sold_out", (got, before)
    assert trap.ours() == [] and hops == []


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"quantity": 2}, 409, "over_buyer_limit"),
        ({"quantity": 0}, 400, "invalid"),
        ({"client": {"user_agent": "curl/8.5.0"}}, 403, "risk_blocked"),
    ],
    ids=["over the limit", "invalid", "risk blocked"],
)
def test_other_refusals_on_the_loop_make_no_query_there(merchant, token, monkeypatch, change, status, code):
    listing = make_listing(merchant, quota=5, limit=1)
    warm = _fast(token, _raw({**order_body(listing.pk, buyer="w"), **change}), event_loop=False)
    trap, hops = DatabaseTrap(monkeypatch), []
    got = _fast(token, _raw({**order_body(listing.pk, buyer="x"), **change}), event_loop=True, hops=hops)
    assert got[0] == warm[0] == status and got[1]["code"] == code, got
    # A risk block records the attempt, in the worker pool after the answer; nothing else runs there.
    seen = trap.ours()
    assert [what for thread, what in seen if not thread.startswith("orders")] == []
    assert hops == (["_side_effect"] if code == "risk_blocked" else [])
    if code == "risk_blocked":
        assert any("fraud_riskassessment" in what for _thread, what in trap.seen)
        assert gate.gate_state(listing.pk)["left"] == 5  # the held unit went back
    else:
        assert seen == []


def test_a_closed_listings_attempt_is_counted_before_the_answer(merchant, token, monkeypatch):
    """A closed listing's hook (risk control counts early attempts there) runs in the pool and is
    done before the loop answers, as on the thread path: the early-attempt rule judges the buyer's
    very next attempt by it."""
    from apps.orders import hooks

    listing = make_listing(merchant, quota=5, open_=False)
    _fast(token, _raw(order_body(listing.pk, buyer="w")), event_loop=False)
    told: list[str] = []

    def slow_closed(**kwargs: Any) -> None:
        time.sleep(0.2)
        told.append(kwargs["public_id"])

    monkeypatch.setattr(hooks.registry, "closed", slow_closed)
    app = OrderFastPath(_passthrough, threads=1, event_loop=True)

    async def go() -> int:
        status = await _post(app, token, _raw(order_body(listing.pk, buyer="x")))
        assert len(told) == 1  # counted before the answer
        await close_async_client()
        return status

    assert async_to_sync(go)() == 409
    app.shutdown()
    assert len(told) == 1


def test_revocation_elsewhere_reaches_the_loop_within_the_local_cache_bound(merchant, token, settings):
    settings.TOKEN_LOCAL_CACHE_SECONDS = 0.4
    listing = _sold_out_listing(merchant, token)
    body = _raw(order_body(listing.pk, buyer="late"))
    assert _fast(token, body, event_loop=False)[0] == 409  # the token is in this process's cache
    # Another process revokes it: the database and the shared cache say so; this process's cache
    # still holds it, for at most TOKEN_LOCAL_CACHE_SECONDS.
    key_hash = hash_token(token)
    ApiToken.objects.filter(key_hash=key_hash).update(revoked_at=timezone.now())
    cache.set(token_cache_key(key_hash), "-", timeout=60)
    revoked_at = time.monotonic()
    hops: list[str] = []
    first = _fast(token, body, event_loop=True, hops=hops)
    if time.monotonic() - revoked_at < 0.4:
        assert first[0] == 409 and hops == []  # still within the bound
    time.sleep(0.45)
    hops.clear()
    late = _fast(token, body, event_loop=True, hops=hops)
    assert late[0] == 401 and late[1]["code"] == "authentication_failed", late
    assert hops == ["_handle"]  # the stale entry is not served: the worker thread decided
    assert _fast(token, body, event_loop=True)[0] == 401


def test_a_busy_token_is_refreshed_in_the_background_and_a_revoked_one_then_dropped(merchant, token, settings):
    settings.TOKEN_LOCAL_CACHE_SECONDS = 0.4
    listing = _sold_out_listing(merchant, token)
    body = _raw(order_body(listing.pk, buyer="late"))
    assert _fast(token, body, event_loop=False)[0] == 409
    key_hash = hash_token(token)
    expires = local_tokens[key_hash][0]
    time.sleep(max(expires - time.monotonic() - 0.05, 0))  # in the entry's last quarter
    hops: list[str] = []
    assert _fast(token, body, event_loop=True, hops=hops)[0] == 409
    assert hops == ["_side_effect"]  # answered on the loop; the entry refreshed in the pool
    assert local_tokens[key_hash][0] > expires
    # Revoked elsewhere: the next refresh reads the revoked marker and drops the entry.
    ApiToken.objects.filter(key_hash=key_hash).update(revoked_at=timezone.now())
    cache.set(token_cache_key(key_hash), "-", timeout=60)
    time.sleep(max(local_tokens[key_hash][0] - time.monotonic() - 0.05, 0))
    _fast(token, body, event_loop=True)
    assert key_hash not in local_tokens
    assert _fast(token, body, event_loop=True)[0] == 401


def test_a_listing_and_rules_near_their_end_are_read_again_in_the_background(merchant, token):
    """A listing on air and its merchant's rules never leave process memory: a hit in the last
    part of their time is answered on the loop and has them read again in the pool, so the loop
    never hands a flood to the threads when their few seconds run out."""
    from apps.catalog import selectors

    listing = make_listing(merchant, quota=5, limit=1)
    over = _raw({**order_body(listing.pk, buyer="w"), "quantity": 2})
    assert _fast(token, over, event_loop=False)[0] == 409  # in memory: the token, listing, rules
    now = time.monotonic()
    selectors._local[listing.pk] = (now + 1.0, selectors._local[listing.pk][1])
    rules._cache[merchant.pk] = (now + 1.5, rules._cache[merchant.pk][1])  # the loop still judges
    hops: list[str] = []
    got = _fast(token, _raw({**order_body(listing.pk, buyer="x"), "quantity": 2}), event_loop=True, hops=hops)
    assert got[0] == 409 and got[1]["code"] == "over_buyer_limit", got
    assert hops == ["_side_effect", "_side_effect"]  # answered on the loop; both read again in the pool
    later = time.monotonic() + selectors.LOCAL_TTL - 1.0
    assert selectors._local[listing.pk][0] > later and rules._cache[merchant.pk][0] > later


def test_refusal_side_effects_have_their_own_threads_and_a_bounded_backlog(settings):
    """A bot flood's side effects (risk blocks' records) never take the threads accepted orders
    need, and never queue without bound: past the backlog they are dropped, the answers stand."""
    settings.ORDER_SIDE_EFFECT_BACKLOG = 3
    app = OrderFastPath(_passthrough, threads=1, event_loop=True)
    release, ran, threads = threading.Event(), [], []

    def slow() -> None:
        threads.append(threading.current_thread().name)
        release.wait(5)
        ran.append(1)

    async def go() -> tuple[list[bool], bool]:
        futures = [app._spawn(slow) for _ in range(5)]  # noqa: SLF001
        done_at_once = [f.done() for f in futures]
        # meanwhile the order pool is free: an accepted order's thread is not queued behind them
        free = await asyncio.get_running_loop().run_in_executor(app.pool, lambda: True)
        release.set()
        await asyncio.gather(*futures)
        return done_at_once, free

    try:
        done_at_once, free = async_to_sync(go)()
    finally:
        app.shutdown()
    assert done_at_once == [False, False, False, True, True]  # the last two dropped, answered at once
    assert free and len(ran) == 3 and app.side_dropped == 2 and app.side_backlog == 0
    assert all(name.startswith("orders-side") for name in threads), threads


def test_a_refresh_that_read_before_a_change_keeps_nothing(merchant, monkeypatch):
    """A change's ``forget`` that lands while a background refresh reads: the refresh keeps
    nothing it read before it (the next request reads the new rules, the new listing)."""
    from apps.catalog import selectors

    listing = make_listing(merchant, quota=5)
    rules.merchant_rules(merchant.pk)
    selectors.listing_info(listing.pk)
    shared_rules, shared_listing = rules._shared, selectors._listing_info_shared

    def rules_then_changed(merchant_id, stamp=None):  # type: ignore[no-untyped-def]
        got = shared_rules(merchant_id, stamp)
        rules.forget(merchant_id)
        return got

    def listing_then_changed(listing_id):  # type: ignore[no-untyped-def]
        got = shared_listing(listing_id)
        selectors.listing_info_forget(listing_id)
        return got

    monkeypatch.setattr(rules, "_shared", rules_then_changed)
    monkeypatch.setattr(selectors, "_listing_info_shared", listing_then_changed)
    rules._refresh(merchant.pk)
    selectors._listing_info_refresh(listing.pk)
    assert merchant.pk not in rules._cache and listing.pk not in selectors._local


async def _post(app: OrderFastPath, token: str, body: bytes, key: str | None = None) -> int:
    return (await _post_full(app, token, body, key))[0]


async def _post_full(app: OrderFastPath, token: str, body: bytes, key: str | None = None) -> tuple[int, dict]:
    headers = [
        (b"host", b"testserver"),
        (b"authorization", f"Token {token}".encode()),
        (b"content-type", b"application/json"),
    ]
    if key:
        headers.append((b"idempotency-key", key.encode()))
    scope = {"type": "http", "method": "POST", "path": "/api/v1/orders", "headers": headers, "scheme": "http"}
    comm = ApplicationCommunicator(app, scope)
    await comm.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await comm.receive_output(30)
    out = await comm.receive_output(30)
    return start["status"], json.loads(out["body"])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_sold_out_flood_answers_as_before_and_survives_a_redis_outage_mid_flood(merchant, token, settings):
    listing = _sold_out_listing(merchant, token)
    before = _fast(token, _raw(order_body(listing.pk, buyer="late")), event_loop=False)
    assert before[0] == 409
    app = OrderFastPath(_passthrough, threads=4, event_loop=True)
    hops: list[str] = []
    submit = app.pool.submit

    def counted(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        hops.append(fn.__name__)
        return submit(fn, *args, **kwargs)

    app.pool.submit = counted  # type: ignore[method-assign]
    live = settings.REDIS_URL

    async def flood() -> tuple[list, list]:
        bodies = [_raw(order_body(listing.pk, buyer=f"fan-{i}")) for i in range(60)]
        first = await asyncio.gather(*(_post_full(app, token, b, f"k-{i}") for i, b in enumerate(bodies[:30])))
        assert hops == []  # the first half: all on the loop
        # Redis goes away mid-flood: the loop's client and the threads' client both lose it.
        settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
        reset_clients()
        second = await asyncio.gather(*(_post_full(app, token, b, f"k-{i}") for i, b in enumerate(bodies[30:], 30)))
        await close_async_client()
        return first, second

    try:
        first, second = async_to_sync(flood)()
    finally:
        app.shutdown()
        settings.REDIS_URL = live
        reset_clients()
    assert all(answer == (409, before[1]) for answer in first), first[:3]
    # The database decided alone: still refused (the one unit is sold), never a 5xx.
    assert all(status == 409 and body["code"] == "sold_out" for status, body in second), second[:3]
    assert hops and set(hops) == {"_handle_parsed"}
    assert Order.objects.count() == 1


def test_rules_not_in_process_memory_hand_the_attempt_to_a_thread(merchant, token):
    listing = make_listing(merchant, quota=5, limit=1)
    body = {**order_body(listing.pk, buyer="w"), "quantity": 2}
    warm = _fast(token, _raw(body), event_loop=False)
    rules._cache.clear()
    hops: list[str] = []
    got = _fast(token, _raw({**body, "buyer": {**body["buyer"], "external_id": "x"}}), event_loop=True, hops=hops)
    assert got[:2] == warm[:2] and got[0] == 409 and hops == ["_handle_parsed"]
    assert rules.rules_cached(merchant.pk)  # the thread filled it: the next one stays on the loop


def test_an_accepted_hold_is_placed_without_asking_redis_again(merchant, token, monkeypatch):
    """On PostgreSQL the loop places it through the batcher itself and the pool runs only its
    after-commit effects (``placement/accept.py``); elsewhere a worker thread places it."""
    listing = make_listing(merchant, quota=5, limit=2)
    _fast(token, _raw(order_body(listing.pk, buyer="w")), event_loop=False)
    asked = []
    reserve = gate.gate_reserve

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(args)
        return reserve(*args, **kwargs)

    monkeypatch.setattr(gate, "gate_reserve", counted)
    hops: list[str] = []
    got = _fast(token, _raw(order_body(listing.pk, buyer="x")), {"Idempotency-Key": "acc-1"}, hops=hops)
    placed_by = "run_effects" if connection.vendor == "postgresql" else "_handle_parsed"
    assert got[0] == 201 and hops == [placed_by] and asked == []
    state = gate.gate_state(listing.pk)
    assert state["left"] == 3 and got[1]["id"] in state["holds"], state
    # The same key again: the loop's gate says replay, the thread answers with the order.
    again = _fast(token, _raw(order_body(listing.pk, buyer="x")), {"Idempotency-Key": "acc-1"}, hops=hops)
    assert again[0] == 200 and again[1]["id"] == got[1]["id"] and asked == []
    assert _drf(token, _raw(order_body(listing.pk, buyer="x")), {"Idempotency-Key": "acc-1"})[1]["id"] == got[1]["id"]


def test_scripts_redis_forgot_are_loaded_again():
    async def go() -> list:
        client = get_async_client()
        assert await client.execute([("SCRIPT", "FLUSH")]) == ["OK"]
        script, keys, args = gate.release_call(987_654, hold_id="nobody")
        try:
            return await run_together_async([(script, keys, args)], client)
        finally:
            await close_async_client()

    assert async_to_sync(go)() == [["not_loaded", 0]]


def test_a_reply_lost_after_the_reserve_ran_keeps_the_hold_id_and_places_the_order(merchant, token, monkeypatch):
    """Redis ran the reserve but the connection failed before its reply: the thread asks again
    under the same hold id (a replay), so the one unit is this order's — not held twice under two
    ids (which would refuse a limit-1 buyer, or sell out the last unit, until the reconciler)."""
    from apps.orders.placement import eventloop

    listing = make_listing(merchant, quota=1, limit=1)
    # caches the token, the listing and the rules in this process; over the limit, it takes nothing
    _fast(token, _raw({**order_body(listing.pk, buyer="warm"), "quantity": 2}), event_loop=False)

    async def lost_reply(calls, client):  # type: ignore[no-untyped-def]
        await run_together_async(calls, client)
        raise redis.ConnectionError("connection lost before the reply")

    monkeypatch.setattr(eventloop, "run_together_async", lost_reply)
    status, body, *_ = _fast(token, _raw(order_body(listing.pk, buyer="solo")), event_loop=True)
    assert status == 201, body
    state = gate.gate_state(listing.pk)
    assert state["left"] == 0 and list(state["holds"]) == [body["id"]]


def test_rules_that_leave_memory_during_the_round_trip_are_judged_by_the_thread(merchant, token, monkeypatch):
    """The loop saw the merchant's rules in memory, but they were gone when Redis answered (their
    time ran out, or a change dropped them): the thread judges with the gate's answer and the same
    hold id — one hold, one order, no judgement that would read the database on the loop."""
    from apps.orders import hooks

    listing = make_listing(merchant, quota=5, limit=1)
    _fast(token, _raw(order_body(listing.pk, buyer="warm")), event_loop=False)
    looks: list[bool] = []

    def fading(merchant_id: int, for_seconds: float, refresh: Any = None) -> bool:
        looks.append(bool(looks))  # in memory at the first look, gone at the second
        return not looks[-1]

    monkeypatch.setattr(hooks.registry, "guard_local", fading)
    status, body, *_ = _fast(token, _raw(order_body(listing.pk, buyer="fade")), event_loop=True)
    assert status == 201, body
    assert looks == [False, True]
    state = gate.gate_state(listing.pk)
    assert state["left"] == 3 and body["id"] in state["holds"]
    assert Order.objects.filter(listing=listing).count() == 2
