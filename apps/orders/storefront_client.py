"""The storefront buyer's device, as risk signals on the order (issue 11): the IP address
(``apps.core.client_ip``: X-Forwarded-For only behind ``TRUSTED_PROXY_COUNT`` proxies), a device
id from a first-party cookie the storefront sets, and the user agent header."""

from __future__ import annotations

import re
import secrets

from django.http import HttpRequest, HttpResponseBase

from apps.core.client_ip import client_ip

from .placement.request import ClientSignals, printable_user_agent

DEVICE_COOKIE = "lc_did"
DEVICE_COOKIE_MAX_AGE = 365 * 24 * 3600
_DEVICE = re.compile(r"[0-9a-f]{32}")  # 128 random bits in hex, as ``new_device_id`` makes them


def new_device_id() -> str:
    return secrets.token_hex(16)


def device_id_from(request: HttpRequest) -> str:
    """The device id the browser sent back, or "" when it sent none or a malformed one."""
    value = request.COOKIES.get(DEVICE_COOKIE, "")
    return value if _DEVICE.fullmatch(value) else ""


def client_signals(request: HttpRequest) -> ClientSignals:
    return ClientSignals(
        ip=client_ip(request),
        device_id=device_id_from(request),
        user_agent=printable_user_agent(request.META.get("HTTP_USER_AGENT", "")),
    )


def ensure_device_cookie(request: HttpRequest, response: HttpResponseBase) -> None:
    """Give a browser without a (well-formed) device cookie a new one: HttpOnly (no script needs
    it), SameSite=Lax, Secure on HTTPS, kept for a year."""
    if device_id_from(request):
        return
    response.set_cookie(
        DEVICE_COOKIE,
        new_device_id(),
        max_age=DEVICE_COOKIE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
    )
