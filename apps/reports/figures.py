"""A show's figures (the post-show report), computed from its orders.

This runs in the rollup job (``rollups.rollup_session``), never on a page view: it reads the show's
orders, lines and risk verdicts once (a few indexed queries by show) and adds them up in Python, so
every figure is exact (money in ``Decimal``, written as strings) and the same on SQLite and
PostgreSQL. What each figure means:

- ``orders``: every order of the show, whatever became of it. ``paid``: those that were paid
  (``paid_at`` set), refunded later or not. ``pending``: still awaiting payment.
- ``gmv``: the totals of the paid orders (freight included); ``units``: their lines' units;
  ``avg_basket``: gmv / paid.
- ``cancelled``: cancelled other than by the payment deadline; ``expired``: cancelled because the
  payment deadline passed (``EXPIRY_REASON``).
- ``refunds``: paid orders that owe money back (``refund_due`` > 0): how many, how much is owed
  (``amount``) and how much was paid back (``paid_back``); ``net`` = gmv − amount.
- Rates are shares of ``orders`` (paid, cancelled, expired) or of ``paid`` (refund), as decimal
  strings with 4 places, "0" when the base is 0.
- ``by_minute``: per minute since the show started (``starts_at``: started, else scheduled, else
  its first order), orders placed and paid, and the paid gmv.
- ``regions``: paid orders and gmv by province, and the cities in each, largest first.
- ``buyers``: distinct buyers of paid orders; ``returning`` had a paid order before the show
  started (any earlier show or channel of the merchant); ``new`` the rest; ``repeat`` paid 2+
  times in this show; ``repeat_rate`` = repeat / buyers.
- ``channels``: orders, paid and gmv per channel (storefront, api, each platform).
- ``listings``: per listing (its channel pools counted in it): quota, orders, paid, units, gmv,
  the units sold in time (``curve``: cumulative units held by orders at seconds since the listing
  opened, at most 60 points) and ``sold_out_s``: seconds from opening until the orders placed had
  taken the whole quota (None when they never did). From the gate's tallies (``ListingTally``):
  ``attempts``, every order attempt the gate answered (holds taken and refusals), ``refused`` by
  reason (``closed``, ``over_limit``, ``sold_out``) and ``conversion`` = orders / attempts (None
  when the gate counted none: history, or orders taken while Redis was away).
- ``unlisted``: lines of the show's orders that no listing of it sold (a platform's order of a SKU
  not on air in the show): orders, paid, units and gmv.
- ``categories``: per product category ("" for none): orders, paid, units and gmv of the lines of
  its products (an order with lines of two categories counts in both).
- ``risk``: orders risk control let through, held for review (and how reviews went), and blocked
  attempts (no order).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from apps.catalog.models import SKU, Listing, LiveSession
from apps.orders import hooks
from apps.orders.models import Order, OrderLine, OrderStatus
from apps.orders.services.tallies import tallies
from apps.orders.services.transitions import EXPIRY_REASON

S = OrderStatus
ZERO = Decimal("0.00")
CURVE_POINTS = 60
GATE_KEYS = ("accepted", "closed", "over_limit", "sold_out")
RISK_KEYS = ("allowed", "held", "approved", "rejected", "blocked")


def rate(part: int, whole: int) -> str:
    return str((Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"))) if whole else "0"


def show_start(session: LiveSession, first_order_at: datetime | None) -> datetime | None:
    return session.started_at or session.scheduled_at or first_order_at


def session_figures(session: LiveSession) -> dict[str, Any]:
    """Every figure of the post-show report for ``session`` (see the module docstring)."""
    rows = list(
        Order.objects.filter(session_id=session.pk).values_list(
            "pk", "buyer_id", "channel", "status", "total", "refund_due", "refunded", "paid_at",
            "created_at", "cancel_reason", "shipping_address",
        )
    )  # fmt: skip
    first = min((r[8] for r in rows), default=None)
    start = show_start(session, first)
    paid_ids: set[int] = set()
    totals = {"orders": len(rows), "paid": 0, "pending": 0, "cancelled": 0, "expired": 0}
    gmv = refund_amount = paid_back = ZERO
    refund_orders = 0
    minutes: dict[int, dict[str, Any]] = defaultdict(lambda: {"orders": 0, "paid": 0, "gmv": ZERO})
    provinces: dict[str, dict[str, Any]] = {}
    channels: dict[str, dict[str, Any]] = defaultdict(lambda: {"orders": 0, "paid": 0, "gmv": ZERO})
    buyer_paid: dict[int, int] = defaultdict(int)
    for pk, buyer_id, channel, status, total, due, refunded, paid_at, created_at, reason, address in rows:
        minute = int((created_at - start).total_seconds() // 60) if start else 0
        minutes[minute]["orders"] += 1
        channels[channel]["orders"] += 1
        if status == S.PENDING_PAYMENT:
            totals["pending"] += 1
        if status == S.CANCELLED and paid_at is None:
            totals["expired" if reason == EXPIRY_REASON else "cancelled"] += 1
        elif status == S.CANCELLED:
            totals["cancelled"] += 1
        if paid_at is None:
            continue
        paid_ids.add(pk)
        totals["paid"] += 1
        gmv += total
        minutes[minute]["paid"] += 1
        minutes[minute]["gmv"] += total
        channels[channel]["paid"] += 1
        channels[channel]["gmv"] += total
        buyer_paid[buyer_id] += 1
        if due > 0:
            refund_orders += 1
            refund_amount += due
            paid_back += refunded
        address = address if isinstance(address, dict) else {}
        province = str(address.get("province") or "").strip() or "?"
        city = str(address.get("city") or "").strip() or "?"
        region = provinces.setdefault(province, {"paid": 0, "gmv": ZERO, "cities": defaultdict(lambda: [0, ZERO])})
        region["paid"] += 1
        region["gmv"] += total
        region["cities"][city][0] += 1
        region["cities"][city][1] += total
    units = _units_and_listings(session, paid_ids, rows)
    returning = _returning(session.merchant_id, set(buyer_paid), start)
    buyers = len(buyer_paid)
    repeat = sum(1 for n in buyer_paid.values() if n >= 2)
    return {
        "starts_at": start.isoformat() if start else None,
        **totals,
        "units": units["units"],
        "gmv": str(gmv),
        "avg_basket": str((gmv / totals["paid"]).quantize(Decimal("0.01"))) if totals["paid"] else "0.00",
        "refunds": {"orders": refund_orders, "amount": str(refund_amount), "paid_back": str(paid_back)},
        "net": str(gmv - refund_amount),
        "rates": {
            "paid": rate(totals["paid"], totals["orders"]),
            "cancelled": rate(totals["cancelled"], totals["orders"]),
            "expired": rate(totals["expired"], totals["orders"]),
            "refund": rate(refund_orders, totals["paid"]),
        },
        "by_minute": [
            {"minute": m, "orders": v["orders"], "paid": v["paid"], "gmv": str(v["gmv"])}
            for m, v in sorted(minutes.items())
        ],
        "regions": [
            {
                "province": name,
                "paid": v["paid"],
                "gmv": str(v["gmv"]),
                "cities": [
                    {"city": c, "paid": n, "gmv": str(g)}
                    for c, (n, g) in sorted(v["cities"].items(), key=lambda kv: (-kv[1][1], kv[0]))
                ],
            }
            for name, v in sorted(provinces.items(), key=lambda kv: (-kv[1]["gmv"], kv[0]))
        ],
        "buyers": {
            "buyers": buyers,
            "new": buyers - returning,
            "returning": returning,
            "repeat": repeat,
            "repeat_rate": rate(repeat, buyers),
        },
        "channels": [
            {"channel": c, "orders": v["orders"], "paid": v["paid"], "gmv": str(v["gmv"])}
            for c, v in sorted(channels.items(), key=lambda kv: (-kv[1]["gmv"], kv[0]))
        ],
        "listings": units["listings"],
        "unlisted": units["unlisted"],
        "categories": units["categories"],
        "risk": _risk(session),
    }


def _units_and_listings(session: LiveSession, paid_ids: set[int], rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    created = {r[0]: r[8] for r in rows}
    listings = {
        li.pk: li
        for li in Listing.objects.filter(session_id=session.pk, parent__isnull=True).select_related("sku__product")
    }
    pools = dict(Listing.objects.filter(session_id=session.pk, parent__isnull=False).values_list("pk", "parent_id"))
    per: dict[int, dict[str, Any]] = {
        pk: {"orders": set(), "paid": set(), "units": 0, "gmv": ZERO, "held": [], "gate": dict.fromkeys(GATE_KEYS, 0)}
        for pk in listings
    }
    for listing_id, tally in tallies([*listings, *pools]).items():
        gate = per[pools.get(listing_id, listing_id)]["gate"]
        for key in GATE_KEYS:
            gate[key] += getattr(tally, key)
    units = 0
    categories: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"orders": set(), "paid": set(), "units": 0, "gmv": ZERO}
    )
    unlisted: dict[str, Any] = {"orders": set(), "paid": set(), "units": 0, "gmv": ZERO}
    lines = list(
        OrderLine.objects.filter(order__session_id=session.pk).values_list(
            "order_id", "listing_id", "sku_id", "quantity", "line_total"
        )
    )
    category_of = dict(SKU.objects.filter(pk__in={line[2] for line in lines}).values_list("pk", "product__category"))
    for order_id, listing_id, sku_id, qty, line_total in lines:
        paid = order_id in paid_ids
        units += qty if paid else 0
        top = pools.get(listing_id, listing_id)
        for entry in (categories[(category_of.get(sku_id) or "").strip()], per.get(top, unlisted)):
            entry["orders"].add(order_id)
            if paid:
                entry["paid"].add(order_id)
                entry["units"] += qty
                entry["gmv"] += line_total
        if top in per:
            per[top]["held"].append((created[order_id], qty))
    out = []
    for pk, li in sorted(listings.items()):
        entry = per[pk]
        attempts = sum(entry["gate"].values())
        curve, sold_out = _curve(entry["held"], li.opens_at or show_start(session, None), li.quota)
        out.append(
            {
                "listing": pk,
                "sku": li.sku.code,
                "name": li.sku.product.name if li.sku.product_id else li.sku.code,
                "category": (li.sku.product.category or "").strip(),
                "price": str(li.price),
                "quota": li.quota,
                "orders": len(entry["orders"]),
                "paid": len(entry["paid"]),
                "units": entry["units"],
                "gmv": str(entry["gmv"]),
                "paid_rate": rate(len(entry["paid"]), len(entry["orders"])),
                "attempts": attempts,
                "refused": {k: entry["gate"][k] for k in GATE_KEYS if k != "accepted"},
                "conversion": rate(len(entry["orders"]), attempts) if attempts else None,
                "sold_out_s": sold_out,
                "curve": curve,
            }
        )
    return {
        "units": units,
        "listings": out,
        "unlisted": {
            "orders": len(unlisted["orders"]), "paid": len(unlisted["paid"]), "units": unlisted["units"],
            "gmv": str(unlisted["gmv"]),
        },
        "categories": [
            {"category": name, "orders": len(c["orders"]), "paid": len(c["paid"]), "units": c["units"],
             "gmv": str(c["gmv"])}
            for name, c in sorted(categories.items(), key=lambda kv: (-kv[1]["gmv"], kv[0]))
        ],
    }  # fmt: skip


def _curve(held: list[tuple[datetime, int]], opens: datetime | None, quota: int) -> tuple[list[list[float]], Any]:
    """Cumulative units taken by the orders placed, at seconds since ``opens`` (the first order when
    unknown), at most ``CURVE_POINTS`` points; and the second the quota was all taken (or None)."""
    if not held:
        return [], None
    held.sort(key=lambda item: item[0])
    origin = opens or held[0][0]
    points: list[list[float]] = []
    total = 0
    sold_out = None
    for at, qty in held:
        total += qty
        second = round(max((at - origin).total_seconds(), 0.0), 3)
        points.append([second, total])
        if sold_out is None and total >= quota:
            sold_out = second
    if len(points) > CURVE_POINTS:  # keep the shape: evenly spaced points and the last one
        step = len(points) / (CURVE_POINTS - 1)
        points = [points[int(i * step)] for i in range(CURVE_POINTS - 1)] + [points[-1]]
    return points, sold_out


def _returning(merchant_id: int, buyers: set[int], start: datetime | None) -> int:
    if not buyers or start is None:
        return 0
    earlier: set[int] = set()
    ids = sorted(buyers)
    for i in range(0, len(ids), 2000):  # SQLite's bound on parameters
        earlier.update(
            Order.objects.filter(
                merchant_id=merchant_id, buyer_id__in=ids[i : i + 2000], paid_at__isnull=False, created_at__lt=start
            )
            .values_list("buyer_id", flat=True)
            .distinct()
        )
    return len(earlier)


def _risk(session: LiveSession) -> dict[str, int]:
    counts = hooks.registry.session_risk_counts
    return counts(session_id=session.pk) if counts is not None else dict.fromkeys(RISK_KEYS, 0)
