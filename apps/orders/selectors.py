"""Order reads, scoped to a merchant."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Max, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncMinute
from django.utils import timezone

from apps.catalog.events import listing_payload
from apps.catalog.models import LiveSession
from apps.catalog.selectors import session_listings

from . import hooks
from .errors import LedgerUnverifiable
from .models import LIVE_STATUSES, LedgerHead, Order, OrderEvent, OrderLine, OrderStatus
from .payloads import order_payload
from .services.checkpoints import checkpoint_covering, checkpoint_latest
from .services.ledger import ledger_walk

log = logging.getLogger(__name__)


def order_list(*, merchant_id: int) -> QuerySet[Order]:
    return (
        Order.objects.filter(merchant_id=merchant_id)
        .select_related("buyer", "listing", "listing__sku", *hooks.registry.read_prefetch)
        .prefetch_related(Prefetch("lines", queryset=OrderLine.objects.select_related("sku", "sku__product")))
    )


def session_gmv(*, session_id: int) -> Decimal:
    paid = Order.objects.filter(session_id=session_id, status__in=LIVE_STATUSES).exclude(status="pending_payment")
    return paid.aggregate(s=Sum("total"))["s"] or Decimal("0")


def order_for_merchant(*, merchant_id: int, public_id: str) -> Order | None:
    return order_list(merchant_id=merchant_id).filter(public_id=public_id).first()


def order_public(*, public_id: str) -> Order | None:
    return (
        Order.objects.filter(public_id=public_id)
        .select_related("listing", "listing__sku", "listing__sku__product", "session", "merchant", "buyer")
        .prefetch_related("lines", "lines__sku", "lines__sku__product")
        .first()
    )


def order_timeline(*, order: Order) -> QuerySet:

    return OrderEvent.objects.filter(order=order).order_by("seq")


PROOF_FORMAT = "livecommerce.ledger-proof/1"


def order_ledger(*, order: Order) -> tuple[list[OrderEvent], dict[str, Any] | None]:
    """The order's ledger events (by seq) and its merchant's newest signed checkpoint: an event
    with a seq above the checkpoint's is not yet checkpointed."""
    return list(order_timeline(order=order)), checkpoint_latest(order.merchant_id)


def _verified_links(merchant_id: int, *, start: OrderEvent, checkpoint: dict[str, Any]) -> list[dict[str, Any]]:
    """The (seq, keyed digest) links from ``start`` up to ``checkpoint``, recomputed by the ledger's
    own walk and held to what the database stores and to the signed checkpoint before any digest
    leaves: a digest is only ever published for an event whose content is what was chained
    (otherwise the proof would be an oracle that signs whatever an intruder wrote into an event).
    Raises ``LedgerUnverifiable`` when they disagree."""
    links: list[dict[str, Any]] = []
    walk = ledger_walk(merchant_id, after_seq=start.seq - 1, prev=start.prev_hash, upto=checkpoint["seq"], links=links)
    if walk.problem is not None or walk.seq != checkpoint["seq"] or walk.hash != checkpoint["head_hash"]:
        log.error("ledger proof refused: the chain does not verify", extra={"merchant": merchant_id})
        raise LedgerUnverifiable("this order's ledger does not verify; the merchant has been alerted")
    return links


def order_ledger_proof(*, order: Order) -> dict[str, Any]:
    """What a buyer keeps to show their order's history is in the merchant's chain: the order's
    events, and for each group of them the chain links (seq and keyed digest of every event) from
    the group's first event up to the first signed checkpoint that covers it, with that
    checkpoint's line and the first event's prev_hash. ``livecommerce/verify_proof.py`` recomputes
    the links. The digests are HMACs, so publishing them reveals nothing about other orders.
    Events newer than the newest checkpoint are listed as not yet checkpointed."""
    merchant_id = order.merchant_id
    events = list(order_timeline(order=order))
    segments: list[dict[str, Any]] = []
    done = 0
    while done < len(events):
        checkpoint = checkpoint_covering(merchant_id, events[done].seq)
        if checkpoint is None:
            break
        group = [e for e in events[done:] if e.seq <= checkpoint["seq"]]
        links = _verified_links(merchant_id, start=group[0], checkpoint=checkpoint)
        segments.append(
            {
                "events": [e.seq for e in group],
                "prev_hash": group[0].prev_hash,
                "links": links,
                "checkpoint": checkpoint,
            }
        )
        done += len(group)
    return {
        "format": PROOF_FORMAT,
        "merchant": merchant_id,
        "order": order.public_id,
        "status": "checkpointed" if done == len(events) else "not yet checkpointed",
        "generated_at": timezone.now().astimezone(UTC).isoformat(timespec="microseconds"),
        "verify_with": "python -m livecommerce.verify_proof proof.json",
        "events": [
            {
                "seq": e.seq,
                "created_at": e.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
                "from_status": e.from_status,
                "to_status": e.to_status,
                "actor": e.actor,
                "reason": e.reason,
                "prev_hash": e.prev_hash,
                "hash": e.hash,
                "checkpointed": i < done,
            }
            for i, e in enumerate(events)
        ],
        "segments": segments,
    }


# A show's totals count orders by these groups: the full count (``session_summary``,
# ``session_channels``) and the tally kept from the ledger (``_Tally``) alike.
PAID_LIKE = (
    OrderStatus.PAID,
    OrderStatus.ON_HOLD,
    OrderStatus.CONFIRMED,
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
    OrderStatus.COMPLETED,
)
CANCELLED_LIKE = (OrderStatus.CANCELLED, OrderStatus.REFUND_PENDING, OrderStatus.REFUNDED)


def session_summary(*, session_id: int) -> dict:
    """Running totals of a show: GMV (paid and later), counts by stage, latest ledger seq."""

    agg = Order.objects.filter(session_id=session_id).aggregate(
        orders=Count("id"),
        unpaid=Count("id", filter=Q(status=OrderStatus.PENDING_PAYMENT)),
        paid=Count("id", filter=Q(status__in=PAID_LIKE)),
        cancelled=Count("id", filter=Q(status__in=CANCELLED_LIKE)),
        gmv=Sum("total", filter=Q(status__in=PAID_LIKE)),
        placed_value=Sum("total", filter=Q(status__in=LIVE_STATUSES)),
        merchant_id=Max("merchant_id"),
    )
    seq = ledger_seq(merchant_id=agg["merchant_id"]) if agg["merchant_id"] else 0
    return {
        "session": session_id,
        "orders": agg["orders"],
        "unpaid": agg["unpaid"],
        "paid": agg["paid"],
        "cancelled": agg["cancelled"],
        # two decimals on every engine (SQLite's SUM drops trailing zeros)
        "gmv": f"{Decimal(agg['gmv'] or 0):.2f}",
        "placed_value": f"{Decimal(agg['placed_value'] or 0):.2f}",
        "channels": session_channels(session_id=session_id),
        "version": seq,
    }


def session_channels(*, session_id: int) -> list[dict]:
    """A show's orders per channel (storefront, api, douyin, ...), busiest first: ``orders``
    (all, as the show's order count), ``paid`` (paid and later) and ``units`` (in orders not
    cancelled or refunded). One query."""

    rows = (
        Order.objects.filter(session_id=session_id)
        .values("channel")
        .annotate(
            orders=Count("id", distinct=True),
            paid=Count("id", distinct=True, filter=Q(status__in=PAID_LIKE)),
            units=Sum("lines__quantity", filter=Q(status__in=LIVE_STATUSES)),
        )
        .order_by()
    )
    channels = [
        {"channel": r["channel"], "orders": r["orders"], "paid": r["paid"], "units": r["units"] or 0} for r in rows
    ]
    return sorted(channels, key=lambda c: (-c["orders"], c["channel"]))


# --- realtime: snapshots for pages and websockets ------------------------------------------------
# A snapshot carries the version of the stream it starts, so a client applies only later pushes.
LATEST_ORDERS = 30
CHART_MINUTES = 30


def ledger_seq(*, merchant_id: int) -> int:

    return LedgerHead.objects.filter(pk=merchant_id).values_list("seq", flat=True).first() or 0


def session_stats_live(*, session_id: int, merchant_id: int | None = None) -> dict:
    """``session_summary`` with an exact version: the merchant's ledger seq is read before and
    after the totals, and every order change moves that seq, so equal reads mean the totals are
    exactly the state at that version. Under a stream of changes the version is a lower bound."""
    return _stats_read(session_id=session_id, merchant_id=merchant_id)[0]


def _stats_read(*, session_id: int, merchant_id: int | None = None) -> tuple[dict, bool]:
    """``session_stats_live`` and whether its version is exact."""
    if merchant_id is None:
        merchant_id = LiveSession.objects.filter(pk=session_id).values_list("merchant_id", flat=True).first()
    if merchant_id is None:
        return {**session_summary(session_id=session_id), "version": 0}, False
    exact = False
    for _attempt in range(3):
        before = ledger_seq(merchant_id=merchant_id)
        summary = session_summary(session_id=session_id)
        if ledger_seq(merchant_id=merchant_id) == before:
            exact = True
            break
    summary["version"] = before
    return summary, exact


# --- a show's running totals, kept up to date from the ledger --------------------------------
# The live dashboard's totals are pushed a few times a second during a sale. Counting the show's
# orders each time costs the database in proportion to the show (tens of thousands of orders in
# a flash sale, each push). Every order change is one ledger event of the merchant's, in seq
# order, and the head's seq is written in the same transaction: so the totals at seq v are the
# totals at seq u plus what the events (u, v] of the show's orders changed, read by the ledger's
# (merchant, seq) index. A full count starts the tally and is taken again every
# ``TALLY_RECOUNT_S`` (a safety net: it and the tally agree, tests/orders/test_session_tally.py).
TALLY_RECOUNT_S = 60.0
TALLY_MAX_EVENTS = 20_000  # more of the merchant's events since the last push: count afresh
COUNT_LOCK_TIMEOUT_MS = 100  # the full count's wait for a table lock (only DDL and TRUNCATE conflict)
_PAID_LIKE = frozenset(PAID_LIKE)
_CANCELLED = frozenset(CANCELLED_LIKE)
_LIVE = frozenset(LIVE_STATUSES)


@dataclass
class _Tally:
    merchant_id: int
    version: int
    counted_at: float
    orders: int = 0
    unpaid: int = 0
    paid: int = 0
    cancelled: int = 0
    gmv: Decimal = Decimal(0)
    placed_value: Decimal = Decimal(0)
    channels: dict[str, list[int]] = field(default_factory=dict)  # channel -> [orders, paid, units]

    @classmethod
    def of(cls, stats: dict, merchant_id: int) -> _Tally:
        return cls(
            merchant_id=merchant_id,
            version=stats["version"],
            counted_at=time.monotonic(),
            orders=stats["orders"],
            unpaid=stats["unpaid"],
            paid=stats["paid"],
            cancelled=stats["cancelled"],
            gmv=Decimal(stats["gmv"]),
            placed_value=Decimal(stats["placed_value"]),
            channels={c["channel"]: [c["orders"], c["paid"], c["units"]] for c in stats["channels"]},
        )

    def apply(self, from_status: str, to_status: str, channel: str, total: Decimal, units: int) -> None:
        """One ledger event of one of the show's orders: it leaves ``from_status`` (none: the
        order is new) for ``to_status``."""
        ch = self.channels.setdefault(channel, [0, 0, 0])
        if not from_status:
            self.orders += 1
            ch[0] += 1
        for status, sign in ((from_status, -1), (to_status, 1)):
            if not status:
                continue
            if status == OrderStatus.PENDING_PAYMENT:
                self.unpaid += sign
            if status in _PAID_LIKE:
                self.paid += sign
                self.gmv += sign * total
                ch[1] += sign
            if status in _CANCELLED:
                self.cancelled += sign
            if status in _LIVE:
                self.placed_value += sign * total
                ch[2] += sign * units

    def stats(self, session_id: int) -> dict:
        channels = [
            {"channel": name, "orders": c[0], "paid": c[1], "units": c[2]} for name, c in self.channels.items() if c[0]
        ]
        return {
            "session": session_id,
            "orders": self.orders,
            "unpaid": self.unpaid,
            "paid": self.paid,
            "cancelled": self.cancelled,
            "gmv": f"{self.gmv:.2f}",
            "placed_value": f"{self.placed_value:.2f}",
            "channels": sorted(channels, key=lambda c: (-c["orders"], c["channel"])),
            "version": self.version,
        }


_tallies: dict[int, _Tally] = {}
_tallies_lock = threading.Lock()  # the two dicts
_show_locks: dict[int, threading.Lock] = {}  # one per show: its pushes run one at a time


def session_stats_pushed(*, session_id: int) -> dict:
    """A show's totals for the live push: ``session_stats_live``'s figures, exact at their
    version, kept up to date from the merchant's ledger events since the last push instead of
    counting the whole show again (see above). A show's pushes in this process run one at a time
    (a push that outlasts the coalescing window meets the next one here)."""
    with _tallies_lock:
        lock = _show_locks.setdefault(session_id, threading.Lock())
    with lock:
        return _stats_pushed(session_id)


def _stats_pushed(session_id: int) -> dict:
    with _tallies_lock:
        tally = _tallies.get(session_id)
    now = time.monotonic()
    if tally is not None and now - tally.counted_at < TALLY_RECOUNT_S:
        head = ledger_seq(merchant_id=tally.merchant_id)
        if tally.version <= head <= tally.version + TALLY_MAX_EVENTS:
            if head > tally.version:
                _tally_events(tally, session_id, head)
            return tally.stats(session_id)
    merchant_id = LiveSession.objects.filter(pk=session_id).values_list("merchant_id", flat=True).first()
    stats, exact = _stats_counted(session_id, merchant_id)
    with _tallies_lock:
        if exact and merchant_id is not None:
            if len(_tallies) > 256:  # shows seen by this process: forget those long counted
                for sid in [sid for sid, t in _tallies.items() if now - t.counted_at > TALLY_RECOUNT_S]:
                    del _tallies[sid]
                    _show_locks.pop(sid, None)
            _tallies[session_id] = _Tally.of(stats, merchant_id)
        else:
            _tallies.pop(session_id, None)
    return stats


def _stats_counted(session_id: int, merchant_id: int | None) -> tuple[dict, bool]:
    """The full count and whether it is exact at its version. On PostgreSQL the head and the
    totals are read in one snapshot (a REPEATABLE READ transaction), so a count during a flood of
    orders is as exact as one on a quiet show. Elsewhere (SQLite's transactions take the write
    lock here), or inside a caller's transaction, ``session_stats_live``'s before-and-after reads."""
    if merchant_id is None or connection.in_atomic_block or connection.vendor != "postgresql":
        return _stats_read(session_id=session_id, merchant_id=merchant_id)
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            # The transaction holds each table's share lock from its first read to its end, so
            # a DDL statement or TRUNCATE taking the tables one by one could deadlock with it:
            # this read gives way at once instead (the push fails, the next one counts again).
            cur.execute(f"SET LOCAL lock_timeout = {COUNT_LOCK_TIMEOUT_MS}")
        head = ledger_seq(merchant_id=merchant_id)
        summary = session_summary(session_id=session_id)
    summary["version"] = head
    return summary, True


def _tally_events(tally: _Tally, session_id: int, head: int) -> None:
    """Move ``tally`` to ``head``: every event of the merchant's after its version up to
    ``head`` (all committed: the head was read first, and it is written with its events) on
    one of the show's orders."""
    units = OrderLine.objects.filter(order_id=OuterRef("order_id")).values("order_id").annotate(u=Sum("quantity"))
    rows = (
        OrderEvent.objects.filter(
            merchant_id=tally.merchant_id, seq__gt=tally.version, seq__lte=head, order__session_id=session_id
        )
        .annotate(units=Subquery(units.values("u")))
        .order_by("seq")
        .values_list("from_status", "to_status", "order__channel", "order__total", "units")
    )
    for from_status, to_status, channel, total, n in rows:
        tally.apply(from_status, to_status, channel, total, n or 0)
    tally.version = head


def forget_tallies() -> None:
    """Tests: ids are reused after a rolled-back test (production never reuses them)."""
    with _tallies_lock:
        _tallies.clear()
        _show_locks.clear()


def _actor_kind(actor: str) -> str:
    head = actor.split(":", 1)[0]
    return head if head in {"buyer", "payment", "system", "token", "staff", "platform"} else "merchant"


def order_snapshot(*, order: Order) -> dict:
    """What the buyer's status page shows: the order, its items and its timeline."""

    payload = order_payload(order, kind="order.snapshot")
    items = []
    for line in order.lines.all():
        sku = line.sku
        items.append(
            {
                "name": sku.product.name,
                "sku": sku.name or sku.code,
                "quantity": line.quantity,
                "unit_price": str(line.unit_price),
                "line_total": str(line.line_total),
            }
        )
    timeline = [
        {"status": e.to_status, "from": e.from_status, "at": e.created_at.isoformat(), "actor": _actor_kind(e.actor)}
        for e in order_timeline(order=order)
        if e.from_status != e.to_status  # status changes only; the ledger has the rest
    ]
    payload["order"].update(
        {
            "created_at": order.created_at.isoformat(),
            "updated_at": order.updated_at.isoformat(),
            "items": items,
            "timeline": timeline,
            "trace": hooks.registry.order_trace_of(order) if hooks.registry.order_trace_of else None,
        }
    )
    payload["server_time"] = timezone.now().isoformat()
    return payload


def _order_line(order: Order) -> dict:
    return {
        "id": order.public_id,
        "status": order.status,
        "total": str(order.total),
        "listing": order.listing_id,
        "session": order.session_id,
        "channel": order.channel,
        "created_at": order.created_at.isoformat(),
        "seq": getattr(order, "last_seq", None) or 0,
    }


def _latest_orders(qs) -> list[dict]:

    rows = qs.annotate(last_seq=Max("events__seq")).order_by("-id")[:LATEST_ORDERS]
    return [_order_line(o) for o in rows]


def orders_per_minute(*, session_id: int, minutes: int = CHART_MINUTES) -> list[dict]:
    """Orders placed in each of the last ``minutes`` minutes (empty minutes included)."""
    from datetime import UTC, timedelta

    now = timezone.now().astimezone(UTC).replace(second=0, microsecond=0)
    since = now - timedelta(minutes=minutes - 1)
    counts = {
        row["m"].astimezone(UTC): row["n"]
        for row in Order.objects.filter(session_id=session_id, created_at__gte=since)
        .annotate(m=TruncMinute("created_at", tzinfo=UTC))
        .values("m")
        .annotate(n=Count("id"))
        .order_by()
    }
    return [
        {"t": (since + timedelta(minutes=i)).isoformat(), "n": counts.get(since + timedelta(minutes=i), 0)}
        for i in range(minutes)
    ]


def listing_line(listing) -> dict:
    """A listing as the dashboard and storefront show it (the push payload plus names)."""

    payload = listing_payload(listing)
    sku = listing.sku
    return {
        **payload["listing"],
        "version": payload["version"],
        "name": sku.product.name,
        "sku": sku.name or sku.code,
        "code": sku.code,
        "list_price": str(sku.price),
    }


def session_snapshot(*, session) -> dict:
    """The merchant dashboard's state of a show: totals, listings, latest orders, orders/minute.

    All of it is read between two reads of the merchant's ledger seq; when they agree (no order
    changed meanwhile) the snapshot is exactly the state at that version, so the client can add
    every later order event to the totals and the chart without counting one twice."""

    for _attempt in range(3):
        before = ledger_seq(merchant_id=session.merchant_id)
        stats = session_summary(session_id=session.pk)
        orders = _latest_orders(Order.objects.filter(session_id=session.pk))
        per_minute = orders_per_minute(session_id=session.pk)
        if ledger_seq(merchant_id=session.merchant_id) == before:
            break
    stats["version"] = before
    return {
        "type": "session.snapshot",
        "version": before,
        "session": {
            "id": session.pk,
            "title": session.title,
            "streamer": session.streamer,
            "status": session.status,
            "platforms": list(session.platforms or []),
            "started_at": session.started_at.isoformat() if session.started_at else None,
            "merchant": session.merchant_id,
        },
        "stats": stats,
        "listings": [listing_line(x) for x in session_listings(session_id=session.pk)],
        "orders": orders,
        "per_minute": per_minute,
        "server_time": timezone.now().isoformat(),
    }


def merchant_snapshot(*, merchant_id: int) -> dict:
    """A merchant's live feed: shows on air and the latest orders of every channel."""

    seq = ledger_seq(merchant_id=merchant_id)
    sessions = LiveSession.objects.filter(merchant_id=merchant_id, status=LiveSession.Status.LIVE).order_by("-id")
    return {
        "type": "merchant.snapshot",
        "version": seq,
        "merchant": merchant_id,
        "sessions": [{"id": s.pk, "title": s.title, "status": s.status} for s in sessions[:20]],
        "orders": _latest_orders(Order.objects.filter(merchant_id=merchant_id)),
        "server_time": timezone.now().isoformat(),
    }
