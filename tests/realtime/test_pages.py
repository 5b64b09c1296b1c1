"""The pages behind the websockets: status page, storefront, dashboard (Django test client)."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.catalog import services as catalog
from apps.orders.models import Order, Payment
from apps.orders.placement.links import check_status_token, status_path, status_token

from ..factories import MerchantFactory, make_listing, make_session
from .conftest import place

pytestmark = pytest.mark.django_db(transaction=True)


def buy_form(shown, client: Client, **over):  # type: ignore[no-untyped-def]
    """The storefront's form for listing ``shown`` as a browser posts it (with the page's token)."""
    page = client.get(f"/live/{shown.merchant.slug}/{shown.session_id}/")
    token = page.context["form_token"]
    data = {
        "listing": shown.pk,
        "quantity": 1,
        "name": "王小明",
        "phone": "13800001001",
        "province": "浙江省",
        "city": "杭州市",
        "district": "西湖区",
        "detail": "文三路 100 号",
        "form_token": token,
    }
    data.update(over)
    return data


def zh() -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE="zh-CN")


# --- status page -----------------------------------------------------------------------------------
def test_status_page_shows_the_order_and_keeps_its_token_to_itself(merchant):
    order = place(make_listing(merchant, quota=5, price="19.90"))
    r = zh().get(status_path(order))
    assert r.status_code == 200
    assert r["Referrer-Policy"] == "same-origin"
    assert r["Cache-Control"].startswith("max-age=0")
    body = r.content.decode()
    assert "待支付" in body and "¥19.90" in body and order.public_id in body
    assert f"/ws/orders/{order.public_id}/?t=" in body


@pytest.mark.parametrize(
    ("token", "title"),
    [("", "订单链接无效"), ("1xVzin:forged", "订单链接无效"), ("expired", "订单链接已过期")],
)
def test_status_page_refuses_bad_links_with_a_clear_403(merchant, token, title):
    order = place(make_listing(merchant, quota=5))
    if token == "expired":
        with mock.patch("django.core.signing.time.time", return_value=time.time() - 40 * 86400):
            token = status_token(order.public_id)
    r = zh().get(f"/o/{order.public_id}/", {"t": token})
    assert r.status_code == 403
    assert title in r.content.decode()


def test_status_page_for_a_valid_token_of_no_order_is_404():
    r = zh().get(f"/o/onotthere/?t={status_token('onotthere')}")
    assert r.status_code == 404


def test_buyer_cancels_from_the_status_page_once(merchant):
    listing = make_listing(merchant, quota=5)
    order = place(listing)
    token = status_path(order).split("t=", 1)[1]
    client = zh()
    r = client.post(f"/o/{order.public_id}/cancel/", {"t": token, "reason": "wrong_details"})
    assert r.status_code == 303 and r["Location"].startswith(f"/o/{order.public_id}/?t=")
    order.refresh_from_db()
    assert order.status == "cancelled"
    assert order.cancel_reason == "Wrong address or details"
    listing.refresh_from_db()
    assert listing.sold == 0
    page = client.get(r["Location"])
    assert "地址或信息填错了" in page.content.decode()
    again = client.post(f"/o/{order.public_id}/cancel/", {"t": token}, follow=True)
    assert again.status_code == 200
    assert "该订单已无法取消" in again.content.decode()


def test_cancel_and_pay_need_the_links_token(merchant):
    order = place(make_listing(merchant, quota=5))
    for action in ("cancel", "pay"):
        r = zh().post(f"/o/{order.public_id}/{action}/", {"t": "1xVzin:forged"})
        assert r.status_code == 403
    order.refresh_from_db()
    assert order.status == "pending_payment"


def test_sandbox_pay_button_goes_through_the_signed_payment_path(merchant):
    order = place(make_listing(merchant, quota=5, price="25.00"))
    token = status_path(order).split("t=", 1)[1]
    r = zh().post(f"/o/{order.public_id}/pay/", {"t": token})
    assert r.status_code == 303
    order.refresh_from_db()
    assert order.status == "paid"
    payment = Payment.objects.get(order=order)
    assert payment.outcome == "applied" and str(payment.amount) == "25.00"
    assert payment.transaction_id.startswith("sandbox-")
    assert zh().post(f"/o/{order.public_id}/pay/", {"t": token}).status_code == 303  # a double click
    assert Payment.objects.filter(order=order).count() == 1


def test_sandbox_pay_is_off_in_production(merchant, settings):
    settings.PAYMENT_SANDBOX = False
    settings.DEBUG = False
    order = place(make_listing(merchant, quota=5))
    token = status_path(order).split("t=", 1)[1]
    assert zh().post(f"/o/{order.public_id}/pay/", {"t": token}).status_code == 404
    assert 'data-action="pay"' not in zh().get(status_path(order)).content.decode()
    assert not Payment.objects.exists()


# --- storefront ---------------------------------------------------------------------------------------
def test_storefront_shows_the_current_live_show(merchant):
    listing = make_listing(merchant, quota=9, price="88.00")
    r = zh().get("/live/acme/")
    assert r.status_code == 200
    assert r.context["session"].pk == listing.session_id
    body = r.content.decode()
    assert "仅剩 9 件" in body and "¥88.00" in body and "立即抢购" in body


def test_storefront_unknown_shop_is_404_and_a_shop_off_air_says_so(merchant):
    assert zh().get("/live/nobody/").status_code == 404
    MerchantFactory(slug="quiet")
    r = zh().get("/live/quiet/")
    assert r.status_code == 200
    assert "当前没有正在进行的直播" in r.content.decode()


def test_storefront_order_goes_to_its_status_page_and_a_resubmit_is_the_same_order(merchant):
    listing = make_listing(merchant, quota=5, limit=2)
    client = zh()
    data = buy_form(listing, client, quantity=2)
    r = client.post("/live/acme/", data)
    assert r.status_code == 303
    order = Order.objects.get()
    # The link's token carries a timestamp (seconds): compare the path and check the token.
    path, token = r["Location"].split("?t=")
    assert path == status_path(order).split("?t=")[0]
    assert check_status_token(order.public_id, token)
    assert (order.channel, order.total, order.buyer.external_id) == (
        "storefront",
        listing.price * 2,
        "phone:13800001001",
    )
    assert order.shipping_address["city"] == "杭州市"
    again = client.post("/live/acme/", data)  # the same form sent twice
    assert again.status_code == 303 and again["Location"].split("?t=")[0] == path
    assert Order.objects.count() == 1


@pytest.mark.parametrize(
    ("case", "status", "text"),
    [
        ("sold_out", 409, "该商品已被抢光"),
        ("over_limit", 409, "每人限购 1 件"),
        ("closed", 409, "该商品当前不在售卖时间"),
        ("bad_phone", 400, "请输入正确的手机号"),
        ("stale_form", 400, "页面停留时间过长"),
    ],
)
def test_storefront_explains_why_no_order_was_placed(merchant, case, status, text):
    listing = make_listing(merchant, quota=1, limit=1)
    other = make_listing(merchant, quota=5, session=listing.session)
    client = zh()
    over: dict = {}
    if case == "sold_out":
        place(listing, buyer="phone:13900000000")
    elif case == "over_limit":
        listing = other
        place(listing, buyer="phone:13800001001")
    elif case == "closed":
        catalog.listing_close(listing=listing)
        listing.refresh_from_db()
    elif case == "bad_phone":
        over = {"phone": "not a phone"}
    data = buy_form(listing, client, **over)
    if case == "stale_form":
        data["form_token"] = "made-up"
    before = Order.objects.count()
    r = client.post("/live/acme/", data)
    assert r.status_code == status
    assert text in r.content.decode()
    assert Order.objects.count() == before
    assert r.context["form_token"] != data["form_token"]  # the next try is a new order


def test_storefront_refuses_a_listing_of_another_show(merchant):
    mine = make_listing(merchant, quota=5)
    elsewhere = make_listing(merchant, quota=5)  # another show of the same shop
    client = zh()
    data = buy_form(mine, client, listing=elsewhere.pk)
    r = client.post(f"/live/acme/{mine.session_id}/", data)
    assert r.status_code == 404
    assert not Order.objects.exists()


# --- dashboard -------------------------------------------------------------------------------------------
def staff_client(merchant, username: str) -> Client:  # type: ignore[no-untyped-def]
    from apps.merchants import services as merchants

    client = zh()
    client.force_login(merchants.staff_create(merchant=merchant, username=username, password="pw-123456789"))
    return client


def test_dashboard_needs_a_login(merchant):
    r = zh().get("/dashboard/")
    assert r.status_code == 302 and r["Location"].startswith("/admin/login/?next=/dashboard/")


def test_dashboard_lists_and_shows_only_own_shows(merchant, other_merchant):
    mine = make_session(merchant, title="我的直播")
    theirs = make_session(other_merchant, title="别人的直播")
    client = staff_client(merchant, "alice")
    index = client.get("/dashboard/").content.decode()
    assert "我的直播" in index and "别人的直播" not in index
    r = client.get(f"/dashboard/sessions/{mine.pk}/")
    assert r.status_code == 200
    assert r.context["page_data"]["snapshot"]["type"] == "session.snapshot"
    assert client.get(f"/dashboard/sessions/{theirs.pk}/").status_code == 404


def test_dashboard_for_a_login_of_no_shop_is_403():
    user = get_user_model().objects.create_user("drifter", password="pw-123456789", is_staff=True)
    client = zh()
    client.force_login(user)
    r = client.get("/dashboard/")
    assert r.status_code == 403
    assert "该账号未关联店铺" in r.content.decode()
