"""Reads of fulfilment: a merchant's carrier accounts and the tracking push URL each one gives
the carrier, batches, and the exception queue's open counts."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from .models import CarrierAccount, FulfilmentException, ShipBatch, ShipBatchItem

PUSH_URL_NAME = "fulfilment:carrier-push"
"""The URL name of the tracking push receiver (``views.carrier_push``); :func:`account_push_url`
builds its path without a URL lookup (a test holds the two equal)."""
PUSH_PATH = "/hooks/carriers/{carrier}/{push_token}"


def account_list(*, merchant_id: int) -> QuerySet[CarrierAccount]:
    return CarrierAccount.objects.filter(merchant_id=merchant_id).order_by("carrier", "name", "id")


def account_default(*, merchant_id: int) -> CarrierAccount | None:
    """The merchant's default account (enabled), or None."""
    return CarrierAccount.objects.filter(merchant_id=merchant_id, is_default=True, enabled=True).first()


def account_by_push_token(*, carrier: str, push_token: str) -> CarrierAccount | None:
    """The enabled account a push URL names, or None (an unknown or disabled account's pushes are
    refused)."""
    return CarrierAccount.objects.filter(carrier=carrier, push_token=push_token, enabled=True).first()


def _base_url(request: HttpRequest | None) -> str:
    if settings.PUBLIC_BASE_URL:
        return settings.PUBLIC_BASE_URL.rstrip("/")
    if request is not None:
        return request.build_absolute_uri("/").rstrip("/")
    return ""


def account_push_url(account: CarrierAccount, request: HttpRequest | None = None) -> str:
    """The absolute URL tracking pushes of this account go to: ``PUBLIC_BASE_URL`` (else the
    request's scheme and host) + ``/hooks/carriers/<carrier>/<push_token>``. Kdniao: set it as the
    push URL in its console; Kuaidi100: every subscription names it as its callback URL. Without
    either base, the path alone."""
    return _base_url(request) + PUSH_PATH.format(carrier=account.carrier, push_token=account.push_token)


def batch_list(*, merchant_id: int) -> QuerySet[ShipBatch]:
    return ShipBatch.objects.filter(merchant_id=merchant_id).order_by("-id")


def batch_open_items(batches: list[ShipBatch]) -> dict[int, int]:
    """Per batch, how many of its orders have no outcome yet (pending or waiting to retry)."""
    rows = (
        ShipBatchItem.objects.filter(
            batch__in=batches, result__in=(ShipBatchItem.Result.PENDING, ShipBatchItem.Result.RETRY)
        )
        .values("batch_id")
        .annotate(n=Count("pk"))
        .values_list("batch_id", "n")
    )
    return dict(rows)


def batch_items(batch: ShipBatch) -> QuerySet[ShipBatchItem]:
    return ShipBatchItem.objects.filter(batch=batch).select_related("order", "parcel").order_by("pk")


def exception_open_counts(*, merchant_ids: list[int] | None) -> dict[str, int]:
    """The open exceptions of these merchants (None: every merchant) by kind, in one query (GROUP
    BY kind, on the ``(merchant, kind, resolved_at)`` index); kinds with none are absent."""
    qs = FulfilmentException.objects.filter(resolved_at__isnull=True)
    if merchant_ids is not None:
        qs = qs.filter(merchant_id__in=merchant_ids)
    return dict(qs.order_by().values("kind").annotate(n=Count("pk")).values_list("kind", "n"))
