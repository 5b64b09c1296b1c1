"""Order ids and the buyer's status link.

A public id is unguessable; derived from the Idempotency-Key when there is one, so concurrent
duplicates of one request share one gate hold. The status link carries a signed, expiring token
(``ORDER_STATUS_LINK_MAX_AGE``): the only way a buyer reaches an order.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from typing import Any

from django.conf import settings
from django.core import signing

STATUS_SALT = "livecommerce.order-status"


def new_public_id(*, merchant_id: int, idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return "o" + secrets.token_hex(12)
    mac = hmac.new(settings.SECRET_KEY.encode(), f"{merchant_id}:{idempotency_key}".encode(), hashlib.sha256)
    return "o" + mac.hexdigest()[:24]


@functools.lru_cache(maxsize=4)
def _signing_key(secret: str) -> bytes:
    """``django.core.signing``'s HMAC key for the status salt (``salted_hmac``: sha256 of the
    salt and the secret), derived once per secret instead of once per order."""
    return hashlib.sha256(f"{STATUS_SALT}signer{secret}".encode()).digest()


def status_token(public_id: str) -> str:
    """The token part of ``TimestampSigner(salt=STATUS_SALT).sign(public_id)``, exactly
    (``tests/orders/test_links.py`` holds the two together; ``check_status_token`` checks it with
    Django's signer): a base62 timestamp, ":", the urlsafe base64 of its sha256 HMAC. Built here
    because every accepted order carries one, and the signer's setup per call cost more than the
    HMAC itself."""
    stamp = signing.b62_encode(int(time.time()))
    mac = hmac.new(_signing_key(settings.SECRET_KEY), f"{public_id}:{stamp}".encode(), hashlib.sha256)
    return f"{stamp}:{signing.b64_encode(mac.digest()).decode()}"


def check_status_token(public_id: str, token: str) -> bool:
    try:
        signing.TimestampSigner(salt=STATUS_SALT).unsign(
            f"{public_id}:{token}", max_age=settings.ORDER_STATUS_LINK_MAX_AGE
        )
        return True
    except signing.BadSignature:
        return False


def status_path(order: Any) -> str:
    return f"/o/{order.public_id}/?t={status_token(order.public_id)}"
