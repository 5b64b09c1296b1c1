"""Accepted orders placed from the event loop (``placement/accept.py``): on PostgreSQL with
batching the loop hands a fresh hold straight to its listing's batcher and answers from the row;
the worker pool runs only the orders' after-commit effects. Everything unusual goes back to the
thread path. Real PostgreSQL, real Redis, real batcher threads."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import Future
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.db import connection

from apps.core.redis import close_async_client, get_client
from apps.orders import hooks
from apps.orders.api.serializers import order_representation
from apps.orders.models import LedgerHead, Order
from apps.orders.placement import accept, batcher
from apps.orders.placement.engines.postgres import model_from_row
from apps.orders.placement.fastpath import OrderFastPath
from apps.orders.placement.gate import scripts as gate
from apps.orders.placement.gate.keys import DRIFT_COUNTER
from apps.orders.placement.service import Decided

from ..factories import make_listing, order_body
from .invariants import assert_consistent
from .test_bad_input import _fast
from .test_eventloop import _post_full as _post
from .test_fastpath import _passthrough

pytestmark = pytest.mark.django_db(transaction=True)
ON_POSTGRES = "postgresql" in settings.DATABASES["default"]["ENGINE"]


def _raw(body: dict) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def _ok(replay: bool = False) -> gate.GateResult:
    return gate.GateResult(status=gate.OK, left=1, held=1, replay=replay)


def test_the_loop_places_only_a_fresh_judged_hold_and_only_on_postgresql(monkeypatch):
    from apps.catalog.selectors import ListingInfo

    info = ListingInfo(id=1, merchant_id=1, session_id=1, sku_id=1, sku_code="S", price="1.00",
                       payment_window_seconds=60, per_buyer_limit=1)  # fmt: skip
    judged = hooks.GuardVerdict()
    fresh = Decided("p", judged, _ok(), info)
    assert accept.can_place(fresh) is ON_POSTGRES
    assert not accept.can_place(Decided("p", judged, _ok(replay=True), info))  # a replay: the database answers
    assert not accept.can_place(Decided("p", judged, None, info))  # Redis failed: the thread asks again
    assert not accept.can_place(Decided("p", judged, gate.GateResult(status=gate.SEEN, left=1, held=0), info))
    assert not accept.can_place(Decided("p", judged, _ok(), None))
    if hooks.registry.guard is not None:  # the guard has not judged it yet (a sold-out hint)
        assert not accept.can_place(Decided("p", None, _ok(), info))
    monkeypatch.setattr(settings, "ORDER_BATCHING", False)
    assert not accept.can_place(fresh)


def test_an_instance_built_from_a_row_is_what_django_builds(merchant, token):
    listing = make_listing(merchant, quota=2)
    status, body, _ = _fast(token, _raw(order_body(listing.pk, buyer="row")), event_loop=False)
    assert status == 201, body
    stored = Order.objects.get(public_id=body["id"])
    row = {f.column: getattr(stored, f.attname) for f in Order._meta.concrete_fields}
    row = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}
    built = model_from_row(Order, row)
    via_django = Order.from_db(connection.alias, [f.attname for f in Order._meta.concrete_fields], list(
        getattr(stored, f.attname) for f in Order._meta.concrete_fields))  # fmt: skip
    for f in Order._meta.concrete_fields:
        assert getattr(built, f.attname) == getattr(via_django, f.attname), f.name
    assert built == via_django and not built._state.adding and built._state.db == via_django._state.db
    assert built.merchant == merchant  # relations load as on Django's instance
    built.cancel_reason = "checked"
    built.save(update_fields=["cancel_reason"])  # and it saves as one
    assert Order.objects.get(pk=stored.pk).cancel_reason == "checked"


class Heard:
    """The orders ``hooks.order_changed`` announced as created, by public id (any thread)."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self.threads: set[str] = set()

    def __call__(self, sender: Any = None, *, order: Any, created: bool = False, **_: Any) -> None:
        if created:
            self.created.append(order.public_id)
            self.threads.add(threading.current_thread().name)

    def __enter__(self) -> Heard:
        hooks.order_changed.connect(self, weak=False, dispatch_uid="test-heard")
        return self

    def __exit__(self, *exc: object) -> None:
        hooks.order_changed.disconnect(dispatch_uid="test-heard")


def _counted_app(hops: list[str]) -> OrderFastPath:
    app = OrderFastPath(_passthrough, threads=4, event_loop=True)
    for pool in (app.pool, app.side_pool):

        def counted(fn, *args, _submit=pool.submit, **kwargs):  # type: ignore[no-untyped-def]
            hops.append(fn.__name__)
            return _submit(fn, *args, **kwargs)

        pool.submit = counted  # type: ignore[method-assign]
    return app


def _warm(token: str, listing_id: int) -> None:
    """The token, the listing and the rules in this process's memory (the loop reads only those),
    with an over-the-limit attempt that takes nothing."""
    status, *_ = _fast(token, _raw({**order_body(listing_id, buyer="warm"), "quantity": 99}), event_loop=False)
    assert status == 409


if ON_POSTGRES:

    def test_a_flood_of_accepted_orders_is_placed_from_the_loop_and_every_effect_runs(merchant, token):
        listing = make_listing(merchant, quota=30, on_hand=30, limit=1)
        LedgerHead.objects.get_or_create(merchant_id=merchant.pk)
        _warm(token, listing.pk)
        hops: list[str] = []
        app = _counted_app(hops)

        async def flood() -> list[tuple[int, dict]]:
            try:
                bodies = [_raw(order_body(listing.pk, buyer=f"fan-{i}")) for i in range(40)]
                return await asyncio.gather(*(_post(app, token, b, f"key-{i}") for i, b in enumerate(bodies)))
            finally:
                await close_async_client()

        with Heard() as heard:
            try:
                answers = async_to_sync(flood)()
            finally:
                app.shutdown()  # waits for the effects the pool was given
        placed = [body for status, body in answers if status == 201]
        assert len(placed) == 30, [a for a in answers if a[0] != 201][:3]
        assert {(s, b["code"]) for s, b in answers if s != 201} == {(409, "sold_out")}
        # No worker thread answered: the pool ran the effects only, fewer jobs than orders (a tick's
        # orders go together), each order's once.
        assert set(hops) == {"run_effects"} and len(hops) < 30, hops
        assert sorted(heard.created) == sorted(b["id"] for b in placed)
        assert all(name.startswith("orders") for name in heard.threads), heard.threads
        # Each answer is the order as the database holds it, rendered as the thread path renders it.
        for body in placed[:5]:
            stored = Order.objects.select_related("buyer").get(public_id=body["id"])
            rendered = order_representation(stored, base_url="http://testserver", assessed=False)
            # the status link's token is stamped with the second it was signed: compare its order part
            assert body["status_url"].split("?t=")[0] == rendered.pop("status_url").split("?t=")[0]
            assert {k: v for k, v in body.items() if k != "status_url"} == rendered
        assert_consistent(listing.pk, expect_sold=30)

    def test_a_database_refusal_of_the_loops_batch_is_decided_by_the_thread_path(merchant, token):
        """The gate held units the database does not have (stock taken out behind its back): the
        loop's batch is refused, the thread path places again, meets the same refusal and answers
        it, with the hold given back and the disagreement counted, as before."""
        listing = make_listing(merchant, quota=5, on_hand=5, limit=1)
        LedgerHead.objects.get_or_create(merchant_id=merchant.pk)
        _warm(token, listing.pk)
        from apps.inventory.models import Stock

        Stock.objects.filter(sku_id=listing.sku_id).update(on_hand=0)
        drift = int(get_client().get(DRIFT_COUNTER) or 0)
        hops: list[str] = []
        got = _fast(token, _raw(order_body(listing.pk, buyer="short")), {"Idempotency-Key": "short"}, hops=hops)
        assert got[0] == 409 and got[1]["code"] == "sold_out", got
        assert hops == ["_handle_parsed"]
        assert gate.gate_state(listing.pk)["left"] == 5 and not gate.gate_state(listing.pk)["holds"]
        assert int(get_client().get(DRIFT_COUNTER) or 0) == drift + 1
        assert not Order.objects.filter(listing=listing).exists()

    def test_an_order_no_batch_took_in_time_is_a_503_and_its_hold_goes_back(merchant, token, monkeypatch):
        listing = make_listing(merchant, quota=5, on_hand=5, limit=1)
        _warm(token, listing.pk)
        monkeypatch.setattr(settings, "ORDER_BATCH_TIMEOUT", 0.2)
        never: list[Future] = []

        def stuck(self: batcher.Batcher, params: dict) -> Future:
            never.append(Future())  # a batcher that never gets to it
            return never[-1]

        monkeypatch.setattr(batcher.Batcher, "submit", stuck)
        got = _fast(token, _raw(order_body(listing.pk, buyer="late")), {"Idempotency-Key": "late"})
        assert got[0] == 503 and got[1]["code"] == "temporarily_unavailable", got
        assert never and never[0].cancelled()  # taken out of the queue: never placed later
        state = gate.gate_state(listing.pk)
        assert state["left"] == 5 and not state["holds"], state

    def test_an_order_whose_batch_does_not_answer_keeps_its_hold(merchant, token, monkeypatch):
        listing = make_listing(merchant, quota=5, on_hand=5, limit=1)
        _warm(token, listing.pk)
        monkeypatch.setattr(settings, "ORDER_BATCH_TIMEOUT", 0.1)
        monkeypatch.setattr(settings, "ORDER_BATCH_TRUTH_TIMEOUT", 0.1)

        def taken(self: batcher.Batcher, params: dict) -> Future:
            f: Future = Future()
            assert f.set_running_or_notify_cancel()  # a batch has it, and never answers
            return f

        monkeypatch.setattr(batcher.Batcher, "submit", taken)
        got = _fast(token, _raw(order_body(listing.pk, buyer="lost")), {"Idempotency-Key": "lost"})
        assert got[0] == 503 and "retry with the same Idempotency-Key" in got[1]["message"], got
        state = gate.gate_state(listing.pk)
        assert state["left"] == 4 and len(state["holds"]) == 1, state  # it may still commit

    @pytest.mark.parametrize("outcome", ["placed", "refused by the database"])
    def test_an_order_whose_request_went_away_is_still_carried_through(merchant, token, monkeypatch, outcome):
        """The client hangs up while its order waits for the batch: the placement is a task of its
        own, so a placed order still gets its effects, and a refused one its hold back and its
        drift counted, as on the thread path (a thread never stopped for a client)."""
        listing = make_listing(merchant, quota=5, on_hand=5, limit=1)
        LedgerHead.objects.get_or_create(merchant_id=merchant.pk)
        _warm(token, listing.pk)
        if outcome != "placed":
            from apps.inventory.models import Stock

            Stock.objects.filter(sku_id=listing.sku_id).update(on_hand=0)
        drift = int(get_client().get(DRIFT_COUNTER) or 0)
        real = batcher.Batcher.submit
        go = threading.Event()

        def slow(self: batcher.Batcher, params: dict) -> Future:
            out: Future = Future()

            def later() -> None:
                go.wait(5)
                inner = real(self, params)
                inner.add_done_callback(
                    lambda f: out.set_exception(f.exception()) if f.exception() else out.set_result(f.result())
                )

            threading.Thread(target=later, daemon=True).start()
            return out

        monkeypatch.setattr(batcher.Batcher, "submit", slow)
        app = OrderFastPath(_passthrough, threads=2, event_loop=True)

        async def go_away() -> None:
            headers = [
                (b"host", b"testserver"),
                (b"authorization", f"Token {token}".encode()),
                (b"content-type", b"application/json"),
                (b"idempotency-key", b"gone"),
            ]
            scope = {"type": "http", "method": "POST", "path": "/api/v1/orders", "headers": headers, "scheme": "http"}
            comm = ApplicationCommunicator(app, scope)
            await comm.send_input({"type": "http.request", "body": _raw(order_body(listing.pk, buyer="gone"))})
            await asyncio.sleep(0.3)  # the loop waits on the batch
            comm.future.cancel()
            with pytest.raises(asyncio.CancelledError):
                await comm.future
            go.set()  # now the batch runs
            while app.placing:  # the placement carries on without its request
                await asyncio.sleep(0.05)
            await close_async_client()

        with Heard() as heard:
            try:
                async_to_sync(go_away)()
            finally:
                app.shutdown()  # waits for what the pool was given
        state = gate.gate_state(listing.pk)
        if outcome == "placed":
            order = Order.objects.get(idempotency_key="gone")
            assert heard.created == [order.public_id]
            assert_consistent(listing.pk, expect_sold=1)
        else:
            assert not Order.objects.filter(listing=listing).exists() and heard.created == []
            assert state["left"] == 5 and not state["holds"], state
            assert int(get_client().get(DRIFT_COUNTER) or 0) == drift + 1

    def test_a_batch_that_fails_as_a_whole_is_a_503_and_its_hold_goes_back(merchant, token, monkeypatch):
        from django.db import OperationalError

        listing = make_listing(merchant, quota=5, on_hand=5, limit=1)
        _warm(token, listing.pk)

        def broken(self: batcher.Batcher, params: dict) -> Future:
            f: Future = Future()
            f.set_exception(OperationalError("server closed the connection unexpectedly"))
            return f

        monkeypatch.setattr(batcher.Batcher, "submit", broken)
        hops: list[str] = []
        got = _fast(token, _raw(order_body(listing.pk, buyer="b")), {"Idempotency-Key": "b"}, hops=hops)
        assert got[0] == 503 and got[1]["code"] == "temporarily_unavailable", got
        assert "_handle_parsed" not in hops  # not placed a second time into a failing database
        state = gate.gate_state(listing.pk)
        assert state["left"] == 5 and not state["holds"], state

    def test_a_merchants_first_order_and_a_key_used_on_another_listing_answer_as_before(other_merchant):
        """The merchant has no ledger head yet (the database refuses the first event: the thread
        path creates it and places again); a key already used for another listing's order is a
        duplicate for the database (the thread path answers the earlier order or the conflict)."""
        from ..factories import make_token

        token = make_token(other_merchant)
        first = make_listing(other_merchant, quota=5, on_hand=5, limit=1)
        assert not LedgerHead.objects.filter(merchant_id=other_merchant.pk).exists()
        _warm(token, first.pk)
        got = _fast(token, _raw(order_body(first.pk, buyer="one")), {"Idempotency-Key": "same"})
        assert got[0] == 201, got
        second = make_listing(other_merchant, quota=5, on_hand=5, limit=1)
        _warm(token, second.pk)
        again = _fast(token, _raw(order_body(second.pk, buyer="one")), {"Idempotency-Key": "same"})
        drf_twin = _drf_answer(token, _raw(order_body(second.pk, buyer="one")), "same")
        assert again[:2] == drf_twin, (again, drf_twin)
        assert gate.gate_state(second.pk)["left"] == 5 and not gate.gate_state(second.pk)["holds"]
        assert Order.objects.filter(merchant=other_merchant).count() == 1


def _drf_answer(token: str, raw: bytes, key: str) -> tuple[int, dict]:
    from .test_bad_input import _drf

    status, body, *_ = _drf(token, raw, {"Idempotency-Key": key})
    return status, body
