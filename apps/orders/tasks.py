"""Background jobs (django-q2).

django-q2 checks schedules about every 30 s, so per-second expiry runs as a sweeper: a task
scheduled every minute that loops for ``SWEEP_SECONDS`` expiring due orders once a second,
holding a Redis lease so exactly one sweeper runs at a time (a new one takes over when the
old one ends). Unpaid stock is back on sale within about a second of its deadline.
"""

from __future__ import annotations

import logging
import secrets
import time

from django.db import close_old_connections

from apps.core.redis import get_client

from .placement.gate.reconcile import reconcile_all
from .services.ledger import ledger_checkpoint
from .services.transitions import orders_expire_due

log = logging.getLogger(__name__)
SWEEP_SECONDS = 70
LEASE_KEY = "lc:sweeper:expiry"
LEASE_MS = 3000


def expire_due_orders() -> int:
    """One pass (also what tests and the management command call)."""
    return orders_expire_due()


def expiry_sweeper(seconds: float = SWEEP_SECONDS, interval: float = 1.0) -> int:
    token = secrets.token_hex(8)
    client = get_client()
    deadline = time.monotonic() + seconds
    total = 0
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            mine = client.set(LEASE_KEY, token, nx=True, px=LEASE_MS) or client.get(LEASE_KEY) == token
            if mine:
                client.pexpire(LEASE_KEY, LEASE_MS)
                total += orders_expire_due()
        except Exception:  # noqa: BLE001 - keep sweeping; Redis or the DB may be back next second
            log.warning("expiry sweep failed", exc_info=True)
            try:
                total += orders_expire_due()  # without Redis, sweep anyway: row locks keep it exact
            except Exception:  # noqa: BLE001
                log.warning("expiry sweep without lease failed", exc_info=True)
        finally:
            close_old_connections()
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
    try:
        if client.get(LEASE_KEY) == token:
            client.delete(LEASE_KEY)
    except Exception:  # noqa: BLE001
        pass
    return total


def reconcile_gates() -> dict:
    return reconcile_all()


def checkpoint_ledger() -> dict:
    """Every minute: sign a checkpoint of each merchant's chain that moved (outside any transaction)."""
    run = ledger_checkpoint()
    return {"written": len(run.written), "problems": [str(p) for p in run.problems], "busy": run.busy}


def export_orders(job_id: int) -> None:
    """Build an order-list export job's file (``apps.orders.exports``), the list rebuilt from the
    query string the user exported with, under that user's merchant scope."""
    from .admin import export_job_orders  # the admin builds the list; imported when a job runs
    from .exports import export_job_run
    from .models import ExportJob

    job = ExportJob.objects.select_related("user").filter(pk=job_id).first()
    if job is None:
        log.warning("export job vanished", extra={"job": job_id})
        return
    export_job_run(job=job, orders=export_job_orders(job))
