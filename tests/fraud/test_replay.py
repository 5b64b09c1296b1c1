"""The traffic simulator's replay half against a real server: uvicorn workers (as in production)
on a socket, this run's database and Redis, orders and payments through the public HTTP API."""

from __future__ import annotations

import asyncio
import io
import re
from collections import Counter

import httpx
import pytest
from django.conf import settings
from django.core.management import call_command

from apps.catalog.models import Listing
from apps.fraud.replay import ReplayResult, ReplayTarget, replay_async, schedule_open
from apps.fraud.simulation import SimulationConfig, SniperKnobs, generate_attempts
from apps.orders.models import Order, OrderStatus

from .. import servers
from ..factories import make_listing
from ..orders.invariants import assert_consistent

pytestmark = pytest.mark.django_db(transaction=True)

SPEED = 25.0


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    with servers.uvicorn(workers=2) as port:
        yield port


def _replay(target: ReplayTarget, config: SimulationConfig) -> ReplayResult:
    attempts = generate_attempts(config)
    lead_s = -min(a.t_ms for a in attempts) / SPEED / 1000 + 1.0  # time to be ready before the first shot

    async def run() -> ReplayResult:
        async with httpx.AsyncClient(base_url=target.base_url) as client:
            opens_at = await schedule_open(client, target, opens_in_s=lead_s)
        return await replay_async(attempts, target=target, opens_at=opens_at, speed=SPEED, concurrency=100)

    return asyncio.run(run())


def test_replayed_show_sells_the_quota_pays_the_payers_and_refuses_early_shots(server, merchant, token):
    listing = make_listing(merchant, quota=80, on_hand=100, limit=2)
    config = SimulationConfig(
        seed=11,
        n_orders=300,
        quota=80,
        per_buyer_limit=2,
        window_ms=60_000,
        # shots well ahead of open (0.6 to 5 s of wall clock at SPEED x), so they are answered
        # before it even on a loaded machine whose first answers take a second
        sniper=SniperKnobs(period_ms=(15000.0, 25000.0), shots_before_open=(2, 5), shots_after_open=(0, 1)),
    )
    attempts = {a.attempt_id: a for a in generate_attempts(config)}
    target = ReplayTarget(
        base_url=f"http://127.0.0.1:{server}",
        token=token,
        listing_id=listing.pk,
        payment_secret=settings.PAYMENT_WEBHOOK_SECRET,
    )
    result = _replay(target, config)
    print(result.format())  # shown with -s: the measured rate and latencies

    assert len(result.outcomes) == 300
    assert [o for o in result.outcomes if o.error or o.status is None] == []  # every attempt answered
    assert result.server_errors() == []  # no 5xx (a 503 is retried with the same key)
    codes = Counter(o.code for o in result.outcomes if not o.accepted)
    assert set(codes) <= {"listing_closed", "sold_out", "over_buyer_limit", "risk_blocked"}, codes

    # accepted orders are exactly the listing's orders, within the quota
    accepted = {o.order_id: o for o in result.accepted}
    in_db = dict(Order.objects.filter(listing_id=listing.pk).values_list("public_id", "status"))
    assert set(accepted) == set(in_db)
    listing.refresh_from_db()
    units = sum(o.quantity for o in accepted.values())
    assert units == listing.sold <= 80
    assert codes["sold_out"] > 0 and units == 80  # 300 attempts for 80 units: it sells out

    # every accepted order whose buyer pays is paid; the others still wait for payment
    payers = {oid for oid, o in accepted.items() if attempts[o.attempt_id].pays}
    assert payers and all(accepted[oid].paid for oid in payers)
    assert {oid for oid, status in in_db.items() if status == OrderStatus.PAID} == payers
    assert {oid for oid, status in in_db.items() if status == OrderStatus.PENDING_PAYMENT} == set(accepted) - payers

    # answered before the listing opened: listing_closed; sent after it opened: never
    early = [o for o in result.outcomes if o.answered_ms is not None and o.answered_ms < 0]
    # (or blocked by the risk rules first: a sniper's script announcing itself)
    assert early and all(o.t_ms < 0 and o.code in ("listing_closed", "risk_blocked") for o in early)
    assert not [o for o in result.outcomes if o.code == "listing_closed" and (o.sent_ms or 0) > 5]

    # the summary counts per label add up
    summary = result.summary()
    assert sum(s.attempts for s in summary.values()) == 300
    assert sum(s.accepted for s in summary.values()) == len(accepted)
    assert sum(s.paid for s in summary.values()) == len(payers)
    assert summary[("sniper", "sniper")].refused["listing_closed"] == sum(
        1 for o in result.outcomes if o.kind == "sniper" and o.code == "listing_closed"
    )
    assert "total" in result.format()
    assert_consistent(listing.pk)


def test_replay_reports_connection_errors_without_crashing():
    port = servers.free_port()  # nobody listens there
    target = ReplayTarget(base_url=f"http://127.0.0.1:{port}", token="x", listing_id=1, payment_secret="s")
    attempts = generate_attempts(SimulationConfig(seed=2, n_orders=20, window_ms=2000))

    async def run() -> ReplayResult:
        from datetime import UTC, datetime

        return await replay_async(
            attempts, target=target, opens_at=datetime.now(UTC), speed=1000, max_retries=1, max_retry_wait_s=0.01
        )

    result = asyncio.run(run())
    assert len(result.outcomes) == 20
    assert all(o.status is None and o.error and "Connect" in o.error and o.tries == 2 for o in result.outcomes)
    assert sum(s.errors for s in result.summary().values()) == 20


def test_simulate_show_command_replays_and_prints_the_summary(server, merchant, token):
    listing = make_listing(merchant, quota=30, on_hand=30, limit=2, open_=False)
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "simulate_show",
        "--base-url", f"http://127.0.0.1:{server}",
        "--token", token,
        "--listing", str(listing.pk),
        "--seed", "5",
        "--orders", "120",
        "--speed", "1000",
        "--opens-in", "0.5",
        stdout=out,
        stderr=err,
    )  # fmt: skip
    text = out.getvalue()
    total = re.search(r"^total\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", text, re.M)
    assert total, text
    attempts, accepted, units, paid = map(int, total.groups())
    assert attempts == 120
    assert accepted == Order.objects.filter(listing_id=listing.pk).count() > 0
    assert units == Listing.objects.get(pk=listing.pk).sold <= 30
    assert paid == Order.objects.filter(listing_id=listing.pk, status=OrderStatus.PAID).count()
    assert "before open:" in text and "5xx 0" in text
    assert_consistent(listing.pk)


def test_replay_retries_a_503_with_the_same_key_and_signs_the_payment_like_the_provider(settings):
    """The client side alone, against a scripted transport: a 503 with Retry-After is retried with
    the same Idempotency-Key, and the payment notification verifies with the server's own check."""
    from datetime import UTC, datetime

    from apps.orders.services.payments import parse_notice, verify_signature

    settings.PAYMENT_WEBHOOK_SECRET = "replay-secret"
    attempt = next(a for a in generate_attempts(SimulationConfig(seed=4, n_orders=50, window_ms=2000)) if a.pays)
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api/v1/orders":
            if len([r for r in seen if r.url.path == "/api/v1/orders"]) == 1:
                return httpx.Response(503, headers={"Retry-After": "0"}, json={"code": "temporarily_unavailable"})
            return httpx.Response(201, json={"id": "o123", "status": "pending_payment", "total": "19.80"})
        verify_signature(
            body=request.content,
            timestamp=request.headers.get("X-Timestamp"),
            signature=request.headers.get("X-Signature"),
        )
        notice = parse_notice(request.content)
        assert (notice.order, str(notice.amount)) == ("o123", "19.80")
        return httpx.Response(200, json={"outcome": "applied", "order_status": "paid"})

    target = ReplayTarget(base_url="http://sim", token="tok", listing_id=7, payment_secret="replay-secret")

    async def run() -> ReplayResult:
        async with httpx.AsyncClient(base_url="http://sim", transport=httpx.MockTransport(handle)) as client:
            return await replay_async([attempt], target=target, opens_at=datetime.now(UTC), speed=10_000, client=client)

    (out,) = asyncio.run(run()).outcomes
    orders = [r for r in seen if r.url.path == "/api/v1/orders"]
    assert len(orders) == 2 and out.tries == 2
    assert orders[0].headers["Idempotency-Key"] == orders[1].headers["Idempotency-Key"] == attempt.attempt_id
    assert orders[0].content == orders[1].content
    assert orders[0].headers["Authorization"] == "Bearer tok"
    assert (out.status, out.order_id, out.paid) == (201, "o123", True)
    assert [r.url.path for r in seen].count("/api/v1/payments/notify") == 1
