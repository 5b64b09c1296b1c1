"""Keeping the Redis gate a faithful cache of database truth for one listing."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from apps.catalog.models import Listing
from apps.inventory import gate
from apps.inventory.services import gate_meta_for
from apps.orders.models import LIVE_STATUSES, OrderLine

log = logging.getLogger(__name__)
RECONCILE_MIN_AGE_MS = 30_000  # a hold younger than this may belong to a transaction in flight


def buyer_key(external_id: str) -> str:
    """The gate's buyer key: fixed length, no separators, same for API, storefront and rebuild."""
    return hashlib.blake2b(external_id.encode(), digest_size=10).hexdigest()


def live_holds(listing_id: int) -> list[tuple[str, str, int]]:
    rows = OrderLine.objects.filter(listing_id=listing_id, order__status__in=LIVE_STATUSES).values_list(
        "order__public_id", "order__buyer__external_id", "quantity"
    )
    return [(pid, buyer_key(ext), qty) for pid, ext, qty in rows]


def gate_rebuild(listing_id: int) -> bool:
    """Rebuild the listing's keys from the database under the rebuild lock (one rebuilder)."""
    with gate.gate_rebuild_lock(listing_id) as acquired:
        if not acquired:
            return False
        if gate.gate_state(listing_id) is not None:
            return True  # someone else rebuilt it while we waited
        listing = Listing.objects.filter(pk=listing_id).first()
        if listing is None:
            return False
        gate.gate_load(listing_id, gate_meta_for(listing), live_holds(listing_id))
        log.info("gate rebuilt from the database", extra={"listing": listing_id})
        return True


# --- reconciliation ------------------------------------------------------------------------------
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

    def as_dict(self) -> dict:
        return {**self.__dict__, "repaired": self.repaired}


def gate_reconcile(listing_id: int) -> ReconcileReport:
    """Compare the gate with the database and repair drift, safely while orders flow.

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
    for pid, (_bk, _qty, ts) in state["holds"].items():
        if pid not in db_holds and now_ms - ts > RECONCILE_MIN_AGE_MS:
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
