"""The worker's fulfilment jobs (django-q2): batch runs, refunds to send, and every minute the
automation (``automation``), the pushes to apply again (``tracking.pushes_retry``), money owed
that no refund covers (``refunds.refunds_owed_sweep``) and refunds due (``refunds.refunds_due``)."""

from __future__ import annotations

from .automation import auto_complete, auto_confirm, flag_stale_parcels
from .refunds import refund_send, refunds_due, refunds_owed_sweep
from .shipping import batch_run
from .tracking import pushes_retry


def ship_batch(batch_id: int | str) -> str:
    batch = batch_run(int(batch_id))
    return f"batch {batch.pk}: {batch.status}, {batch.shipped} shipped, {batch.failed} failed of {batch.total}"


def send_refund(refund_id: int | str) -> str:
    return refund_send(int(refund_id))


def fulfilment_minute() -> str:
    confirmed = auto_confirm()
    completed = auto_complete()
    stale = flag_stale_parcels()
    retried = pushes_retry()
    owed = refunds_owed_sweep()
    sent = refunds_due()
    return (
        f"confirmed {confirmed}, completed {completed}, no movement {stale}, pushes retried {retried}, "
        f"refunds owed {owed}, refunds sent {sent}"
    )
