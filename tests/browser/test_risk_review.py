"""The risk review in real Chromium, in Chinese, on a laptop (1366×768): the review queue holding a
small account farm (five buyers on one device, shipping to one drop point written several ways)
and a genuine fan held by mistake; a farm order's page with its linked buyers; Reject on that
one and Approve on the fan, each changing the order's status. Screenshots:
test-artifacts/screenshots/risk-review-queue.png and risk-linked-buyers.png."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from playwright.sync_api import expect
from rest_framework.test import APIClient

from apps.catalog import services as catalog
from apps.core.normalise import normalise_address, normalise_phone
from apps.fraud.models import Decision, RiskAssessment
from apps.merchants import services as merchants
from apps.orders.models import Order, OrderSignals, OrderStatus
from apps.orders.services import payments
from apps.orders.services.transitions import order_transition

from ..factories import image_upload, make_token
from .conftest import shot
from .test_backoffice_orders import LAPTOP, log_in, no_horizontal_overflow

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
S = OrderStatus
APP_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 aweme/30.1.0"
)
FARM_DEVICE = "5C1E0A77-3B9D-4F21-9A0E-6D2B8C4F1E90"
# One drop point, written the ways a farm writes it to look like five households.
FARM = [
    ("dy-80001", "陈小芳", "170 0000 1001", "文一西路1500号5幢302室"),
    ("dy-80002", "陈芳", "17000001002", "文一西路 1500 号 5 栋 302"),
    ("dy-80003", "林晓", "+86 170-0000-1003", "文一西路１５００号５幢３０２"),
    ("dy-80004", "林小晓", "17000001004", "文一西路1500号5座302室"),
    ("dy-80005", "黄佳", "170 0000 1005", "文一西路1500号5幢302"),
]
YOUNG_ACCOUNT, OLD_ACCOUNT = "2026-11-20T09:00:00+08:00", "2019-03-02T10:00:00+08:00"
FAN = ("dy-20417", "周婷", "138 1234 5678", "滨江区", "江南大道 3888 号 2 幢 1101 室")
FARM_REASONS = [
    {"code": "device_shared", "params": {"buyers": 5}},
    {"code": "young_cluster", "params": {"percent": 100, "buyers": 5}},
    {"code": "address_shared", "params": {"buyers": 5}},
]
FAN_REASONS = [{"code": "ordered_at_open", "params": {"ms": 380}}, {"code": "max_quantity", "params": {"quantity": 2}}]


def pay(order: Order, ref: str) -> None:
    """The way production is paid: the provider's signed notification."""
    notice = json.dumps(
        {
            "order": order.public_id,
            "transaction_id": ref,
            "amount": str(order.total),
            "paid_at": "2026-11-24T20:00:00+08:00",
        }
    ).encode()
    ts = str(int(time.time()))
    payments.payment_receive(body=notice, timestamp=ts, signature=payments.sign(notice, ts))


def assess(order: Order, *, decision: str, score: float, reasons: list[dict]) -> RiskAssessment:
    """The assessment as the scorer writes it: the order's normalised keys and the hot path's
    verdict (stored with the order's signals)."""
    signals = OrderSignals.objects.get(order=order)
    address = order.shipping_address
    return RiskAssessment.objects.create(
        merchant_id=order.merchant_id,
        order=order,
        session_id=order.session_id,
        listing_id=order.listing_id,
        public_id=order.public_id,
        buyer_external_id=order.buyer.external_id,
        phone_key=normalise_phone(address.get("phone")) or "",
        address_key=normalise_address(address)[:300],
        device_id=signals.device_id,
        ip=signals.ip,
        registered_at=signals.buyer_registered_at,
        decision=decision,
        score=score,
        reasons=reasons,
        facts={"rules": signals.rules, "model_flagged": decision == Decision.REVIEW},
    )


@pytest.fixture
def farm_show(merchant):  # type: ignore[no-untyped-def]
    """A show where five farm accounts and three fans bought, placed through the API with their
    client block; the farm and one eager fan are flagged and held (paid, on hold)."""
    merchant.name = "西湖茶庄"
    merchant.save()
    merchants.staff_create(merchant=merchant, username="mei", password="pw-123456789")
    show = catalog.session_create(
        merchant=merchant, title="双十二茶叶专场", streamer="小雅", platforms=["storefront"], scheduled_at=None
    )
    product = catalog.product_create(merchant=merchant, name="西湖龙井 2026 明前特级")
    catalog.product_image_add(product=product, image=image_upload("tea.png", color="#2e7d32"))
    sku = catalog.sku_create(
        merchant=merchant, product=product, code="LJ-001", name="250g 礼盒", price=Decimal("268.00"), on_hand=100
    )
    listing = catalog.listing_open(
        listing=catalog.listing_create(
            merchant=merchant, session=show, sku=sku, price=Decimal("268.00"), quota=50, per_buyer_limit=2
        )
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {make_token(merchant)}")

    def place(ext: str, name: str, phone: str, district: str, detail: str, *, device: str, ip: str, born: str) -> Order:
        r = api.post(
            "/api/v1/orders",
            {
                "listing": listing.pk,
                "quantity": 2,
                "buyer": {"external_id": ext, "name": name, "phone": phone, "registered_at": born},
                "shipping_address": {
                    "name": name,
                    "phone": phone,
                    "province": "浙江省",
                    "city": "杭州市",
                    "district": district,
                    "detail": detail,
                },
                "client": {"ip": ip, "device_id": device, "user_agent": APP_UA},
            },
            format="json",
            HTTP_IDEMPOTENCY_KEY=f"k-{ext}",
        )
        assert r.status_code == 201, r.content
        order = Order.objects.get(public_id=r.json()["id"])
        pay(order, f"wx-{ext}")
        return Order.objects.get(pk=order.pk)

    held: dict[str, Order] = {}
    for i, (ext, name, phone, detail) in enumerate(FARM):
        order = place(
            ext, name, phone, "余杭区", detail, device=FARM_DEVICE, ip=f"39.170.8.{20 + i}", born=YOUNG_ACCOUNT
        )
        assess(order, decision=Decision.REVIEW, score=96.0 - i, reasons=FARM_REASONS)
        held[ext] = order
    ext, name, phone, district, detail = FAN
    fan = place(ext, name, phone, district, detail, device="A81F-22C4", ip="115.236.4.18", born=OLD_ACCOUNT)
    assess(fan, decision=Decision.REVIEW, score=71.0, reasons=FAN_REASONS)
    held[ext] = fan
    for i, (ext, name) in enumerate([("dy-30001", "王强"), ("dy-30002", "李娜")]):  # fans on one campus IP
        phone, detail = f"1391111{i:04d}", f"文三路 {100 + i} 号"
        order = place(ext, name, phone, "西湖区", detail, device=f"B7{i}-99", ip="112.17.3.9", born=OLD_ACCOUNT)
        assess(order, decision=Decision.ALLOW, score=8.0, reasons=[])
    for order in held.values():  # what the scorer's hold does once a flagged order is paid
        order_transition(order=order, to=S.ON_HOLD, actor="risk", reason="held for risk review", allowed_from=(S.PAID,))
    return held


def test_review_queue_linked_buyers_then_reject_the_farm_and_approve_the_fan(new_page, farm_show) -> None:  # type: ignore[no-untyped-def]
    page = new_page(locale="zh-CN", viewport=LAPTOP)
    log_in(page, "/admin/fraud/riskassessment/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(6)  # five farm accounts and the fan; the allowed fans are not here
    expect(page.locator('.lc-tab[data-tab="queue"]')).to_contain_text("待审核")
    expect(page.locator('.lc-tab[data-tab="queue"] .lc-tab-count')).to_have_text("6")
    expect(page.locator('.lc-tab[data-tab="all"] .lc-tab-count')).to_have_text("8")
    farm_first = farm_show["dy-80001"]
    row = rows.filter(has_text=farm_first.public_id)
    expect(row.locator(".lc-badge--on_hold")).to_have_text("待审核（风控）")
    expect(row).to_contain_text("本场直播中有 5 个买家用此设备下单")
    expect(row.locator(".lc-linked")).to_have_text("4")  # the other four farm accounts
    fan_row = rows.filter(has_text=farm_show["dy-20417"].public_id)
    expect(fan_row.locator(".lc-linked")).to_have_count(0)  # linked to nobody
    assert no_horizontal_overflow(page), "the review queue scrolls sideways at 1366 px"
    shot(page, "risk-review-queue")

    row.locator("th a, td a").filter(has_text="去审核").click()
    expect(page.locator("#lc-risk-title")).to_contain_text(farm_first.public_id)
    linked = page.locator(".lc-linked-table tbody tr")
    expect(linked).to_have_count(4)
    for ext, *_rest in FARM[1:]:
        other = linked.filter(has_text=farm_show[ext].public_id)
        expect(other.locator(".lc-share--device")).to_have_text("设备")
        expect(other.locator(".lc-share--address")).to_have_text("地址")  # one drop point, written 5 ways
    expect(page.locator(".lc-reasons--page")).to_contain_text("5 个关联买家中 100% 的账号注册不满 30 天")
    assert no_horizontal_overflow(page), "the review page scrolls sideways at 1366 px"
    shot(page, "risk-linked-buyers")

    page.once("dialog", lambda d: d.accept())  # "Reject this order? ..."
    page.click('[data-decide="reject"]')
    expect(page.locator(".lc-order-head [data-status]")).to_have_text("已取消")
    expect(page.locator("ul.messagelist .success")).to_contain_text(farm_first.public_id)
    expect(page.locator("[data-outcome]")).to_have_text("已驳回")
    expect(page.locator('[data-decide="reject"]')).to_have_count(0)
    cancelled = Order.objects.get(pk=farm_first.pk)
    assert (cancelled.status, cancelled.refund_due) == (S.CANCELLED, cancelled.total)

    page.goto("/admin/fraud/riskassessment/")
    expect(rows).to_have_count(5)
    rows.filter(has_text=farm_show["dy-20417"].public_id).locator("a").filter(has_text="去审核").click()
    expect(page.locator(".lc-linked-table .lc-empty")).to_be_visible()
    page.click('[data-decide="approve"]')
    expect(page.locator(".lc-order-head [data-status]")).to_have_text("已确认")
    expect(page.locator("[data-outcome]")).to_have_text("已通过")
    assert Order.objects.get(pk=farm_show["dy-20417"].pk).status == S.CONFIRMED

    # the farm's next account now shows its rejected neighbour
    page.goto("/admin/fraud/riskassessment/")
    expect(rows).to_have_count(4)
    rows.filter(has_text=farm_show["dy-80002"].public_id).locator("a").filter(has_text="去审核").click()
    neighbour = page.locator(".lc-linked-table tbody tr").filter(has_text=farm_first.public_id)
    expect(neighbour.locator(".lc-outcome--rejected")).to_have_text("已驳回")
    expect(neighbour.locator(".lc-badge--cancelled")).to_have_text("已取消")
    assert page.errors == []
