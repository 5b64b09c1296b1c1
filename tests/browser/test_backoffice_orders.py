"""The back office's order list and order page in real Chromium, in Chinese and English, on a
laptop (1366×768) and a phone (390×844): tabs with counts, a search by a phone written
``+86 139 1111 0000``, the order page and an action. Screenshots: test-artifacts/screenshots/."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from playwright.sync_api import expect
from rest_framework.test import APIClient

from apps.catalog import services as catalog
from apps.merchants import services as merchants
from apps.orders.models import Order, OrderStatus
from apps.orders.services import payments
from apps.orders.services.notes import order_flag_set, order_note_add
from apps.orders.services.transitions import order_transition

from ..factories import image_upload, make_token
from .conftest import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
S = OrderStatus
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
BUYERS = [
    # (external id, name, phone as typed, province, city, district, detail, status)
    ("dy-10001", "王小明", "+86 139 1111 0000", "浙江省", "杭州市", "西湖区", "文三路 100 号 3 幢 1202 室", S.PAID),
    ("dy-10002", "李娜", "138 0000 2002", "上海市", "上海市", "浦东新区", "世纪大道 88 号", S.PENDING_PAYMENT),
    ("dy-10003", "张伟", "13700003003", "广东省", "深圳市", "南山区", "科技园南区 8 栋", S.CONFIRMED),
    ("dy-10004", "刘洋", "13600004004", "北京市", "北京市", "朝阳区", "建国路 1 号", S.SHIPPED),
    ("dy-10005", "陈静", "13500005005", "四川省", "成都市", "武侯区", "天府大道 666 号", S.REFUND_PENDING),
    ("dy-10006", "赵磊", "13400006006", "江苏省", "南京市", "鼓楼区", "中山路 18 号", S.ON_HOLD),
]
PATHS = {
    S.PENDING_PAYMENT: [],
    S.PAID: [S.PAID],
    S.CONFIRMED: [S.PAID, S.CONFIRMED],
    S.SHIPPED: [S.PAID, S.CONFIRMED, S.SHIPPED],
    S.REFUND_PENDING: [S.PAID, S.REFUND_PENDING],
    S.ON_HOLD: [S.PAID, S.ON_HOLD],
}


@pytest.fixture
def shop(merchant):  # type: ignore[no-untyped-def]
    """A show with two products on air and an order in every tab, placed through the API."""
    merchants.staff_create(merchant=merchant, username="mei", password="pw-123456789")
    show = catalog.session_create(
        merchant=merchant, title="年货节直播专场", streamer="小雅", platforms=["storefront"], scheduled_at=None
    )
    listings = []
    products = [("西湖龙井 2026 明前特级", "250g 礼盒", "59.90"), ("羊绒围巾", "燕麦色", "199.00")]
    for i, (name, variant, price) in enumerate(products):
        product = catalog.product_create(merchant=merchant, name=name)
        catalog.product_image_add(product=product, image=image_upload(f"p{i}.png", color=("#2e7d32", "#c8a27a")[i]))
        sku = catalog.sku_create(
            merchant=merchant, product=product, code=f"LJ-{i + 1:03d}", name=variant, price=Decimal(price), on_hand=100
        )
        listing = catalog.listing_create(
            merchant=merchant, session=show, sku=sku, price=Decimal(price), quota=50, per_buyer_limit=2
        )
        listings.append(catalog.listing_open(listing=listing))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {make_token(merchant)}")
    orders = {}
    for i, (ext, name, phone, province, city, district, detail, status) in enumerate(BUYERS):
        address = {"name": name, "phone": phone, "province": province, "city": city, "district": district}
        r = api.post(
            "/api/v1/orders",
            {
                "listing": listings[i % 2].pk,
                "quantity": 1 + i % 2,
                "buyer": {"external_id": ext, "name": name, "phone": phone},
                "shipping_address": {**address, "detail": detail},
            },
            format="json",
            HTTP_IDEMPOTENCY_KEY=f"k-{ext}",
        )
        assert r.status_code == 201, r.content
        order = Order.objects.get(public_id=r.json()["id"])
        for to in PATHS[status]:
            if to == S.PAID:  # paid the way production is: the provider's signed notification
                notice = json.dumps(
                    {
                        "order": order.public_id,
                        "transaction_id": f"wx-{ext}",
                        "amount": str(order.total),
                        "paid_at": "2026-11-24T20:00:00+08:00",
                    }
                ).encode()
                ts = str(int(time.time()))
                payments.payment_receive(body=notice, timestamp=ts, signature=payments.sign(notice, ts))
                order.refresh_from_db()
                continue
            order = order_transition(
                order=order,
                to=to,
                actor="payment" if to == S.PAID else "system:test",
                reason="",
                carrier="顺丰速运",
                tracking_number="SF1234567890" if to == S.SHIPPED else "",
            )
        orders[ext] = order
    wang = orders["dy-10001"]
    order_note_add(order=wang, author=None, text="买家要求周末送货，礼盒需加贺卡。")
    order_flag_set(order=wang, user=None, colour="red")
    return orders


def log_in(page, next_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"/admin/login/?next={next_url}")
    page.fill("#id_username", "mei")
    page.fill("#id_password", "pw-123456789")
    page.click("input[type=submit]")


def no_horizontal_overflow(page) -> bool:  # type: ignore[no-untyped-def]
    """Neither the page nor any table box on it scrolls sideways (a table that overflows inside
    its own scrolling box hides its last columns just the same)."""
    return page.evaluate(
        """() => document.documentElement.scrollWidth <= window.innerWidth
            && [...document.querySelectorAll('#changelist .results, .lc-scroll')]
                 .every((el) => el.scrollWidth <= el.clientWidth + 1)"""
    )


@pytest.mark.parametrize(
    ("locale", "lang", "viewport", "size"),
    [
        ("zh-CN", "zh", LAPTOP, "1366"),
        ("en-US", "en", LAPTOP, "1366"),
        ("zh-CN", "zh", PHONE, "390"),
        ("en-US", "en", PHONE, "390"),
    ],
)
def test_order_list_tabs_and_phone_search_then_the_order_page(new_page, shop, locale, lang, viewport, size) -> None:  # type: ignore[no-untyped-def]
    mobile = viewport is PHONE
    page = new_page(locale=locale, viewport=viewport, mobile=mobile)
    log_in(page, "/admin/orders/order/")
    tabs = page.locator(".lc-order-tabs .lc-tab")
    expect(tabs).to_have_count(6)
    expect(page.locator('.lc-tab[data-tab="to_ship"] .lc-tab-count')).to_have_text("2")
    expect(page.locator('.lc-tab[data-tab="exception"] .lc-tab-count')).to_have_text("1")
    expect(page.locator('.lc-tab[data-tab="to_ship"]')).to_contain_text("待发货" if lang == "zh" else "To ship")
    expect(page.locator("#result_list tbody tr")).to_have_count(6)
    if not mobile:
        assert no_horizontal_overflow(page), "the order list scrolls sideways at 1366 px"
    shot(page, f"backoffice-orders-{lang}-{size}")

    page.fill("#searchbar", "+86 139 1111 0000")
    page.press("#searchbar", "Enter")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    wang = shop["dy-10001"]
    expect(rows.first).to_contain_text(wang.public_id)
    expect(rows.first).to_contain_text("¥59.90")
    expect(rows.first.locator(".lc-badge--paid")).to_have_text("已支付" if lang == "zh" else "Paid")
    expect(page.locator('.lc-tab[data-tab="all"] .lc-tab-count')).to_have_text("1")  # counts follow the search
    if not mobile:
        assert no_horizontal_overflow(page)
    shot(page, f"backoffice-orders-search-phone-{lang}-{size}")

    rows.first.locator(f'a:has-text("{wang.public_id}")').click()
    expect(page.locator(".lc-order-head .lc-badge")).to_have_text("已支付" if lang == "zh" else "Paid")
    expect(page.locator(".lc-address-line")).to_have_text("浙江省 杭州市 西湖区 文三路 100 号 3 幢 1202 室")
    expect(page.locator(".lc-lines")).to_contain_text("西湖龙井 2026 明前特级")
    thumb = page.locator(".lc-lines img.lc-thumb")
    expect(thumb).to_have_count(1)
    page.wait_for_function(  # the SKU's picture loads (from MEDIA_URL, under the CSP)
        "() => { const i = document.querySelector('.lc-lines img.lc-thumb'); return i.complete && i.naturalWidth > 0; }"
    )
    expect(page.locator(".lc-timeline li")).to_have_count(2)
    expect(page.locator(".lc-timeline")).to_contain_text("买家下单" if lang == "zh" else "Buyer placed the order")
    expect(page.locator(".lc-notes")).to_contain_text("买家要求周末送货")
    expect(page.locator("#lc-payments + .lc-scroll tbody tr")).to_contain_text("wx-dy-10001")
    expect(page.locator('[data-action="confirm"]')).to_be_visible()
    assert page.locator('input[name="_save"]').count() == 0
    if not mobile:
        assert no_horizontal_overflow(page), "the order page scrolls sideways at 1366 px"
    shot(page, f"backoffice-order-page-{lang}-{size}")

    page.once("dialog", lambda d: d.accept())
    page.click('[data-action="confirm"]')
    expect(page.locator(".lc-order-head .lc-badge")).to_have_text("已确认" if lang == "zh" else "Confirmed")
    expect(page.locator("ul.messagelist .success")).to_be_visible()
    expect(page.locator('[data-action="confirm"]')).to_have_count(0)
    assert Order.objects.get(pk=wang.pk).status == S.CONFIRMED
    assert page.errors == []
