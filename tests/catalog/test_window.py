"""One table of cases for "this listing is open", run against every implementation that must
remain: the definition (``window.is_open``), the model's ``effective_status``, the ORM filters
(``open_q``, ``status_q``), the gate (``gate_window`` loaded into Redis and asked by
``reserve.lua``) and, on PostgreSQL, the SQL function ``lc_listing_open`` that the placement
function uses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.catalog import window
from apps.catalog.models import Listing
from apps.orders.placement.gate import scripts as gate
from apps.orders.placement.gate.rebuild import gate_meta_for

from ..factories import make_listing

pytestmark = pytest.mark.django_db(transaction=True)
H = timedelta(hours=1)

# (status, opens_at offset, closes_at offset, open?) — offsets from now; None = unset.
CASES = [
    ("open", None, None, True),
    ("open", -H, None, True),
    ("open", +H, None, False),  # opened by hand with a start still ahead
    ("open", None, +H, True),
    ("open", None, -H, False),  # window ended
    ("open", -2 * H, -H, False),
    ("open", -H, +H, True),
    ("scheduled", None, None, False),
    ("scheduled", -H, None, True),  # the start time came: open without anyone pressing a button
    ("scheduled", +H, None, False),
    ("scheduled", -H, +H, True),
    ("scheduled", -2 * H, -H, False),
    ("scheduled", None, +H, False),
    ("closed", None, None, False),
    ("closed", -H, None, False),
    ("closed", -H, +H, False),
    ("closed", -2 * H, -H, False),
]


def _at(now, offset):  # type: ignore[no-untyped-def]
    return None if offset is None else now + offset


def test_the_definition_and_its_status():
    now = timezone.now()
    for status, opens, closes, expected in CASES:
        kw = {"status": status, "opens_at": _at(now, opens), "closes_at": _at(now, closes)}
        assert window.is_open(**kw, now=now) is expected, (status, opens, closes)
        assert (window.effective_status(**kw, now=now) == window.OPEN) is expected


def test_orm_filters_gate_and_sql_agree_with_the_definition(merchant):
    now = timezone.now()
    listings = []
    for i, (status, opens, closes, _expected) in enumerate(CASES):
        listing = make_listing(merchant, quota=1, open_=False)
        Listing.objects.filter(pk=listing.pk).update(
            status=status, opens_at=_at(now, opens), closes_at=_at(now, closes)
        )
        listing.refresh_from_db()
        listings.append((i, listing))
    ids = [x.pk for _i, x in listings]
    open_ids = set(Listing.objects.filter(window.open_q(now), pk__in=ids).values_list("pk", flat=True))
    by_status = {
        s: set(Listing.objects.filter(window.status_q(s, now), pk__in=ids).values_list("pk", flat=True))
        for s in (window.OPEN, window.SCHEDULED, window.CLOSED)
    }
    now_ms = int(now.timestamp() * 1000)
    for i, listing in listings:
        status, opens, closes, expected = CASES[i]
        case = (status, opens, closes)
        assert (listing.pk in open_ids) is expected, ("open_q", case)
        assert listing.is_open(now) is expected, ("model", case)
        assert listing.pk in by_status[listing.effective_status(now)], ("status_q", case)
        assert sum(listing.pk in v for v in by_status.values()) == 1, ("status_q partitions", case)
        gate.gate_load(listing.pk, gate_meta_for(listing), [])
        said = gate.gate_reserve(listing.pk, hold_id=f"w{i}", buyer="b", quantity=1, now_ms=now_ms).status
        assert (said == gate.OK) is expected, ("gate", case, said)
        assert expected or said == gate.CLOSED, ("gate says closed", case, said)
        if connection.vendor == "postgresql":
            with connection.cursor() as cur:
                cur.execute(
                    "SELECT lc_listing_open(%s, %s, %s, %s)", [status, listing.opens_at, listing.closes_at, now]
                )
                assert cur.fetchone()[0] is expected, ("lc_listing_open", case)
