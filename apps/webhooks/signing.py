"""Delivery signatures, Stripe's scheme: ``Livecommerce-Signature: t=<unix>,v1=<hex>`` where
``hex = HMAC-SHA256(secret, f"{t}.{body}")`` over the exact bytes of the request body. A receiver
checks the HMAC and that ``t`` is recent (a replayed request is refused after ``tolerance``)."""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Livecommerce-Signature"
EVENT_ID_HEADER = "Livecommerce-Event-Id"
DEFAULT_TOLERANCE = 300


class SignatureError(Exception):
    """The signature header is missing, malformed, wrong or too old."""


def compute(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={compute(secret, t, body)}"


def verify_signature(
    payload: bytes | str, header: str, secret: str, tolerance: int = DEFAULT_TOLERANCE, *, now: float | None = None
) -> int:
    """Check a delivery as a receiver would. Returns the signed timestamp; raises SignatureError.
    Any ``v1`` in the header may match (several appear while a secret is being rotated)."""
    body = payload.encode() if isinstance(payload, str) else payload
    timestamp: int | None = None
    candidates: list[str] = []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("timestamp is not an integer") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("no t= or v1= in the signature header")
    expected = compute(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("signature does not match")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError("timestamp outside the tolerance")
    return timestamp
