"""The API client of a connected shop: ``client_for(shop)`` builds the platform's httpx client
(``apps.platforms.protocol``) from the shop's decrypted credentials and gateway. Used by the
stock and shipment sync and by the order intake (order details, TMC pulls).

The caller closes the client (``with client_for(shop) as client: ...``). ``timeout`` defaults to
``settings.PLATFORM_API_TIMEOUT`` seconds (connect: a third of it, at most 3 s)."""

from __future__ import annotations

import httpx
from django.conf import settings

from .models import PlatformShop, ShopPlatform
from .protocol.base import Credentials
from .protocol.douyin import DouyinClient
from .protocol.kuaishou import KuaishouClient
from .protocol.taobao import TaobaoClient

PlatformClient = DouyinClient | KuaishouClient | TaobaoClient
DEFAULT_API_TIMEOUT = 10.0


def shop_credentials(shop: PlatformShop) -> Credentials:
    return Credentials(
        app_key=shop.app_key,
        app_secret=shop.app_secret,
        access_token=shop.access_token,
        shop_id=shop.shop_id,
        msg_secret=shop.msg_secret or None,
    )


def api_timeout(seconds: float | None = None) -> httpx.Timeout:
    total = float(seconds if seconds is not None else getattr(settings, "PLATFORM_API_TIMEOUT", DEFAULT_API_TIMEOUT))
    return httpx.Timeout(total, connect=min(3.0, total / 3))


def client_for(shop: PlatformShop, *, timeout: float | None = None) -> PlatformClient:
    """A client calling ``shop.gateway`` (its ``api_base_url``, else the production gateway)."""
    credentials, base_url, limit = shop_credentials(shop), shop.gateway, api_timeout(timeout)
    if shop.platform == ShopPlatform.DOUYIN:
        return DouyinClient(credentials, base_url=base_url, timeout=limit)
    if shop.platform == ShopPlatform.KUAISHOU:
        return KuaishouClient(credentials, base_url=base_url, timeout=limit)
    if shop.platform == ShopPlatform.TAOBAO:
        return TaobaoClient(credentials, base_url=base_url, timeout=limit)
    raise ValueError(f"unknown platform {shop.platform!r}")
