"""The back office's home page and ``/`` in real headless Chromium, in zh-hans and English, on a
laptop (1366×768) and a phone (390×844). Screenshots: test-artifacts/screenshots/backoffice-*."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from apps.catalog import services as catalog
from apps.merchants import services as merchants

from ..factories import make_listing, make_token, order_body
from .conftest import post_json, shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = {"laptop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}


def shop(merchant, live_url):  # type: ignore[no-untyped-def]
    merchant.name = "小雅的年货铺"
    merchant.save()
    listing = make_listing(merchant, quota=3, on_hand=8, price="99.00")
    catalog.session_start(session=listing.session)
    token = make_token(merchant)
    for i in range(2):
        status, data = post_json(
            live_url + "/api/v1/orders",
            json.dumps(order_body(listing.pk, buyer=f"fan-{i}")).encode(),
            {"Authorization": f"Token {token}", "Idempotency-Key": f"home-{i}"},
        )
        assert status == 201, data
    merchants.staff_create(merchant=merchant, username="xiaoya", password="pw-123456789")
    return listing


def login(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/admin/")
    page.fill("#id_username", "xiaoya")
    page.fill("#id_password", "pw-123456789")
    page.click("input[type=submit]")


@pytest.mark.parametrize("size", ["laptop", "phone"])
def test_home_page_in_chinese_then_english(new_page, live_url, merchant, size):  # type: ignore[no-untyped-def]
    shop(merchant, live_url)
    page = new_page(locale="zh-CN", viewport=SIZES[size], mobile=size == "phone")
    login(page)
    expect(page.locator("#lc-to-handle")).to_contain_text("待处理订单")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.locator('a[href$="?tab=pending_payment"] .lc-kpi-value')).to_have_text("2")
    expect(page.locator("#lc-low-stock")).to_contain_text("库存预警")
    expect(page.locator("#lc-shows + table .lc-badge--live")).to_have_count(1)
    if size == "laptop":  # nothing wider than the window
        assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    shot(page, f"backoffice-home-zh-{size}")

    page.click(".lc-lang button[value=en]")
    expect(page.locator("#lc-to-handle")).to_contain_text("Orders to handle")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    shot(page, f"backoffice-home-en-{size}")


def test_root_lists_the_show_on_air_and_leads_to_its_storefront(new_page, live_url, merchant):  # type: ignore[no-untyped-def]
    listing = shop(merchant, live_url)
    page = new_page(locale="zh-CN", viewport=SIZES["phone"], mobile=True)
    page.goto("/")
    expect(page.locator(".home-show")).to_contain_text(listing.session.title)
    expect(page.locator(".home-head")).to_contain_text("商家登录")
    shot(page, "backoffice-root-zh-phone")
    page.click(".home-show")
    expect(page).to_have_url(f"{live_url}/live/{merchant.slug}/{listing.session.pk}/")
