"""The live dashboard's orders per channel: the storefront and the three sales platforms a show
is sold on, each a row from the start, counted live as orders come in (real headless Chromium
against a real daphne server)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.catalog import services as catalog
from apps.merchants import services as merchants
from apps.orders.services.imports import ImportedOrder, ImportLine, order_import

from ..realtime.conftest import pay, place
from .conftest import shot
from .test_live_pages import open_show_dashboard, show_with

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def platform_order(listing, platform: str, number: int, quantity: int = 1) -> None:  # type: ignore[no-untyped-def]
    """A sales platform's order as the inbox processing imports it (apps.platforms.processing)."""
    order_import(
        imported=ImportedOrder(
            merchant_id=listing.merchant_id,
            channel=platform,
            key=f"{platform}·demo·{number}",
            buyer_external_id=f"{platform}:buyer-{number}",
            buyer_name="王*",
            buyer_phone="138****0001",
            shipping_address={"name": "王*", "province": "浙江省", "city": "杭州市", "detail": "文三路"},
            lines=(
                ImportLine(sku_id=listing.sku_id, quantity=quantity, unit_price=listing.price, listing_id=listing.pk),
            ),
            total=listing.price * quantity,
            session_id=listing.session_id,
        )
    )


def test_dashboard_shows_orders_and_units_per_channel_live(new_page, merchant):  # type: ignore[no-untyped-def]
    show, (tea, scarf) = show_with(
        merchant,
        ("云南高山普洱茶饼 357g", "2019 年春茶", "168.00", "99.00", 200, 5),
        ("手工羊绒围巾", "烟灰色", "399.00", "259.00", 80, 5),
    )
    catalog.session_update(session=show, data={"platforms": ["storefront", "douyin", "kuaishou", "taobao"]})
    pay(place(tea, buyer="viewer-1", quantity=2))
    platform_order(tea, "douyin", 1, quantity=3)
    platform_order(scarf, "douyin", 2)
    platform_order(scarf, "kuaishou", 3)
    merchants.staff_create(merchant=merchant, username="alice", password="pw-123456789")

    page = new_page(viewport={"width": 1366, "height": 900})
    open_show_dashboard(page, show, "alice", "pw-123456789")
    rows = page.locator("[data-channels] tbody tr")
    expect(rows).to_have_count(4)  # every channel the show is sold on, Taobao with no order yet
    assert [r.get_attribute("data-channel-row") for r in rows.all()] == ["storefront", "douyin", "kuaishou", "taobao"]
    expect(page.locator('[data-channel-row="douyin"] [data-channel-orders]')).to_have_text("2")
    expect(page.locator('[data-channel-row="douyin"] [data-channel-units]')).to_have_text("4")
    expect(page.locator('[data-channel-row="storefront"] [data-channel-paid]')).to_have_text("1")
    expect(page.locator('[data-channel-row="taobao"] [data-channel-orders]')).to_have_text("0")

    platform_order(tea, "taobao", 4, quantity=2)  # pulled from the TMC queue while the page is open
    place(scarf, buyer="viewer-2")
    expect(page.locator('[data-channel-row="taobao"] [data-channel-orders]')).to_have_text("1")
    expect(page.locator('[data-channel-row="taobao"] [data-channel-units]')).to_have_text("2")
    expect(page.locator('[data-channel-row="storefront"] [data-channel-orders]')).to_have_text("2")
    expect(page.locator('[data-kpi="orders"]')).to_have_text("6")
    expect(page.locator('[data-channel-row="douyin"] .channel-share')).to_contain_text("33%")
    assert page.locator("[data-channels] th").all_inner_texts()[:4] == ["渠道", "订单数", "已支付", "件数"]
    assert page.errors == []
    shot(page, "dashboard-channels")
