from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from apps.catalog.models import Listing
from apps.orders.models import Order, OrderEvent, OrderStatus
from apps.orders.placement.gate import scripts as gate
from apps.orders.services.ledger import ledger_verify
from apps.orders.services.transitions import order_transition, orders_expire_due
from apps.orders.tasks import expiry_sweeper

from .. import servers
from ..factories import make_listing, order_body
from .invariants import assert_consistent

pytestmark = pytest.mark.django_db(transaction=True)


def _place(api, listing, n=3):  # type: ignore[no-untyped-def]
    ids = []
    for i in range(n):
        r = api.post("/api/v1/orders", order_body(listing.pk, buyer=f"x{i}"), format="json")
        assert r.status_code == 201
        ids.append(r.json()["id"])
    return ids


def test_expired_orders_release_stock_exactly_once(api, merchant):
    listing = make_listing(merchant, quota=5, window=30)
    _place(api, listing, 3)
    later = timezone.now() + timedelta(seconds=31)
    assert orders_expire_due(now=later) == 3
    assert orders_expire_due(now=later) == 0
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.CANCELLED}
    assert_consistent(listing.pk, expect_sold=0)
    assert gate.gate_state(listing.pk)["left"] == 5


def test_expiry_sweeper_frees_stock_within_seconds_of_the_deadline(api, merchant):
    listing = make_listing(merchant, quota=2, window=30)
    _place(api, listing, 2)
    Order.objects.update(pay_by=timezone.now() + timedelta(seconds=1))
    started = time.monotonic()
    expiry_sweeper(seconds=3, interval=0.25)
    # It stops after about ``seconds`` (one sweep may overrun on a loaded machine); one that
    # never stopped would not come back at all.
    assert time.monotonic() - started < 60
    assert Listing.objects.get(pk=listing.pk).sold == 0
    assert_consistent(listing.pk, expect_sold=0)


def test_full_lifecycle_writes_a_verifiable_chain(api, merchant):
    listing = make_listing(merchant, quota=5)
    [oid] = _place(api, listing, 1)
    for to in (
        OrderStatus.PAID,
        OrderStatus.CONFIRMED,
        OrderStatus.SHIPPED,
        OrderStatus.DELIVERED,
        OrderStatus.COMPLETED,
    ):
        order_transition(public_id=oid, to=to, actor="test", reason=f"to {to}", carrier="SF", tracking_number="SF1")
    order = Order.objects.get(public_id=oid)
    assert order.status == OrderStatus.COMPLETED and order.version == 6
    assert list(order.events.order_by("seq").values_list("to_status", flat=True)) == [
        "pending_payment",
        "paid",
        "confirmed",
        "shipped",
        "delivered",
        "completed",
    ]
    assert ledger_verify() == []
    assert_consistent(listing.pk, expect_sold=1)


def test_invalid_transition_is_refused(api, merchant):
    listing = make_listing(merchant, quota=5)
    [oid] = _place(api, listing, 1)
    with pytest.raises(Exception) as exc:
        order_transition(public_id=oid, to=OrderStatus.SHIPPED, actor="test")
    assert getattr(exc.value, "code", None) == "invalid_transition"


def _verify_cmd() -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "verify_ledger"],
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        env=servers.child_env(),
    )


@pytest.mark.parametrize("tamper", ["alter", "delete", "insert"])
def test_verify_ledger_names_the_first_broken_event(api, merchant, tamper):
    listing = make_listing(merchant, quota=5)
    _place(api, listing, 3)
    ok = _verify_cmd()
    assert ok.returncode == 0, ok.stderr
    victim = OrderEvent.objects.order_by("seq")[1]
    if tamper == "alter":
        OrderEvent.objects.filter(pk=victim.pk).update(reason="forged")
    elif tamper == "delete":
        OrderEvent.objects.filter(pk=victim.pk).delete()
    else:
        for ev in OrderEvent.objects.filter(seq__gte=victim.seq).order_by("-seq"):
            OrderEvent.objects.filter(pk=ev.pk).update(seq=ev.seq + 1)
        e = OrderEvent.objects.get(seq=1)
        OrderEvent.objects.create(
            merchant=e.merchant,
            seq=2,
            order=e.order,
            to_status="paid",
            actor="evil",
            created_at=timezone.now(),
            prev_hash=e.hash,
            hash="f" * 64,
        )
    bad = _verify_cmd()
    assert bad.returncode == 1
    assert "BROKEN" in bad.stderr and "seq 2" in bad.stderr


def test_reconcile_stock_command_repairs_drift(api, merchant, capsys):
    listing = make_listing(merchant, quota=5)
    _place(api, listing, 2)
    from apps.core.redis import get_client
    from apps.orders.placement.gate.keys import listing_keys

    get_client().hset(listing_keys(listing.pk)["state"], "left", 99)
    call_command("reconcile_stock")
    out = capsys.readouterr().out
    assert '"recounted": true' in out
    assert_consistent(listing.pk, expect_sold=2)
