"""Redis gate vs database: find and repair drift for every listing that may still sell."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from apps.catalog.models import Listing
from apps.core.redis import get_client

log = logging.getLogger(__name__)


def reconcile_all(*, listing_ids: list[int] | None = None) -> dict:
    from apps.orders.services.gate_sync import gate_reconcile

    if listing_ids is None:
        recent = timezone.now() - timedelta(days=2)
        listing_ids = list(
            Listing.objects.exclude(status=Listing.Status.CLOSED, closes_at__lt=recent).values_list("pk", flat=True)
        )
        try:
            due = get_client().spop("lc:reconcile:due", 1000) or []
            listing_ids = sorted(set(listing_ids) | {int(x) for x in due})
        except Exception:  # noqa: BLE001
            pass
    reports = [gate_reconcile(pk) for pk in listing_ids]
    repaired = [r.as_dict() for r in reports if r.repaired]
    if repaired:
        log.warning("gate drift repaired", extra={"repaired": repaired})
    return {"checked": len(reports), "repaired": repaired}
