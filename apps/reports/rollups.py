"""Keeping the rollups current: a show whose orders changed is marked (``order_changed``, after
commit), and the minute job recomputes the marked shows' reports (``rollup_due``). Marks live in
Redis (a set); a mark lost with Redis is made good by the same job, which also recomputes every
show live now or ended in the last ``RECENT`` whose report is older than ``STALE``. A page view
only reads ``SessionReport`` rows.

Marking is cheap on the order path: one ``SADD`` per show per process per second at most.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.catalog.models import Listing, LiveSession
from apps.core.redis import get_client
from apps.orders.services.tallies import take_tallies

from .figures import session_figures
from .models import SessionReport

log = logging.getLogger(__name__)
DIRTY_KEY = "lc:reports:dirty"
MARK_EVERY_S = 1.0
RECENT = timedelta(days=2)
STALE = timedelta(minutes=10)
BATCH = 50
_marked: dict[int, float] = {}
_deferred: set[int] = set()
_deferred_lock = threading.Lock()


def on_order_changed(sender: Any = None, order: Any = None, **_: Any) -> None:
    """``hooks.order_changed``: mark the order's show for the next rollup (never raises)."""
    session_id = getattr(order, "session_id", None)
    if session_id is not None:
        mark_dirty(session_id)


def mark_dirty(session_id: int) -> None:
    """Mark a show for the next rollup: at most one ``SADD`` per show per process per second. A
    change inside that second is not dropped: it is marked once more when the second is over
    (the job may have taken the first mark meanwhile, and the change would otherwise be lost for a
    show too old for the job's sweep)."""
    now = time.monotonic()
    last = _marked.get(session_id, -MARK_EVERY_S)
    if last > now - MARK_EVERY_S:
        with _deferred_lock:
            if session_id in _deferred:
                return
            _deferred.add(session_id)
        timer = threading.Timer(last + MARK_EVERY_S - now, _mark_deferred, (session_id,))
        timer.daemon = True
        timer.start()
        return
    _marked[session_id] = now
    if len(_marked) > 10_000:
        _marked.clear()
    _sadd(session_id)


def _mark_deferred(session_id: int) -> None:
    with _deferred_lock:
        _deferred.discard(session_id)
    _marked[session_id] = time.monotonic()
    _sadd(session_id)


def _sadd(session_id: int) -> None:
    try:
        get_client().sadd(DIRTY_KEY, session_id)
    except Exception:  # noqa: BLE001 - without Redis the job's sweep of recent shows catches it
        log.debug("report mark not stored", exc_info=True)


def rollup_session(session_id: int) -> SessionReport | None:
    """Recompute one show's report from its orders (None when the show is gone)."""
    session = LiveSession.objects.filter(pk=session_id).first()
    if session is None:
        SessionReport.objects.filter(session_id=session_id).delete()
        return None
    if session.status == LiveSession.Status.SCHEDULED and not session.orders.exists():
        # Not on air and nothing sold: no report (analyses across shows would count it as a show
        # that sold nothing); one appears with its first order or when it goes live.
        SessionReport.objects.filter(session_id=session_id).delete()
        return None
    take_tallies(Listing.objects.filter(session_id=session.pk).values_list("pk", flat=True))
    figures = session_figures(session)
    start = session.started_at or session.scheduled_at
    if start is None and figures["starts_at"]:
        start = datetime.fromisoformat(figures["starts_at"])
    end = session.ended_at or (timezone.now() if session.status == LiveSession.Status.LIVE else None)
    if end is None and figures["by_minute"]:
        end = start + timedelta(minutes=figures["by_minute"][-1]["minute"] + 1) if start else None
    hours = Decimal(str(round(max((end - start).total_seconds(), 0) / 3600, 3))) if start and end else Decimal(0)
    values = {
        "merchant_id": session.merchant_id,
        "starts_at": start,
        "streamer": session.streamer,
        "hours_on_air": hours,
        "orders": figures["orders"],
        "paid": figures["paid"],
        "units": figures["units"],
        "gmv": Decimal(figures["gmv"]),
        "refunded": Decimal(figures["refunds"]["amount"]),
        "figures": figures,
        "ended": session.status == LiveSession.Status.ENDED,
    }
    now = timezone.now()
    with transaction.atomic():
        report = SessionReport.objects.select_for_update().filter(session_id=session.pk).first()
        if report is None:
            return SessionReport.objects.create(session_id=session.pk, changed_at=now, **values)
        if any(getattr(report, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(report, k, v)
            report.changed_at = now
            report.save()
        else:  # as it was: only the time it was checked moves (the analyses' caches stay)
            SessionReport.objects.filter(pk=report.pk).update(computed_at=now)
            report.computed_at = now
    return report


def rollup_due(*, limit: int = BATCH) -> int:
    """The minute job: the marked shows, then recent shows whose report is stale. Returns how
    many reports were recomputed."""
    ids: set[int] = set()
    try:
        client = get_client()
        ids = {int(x) for x in (client.spop(DIRTY_KEY, limit) or [])}
    except Exception:  # noqa: BLE001 - Redis gone: the sweep below still runs
        log.warning("report marks not read; recent shows are recomputed", exc_info=True)
    now = timezone.now()
    stale = (
        LiveSession.objects.filter(
            Q(status=LiveSession.Status.LIVE)
            | Q(ended_at__gte=now - RECENT)
            | Q(scheduled_at__gte=now - RECENT, scheduled_at__lte=now)
        )
        .filter(Q(report__isnull=True) | Q(report__computed_at__lt=now - STALE))
        .values_list("pk", flat=True)[:limit]
    )
    ids.update(stale)
    done = 0
    for session_id in sorted(ids):
        try:
            rollup_session(session_id)
            done += 1
        except Exception:  # noqa: BLE001 - one show's fault never stops the others; marked again
            log.exception("report rollup failed", extra={"session": session_id})
            mark_dirty(session_id)
    return done


def rollup_all(*, merchant_id: int | None = None) -> int:
    """Recompute every show's report (``manage.py rollup_reports``; after generating history)."""
    qs = LiveSession.objects.all() if merchant_id is None else LiveSession.objects.filter(merchant_id=merchant_id)
    n = 0
    for session_id in qs.order_by("pk").values_list("pk", flat=True).iterator():
        rollup_session(session_id)
        n += 1
    return n


def rollup_generated(*, merchant_id: int) -> int:
    """Compute the reports of a merchant's generated shows that have none (after
    ``generate_history``: its shows are new rows; a show reported already is left alone)."""
    sessions = LiveSession.objects.filter(merchant_id=merchant_id, generated=True, report__isnull=True)
    n = 0
    for session_id in sessions.order_by("pk").values_list("pk", flat=True):
        rollup_session(session_id)
        n += 1
    return n
