"""Real concurrency through the HTTP API (DRF stack, one DB connection per thread) against the
configured database and Redis: PostgreSQL + Redis under CI, SQLite + embedded Valkey locally."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core.redis import get_client
from apps.orders.models import Order, OrderStatus, Payment
from apps.orders.placement.gate.reconcile import reconcile_all
from apps.orders.services import payments
from apps.orders.services.transitions import orders_expire_due

from ..factories import make_listing, order_body
from .invariants import assert_consistent

pytestmark = pytest.mark.django_db(transaction=True)
THREADS = 32


def _client(token: str) -> APIClient:
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return c


def _storm(token: str, jobs: list[tuple[dict, str | None]], *, before_each=None) -> list[tuple[int, dict]]:  # type: ignore[no-untyped-def]
    local = threading.local()
    start = threading.Barrier(THREADS)

    def warm(_: int) -> None:
        local.client = _client(token)
        start.wait(timeout=30)

    def one(job: tuple[dict, str | None]) -> tuple[int, dict]:
        body, key = job
        if before_each:
            before_each()
        client = getattr(local, "client", None) or _client(token)
        headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
        r = client.post("/api/v1/orders", body, format="json", **headers)
        return r.status_code, r.json()

    def run(job):  # type: ignore[no-untyped-def]
        try:
            return one(job)
        finally:
            connection.close()

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(warm, range(THREADS)))
        results = list(pool.map(run, jobs))
    return results


def _buyer_jobs(listing_id: int, n: int, buyers: int, seed: int = 7) -> list[tuple[dict, str | None]]:
    rng = random.Random(seed)
    jobs = []
    for i in range(n):
        b = f"buyer-{rng.randrange(buyers)}"
        jobs.append((order_body(listing_id, buyer=b, quantity=rng.choice([1, 1, 1, 2])), f"k-{i}"))
    return jobs


def _summarise(results: list[tuple[int, dict]]) -> Counter[str]:
    return Counter(f"{s}:{b.get('code', b.get('status'))}" for s, b in results)


def test_500_concurrent_buyers_on_50_units_sell_exactly_50(merchant, token):
    listing = make_listing(merchant, quota=50, on_hand=80, limit=2)
    results = _storm(token, _buyer_jobs(listing.pk, 520, buyers=300))
    summary = _summarise(results)
    assert all(s < 500 for s, _ in results), summary
    assert {s for s, _ in results} <= {201, 409}, summary
    assert all(b["code"] in {"sold_out", "over_buyer_limit"} for s, b in results if s == 409), summary
    assert_consistent(listing.pk, expect_sold=50)


def test_redis_flushed_mid_sale_loses_nothing_and_oversells_nothing(merchant, token):
    listing = make_listing(merchant, quota=50, on_hand=50, limit=2)
    count = {"n": 0}
    lock = threading.Lock()

    def maybe_flush() -> None:
        with lock:
            count["n"] += 1
            n = count["n"]
        if n in (60, 200):
            get_client().flushdb()

    results = _storm(token, _buyer_jobs(listing.pk, 500, buyers=300, seed=11), before_each=maybe_flush)
    assert all(s < 500 for s, _ in results), _summarise(results)
    accepted = [b["id"] for s, b in results if s == 201]
    assert Order.objects.filter(public_id__in=accepted).count() == len(accepted)  # every 201 is stored
    assert_consistent(listing.pk, check_redis=False)
    # Requests in flight across a flush can leave the gate behind the database; the database
    # refused what it could not cover (never an oversell) and the reconciler repairs the cache.
    reconcile_all(listing_ids=[listing.pk])
    assert_consistent(listing.pk)
    sold = Order.objects.filter(listing=listing, status=OrderStatus.PENDING_PAYMENT).count()
    assert sold >= 1


_FLAKY = {
    # A real failure inside the database, on the last row an order writes (its ledger event, after
    # the hot rows were taken): a quarter of the inserts raise.
    "postgresql": [
        "CREATE OR REPLACE FUNCTION lc_test_flaky() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF random() < 0.25 THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$",
        "CREATE TRIGGER lc_test_flaky BEFORE INSERT ON orders_orderevent FOR EACH ROW EXECUTE FUNCTION lc_test_flaky()",
    ],
    "sqlite": [
        "CREATE TRIGGER lc_test_flaky BEFORE INSERT ON orders_orderevent WHEN (abs(random()) % 4) = 0 "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    ],
}


def _flaky_database(on: bool) -> None:
    with connection.cursor() as cur:
        if on:
            for sql in _FLAKY[connection.vendor]:
                cur.execute(sql)
        else:
            cur.execute(
                "DROP TRIGGER IF EXISTS lc_test_flaky ON orders_orderevent"
                if connection.vendor == "postgresql"
                else "DROP TRIGGER IF EXISTS lc_test_flaky"
            )


def test_injected_database_failures_release_their_holds(merchant, token):
    listing = make_listing(merchant, quota=50, on_hand=50, limit=2)
    _flaky_database(True)
    try:
        results = _storm(token, _buyer_jobs(listing.pk, 500, buyers=300, seed=5))
    finally:
        _flaky_database(False)
    summary = _summarise(results)
    assert {s for s, _ in results} <= {201, 409, 503}, summary
    assert all(b["code"] == "temporarily_unavailable" for s, b in results if s == 503)
    assert summary["503:temporarily_unavailable"] > 0
    assert_consistent(listing.pk)
    # No failed request leaked a hold: a second wave, with the database healthy, sells the rest.
    second = _storm(token, [(order_body(listing.pk, buyer=f"late-{i}"), f"late-{i}") for i in range(100)])
    assert {s for s, _ in second} <= {201, 409}, _summarise(second)
    assert_consistent(listing.pk, expect_sold=50)


def test_duplicate_idempotency_key_sent_concurrently_makes_one_order(merchant, token):
    listing = make_listing(merchant, quota=10, limit=2)
    body = order_body(listing.pk, buyer="dup", quantity=2)
    results = _storm(token, [(body, "one-key")] * 64)
    assert {s for s, _ in results} <= {200, 201}, _summarise(results)
    assert len({b["id"] for _, b in results}) == 1
    assert sum(1 for s, _ in results if s == 201) == 1
    assert Order.objects.filter(listing=listing).count() == 1
    assert_consistent(listing.pk, expect_sold=2)


def _notify(order: Order, txn: str) -> tuple[int, str]:
    import json

    body = json.dumps(
        {
            "order": order.public_id,
            "transaction_id": txn,
            "amount": str(order.total),
            "paid_at": timezone.now().isoformat(),
        }
    ).encode()
    ts = str(int(time.time()))
    client = APIClient()
    r = client.generic(
        "POST",
        "/api/v1/payments/notify",
        body,
        content_type="application/json",
        HTTP_X_TIMESTAMP=ts,
        HTTP_X_SIGNATURE=payments.sign(body, ts),
    )
    return r.status_code, r.json().get("outcome") or r.json().get("code")


def test_payments_racing_expiry_exactly_one_wins(merchant, token):
    listing = make_listing(merchant, quota=60, on_hand=60, limit=1, window=30)
    results = _storm(token, [(order_body(listing.pk, buyer=f"p{i}"), f"pk{i}") for i in range(60)])
    assert all(s == 201 for s, _ in results)
    orders = list(Order.objects.filter(listing=listing))
    later = timezone.now() + timedelta(seconds=31)
    barrier = threading.Barrier(2)

    def pay_all() -> list[tuple[int, str]]:
        try:
            barrier.wait()
            return [_notify(o, f"txn-{o.public_id}") for o in orders]
        finally:
            connection.close()

    def expire_all() -> int:
        try:
            barrier.wait()
            n = 0
            for _ in range(5):
                n += orders_expire_due(now=later)
            return n
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        paid_f = pool.submit(pay_all)
        exp_f = pool.submit(expire_all)
        pay_results, expired = paid_f.result(), exp_f.result()
    assert all(code == 200 for code, _ in pay_results), pay_results
    outcomes = Counter(o for _, o in pay_results)
    statuses = Counter(Order.objects.filter(listing=listing).values_list("status", flat=True))
    # Every payment is recorded; each order is either paid, or cancelled then owed a refund.
    assert Payment.objects.filter(order__listing=listing).count() == 60
    assert statuses[OrderStatus.PAID] == outcomes["applied"]
    assert statuses[OrderStatus.REFUND_PENDING] == outcomes["late"] == expired
    assert statuses[OrderStatus.PAID] + statuses[OrderStatus.REFUND_PENDING] == 60
    assert_consistent(listing.pk, expect_sold=statuses[OrderStatus.PAID])


def test_redis_down_the_database_alone_sells_exactly_the_quota(merchant, token, settings):
    from apps.core import redis as core_redis

    listing = make_listing(merchant, quota=20, on_hand=25, limit=1)
    dead = "redis://127.0.0.1:1/0"
    settings.REDIS_URL = dead
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": dead}}
    core_redis.reset_clients()
    try:
        results = _storm(token, [(order_body(listing.pk, buyer=f"d{i}"), f"d{i}") for i in range(120)])
    finally:
        core_redis.reset_clients()
    summary = _summarise(results)
    assert {s for s, _ in results} <= {201, 409}, summary
    assert summary["201:pending_payment"] == 20
    assert_consistent(listing.pk, expect_sold=20, check_redis=False)


def test_orders_placed_in_one_batch_succeed_or_fail_one_by_one(merchant, token):
    """On PostgreSQL, orders waiting at the same moment are placed together (one call, one
    commit). Within a batch a refusal or a database failure (here: a deadlock error raised for
    some buyers) touches only its own order."""
    from apps.orders.placement.batcher import batchers

    listing = make_listing(merchant, quota=200, on_hand=200, limit=1)
    poison = (
        [
            "CREATE OR REPLACE FUNCTION lc_test_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.external_id LIKE 'poison%' THEN RAISE EXCEPTION 'injected deadlock' USING ERRCODE = '40P01'; "
            "END IF; RETURN NEW; END $$",
            "CREATE TRIGGER lc_test_poison BEFORE INSERT ON orders_buyer "
            "FOR EACH ROW EXECUTE FUNCTION lc_test_poison()",
        ]
        if connection.vendor == "postgresql"
        else [
            "CREATE TRIGGER lc_test_poison BEFORE INSERT ON orders_buyer WHEN NEW.external_id LIKE 'poison%' "
            "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        ]
    )
    with connection.cursor() as cur:
        for sql in poison:
            cur.execute(sql)
    batches_before = sum(b.batches for b in batchers())
    orders_before = sum(b.orders for b in batchers())
    jobs = []
    for i in range(120):
        kind = i % 4
        buyer = f"poison-{i}" if kind == 0 else (f"twice-{i % 32}" if kind == 1 else f"ok-{i}")
        jobs.append((order_body(listing.pk, buyer=buyer), f"batch-{i}"))
    try:
        results = _storm(token, jobs)
    finally:
        with connection.cursor() as cur:
            cur.execute(
                "DROP TRIGGER IF EXISTS lc_test_poison ON orders_buyer"
                if connection.vendor == "postgresql"
                else "DROP TRIGGER IF EXISTS lc_test_poison"
            )
    by_buyer = {body["buyer"]["external_id"]: (s, b) for (body, _), (s, b) in zip(jobs, results, strict=True)}
    summary = _summarise(results)
    assert {s for s, _ in results} <= {201, 409, 503}, summary
    assert all(s == 503 for name, (s, _) in by_buyer.items() if name.startswith("poison")), summary
    assert not any(s == 503 for name, (s, _) in by_buyer.items() if not name.startswith("poison")), summary
    pairs = zip(jobs, results, strict=True)
    accepted = Counter(body["buyer"]["external_id"] for (body, _), (s, _) in pairs if s == 201)
    assert all(n == 1 for n in accepted.values()), accepted  # the per-buyer limit held inside batches
    assert summary["201:pending_payment"] == 60 + 8, summary  # every healthy buyer, each "twice" buyer once
    assert summary["503:temporarily_unavailable"] == 30, summary
    assert_consistent(listing.pk, expect_sold=68)
    if connection.vendor == "postgresql":
        batches = sum(b.batches for b in batchers()) - batches_before
        orders = sum(b.orders for b in batchers()) - orders_before
        assert orders > batches > 0, f"no two of this test's orders shared a batch ({orders} in {batches})"
