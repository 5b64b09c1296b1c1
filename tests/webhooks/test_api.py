"""The webhook API: endpoints CRUD with the secret shown once, the delivery log and its filters,
tenant walls, bad input; and the order hot path doing no webhook work for a merchant without
endpoints."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.orders.hooks import order_changed
from apps.webhooks import subscriptions
from apps.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from apps.webhooks.sources import on_order_changed

from ..factories import make_listing, order_body

ENDPOINTS = "/api/v1/webhook-endpoints"
DELIVERIES = "/api/v1/webhook-deliveries"


def create(api, url: str = "https://erp.example.com/hooks", events=("order.paid",)):  # type: ignore[no-untyped-def]
    return api.post(ENDPOINTS, {"url": url, "events": list(events)}, format="json")


@pytest.mark.django_db
def test_secret_is_shown_on_creation_and_rotation_only(api) -> None:
    r = create(api)
    assert r.status_code == 201, r.content
    created = r.json()
    assert created["secret"].startswith("whsec_") and created["events"] == ["order.paid"]
    assert "secret" not in api.get(f"{ENDPOINTS}/{created['id']}").json()
    assert all("secret" not in e for e in api.get(ENDPOINTS).json()["results"])
    rotated = api.post(f"{ENDPOINTS}/{created['id']}/rotate-secret").json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert WebhookEndpoint.objects.get().secret == rotated["secret"]


@pytest.mark.django_db
def test_endpoint_update_and_delete(api) -> None:
    pk = create(api).json()["id"]
    r = api.patch(f"{ENDPOINTS}/{pk}", {"events": ["order.shipped", "stock.low"], "is_active": False}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["events"] == ["order.shipped", "stock.low"] and r.json()["is_active"] is False
    assert api.delete(f"{ENDPOINTS}/{pk}").status_code == 204
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "ftp://erp.example.com/x", "events": ["order.paid"]}, "invalid_url"),
        ({"url": "https:///nohost", "events": ["order.paid"]}, "invalid_url"),
        ({"url": "https://user:pw@erp.example.com/", "events": ["order.paid"]}, "invalid_url"),
        ({"url": "https://erp.example.com/x", "events": ["order.exploded"]}, "unknown_event_type"),
        ({"url": "https://erp.example.com/x", "events": []}, "invalid"),
        ({"url": "https://erp.example.com/x"}, "invalid"),
        ({"events": ["order.paid"]}, "invalid"),
        ({"url": "https://erp.example.com/x", "events": "order.paid"}, "invalid"),
    ],
)
def test_bad_endpoint_input_is_a_400_with_a_code_and_writes_nothing(api, body, code) -> None:
    r = api.post(ENDPOINTS, body, format="json")
    assert r.status_code == 400, r.content
    assert r.json()["code"] == code and r.json()["message"]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://erp.example.com/x",
        "https://127.0.0.1/x",
        "https://10.1.2.3/x",
        "https://169.254.169.254/latest",
        "https://localhost/x",
        "https://[::1]/x",
        "https://a..b/hook",  # names that cannot be looked up at all
        "https://" + "x" * 64 + ".example.com/hook",
    ],
)
def test_private_and_plain_http_targets_are_refused_outside_debug(api, settings, url) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    r = create(api, url=url)
    assert r.status_code == 400 and r.json()["code"] == "invalid_url", r.content
    pk = create(api).json()["id"]
    r = api.patch(f"{ENDPOINTS}/{pk}", {"url": url}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "invalid_url"
    assert WebhookEndpoint.objects.get().url == "https://erp.example.com/hooks"


@pytest.mark.django_db(transaction=True)
def test_a_host_that_resolves_to_a_private_address_is_refused_at_send_time(settings, merchant) -> None:
    from apps.webhooks.services import send

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    endpoint = WebhookEndpoint.objects.create(merchant=merchant, url="https://localhost:1/x", events=["order.paid"])
    event = WebhookEvent.objects.create(merchant=merchant, type="order.paid", source_key="x", payload={})
    outcome = send(endpoint=endpoint, event=event)  # saved before the rule: the send-time check refuses it
    assert not outcome.succeeded and "non-public" in outcome.error


@pytest.mark.django_db(transaction=True)
def test_tenant_walls_on_endpoints_and_deliveries(merchant, api, other_api) -> None:
    from .receiver import start

    receiver = start()
    try:
        a_endpoint = create(api, url=receiver.url, events=["order.created"]).json()
        other_endpoint = create(other_api, url=receiver.url, events=["order.created"]).json()
        r = api.post("/api/v1/orders", order_body(make_listing(merchant, quota=3).pk), format="json")
        assert r.status_code == 201
        delivery = WebhookDelivery.objects.get()
        sent = len(receiver.requests)
        # B sees and touches none of A's
        assert [e["id"] for e in other_api.get(ENDPOINTS).json()["results"]] == [other_endpoint["id"]]
        assert other_api.get(f"{ENDPOINTS}/{a_endpoint['id']}").status_code == 404
        assert (
            other_api.patch(f"{ENDPOINTS}/{a_endpoint['id']}", {"is_active": False}, format="json").status_code == 404
        )
        assert other_api.post(f"{ENDPOINTS}/{a_endpoint['id']}/rotate-secret").status_code == 404
        assert other_api.delete(f"{ENDPOINTS}/{a_endpoint['id']}").status_code == 404
        assert other_api.get(DELIVERIES).json()["results"] == []
        assert other_api.get(f"{DELIVERIES}/{delivery.pk}").status_code == 404
        assert other_api.post(f"{DELIVERIES}/{delivery.pk}/replay").status_code == 404
        assert other_api.get(DELIVERIES, {"endpoint": a_endpoint["id"]}).json()["results"] == []
        assert len(receiver.requests) == sent
        assert WebhookEndpoint.objects.get(pk=a_endpoint["id"]).is_active
        assert WebhookAttempt.objects.filter(delivery=delivery).count() == 1
        # A sees its own
        assert [d["id"] for d in api.get(DELIVERIES).json()["results"]] == [delivery.pk]
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


@pytest.mark.django_db(transaction=True)
def test_delivery_log_filters(merchant, api) -> None:
    from .receiver import start

    receiver = start()
    try:
        one = create(api, url=receiver.url, events=["order.created"]).json()
        two = create(api, url=receiver.url + "/two", events=["order.created", "order.cancelled"]).json()
        receiver.fail(1)
        order = api.post("/api/v1/orders", order_body(make_listing(merchant, quota=3).pk), format="json").json()
        api.post(f"/api/v1/orders/{order['id']}/cancel", {}, format="json")

        def ids(**params):  # type: ignore[no-untyped-def]
            r = api.get(DELIVERIES, params)
            assert r.status_code == 200, r.content
            return sorted(d["id"] for d in r.json()["results"])

        everything = ids()
        assert len(everything) == 3
        assert len(ids(endpoint=two["id"])) == 2 and len(ids(endpoint=one["id"])) == 1
        assert len(ids(event_type="order.cancelled")) == 1
        assert len(ids(status="failed")) == 1 and len(ids(status="succeeded")) == 2
        assert ids(endpoint=999999) == []
        for bad in ({"status": "nope"}, {"event_type": "x"}, {"colour": "red"}):
            r = api.get(DELIVERIES, bad)
            assert r.status_code == 400 and r.json()["code"] in ("invalid", "unknown_parameter"), r.content
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


@pytest.mark.django_db(transaction=True)
def test_placement_for_a_merchant_without_endpoints_does_no_webhook_work(merchant, api, other_api) -> None:
    """Another merchant has endpoints; this one has none: placing its orders touches no webhook
    table and costs exactly the queries it costs with the webhook receiver disconnected."""
    create(
        other_api,
        url="https://erp.example.com/hooks",
        events=list(WebhookEndpoint._meta.get_field("events").default() or ["order.created"]),
    )
    listing = make_listing(merchant, quota=10, limit=1)
    api.post("/api/v1/orders", order_body(listing.pk, buyer="warm"), format="json")  # warms caches

    def place(buyer: str) -> list[str]:
        with CaptureQueriesContext(connection) as ctx:
            r = api.post("/api/v1/orders", order_body(listing.pk, buyer=buyer), format="json")
            assert r.status_code == 201, r.content
        return [q["sql"] for q in ctx.captured_queries]

    with_hook = place("b1")
    assert not [q for q in with_hook if "webhooks_" in q]
    assert order_changed.disconnect(dispatch_uid="webhooks.order_changed")
    try:
        without_hook = place("b2")
    finally:
        order_changed.connect(on_order_changed, dispatch_uid="webhooks.order_changed")
    assert len(with_hook) == len(without_hook)
    assert not WebhookEvent.objects.exists() and not WebhookDelivery.objects.exists()
    assert subscriptions.subscribed_types(merchant.pk) == frozenset()


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_added_after_orders_gets_the_next_one_at_once(merchant, api) -> None:
    from .receiver import start

    receiver = start()
    try:
        listing = make_listing(merchant, quota=5)
        api.post("/api/v1/orders", order_body(listing.pk, buyer="x"), format="json")  # caches "no endpoints"
        create(api, url=receiver.url, events=["order.created"])
        api.post("/api/v1/orders", order_body(listing.pk, buyer="y"), format="json")
        assert len(receiver.requests) == 1
        pk = WebhookEndpoint.objects.get().pk
        api.patch(f"{ENDPOINTS}/{pk}", {"is_active": False}, format="json")
        api.post("/api/v1/orders", order_body(listing.pk, buyer="z"), format="json")
        assert len(receiver.requests) == 1
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


@pytest.mark.django_db
def test_webhook_endpoints_are_in_the_schema_with_descriptions(anon) -> None:
    schema = anon.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    assert paths["/api/v1/webhook-endpoints"]["post"]["description"]
    assert "secret" in paths["/api/v1/webhook-endpoints"]["post"]["description"]
    assert "400" in paths["/api/v1/webhook-endpoints"]["post"]["responses"]
    assert paths["/api/v1/webhook-deliveries/{id}/replay"]["post"]["description"]
    assert "404" in paths["/api/v1/webhook-deliveries/{id}/replay"]["post"]["responses"]
    assert "/api/v1/webhook-endpoints/{id}/rotate-secret" in paths


@pytest.mark.django_db
def test_error_messages_are_english_by_default_and_chinese_when_asked(api) -> None:
    body = {"url": "ftp://erp.example.com/x", "events": ["order.paid"]}
    assert api.post(ENDPOINTS, body, format="json").json()["message"] == "url: must be an https:// URL with a host"
    zh = api.post(ENDPOINTS, body, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    assert zh["code"] == "invalid_url" and zh["message"] == "url：必须是带主机名的 https:// 网址"


@pytest.mark.django_db(transaction=True)
def test_a_send_that_fails_in_an_unexpected_way_is_a_logged_failed_attempt_not_an_exception(
    settings, merchant, monkeypatch
) -> None:
    """Whatever breaks inside a send (here the HTTP client itself), the attempt is recorded as
    failed, so the retry window applies and a replay answers instead of a 500."""
    import httpx

    from apps.webhooks.services import send

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise UnicodeError("label empty or too long")

    monkeypatch.setattr(httpx.Client, "post", broken)
    endpoint = WebhookEndpoint.objects.create(merchant=merchant, url="https://erp.example.com/x", events=["order.paid"])
    event = WebhookEvent.objects.create(merchant=merchant, type="order.paid", source_key="x", payload={})
    outcome = send(endpoint=endpoint, event=event)
    assert not outcome.succeeded and "UnicodeError" in outcome.error
