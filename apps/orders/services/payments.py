"""Payment notifications from the provider: signed, idempotent on ``transaction_id``, never dropped.

A notification that verifies is always recorded: applied to an unpaid order; for a cancelled
order it becomes a refund owed (``refund_pending``); for an order already paid by another
transaction it is recorded as a refund owed; an amount that differs from the total is refused
(422) but still recorded, and owed back. Every amount owed back adds to ``refund_due``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.core.datetimes import RANGE_MESSAGE, in_range
from apps.orders.errors import (
    AmountMismatch,
    InvalidOrder,
    OrderNotFound,
    SignatureInvalid,
    TimestampStale,
    TransactionConflict,
)
from apps.orders.models import Order, OrderStatus, Payment

from .transitions import order_lock, order_record_refund_due, order_transition

S = OrderStatus


@dataclass(frozen=True)
class PaymentNotice:
    order: str
    transaction_id: str
    amount: Decimal
    paid_at: datetime


def sign(body: bytes, timestamp: int | str, secret: str | None = None) -> str:
    secret = secret if secret is not None else settings.PAYMENT_WEBHOOK_SECRET
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify_signature(*, body: bytes, timestamp: str | None, signature: str | None, now: float | None = None) -> None:
    verify_signed(
        body=body,
        timestamp=timestamp,
        signature=signature,
        secret=settings.PAYMENT_WEBHOOK_SECRET,
        now=now,
        max_skew=settings.PAYMENT_MAX_SKEW_SECONDS,
        unconfigured="payment notifications are not configured (PAYMENT_WEBHOOK_SECRET)",
        stale="X-Timestamp is more than 5 minutes away from now",
    )


def verify_signed(
    *,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    secret: str,
    now: float | None,
    max_skew: float,
    unconfigured: str,
    stale: str,
) -> None:
    """The provider's signature scheme (``X-Timestamp`` / ``X-Signature``: hex HMAC-SHA256 over
    ``"{timestamp}." + body``), for its payment notifications and its refund callbacks alike.
    Raises SignatureInvalid (no secret, a header missing, not unix seconds, no match) or
    TimestampStale (more than ``max_skew`` seconds from ``now``)."""
    if not secret:
        raise SignatureInvalid(unconfigured)
    if not timestamp or not signature:
        raise SignatureInvalid("X-Timestamp and X-Signature headers are required")
    try:
        ts = int(timestamp)
    except ValueError:
        raise SignatureInvalid("X-Timestamp must be unix seconds") from None
    now = time.time() if now is None else now
    if abs(now - ts) > max_skew:
        raise TimestampStale(stale, extra={"timestamp": ts})
    if not hmac.compare_digest(sign(body, ts, secret), signature.strip().lower()):
        raise SignatureInvalid("signature does not match")


def parse_notice(body: bytes) -> PaymentNotice:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidOrder("body is not valid JSON", code="malformed_request") from None
    if not isinstance(data, dict):
        raise InvalidOrder("body must be a JSON object")
    errors: dict[str, str] = {}
    order = data.get("order")
    txn = data.get("transaction_id")
    if not isinstance(order, str) or not 1 <= len(order) <= 32:
        errors["order"] = "the order's public id is required"
    if not isinstance(txn, str) or not 1 <= len(txn) <= 100:
        errors["transaction_id"] = "a transaction id (1-100 characters) is required"
    amount = None
    if not isinstance(data.get("amount"), str):
        errors["amount"] = "a decimal string is required"
    else:
        try:
            amount = Decimal(data["amount"])
            exponent = amount.as_tuple().exponent  # an int for every finite amount
            if not isinstance(exponent, int) or amount < 0 or exponent < -2 or amount >= Decimal("1e10"):
                raise InvalidOperation
        except InvalidOperation:
            errors["amount"] = "not a valid amount"
    try:
        paid_at = parse_datetime(data["paid_at"]) if isinstance(data.get("paid_at"), str) else None
    except ValueError:  # well-formed but impossible, e.g. February 30th
        paid_at = None
    if paid_at is None:
        errors["paid_at"] = "an ISO 8601 date-time is required"
    elif not in_range(paid_at):  # e.g. year 1 at +14:00 is a BC date in UTC
        errors["paid_at"] = RANGE_MESSAGE
    elif timezone.is_naive(paid_at):
        paid_at = timezone.make_aware(paid_at, timezone.get_fixed_timezone(0))
    if errors:
        first = next(iter(errors.items()))
        raise InvalidOrder(f"{first[0]}: {first[1]}", extra={"fields": errors})
    # No errors: every field was parsed (asserted for the type checker).
    assert isinstance(order, str) and isinstance(txn, str) and amount is not None and paid_at is not None
    return PaymentNotice(order=order, transaction_id=txn, amount=amount, paid_at=paid_at)


def payment_receive(*, body: bytes, timestamp: str | None, signature: str | None) -> Payment:
    """Verify, parse and record one notification. Raises the 4xx errors; an amount mismatch is
    recorded first and then refused."""
    verify_signature(body=body, timestamp=timestamp, signature=signature)
    notice = parse_notice(body)
    try:
        payment = _record(notice, body)
    except IntegrityError:
        earlier = Payment.objects.select_related("order").filter(transaction_id=notice.transaction_id).first()
        if earlier is None:
            raise
        payment = earlier
    if payment.order.public_id != notice.order:
        raise TransactionConflict("this transaction id was already used for another order")
    if payment.outcome == Payment.Outcome.AMOUNT_MISMATCH:
        raise AmountMismatch(
            "amount differs from the order total",
            extra={"total": str(payment.order.total), "amount": str(payment.amount)},
        )
    return payment


@transaction.atomic
def _record(notice: PaymentNotice, body: bytes) -> Payment:
    existing = Payment.objects.select_related("order").filter(transaction_id=notice.transaction_id).first()
    if existing is not None:
        return existing  # idempotent: no second effect
    order = Order.objects.filter(public_id=notice.order).only("pk").first()
    if order is None:
        raise OrderNotFound("no such order", extra={"order": notice.order})
    order = order_lock(pk=order.pk)
    raw = body.decode("utf-8", errors="replace")
    common = {
        "merchant_id": order.merchant_id,
        "order": order,
        "transaction_id": notice.transaction_id,
        "amount": notice.amount,
        "paid_at": notice.paid_at,
        "raw": raw,
    }
    if notice.amount != order.total:
        # Refused (422), but the money was taken from the buyer: it is owed back, never dropped.
        payment = Payment.objects.create(outcome=Payment.Outcome.AMOUNT_MISMATCH, **common)
        if notice.amount > 0:
            order_record_refund_due(
                order=order,
                amount=notice.amount,
                actor="payment",
                reason=f"payment {notice.transaction_id} of {notice.amount} does not match the total: refund owed",
            )
        payment.order = Order.objects.get(pk=order.pk)
        return payment
    if order.status == S.PENDING_PAYMENT:
        payment = Payment.objects.create(outcome=Payment.Outcome.APPLIED, **common)
        order_transition(order=order, to=S.PAID, actor="payment", reason=f"paid: {notice.transaction_id}")
    elif order.status == S.CANCELLED:
        payment = Payment.objects.create(outcome=Payment.Outcome.LATE, **common)
        order_transition(
            order=order,
            to=S.REFUND_PENDING,
            actor="payment",
            refund_amount=notice.amount,
            reason=f"paid after cancellation ({order.cancel_reason or 'cancelled'}): refund {notice.transaction_id}",
        )
    else:
        payment = Payment.objects.create(outcome=Payment.Outcome.DUPLICATE_ORDER, **common)
        order_record_refund_due(
            order=order,
            amount=notice.amount,
            actor="payment",
            reason=f"duplicate payment {notice.transaction_id}: refund owed",
        )
    payment.order = Order.objects.get(pk=order.pk)
    return payment
