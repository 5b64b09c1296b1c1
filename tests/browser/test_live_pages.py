"""Buyer and merchant pages in real headless Chromium against a real daphne server."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal
from unittest import mock

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from apps.catalog import services as catalog
from apps.catalog.models import Listing, LiveSession
from apps.merchants import services as merchants
from apps.orders.models import Order
from apps.orders.placement.links import status_path, status_token
from apps.orders.services import payments
from apps.orders.services.transitions import order_cancel

from ..factories import make_token, order_body
from ..realtime.conftest import place
from .conftest import post_json, shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BUYER = {"name": "王小明", "phone": "13800001001", "province": "浙江省", "city": "杭州市", "district": "西湖区"}


def show_with(merchant, *items) -> tuple[LiveSession, list[Listing]]:  # type: ignore[no-untyped-def]
    """A live show with listings: (name, variant, list price, flash price, quota, limit)."""
    show = catalog.session_create(
        merchant=merchant, title="年货节直播专场", streamer="小雅", platforms=["storefront"], scheduled_at=None
    )
    listings = []
    for i, (name, variant, list_price, price, quota, limit) in enumerate(items):
        product = catalog.product_create(merchant=merchant, name=name)
        sku = catalog.sku_create(
            merchant=merchant,
            product=product,
            code=f"SKU-{show.pk}-{i}",
            name=variant,
            price=Decimal(list_price),
            on_hand=quota + 20,
        )
        listing = catalog.listing_create(
            merchant=merchant, session=show, sku=sku, price=Decimal(price), quota=quota, per_buyer_limit=limit
        )
        listings.append(catalog.listing_open(listing=listing))
    show.refresh_from_db()
    return show, listings


def notify_paid(live_url: str, order: Order, txn: str) -> int:
    """The payment provider, from another client: a signed notification to the webhook."""
    body = json.dumps(
        {
            "order": order.public_id,
            "transaction_id": txn,
            "amount": str(order.total),
            "paid_at": "2026-11-24T20:00:00+08:00",
        }
    ).encode()
    ts = str(int(time.time()))
    status, _ = post_json(
        live_url + "/api/v1/payments/notify", body, {"X-Timestamp": ts, "X-Signature": payments.sign(body, ts)}
    )
    return status


def fill_buyer(page, detail: str = "文三路 100 号 3 幢 1202 室") -> None:  # type: ignore[no-untyped-def]
    for field, value in BUYER.items():
        page.fill(f"#id_{field}", value)
    page.fill("#id_detail", detail)


def open_show_dashboard(page, show, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    """Log in on the dashboard, open the show's live page and wait until it is live."""
    page.goto("/dashboard/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.click(f'a.btn[href="/dashboard/sessions/{show.pk}/"]')
    expect_live(page)


def expect_live(page) -> None:  # type: ignore[no-untyped-def]
    expect(page.locator("[data-live-state]")).to_have_attribute("data-live-state", "live")


def buy_now(page, listing: Listing) -> None:  # type: ignore[no-untyped-def]
    """Click "Buy now" and wait for what it does: the item is picked in the form below and, once
    the smooth scroll is under way (350 ms), the empty name field takes the focus.

    Filling the form before that focus moves races it: Playwright's ``fill`` focuses a field and
    inserts the text in a second step, so a focus moving in between sends the text to the name
    field, a required field stays empty and the form comes back with errors instead of an order
    (a busy machine makes the fills slow enough to meet the timer)."""
    page.click(f'[data-buy="{listing.pk}"]')
    expect(page.locator(f'input[name=listing][value="{listing.pk}"]')).to_be_checked()
    expect(page.locator("#id_name")).to_be_focused()


def submit_order(page) -> None:  # type: ignore[no-untyped-def]
    """Submit the storefront form and wait for the order's status page."""
    page.click("[data-action=place-order]")
    status_page = re.compile(r"/o/o[0-9a-f]+/\?t=")
    try:
        page.wait_for_url(status_page)
    except PlaywrightTimeoutError:
        problems = page.locator("[data-error-code], .field-error").all_inner_texts()
        raise AssertionError(f"no status page after submitting: at {page.url}, the page says {problems}") from None


# --- buyer ----------------------------------------------------------------------------------------------
def test_buyer_orders_in_storefront_then_sees_paid_without_reload(new_page, live_url, merchant):
    _, (tea, _) = show_with(
        merchant,
        ("云南高山普洱茶饼 357g", "2019 年春茶", "168.00", "99.00", 200, 2),
        ("手工羊绒围巾", "烟灰色", "399.00", "259.00", 80, 1),
    )
    page = new_page()
    page.goto("/live/acme/")
    expect_live(page)
    expect(page.locator(f'[data-listing="{tea.pk}"] [data-field=stock]')).to_have_text("仅剩 200 件")
    shot(page, "storefront")

    buy_now(page, tea)
    page.click('[data-step="1"]')  # 2 units: the buyer limit
    fill_buyer(page)
    submit_order(page)
    expect(page.locator("[data-field=status-label]")).to_have_text("待支付")
    expect(page.locator("[data-field=countdown]")).to_have_text(re.compile(r"^1[45]:\d\d$"))
    expect_live(page)
    order = Order.objects.get()
    assert order.total == Decimal("198.00")
    assert order.channel == "storefront"
    assert order.buyer.external_id == "phone:13800001001"
    shot(page, "status-pending")

    page.evaluate("window.__sameDocument = true")
    assert notify_paid(live_url, order, "wx-pay-0001") == 200
    expect(page.locator("[data-field=status-label]")).to_have_text("已支付")
    expect(page.locator("[data-field=hint]")).to_contain_text("支付成功")
    expect(page.locator("[data-list=timeline] .step")).to_have_count(2)
    expect(page.locator("[data-action=pay]")).to_be_hidden()
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    assert page.errors == []
    shot(page, "status-paid")


def test_second_buyer_sees_sold_out_when_the_quota_is_gone(new_page, merchant):
    _, (crab, scarf) = show_with(
        merchant,
        ("阳澄湖大闸蟹礼盒 8 只", "公 4.0 两 / 母 3.0 两", "588.00", "388.00", 1, 1),
        ("手工羊绒围巾", "烟灰色", "399.00", "259.00", 80, 1),
    )
    watcher = new_page()  # buyer B, watching the show
    watcher.goto("/live/acme/")
    expect_live(watcher)
    late = new_page(js=False)  # buyer C, who filled the form before it sold out
    late.goto(f"/live/acme/?listing={crab.pk}")
    fill_buyer(late, "文二路 8 号")
    late.fill("#id_phone", "13900002002")

    first = new_page()  # buyer A takes the last unit
    first.goto("/live/acme/")
    buy_now(first, crab)
    fill_buyer(first)
    submit_order(first)

    card = watcher.locator(f'[data-listing="{crab.pk}"]')
    expect(card).to_have_class(re.compile(r"\bis-sold-out\b"))
    expect(card.locator("[data-field=stock]")).to_have_text("已抢光")
    expect(card.locator("[data-buy]")).to_have_attribute("aria-disabled", "true")
    expect(watcher.locator(f'input[name=listing][value="{crab.pk}"]')).to_be_disabled()
    expect(watcher.locator(f'[data-listing="{scarf.pk}"] [data-field=stock]')).to_have_text("仅剩 80 件")
    shot(watcher, "storefront-sold-out")

    late.click("[data-action=place-order]")
    alert = late.locator("[data-error-code=sold_out]")
    expect(alert).to_contain_text("已抢光")
    assert Order.objects.count() == 1
    shot(late, "storefront-sold-out-message")


def test_status_page_on_a_phone_recovers_from_a_dropped_connection(new_page, merchant):
    _, (tea,) = show_with(merchant, ("云南高山普洱茶饼 357g", "2019 年春茶", "168.00", "99.00", 200, 2))
    order = place(tea, buyer="phone-buyer", quantity=2)
    page = new_page(viewport={"width": 390, "height": 844}, mobile=True)
    page.goto(status_path(order))
    expect_live(page)
    expect(page.locator("[data-field=countdown]")).to_have_text(re.compile(r"^1[45]:\d\d$"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the page scrolls sideways on a phone"
    for action in ("pay", "cancel-open"):
        box = page.locator(f"[data-action={action}]").bounding_box()
        assert box is not None and box["width"] >= 300 and box["height"] >= 44  # thumb-sized
    shot(page, "status-phone")

    page.evaluate("window.__orderPage.socket.ws.close()")  # the network drops
    banner = page.locator(".reconnect-banner")
    expect(banner).to_be_visible()
    expect(page.locator("[data-live-state]")).to_have_attribute("data-live-state", "reconnecting")
    shot(page, "status-phone-reconnecting")
    order_cancel(order=order, actor="buyer", reason="No longer needed", by_buyer=True)  # while away

    expect(page.locator("[data-field=status-label]")).to_have_text("已取消")
    expect(page.locator("[data-field=cancel-reason]")).to_have_text("不想要了")
    expect(banner).to_be_hidden()
    expect_live(page)
    expect(page.locator("[data-action=pay]")).to_be_hidden()
    shot(page, "status-phone-cancelled")


def test_forged_and_expired_links_get_a_clear_page(new_page, merchant):
    _, (tea,) = show_with(merchant, ("云南高山普洱茶饼 357g", "2019 年春茶", "168.00", "99.00", 20, 2))
    order = place(tea)
    page = new_page(viewport={"width": 390, "height": 844}, mobile=True)
    response = page.goto(f"/o/{order.public_id}/?t=1xVzin:forged-signature-value")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("订单链接无效")
    shot(page, "status-link-invalid")
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 40 * 86400):
        old = status_token(order.public_id)
    response = page.goto(f"/o/{order.public_id}/?t={old}")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("订单链接已过期")


def test_storefront_switches_to_english(new_page, merchant):
    show_with(merchant, ("手工羊绒围巾", "烟灰色", "399.00", "259.00", 80, 1))
    page = new_page()
    page.goto("/live/acme/")
    expect(page.locator("[data-buy] [data-field=buy-label]")).to_have_text("立即抢购")
    page.click(".lang-switch button[value=en]")
    expect(page.locator("[data-buy] [data-field=buy-label]")).to_have_text("Buy now")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect_live(page)
    expect(page.locator("[data-field=stock]")).to_have_text("80 left")


# --- merchant ----------------------------------------------------------------------------------------------
def test_dashboard_counts_and_stock_move_when_orders_are_placed_elsewhere(new_page, live_url, merchant):
    show, (tea, scarf) = show_with(
        merchant,
        ("云南高山普洱茶饼 357g", "2019 年春茶", "168.00", "99.00", 200, 2),
        ("手工羊绒围巾", "烟灰色", "399.00", "259.00", 80, 1),
    )
    merchants.staff_create(merchant=merchant, username="alice", password="pw-123456789")
    token = make_token(merchant)
    page = new_page(viewport={"width": 1440, "height": 900})
    open_show_dashboard(page, show, "alice", "pw-123456789")
    expect(page.locator('[data-kpi="orders"]')).to_have_text("0")
    expect(page.locator(f'[data-listing-row="{tea.pk}"] [data-left]')).to_have_text("200")

    placed = []
    for i, (listing, qty) in enumerate([(tea, 2), (tea, 1), (scarf, 1)]):  # a streamer tool, over the API
        status, data = post_json(
            live_url + "/api/v1/orders",
            json.dumps(order_body(listing.pk, buyer=f"viewer-{i}", quantity=qty)).encode(),
            {"Authorization": f"Token {token}", "Idempotency-Key": f"k-{i}"},
        )
        assert status == 201, data
        placed.append(data["id"])
    expect(page.locator('[data-kpi="orders"]')).to_have_text("3")
    expect(page.locator('[data-kpi="unpaid"]')).to_have_text("3")
    expect(page.locator(f'[data-listing-row="{tea.pk}"] [data-left]')).to_have_text("197")
    expect(page.locator(f'[data-listing-row="{scarf.pk}"] [data-left]')).to_have_text("79")
    expect(page.locator("[data-feed] .feed-row")).to_have_count(3)
    expect(page.locator("[data-feed] .feed-row").first).to_have_attribute("data-order", placed[-1])

    assert notify_paid(live_url, Order.objects.get(public_id=placed[0]), "alipay-0001") == 200
    expect(page.locator('[data-kpi="paid"]')).to_have_text("1")
    expect(page.locator('[data-kpi="unpaid"]')).to_have_text("2")
    expect(page.locator('[data-kpi="gmv"]')).to_have_text("¥198.00")
    expect(page.locator(f'[data-feed] [data-order="{placed[0]}"]')).to_have_attribute("data-status", "paid")
    assert page.locator("[data-chart] rect.bar").count() == 30
    assert page.errors == []
    shot(page, "dashboard")
