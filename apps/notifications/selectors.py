"""Reads of the SMS notifications: accounts, templates, opt-outs and the outbox."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from .models import SmsAccount, SmsMessage, SmsOptOut, SmsStatus, SmsTemplate


def account_for(*, merchant_id: int) -> SmsAccount | None:
    """The merchant's account, enabled or not (None: it has none)."""
    return SmsAccount.objects.filter(merchant_id=merchant_id).first()


def template_for(*, merchant_id: int, event: str) -> SmsTemplate | None:
    """The enabled template of an event, or None."""
    templates = SmsTemplate.objects.filter(merchant_id=merchant_id, event=event, enabled=True)
    return templates.exclude(template_code="").first()


def is_opted_out(*, merchant_id: int, phone: str) -> bool:
    return SmsOptOut.objects.filter(merchant_id=merchant_id, phone=phone).exists()


def messages_of_order(*, order_id: int) -> QuerySet[SmsMessage]:
    return SmsMessage.objects.filter(order_id=order_id).order_by("id")


def messages_due_ids(*, now: datetime, limit: int = 1000) -> list[int]:
    return list(
        SmsMessage.objects.filter(status=SmsStatus.QUEUED, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
