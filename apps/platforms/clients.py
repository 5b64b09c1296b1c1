"""The API client of a connected shop: its platform's client class, its credentials decrypted,
its gateway (the production one unless the shop names another: a sandbox or a simulator)."""

from __future__ import annotations

from django.conf import settings

from .models import PlatformShop, ShopPlatform
from .protocol.base import Credentials
from .protocol.douyin import DouyinClient
from .protocol.kuaishou import KuaishouClient
from .protocol.taobao import TaobaoClient

PlatformClient = DouyinClient | KuaishouClient | TaobaoClient

_CLASSES: dict[str, type[PlatformClient]] = {
    ShopPlatform.DOUYIN: DouyinClient,
    ShopPlatform.KUAISHOU: KuaishouClient,
    ShopPlatform.TAOBAO: TaobaoClient,
}


def credentials_for(shop: PlatformShop) -> Credentials:
    return Credentials(
        app_key=shop.app_key,
        app_secret=shop.app_secret,
        access_token=shop.access_token,
        shop_id=shop.shop_id,
        msg_secret=shop.msg_secret or None,
    )


def client_for(shop: PlatformShop) -> PlatformClient:
    """A client for the shop's API (use it as a context manager: it closes its connections)."""
    return _CLASSES[shop.platform](
        credentials_for(shop), base_url=shop.gateway, timeout=settings.PLATFORM_API_TIMEOUT_S
    )
