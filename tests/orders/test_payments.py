from __future__ import annotations

import json
import time

import pytest
from rest_framework.test import APIClient

from apps.orders.models import Order, OrderStatus, Payment
from apps.orders.models import OrderStatus as S
from apps.orders.services import payments
from apps.orders.services.transitions import order_cancel

from ..factories import make_listing, order_body
from .invariants import assert_consistent

pytestmark = pytest.mark.django_db(transaction=True)


def _order(api, merchant, **kw) -> Order:  # type: ignore[no-untyped-def]
    listing = make_listing(merchant, quota=5, price="50.00", **kw)
    r = api.post("/api/v1/orders", order_body(listing.pk), format="json")
    assert r.status_code == 201
    return Order.objects.get(public_id=r.json()["id"])


def notify(body: dict | bytes, *, ts: int | None = None, sig: str | None = None, secret: str | None = None):  # type: ignore[no-untyped-def]
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    ts = int(time.time()) if ts is None else ts
    sig = sig if sig is not None else payments.sign(raw, ts, secret)
    return APIClient().generic(
        "POST",
        "/api/v1/payments/notify",
        raw,
        content_type="application/json",
        HTTP_X_TIMESTAMP=str(ts),
        HTTP_X_SIGNATURE=sig,
    )


def body_for(order: Order, txn: str = "t1", amount: str | None = None) -> dict:
    return {
        "order": order.public_id,
        "transaction_id": txn,
        "amount": amount or str(order.total),
        "paid_at": "2026-11-24T10:00:00+08:00",
    }


def test_signed_notification_pays_the_order(api, merchant):
    order = _order(api, merchant)
    r = notify(body_for(order))
    assert r.status_code == 200, r.content
    assert r.json() == {"transaction_id": "t1", "order": order.public_id, "outcome": "applied", "order_status": "paid"}
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and order.paid_at is not None
    assert_consistent(order.listing_id)


def test_same_transaction_twice_has_no_second_effect(api, merchant):
    order = _order(api, merchant)
    assert notify(body_for(order)).status_code == 200
    again = notify(body_for(order))
    assert again.status_code == 200 and again.json()["outcome"] == "applied"
    assert Payment.objects.count() == 1
    assert Order.objects.get(pk=order.pk).version == 2


def test_bad_signature_is_401_and_records_nothing(api, merchant):
    order = _order(api, merchant)
    r = notify(body_for(order), sig="0" * 64)
    assert r.status_code == 401 and r.json()["code"] == "signature_invalid"
    r = notify(body_for(order), secret="wrong-secret")
    assert r.status_code == 401 and r.json()["code"] == "signature_invalid"
    assert Payment.objects.count() == 0


def test_stale_timestamp_is_401(api, merchant):
    order = _order(api, merchant)
    r = notify(body_for(order), ts=int(time.time()) - 301)
    assert r.status_code == 401 and r.json()["code"] == "timestamp_stale"


def test_missing_headers_are_401():
    r = APIClient().post("/api/v1/payments/notify", {"order": "x"}, format="json")
    assert r.status_code == 401 and r.json()["code"] == "signature_invalid"


def test_amount_mismatch_is_refused_and_recorded(api, merchant):
    order = _order(api, merchant)
    r = notify(body_for(order, amount="1.00"))
    assert r.status_code == 422 and r.json()["code"] == "amount_mismatch"
    p = Payment.objects.get()
    assert p.outcome == Payment.Outcome.AMOUNT_MISMATCH and p.order_id == order.pk
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT


def test_payment_after_cancellation_becomes_refund_pending(api, merchant):
    order = _order(api, merchant)
    order_cancel(order=order, actor="buyer", reason="changed mind", by_buyer=True)
    r = notify(body_for(order))
    assert r.status_code == 200 and r.json()["outcome"] == "late"
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUND_PENDING and order.refund_due == order.total
    assert_consistent(order.listing_id)


def test_second_payment_for_a_paid_order_is_recorded_as_refund_owed(api, merchant):
    order = _order(api, merchant)
    notify(body_for(order, txn="a"))
    r = notify(body_for(order, txn="b"))
    assert r.status_code == 200 and r.json()["outcome"] == "duplicate_order"
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and order.refund_due == order.total


def test_transaction_id_reused_for_another_order_is_409(api, merchant):
    a = _order(api, merchant)
    listing = make_listing(merchant, quota=2, price="50.00")
    b = Order.objects.get(
        public_id=api.post("/api/v1/orders", order_body(listing.pk, buyer="b2"), format="json").json()["id"]
    )
    notify(body_for(a, txn="same"))
    r = notify(body_for(b, txn="same"))
    assert r.status_code == 409 and r.json()["code"] == "transaction_id_reused"


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[]",
        json.dumps({"order": "o1"}).encode(),
        json.dumps({"order": "o1", "transaction_id": "t", "amount": "abc", "paid_at": "x"}).encode(),
        json.dumps(
            {"order": "o1", "transaction_id": "t", "amount": "1e400", "paid_at": "2026-01-01T00:00:00Z"}
        ).encode(),
        json.dumps({"order": "o1", "transaction_id": "t", "amount": 5, "paid_at": "2026-01-01T00:00:00Z"}).encode(),
    ],
)
def test_malformed_notification_is_400(raw):
    r = notify(raw)
    assert r.status_code == 400 and r.json()["code"] in {"invalid", "malformed_request"}


def test_unknown_order_is_404():
    r = notify({"order": "onope", "transaction_id": "t", "amount": "1.00", "paid_at": "2026-01-01T00:00:00Z"})
    assert r.status_code == 404 and r.json()["code"] == "order_not_found"


def test_every_payment_received_is_owed_back_once_the_order_does_not_keep_it(api, merchant):
    """A paid order held and cancelled owes its total; a second payment that arrives after adds
    to what is owed (it used to overwrite it, and one payment's refund was lost)."""
    from apps.orders.services.transitions import order_cancel, order_transition

    order = _order(api, merchant)
    assert notify(body_for(order, "owed-A")).status_code == 200
    order_transition(order=order, to=S.ON_HOLD, actor="fraud", reason="review")
    order_cancel(order=order, actor="merchant:1", reason="fraud")
    order.refresh_from_db()
    assert order.status == S.CANCELLED and order.refund_due == order.total
    assert notify(body_for(order, "owed-B")).status_code == 200
    order.refresh_from_db()
    received = sum(p.amount for p in Payment.objects.filter(order=order))
    assert received == 2 * order.total
    assert order.status == S.REFUND_PENDING and order.refund_due == received


def test_a_payment_of_the_wrong_amount_is_refused_and_owed_back(api, merchant):
    order = _order(api, merchant)
    wrong = body_for(order, "wrong-amount", amount=str(order.total + 1))
    r = notify(wrong)
    assert r.status_code == 422 and r.json()["code"] == "amount_mismatch"
    order.refresh_from_db()
    assert order.status == S.PENDING_PAYMENT  # not paid
    assert order.refund_due == order.total + 1  # but the money taken is owed back
    assert notify(wrong).status_code == 422  # a replay: no second effect
    order.refresh_from_db()
    assert order.refund_due == order.total + 1
