"""Two merchants with one of everything, and helpers to compare what each merchant owns.

Used by the admin and API isolation tests: whatever merchant A's staff or token does, merchant
B's rows (of every model that has a merchant) must come out unchanged.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.test import Client
from rest_framework.test import APIClient

from apps.catalog.models import SKU, Listing, LiveSession, Product
from apps.catalog.services import product_image_add, sku_create
from apps.fraud.models import Decision, RiskAssessment
from apps.fulfilment.models import (
    CarrierAccount,
    CarrierPush,
    FulfilmentException,
    FulfilmentSettings,
    Parcel,
    ParcelOrder,
    RefundLine,
    RefundNotice,
    RefundRequest,
    ShipBatch,
    ShipBatchItem,
    TrackingEvent,
)
from apps.fulfilment.services import carrier_account_create
from apps.merchants.models import ApiToken, Merchant
from apps.merchants.services import api_token_create, staff_create
from apps.notifications.models import SmsAccount, SmsMessage, SmsOptOut, SmsTemplate
from apps.orders.models import Order
from apps.orders.services.payments import sign
from apps.platforms.models import InboxMessage, PlatformOrder, PlatformShop
from apps.platforms.services import allocations_set, mapping_set, shop_create
from apps.platforms.stock_sync import sku_link_seen
from apps.reports.models import ReportExport
from apps.reports.rollups import rollup_session
from apps.webhooks.models import WebhookEndpoint
from apps.webhooks.services import endpoint_create, event_record

from .factories import ProductFactory, image_upload, make_listing, make_session, order_body


def merchant_lookup(model: type[models.Model]) -> str | None:
    """The ORM path from a model to its merchant (what admin_scoping.scope_queryset filters on)."""
    if model is Merchant:
        return "pk"
    path = getattr(model, "merchant_path", None)
    if path:
        return path
    try:
        model._meta.get_field("merchant")
    except FieldDoesNotExist:
        return None
    return "merchant"


def label(model: type[models.Model]) -> str:
    return model._meta.label


def of(model: type[models.Model], merchant: Merchant) -> models.QuerySet:
    return model._default_manager.filter(**{merchant_lookup(model): merchant.pk})


def pks(model: type[models.Model], merchant: Merchant) -> set:
    return set(of(model, merchant).values_list("pk", flat=True))


def listed_pks(model: type[models.Model], merchant: Merchant) -> set:
    """The rows a list or the admin shows: a platform's channel pool (a ``Listing`` with a
    ``parent``) is part of its listing, not a listing of its own."""
    rows = of(model, merchant)
    if model._meta.label == "catalog.Listing":
        rows = rows.filter(parent__isnull=True)
    return set(rows.values_list("pk", flat=True))


def tenant_models() -> list[type[models.Model]]:
    return sorted((m for m in apps.get_models() if merchant_lookup(m)), key=label)


def snapshot(merchant: Merchant) -> dict[str, list[dict]]:
    """Every row of every model that belongs to ``merchant``."""
    return {label(m): list(of(m, merchant).order_by("pk").values()) for m in tenant_models()}


@dataclass
class Tenant:
    merchant: Merchant
    staff: Any
    client: Client  # admin, logged in as ``staff``
    api: APIClient  # REST, with ``raw_token``
    token: ApiToken
    raw_token: str
    product: Product
    sku: SKU
    session: LiveSession
    listing: Listing  # open, with a paid and a pending order
    scheduled: Listing  # not yet open
    orders: list[dict]  # as the API answered them: [paid, pending (flagged for risk review)]
    endpoint: WebhookEndpoint  # with one (pending) delivery of an order.paid event
    shop: PlatformShop  # a Douyin shop with one SKU mapping; the open listing allocates to it
    carrier_account: CarrierAccount  # a Kuaidi100 account, the merchant's default
    sms_account: SmsAccount  # with a "paid" template, an opt-out and a sent message of the paid order


def pay(order: dict) -> None:
    body = json.dumps(
        {
            "order": order["id"],
            "transaction_id": f"txn-{order['id']}",
            "amount": order["total"],
            "paid_at": "2025-01-01T00:00:00Z",
        }
    ).encode()
    ts = str(int(time.time()))
    r = APIClient().post(
        "/api/v1/payments/notify",
        body,
        content_type="application/json",
        HTTP_X_TIMESTAMP=ts,
        HTTP_X_SIGNATURE=sign(body, ts),
    )
    assert r.status_code == 200, r.content


def flag_for_review(merchant: Merchant, public_id: str) -> RiskAssessment:
    """The pending order flagged for review, as the scorer writes it: the review queue holds it."""
    order = Order.objects.get(public_id=public_id)
    return RiskAssessment.objects.create(
        merchant=merchant,
        order=order,
        session_id=order.session_id,
        listing_id=order.listing_id,
        public_id=order.public_id,
        buyer_external_id=f"buyer2-{merchant.slug}",
        device_id=f"device-{merchant.slug}",
        decision=Decision.REVIEW,
        score=90.0,
        reasons=[{"code": "device_shared", "params": {"buyers": 4}}],
    )


def build_tenant(merchant: Merchant) -> Tenant:
    slug = merchant.slug
    staff = staff_create(merchant=merchant, username=f"staff-{slug}", password="pw-long-enough-1")
    client = Client()
    client.force_login(staff)
    token, raw = api_token_create(merchant=merchant, name=f"overlay-{slug}", role="owner")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    product = ProductFactory(merchant=merchant, name=f"Product-{slug}", description=f"about-{slug}")
    sku = sku_create(
        merchant=merchant, product=product, code=f"CODE-{slug}", name=f"Sku-{slug}", price=Decimal("50"), on_hand=100
    )
    product_image_add(product=product, image=image_upload(f"{slug}.png"), alt=f"Picture-{slug}")
    session = make_session(merchant, title=f"Show-{slug}")
    listing = make_listing(merchant, sku=sku, session=session, quota=10, limit=5)
    scheduled = make_listing(merchant, sku=sku, session=session, quota=5, open_=False)
    orders = []
    for buyer in (f"buyer-{slug}", f"buyer2-{slug}"):
        r = api.post("/api/v1/orders", order_body(listing.pk, buyer=buyer), format="json")
        assert r.status_code == 201, r.content
        orders.append(r.json())
    pay(orders[0])
    flag_for_review(merchant, orders[1]["id"])
    endpoint = endpoint_create(
        merchant_id=merchant.pk, url=f"https://erp-{slug}.example.com/hooks", events=["order.paid"]
    )
    event_record(merchant_id=merchant.pk, type="order.paid", source_key=f"order:{orders[0]['id']}", data={"object": {}})
    shop = shop_create(
        merchant=merchant, platform="douyin", shop_id=f"dy-{slug}", app_key=f"key-{slug}", app_secret=f"secret-{slug}"
    )
    mapping_set(shop=shop, platform_sku_id=f"174-{slug}", sku=sku)
    allocations_set(listing=listing, allocations=[{"platform": "douyin", "mode": "allocated", "units": 3}])
    # a platform order waiting for a SKU mapping (the exception queue) and the message it came in
    PlatformOrder.objects.create(
        shop=shop, platform="douyin", external_id=f"49-{slug}", exception=PlatformOrder.Problem.UNMAPPED
    )
    InboxMessage.objects.create(
        shop=shop, platform="douyin", message_id=f"m-{slug}", external_order_id=f"49-{slug}", body="{}"
    )
    sku_link_seen(shop=shop, sku=sku, platform_item_id=f"36-{slug}", platform_sku_id=f"175-{slug}")
    carrier_account = carrier_account_create(
        merchant=merchant,
        carrier="kuaidi100",
        name=f"ZTO-{slug}",
        app_id=f"customer-{slug}",
        app_key=f"key-{slug}",
        app_secret=f"secret-{slug}",
        express="ZTO",
        sender={
            "name": f"Warehouse-{slug}",
            "mobile": "13800000001",
            "province": "浙江省",
            "city": "杭州市",
            "district": "余杭区",
            "detail": "文一西路1号",
        },  # fmt: skip
        is_default=True,
    )
    # shipping: a parcel of the paid order with its trace, the batch that made it, a push, an
    # exception of the pending order and the merchant's fulfilment settings
    parcel = Parcel.objects.create(
        merchant=merchant,
        code=f"P-{slug}",
        account=carrier_account,
        express="ZTO",
        channel="own",
        address_key=f"浙江杭州西湖|{slug}",
        receiver={"name": "Buyer", "phone": "13800000000"},
        waybill_no=f"ZT-{slug}",
        status=Parcel.Status.SHIPPED,
    )
    paid_order = Order.objects.get(public_id=orders[0]["id"])
    ParcelOrder.objects.create(parcel=parcel, order=paid_order)
    TrackingEvent.objects.create(parcel=parcel, at=paid_order.created_at, text=f"已揽收 {slug}")
    batch = ShipBatch.objects.create(
        merchant=merchant, account=carrier_account, selection={"orders": [paid_order.public_id]}, total=1
    )
    ShipBatchItem.objects.create(batch=batch, order=paid_order, parcel=parcel, result=ShipBatchItem.Result.SHIPPED)
    CarrierPush.objects.create(account=carrier_account, body=f"param={slug}", waybills=f"ZT-{slug}")
    FulfilmentException.objects.create(
        merchant=merchant, order=Order.objects.get(public_id=orders[1]["id"]), kind="bad_address"
    )
    FulfilmentSettings.objects.create(merchant=merchant)
    # after-sales: a return asked on the pending order (open: the admin queue shows open ones by
    # default; the paid order stays free for the API's create), and a refund callback that named it
    pending_order = Order.objects.get(public_id=orders[1]["id"])
    refund = RefundRequest.objects.create(
        merchant=merchant,
        order=pending_order,
        kind="return",
        source="api",
        amount=pending_order.total,
        reason=f"尺码 {slug}",
    )
    RefundLine.objects.create(refund=refund, order_line=pending_order.lines.first(), quantity=1)
    RefundNotice.objects.create(merchant=merchant, body=f"{{}} {slug}", refund_no=refund.public_id)
    rollup_session(session.pk)  # the show's report (the reports API reads rollups only)
    ReportExport.objects.create(merchant=merchant, user=staff, kind="session", session=session, format="csv")
    # made after the orders, so nothing is sent; the message is written as the outbox leaves it
    sms_account = SmsAccount.objects.create(
        merchant=merchant,
        access_key_id=f"LTAI-{slug}",
        access_key_secret=f"sms-secret-{slug}",
        sign_name=f"签名{slug}",
        api_base_url="http://127.0.0.1:9",
    )
    SmsTemplate.objects.create(merchant=merchant, event="paid", template_code=f"SMS_{slug}")
    SmsOptOut.objects.create(merchant=merchant, phone=f"1390000{len(slug):04d}", note=f"opt-out-{slug}")
    SmsMessage.objects.create(
        merchant=merchant,
        order=Order.objects.get(public_id=orders[0]["id"]),
        event="paid",
        phone="13800000000",
        template_code=f"SMS_{slug}",
        params={"order_no": orders[0]["id"]},
        status="sent",
        attempts=1,
        biz_id=f"biz-{slug}",
    )
    return Tenant(
        merchant,
        staff,
        client,
        api,
        token,
        raw,
        product,
        sku,
        session,
        listing,
        scheduled,
        orders,
        endpoint,
        shop,
        carrier_account,
        sms_account,
    )
