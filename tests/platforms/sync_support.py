"""Shared by the sync-out tests: the three simulators started in-process over real sockets, a
shop connected to each, fast sync settings, and placing orders through the real order path."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from apps.orders.placement.request import parse_order_request
from apps.orders.placement.service import order_place
from apps.platforms.models import PlatformShop
from apps.platforms.services import shop_create
from apps.platforms.simulator import DouyinSimulator, KuaishouSimulator, PlatformSimulator, TaobaoSimulator

from ..factories import order_body

MSG_SECRET = "a3NfbXNnX3NlY3JldF8xNg=="
FAST = {
    "tick": 0.02,
    "linger": 0.0,
    "timeout": 1.0,
    "backoff_base": 0.1,
    "backoff_max": 0.4,
    "min_interval": 0.0,
    "drain_seconds": 10.0,
    "sweep_drain_seconds": 5.0,
}


@dataclass
class Platforms:
    sims: dict[str, PlatformSimulator]
    shops: dict[str, PlatformShop]


def start_platforms(merchant: Any, stack: ExitStack) -> Platforms:
    keys = {"douyin": "dy-app", "kuaishou": "ks-app", "taobao": "tb-app"}
    classes = {"douyin": DouyinSimulator, "kuaishou": KuaishouSimulator, "taobao": TaobaoSimulator}
    sims: dict[str, PlatformSimulator] = {}
    shops: dict[str, PlatformShop] = {}
    for platform, cls in classes.items():
        extra = {"msg_secret": MSG_SECRET} if platform == "kuaishou" else {}
        sim = stack.enter_context(
            cls(
                app_key=keys[platform],
                app_secret=f"{platform}-secret",
                access_token=f"{platform}-token",
                shop_id=f"{platform}-shop",
                **extra,
            )  # type: ignore[abstract]  # fmt: skip
        )
        sims[platform] = sim
        shops[platform] = shop_create(
            merchant=merchant, platform=platform, shop_id=f"{platform}-shop", name=platform, app_key=keys[platform],
            app_secret=f"{platform}-secret", access_token=f"{platform}-token", api_base_url=sim.base_url,
            msg_secret=MSG_SECRET if platform == "kuaishou" else "",
        )  # fmt: skip
    return Platforms(sims, shops)


@contextmanager
def running_platforms(merchant: Any, settings: Any) -> Iterator[Platforms]:
    """The three simulators and their shops, with fast sync settings (for a module's fixture)."""
    settings.PLATFORM_SYNC = dict(FAST)
    with ExitStack() as stack:
        yield start_platforms(merchant, stack)


def place(listing: Any, buyer: str, *, channel: str = "api", quantity: int = 1) -> Any:
    req = parse_order_request(order_body(listing.pk, buyer=buyer, quantity=quantity))
    return order_place(req=req, merchant_id=listing.merchant_id, idempotency_key=f"k-{buyer}", channel=channel).order


def import_on(listing: Any, buyer: str, *, channel: str, quantity: int = 1) -> Any:
    """A platform's order of ``quantity`` units on ``listing`` as the intake imports it: drawn on
    the platform's channel pool when it has one, filed under the listing."""
    from decimal import Decimal

    from apps.orders.services.imports import ImportedOrder, ImportLine, order_import
    from apps.platforms.processing import channel_pool

    pool = channel_pool(listing, channel)
    line = ImportLine(
        sku_id=listing.sku_id,
        quantity=quantity,
        unit_price=Decimal("10.00"),
        listing_id=(pool or listing).pk,
        listed_as=listing.pk,
    )
    return order_import(
        imported=ImportedOrder(
            merchant_id=listing.merchant_id,
            channel=channel,
            key=f"{channel}·test·{buyer}",
            buyer_external_id=f"{channel}:{buyer}",
            buyer_name="",
            buyer_phone="",
            shipping_address={},
            lines=(line,),
            total=Decimal("10.00") * quantity,
            session_id=listing.session_id,
        )
    ).order


def wait_for(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
