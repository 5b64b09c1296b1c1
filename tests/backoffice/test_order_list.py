"""The back office's order list: tabs with counts, search (order no., name, phone written any
way, address), filters (date range, flag, channel, show, listing), money in ¥, tenant walls."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.orders.models import Order, OrderStatus
from apps.orders.services.notes import order_flag_set

from .helpers import body, listed, staff_client

pytestmark = pytest.mark.django_db
S = OrderStatus
URL = "/admin/orders/order/"


@pytest.fixture
def mixed(merchant, other_merchant, make_order):  # type: ignore[no-untyped-def]
    """Orders of this merchant in every tab, plus another merchant's."""
    orders = {
        "pending": make_order(merchant=merchant, body=body(buyer="b-pending", phone="+86 139 1111 0000")),
        "paid": make_order(merchant=merchant, status=S.PAID, body=body(buyer="b-paid", name="李雷")),
        "confirmed": make_order(merchant=merchant, status=S.CONFIRMED),
        "shipped": make_order(merchant=merchant, status=S.SHIPPED),
        "refund": make_order(merchant=merchant, status=S.REFUND_PENDING),
        "held": make_order(merchant=merchant, status=S.ON_HOLD),
        "cancelled": make_order(merchant=merchant, status=S.CANCELLED),
    }
    orders["rival"] = make_order(
        merchant=other_merchant, status=S.PAID, body=body(buyer="rival-1", phone="13911110000", detail="文三路 1 号")
    )
    return orders


def test_tabs_count_each_status_group_of_this_merchant_only(merchant, mixed) -> None:  # type: ignore[no-untyped-def]
    r = staff_client(merchant).get(URL)
    assert r.status_code == 200
    counts = {t["key"]: t["count"] for t in r.context["cl"].tabs}
    assert counts == {"all": 7, "pending_payment": 1, "to_ship": 2, "shipped": 1, "after_sales": 1, "exception": 1}
    body_html = r.content.decode()
    assert 'class="lc-tabs lc-order-tabs"' in body_html and "?tab=to_ship" in body_html


def test_a_tab_lists_its_statuses_and_keeps_the_counts_of_the_others(merchant, mixed) -> None:  # type: ignore[no-untyped-def]
    r = staff_client(merchant).get(URL, {"tab": "to_ship"})
    assert sorted(listed(r)) == sorted([mixed["paid"].public_id, mixed["confirmed"].public_id])
    tabs = {t["key"]: t for t in r.context["cl"].tabs}
    assert tabs["to_ship"]["active"] and not tabs["all"]["active"]
    assert tabs["all"]["count"] == 7 and tabs["exception"]["count"] == 1


def test_tab_counts_follow_the_search_and_filters(merchant, mixed) -> None:  # type: ignore[no-untyped-def]
    r = staff_client(merchant).get(URL, {"q": "李雷"})
    assert listed(r) == [mixed["paid"].public_id]
    counts = {t["key"]: t["count"] for t in r.context["cl"].tabs}
    assert counts["all"] == 1 and counts["to_ship"] == 1 and counts["pending_payment"] == 0


def test_tab_counts_take_one_query(merchant, mixed, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.admin.views.main import ChangeList

    from apps.orders.backoffice import tab_counts

    with django_assert_num_queries(1):
        tab_counts(Order.objects.filter(merchant=merchant))
    assert issubclass(type(staff_client(merchant).get(URL).context["cl"]), ChangeList)


def test_an_unknown_tab_is_refused_not_a_500(merchant, mixed) -> None:  # type: ignore[no-untyped-def]
    r = staff_client(merchant).get(URL, {"tab": "nope"})
    assert r.status_code == 302 and "e=1" in r.url


@pytest.mark.parametrize("written", ["+86 139 1111 0000", "139-1111-0000", "8613911110000", "139 1111 0000"])
def test_phone_search_finds_the_order_however_the_number_is_written(merchant, mixed, written) -> None:  # type: ignore[no-untyped-def]
    r = staff_client(merchant).get(URL, {"q": written})
    assert listed(r) == [mixed["pending"].public_id]  # not the rival's order with the same phone


def test_search_by_the_last_digits_of_a_phone(merchant, mixed) -> None:  # type: ignore[no-untyped-def]
    r = staff_client(merchant).get(URL, {"q": "1110000"})
    assert listed(r) == [mixed["pending"].public_id]


def test_search_by_order_number_exact_and_prefix(merchant, mixed) -> None:  # type: ignore[no-untyped-def]
    no = mixed["shipped"].public_id
    c = staff_client(merchant)
    assert listed(c.get(URL, {"q": no})) == [no]
    assert no in listed(c.get(URL, {"q": no[:-2]}))
    assert listed(c.get(URL, {"q": mixed["rival"].public_id})) == []


def test_search_by_buyer_name_and_buyer_id(merchant, mixed) -> None:  # type: ignore[no-untyped-def]
    c = staff_client(merchant)
    assert listed(c.get(URL, {"q": "李"})) == [mixed["paid"].public_id]
    assert listed(c.get(URL, {"q": "b-paid"})) == [mixed["paid"].public_id]


def test_search_by_address_across_its_parts(merchant, make_order) -> None:  # type: ignore[no-untyped-def]
    far = make_order(
        merchant=merchant,
        body=body(buyer="x1", province="广东省", city="深圳市", district="南山区", detail="科技园 8 栋"),
    )
    make_order(merchant=merchant, body=body(buyer="x2"))
    c = staff_client(merchant)
    assert listed(c.get(URL, {"q": "深圳市南山区"})) == [far.public_id]  # city and district read as one
    assert listed(c.get(URL, {"q": "科技园"})) == [far.public_id]
    assert listed(c.get(URL, {"q": "广东 科技园"})) == [far.public_id]  # every word must match
    assert listed(c.get(URL, {"q": "广东 文三路"})) == []


def test_created_date_range_in_the_shop_time_zone(merchant, make_order) -> None:  # type: ignore[no-untyped-def]
    old, new = make_order(merchant=merchant), make_order(merchant=merchant)
    today = timezone.localtime().date()
    Order.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    c = staff_client(merchant)
    assert listed(c.get(URL, {"created_from": today.isoformat()})) == [new.public_id]
    ten = (today - timedelta(days=10)).isoformat()
    assert listed(c.get(URL, {"created_from": ten, "created_to": ten})) == [old.public_id]
    assert sorted(listed(c.get(URL, {"created_to": today.isoformat()}))) == sorted([old.public_id, new.public_id])
    r = c.get(URL, {"created_from": "2026-13-45"})
    assert r.status_code == 302 and "e=1" in r.url
    page = c.get(URL, {"created_from": today.isoformat()}).content.decode()
    assert 'type="date"' in page and f'value="{today.isoformat()}"' in page


def test_show_counts_facets_work_with_the_custom_filters(merchant, make_order) -> None:  # type: ignore[no-untyped-def]
    make_order(merchant=merchant, status=S.PAID)
    r = staff_client(merchant).get(URL, {"_facets": "True", "tab": "to_ship", "created_from": "2020-01-01"})
    assert r.status_code == 200 and len(listed(r)) == 1


def test_filters_by_flag_channel_show_and_listing(merchant, make_order) -> None:  # type: ignore[no-untyped-def]
    a, b = make_order(merchant=merchant), make_order(merchant=merchant)
    order_flag_set(order=a, user=None, colour="red")
    c = staff_client(merchant)
    assert listed(c.get(URL, {"flag": "red"})) == [a.public_id]
    assert listed(c.get(URL, {"flag": "none"})) == [b.public_id]
    assert sorted(listed(c.get(URL, {"channel": "api"}))) == sorted([a.public_id, b.public_id])
    assert listed(c.get(URL, {"session__id__exact": a.session_id})) == [a.public_id]
    assert listed(c.get(URL, {"listing": b.listing_id})) == [b.public_id]
    page = c.get(URL).content.decode()
    assert "lc-flag lc-flag--red" in page


def test_money_shows_in_yuan_and_statuses_as_labelled_badges(merchant, make_order) -> None:  # type: ignore[no-untyped-def]
    make_order(merchant=merchant, price="1059.90")
    page = staff_client(merchant).get(URL).content.decode()
    assert "¥1,059.90" in page
    assert 'class="lc-badge lc-badge--pending_payment">Awaiting payment<' in page


def test_the_list_in_chinese(merchant, make_order) -> None:  # type: ignore[no-untyped-def]
    make_order(merchant=merchant, status=S.PAID)
    page = staff_client(merchant, language="zh-hans").get(URL).content.decode()
    for text in ("待支付", "待发货", "已发货", "售后", "异常", "已支付", "导出 CSV", "订单"):
        assert text in page, text


def test_bulk_actions_keep_their_names(merchant, make_order) -> None:  # type: ignore[no-untyped-def]
    paid = make_order(merchant=merchant, status=S.PAID)
    c = staff_client(merchant)
    r = c.post(URL, {"action": "confirm_orders", "_selected_action": [paid.pk]})
    assert r.status_code == 302
    paid.refresh_from_db()
    assert paid.status == S.CONFIRMED
    r = c.post(URL, {"action": "cancel_orders", "_selected_action": [paid.pk]})
    paid.refresh_from_db()
    assert paid.status == S.REFUND_PENDING
