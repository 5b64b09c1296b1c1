"""Demo data for ./run: a merchant, a staff login, products with stock, a live show on air,
and a few orders. Idempotent: a second run keeps what is there."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.catalog import services as catalog
from apps.catalog.models import LiveSession
from apps.merchants import services as merchants
from apps.merchants.authentication import resolve_token
from apps.merchants.models import Merchant
from apps.orders.placement.request import parse_order_request
from apps.orders.placement.service import order_place
from apps.orders.services import payments

DEMO_USER, DEMO_PASSWORD = "demo", "demo-pass-123"
PRODUCTS = [
    ("云南高山普洱茶饼 357g", "Yunnan pu'er tea cake", "TEA-357", Decimal("168.00"), Decimal("99.00"), 500, 200, 2),
    ("手工羊绒围巾", "Hand-made cashmere scarf", "SCARF-GRY", Decimal("399.00"), Decimal("259.00"), 120, 80, 1),
    ("阳澄湖大闸蟹礼盒 8只", "Hairy crab gift box x8", "CRAB-8", Decimal("588.00"), Decimal("388.00"), 60, 50, 1),
]


class Command(BaseCommand):
    help = "Load the demo merchant, show and orders (idempotent)."

    def handle(self, *args, **opts):
        merchant = Merchant.objects.filter(slug="demo").first()
        if merchant is None:
            merchant = self._create()
        token_file = Path(settings.VAR_DIR) / "demo-token.txt"
        token = token_file.read_text().strip() if token_file.exists() else ""
        if not token or resolve_token(token) is None:
            _, token = merchants.api_token_create(merchant=merchant, name="demo streamer tools")
            token_file.write_text(token + "\n")
        self.stdout.write(json.dumps({"merchant": "demo", "login": DEMO_USER, "token_file": str(token_file)}))

    @transaction.atomic
    def _create(self) -> Merchant:
        merchant = merchants.merchant_create(slug="demo", name="演示小店 Demo Shop")
        merchants.staff_create(merchant=merchant, username=DEMO_USER, password=DEMO_PASSWORD)
        show = catalog.session_create(
            merchant=merchant,
            title="双十二预热直播 · 年货节",
            streamer="小雅 Xiaoya",
            platforms=["storefront", "douyin", "kuaishou"],
            scheduled_at=None,
        )
        catalog.session_start(session=show)
        listings = []
        for zh, en, code, price, flash, stock, quota, limit in PRODUCTS:
            product = catalog.product_create(merchant=merchant, name=zh, description=en)
            sku = catalog.sku_create(merchant=merchant, product=product, code=code, name=en, price=price, on_hand=stock)
            listing = catalog.listing_create(
                merchant=merchant,
                session=show,
                sku=sku,
                price=flash,
                quota=quota,
                per_buyer_limit=limit,
                payment_window_seconds=900,
            )
            listings.append(catalog.listing_open(listing=listing))
        transaction.on_commit(lambda: self._orders(show))
        return merchant

    def _orders(self, show: LiveSession) -> None:
        buyers = [
            ("viewer-1001", "王小明", "13800001001"),
            ("viewer-1002", "李华", "13800001002"),
            ("viewer-1003", "张伟", "13800001003"),
        ]
        for i, (ext, name, phone) in enumerate(buyers):
            listing = show.listings.order_by("id")[i % 3]
            req = parse_order_request(
                {
                    "listing": listing.pk,
                    "quantity": 1,
                    "buyer": {"external_id": ext, "name": name, "phone": phone},
                    "shipping_address": {
                        "name": name,
                        "phone": phone,
                        "province": "浙江省",
                        "city": "杭州市",
                        "district": "西湖区",
                        "detail": f"文三路 {100 + i} 号",
                    },
                }
            )
            placed = order_place(req=req, merchant_id=None, idempotency_key=f"demo-{ext}", channel="storefront")
            if i < 2:
                body = json.dumps(
                    {
                        "order": placed.order.public_id,
                        "transaction_id": f"demo-txn-{ext}",
                        "amount": str(placed.order.total),
                        "paid_at": "2026-11-24T12:00:00+08:00",
                    }
                ).encode()
                ts = str(int(time.time()))
                payments.payment_receive(body=body, timestamp=ts, signature=payments.sign(body, ts))
