"""Replaying a simulated show against a running server, through the public HTTP API.

``replay(attempts, target=ReplayTarget(...), opens_at=..., speed=10)`` sends every attempt of
``generate_attempts`` at its time (``t_ms`` after ``opens_at``, divided by ``speed``) as a
streamer tool would: ``POST {base}/api/v1/orders`` with ``Authorization: Bearer <token>`` and
``Idempotency-Key: <key_prefix><attempt_id>``, the body ``attempt.order_body(listing)`` (with
``client`` and ``buyer.registered_at``). Attempts before the listing opens meet their 409
``listing_closed``. For an accepted order whose buyer pays, the payment provider's notification
follows ``pay_after_ms`` (scaled) later: ``POST /api/v1/payments/notify`` signed like the
provider signs (``X-Timestamp``, ``X-Signature`` = hex HMAC-SHA256 of ``"{ts}.{raw body}"``).

Every attempt is its own asyncio task, so the burst at open is a real burst, bounded by the
connection pool (``concurrency``). A 503 (or 429) is retried with the same key after
``Retry-After`` (capped); a connection error is retried the same way (the key makes a retry
safe) and, if it persists, reported on the attempt -- one failure never stops the replay.

The label is never sent: it is only copied into the outcome so results can be counted per abuse
kind and genuine group. Network code lives here; ``simulation.py`` stays a pure generator.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from apps.orders.services.payments import sign

from .simulation import SimulatedAttempt

ACCEPTED_STATUSES = (200, 201)  # 201 placed; 200 the same order again (a retry of the same key)
RETRYABLE_STATUSES = (429, 503)


@dataclass(frozen=True)
class ReplayTarget:
    base_url: str  # e.g. http://127.0.0.1:8000
    token: str  # a merchant API token
    listing_id: int
    payment_secret: str  # the server's PAYMENT_WEBHOOK_SECRET (the provider's signing key)
    key_prefix: str = ""  # prepended to attempt ids: replays of one seed on two listings differ


@dataclass
class AttemptOutcome:
    attempt_id: str
    kind: str  # from the label: for counting only
    group: str
    t_ms: int
    quantity: int
    status: int | None = None  # the order POST's final HTTP status; None: never answered
    code: str | None = None  # the error code, or the order's status when accepted
    order_id: str | None = None
    total: str | None = None
    latency_ms: float | None = None  # of the last try
    sent_ms: float | None = None  # when the last try was sent, ms after the listing opened (wall clock)
    answered_ms: float | None = None  # when its answer arrived, ms after open
    tries: int = 0
    error: str | None = None  # a connection error that outlived the retries
    pay_status: int | None = None
    pay_outcome: str | None = None  # "applied", "late", ... or the error code
    pay_error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status in ACCEPTED_STATUSES and self.order_id is not None

    @property
    def paid(self) -> bool:
        return self.pay_status == 200 and self.pay_outcome == "applied"


@dataclass
class GroupSummary:
    attempts: int = 0
    accepted: int = 0
    units: int = 0
    paid: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # by code
    errors: int = 0  # never answered
    server_errors: int = 0  # 5xx other than a 503 that was retried away


@dataclass
class ReplayResult:
    outcomes: list[AttemptOutcome]
    speed: float
    elapsed_s: float  # the whole replay, payments included
    orders_span_s: float  # from the first order sent to the last order answered

    @property
    def accepted(self) -> list[AttemptOutcome]:
        return [o for o in self.outcomes if o.accepted]

    @property
    def order_rate(self) -> float:
        """Order attempts per second over the order phase."""
        return len(self.outcomes) / self.orders_span_s if self.orders_span_s > 0 else math.inf

    def peak_rate(self, window_ms: float = 1000.0) -> float:
        """The most order answers within any ``window_ms``, per second (the burst the server took)."""
        times = sorted(o.answered_ms for o in self.outcomes if o.answered_ms is not None)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] > window_ms:
                lo += 1
            best = max(best, hi - lo + 1)
        return best * 1000.0 / window_ms

    def server_errors(self) -> list[AttemptOutcome]:
        return [o for o in self.outcomes if (o.status or 0) >= 500 or (o.pay_status or 0) >= 500]

    def latency_ms(self, q: float) -> float:
        values = sorted(o.latency_ms for o in self.outcomes if o.latency_ms is not None)
        if not values:
            return math.nan
        return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]

    def summary(self) -> dict[tuple[str, str], GroupSummary]:
        """Counts per (label kind, group), in a stable order."""
        out: dict[tuple[str, str], GroupSummary] = defaultdict(GroupSummary)
        for o in self.outcomes:
            s = out[(o.kind, o.group)]
            s.attempts += 1
            if o.accepted:
                s.accepted += 1
                s.units += o.quantity
                s.paid += o.paid
            elif o.status is None:
                s.errors += 1
            else:
                s.refused[o.code or str(o.status)] += 1
            if (o.status or 0) >= 500 or (o.pay_status or 0) >= 500:
                s.server_errors += 1
        return dict(sorted(out.items()))

    def format(self) -> str:
        lines = [
            f"{'kind':<16}{'group':<16}{'attempts':>9}{'accepted':>9}{'units':>7}{'paid':>6}{'errors':>7}  refused",
        ]
        total = GroupSummary()
        for (kind, group), s in self.summary().items():
            refused = ", ".join(f"{c} {n}" for c, n in s.refused.most_common())
            lines.append(
                f"{kind:<16}{group:<16}{s.attempts:>9}{s.accepted:>9}{s.units:>7}{s.paid:>6}{s.errors:>7}  {refused}"
            )
            total.attempts += s.attempts
            total.accepted += s.accepted
            total.units += s.units
            total.paid += s.paid
            total.errors += s.errors
            total.refused.update(s.refused)
        refused = ", ".join(f"{c} {n}" for c, n in total.refused.most_common())
        lines.append(
            f"{'total':<32}{total.attempts:>9}{total.accepted:>9}{total.units:>7}{total.paid:>6}"
            f"{total.errors:>7}  {refused}"
        )
        pre_open = [o for o in self.outcomes if o.t_ms < 0]
        closed = sum(o.code == "listing_closed" for o in pre_open)
        lines.append(f"before open: {len(pre_open)} attempts, {closed} answered listing_closed")
        lines.append(
            f"speed x{self.speed:g}: {len(self.outcomes)} orders in {self.orders_span_s:.2f} s "
            f"({self.order_rate:.0f}/s, peak {self.peak_rate():.0f}/s), "
            f"whole replay {self.elapsed_s:.2f} s; order latency "
            f"p50 {self.latency_ms(0.5):.1f} ms, p99 {self.latency_ms(0.99):.1f} ms; retried (503/429/connection) "
            f"{sum(o.tries > 1 for o in self.outcomes)}; 5xx {len(self.server_errors())}"
        )
        return "\n".join(lines)


def _headers(target: ReplayTarget) -> dict[str, str]:
    return {"Authorization": f"Bearer {target.token}"}


async def fetch_listing(client: httpx.AsyncClient, target: ReplayTarget) -> dict[str, Any]:
    """The listing as the API shows it (quota, per_buyer_limit, opens_at, ...)."""
    r = await client.get(f"/api/v1/listings/{target.listing_id}", headers=_headers(target))
    r.raise_for_status()
    data: dict[str, Any] = r.json()
    return data


async def schedule_open(client: httpx.AsyncClient, target: ReplayTarget, *, opens_in_s: float) -> datetime:
    """Move the listing's opening ``opens_in_s`` seconds ahead (a PATCH of ``opens_at``), so the
    shots before open meet a listing that is not open yet. Returns the new opening time."""
    opens_at = datetime.now(UTC) + timedelta(seconds=opens_in_s)
    r = await client.patch(
        f"/api/v1/listings/{target.listing_id}", headers=_headers(target), json={"opens_at": opens_at.isoformat()}
    )
    r.raise_for_status()
    return opens_at


class _Replayer:
    def __init__(
        self,
        client: httpx.AsyncClient,
        target: ReplayTarget,
        *,
        anchor: float,
        speed: float,
        max_retries: int,
        max_retry_wait_s: float,
        concurrency: int,
    ) -> None:
        self.client = client
        self.target = target
        self.anchor = anchor  # time.time() of the listing opening
        self.speed = speed
        self.max_retries = max_retries
        self.max_retry_wait_s = max_retry_wait_s
        self.slots = asyncio.Semaphore(concurrency)

    def _ms_since_open(self) -> float:
        return (time.time() - self.anchor) * 1000

    async def _sleep_until(self, wall: float) -> None:
        delay = wall - time.time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _send(
        self, path: str, body: bytes, headers: dict[str, str], out: AttemptOutcome | None = None
    ) -> tuple[httpx.Response | None, str | None]:
        """POST with retries on 503/429 (after Retry-After) and on connection errors. Returns the
        last response, or None and the error that outlived the retries."""
        error: str | None = None
        for attempt in range(self.max_retries + 1):
            if path.endswith("/payments/notify"):
                ts = str(int(time.time()))  # signed afresh on every try: the timestamp must be recent
                headers = {**headers, "X-Timestamp": ts, "X-Signature": sign(body, ts, self.target.payment_secret)}
            async with self.slots:
                started = time.perf_counter()
                if out is not None:
                    out.tries += 1
                    out.sent_ms = self._ms_since_open()
                try:
                    r = await self.client.post(path, content=body, headers=headers)
                except httpx.TransportError as exc:
                    error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                    r = None
                if out is not None:
                    out.latency_ms = (time.perf_counter() - started) * 1000
                    out.answered_ms = self._ms_since_open()
            if r is not None and r.status_code not in RETRYABLE_STATUSES:
                return r, None
            if attempt == self.max_retries:
                return r, (None if r is not None else error)
            wait = 0.05 * 2**attempt
            if r is not None:
                try:
                    wait = float(r.headers.get("Retry-After", wait))
                except ValueError:
                    pass
            await asyncio.sleep(min(max(wait, 0.0), self.max_retry_wait_s))
        raise AssertionError("unreachable")

    async def run_attempt(self, attempt: SimulatedAttempt) -> AttemptOutcome:
        out = AttemptOutcome(
            attempt_id=attempt.attempt_id,
            kind=attempt.label.kind,
            group=attempt.label.group,
            t_ms=attempt.t_ms,
            quantity=attempt.quantity,
        )
        await self._sleep_until(self.anchor + attempt.t_ms / self.speed / 1000)
        body = json.dumps(attempt.order_body(self.target.listing_id), ensure_ascii=False).encode()
        headers = {
            **_headers(self.target),
            "Content-Type": "application/json",
            "Idempotency-Key": f"{self.target.key_prefix}{attempt.idempotency_key}",
        }
        r, out.error = await self._send("/api/v1/orders", body, headers, out)
        if r is None:
            return out
        out.status = r.status_code
        data = _json(r)
        if r.status_code in ACCEPTED_STATUSES:
            out.order_id = data.get("id")
            out.code = data.get("status")
            out.total = data.get("total")
        else:
            out.code = data.get("code")
        if out.accepted and attempt.pays and attempt.pay_after_ms is not None and out.code == "pending_payment":
            await asyncio.sleep(attempt.pay_after_ms / self.speed / 1000)
            await self.pay(attempt, out)
        return out

    async def pay(self, attempt: SimulatedAttempt, out: AttemptOutcome) -> None:
        notice = {
            "order": out.order_id,
            "transaction_id": f"sim-{self.target.key_prefix}{attempt.attempt_id}",
            "amount": out.total,
            "paid_at": datetime.now(UTC).isoformat(),
        }
        body = json.dumps(notice).encode()
        r, out.pay_error = await self._send("/api/v1/payments/notify", body, {"Content-Type": "application/json"})
        if r is not None:
            out.pay_status = r.status_code
            data = _json(r)
            out.pay_outcome = data.get("outcome") if r.status_code == 200 else data.get("code")


def _json(r: httpx.Response) -> dict[str, Any]:
    try:
        data = r.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


async def replay_async(
    attempts: Sequence[SimulatedAttempt],
    *,
    target: ReplayTarget,
    opens_at: datetime,
    speed: float = 1.0,
    concurrency: int = 200,
    timeout_s: float = 30.0,
    max_retries: int = 5,
    max_retry_wait_s: float = 2.0,
    client: httpx.AsyncClient | None = None,
) -> ReplayResult:
    """Replay ``attempts`` with ``t_ms = 0`` at ``opens_at`` (wall clock), ``speed`` times faster
    than real time. Returns when every order has been answered and every payment sent."""
    if speed <= 0:
        raise ValueError("speed must be > 0")
    own = client is None
    if client is None:
        client = httpx.AsyncClient(
            base_url=target.base_url,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            timeout=httpx.Timeout(timeout_s, pool=None),
        )
    started = time.time()
    try:
        replayer = _Replayer(
            client,
            target,
            anchor=opens_at.timestamp(),
            speed=speed,
            max_retries=max_retries,
            max_retry_wait_s=max_retry_wait_s,
            concurrency=concurrency,
        )
        outcomes = await asyncio.gather(*(replayer.run_attempt(a) for a in attempts))
    finally:
        if own:
            await client.aclose()
    sent = [o.sent_ms for o in outcomes if o.sent_ms is not None]
    answered = [o.answered_ms for o in outcomes if o.answered_ms is not None]
    span = (max(answered) - min(sent)) / 1000 if sent and answered else 0.0
    return ReplayResult(outcomes=list(outcomes), speed=speed, elapsed_s=time.time() - started, orders_span_s=span)


def replay(attempts: Sequence[SimulatedAttempt], **kwargs: Any) -> ReplayResult:
    """``replay_async`` in a fresh event loop (for commands and tests)."""
    return asyncio.run(replay_async(attempts, **kwargs))
