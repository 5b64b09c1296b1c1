"""Database faults are a 503 with Retry-After (nothing was done; retry), never a 500: a pool that
is exhausted or a lost connection on every entry point, backends terminated mid-sale, and an
order batch that does not answer in time."""

from __future__ import annotations

import threading
import time

import pytest
from django.conf import settings
from django.db import OperationalError, connection
from rest_framework.test import APIClient

from apps.orders.models import LedgerHead, Order
from apps.orders.placement import service
from apps.orders.placement.gate import scripts as gate

from ..factories import make_listing, order_body
from .invariants import assert_consistent
from .test_flash_sale_concurrency import _buyer_jobs, _storm, _summarise

pytestmark = pytest.mark.django_db(transaction=True)
# Backends to terminate and order batches exist on PostgreSQL only: those tests are defined for
# the PostgreSQL run (CI's second suite) and do not exist on the embedded default.
ON_POSTGRES = "postgresql" in settings.DATABASES["default"]["ENGINE"]


def _pool_timeout(*_a, **_k):  # type: ignore[no-untyped-def]
    raise OperationalError("couldn't get a connection after 5.00 sec")


def test_pool_exhaustion_is_a_503_with_retry_after_through_drf(api, merchant, monkeypatch):
    listing = make_listing(merchant, quota=3)
    monkeypatch.setattr(service, "listing_info", _pool_timeout)
    r = api.post("/api/v1/orders", order_body(listing.pk), format="json")
    assert r.status_code == 503, r.content
    assert r.json()["code"] == "temporarily_unavailable"
    assert r["Retry-After"] == "1"
    from apps.orders.api.views import OrderViewSet

    monkeypatch.setattr(OrderViewSet, "selector", staticmethod(_pool_timeout))
    r = api.get("/api/v1/orders")
    assert r.status_code == 503 and r["Retry-After"] == "1" and r.json()["code"] == "temporarily_unavailable"


async def test_pool_exhaustion_is_a_503_with_retry_after_on_the_fast_path(token, merchant, monkeypatch):
    import json

    from asgiref.sync import sync_to_async
    from asgiref.testing import ApplicationCommunicator

    from apps.orders.placement.fastpath import OrderFastPath

    from .test_fastpath import _headers, _passthrough

    listing = await sync_to_async(make_listing)(merchant, quota=3)
    monkeypatch.setattr(service, "listing_info", _pool_timeout)
    app = OrderFastPath(_passthrough, threads=1)
    hdrs = [(b"host", b"testserver")] + [(k.lower().encode(), v.encode()) for k, v in _headers(token).items()]
    scope = {"type": "http", "method": "POST", "path": "/api/v1/orders", "headers": hdrs, "scheme": "http"}
    comm = ApplicationCommunicator(app, {**scope, "query_string": b""})
    await comm.send_input({"type": "http.request", "body": json.dumps(order_body(listing.pk)).encode()})
    start = await comm.receive_output(10)
    body = json.loads((await comm.receive_output(10))["body"])
    assert start["status"] == 503, body
    assert body["code"] == "temporarily_unavailable"
    assert dict(start["headers"]).get(b"retry-after") == b"1"


def test_a_page_with_the_database_gone_is_a_503_not_a_500(client, merchant, monkeypatch):
    monkeypatch.setattr("apps.catalog.selectors.session_for_storefront", _pool_timeout)
    r = client.get(f"/live/{merchant.slug}/")
    assert r.status_code == 503
    assert r["Retry-After"] == "1"


def _terminate_busy() -> int:
    """Terminate the client backends of this database that are working (running a statement or
    inside a transaction), except the killer's own. Idle connections are left alone: those the
    pool or other threads of the test process keep between tests (a pooled connection the sale
    checks out is busy while it serves an order, and is caught then)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend' AND state IS NOT NULL AND state <> 'idle'"
        )
        return cur.fetchone()[0]


if ON_POSTGRES:

    @pytest.mark.slow
    def test_backends_terminated_mid_sale_answer_503_never_500_and_recover(merchant, token):
        listing = make_listing(merchant, quota=120, on_hand=120, limit=2)
        stop = threading.Event()
        killed: list[int] = []

        def killer() -> None:
            try:
                # Until the sale is over or 6 rounds have terminated something: how soon the
                # sale's threads get to the database depends on the machine's load.
                # Polled often: a pooled connection is busy only while it serves a batch, and a
                # fast machine can finish the whole sale between two slow polls (a CI run did).
                while not stop.is_set() and len([n for n in killed if n]) < 6:
                    time.sleep(0.005)
                    killed.append(_terminate_busy())
            finally:
                connection.close()

        k = threading.Thread(target=killer)
        k.start()
        try:
            results = _storm(token, _buyer_jobs(listing.pk, 300, buyers=200))
        finally:
            stop.set()
            k.join(timeout=30)
        summary = _summarise(results)
        assert sum(killed) > 0, "the test terminated no backend"
        assert {s for s, _ in results} <= {201, 409, 503}, summary
        # Recovery: the pool replaces dead connections at checkout; the next orders all go through.
        fresh = make_listing(merchant, quota=20, on_hand=20, limit=1)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        after, retried = [], 0
        for i in range(20):  # as a client does: a 503 is retried after its Retry-After
            for _attempt in range(3):
                r = client.post("/api/v1/orders", order_body(fresh.pk, buyer=f"after-{i}"), format="json")
                if r.status_code != 503:
                    break
                retried += 1
                time.sleep(float(r["Retry-After"]))
            after.append(r.status_code)
        assert after == [201] * 20, after
        # A connection a batcher held when it was terminated fails its next batch once, at most.
        assert retried <= settings.ORDER_BATCHERS, retried  # recovery is bounded by retries, not timed
        ready = [client.get("/readyz").status_code for _ in range(5)]
        assert ready == [200] * 5, ready  # no flapping: every checkout is checked
        assert_consistent(listing.pk, check_redis=False)
        assert_consistent(fresh.pk, expect_sold=20)

    def test_a_batch_that_does_not_answer_in_time_never_places_an_order_behind_its_callers_back(
        merchant, token, settings
    ):
        """A caller gives up after ORDER_BATCH_TIMEOUT: an order still waiting in the queue is
        dropped (never placed later); one a batch already took is waited for, and its outcome is the
        truth (a retry with the same key finds it)."""
        settings.ORDER_BATCH_TIMEOUT = 0.5
        settings.ORDER_BATCH_TRUTH_TIMEOUT = 0.5
        listing = make_listing(merchant, quota=5, on_hand=5, limit=1)
        LedgerHead.objects.get_or_create(merchant_id=merchant.pk)  # not the merchant's first event
        from django.db import connections

        blocker = connections.create_connection("default")
        blocker.set_autocommit(False)
        with blocker.cursor() as cur:  # hold the listing row: the first batch waits on it
            cur.execute("SELECT id FROM catalog_listing WHERE id = %s FOR UPDATE", [listing.pk])
        answers: dict[str, tuple[int, dict]] = {}

        def post(buyer: str, key: str) -> None:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
            try:
                r = client.post(
                    "/api/v1/orders", order_body(listing.pk, buyer=buyer), format="json", HTTP_IDEMPOTENCY_KEY=key
                )
                answers[buyer] = (r.status_code, r.json())
            finally:
                connection.close()

        first = threading.Thread(target=post, args=("in-flight", "k-in-flight"))
        first.start()
        time.sleep(0.2)  # the first order is in a batch, waiting for the row
        second = threading.Thread(target=post, args=("queued", "k-queued"))
        second.start()
        first.join(timeout=10)
        second.join(timeout=10)
        blocker.rollback()
        blocker.close()
        assert answers["in-flight"][0] == 503, answers
        assert answers["queued"][0] == 503, answers
        assert answers["queued"][1]["code"] == "temporarily_unavailable"
        time.sleep(1.0)  # let the blocked batch finish
        # The queued order was dropped: never placed, its gate hold given back.
        assert not Order.objects.filter(idempotency_key="k-queued").exists()
        state = gate.gate_state(listing.pk)
        placed = Order.objects.filter(idempotency_key="k-in-flight").first()
        assert placed is not None, "the in-flight batch commits once the row is free"
        held = {h for h in (state or {}).get("holds", {})}
        assert placed.public_id in held and len(held) == 1, held
        # A retry with the same key learns the truth.
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        r = client.post(
            "/api/v1/orders",
            order_body(listing.pk, buyer="in-flight"),
            format="json",
            HTTP_IDEMPOTENCY_KEY="k-in-flight",
        )
        assert r.status_code == 200 and r.json()["id"] == placed.public_id
        assert_consistent(listing.pk, expect_sold=1)


def _place(api, listing, key: str) -> dict:  # type: ignore[no-untyped-def]
    r = api.post("/api/v1/orders", order_body(listing.pk, buyer=key), format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert r.status_code == 201, r.content
    return r.json()


def test_a_cancel_whose_commit_the_client_never_heard_of_is_reported_done(api, merchant, monkeypatch):
    """The COMMIT reaches the database but its reply is lost: Django raises and drops the
    after-commit callbacks. The cancel is reported done, and the gate still gets the units back."""
    listing = make_listing(merchant, quota=3)
    order = _place(api, listing, "cancel-after-commit")
    assert order["id"] in gate.gate_state(listing.pk)["holds"]
    real_commit = connection.commit

    def committed_then_lost() -> None:
        real_commit()
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(connection, "commit", committed_then_lost)
    r = api.post(f"/api/v1/orders/{order['id']}/cancel", {"reason": "changed mind"}, format="json")
    monkeypatch.undo()
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "cancelled"
    assert order["id"] not in gate.gate_state(listing.pk)["holds"]  # the lost commit's gate release ran
    assert_consistent(listing.pk, expect_sold=0)


def test_a_cancel_that_never_reached_the_database_is_a_503_and_changes_nothing(api, merchant, monkeypatch):
    from apps.orders.services import transitions

    listing = make_listing(merchant, quota=3)
    order = _place(api, listing, "cancel-lost")
    monkeypatch.setattr(transitions, "_order_cancel", _pool_timeout)
    r = api.post(f"/api/v1/orders/{order['id']}/cancel", {"reason": "changed mind"}, format="json")
    assert r.status_code == 503 and r["Retry-After"] == "1", r.content
    assert Order.objects.get(public_id=order["id"]).status == "pending_payment"
    assert_consistent(listing.pk, expect_sold=1)


def test_a_replay_that_meets_a_database_fault_is_a_503(api, merchant, monkeypatch):
    listing = make_listing(merchant, quota=3)
    _place(api, listing, "replay-fault")
    monkeypatch.setattr(service, "_idempotent_replay", _pool_timeout)
    r = api.post(
        "/api/v1/orders",
        order_body(listing.pk, buyer="replay-fault"),
        format="json",
        HTTP_IDEMPOTENCY_KEY="replay-fault",
    )
    assert r.status_code == 503 and r.json()["code"] == "temporarily_unavailable", r.content


def test_a_page_read_that_meets_a_dropped_connection_is_retried_once(client, merchant, monkeypatch):
    from apps.catalog import selectors as catalog_selectors

    make_listing(merchant, quota=3)
    real = catalog_selectors.session_for_storefront
    calls = []

    def dropped_once(**kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(**kwargs)

    monkeypatch.setattr(catalog_selectors, "session_for_storefront", dropped_once)
    r = client.get(f"/live/{merchant.slug}/")
    assert r.status_code == 200 and len(calls) == 2


def test_a_hold_of_an_order_that_may_still_be_in_a_batch_is_not_taken_for_an_orphan(merchant):
    """The reconciler frees holds the database does not have, but only once no batch could still
    commit their order (ORDER_BATCH_TIMEOUT + ORDER_BATCH_TRUTH_TIMEOUT, plus a margin)."""
    from apps.orders.placement.gate.rebuild import gate_meta_for
    from apps.orders.placement.gate.reconcile import gate_reconcile, orphan_min_age_ms

    listing = make_listing(merchant, quota=5)
    gate.gate_load(listing.pk, gate_meta_for(listing), [])
    now_ms = int(time.time() * 1000)
    assert orphan_min_age_ms() >= 70_000
    young = now_ms - 40_000  # older than the old 30 s rule, younger than a batch can take
    old = now_ms - orphan_min_age_ms() - 1_000
    gate.gate_adopt(listing.pk, hold_id="o-in-flight", buyer="b1", quantity=1, ts_ms=young)
    gate.gate_adopt(listing.pk, hold_id="o-orphan", buyer="b2", quantity=1, ts_ms=old)
    report = gate_reconcile(listing.pk)
    holds = gate.gate_state(listing.pk)["holds"]
    assert "o-in-flight" in holds and "o-orphan" not in holds
    assert report.released_orphans == 1


if ON_POSTGRES:

    def test_an_order_waiting_on_a_row_lock_gives_up_at_the_lock_timeout_and_places_nothing(merchant, token):
        """No statement waits for a row lock for ever (DB_LOCK_TIMEOUT_MS, 10 s): an order whose
        listing row is held by a forgotten transaction is answered 503 "nothing was placed" and is
        not placed later behind its caller's back."""
        from django.db import connections

        listing = make_listing(merchant, quota=5, on_hand=5, limit=1)
        LedgerHead.objects.get_or_create(merchant_id=merchant.pk)
        with connection.cursor() as cur:
            cur.execute("SHOW lock_timeout")
            assert cur.fetchone()[0] == "10s"
        blocker = connections.create_connection("default")
        blocker.set_autocommit(False)
        try:
            with blocker.cursor() as cur:
                cur.execute("SELECT id FROM catalog_listing WHERE id = %s FOR UPDATE", [listing.pk])
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
            body = order_body(listing.pk, buyer="patient")
            r = client.post("/api/v1/orders", body, format="json", HTTP_IDEMPOTENCY_KEY="patient")
        finally:
            blocker.rollback()
            blocker.close()
        assert r.status_code == 503 and r.json()["code"] == "temporarily_unavailable", r.content
        time.sleep(0.5)  # were it still queued somewhere, it would commit now that the row is free
        assert not Order.objects.filter(idempotency_key="patient").exists()
        assert_consistent(listing.pk, expect_sold=0)
