"""The report pages in real headless Chromium, in zh-hans and English, on a laptop (1366×768) and a
phone (390×844): the show list and a post-show report with its charts (Chart.js, vendored). The
figures on the page are the rollup's. Screenshots: test-artifacts/screenshots/report-*."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from apps.catalog.models import LiveSession
from apps.merchants import services as merchants
from apps.reports.rollups import rollup_session

from ..reports.test_session_report import make_history
from .conftest import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SIZES = {"laptop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}


def login(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/admin/")
    page.fill("#id_username", "analyst")
    page.fill("#id_password", "pw-123456789")
    page.click("input[type=submit]")


@pytest.mark.parametrize("size", ["laptop", "phone"])
def test_a_post_show_report_with_its_charts_in_chinese_then_english(new_page, live_url, merchant, size):  # type: ignore[no-untyped-def]
    session = make_history(merchant, seed=41, n_orders=120)
    LiveSession.objects.filter(pk=session.pk).update(title="年货节专场", streamer="小雅")
    report = rollup_session(session.pk)
    assert report is not None
    merchants.staff_create(merchant=merchant, username="analyst", password="pw-123456789")
    page = new_page(locale="zh-CN", viewport=SIZES[size], mobile=size == "phone")
    login(page)
    page.goto("/reports/")
    expect(page.locator(".report-list tbody tr")).to_have_count(1)
    expect(page.locator(".report-list")).to_contain_text("年货节专场")
    shot(page, f"report-index-zh-{size}")

    page.click("text=年货节专场")
    expect(page.locator("body")).to_have_attribute("data-charts", "drawn")
    expect(page.locator('[data-kpi="gmv"]')).to_have_text(f"¥{report.figures['gmv']}")
    expect(page.locator('[data-kpi="orders"]')).to_have_text(str(report.figures["orders"]))
    expect(page.locator("h2", has_text="按分钟下单")).to_be_visible()
    for chart in ("minutes", "curves", "regions", "channels", "buyers"):  # each canvas was drawn on
        drawn = page.evaluate(
            'n => { const c = document.querySelector(`[data-chart="${n}"]`); return c.width > 0 && '
            "c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some(v => v !== 0); }",
            chart,
        )
        assert drawn, chart
    assert Decimal(report.figures["gmv"]) > 0
    if size == "laptop":  # nothing wider than the window
        assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    shot(page, f"report-session-zh-{size}")

    page.click(".lang-switch button[value=en]")
    expect(page.locator("h2", has_text="Orders by minute")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-charts", "drawn")
    shot(page, f"report-session-en-{size}")
    assert not page.errors, page.errors


def test_another_shops_report_is_not_found(new_page, live_url, merchant, other_merchant):  # type: ignore[no-untyped-def]
    theirs = make_history(other_merchant, seed=5, n_orders=5)
    rollup_session(theirs.pk)
    merchants.staff_create(merchant=merchant, username="analyst", password="pw-123456789")
    page = new_page(locale="en-US", viewport=SIZES["laptop"])
    login(page)
    response = page.goto(f"/reports/sessions/{theirs.pk}/")
    assert response is not None and response.status == 404
    page.goto("/reports/")
    expect(page.locator(".report-list tbody")).to_contain_text("No reports yet")


def test_the_time_slot_page_recommends_only_slots_with_enough_shows(new_page, live_url, merchant):  # type: ignore[no-untyped-def]
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from ..reports.test_slots import show

    cn = ZoneInfo("Asia/Shanghai")
    for week in range(3):
        show(merchant, datetime(2026, 10, 3 + 7 * week, 20, 0, tzinfo=cn), "2", [(10, 5, "500.00"), (70, 3, "300.00")])
    show(merchant, datetime(2026, 10, 6, 9, 0, tzinfo=cn), "1", [(5, 9, "5000.00")], streamer="小美")
    merchants.staff_create(merchant=merchant, username="analyst", password="pw-123456789")
    for locale, size in (("zh-CN", "laptop"), ("zh-CN", "phone")):
        page = new_page(locale=locale, viewport=SIZES[size], mobile=size == "phone")
        login(page)
        page.goto("/reports/slots/")
        expect(page.locator("[data-recommended] li")).to_have_count(2)  # Saturday 20:00 and 21:00
        expect(page.locator("[data-recommended] li").first).to_contain_text("周六 20:00–21:00")
        expect(page.locator("[data-too-few]")).to_contain_text("周二 09:00")
        expect(page.locator("[data-heatmap] td.heat-9")).to_have_count(1)
        shot(page, f"report-slots-zh-{size}")
        assert not page.errors, page.errors
