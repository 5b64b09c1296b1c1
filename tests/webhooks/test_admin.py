"""The webhook screens of the back office: events as checkboxes, the secret shown once after
adding, the delivery log read-only, all in Chinese for a zh-hans merchant."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from apps.merchants.services import staff_create
from apps.webhooks.models import WebhookDelivery, WebhookEndpoint
from apps.webhooks.services import endpoint_create, event_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(merchant) -> Client:  # type: ignore[no-untyped-def]
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(staff_create(merchant=merchant, username="ops", password="pw-long-enough-1"))
    return client


def test_add_endpoint_with_event_checkboxes_shows_the_secret_once(staff_client, merchant) -> None:
    page = staff_client.get("/admin/webhooks/webhookendpoint/add/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'type="checkbox" name="events" value="order.paid"' in html
    assert "订单已支付" in html and "库存不足" in html and "商品已售罄" in html
    assert "whsec_" not in html

    r = staff_client.post(
        "/admin/webhooks/webhookendpoint/add/",
        {"url": "https://erp.example.com/hooks", "description": "ERP", "events": ["order.paid", "stock.low"]},
    )
    assert r.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.merchant == merchant and endpoint.events == ["order.paid", "stock.low"]
    shown = [str(m) for m in get_messages(r.wsgi_request)]
    assert any(endpoint.secret in m and "签名密钥" in m for m in shown)
    assert endpoint.secret in staff_client.get(r["Location"]).content.decode()  # the page after adding
    change = staff_client.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/")
    assert change.status_code == 200 and endpoint.secret not in change.content.decode()


def test_bad_url_and_no_events_are_form_errors(staff_client, settings) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    r = staff_client.post("/admin/webhooks/webhookendpoint/add/", {"url": "https://10.0.0.1/x", "events": []})
    assert r.status_code == 200
    errors = r.context["adminform"].form.errors
    assert "url" in errors and "events" in errors
    assert not WebhookEndpoint.objects.exists()


def test_delivery_log_is_read_only_and_in_chinese(staff_client, merchant) -> None:
    endpoint = endpoint_create(merchant_id=merchant.pk, url="https://erp.example.com/hooks", events=["order.paid"])
    event_record(merchant_id=merchant.pk, type="order.paid", source_key="o1", data={"object": {"id": "o1"}})
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    listing = staff_client.get("/admin/webhooks/webhookdelivery/")
    assert listing.status_code == 200
    text = listing.content.decode()
    assert "推送记录" in text and "订单已支付" in text and "待发送" in text and "重新推送所选记录" in text
    page = staff_client.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert "&quot;order.paid&quot;" in page.content.decode()  # the request body
    assert staff_client.get("/admin/webhooks/webhookdelivery/add/").status_code == 403
