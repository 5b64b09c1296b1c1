"""Demo data for ./run: a merchant, a staff login, products with stock, a live show on air,
and a few orders. Idempotent: a second run keeps what is there."""

from __future__ import annotations

import io
import json
import time
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from apps.catalog import services as catalog
from apps.catalog.models import LiveSession, Product
from apps.core.commands import RedisCommand
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
COLOURS = {"TEA-357": "#7b4a2a", "SCARF-GRY": "#6d7b8d", "CRAB-8": "#c0392b"}
CATEGORIES = {"TEA-357": "食品", "SCARF-GRY": "服饰", "CRAB-8": "食品"}  # what the reports group sales by
# Colour/size variants of the scarf, beside the grey one on air: (code, colour, size, picture colour).
SCARF_VARIANTS = [("SCARF-RED", "酒红色", "180×30 cm", "#922b21"), ("SCARF-CRM", "米白色", "200×70 cm", "#e8dcc4")]


def demo_picture(initial: str, colour: str, name: str) -> SimpleUploadedFile:
    """A square PNG drawn here (the product's colour and initial), never fetched from anywhere."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (480, 480), colour)
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((150, 150, 330, 330), radius=36, outline="white", width=10)
    draw.text((240, 240), initial, fill="white", anchor="mm", font_size=120)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/png")


class Command(RedisCommand):
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
        self._pictures(merchant)
        self._categories(merchant)
        self.stdout.write(json.dumps({"merchant": "demo", "login": DEMO_USER, "token_file": str(token_file)}))

    @transaction.atomic
    def _create(self) -> Merchant:
        merchant = merchants.merchant_create(slug="demo", name="演示小店 Demo Shop")
        merchants.staff_create(merchant=merchant, username=DEMO_USER, password=DEMO_PASSWORD)
        show = catalog.session_create(
            merchant=merchant,
            title="双十二预热直播 · 年货节",
            streamer="小雅 Xiaoya",
            platforms=["storefront", "douyin", "kuaishou", "taobao"],
            scheduled_at=None,
        )
        catalog.session_start(session=show)
        listings = []
        for zh, en, code, price, flash, stock, quota, limit in PRODUCTS:
            product = catalog.product_create(merchant=merchant, name=zh, description=en, category=CATEGORIES[code])
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

    @transaction.atomic
    def _pictures(self, merchant: Merchant) -> None:
        """Pictures and the scarf's variants, for demo products that have none yet (a demo
        database from before pictures gets them too)."""
        for product in Product.objects.filter(merchant=merchant, images__isnull=True):
            sku = product.skus.order_by("pk").first()
            colour = COLOURS.get(sku.code if sku else "", "#34495e")
            picture = demo_picture(product.description[:1].upper() or "?", colour, "demo.png")
            catalog.product_image_add(product=product, image=picture, alt=product.name)
            if sku is not None and sku.code == "SCARF-GRY" and not sku.color:
                catalog.sku_update(sku=sku, data={"color": "烟灰色", "size": "180×30 cm"})
                for code, color, size, hex_ in SCARF_VARIANTS:
                    catalog.sku_create(
                        merchant=merchant,
                        product=product,
                        code=code,
                        name=f"Cashmere scarf, {size}",
                        price=Decimal("399.00"),
                        on_hand=40,
                        color=color,
                        size=size,
                        image=demo_picture("S", hex_, f"{code}.png"),
                    )

    @transaction.atomic
    def _categories(self, merchant: Merchant) -> None:
        """Categories for demo products that have none (a demo database from before categories)."""
        for code, category in CATEGORIES.items():
            product = Product.objects.filter(merchant=merchant, category="", skus__code=code).first()
            if product is not None:
                catalog.product_update(product=product, data={"category": category})

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
