"""The demo's sales platforms (``./run``): one Douyin, one Kuaishou and one Taobao shop for the
demo merchant, each calling a local simulator (``manage.py platform_simulator``) started by the
launcher, with the demo show's SKUs mapped and the show sold on all three platforms.

The credentials here are the simulators' defaults: a shop connected with them and a simulator
started without ``--app-key`` / ``--app-secret`` / ... sign and check with the same secrets. They
are published in the repository and good for nothing but a local simulator.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction

from apps.catalog import services as catalog
from apps.catalog.models import Listing, LiveSession
from apps.merchants.models import Merchant

from . import services
from .models import PlatformShop, ShopPlatform
from .selectors import PUSH_PATH

DEMO_MSG_SECRET = "a3NfbXNnX3NlY3JldF8xNg=="  # base64 of a 16-byte demo AES key (Kuaishou pushes)


@dataclass(frozen=True)
class DemoShop:
    app_key: str
    shop_id: str
    name: str
    sku_base: int  # the platform's SKU id of our SKU n is sku_base + n (item ids: item_base + n)
    item_base: int
    app_secret: str = "sim-secret"
    access_token: str = "sim-token"

    @property
    def msg_secret(self) -> str:
        return DEMO_MSG_SECRET


DEMO_SHOPS: dict[str, DemoShop] = {
    ShopPlatform.DOUYIN: DemoShop("7001234567890123456", "1234567", "抖店 演示小店", 1750000000000, 3600000000000),
    ShopPlatform.KUAISHOU: DemoShop("ks699183844582124027", "2161524184", "快手小店 演示小店", 2200000000000,
                                    8800000000000),
    ShopPlatform.TAOBAO: DemoShop("12345678", "livecommerce旗舰店", "淘宝 演示小店", 5000000000000, 6000000000000),
}  # fmt: skip

DEMO_TRAFFIC: dict[str, Any] = {
    "orders": 2,  # per round: with a round every TRAFFIC_EVERY_S, about 3 orders a minute per platform
    "pay_share": 0.7,
    "cancel_share": 0.15,
    "duplicate_share": 0.2,  # a redelivered message now and then
    "shuffle": 0.2,  # and a pay delivered before its order's creation
    "max_lines": 1,
    "max_quantity": 1,
    "interval": 3.0,  # seconds between a round's messages
}
"""One round of a simulator's show traffic in the demo (``ShowSpec`` fields, SKUs added per shop):
a few orders a minute, some paid, some cancelled, duplicates and out-of-order messages."""
TRAFFIC_EVERY_S = 40.0
TRAFFIC_ROUNDS = 30
"""The demo's platform traffic stops after 20 minutes (about 60 orders per platform), well inside
the show's quotas: past them every platform order would be an oversell in the exception queue."""


def demo_show(merchant: Merchant) -> LiveSession | None:
    """The demo's show: the merchant's first show on air."""
    return LiveSession.objects.filter(merchant=merchant, status=LiveSession.Status.LIVE).order_by("pk").first()


def _shop_connect(*, merchant: Merchant, platform: str, api_base_url: str) -> PlatformShop:
    demo = DEMO_SHOPS[platform]
    fields: dict[str, Any] = {
        "name": demo.name,
        "app_key": demo.app_key,
        "app_secret": demo.app_secret,
        "access_token": demo.access_token,
        "msg_secret": demo.msg_secret if platform == ShopPlatform.KUAISHOU else "",
        "api_base_url": api_base_url,
    }
    shop = PlatformShop.objects.filter(merchant=merchant, platform=platform, shop_id=demo.shop_id).first()
    if shop is None:
        return services.shop_create(merchant=merchant, platform=platform, shop_id=demo.shop_id, **fields)
    return services.shop_update(shop=shop, data={**fields, "enabled": True})  # a new simulator port each run


@transaction.atomic
def demo_platforms_connect(*, merchant: Merchant, simulators: dict[str, str], base_url: str) -> dict[str, Any]:
    """Connect the demo merchant's shop on each platform of ``simulators`` (platform -> the
    simulator's base URL, the shop's ``api_base_url``), map the demo show's SKUs in each, and sell
    the show on those platforms. Idempotent: a second call points the shops at the new URLs.

    Returns, per platform, what its simulator is started with: ``push_url`` (on ``base_url``, the
    running server; None for Taobao, which is pulled), ``traffic`` (``DEMO_TRAFFIC`` with the
    show's SKUs as the platform knows them; None without a show on air) and ``traffic_every``.
    Raises what ``services.shop_create`` raises."""
    show = demo_show(merchant)
    listings = (
        list(Listing.objects.filter(session=show, parent__isnull=True).select_related("sku").order_by("pk"))
        if show
        else []
    )
    result: dict[str, Any] = {}
    for platform, api_base_url in simulators.items():
        shop = _shop_connect(merchant=merchant, platform=platform, api_base_url=api_base_url)
        demo = DEMO_SHOPS[platform]
        skus = []
        for listing in listings:
            sku_id, item_id = str(demo.sku_base + listing.sku_id), str(demo.item_base + listing.sku_id)
            services.mapping_set(shop=shop, platform_sku_id=sku_id, sku=listing.sku, platform_item_id=item_id)
            skus.append(
                {"code": listing.sku.code, "sku_id": sku_id, "item_id": item_id, "price_fen": _fen(listing.price)}
            )
        push = PUSH_PATH.format(platform=platform, push_token=shop.push_token) if shop.is_pushed else None
        result[platform] = {
            "simulator": api_base_url,
            "push_url": base_url.rstrip("/") + push if push else None,
            # a seed of its own per run: a second ./run on the same database sells new orders
            # (the same seed would replay the first run's order and message ids: all duplicates)
            "traffic": {**DEMO_TRAFFIC, "skus": skus, "seed": time.time_ns() % 2**31} if skus else None,
            "traffic_every": TRAFFIC_EVERY_S,
            "traffic_rounds": TRAFFIC_ROUNDS,
        }
    if show is not None:
        wanted = [*(show.platforms or []), *(p for p in simulators if p not in (show.platforms or []))]
        if wanted != list(show.platforms or []):
            catalog.session_update(session=show, data={"platforms": wanted})
    return result


def _fen(price: Decimal) -> int:
    return int((price * 100).to_integral_value())
