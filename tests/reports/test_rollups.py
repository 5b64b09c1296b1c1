"""The rollup job's bookkeeping: a scheduled show that sold nothing has no report (analyses across
shows never count it), a recomputation that finds the figures as they were leaves the caches'
stamp alone, a change inside the mark throttle's second is marked when the second is over, and a
show's minutes on air are rounded, not cut."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.catalog.models import LiveSession
from apps.core.redis import get_client
from apps.reports import rollups
from apps.reports.forecast import observations
from apps.reports.models import SessionReport, history_stamp
from apps.reports.rollups import DIRTY_KEY, mark_dirty, rollup_due, rollup_session
from apps.reports.slots import slot_analysis

from ..factories import make_listing, make_session
from .test_session_report import make_history

pytestmark = pytest.mark.django_db


def _end(session: LiveSession) -> None:
    LiveSession.objects.filter(pk=session.pk).update(status=LiveSession.Status.ENDED, ended_at=timezone.now())


def test_a_scheduled_show_that_sold_nothing_has_no_report_and_counts_nowhere(merchant) -> None:  # type: ignore[no-untyped-def]
    past = make_history(merchant, 21, 10)
    _end(past)
    future = make_session(merchant, title="next week")
    LiveSession.objects.filter(pk=future.pk).update(scheduled_at=timezone.now() + timedelta(days=20))
    make_listing(merchant, session=future, open_=False)
    rollup_due()
    assert not SessionReport.objects.filter(session=future).exists()
    assert rollup_session(future.pk) is None
    assert SessionReport.objects.get(session=past).ended
    assert slot_analysis(merchant_id=merchant.pk)["shows"] == 1
    assert {o.session_id for o in observations(merchant_id=merchant.pk)} <= {past.pk}
    # a live show is reported, but analyses across shows wait for it to end
    LiveSession.objects.filter(pk=future.pk).update(status=LiveSession.Status.LIVE, started_at=timezone.now())
    report = rollup_session(future.pk)
    assert report is not None and not report.ended
    assert slot_analysis(merchant_id=merchant.pk)["shows"] == 1


def test_a_recomputation_that_changes_nothing_leaves_the_stamp(merchant) -> None:  # type: ignore[no-untyped-def]
    session = make_history(merchant, 22, 12)
    _end(session)
    first = rollup_session(session.pk)
    assert first is not None and first.ended and first.changed_at is not None
    stamp = history_stamp(merchant.pk)
    analysis = slot_analysis(merchant_id=merchant.pk)
    again = rollup_session(session.pk)
    assert again is not None and again.changed_at == first.changed_at and again.computed_at > first.computed_at
    assert history_stamp(merchant.pk) == stamp
    order = session.orders.filter(paid_at__isnull=False).first()
    order.total += Decimal("1.00")
    order.save(update_fields=["total"])
    changed = rollup_session(session.pk)
    assert changed is not None and changed.changed_at > first.changed_at
    assert history_stamp(merchant.pk) != stamp
    assert Decimal(slot_analysis(merchant_id=merchant.pk)["streamers"][0]["gmv"]) == Decimal(
        analysis["streamers"][0]["gmv"]
    ) + Decimal("1.00")  # the cached analysis followed the change


def test_a_change_inside_the_throttle_second_is_marked_when_it_is_over(monkeypatch) -> None:
    monkeypatch.setattr(rollups, "MARK_EVERY_S", 0.2)
    rollups._marked.clear()
    client = get_client()
    mark_dirty(4242)
    assert client.spop(DIRTY_KEY) == "4242"  # the minute job takes the mark...
    mark_dirty(4242)  # ...and the show changes again inside the second
    mark_dirty(4242)
    assert not client.sismember(DIRTY_KEY, 4242)
    deadline = time.monotonic() + 5
    while not client.sismember(DIRTY_KEY, 4242) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert client.sismember(DIRTY_KEY, 4242)
    assert client.scard(DIRTY_KEY) == 1


def test_minutes_on_air_are_rounded_not_cut(merchant) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime

    from .test_slots import CN, show

    show(merchant, datetime(2026, 11, 2, 20, 0, tzinfo=CN), "0.333", [(5, 1, "100.00")])  # 20 minutes
    (cell,) = slot_analysis(merchant_id=merchant.pk)["cells"]
    assert cell["hours_on_air"] == "0.333" and cell["gmv_per_hour"] == "300.00"  # 100 / (20 / 60)
