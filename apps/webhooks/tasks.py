"""Webhook jobs (django-q2): the first attempt of each delivery, and the retry sweep every minute."""

from __future__ import annotations

from datetime import datetime

from . import services


def deliver(delivery_id: int, now: datetime | None = None) -> str:
    d = services.delivery_attempt(delivery_id=delivery_id, now=now)
    return "not due" if d is None else d.status


def retry_due_deliveries() -> int:
    """Every minute: order events the after-commit hook missed are recorded from the ledger, then
    every due delivery is sent."""
    from .sources import order_events_catch_up

    order_events_catch_up()
    return services.deliveries_retry_due()


def replay(delivery_id: int) -> str:
    from .models import WebhookDelivery

    d = WebhookDelivery.objects.filter(pk=delivery_id).first()
    return "gone" if d is None else services.delivery_replay(delivery=d).status
