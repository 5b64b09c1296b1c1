"""Order ids and the buyer's status link.

A public id is unguessable; derived from the Idempotency-Key when there is one, so concurrent
duplicates of one request share one gate hold. The status link carries a signed, expiring token
(``ORDER_STATUS_LINK_MAX_AGE``): the only way a buyer reaches an order.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from django.conf import settings
from django.core import signing

STATUS_SALT = "livecommerce.order-status"


def new_public_id(*, merchant_id: int, idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return "o" + secrets.token_hex(12)
    mac = hmac.new(settings.SECRET_KEY.encode(), f"{merchant_id}:{idempotency_key}".encode(), hashlib.sha256)
    return "o" + mac.hexdigest()[:24]


def status_token(public_id: str) -> str:
    return signing.TimestampSigner(salt=STATUS_SALT).sign(public_id).split(":", 1)[1]


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
