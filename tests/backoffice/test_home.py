"""The back office's home page and ``/``."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from apps.catalog import services as catalog
from apps.merchants import services as merchants
from apps.orders.models import OrderStatus
from tests.factories import make_session

pytestmark = pytest.mark.django_db


def _staff_client(merchant, name="mei"):  # type: ignore[no-untyped-def]
    c = Client()
    c.force_login(merchants.staff_create(merchant=merchant, username=name, password="pw-123456789"))
    return c


def test_root_is_not_a_404_it_lists_live_shows_and_the_merchant_login(merchant) -> None:  # type: ignore[no-untyped-def]
    live = catalog.session_start(session=make_session(merchant, title="今晚八点 年货节"))
    r = Client().get("/")
    assert r.status_code == 200
    body = r.content.decode()
    assert "今晚八点 年货节" in body
    assert f"/live/{merchant.slug}/{live.pk}/" in body
    assert "/admin/login/" in body


def test_root_sends_staff_to_the_back_office(merchant) -> None:  # type: ignore[no-untyped-def]
    r = _staff_client(merchant).get("/")
    assert r.status_code == 302 and r.url == "/admin/"


def test_home_page_counts_orders_per_tab_and_lists_low_stock_of_this_merchant_only(
    merchant, other_merchant, make_order
) -> None:  # type: ignore[no-untyped-def]
    make_order(merchant=merchant)  # pending payment
    make_order(merchant=merchant, status=OrderStatus.PAID)
    make_order(merchant=merchant, status=OrderStatus.CONFIRMED)
    make_order(merchant=merchant, status=OrderStatus.ON_HOLD)
    for _ in range(4):
        make_order(merchant=other_merchant, status=OrderStatus.PAID)
    with override_settings(LANGUAGE_CODE="en"):
        r = _staff_client(merchant).get("/admin/", HTTP_ACCEPT_LANGUAGE="en")
    assert r.status_code == 200
    tabs = {t.key: n for t, n in r.context["tabs"]}
    assert tabs == {"pending_payment": 1, "to_ship": 2, "shipped": 0, "after_sales": 0, "exception": 1}
    assert r.context["orders_today"] == 4
    body = r.content.decode()
    assert "?tab=to_ship" in body and "/dashboard/" in body and f"/live/{merchant.slug}/" in body
    low_codes = {s.sku.code for s in r.context["low_stock"]}
    assert low_codes and all(s.sku.merchant_id == merchant.pk for s in r.context["low_stock"])
    assert all(s.available <= 10 for s in r.context["low_stock"])
