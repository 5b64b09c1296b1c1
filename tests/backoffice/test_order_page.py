"""The back office's order page: readable at a glance, only the actions valid now (through the
transition service), notes and flags, no form that pretends to save, tenant walls."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from apps.orders.models import Order, OrderEvent, OrderFlag, OrderNote, OrderStatus
from apps.orders.services.transitions import orders_expire_due

from .helpers import body, staff_client

pytestmark = pytest.mark.django_db
S = OrderStatus


def page_url(order: Order, tail: str = "") -> str:
    return f"/admin/orders/order/{order.pk}/change/{tail}" if not tail else f"/admin/orders/order/{order.pk}/{tail}"


def texts(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_page_shows_badge_postal_address_lines_timeline_and_payment(merchant, make_order) -> None:  # type: ignore[no-untyped-def]
    order = make_order(
        merchant=merchant,
        status=S.CONFIRMED,
        price="59.90",
        body=body(buyer="b1", name="王小明", phone="+86 139 1111 0000", detail="文三路 100 号 3 幢"),
    )
    r = staff_client(merchant).get(page_url(order))
    assert r.status_code == 200
    page = r.content.decode()
    assert 'class="lc-badge lc-badge--confirmed" data-status="confirmed">Confirmed<' in page
    assert "浙江省 杭州市 西湖区 文三路 100 号 3 幢" in page  # a postal line, not a JSON dict
    assert "{&#x27;name&#x27;" not in page and "{'name'" not in page
    assert "13911110000" in page  # staff see the full phone
    line = order.lines.select_related("sku__product").get()
    assert line.sku.product.name in page and line.sku.code in page and "¥59.90" in page
    timeline = [e["text"] for e in r.context["timeline"]]
    assert timeline == ["Buyer placed the order", "Paid", "Confirmed by the merchant"]
    assert "OrderLine object" not in page and "pending_payment" not in page.split("<body", 1)[1].split("lc-badge--")[0]


def test_the_page_in_chinese_says_the_timeline_in_words(merchant, make_order) -> None:  # type: ignore[no-untyped-def]
    order = make_order(merchant=merchant)
    Order.objects.filter(pk=order.pk).update(pay_by=order.created_at)
    assert orders_expire_due() == 1
    r = staff_client(merchant, language="zh-hans").get(page_url(order))
    page = r.content.decode()
    assert "买家下单" in page and "超时未支付，自动取消" in page and "系统" in page and "已取消" in page
    assert [e["actor"] for e in r.context["timeline"]][-1] == "系统"


def test_no_save_button_and_a_post_to_the_page_changes_nothing(merchant, make_order) -> None:  # type: ignore[no-untyped-def]
    order = make_order(merchant=merchant, status=S.PAID)
    c = staff_client(merchant)
    page = c.get(page_url(order)).content.decode()
    assert 'name="_save"' not in page and "_continue" not in page
    r = c.post(page_url(order), {"status": "shipped", "total": "0.01", "carrier": "SF", "_save": "1"})
    assert r.status_code == 405
    fresh = Order.objects.get(pk=order.pk)
    assert (fresh.status, fresh.total, fresh.carrier, fresh.version) == (S.PAID, order.total, "", order.version)


@pytest.mark.parametrize(
    ("status", "buttons"),
    [
        (S.PENDING_PAYMENT, {"cancel"}),
        (S.PAID, {"confirm", "cancel"}),
        (S.ON_HOLD, set()),  # decided in the risk review (its approve / reject), not here
        (S.CONFIRMED, {"cancel"}),
        (S.SHIPPED, set()),
        (S.CANCELLED, set()),
        (S.REFUNDED, set()),
    ],
)
def test_only_the_actions_valid_now_are_buttons(merchant, make_order, status, buttons) -> None:  # type: ignore[no-untyped-def]
    order = make_order(merchant=merchant, status=status)
    r = staff_client(merchant).get(page_url(order))
    assert {a.key for a in r.context["actions"]} == buttons
    page = r.content.decode()
    for key in ("confirm", "cancel"):
        assert (f'data-action="{key}"' in page) == (key in buttons)


def test_confirm_goes_through_the_state_machine_and_the_ledger(merchant, make_order) -> None:  # type: ignore[no-untyped-def]
    order = make_order(merchant=merchant, status=S.PAID)
    c = staff_client(merchant)
    r = c.post(page_url(order, "act/confirm/"))
    assert r.status_code == 302 and r.url == page_url(order)
    order.refresh_from_db()
    assert order.status == S.CONFIRMED
    last = OrderEvent.objects.filter(order=order).order_by("-seq").first()
    assert last is not None and last.to_status == S.CONFIRMED and last.actor.startswith("staff:")
    assert any("Confirmed" in t for t in texts(r))
    timeline = c.get(page_url(order)).context["timeline"]
    assert timeline[-1]["actor"] == "Staff: mei"


def test_cancel_of_a_paid_order_becomes_a_refund(merchant, make_order) -> None:  # type: ignore[no-untyped-def]
    order = make_order(merchant=merchant, status=S.PAID)
    staff_client(merchant).post(page_url(order, "act/cancel/"))
    order.refresh_from_db()
    assert order.status == S.REFUND_PENDING and order.refund_due == order.total


def test_an_invalid_action_changes_nothing_and_says_why(merchant, make_order) -> None:  # type: ignore[no-untyped-def]
    order = make_order(merchant=merchant)  # pending payment: cannot be confirmed
    before = OrderEvent.objects.filter(order=order).count()
    r = staff_client(merchant).post(page_url(order, "act/confirm/"))
    assert r.status_code == 302
    fresh = Order.objects.get(pk=order.pk)
    assert fresh.status == S.PENDING_PAYMENT and fresh.version == order.version
    assert OrderEvent.objects.filter(order=order).count() == before
    assert any("not possible" in t for t in texts(r))


def test_actions_need_a_post_with_csrf(merchant, make_order) -> None:  # type: ignore[no-untyped-def]
    from django.test import Client

    from apps.merchants import services as merchants

    order = make_order(merchant=merchant, status=S.PAID)
    c = staff_client(merchant)
    assert c.get(page_url(order, "act/confirm/")).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(merchants.staff_create(merchant=merchant, username="mei", password=""))
    assert strict.post(page_url(order, "act/confirm/")).status_code == 403
    order.refresh_from_db()
    assert order.status == S.PAID


def test_notes_newest_first_and_flags(merchant, make_order) -> None:  # type: ignore[no-untyped-def]
    order = make_order(merchant=merchant)
    c = staff_client(merchant)
    c.post(page_url(order, "note/"), {"text": "买家要求周末送货"})
    c.post(page_url(order, "note/"), {"text": "=HYPERLINK(1)"})
    assert list(OrderNote.objects.filter(order=order).values_list("text", flat=True)) == [
        "=HYPERLINK(1)",
        "买家要求周末送货",
    ]
    r = c.post(page_url(order, "note/"), {"text": "x" * 501})
    assert any("at most 500" in t for t in texts(r)) and OrderNote.objects.filter(order=order).count() == 2
    r = c.post(page_url(order, "note/"), {"text": "   "})
    assert OrderNote.objects.filter(order=order).count() == 2
    c.post(page_url(order, "flag/"), {"colour": "red"})
    c.post(page_url(order, "flag/"), {"colour": "red"})
    assert list(OrderFlag.objects.filter(order=order).values_list("colour", flat=True)) == ["red"]
    c.post(page_url(order, "flag/"), {"colour": "pink"})
    assert OrderFlag.objects.get(order=order).colour == "red"
    page = c.get(page_url(order)).content.decode()
    assert "买家要求周末送货" in page and page.index("HYPERLINK") < page.index("买家要求周末送货")
    assert 'value="red" checked' in page
    c.post(page_url(order, "flag/"), {"colour": ""})
    assert OrderFlag.objects.get(order=order).colour == ""
    assert Order.objects.get(pk=order.pk).version == order.version  # notes and flags leave the order row alone


def test_tenant_walls_on_page_actions_notes_and_flags(merchant, other_merchant, make_order) -> None:  # type: ignore[no-untyped-def]
    theirs = make_order(merchant=other_merchant, status=S.PAID)
    c = staff_client(merchant)
    assert c.get(page_url(theirs)).status_code == 404
    for tail, data in (
        ("act/confirm/", {}),
        ("act/cancel/", {}),
        ("note/", {"text": "hi"}),
        ("flag/", {"colour": "red"}),
    ):
        assert c.post(page_url(theirs, tail), data).status_code == 404, tail
    theirs.refresh_from_db()
    assert theirs.status == S.PAID
    assert not OrderNote.objects.exists() and not OrderFlag.objects.exists()


def test_role_hooks_hide_buttons_and_refuse_posts(merchant, make_order, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from django.contrib import admin

    order = make_order(merchant=merchant, status=S.PAID)
    model_admin = admin.site._registry[Order]
    monkeypatch.setattr(model_admin, "has_confirm_permission", lambda request, obj=None: False, raising=False)
    monkeypatch.setattr(model_admin, "has_note_permission", lambda request, obj=None: False, raising=False)
    c = staff_client(merchant)
    r = c.get(page_url(order))
    assert {a.key for a in r.context["actions"]} == {"cancel"}
    assert 'name="text"' not in r.content.decode()
    assert c.post(page_url(order, "act/confirm/")).status_code == 403
    assert c.post(page_url(order, "note/"), {"text": "x"}).status_code == 403
    order.refresh_from_db()
    assert order.status == S.PAID
