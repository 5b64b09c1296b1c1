"""The Content-Security-Policy in a real browser: every kind of page loads under it with no
violation reported, and a violation would be seen (the check is not blind)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from apps.merchants import services as merchants
from apps.orders.placement.links import status_path

from ..realtime.conftest import place
from .test_live_pages import expect_live, show_with

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def visit(page, path: str) -> None:  # type: ignore[no-untyped-def]
    response = page.goto(path)
    assert response is not None and response.ok, path
    assert "default-src 'self'" in response.headers["content-security-policy"], path


def test_pages_load_under_the_csp_with_no_violation(new_page, merchant):  # type: ignore[no-untyped-def]
    show, (tea,) = show_with(merchant, ("云南高山普洱茶饼 357g", "2019 年春茶", "168.00", "99.00", 4, 2))
    order = place(tea)
    merchants.staff_create(merchant=merchant, username="alice", password="pw-123456789")
    page = new_page()

    visit(page, "/admin/login/")
    visit(page, f"/live/{merchant.slug}/")
    expect_live(page)  # the websocket connected under connect-src
    visit(page, status_path(order))
    expect_live(page)
    visit(page, f"/dashboard/sessions/{show.pk}/")  # the login form, then the dashboard
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-123456789")
    page.click("input[type=submit]")
    page.wait_for_url(f"**/dashboard/sessions/{show.pk}/")
    expect_live(page)
    visit(page, "/admin/")
    expect(page.locator("#lc-to-handle")).to_be_visible()
    visit(page, "/api/docs/")
    expect(page.locator(".swagger-ui .info")).to_be_visible()
    assert page.csp_violations == []
    assert page.errors == []


def test_storefront_stock_bars_are_drawn_by_the_nonced_style_without_javascript(new_page, merchant):  # type: ignore[no-untyped-def]
    _, (tea,) = show_with(merchant, ("手工羊绒围巾", "烟灰色", "399.00", "259.00", 4, 1))
    place(tea)  # 1 of 4 sold
    page = new_page(js=False)  # no script to set the width: only the server-rendered <style> can
    visit(page, f"/live/{merchant.slug}/")
    ratio = page.locator(f'[data-listing="{tea.pk}"] .stock-bar > span').evaluate(
        "e => e.getBoundingClientRect().width / e.parentElement.getBoundingClientRect().width"
    )
    assert abs(ratio - 0.25) < 0.01
    assert page.csp_violations == []


def test_a_csp_violation_is_seen_by_the_check(new_page, merchant):  # type: ignore[no-untyped-def]
    page = new_page()
    visit(page, "/admin/login/")
    with pytest.raises(PlaywrightError):  # the inline script is refused
        page.add_script_tag(content="window.__inline = 1")
    page.wait_for_timeout(200)
    assert page.evaluate("window.__inline") is None
    assert any("Content Security Policy" in v for v in page.csp_violations)
    page.csp_violations.clear()  # seen: the fixture's own check must not fail this test


def test_a_cjk_font_is_there_so_chinese_pages_render_as_text():
    """``./test`` installs Debian's fonts-noto-cjk beside chromium: without a CJK font every
    Chinese character of a screenshot is an empty box."""
    import subprocess

    from livecommerce.launcher import CJK_FONT

    assert CJK_FONT.exists(), f"{CJK_FONT} is missing: run ./test as root, or apt-get install fonts-noto-cjk"
    matched = subprocess.run(
        ["fc-match", "-f", "%{family}", "sans-serif:lang=zh-cn"], capture_output=True, text=True, check=True
    ).stdout
    assert "CJK" in matched, matched
