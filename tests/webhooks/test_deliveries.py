"""Outbound webhooks end to end against a real HTTP receiver on 127.0.0.1: signed, retried with
backoff after a failing endpoint, abandoned after a day, replayed by hand, never sent inside a
transaction, at most once per due attempt."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from apps.merchants.services import staff_create
from apps.orders.services.transitions import order_cancel
from apps.webhooks import services
from apps.webhooks.models import AttemptTrigger, DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEvent
from apps.webhooks.signing import SignatureError, verify_signature

from ..factories import make_listing, order_body
from ..tenancy import pay

pytestmark = pytest.mark.django_db(transaction=True)


def register(api, url: str, events: list[str]) -> dict:  # type: ignore[no-untyped-def]
    r = api.post("/api/v1/webhook-endpoints", {"url": url, "events": events, "description": "ERP"}, format="json")
    assert r.status_code == 201, r.content
    return r.json()


def place(api, listing, buyer: str = "b1") -> dict:  # type: ignore[no-untyped-def]
    r = api.post("/api/v1/orders", order_body(listing.pk, buyer=buyer), format="json")
    assert r.status_code == 201, r.content
    return r.json()


def test_delivery_is_signed_verifiable_and_carries_the_order_as_the_api_renders_it(merchant, api, receiver) -> None:
    endpoint = register(api, receiver.url, ["order.created"])
    assert endpoint["secret"].startswith("whsec_")
    listing = make_listing(merchant, quota=5)
    order = place(api, listing)

    assert len(receiver.requests) == 1
    got = receiver.requests[0]
    header = got.headers["Livecommerce-Signature"]
    assert got.headers["Content-Type"] == "application/json"
    signed_at = verify_signature(got.body, header, endpoint["secret"])
    payload = json.loads(got.body)
    assert got.headers["Livecommerce-Event-Id"] == payload["id"] and payload["id"].startswith("evt_")
    assert payload["type"] == "order.created"
    assert abs(payload["created"] - signed_at) < 60
    as_api = api.get(f"/api/v1/orders/{order['id']}").json()
    sent = payload["data"]["object"]
    # the buyer's link (signed when rendered, so its token differs): the same order's page
    assert as_api.pop("status_url").split("?")[0].endswith(sent.pop("status_url").split("?")[0])
    assert sent == as_api

    # a receiver refuses a tampered body, another secret, and an old (replayed) request
    with pytest.raises(SignatureError):
        verify_signature(got.body.replace(b"pending_payment", b"paid"), header, endpoint["secret"])
    with pytest.raises(SignatureError):
        verify_signature(got.body, header, "whsec_wrong")
    with pytest.raises(SignatureError):
        verify_signature(got.body, header, endpoint["secret"], now=signed_at + 301)
    with pytest.raises(SignatureError):
        verify_signature(got.body, "v1=abc", endpoint["secret"])

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 1
    assert delivery.response_status == 200 and delivery.response_body == '{"received":true}'


def test_failing_endpoint_is_retried_with_backoff_by_the_sweep_and_succeeds(merchant, api, receiver) -> None:
    register(api, receiver.url, ["order.created"])
    receiver.fail(2, status=503)
    place(api, make_listing(merchant, quota=5))
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 1
    first = delivery.first_attempt_at
    assert timedelta(seconds=54) <= delivery.next_attempt_at - first <= timedelta(seconds=66)  # 1 min ± jitter

    # not due yet: the sweep sends nothing
    assert services.deliveries_retry_due(now=first + timedelta(seconds=30)) == 0
    assert len(receiver.requests) == 1

    services.deliveries_retry_due(now=delivery.next_attempt_at)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 2
    gap = delivery.next_attempt_at - delivery.last_attempt_at
    assert timedelta(seconds=270) <= gap <= timedelta(seconds=330)  # then 5 min

    services.deliveries_retry_due(now=delivery.next_attempt_at)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 3
    assert delivery.next_attempt_at is None
    log = list(WebhookAttempt.objects.filter(delivery=delivery).values_list("number", "response_status", "succeeded"))
    assert log == [(1, 503, False), (2, 503, False), (3, 200, True)]
    assert len(receiver.requests) == 3
    assert len({r.headers["Livecommerce-Event-Id"] for r in receiver.requests}) == 1  # the same event each time
    assert {json.loads(r.body)["id"] for r in receiver.requests} == {delivery.event.public_id}

    # a succeeded delivery is never sent again by the sweep
    assert services.deliveries_retry_due(now=timezone.now() + timedelta(days=2)) == 0
    assert services.delivery_attempt(delivery_id=delivery.pk, now=timezone.now() + timedelta(days=2)) is None
    assert len(receiver.requests) == 3


def test_delivery_is_abandoned_a_day_after_its_first_attempt(merchant, api, receiver) -> None:
    register(api, receiver.url, ["order.created"])
    receiver.fail(10_000)
    place(api, make_listing(merchant, quota=5))
    delivery = WebhookDelivery.objects.get()
    first = delivery.first_attempt_at
    for _ in range(50):
        if delivery.status != DeliveryStatus.FAILED:
            break
        services.deliveries_retry_due(now=delivery.next_attempt_at)
        delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.ABANDONED and delivery.next_attempt_at is None
    times = list(WebhookAttempt.objects.filter(delivery=delivery).values_list("created_at", flat=True))
    assert len(times) == delivery.attempts == len(receiver.requests)
    assert 7 <= delivery.attempts <= 9  # 1m, 5m, 30m, 2h, 5h, 10h, ... until the day is over
    assert times[-1] == first + timedelta(days=1)  # the last try is at the end of the window
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    assert services.deliveries_retry_due(now=first + timedelta(days=3)) == 0
    assert len(receiver.requests) == delivery.attempts


def test_replay_sends_again_as_a_logged_attempt_from_the_api_and_the_admin(merchant, api, receiver) -> None:
    register(api, receiver.url, ["order.created"])
    receiver.fail(10_000)
    place(api, make_listing(merchant, quota=5))
    delivery = WebhookDelivery.objects.get()
    delivery.status, delivery.next_attempt_at = DeliveryStatus.ABANDONED, None
    delivery.save()
    receiver.fail(0)

    r = api.post(f"/api/v1/webhook-deliveries/{delivery.pk}/replay")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "succeeded" and body["attempts"] == 2
    assert [(a["trigger"], a["response_status"]) for a in body["attempt_log"]] == [
        ("automatic", 500),
        ("replay", 200),
    ]
    assert len(receiver.requests) == 2
    assert receiver.requests[0].body == receiver.requests[1].body  # the same event, signed anew

    staff = staff_create(merchant=merchant, username="ops", password="pw-long-enough-1")
    client = Client()
    client.force_login(staff)
    r = client.post(
        "/admin/webhooks/webhookdelivery/",
        {"action": "replay_deliveries", "_selected_action": [delivery.pk], "index": "0"},
    )
    assert r.status_code == 302
    assert len(receiver.requests) == 3
    assert WebhookAttempt.objects.filter(delivery=delivery, trigger=AttemptTrigger.REPLAY).count() == 2
    page = client.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/")
    assert page.status_code == 200
    assert delivery.event.public_id.encode() in page.content and b"received" in page.content


def test_never_sent_inside_a_transaction(merchant, api, receiver) -> None:
    register(api, receiver.url, ["order.created"])
    receiver.fail(1)
    place(api, make_listing(merchant, quota=5))
    delivery = WebhookDelivery.objects.get()
    with transaction.atomic():
        with pytest.raises(services.SentInsideTransaction):
            services.delivery_attempt(delivery_id=delivery.pk, now=delivery.next_attempt_at)
        with pytest.raises(services.SentInsideTransaction):
            services.delivery_replay(delivery=delivery)
    assert len(receiver.requests) == 1
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and delivery.status == DeliveryStatus.FAILED  # untouched, still due


def test_concurrent_sweeps_send_a_due_delivery_once(merchant, api, receiver) -> None:
    register(api, receiver.url, ["order.created"])
    receiver.fail(1)
    place(api, make_listing(merchant, quota=5))
    delivery = WebhookDelivery.objects.get()
    due = delivery.next_attempt_at
    barrier = threading.Barrier(4)
    results: list[object] = []

    def sweep() -> None:
        from django.db import connection

        barrier.wait()
        try:
            results.append(services.delivery_attempt(delivery_id=delivery.pk, now=due))
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(receiver.requests) == 2  # the first attempt and exactly one retry
    assert sum(r is not None for r in results) == 1
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.status == DeliveryStatus.SUCCEEDED


def test_order_lifecycle_events_reach_only_the_endpoints_that_picked_them(merchant, api, receiver) -> None:
    from .receiver import start

    other = start()
    try:
        register(api, receiver.url, ["order.paid", "order.cancelled"])
        register(api, other.url, ["order.created"])
        listing = make_listing(merchant, quota=5, limit=5)
        paid = place(api, listing, buyer="p")
        pay(paid)
        unpaid = place(api, listing, buyer="u")
        r = api.post(f"/api/v1/orders/{unpaid['id']}/cancel", {"reason": "changed mind"}, format="json")
        assert r.status_code == 200
        types = [json.loads(x.body)["type"] for x in receiver.requests]
        assert types == ["order.paid", "order.cancelled"]
        assert [json.loads(x.body)["data"]["object"]["id"] for x in receiver.requests] == [paid["id"], unpaid["id"]]
        assert [json.loads(x.body)["type"] for x in other.requests] == ["order.created", "order.created"]
        # announcing the same change again records nothing new (one event per order version)
        from apps.orders.models import Order
        from apps.webhooks.sources import on_order_changed

        order = Order.objects.get(public_id=unpaid["id"])
        on_order_changed(None, order=order, from_status="pending_payment")
        assert WebhookEvent.objects.filter(type="order.cancelled").count() == 1
        # a paid order cancelled by the merchant owes a refund: that is a cancellation too
        order_cancel(order=Order.objects.get(public_id=paid["id"]), actor="test", reason="out of stock")
        assert [json.loads(x.body)["type"] for x in receiver.requests][-1] == "order.cancelled"
    finally:
        other.server.shutdown()
        other.server.server_close()


def test_stock_low_and_sold_out_are_sent_when_they_start(merchant, api, receiver, settings) -> None:
    from apps.inventory.services import stock_adjust

    settings.WEBHOOK_STOCK_LOW_THRESHOLD = 10
    endpoint = register(api, receiver.url, ["stock.low", "listing.sold_out"])
    listing = make_listing(merchant, quota=2, on_hand=12, limit=1)
    first = place(api, listing, buyer="a")  # available 11: not low
    assert receiver.requests == []
    place(api, listing, buyer="b")  # available 10: low; sold 2 of 2: sold out
    sent = [json.loads(x.body) for x in receiver.requests]
    assert sorted(p["type"] for p in sent) == ["listing.sold_out", "stock.low"]
    low = next(p for p in sent if p["type"] == "stock.low")["data"]["object"]
    assert low["available"] == 10 and low["threshold"] == 10 and low["sku"] == listing.sku.code
    sold_out = next(p for p in sent if p["type"] == "listing.sold_out")["data"]["object"]
    assert sold_out["id"] == listing.pk and sold_out["sold"] == sold_out["quota"] == 2
    for x in receiver.requests:
        verify_signature(x.body, x.headers["Livecommerce-Signature"], endpoint["secret"])

    # still low, still sold out: nothing new; a cancel ends both, the next sale starts them again
    stock_adjust(sku=listing.sku, delta=-1, reason="damaged")
    assert len(receiver.requests) == 2
    api.post(f"/api/v1/orders/{first['id']}/cancel", {}, format="json")
    stock_adjust(sku=listing.sku, delta=5, reason="delivery")  # available 15
    place(api, listing, buyer="c")
    assert [json.loads(x.body)["type"] for x in receiver.requests[2:]] == ["listing.sold_out"]
    stock_adjust(sku=listing.sku, delta=-5, reason="stocktake")  # available 9: low again
    assert [json.loads(x.body)["type"] for x in receiver.requests[3:]] == ["stock.low"]


def test_the_verification_snippet_in_the_api_guide_accepts_a_real_signature_and_refuses_a_forgery() -> None:
    import re
    from pathlib import Path

    from apps.webhooks.signing import signature_header

    guide = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    snippet = re.search(r"## Webhooks.*?```python\n(.*?)```", guide, re.S).group(1)
    scope: dict = {}
    exec(snippet, scope)  # the guide's own code, as a receiver would paste it
    body = b'{"id":"evt_1","type":"order.paid"}'
    header = signature_header("whsec_abc", body)
    assert scope["verify"](body, header, "whsec_abc")
    assert not scope["verify"](body + b" ", header, "whsec_abc")
    assert not scope["verify"](body, signature_header("whsec_abc", body, timestamp=1_000_000_000), "whsec_abc")


def test_an_event_the_after_commit_hook_missed_is_recorded_from_the_ledger_once(merchant, api, receiver) -> None:
    """The process dies between an order's commit and its webhook hook (here: the hook is not
    connected while the order is placed): the sweep finds the change in the ledger and announces
    it under the key the hook would have used, once; changes the hook did see are not repeated."""
    from apps.orders.hooks import order_changed
    from apps.webhooks.sources import on_order_changed, order_events_catch_up

    register(api, receiver.url, ["order.created", "order.paid"])
    listing = make_listing(merchant, quota=5)
    order_changed.disconnect(dispatch_uid="webhooks.order_changed")
    try:
        order = place(api, listing)
    finally:
        order_changed.connect(on_order_changed, dispatch_uid="webhooks.order_changed")
    assert WebhookEvent.objects.count() == 0 and receiver.requests == []
    pay(order)  # the hook is back: order.paid is announced as it happens
    assert [e.type for e in WebhookEvent.objects.all()] == ["order.paid"]

    later = timezone.now() + timedelta(minutes=1)
    assert order_events_catch_up(now=later) == 1
    assert order_events_catch_up(now=later) == 0  # idempotent
    events = {e.type: e.source_key for e in WebhookEvent.objects.all()}
    assert events == {"order.created": f"order:{order['id']}:v1", "order.paid": f"order:{order['id']}:v2"}
    created = [json.loads(r.body) for r in receiver.requests if json.loads(r.body)["type"] == "order.created"]
    assert len(created) == 1 and created[0]["data"]["object"]["id"] == order["id"]
    # beyond its window the sweep leaves old history alone
    assert order_events_catch_up(now=timezone.now() + timedelta(hours=2)) == 0
