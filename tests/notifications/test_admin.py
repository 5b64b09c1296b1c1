"""SMS settings in the back office: the AccessKey secret is a password input that never shows the
stored value and keeps it when left blank; one account per merchant is a form error; another
merchant's accounts, templates, opt-outs and messages are out of sight; the outbox is read-only."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.merchants.services import staff_create
from apps.notifications.models import SmsAccount, SmsMessage, SmsOptOut

from ..factories import MerchantFactory

pytestmark = pytest.mark.django_db

ADD = "/admin/notifications/smsaccount/add/"


def client_for(merchant, username: str, role: str = "owner") -> Client:  # type: ignore[no-untyped-def]
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(staff_create(merchant=merchant, username=username, password="pw-long-enough-1", role=role))
    return client


def form(**kw: str) -> dict[str, str]:
    return {
        "provider": "aliyun",
        "access_key_id": "LTAI5tAdminKey",
        "access_key_secret": "ADMIN-SMS-SECRET",
        "sign_name": "【直播好物】",
        "api_base_url": "",
        "enabled": "on",
    } | kw


def test_the_secret_is_write_only_kept_when_blank_and_never_rendered(merchant) -> None:
    client = client_for(merchant, "owner-a")
    page = client.get(ADD).content.decode()
    assert 'type="password" name="access_key_secret"' in page and "阿里云短信" in page
    r = client.post(ADD, form())
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    account = SmsAccount.objects.get()
    assert (account.merchant, account.access_key_secret, account.sign_name) == (
        merchant,
        "ADMIN-SMS-SECRET",
        "直播好物",
    )
    change = f"/admin/notifications/smsaccount/{account.pk}/change/"
    html = client.get(change).content.decode()
    assert "ADMIN-SMS-SECRET" not in html and "LTAI5tAdminKey" in html
    r = client.post(change, form(access_key_secret="", sign_name="直播好物2"))
    assert r.status_code == 302
    account.refresh_from_db()
    assert (account.access_key_secret, account.sign_name) == ("ADMIN-SMS-SECRET", "直播好物2")
    # the column holds ciphertext, not the secret
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT access_key_secret FROM notifications_smsaccount WHERE id = %s", [account.pk])
        assert "ADMIN-SMS-SECRET" not in cursor.fetchone()[0]


def test_a_second_account_is_a_form_error_not_a_crash(merchant) -> None:
    client = client_for(merchant, "owner-a")
    assert client.post(ADD, form()).status_code == 302
    r = client.post(ADD, form(access_key_id="LTAI-second"))
    assert r.status_code == 200 and r.context["adminform"].form.errors
    assert SmsAccount.objects.count() == 1


def test_another_merchants_sms_settings_and_messages_are_out_of_sight(merchant, make_sms_world) -> None:
    rival = MerchantFactory(slug="rival", name="Rival")
    mine, theirs = make_sms_world(merchant), make_sms_world(rival)
    client = client_for(merchant, "owner-a")
    r = client.get("/admin/notifications/smsmessage/")
    assert {m.pk for m in r.context["cl"].queryset} == {mine["message"].pk}
    for path in (
        f"/admin/notifications/smsaccount/{theirs['account'].pk}/change/",
        f"/admin/notifications/smsmessage/{theirs['message'].pk}/change/",
        f"/admin/notifications/smsoptout/{theirs['opt_out'].pk}/change/",
    ):
        assert client.get(path).status_code in (302, 403, 404), path
    assert client.get("/admin/notifications/smsmessage/", {"q": "13911112222"}).context["cl"].queryset.count() == 0


def test_the_outbox_is_read_only_for_everyone_who_may_see_it(merchant, make_sms_world) -> None:
    message = make_sms_world(merchant)["message"]
    client = client_for(merchant, "cs-a", role="customer_service")
    page = client.get(f"/admin/notifications/smsmessage/{message.pk}/change/")
    assert page.status_code == 200 and page.context["has_change_permission"] is False
    assert client.get("/admin/notifications/smsmessage/add/").status_code == 403
    assert client.get("/admin/notifications/smsaccount/").status_code == 403  # secrets: the owner's


@pytest.fixture
def make_sms_world():  # type: ignore[no-untyped-def]
    from apps.orders.placement.request import parse_order_request
    from apps.orders.placement.service import order_place

    from ..factories import make_listing, order_body

    def make(merchant):  # type: ignore[no-untyped-def]
        account = SmsAccount.objects.create(
            merchant=merchant, access_key_id=f"LTAI-{merchant.slug}", access_key_secret="x", sign_name="签名"
        )
        req = parse_order_request(order_body(make_listing(merchant).pk))
        order = order_place(req=req, merchant_id=None, idempotency_key=None, channel="storefront").order
        phone = "13911112222" if merchant.slug == "rival" else "13800000000"
        message = SmsMessage.objects.create(
            merchant=merchant, order=order, event="paid", phone=phone, template_code="SMS_1", status="sent"
        )
        opt_out = SmsOptOut.objects.create(merchant=merchant, phone=phone)
        return {"account": account, "message": message, "opt_out": opt_out}

    return make
