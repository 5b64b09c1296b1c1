from __future__ import annotations

from django.db.models import QuerySet

from .models import WebhookDelivery, WebhookEndpoint


def endpoint_list(*, merchant_id: int) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(merchant_id=merchant_id).order_by("-id")


def delivery_list(*, merchant_id: int) -> QuerySet[WebhookDelivery]:
    return (
        WebhookDelivery.objects.filter(endpoint__merchant_id=merchant_id)
        .select_related("event", "endpoint")
        .prefetch_related("attempt_log")
        .order_by("-id")
    )
