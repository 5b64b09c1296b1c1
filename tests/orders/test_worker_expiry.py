"""End to end: the django-q2 worker that ./run starts frees unpaid stock within seconds of pay_by."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from apps.core.redis import get_client
from apps.orders.apps import ensure_schedules
from apps.orders.models import Order, OrderStatus
from apps.orders.tasks import LEASE_KEY

from .. import servers
from ..factories import make_listing, order_body
from ..waiting import wait_until
from .invariants import assert_consistent

pytestmark = pytest.mark.django_db(transaction=True)


def test_worker_expires_unpaid_orders_within_5_seconds_of_pay_by(api, merchant):
    listing = make_listing(merchant, quota=3, window=900)  # outlives a slow start of the worker (up to 120 s below)
    ids = [
        api.post("/api/v1/orders", order_body(listing.pk, buyer=f"w{i}"), format="json").json()["id"] for i in range(2)
    ]
    ensure_schedules(sender=None)
    env = servers.child_env(LC_Q_SYNC="0", Q_WORKERS="1")
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def sweeping() -> bool:
        assert worker.poll() is None, "qcluster exited"
        return bool(get_client().exists(LEASE_KEY))

    try:
        wait_until(sweeping, timeout=120, interval=0.5, what="the expiry sweeper to start (its Redis lease)")
        pay_by = timezone.now() + timedelta(seconds=2)
        Order.objects.filter(public_id__in=ids).update(pay_by=pay_by)
        wait_until(
            lambda: not Order.objects.filter(public_id__in=ids, status=OrderStatus.PENDING_PAYMENT).exists(),
            timeout=60,
            interval=0.2,
            what="the worker to expire the unpaid orders",
        )
        # The promise under test is a latency (the sweeper runs every second), measured on the
        # orders' own timestamps, not on this test's clock.
        for order in Order.objects.filter(public_id__in=ids):
            cancelled_at = order.events.get(to_status=OrderStatus.CANCELLED).created_at
            assert cancelled_at >= pay_by
            assert (cancelled_at - pay_by).total_seconds() <= 5, cancelled_at - pay_by
        assert_consistent(listing.pk, expect_sold=0)
    finally:
        servers.stop(worker, grace=5)  # a sweeper mid-loop holds the cluster: do not wait for it
