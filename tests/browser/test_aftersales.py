"""After-sales (售后) in real Chromium: the buyer asks to send a shipped order back from the status
page (on a phone, 390×844, and a laptop, 1366×768; in English and Chinese), sees the request and
withdraws it; a merchant's staff works the admin's refund queue in Chinese (open requests only,
its own shop only): bulk-approves one, rejects one through the reject page (the note is required)
and marks a return's goods received, which puts the units back on the shelf. Screenshots:
test-artifacts/screenshots/aftersales-*.png."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from apps.catalog import services as catalog
from apps.catalog.models import Listing
from apps.fulfilment import refunds
from apps.fulfilment.models import RefundRequest
from apps.inventory.models import Stock, StockMovement
from apps.merchants import services as merchants
from apps.orders.models import Order, OrderEvent, OrderStatus
from apps.orders.placement.links import status_path
from apps.orders.services import payments
from apps.orders.services.transitions import order_transition

from ..factories import MerchantFactory
from ..realtime.conftest import place
from .conftest import shot
from .test_backoffice_orders import LAPTOP, PHONE, log_in, no_horizontal_overflow

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
S = OrderStatus
R = RefundRequest.Status


def tea_listing(merchant, *, on_hand: int = 30) -> Listing:  # type: ignore[no-untyped-def]
    show = catalog.session_create(
        merchant=merchant, title="双十二茶叶专场", streamer="小雅", platforms=["storefront"], scheduled_at=None
    )
    product = catalog.product_create(merchant=merchant, name="西湖龙井 2026 明前特级")
    sku = catalog.sku_create(
        merchant=merchant,
        product=product,
        code=f"LJ-{merchant.pk}-{show.pk}",
        name="250g 礼盒",
        price=Decimal("268.00"),
        on_hand=on_hand,
    )
    listing = catalog.listing_create(
        merchant=merchant, session=show, sku=sku, price=Decimal("168.00"), quota=on_hand, per_buyer_limit=3
    )
    return catalog.listing_open(listing=listing)


def shipped_order(listing: Listing, buyer: str, quantity: int = 1) -> Order:
    """Placed, paid through the provider's signed notification, confirmed and shipped."""
    order = place(listing, buyer=buyer, quantity=quantity)
    body = json.dumps(
        {
            "order": order.public_id,
            "transaction_id": f"wx-{order.public_id}",
            "amount": str(order.total),
            "paid_at": "2026-12-12T20:00:00+08:00",
        }
    ).encode()
    ts = str(int(time.time()))
    payments.payment_receive(body=body, timestamp=ts, signature=payments.sign(body, ts))
    order.refresh_from_db()
    order = order_transition(order=order, to=S.CONFIRMED, actor="system:test", reason="")
    return order_transition(
        order=order, to=S.SHIPPED, actor="system:test", reason="", carrier="中通快递", tracking_number="ZT7788990011"
    )


# --- the buyer's status page ----------------------------------------------------------------------

WORDS = {
    "en": {
        "open": "Request a refund",
        "return": "Send the goods back and get the money back",
        "sent": "Your request was sent to the shop.",
        "badge": "Awaiting decision",
        "kind": "Return and refund",
        "withdraw": "Withdraw this request",
        "withdrawn": "Withdrawn",
    },
    "zh": {
        "open": "申请退款",
        "return": "退货退款",
        "sent": "您的申请已提交给商家。",
        "badge": "待审核",
        "kind": "退货退款",
        "withdraw": "撤销此申请",
        "withdrawn": "已撤销",
    },
}


@pytest.mark.parametrize(
    ("locale", "lang", "viewport", "size"),
    [
        ("zh-CN", "zh", PHONE, "390"),
        ("zh-CN", "zh", LAPTOP, "1366"),
        ("en-US", "en", PHONE, "390"),
        ("en-US", "en", LAPTOP, "1366"),
    ],
)
def test_the_buyer_asks_to_send_a_shipped_order_back_then_withdraws(  # type: ignore[no-untyped-def]
    new_page, merchant, locale, lang, viewport, size
) -> None:
    words = WORDS[lang]
    merchant.name = "西湖茶庄"
    merchant.save(update_fields=["name"])
    order = shipped_order(tea_listing(merchant), buyer="fan-1", quantity=2)
    mobile = viewport is PHONE
    page = new_page(locale=locale, viewport=viewport, mobile=mobile)
    page.goto(status_path(order))
    section = page.locator("[data-section=aftersales]")
    expect(section).to_be_visible()
    expect(section.locator(".refund")).to_have_count(0)
    form = section.locator(".refund-form")
    expect(form).to_be_hidden()

    opener = section.locator("[data-action=refund-open]")
    expect(opener).to_have_text(words["open"])
    box = opener.bounding_box()
    assert box is not None and box["height"] >= 44  # thumb-sized
    if mobile:
        assert box["width"] >= 300
    opener.click()
    expect(form).to_be_visible()
    form.get_by_label(words["return"]).check()
    form.locator("select[name=reason]").select_option("damaged")
    form.locator("textarea[name=detail]").fill("外箱压坏了，茶叶礼盒变形")
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], "the form scrolls sideways"
    shot(page, f"aftersales-status-form-{lang}-{size}")
    form.locator("[data-action=refund-submit]").click()

    expect(page.locator(".flash")).to_contain_text(words["sent"])
    item = section.locator(".refund")
    expect(item).to_have_count(1)
    refund = RefundRequest.objects.get(order=order)
    assert (refund.kind, refund.source, refund.status) == ("return", "buyer", R.REQUESTED)
    assert refund.amount == Decimal("336.00") and "外箱压坏了" in refund.reason
    expect(item).to_contain_text(words["kind"])
    expect(item).to_contain_text("¥336.00")
    expect(item).to_contain_text(refund.public_id)
    expect(item.locator(".badge")).to_have_text(words["badge"])
    withdraw = item.locator("[data-action=refund-withdraw]")
    expect(withdraw).to_have_text(words["withdraw"])
    expect(section.locator("[data-action=refund-open]")).to_have_count(0)  # one open request per order
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], "the page scrolls sideways"
    assert not page.errors  # type: ignore[attr-defined]
    shot(page, f"aftersales-status-requested-{lang}-{size}")

    withdraw.click()
    expect(item.locator(".badge")).to_have_text(words["withdrawn"])
    expect(item.locator("[data-action=refund-withdraw]")).to_have_count(0)
    expect(section.locator("[data-action=refund-open]")).to_be_visible()  # may ask again
    refund.refresh_from_db()
    assert refund.status == R.WITHDRAWN
    order.refresh_from_db()
    assert order.status == S.SHIPPED and order.refund_due == 0


# --- the admin's refund queue -------------------------------------------------------------------


@pytest.fixture
def queue(merchant):  # type: ignore[no-untyped-def]
    """Staff login ``mei`` of 西湖茶庄; four shipped orders with requests in every state that matters
    to the queue, and a request in another shop."""
    merchant.name = "西湖茶庄"
    merchant.save(update_fields=["name"])
    merchants.staff_create(merchant=merchant, username="mei", password="pw-123456789")
    listing = tea_listing(merchant, on_hand=30)
    made = {}
    for key, buyer, kind, qty, reason in [
        ("lost", "fan-lost", "refund", 1, "未收到货：物流三天没有更新"),
        ("late", "fan-late", "return", 1, "不想要了"),
        ("broken", "fan-broken", "return", 2, "商品破损：外箱压坏"),
        ("gone", "fan-gone", "refund", 1, "拍错了"),
    ]:
        order = shipped_order(listing, buyer=buyer, quantity=qty)
        made[key], _ = refunds.refund_request(order=order, kind=kind, source="buyer", actor="buyer", reason=reason)
    refunds.refund_approve(refund=made["broken"], actor="staff:test")  # the goods are on their way back
    refunds.refund_withdraw(refund=made["gone"], actor="buyer")  # no longer open
    rival = MerchantFactory(slug="rival", name="Rival")
    rival_order = shipped_order(tea_listing(rival), buyer="rival-fan")
    made["rival"], _ = refunds.refund_request(order=rival_order, kind="refund", source="buyer", actor="buyer")
    for refund in made.values():
        refund.refresh_from_db()
    assert (made["broken"].status, made["gone"].status) == (R.AWAITING_RETURN, R.WITHDRAWN)
    return made


def row(page, refund: RefundRequest):  # type: ignore[no-untyped-def]
    return page.locator("#result_list tbody tr").filter(has_text=refund.public_id)


def run_action(page, refunds_: list[RefundRequest], action: str) -> None:  # type: ignore[no-untyped-def]
    for refund in refunds_:
        page.locator(f"#result_list input.action-select[value='{refund.pk}']").check()
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")


def test_staff_work_the_refund_queue_approve_reject_with_a_note_and_goods_received(  # type: ignore[no-untyped-def]
    new_page, queue
) -> None:
    lost, late, broken = queue["lost"], queue["late"], queue["broken"]
    page = new_page(locale="zh-CN", viewport=LAPTOP)
    log_in(page, "/admin/fulfilment/refundrequest/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(3)  # open ones, of this shop only
    for refund in (lost, late, broken):
        expect(row(page, refund)).to_have_count(1)
    expect(page.locator("#result_list")).not_to_contain_text(queue["gone"].public_id)
    expect(page.locator("#result_list")).not_to_contain_text(queue["rival"].public_id)
    expect(row(page, lost)).to_contain_text("待审核")
    expect(row(page, broken)).to_contain_text("待买家退货")
    assert no_horizontal_overflow(page), "the refund queue scrolls sideways at 1366 px"
    shot(page, "aftersales-admin-queue")

    run_action(page, [lost], "approve")  # bulk: the one selected
    expect(page.locator("ul.messagelist .success")).to_have_text("已同意 1 个。")
    expect(row(page, lost)).to_contain_text("退款中")  # money owed now: still open until it is paid
    lost.refresh_from_db()
    assert lost.status == R.REFUNDING
    order = Order.objects.get(pk=lost.order_id)
    assert (order.status, order.refund_due) == (S.REFUND_PENDING, lost.amount)  # the whole order

    run_action(page, [late], "reject")
    expect(page.locator("h1")).to_have_text("驳回退款申请")
    chosen = page.locator(".lc-panel tbody tr")
    expect(chosen).to_have_count(1)
    expect(chosen).to_contain_text(late.public_id)
    expect(chosen).to_contain_text("不想要了")
    reject = page.locator("[data-action=reject]")
    reject.click()  # no note
    expect(page.locator(".errorlist")).to_have_text("该字段是必填项。")
    page.fill("textarea[name=note]", "   ")  # only spaces: no note either
    reject.click()
    expect(page.locator(".errorlist")).to_have_text("该字段是必填项。")
    expect(chosen).to_contain_text(late.public_id)  # still the request chosen in the queue
    late.refresh_from_db()
    assert late.status == R.REQUESTED
    assert no_horizontal_overflow(page)
    shot(page, "aftersales-admin-reject")
    page.fill("textarea[name=note]", "商品已拆封并影响二次销售，不支持无理由退货")
    reject.click()
    expect(page.locator("ul.messagelist .success")).to_have_text("已驳回 1 个。")
    expect(row(page, late)).to_have_count(0)  # decided: off the open queue
    late.refresh_from_db()
    assert (late.status, late.decision_note) == (R.REJECTED, "商品已拆封并影响二次销售，不支持无理由退货")
    buyer = new_page(locale="zh-CN", viewport=PHONE, mobile=True)  # the buyer sees why, on the phone
    buyer.goto(status_path(Order.objects.get(pk=late.order_id)))
    mine = buyer.locator("[data-section=aftersales] .refund")
    expect(mine.locator(".badge")).to_have_text("已驳回")
    expect(mine).to_contain_text("商家说明: 商品已拆封并影响二次销售，不支持无理由退货")
    expect(buyer.locator("[data-action=refund-open]")).to_be_visible()  # may ask again
    assert buyer.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(buyer, "aftersales-status-rejected-zh-390")

    stock = Stock.objects.get(sku_id=Order.objects.get(pk=broken.order_id).lines.get().sku_id)
    on_hand = stock.on_hand
    run_action(page, [broken], "receive")
    expect(page.locator("ul.messagelist .success")).to_have_text("已收货入库 1 个。")
    stock.refresh_from_db()
    assert stock.on_hand == on_hand + 2  # both units back on the shelf
    movement = StockMovement.objects.filter(sku_id=stock.sku_id).order_by("-id").first()
    assert movement is not None and (movement.kind, movement.on_hand_delta) == ("return", 2)
    broken.refresh_from_db()
    assert broken.status == R.REFUNDING and broken.received_at is not None
    expect(row(page, broken)).to_contain_text("退款中")
    shot(page, "aftersales-admin-queue-after")

    page.click("#changelist-filter a[href*='status=all']")
    expect(rows).to_have_count(4)  # everything of this shop, the withdrawn and the rejected too
    assert OrderEvent.objects.filter(order_id=late.order_id, reason__contains="rejected").count() == 1
    assert not page.errors  # type: ignore[attr-defined]
