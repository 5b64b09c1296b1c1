"""The demand-forecast page in real headless Chromium, in zh-hans and English, on a laptop and a
phone: pre-filled with the next recommended slot and the last show's SKUs, the per-SKU forecast
table and its chart (Chart.js, vendored), the restock and featuring suggestions and how they did in
the backtest; a bad plan gets form errors. Screenshots: test-artifacts/screenshots/report-forecast-*."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from apps.inventory.models import Stock
from apps.merchants import services as merchants
from apps.reports.suggestions import plan_defaults

from .conftest import shot
from .test_reports import SIZES, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("size", ["laptop", "phone"])
def test_the_forecast_page_in_chinese_then_english(new_page, live_url, merchant, size):  # type: ignore[no-untyped-def]
    call_command("generate_history", "--merchant", merchant.slug, "--orders", "9000", "--shows", "36", "--seed",
                 "11", "--weeks", "16", "-v", "0")  # fmt: skip
    defaults = plan_defaults(merchant_id=merchant.pk)
    assert defaults is not None
    Stock.objects.filter(sku__merchant=merchant, sku__code__in=defaults.skus[:3]).update(on_hand=5)
    merchants.staff_create(merchant=merchant, username="analyst", password="pw-123456789")
    page = new_page(locale="zh-CN", viewport=SIZES[size], mobile=size == "phone")
    login(page)
    page.goto("/reports/")
    if size == "laptop":  # the top bar's link (a phone's top bar hides its links)
        page.click('.topnav a[href="/reports/forecast/"]')
    else:
        page.goto("/reports/forecast/")
    expect(page.locator("body")).to_have_attribute("data-charts", "drawn")
    expect(page.locator('[data-table="forecast"] tbody tr')).to_have_count(len(defaults.skus))
    expect(page.locator('[data-table="restock"] tbody tr')).not_to_have_count(0)
    expect(page.locator('[data-table="restock"] tbody tr').first).to_contain_text("+")
    expect(page.locator("[data-featuring] li")).to_have_count(8)
    expect(page.locator('[data-table="backtest"]')).to_be_visible()
    drawn = page.evaluate(
        "() => { const c = document.querySelector('[data-chart=\"forecast\"]'); return c.width > 0 && "
        "c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some(v => v !== 0); }"
    )
    assert drawn
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    shot(page, f"report-forecast-zh-{size}")

    page.fill("[data-sku-search]", defaults.skus[0])  # the search narrows the SKU list
    expect(page.locator("[data-sku-option]:visible")).to_have_count(1)
    page.fill("#id_hours", "40")
    page.click(".plan-form button[type=submit]")
    expect(page.locator('[data-error="hours"]')).to_be_visible()
    expect(page.locator("[data-forecast-message]")).to_be_visible()
    shot(page, f"report-forecast-error-zh-{size}")

    page.click(".lang-switch button[value=en]")
    expect(page.locator("h2", has_text="Plan a show")).to_be_visible()
    expect(page.locator("h2", has_text="How such suggestions did")).to_be_visible()
    assert not page.errors, page.errors
