"""The worker's fulfilment jobs (django-q2): batch runs, and every minute the automation
(``automation``) and the pushes to apply again (``tracking.pushes_retry``)."""

from __future__ import annotations

from .automation import auto_complete, auto_confirm, flag_stale_parcels
from .shipping import batch_run
from .tracking import pushes_retry


def ship_batch(batch_id: int | str) -> str:
    batch = batch_run(int(batch_id))
    return f"batch {batch.pk}: {batch.status}, {batch.shipped} shipped, {batch.failed} failed of {batch.total}"


def fulfilment_minute() -> str:
    confirmed = auto_confirm()
    completed = auto_complete()
    stale = flag_stale_parcels()
    retried = pushes_retry()
    return f"confirmed {confirmed}, completed {completed}, no movement {stale}, pushes retried {retried}"
