"""The post-show report's figures equal figures computed independently from the orders table (the
database's own aggregates, not the report's Python), over random histories with cancels, expiries,
refunds, platform orders and returning buyers; the rollup follows order changes; the API answers
them exactly, per merchant."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Count, Q, Sum
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.catalog.models import LiveSession
from apps.core.redis import get_client
from apps.orders.models import Buyer, Order, OrderLine, OrderStatus
from apps.orders.services.transitions import EXPIRY_REASON, order_transition
from apps.reports.models import SessionReport
from apps.reports.rollups import DIRTY_KEY, _marked, rollup_due, rollup_session

from ..factories import make_listing, make_session, order_body

S = OrderStatus
CHANNELS = ["storefront", "api", "douyin", "kuaishou", "taobao"]
PLACES = [("浙江省", "杭州市"), ("浙江省", "宁波市"), ("广东省", "深圳市"), ("江苏省", "南京市"), ("", "")]
# (status, paid?, cancel reason)
FATES = [
    (S.PENDING_PAYMENT, False, ""),
    (S.PAID, True, ""),
    (S.CONFIRMED, True, ""),
    (S.SHIPPED, True, ""),
    (S.COMPLETED, True, ""),
    (S.CANCELLED, False, EXPIRY_REASON),
    (S.CANCELLED, False, "cancelled by buyer"),
    (S.REFUNDED, True, "cancelled by merchant"),
    (S.REFUND_PENDING, True, "cancelled by merchant"),
]


def _pid() -> str:
    return "o" + uuid.uuid4().hex[:24]


def make_history(merchant: Any, seed: int, n_orders: int) -> LiveSession:
    """A show with two listings and ``n_orders`` orders of random fates, buyers from a small pool
    (some of whom bought in an earlier show), channels and places."""
    rng = random.Random(seed)
    start = timezone.now() - timedelta(days=3, hours=rng.randint(0, 48))
    earlier = make_session(merchant, title=f"earlier {seed}")
    LiveSession.objects.filter(pk=earlier.pk).update(started_at=start - timedelta(days=7))
    session = make_session(merchant, title=f"show {seed}")
    listings = [
        make_listing(merchant, quota=1000, on_hand=1000, price=price, session=session, open_=False)
        for price in ("9.90", "59.00")
    ]
    LiveSession.objects.filter(pk=session.pk).update(started_at=start, status=LiveSession.Status.ENDED)
    session.refresh_from_db()
    tag = uuid.uuid4().hex[:8]
    buyers = [Buyer.objects.create(merchant=merchant, external_id=f"h{tag}-{i}") for i in range(max(3, n_orders // 2))]
    for buyer in rng.sample(buyers, k=len(buyers) // 3):  # returning buyers: paid in the earlier show
        old = Order.objects.create(
            merchant=merchant, public_id=_pid(), session=earlier, buyer=buyer, total=Decimal("5.00")
        )
        Order.objects.filter(pk=old.pk).update(
            status=S.COMPLETED, paid_at=start - timedelta(days=7), created_at=start - timedelta(days=7)
        )
    for _ in range(n_orders):
        status, paid, reason = rng.choice(FATES)
        listing = rng.choice(listings)
        qty = rng.randint(1, 3)
        freight = Decimal(rng.choice(["0.00", "6.00"]))
        total = listing.price * qty + freight
        province, city = rng.choice(PLACES)
        at = start + timedelta(seconds=rng.randint(-30, 3600))
        order = Order.objects.create(
            merchant=merchant,
            public_id=_pid(),
            session=session,
            listing=listing,
            buyer=rng.choice(buyers),
            channel=rng.choice(CHANNELS),
            total=total,
            shipping_address={"province": province, "city": city} if province else {},
        )
        OrderLine.objects.create(
            order=order, listing=listing, sku=listing.sku, quantity=qty, unit_price=listing.price,
            line_total=listing.price * qty,
        )  # fmt: skip
        due = Decimal(0)
        if status in (S.REFUNDED, S.REFUND_PENDING):
            due = total
        elif paid and rng.random() < 0.2:  # a part refunded after shipping
            due = (total / 2).quantize(Decimal("0.01"))
        Order.objects.filter(pk=order.pk).update(
            status=status, paid_at=at + timedelta(seconds=30) if paid else None, created_at=at, cancel_reason=reason,
            refund_due=due, refunded=due if status != S.REFUND_PENDING else Decimal(0),
        )  # fmt: skip
    return session


def _cents(value: Any) -> Decimal:
    """A database sum to the fen (SQLite sums decimals as floats: 8705.49999999999)."""
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def independent(session: LiveSession) -> dict[str, Any]:
    """The same figures from the database's aggregates over the orders table."""
    orders = Order.objects.filter(session=session)
    paid = orders.filter(paid_at__isnull=False)
    owing = Q(refund_due__gt=0)
    agg = paid.aggregate(
        gmv=Sum("total"), due=Sum("refund_due", filter=owing), back=Sum("refunded", filter=owing),
        n_refund=Count("pk", filter=owing),
    )  # fmt: skip
    buyers = set(paid.values_list("buyer_id", flat=True))
    start = session.started_at
    returning = set(
        Order.objects.filter(buyer_id__in=buyers, paid_at__isnull=False, created_at__lt=start).values_list(
            "buyer_id", flat=True
        )
    )
    per_buyer = paid.values("buyer_id").annotate(n=Count("pk"))
    by_channel = {
        row["channel"]: (row["n"], row["p"], _cents(row["g"]))
        for row in orders.values("channel").annotate(
            n=Count("pk"), p=Count("pk", filter=Q(paid_at__isnull=False)),
            g=Sum("total", filter=Q(paid_at__isnull=False)),
        )
    }  # fmt: skip
    by_province = {
        (row["shipping_address__province"] or "?"): (row["p"], _cents(row["g"]))
        for row in paid.values("shipping_address__province").annotate(p=Count("pk"), g=Sum("total"))
    }
    return {
        "orders": orders.count(),
        "paid": paid.count(),
        "pending": orders.filter(status=S.PENDING_PAYMENT).count(),
        "expired": orders.filter(status=S.CANCELLED, cancel_reason=EXPIRY_REASON, paid_at__isnull=True).count(),
        "cancelled": orders.filter(status=S.CANCELLED)
        .exclude(cancel_reason=EXPIRY_REASON, paid_at__isnull=True)
        .count(),
        "units": OrderLine.objects.filter(order__in=paid).aggregate(u=Sum("quantity"))["u"] or 0,
        "gmv": _cents(agg["gmv"]),
        "refund_orders": agg["n_refund"],
        "refund_amount": _cents(agg["due"]),
        "paid_back": _cents(agg["back"]),
        "buyers": len(buyers),
        "returning": len(returning),
        "repeat": sum(1 for row in per_buyer if row["n"] >= 2),
        "channels": by_channel,
        "provinces": by_province,
    }


def assert_matches(report: SessionReport, want: dict[str, Any]) -> None:
    f = report.figures
    for key in ("orders", "paid", "pending", "expired", "cancelled", "units"):
        assert f[key] == want[key], key
    assert Decimal(f["gmv"]) == want["gmv"] == report.gmv
    assert (report.orders, report.paid, report.units) == (want["orders"], want["paid"], want["units"])
    assert f["refunds"]["orders"] == want["refund_orders"]
    assert Decimal(f["refunds"]["amount"]) == want["refund_amount"]
    assert Decimal(f["refunds"]["paid_back"]) == want["paid_back"]
    assert all(len(f[k].split(".")[1]) == 2 for k in ("gmv", "net", "avg_basket"))  # money to the fen
    assert Decimal(f["net"]) == want["gmv"] - want["refund_amount"]
    assert f["buyers"]["buyers"] == want["buyers"] and f["buyers"]["returning"] == want["returning"]
    assert f["buyers"]["new"] == want["buyers"] - want["returning"] and f["buyers"]["repeat"] == want["repeat"]
    channels = {c["channel"]: (c["orders"], c["paid"], Decimal(c["gmv"])) for c in f["channels"]}
    assert channels == want["channels"]
    provinces = {r["province"]: (r["paid"], Decimal(r["gmv"])) for r in f["regions"]}
    assert provinces == want["provinces"]
    for region in f["regions"]:  # the cities add up to their province
        assert sum(c["paid"] for c in region["cities"]) == region["paid"]
        assert sum(Decimal(c["gmv"]) for c in region["cities"]) == Decimal(region["gmv"])
    assert sum(m["orders"] for m in f["by_minute"]) == want["orders"]
    assert sum(Decimal(m["gmv"]) for m in f["by_minute"]) == want["gmv"]
    assert sum(li["units"] for li in f["listings"]) + f["unlisted"]["units"] == want["units"]
    goods = want["gmv"] - _paid_freight(report.session)
    assert sum(Decimal(li["gmv"]) for li in f["listings"]) + Decimal(f["unlisted"]["gmv"]) == goods
    assert sum(Decimal(c["gmv"]) for c in f["categories"]) == goods
    assert sum(c["units"] for c in f["categories"]) == want["units"]


def _paid_freight(session: LiveSession) -> Decimal:
    paid = Order.objects.filter(session=session, paid_at__isnull=False)
    lines = _cents(OrderLine.objects.filter(order__in=paid).aggregate(s=Sum("line_total"))["s"])
    return _cents(paid.aggregate(s=Sum("total"))["s"]) - lines


@pytest.mark.django_db
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), n_orders=st.integers(0, 60))
def test_the_report_equals_the_orders_table(merchant, seed: int, n_orders: int) -> None:  # type: ignore[no-untyped-def]
    session = make_history(merchant, seed, n_orders)
    report = rollup_session(session.pk)
    assert report is not None
    assert_matches(report, independent(session))


@pytest.mark.django_db
def test_a_change_is_marked_and_the_minute_job_follows_it(merchant, api) -> None:  # type: ignore[no-untyped-def]
    """Orders placed and expired through the real paths: each change marks the show (after commit),
    and the minute job's report follows, equal to the orders table again."""
    redis_client = get_client()
    listing = make_listing(merchant, quota=20, limit=5)
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        for n in range(3):
            r = api.post("/api/v1/orders", order_body(listing.pk, buyer=f"m{n}"), format="json")
            assert r.status_code == 201, r.content
    session = listing.session
    assert redis_client.sismember(DIRTY_KEY, session.pk)
    assert rollup_due() >= 1
    assert not redis_client.sismember(DIRTY_KEY, session.pk)
    report = SessionReport.objects.get(pk=session.pk)
    assert (report.figures["orders"], report.figures["pending"], report.figures["expired"]) == (3, 3, 0)
    _marked.clear()  # another process, or a second later
    with TestCase.captureOnCommitCallbacks(execute=True):
        order_transition(
            order=Order.objects.filter(session=session).first(), to=S.CANCELLED, actor="system:expiry",
            reason=EXPIRY_REASON,
        )  # fmt: skip
    assert redis_client.sismember(DIRTY_KEY, session.pk)
    rollup_due()
    report.refresh_from_db()
    assert (report.figures["pending"], report.figures["expired"]) == (2, 1)
    session.refresh_from_db()
    assert_matches(report, independent(session))


@pytest.mark.django_db
def test_the_api_answers_the_rollup_per_merchant(merchant, other_merchant, api, other_api) -> None:  # type: ignore[no-untyped-def]
    session = make_history(merchant, 3, 25)
    r = api.get(f"/api/v1/reports/sessions/{session.pk}")
    assert r.status_code == 404 and r.json()["code"] == "report_not_ready"
    rollup_session(session.pk)
    r = api.get(f"/api/v1/reports/sessions/{session.pk}")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["id"] == session.pk and Decimal(body["figures"]["gmv"]) == independent(session)["gmv"]
    assert isinstance(body["figures"]["gmv"], str) and body["figures"]["listings"][0]["sku"]
    listed = api.get("/api/v1/reports/sessions").json()
    assert [row["id"] for row in listed["results"]] == [session.pk]
    # another merchant's show: 404, and nothing of it in the list
    assert other_api.get(f"/api/v1/reports/sessions/{session.pk}").json()["code"] == "not_found"
    assert other_api.get("/api/v1/reports/sessions").json()["results"] == []
    assert api.get("/api/v1/reports/sessions/999999").json()["code"] == "not_found"
    assert api.get("/api/v1/reports/sessions?nope=1").json()["code"] == "unknown_parameter"


@pytest.mark.django_db
def test_generated_history_comes_with_its_reports_equal_to_its_orders(merchant) -> None:  # type: ignore[no-untyped-def]
    from django.core.management import call_command

    call_command("generate_history", "--merchant", merchant.slug, "--orders", "600", "--shows", "5", "--seed", "3",
                 "-v", "0")  # fmt: skip
    sessions = list(LiveSession.objects.filter(merchant=merchant, generated=True))
    assert len(sessions) == 5 and SessionReport.objects.filter(merchant=merchant).count() == 5
    assert sum(r.orders for r in SessionReport.objects.filter(merchant=merchant)) == 600
    for session in sessions:
        report = SessionReport.objects.get(pk=session.pk)
        assert_matches(report, independent(session))
        assert report.figures["categories"] and report.hours_on_air > 0
