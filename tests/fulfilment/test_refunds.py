"""After-sales (issue 13): refund requests from the API and the buyer's status page, decisions,
returned goods restocked on receipt, money back through the payment provider's simulator over real
sockets, its signed callbacks (replayed: no second effect), faults, and money owed after a
cancellation paid back without a person."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import TestCase
from rest_framework.test import APIClient

from apps.catalog.models import Listing
from apps.fulfilment import refunds
from apps.fulfilment.models import (
    ExceptionKind,
    FulfilmentException,
    FulfilmentSettings,
    RefundNotice,
    RefundRequest,
)
from apps.fulfilment.payments.simulator import PaymentProviderSimulator
from apps.inventory.models import Stock, StockMovement
from apps.orders.models import Order, OrderEvent, OrderStatus
from apps.orders.placement.links import status_path
from apps.orders.services import payments
from apps.orders.services.ledger import ledger_verify
from apps.orders.services.transitions import order_cancel, order_transition

from ..factories import make_listing, make_token, order_body
from ..waiting import wait_until

S = OrderStatus
R = RefundRequest.Status


@pytest.fixture
def provider(settings):  # type: ignore[no-untyped-def]
    """The payment provider's simulator, our settings pointing at it; callbacks to a closed port
    unless a test serves them (``live_server``)."""
    with PaymentProviderSimulator(
        app_id=settings.PAYMENT_APP_ID,
        api_secret=settings.PAYMENT_API_SECRET,
        webhook_secret=settings.PAYMENT_WEBHOOK_SECRET,
        push_retries=5,
        push_backoff=0.2,
    ) as sim:
        settings.PAYMENT_PROVIDER_URL = sim.base_url
        settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"
        yield sim


def place(api: APIClient, listing: Listing, buyer: str, quantity: int = 1) -> Order:
    r = api.post("/api/v1/orders", order_body(listing.pk, buyer=buyer, quantity=quantity), format="json")
    assert r.status_code == 201, r.content
    return Order.objects.get(public_id=r.json()["id"])


def pay(order: Order, sim: PaymentProviderSimulator | None, txn: str | None = None, amount: Any = None) -> str:
    """The provider's signed payment notification, through the webhook's service; the provider
    (simulator) knows the transaction."""
    txn = txn or f"txn-{order.public_id}"
    paid = str(amount if amount is not None else order.total)
    body = json.dumps(
        {"order": order.public_id, "transaction_id": txn, "amount": paid, "paid_at": "2026-12-02T20:00:00+08:00"}
    ).encode()
    ts = str(int(time.time()))
    payments.payment_receive(body=body, timestamp=ts, signature=payments.sign(body, ts))
    if sim is not None:
        sim.add_transaction(txn, paid)
    return txn


def ship(order: Order) -> None:
    order_transition(order=order, to=S.CONFIRMED, actor="test", reason="confirmed")
    order_transition(order=order, to=S.SHIPPED, actor="test", reason="shipped", carrier="ZTO", tracking_number="ZT1")


def settle(refund: RefundRequest) -> str:
    """Ask the provider how a sent refund went (the sweep's query, due now)."""
    RefundRequest.objects.filter(pk=refund.pk).update(next_attempt_at=refund.requested_at)
    return refunds.refund_send(refund.pk)


@pytest.fixture
def shop(merchant):  # type: ignore[no-untyped-def]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(merchant)}")
    listing = make_listing(merchant, quota=10, limit=3, price="30.00")
    return api, listing


def statuses(order: Order) -> list[str]:
    return list(OrderEvent.objects.filter(order=order).order_by("seq").values_list("to_status", flat=True))


# --- end to end, with the provider's callbacks served -------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_unshipped_order_refunded_in_full_gives_its_units_back_and_the_callback_applies_once(  # type: ignore[no-untyped-def]
    merchant, live_server, settings, provider
) -> None:
    settings.PUBLIC_BASE_URL = live_server.url
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(merchant)}")
    listing = make_listing(merchant, quota=10, limit=3, price="30.00")
    order = place(api, listing, "fan-1", quantity=2)
    pay(order, provider)
    stock = Stock.objects.get(sku_id=listing.sku_id)
    assert (stock.reserved, Listing.objects.get(pk=listing.pk).sold) == (2, 2)

    with TestCase.captureOnCommitCallbacks(execute=True):  # the send is queued on commit (sync tasks)
        r = api.post(
            "/api/v1/refunds",
            {"order": order.public_id, "kind": "refund", "reason": "拍错了"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="rf-1",
        )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["status"] in ("refunding", "refunded")  # the callback may be here already
    assert (body["amount"], body["source"]) == ("60.00", "api")
    order.refresh_from_db()
    assert order.status in (S.REFUND_PENDING, S.REFUNDED) and order.refund_due == Decimal("60.00")
    stock.refresh_from_db()
    assert (stock.reserved, stock.on_hand, Listing.objects.get(pk=listing.pk).sold) == (0, 10, 0)  # back on sale

    wait_until(lambda: Order.objects.get(pk=order.pk).status == S.REFUNDED, what="the provider's callback applied")
    refund = RefundRequest.objects.get(public_id=body["id"])
    assert refund.status == R.REFUNDED and refund.provider_refund_id
    assert [r.amount for r in provider.refunds()] == [Decimal("60.00")]
    order.refresh_from_db()
    assert (order.refund_due, order.refunded) == (Decimal("60.00"), Decimal("60.00"))
    wait_until(  # the order is refunded a moment before its notice records that it applied
        lambda: RefundNotice.objects.exclude(outcome=RefundNotice.Outcome.RECEIVED).count() == 1,
        what="the callback's outcome recorded",
    )
    assert RefundNotice.objects.get().outcome == RefundNotice.Outcome.APPLIED

    events = OrderEvent.objects.filter(order=order).count()
    provider.replay(refund.public_id)  # the provider sends the same callback again
    wait_until(  # stored first, then applied: wait for its outcome, not only its row
        lambda: RefundNotice.objects.exclude(outcome=RefundNotice.Outcome.RECEIVED).count() == 2,
        what="the replayed callback stored and applied",
    )
    assert RefundNotice.objects.order_by("-id").first().outcome == RefundNotice.Outcome.ALREADY
    order.refresh_from_db()
    assert order.refunded == Decimal("60.00") and OrderEvent.objects.filter(order=order).count() == events

    again = api.post(  # the same request again (a tool's retry) answers the request it made
        "/api/v1/refunds", {"order": order.public_id, "kind": "refund"}, format="json", HTTP_IDEMPOTENCY_KEY="rf-1"
    )
    assert again.status_code == 200 and again.json()["id"] == refund.public_id
    assert statuses(order)[-2:] == [S.REFUND_PENDING, S.REFUNDED]
    assert api.get(f"/api/v1/orders/{order.public_id}").json()["refunded"] == "60.00"
    assert not ledger_verify(merchant_id=merchant.pk)


@pytest.mark.django_db(transaction=True)
def test_returned_goods_are_restocked_on_receipt_not_on_approval_and_a_partial_return_keeps_the_order(  # type: ignore[no-untyped-def]
    merchant, live_server, settings, provider
) -> None:
    settings.PUBLIC_BASE_URL = live_server.url
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(merchant)}")
    listing = make_listing(merchant, quota=10, limit=3, price="30.00")
    order = place(api, listing, "fan-2", quantity=3)
    pay(order, provider)
    ship(order)
    sku_code = listing.sku.code
    stock = Stock.objects.get(sku_id=listing.sku_id)
    assert (stock.on_hand, stock.reserved) == (7, 0)

    r = api.post(
        "/api/v1/refunds",
        {"order": order.public_id, "kind": "return", "lines": [{"sku": sku_code, "quantity": 1}], "reason": "尺码"},
        format="json",
    )
    assert r.status_code == 201, r.content
    first = r.json()
    assert (first["status"], first["amount"], first["lines"]) == (
        "requested",
        "30.00",
        [{"sku": sku_code, "quantity": 1}],
    )
    r = api.post(f"/api/v1/refunds/{first['id']}/approve", {}, format="json")
    assert r.json()["status"] == "awaiting_return"
    stock.refresh_from_db()
    assert stock.on_hand == 7  # approval restocks nothing: the goods are still on their way
    with TestCase.captureOnCommitCallbacks(execute=True):
        r = api.post(f"/api/v1/refunds/{first['id']}/receive", format="json")
    assert r.json()["status"] in ("refunding", "refunded")
    stock.refresh_from_db()
    assert stock.on_hand == 8
    movement = StockMovement.objects.filter(sku_id=listing.sku_id).order_by("-id").first()
    assert (movement.kind, movement.on_hand_delta, movement.reference) == ("return", 1, order.public_id)
    wait_until(
        lambda: RefundRequest.objects.get(public_id=first["id"]).status == R.REFUNDED, what="the first refund paid"
    )
    order.refresh_from_db()
    assert (order.status, order.refund_due, order.refunded) == (S.SHIPPED, Decimal("30.00"), Decimal("30.00"))

    with TestCase.captureOnCommitCallbacks(execute=True):  # the rest comes back: the whole order is refunded
        second = api.post("/api/v1/refunds", {"order": order.public_id, "kind": "return"}, format="json").json()
        assert second["lines"] == [{"sku": sku_code, "quantity": 2}] and second["amount"] == "60.00"
        api.post(f"/api/v1/refunds/{second['id']}/approve", {}, format="json")
        api.post(f"/api/v1/refunds/{second['id']}/receive", format="json")
    wait_until(lambda: Order.objects.get(pk=order.pk).status == S.REFUNDED, what="the order refunded")
    order.refresh_from_db()
    assert (order.refund_due, order.refunded) == (Decimal("90.00"), Decimal("90.00"))
    stock.refresh_from_db()
    assert (stock.on_hand, stock.reserved) == (10, 0)
    assert statuses(order)[-2:] == [S.REFUND_PENDING, S.REFUNDED]
    assert not ledger_verify(merchant_id=merchant.pk)
    r = api.post("/api/v1/refunds", {"order": order.public_id, "kind": "refund"}, format="json")
    assert (r.status_code, r.json()["code"]) == (409, "refund_not_allowed")


# --- the rules of asking ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_bad_requests_are_refused_with_a_code_and_change_nothing(shop, provider, other_api) -> None:  # type: ignore[no-untyped-def]
    api, listing = shop
    unpaid = place(api, listing, "fan-3")
    order = place(api, listing, "fan-4", quantity=2)
    pay(order, provider)
    FulfilmentSettings.objects.update_or_create(
        merchant=order.merchant, defaults={"auto_approve_unshipped_refunds": False}
    )
    cases = [
        ({"order": unpaid.public_id, "kind": "refund"}, 409, "refund_not_allowed"),
        ({"order": order.public_id, "kind": "return"}, 409, "refund_not_allowed"),  # nothing shipped yet
        ({"order": order.public_id, "kind": "refund", "amount": "60.01"}, 400, "invalid"),
        ({"order": order.public_id, "kind": "refund", "amount": "0"}, 400, "invalid"),
        ({"order": order.public_id, "kind": "refund", "amount": "1.234"}, 400, "invalid"),
        ({"order": order.public_id, "kind": "swap"}, 400, "invalid"),
        ({"order": order.public_id, "kind": "refund", "lines": [{"sku": "X", "quantity": 1}]}, 400, "invalid"),
        ({"order": "NOSUCHORDER", "kind": "refund"}, 404, "not_found"),
    ]
    for body, status, code in cases:
        r = api.post("/api/v1/refunds", body, format="json")
        assert (r.status_code, r.json()["code"]) == (status, code), (body, r.content)
    assert not RefundRequest.objects.exists()
    events = OrderEvent.objects.filter(order=order).count()

    r = api.post("/api/v1/refunds", {"order": order.public_id, "kind": "refund", "amount": "10.00"}, format="json")
    assert r.status_code == 201 and r.json()["status"] == "requested"  # the merchant decides
    r = api.post("/api/v1/refunds", {"order": order.public_id, "kind": "refund"}, format="json")
    assert (r.status_code, r.json()["code"]) == (409, "refund_open")
    refund_id = RefundRequest.objects.get().public_id
    r = api.post(f"/api/v1/refunds/{refund_id}/reject", {}, format="json")
    assert (r.status_code, r.json()["code"]) == (400, "invalid")  # a rejection says why
    r = api.post(f"/api/v1/refunds/{refund_id}/receive", format="json")
    assert (r.status_code, r.json()["code"]) == (409, "refund_state")
    assert other_api.get(f"/api/v1/refunds/{refund_id}").status_code == 404  # tenants are walls
    assert (
        other_api.post("/api/v1/refunds", {"order": order.public_id, "kind": "refund"}, format="json").status_code
        == 404
    )
    r = api.post(f"/api/v1/refunds/{refund_id}/reject", {"note": "已按约定发货"}, format="json")
    assert r.json()["status"] == "rejected"
    order.refresh_from_db()
    assert (order.status, order.refund_due) == (S.PAID, Decimal("0"))
    assert OrderEvent.objects.filter(order=order).count() == events + 2  # requested, rejected
    listed = api.get("/api/v1/refunds", {"order": order.public_id, "status": "rejected"}).json()
    assert [row["id"] for row in listed["results"]] == [refund_id]
    assert api.get("/api/v1/refunds", {"colour": "red"}).json()["code"] == "unknown_parameter"


@pytest.mark.django_db
def test_a_partial_refund_before_shipping_is_money_only_and_the_order_still_ships(shop, provider) -> None:  # type: ignore[no-untyped-def]
    api, listing = shop
    order = place(api, listing, "fan-5", quantity=2)
    pay(order, provider)
    r = api.post("/api/v1/refunds", {"order": order.public_id, "kind": "refund", "amount": "5.00"}, format="json")
    refund = RefundRequest.objects.get(public_id=r.json()["id"])
    assert refund.status == R.REQUESTED  # a part of the money waits for a person, even unshipped
    refund = refunds.refund_approve(refund=refund, actor="staff")
    assert refund.status == R.REFUNDING
    order.refresh_from_db()
    assert (order.status, order.refund_due) == (S.PAID, Decimal("5.00"))
    assert refunds.refund_send(refund.pk) == "accepted"
    assert settle(refund) == "applied"  # no callback reached us: the query found it paid
    order.refresh_from_db()
    assert (order.status, order.refunded) == (S.PAID, Decimal("5.00"))
    assert Stock.objects.get(sku_id=listing.sku_id).reserved == 2  # the goods still ship
    ship(order)
    assert refunds.refundable_amount(order) == Decimal("55.00")


# --- the provider's faults --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_provider_that_times_out_is_asked_again_and_refunds_once(shop, provider, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PAYMENT_PROVIDER_TIMEOUT = 0.5
    api, listing = shop
    order = place(api, listing, "fan-6")
    pay(order, provider)
    refund, _ = refunds.refund_request(order=order, kind="refund", source="api", actor="test")
    provider.set_next_fault("timeout", count=1, hang=1.0)
    assert refunds.refund_send(refund.pk).startswith("provider unavailable")
    refund.refresh_from_db()
    assert refund.status == R.REFUNDING and refund.last_error and refund.attempts == 1
    assert refunds.refund_send(refund.pk) == "not due"  # it waits its backoff
    RefundRequest.objects.filter(pk=refund.pk).update(next_attempt_at=refund.requested_at)
    refunds.refund_send(refund.pk)  # the same refund number: the provider answers the refund it has
    assert settle(refund) == "applied"
    assert len(provider.refunds()) == 1
    order.refresh_from_db()
    assert (order.status, order.refunded) == (S.REFUNDED, order.total)


@pytest.mark.django_db
def test_a_refund_the_provider_refuses_goes_to_the_exception_queue_and_can_be_sent_again(shop, provider) -> None:  # type: ignore[no-untyped-def]
    api, listing = shop
    order = place(api, listing, "fan-7")
    pay(order, provider)
    refund, _ = refunds.refund_request(order=order, kind="refund", source="api", actor="test")
    provider.set_next_fault("reject", count=1, reason="card account closed")
    assert refunds.refund_send(refund.pk) == "accepted"
    assert settle(refund) == "failed: refund_failed"
    refund.refresh_from_db()
    assert refund.status == R.FAILED and "card account closed" in refund.last_error
    exc = FulfilmentException.objects.get(order=order, resolved_at__isnull=True)
    assert exc.kind == ExceptionKind.REFUND_OWED
    with TestCase.captureOnCommitCallbacks(execute=False):
        refunds.refund_retry(refund=refund, actor="staff:1")
    assert refunds.refund_send(refund.pk) == "accepted"  # under a new number: the failed one stays failed
    assert settle(refund) == "applied"
    assert [r.status for r in provider.refunds()] == ["failed", "succeeded"]
    assert FulfilmentException.objects.get(pk=exc.pk).resolved_at is not None
    order.refresh_from_db()
    assert order.status == S.REFUNDED


# --- money owed without a request ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_money_paid_after_a_cancellation_or_twice_is_paid_back_without_a_person(shop, provider) -> None:  # type: ignore[no-untyped-def]
    api, listing = shop
    late = place(api, listing, "fan-8")
    order_cancel(order=late, actor="buyer", reason="changed mind", by_buyer=True)
    pay(late, provider)  # the payment lands after the cancellation: owed back
    twice = place(api, listing, "fan-9")
    pay(twice, provider, txn="txn-first")
    pay(twice, provider, txn="txn-second")  # a second payment of the same order
    late.refresh_from_db()
    twice.refresh_from_db()
    assert (late.status, late.refund_due, twice.status, twice.refund_due) == (
        S.REFUND_PENDING,
        late.total,
        S.PAID,
        twice.total,
    )
    assert refunds.refunds_owed_sweep() == 2
    assert refunds.refunds_owed_sweep() == 0  # covered now
    system = {r.order_id: r for r in RefundRequest.objects.filter(source="system")}
    assert system[twice.pk].transaction_id == "txn-second"  # the extra payment goes back, not the order's
    assert refunds.refunds_due() == 2
    for refund in system.values():
        assert settle(refund) == "applied"
    late.refresh_from_db()
    twice.refresh_from_db()
    assert (late.status, late.refunded) == (S.REFUNDED, late.total)
    assert (twice.status, twice.refunded) == (S.PAID, twice.total)  # the order itself stands
    assert refunds.refunds_owed_sweep() == 0


# --- the provider's callback, refused -----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_callback_that_does_not_verify_is_stored_refused_and_applies_nothing(client, shop, provider) -> None:  # type: ignore[no-untyped-def]
    api, listing = shop
    order = place(api, listing, "fan-10")
    pay(order, provider)
    refund, _ = refunds.refund_request(order=order, kind="refund", source="api", actor="test")
    body = json.dumps(
        {"event": "refund.succeeded", "refund_no": refund.public_id, "refund_id": "R1", "transaction_id": "t",
         "amount": str(refund.amount), "status": "succeeded", "succeeded_at": "2026-12-02T20:00:00+08:00",
         "failure_reason": None}
    ).encode()  # fmt: skip
    ts = str(int(time.time()))
    r = client.post(
        "/hooks/payments/refunds", body, content_type="application/json", HTTP_X_TIMESTAMP=ts, HTTP_X_SIGNATURE="0" * 64
    )
    assert (r.status_code, r.json()["code"]) == (401, "signature_invalid")
    notice = RefundNotice.objects.get()
    assert notice.outcome == RefundNotice.Outcome.REFUSED and notice.body == body.decode()
    unknown = body.replace(refund.public_id.encode(), b"RF0000000000000000")
    sig = payments.sign(unknown, ts, django_settings.PAYMENT_WEBHOOK_SECRET)
    r = client.post(
        "/hooks/payments/refunds", unknown, content_type="application/json", HTTP_X_TIMESTAMP=ts, HTTP_X_SIGNATURE=sig
    )
    assert (r.status_code, r.json()["code"]) == (404, "refund_not_found")
    refund.refresh_from_db()
    order.refresh_from_db()
    assert refund.status == R.REFUNDING and order.refunded == 0


# --- the buyer's status page --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_buyer_asks_and_withdraws_from_the_status_page(client, shop, provider) -> None:  # type: ignore[no-untyped-def]
    api, listing = shop
    order = place(api, listing, "fan-11", quantity=2)
    pay(order, provider)
    ship(order)
    path = status_path(order)
    token = path.split("t=")[1]
    page = client.get(path)
    assert "Request a refund" in page.content.decode() or "申请退款" in page.content.decode()
    r = client.post(
        f"/o/{order.public_id}/refund/",
        {"t": token, "kind": "return", "reason": "damaged", "detail": "外箱破损"},
    )
    assert r.status_code == 303
    refund = RefundRequest.objects.get(order=order)
    assert (refund.kind, refund.source, refund.status, refund.amount) == ("return", "buyer", "requested", order.total)
    assert "外箱破损" in refund.reason
    page = client.get(path).content.decode()
    assert refund.public_id in page
    r = client.post(f"/o/{order.public_id}/refund/{refund.public_id}/withdraw/", {"t": token})
    assert r.status_code == 303
    refund.refresh_from_db()
    assert refund.status == R.WITHDRAWN
    r = client.post(f"/o/{order.public_id}/refund/", {"t": "forged", "kind": "refund"})
    assert r.status_code in (403, 404)
    assert RefundRequest.objects.filter(order=order).count() == 1


@pytest.mark.django_db
def test_a_delivered_order_with_an_open_request_does_not_complete_until_it_is_settled(shop, provider) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from django.utils import timezone

    from apps.fulfilment import automation
    from apps.fulfilment.models import CarrierAccount, Parcel, ParcelOrder

    api, listing = shop
    order = place(api, listing, "fan-12")
    pay(order, provider)
    ship(order)
    order_transition(order=order, to=S.DELIVERED, actor="carrier", reason="delivered")
    account = CarrierAccount.objects.create(merchant=order.merchant, carrier="kuaidi100", name="k", express="ZTO")
    parcel = Parcel.objects.create(
        merchant=order.merchant,
        code="P-DELIVERED",
        account=account,
        express="ZTO",
        channel="own",
        address_key="k",
        receiver={},
        waybill_no="ZT9",
        status=Parcel.Status.DELIVERED,
        delivered_at=timezone.now() - timedelta(days=30),
    )
    ParcelOrder.objects.create(parcel=parcel, order=order)
    refund, _ = refunds.refund_request(order=order, kind="return", source="api", actor="buyer")
    assert automation.auto_complete() == 0  # 售后中
    refunds.refund_reject(refund=refund, actor="staff", note="超过退货期")
    assert automation.auto_complete() == 1
    order.refresh_from_db()
    assert order.status == S.COMPLETED


@pytest.mark.django_db
def test_the_admin_order_page_shows_the_after_sales_panel_and_the_queue_acts_in_bulk(  # type: ignore[no-untyped-def]
    admin_client, shop, provider
) -> None:
    api, listing = shop
    orders = [place(api, listing, f"fan-q{i}") for i in range(3)]
    for order in orders:
        pay(order, provider)
        ship(order)
    asked = [
        refunds.refund_request(order=o, kind="refund", source="api", actor="buyer", reason="丢件")[0] for o in orders
    ]
    page = admin_client.get(f"/admin/orders/order/{orders[0].pk}/change/").content.decode()
    assert asked[0].public_id in page and "lc-refunds-panel" in page
    queue = admin_client.get("/admin/fulfilment/refundrequest/").content.decode()
    assert all(r.public_id in queue for r in asked)  # open ones by default
    changelist = "/admin/fulfilment/refundrequest/"
    r = admin_client.post(changelist, {"action": "approve", "_selected_action": [asked[0].pk, asked[1].pk]})
    assert r.status_code == 302
    r = admin_client.post(changelist, {"action": "reject", "_selected_action": [asked[2].pk]})
    assert r.status_code == 200 and "note" in r.content.decode()  # the page that asks why
    r = admin_client.post(changelist, {"action": "reject", "_selected_action": [asked[2].pk], "apply": "1", "note": ""})
    assert r.status_code == 200  # a note is required: asked again
    r = admin_client.post(
        changelist, {"action": "reject", "_selected_action": [asked[2].pk], "apply": "1", "note": "物流显示已签收"}
    )
    assert r.status_code == 302
    statuses = dict(RefundRequest.objects.values_list("public_id", "status"))
    assert [statuses[r.public_id] for r in asked] == [R.REFUNDING, R.REFUNDING, R.REJECTED]
    for order in orders[:2]:  # a whole refund after shipping (a lost parcel): refund_pending, no restock
        order.refresh_from_db()
        assert order.status == S.REFUND_PENDING
    assert Stock.objects.get(sku_id=listing.sku_id).on_hand == 7


@pytest.mark.django_db
def test_money_stays_exact_when_a_part_is_refunded_before_the_order_is_held_cancelled_or_cancelled(  # type: ignore[no-untyped-def]
    shop, provider
) -> None:
    api, listing = shop
    held = place(api, listing, "fan-h", quantity=1)  # 30.00
    pay(held, provider)
    order_transition(order=held, to=S.ON_HOLD, actor="risk", reason="held")
    part, _ = refunds.refund_request(order=held, kind="refund", source="api", actor="buyer", amount="10.00")
    refunds.refund_approve(refund=part, actor="staff")
    refunds.refund_send(part.pk)
    assert settle(part) == "applied"  # one request at a time: the first is paid back
    rest, _ = refunds.refund_request(order=held, kind="refund", source="api", actor="buyer")
    assert rest.amount == Decimal("20.00") and rest.status == R.REFUNDING  # the whole rest: approved at once
    held.refresh_from_db()
    assert (held.status, held.refund_due) == (S.CANCELLED, Decimal("30.00"))  # cancelled, its units back

    cancelled = place(api, listing, "fan-c", quantity=1)
    pay(cancelled, provider)
    part, _ = refunds.refund_request(order=cancelled, kind="refund", source="api", actor="buyer", amount="10.00")
    refunds.refund_approve(refund=part, actor="staff")
    order_cancel(order=cancelled, actor="merchant", reason="out of stock")
    cancelled.refresh_from_db()
    assert (cancelled.status, cancelled.refund_due) == (S.REFUND_PENDING, Decimal("30.00"))  # not 40

    waiting = place(api, listing, "fan-w", quantity=1)
    pay(waiting, provider)
    asked, _ = refunds.refund_request(order=waiting, kind="refund", source="api", actor="buyer", amount="5.00")
    order_cancel(order=waiting, actor="merchant", reason="out of stock")
    with pytest.raises(Exception) as refused:
        refunds.refund_approve(refund=asked, actor="staff")
    assert getattr(refused.value, "code", "") == "refund_not_allowed"

    def pay_back_what_is_in_flight() -> None:
        for r in RefundRequest.objects.filter(status=R.REFUNDING):
            refunds.refund_send(r.pk)
            assert settle(r) == "applied"

    assert refunds.refunds_owed_sweep() == 1  # the moot request closed, the rest owed; the others are in flight
    asked.refresh_from_db()
    assert asked.status == R.REJECTED
    pay_back_what_is_in_flight()
    assert refunds.refunds_owed_sweep() == 1  # the cancelled order's 20.00 not yet covered
    pay_back_what_is_in_flight()
    assert refunds.refunds_owed_sweep() == 0
    for order, status in ((held, S.CANCELLED), (cancelled, S.REFUNDED), (waiting, S.REFUNDED)):
        order.refresh_from_db()
        assert (order.status, order.refund_due, order.refunded) == (status, order.total, order.total)


@pytest.mark.django_db
def test_garbage_amounts_and_a_return_worth_more_than_its_units_are_refused(client, shop, provider) -> None:  # type: ignore[no-untyped-def]
    api, listing = shop
    order = place(api, listing, "fan-g", quantity=3)
    pay(order, provider)
    ship(order)
    path = status_path(order)
    token = path.split("t=")[1]
    for amount in ("1e30", "1_0", "NaN", "-5", "12.345", "９"):
        r = client.post(f"/o/{order.public_id}/refund/", {"t": token, "kind": "refund", "amount": amount})
        assert r.status_code == 303, amount  # back to the page with the error, never a 500
    assert not RefundRequest.objects.exists()
    sku = listing.sku.code
    r = api.post(
        "/api/v1/refunds",
        {"order": order.public_id, "kind": "return", "lines": [{"sku": sku, "quantity": 1}], "amount": "90.00"},
        format="json",
    )
    assert (r.status_code, r.json()["code"], r.json()["extra"]["field"]) == (400, "invalid", "amount")


@pytest.mark.django_db
def test_a_failed_refund_is_sent_again_only_once_the_provider_says_the_earlier_attempt_failed(shop, provider) -> None:  # type: ignore[no-untyped-def]
    api, listing = shop
    order = place(api, listing, "fan-r")
    pay(order, provider)
    refund, _ = refunds.refund_request(order=order, kind="refund", source="api", actor="test")
    assert refunds.refund_send(refund.pk) == "accepted"
    refunds._failed(refund, "timestamp_stale", "our clock")  # marked failed while the provider still pays it
    provider_refund = provider.refunds()[0]
    assert provider_refund.status in ("processing", "succeeded")
    refund.refresh_from_db()
    try:
        again = refunds.refund_retry(refund=refund, actor="staff")
    except Exception as exc:  # noqa: BLE001 - still processing there: refused, nothing sent twice
        assert getattr(exc, "code", "") == "refund_state"
    else:  # paid after all: recorded as paid, not sent again
        assert again.status == R.REFUNDED
    assert len(provider.refunds()) == 1


@pytest.mark.django_db
def test_money_owed_with_nothing_left_to_refund_goes_to_a_person_and_never_blocks_the_sweep(shop, provider) -> None:  # type: ignore[no-untyped-def]
    api, listing = shop
    stuck = place(api, listing, "fan-s")
    order_transition(order=stuck, to=S.PAID, actor="import", reason="paid elsewhere")  # no payment of ours
    Order.objects.filter(pk=stuck.pk).update(refund_due=stuck.total)  # owed, nothing here to refund it from
    late = place(api, listing, "fan-l")
    order_cancel(order=late, actor="buyer", reason="changed mind", by_buyer=True)
    pay(late, provider)
    assert refunds.refunds_owed_sweep(limit=1) == 0  # the stuck one: a person's
    exc = FulfilmentException.objects.get(order=stuck, resolved_at__isnull=True)
    assert exc.kind == ExceptionKind.REFUND_OWED and "settle it by hand" in exc.detail
    assert refunds.refunds_owed_sweep(limit=1) == 1  # the next one is not kept waiting behind it
    assert RefundRequest.objects.get(order=late).source == "system"
