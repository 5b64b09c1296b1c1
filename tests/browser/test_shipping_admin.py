"""Batch shipping in real Chromium, in Chinese, on a laptop (1366×768): the order list's action
ships the confirmed orders of a show (the batch page with its progress bar, the per-order results
and the downloads), an order with an incomplete address lands in the exception queue, and the
batch's label PDF is rendered to PNG. Screenshots: test-artifacts/screenshots/ship-batch.png,
exception-queue.png and batch-labels-1.png."""

from __future__ import annotations

from decimal import Decimal

import pypdfium2 as pdfium
import pytest
from playwright.sync_api import expect
from rest_framework.test import APIClient

from apps.catalog import services as catalog
from apps.fulfilment import services as fulfilment
from apps.fulfilment.models import FulfilmentException, ShipBatch
from apps.fulfilment.simulator import DEMO_ACCOUNTS, Kuaidi100Simulator
from apps.merchants import services as merchants
from apps.orders.models import Order, OrderStatus
from apps.orders.services.transitions import order_transition

from ..factories import make_token
from .conftest import SHOTS, shot
from .test_backoffice_orders import LAPTOP, log_in, no_horizontal_overflow

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
S = OrderStatus
DEMO = DEMO_ACCOUNTS["kuaidi100"]
BUYERS = [
    ("dy-1", "周婷", "13812345678", "西湖区", "文三路 100 号 3 幢 1202 室"),
    ("dy-1", "周婷", "13812345678", "西湖区", "文三路100号3栋1202"),  # the same flat: one parcel
    ("dy-2", "王强", "13911110000", "滨江区", "江南大道 3888 号 2 幢 1101 室"),
    ("dy-3", "李娜", "13922220000", "", "教工路 18 号"),  # no district: the exception queue
]


@pytest.fixture
def sim():  # type: ignore[no-untyped-def]
    with Kuaidi100Simulator(**DEMO) as running:
        yield running


@pytest.fixture
def confirmed_show(merchant, sim):  # type: ignore[no-untyped-def]
    merchant.name = "西湖茶庄"
    merchant.save()
    merchants.staff_create(merchant=merchant, username="mei", password="pw-123456789")
    fulfilment.carrier_account_create(
        merchant=merchant,
        carrier="kuaidi100",
        name="中通-杭州仓",
        app_id=DEMO["customer"],
        app_key=DEMO["key"],
        app_secret=DEMO["secret"],
        push_salt=DEMO["salt"],
        express="ZTO",
        sender={
            "name": "西湖茶庄仓",
            "mobile": "13800000001",
            "province": "浙江省",
            "city": "杭州市",
            "district": "余杭区",
            "detail": "文一西路 1 号",
        },
        api_base_url=sim.base_url,
        is_default=True,
    )
    show = catalog.session_create(
        merchant=merchant, title="双十二茶叶专场", streamer="小雅", platforms=["storefront"], scheduled_at=None
    )
    product = catalog.product_create(merchant=merchant, name="西湖龙井 2026 明前特级")
    sku = catalog.sku_create(
        merchant=merchant, product=product, code="LJ-001", name="250g 礼盒", price=Decimal("268.00"), on_hand=100
    )
    sku.location = "A-03-2"
    sku.save(update_fields=["location"])
    listing = catalog.listing_open(
        listing=catalog.listing_create(
            merchant=merchant, session=show, sku=sku, price=Decimal("268.00"), quota=50, per_buyer_limit=2
        )
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {make_token(merchant)}")
    ids = []
    for ext, name, phone, district, detail in BUYERS:
        address = {
            "name": name,
            "phone": phone,
            "province": "浙江省",
            "city": "杭州市",
            "district": district or "西湖区",
            "detail": detail,
        }
        r = api.post(
            "/api/v1/orders",
            {"listing": listing.pk, "quantity": 1, "buyer": {"external_id": ext, "name": name, "phone": phone},
             "shipping_address": address},
            format="json",
        )  # fmt: skip
        assert r.status_code == 201, r.content
        public_id = r.json()["id"]
        if not district:  # as a platform sent it: no district
            order = Order.objects.get(public_id=public_id)
            order.shipping_address = {**address, "district": ""}
            order.save(update_fields=["shipping_address"])
        order_transition(public_id=public_id, to=S.PAID, actor="payment", reason="paid")
        order_transition(public_id=public_id, to=S.CONFIRMED, actor="auto-confirm", reason="confirmed")
        ids.append(public_id)
    return ids


def test_ship_a_show_from_the_order_list_then_the_exception_queue_and_the_labels(  # type: ignore[no-untyped-def]
    new_page, confirmed_show
) -> None:
    page = new_page(locale="zh-CN", viewport=LAPTOP)
    log_in(page, "/admin/orders/order/?status__exact=confirmed")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(4)
    page.check("#action-toggle")
    page.select_option("select[name=action]", "ship_orders")
    page.click("button[name=index]")

    box = page.locator(".lc-batch")
    expect(box).to_be_visible()
    expect(box.locator("progress")).to_have_attribute("value", "100")
    expect(box.locator('[data-field="status_label"]')).to_have_text("已完成")
    expect(box.locator('[data-field="shipped"]')).to_have_text("3")
    expect(box.locator('[data-field="failed"]')).to_have_text("1")
    expect(page.locator(".lc-batch-downloads a")).to_have_count(3)
    results = page.locator(".lc-panel table tbody tr")
    expect(results).to_have_count(4)
    expect(results.filter(has_text=confirmed_show[3])).to_contain_text("district")
    assert no_horizontal_overflow(page), "the batch page scrolls sideways at 1366 px"
    shot(page, "ship-batch")
    with page.expect_download() as download:
        page.locator(".lc-batch-downloads a").first.click()
    assert download.value.suggested_filename.endswith("labels.pdf")
    labels = download.value.path().read_bytes()

    page.goto("/admin/fulfilment/fulfilmentexception/")
    queue = page.locator("#result_list tbody tr")
    expect(queue).to_have_count(1)
    expect(queue).to_contain_text(confirmed_show[3])
    expect(queue).to_contain_text("地址错误或不完整")
    shot(page, "exception-queue")

    batch = ShipBatch.objects.get()
    assert (batch.shipped, batch.failed) == (3, 1)
    assert FulfilmentException.objects.get().kind == "bad_address"
    pdf = pdfium.PdfDocument(labels)  # as downloaded from the batch page
    assert len(pdf) == 2  # 周婷's two orders in one parcel, 王强's in another
    SHOTS.mkdir(parents=True, exist_ok=True)
    for i, pdf_page in enumerate(pdf, start=1):
        text = pdf_page.get_textpage().get_text_range()
        assert "中通快递" in text and "浙江省杭州市" in text
        pdf_page.render(scale=203 / 72).to_pil().save(SHOTS / f"batch-labels-{i}.png")


def test_the_buyers_status_page_shows_the_parcels_trace_live(new_page, confirmed_show) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, timedelta

    from django.test import TestCase
    from django.utils import timezone

    from apps.fulfilment import shipping
    from apps.fulfilment.carriers.base import TrackEvent, Tracking
    from apps.fulfilment.models import CarrierAccount, ParcelOrder
    from apps.fulfilment.tracking import tracking_apply
    from apps.orders.placement.links import status_path

    public_id = confirmed_show[2]
    order = Order.objects.get(public_id=public_id)
    with TestCase.captureOnCommitCallbacks(execute=True):
        shipping.batch_create(merchant_id=order.merchant_id, actor="test", orders=[public_id])
    parcel = ParcelOrder.objects.get(order=order).parcel
    account = CarrierAccount.objects.get(pk=parcel.account_id)
    page = new_page(viewport={"width": 390, "height": 844}, mobile=True)
    page.goto(status_path(Order.objects.get(pk=order.pk)))
    expect(page.locator("[data-field=status-label]")).to_have_text("已发货")
    expect(page.locator("[data-field=tracking]")).to_have_text(parcel.waybill_no)
    expect(page.locator("[data-list=trace]")).to_be_hidden()  # no movement yet

    start = timezone.now() - timedelta(hours=5)
    lines = [
        ("collected", "【杭州市】中通快递 余杭仓 已揽收", "杭州市"),
        ("in_transit", "【杭州市】已发往 杭州中转部", "杭州市"),
        ("delivering", "【杭州市】滨江网点 快递员 陈师傅 正在派件（电话 13800001111）", "杭州市"),
        ("delivered", "【杭州市】已签收，签收人：本人。感谢使用中通快递", "杭州市"),
    ]

    def push(n: int) -> None:
        events = tuple(
            TrackEvent(at=(start + timedelta(hours=i)).astimezone(UTC), text=text, location=where)
            for i, (_state, text, where) in enumerate(lines[:n])
        )
        tracking = Tracking(
            carrier="kuaidi100",
            waybill_no=parcel.waybill_no,
            express="ZTO",
            state=lines[n - 1][0],  # type: ignore[arg-type]
            carrier_state=lines[n - 1][0],
            final=n == len(lines),
            events=events,
            raw={},
        )
        with TestCase.captureOnCommitCallbacks(execute=True):
            assert tracking_apply(account, tracking)

    push(2)
    trace = page.locator("[data-list=trace] li")
    expect(trace).to_have_count(2)
    expect(trace.first).to_contain_text("已发往 杭州中转部")
    push(3)
    expect(trace).to_have_count(3)
    expect(trace.first).to_contain_text("正在派件")
    push(4)
    expect(page.locator("[data-field=status-label]")).to_have_text("已签收")
    expect(trace).to_have_count(4)
    expect(trace.first).to_contain_text("已签收")
    page.reload()  # the page's own snapshot has the trace too
    expect(page.locator("[data-list=trace] li")).to_have_count(4)
    assert not page.errors  # type: ignore[attr-defined]
    shot(page, "status-trace")
