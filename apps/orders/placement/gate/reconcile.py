"""Gate vs database: find and repair drift, safely while orders flow (every listing that may
still sell, every minute, and first the listings the order path flagged)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.catalog.models import Listing
from apps.core.redis import get_client

from . import scripts as gate
from .keys import RECONCILE_DUE
from .rebuild import gate_meta_for, gate_rebuild, live_holds

log = logging.getLogger(__name__)


def orphan_min_age_ms() -> int:
    """A hold younger than this may still belong to an order in flight: one waiting in a batch can
    commit up to ORDER_BATCH_TIMEOUT + ORDER_BATCH_TRUTH_TIMEOUT after its hold was taken."""
    in_flight = (settings.ORDER_BATCH_TIMEOUT + settings.ORDER_BATCH_TRUTH_TIMEOUT) * 1000
    return int(max(30_000, in_flight + 10_000))


@dataclass
class ReconcileReport:
    listing_id: int
    loaded: bool = False
    released_orphans: int = 0
    adopted: int = 0
    recounted: bool = False
    meta_synced: bool = False

    @property
    def repaired(self) -> bool:
        return self.loaded or bool(self.released_orphans or self.adopted) or self.recounted

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "repaired": self.repaired}


def gate_reconcile(listing_id: int) -> ReconcileReport:
    """Compare one listing's gate with the database and repair drift.

    Holds the database no longer has (older than a transaction could be in flight) are released;
    live orders Redis lost are adopted; then ``left`` and buyer counts are recounted from holds.
    """
    report = ReconcileReport(listing_id)
    listing = Listing.objects.filter(pk=listing_id).first()
    if listing is None:
        return report
    state = gate.gate_state(listing_id)
    if state is None:
        report.loaded = gate_rebuild(listing_id)
        return report
    gate.gate_meta(listing_id, gate_meta_for(listing))
    report.meta_synced = True
    db_holds = {pid: (bk, qty) for pid, bk, qty in live_holds(listing_id)}
    now_ms = int(time.time() * 1000)
    min_age = orphan_min_age_ms()
    for pid, (_bk, _qty, ts) in state["holds"].items():
        if pid not in db_holds and now_ms - ts > min_age:
            if gate.gate_release(listing_id, hold_id=pid) == gate.RELEASED:
                report.released_orphans += 1
    missing = [pid for pid in db_holds if pid not in state["holds"]]
    for pid in missing:
        bk, qty = db_holds[pid]
        if gate.gate_adopt(listing_id, hold_id=pid, buyer=bk, quantity=qty, ts_ms=now_ms) == gate.ADOPTED:
            report.adopted += 1
    if missing:
        # An order cancelled between our read and the adopt must not stay held.
        still_live = {pid for pid, _bk, _q in live_holds(listing_id)}
        for pid in missing:
            if pid not in still_live:
                gate.gate_release(listing_id, hold_id=pid)
    report.recounted = gate.gate_recount(listing_id)
    return report


def reconcile_all(*, listing_ids: list[int] | None = None) -> dict[str, Any]:
    """Reconcile the given listings, or every listing that may still sell plus those flagged."""
    if listing_ids is None:
        recent = timezone.now() - timedelta(days=2)
        listing_ids = list(
            Listing.objects.exclude(status=Listing.Status.CLOSED, closes_at__lt=recent).values_list("pk", flat=True)
        )
        try:
            due = get_client().spop(RECONCILE_DUE, 1000) or []
            listing_ids = sorted(set(listing_ids) | {int(x) for x in due})
        except Exception:  # noqa: BLE001 - Redis gone: the listings from the database are enough
            pass
    reports = [gate_reconcile(pk) for pk in listing_ids]
    repaired = [r.as_dict() for r in reports if r.repaired]
    if repaired:
        log.warning("gate drift repaired", extra={"repaired": repaired})
    return {"checked": len(reports), "repaired": repaired}
