"""After-sales under real concurrency (threads, one database connection each; PostgreSQL + Redis
in CI's second run): one open request per order however many arrive at once, a refund racing the
shipment of the same order leaves stock and ledger exact, and a callback delivered many times at
once pays back once."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from apps.fulfilment import refunds
from apps.fulfilment.models import FulfilmentSettings, RefundNotice, RefundRequest
from apps.inventory.models import Stock
from apps.inventory.services import stock_recompute
from apps.orders.errors import InvalidTransition
from apps.orders.models import Order, OrderStatus
from apps.orders.services import payments
from apps.orders.services.ledger import ledger_verify
from apps.orders.services.transitions import order_transition

from ..factories import make_listing, make_token, order_body
from ..orders.invariants import assert_consistent

pytestmark = pytest.mark.django_db(transaction=True)
S = OrderStatus


def together(n: int, job: Callable[[int], Any]) -> list[Any]:
    """``job(i)`` in ``n`` threads released at once; each closes its connection."""
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        try:
            barrier.wait(timeout=30)
            return job(i)
        except Exception as exc:  # noqa: BLE001 - the caller inspects what each thread got
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def paid_order(merchant: Any, *, quantity: int = 2) -> tuple[APIClient, Order]:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(merchant)}")
    listing = make_listing(merchant, quota=10, limit=5, price="30.00")
    r = api.post("/api/v1/orders", order_body(listing.pk, buyer="fan", quantity=quantity), format="json")
    assert r.status_code == 201, r.content
    order = Order.objects.get(public_id=r.json()["id"])
    body = json.dumps(
        {"order": order.public_id, "transaction_id": f"txn-{order.public_id}", "amount": str(order.total),
         "paid_at": "2026-12-02T20:00:00+08:00"}
    ).encode()  # fmt: skip
    ts = str(int(time.time()))
    payments.payment_receive(body=body, timestamp=ts, signature=payments.sign(body, ts))
    order.refresh_from_db()
    return api, order


def test_many_requests_at_once_open_one_and_owe_it_once(merchant) -> None:  # type: ignore[no-untyped-def]
    api, order = paid_order(merchant)
    FulfilmentSettings.objects.create(merchant=merchant, auto_approve_unshipped_refunds=False)
    token = make_token(merchant, name="cs")

    def ask(i: int) -> tuple[int, str]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        r = client.post(
            "/api/v1/refunds", {"order": order.public_id, "kind": "refund", "amount": f"{i + 1}.00"}, format="json"
        )
        return r.status_code, r.json().get("code", "")

    answers = Counter(together(8, ask))
    assert answers == {(201, ""): 1, (409, "refund_open"): 7}, answers
    refund = RefundRequest.objects.get(order=order)

    def approve(_: int) -> Any:
        return refunds.refund_approve(refund=refund, actor="staff")

    results = together(4, approve)
    assert sum(isinstance(r, RefundRequest) for r in results) == 1  # the others: refund_state
    order.refresh_from_db()
    assert order.refund_due == refund.amount
    assert not ledger_verify(merchant_id=merchant.pk)


def test_a_full_refund_racing_the_shipment_leaves_stock_and_ledger_exact(merchant) -> None:  # type: ignore[no-untyped-def]
    for _round in range(3):
        _api, order = paid_order(merchant)
        order_transition(order=order, to=S.CONFIRMED, actor="test", reason="confirmed")

        def race(i: int, order: Order = order) -> Any:
            if i == 0:
                return order_transition(
                    order=order, to=S.SHIPPED, actor="batch", reason="shipped", allowed_from=(S.CONFIRMED,)
                )
            return refunds.refund_request(order=order, kind="refund", source="api", actor="buyer")[0]

        shipped, refund = together(2, race)
        order.refresh_from_db()
        refund_status = refund.status if isinstance(refund, RefundRequest) else None
        assert not isinstance(refund, Exception) or isinstance(refund, InvalidTransition), refund
        if isinstance(shipped, Order):  # shipped first: after shipping a refund waits for a person
            assert order.status == S.SHIPPED and refund_status == RefundRequest.Status.REQUESTED
        else:  # refunded first: the shipment found it no longer confirmed
            assert isinstance(shipped, InvalidTransition) and order.status == S.REFUND_PENDING
        stock = Stock.objects.get(sku_id=order.lines.get().sku_id)
        assert (stock.on_hand, stock.reserved) == stock_recompute(sku_id=stock.sku_id)
        assert stock.reserved == 0
        assert stock.on_hand == (8 if isinstance(shipped, Order) else 10)  # shipped units come back on receipt
        assert_consistent(order.listing_id)
    assert not ledger_verify(merchant_id=merchant.pk)


def test_a_callback_delivered_many_times_at_once_pays_back_once(merchant, settings) -> None:  # type: ignore[no-untyped-def]
    _api, order = paid_order(merchant)
    refund, _ = refunds.refund_request(order=order, kind="refund", source="api", actor="buyer")
    body = json.dumps(
        {"event": "refund.succeeded", "refund_no": refund.public_id, "refund_id": "R000000000001",
         "transaction_id": refund.transaction_id, "amount": str(refund.amount), "status": "succeeded",
         "succeeded_at": "2026-12-02T20:05:00+08:00", "failure_reason": None}
    ).encode()  # fmt: skip

    def deliver(_: int) -> int:
        ts = str(int(time.time()))
        sig = payments.sign(body, ts, settings.PAYMENT_WEBHOOK_SECRET)
        r = Client().post(
            "/hooks/payments/refunds", body, content_type="application/json", HTTP_X_TIMESTAMP=ts, HTTP_X_SIGNATURE=sig
        )
        return r.status_code

    assert set(together(8, deliver)) == {200}
    order.refresh_from_db()
    refund.refresh_from_db()
    assert (refund.status, order.status, order.refunded) == ("refunded", S.REFUNDED, Decimal("60.00"))
    outcomes = Counter(RefundNotice.objects.values_list("outcome", flat=True))
    assert outcomes == {"applied": 1, "already": 7}, outcomes
    assert not ledger_verify(merchant_id=merchant.pk)
