"""The buyer's status page shows a browser notification when the order is paid, shipped or
delivered and the buyer allowed notifications; it asks for that permission only on a click.
Real headless Chromium against the real daphne server; ``window.Notification`` is wrapped by an
init script so the test sees each notification the page constructs."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.orders.placement.links import status_path
from apps.orders.services.transitions import order_transition

from ..realtime.conftest import pay, place
from .conftest import shot
from .test_live_pages import expect_live, show_with

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECORD_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  window.__notified = [];
  window.__permissionRequests = 0;
  function Recorded(title, options) {
    window.__notified.push({ title: title, body: (options || {}).body, tag: (options || {}).tag });
    return new Real(title, options);
  }
  Object.defineProperty(Recorded, "permission", { get: () => Real.permission });
  Recorded.requestPermission = function (callback) {
    window.__permissionRequests += 1;
    return Real.requestPermission(callback);
  };
  window.Notification = Recorded;
})();
"""


def test_paid_shipped_and_delivered_show_a_browser_notification_when_allowed(new_page, live_url, merchant):
    _, (tea,) = show_with(merchant, ("云南高山普洱茶饼 357g", "2019 年春茶", "168.00", "99.00", 20, 2))
    order = place(tea, buyer="notified-buyer")
    page = new_page(viewport={"width": 390, "height": 844}, mobile=True)
    page.context.grant_permissions(["notifications"], origin=live_url)
    page.context.add_init_script(RECORD_NOTIFICATIONS)
    page.goto(status_path(order))
    expect_live(page)
    assert page.evaluate("Notification.permission") == "granted"
    expect(page.locator("[data-action=notify]")).to_be_hidden()  # nothing to ask
    expect(page.locator("[data-field=notify-state]")).to_contain_text("已开启通知")
    assert page.evaluate("window.__notified") == []  # nothing happened yet

    pay(order)
    expect(page.locator("[data-field=status-label]")).to_have_text("已支付")
    page.wait_for_function("window.__notified.length === 1")
    shot(page, "status-notification-paid")
    order = order_transition(order=order, to="confirmed", actor="merchant")
    order = order_transition(order=order, to="shipped", actor="merchant", carrier="中通快递", tracking_number="7800001")
    expect(page.locator("[data-field=tracking]")).to_have_text("7800001")
    order_transition(order=order, to="delivered", actor="carrier")
    expect(page.locator("[data-field=status-label]")).to_have_text("已签收")
    page.wait_for_function("window.__notified.length === 3")
    notified = page.evaluate("window.__notified")
    body = f"订单 {order.public_id}"
    assert notified == [
        {"title": "已付款", "body": body, "tag": "order-paid"},
        {"title": "已发货", "body": body, "tag": "order-shipped"},
        {"title": "已签收", "body": body, "tag": "order-delivered"},
    ]  # "confirmed" is not one buyers are notified of
    assert page.evaluate("window.__permissionRequests") == 0
    assert not page.errors  # type: ignore[attr-defined]
    shot(page, "status-notification-delivered")


def test_permission_is_asked_for_only_on_a_click_and_nothing_is_shown_without_it(new_page, merchant):
    _, (tea,) = show_with(merchant, ("云南高山普洱茶饼 357g", "2019 年春茶", "168.00", "99.00", 20, 2))
    order = place(tea, buyer="undecided-buyer")
    page = new_page(viewport={"width": 390, "height": 844}, mobile=True)
    page.context.add_init_script(RECORD_NOTIFICATIONS)
    page.goto(status_path(order))
    expect_live(page)
    assert page.evaluate("Notification.permission") == "default"
    button = page.locator("[data-action=notify]")
    expect(button).to_be_visible()
    expect(button).to_have_text("付款、发货、签收时通知我")
    shot(page, "status-notify-button")
    assert page.evaluate("window.__permissionRequests") == 0  # never asked on its own

    pay(order)
    expect(page.locator("[data-field=status-label]")).to_have_text("已支付")
    assert page.evaluate("window.__notified") == []  # not allowed: nothing shown

    button.click()
    page.wait_for_function("window.__permissionRequests === 1")
