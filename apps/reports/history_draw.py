"""What generated history is drawn from (``history``): the schedule of shows, each show's
listings and orders, and the buyers, all from a seeded ``random.Random``. No database here:
``history`` writes what these functions draw."""

from __future__ import annotations

import hashlib
import math
import random
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings

from apps.orders.models import PLATFORM_CHANNELS, OrderStatus

from . import history_tables as t
from .errors import HistoryError

S = OrderStatus
OWN = "own"  # the merchant's own buyer ids (storefront and API orders); platforms have their own
SHOW_TAIL = timedelta(minutes=30)  # shows end this long before the period does: payments settle
PAY_WINDOW = 900


@dataclass(frozen=True)
class Sku:
    pk: int
    category: str
    appeal: float
    price: Decimal


# --- people and places ---------------------------------------------------------------------------
def _city_slots() -> list[tuple[str, str, tuple[str, ...]]]:
    """(province, city, districts) repeated by weight: one draw of ``len`` picks a city."""
    slots: list[tuple[str, str, tuple[str, ...]]] = []
    for province, weight, cities in t.REGIONS:
        city_weights = [1.0 / (i + 1.2) for i in range(len(cities))]
        total = sum(city_weights)
        for (city, districts), cw in zip(cities, city_weights, strict=True):
            slots += [(province, city, districts)] * max(1, round(weight * 10 * cw / total))
    return slots


CITY_SLOTS = _city_slots()


def person(seed: int, space: str, number: int) -> tuple[str, str, dict[str, str]]:
    """Buyer ``number`` of ``space``: (name, mobile, shipping address), the same every time."""
    h = int.from_bytes(hashlib.blake2b(f"{seed}:{space}:{number}".encode(), digest_size=20).digest(), "big")
    h, a = divmod(h, len(t.SURNAMES))
    h, b = divmod(h, len(t.GIVEN))
    h, c = divmod(h, len(t.GIVEN) + 8)  # past the end of GIVEN: a one-character given name
    name = t.SURNAMES[a] + t.GIVEN[b] + (t.GIVEN[c] if c < len(t.GIVEN) else "")
    h, p2 = divmod(h, 5)
    h, rest = divmod(h, 10**9)
    phone = f"1{'35789'[p2]}{rest:09d}"
    h, slot = divmod(h, len(CITY_SLOTS))
    province, city, districts = CITY_SLOTS[slot]
    h, d = divmod(h, max(1, len(districts)))
    h, s = divmod(h, len(t.STREETS))
    h, e = divmod(h, len(t.ESTATES))
    h, no = divmod(h, 300)
    h, bld = divmod(h, 20)
    h, floor = divmod(h, 30)
    h, room = divmod(h, 4)
    detail = f"{t.STREETS[s]}{no + 1}号{t.ESTATES[e]}{bld + 1}栋{floor + 1}{room + 1:02d}室"
    address = {
        "name": name,
        "phone": phone,
        "province": province,
        "city": city,
        "district": districts[d] if districts else "",
        "detail": detail,
    }
    return name, phone, address


class Pool:
    """One space's buyers: the numbers bought so far in earlier shows (a buyer once per show they
    bought in, so the loyal come back more often), and their database ids once written."""

    def __init__(self, space: str, seed: int) -> None:
        self.space = space
        self.prefix = f"hist{seed}-" if space == OWN else f"{space}:hist{seed}-"
        self.count = 0
        self.earlier = array("l")
        self.pk = array("q")
        self.this_show: set[int] = set()
        self.new: list[tuple[int, datetime]] = []  # numbers first seen in this show, when

    def external_id(self, number: int) -> str:
        return f"{self.prefix}{number:07d}"

    def pick(
        self, rng: random.Random, returning: float, at: datetime, held: dict[int, int] | None, need: int, limit: int
    ) -> int:
        """The buyer of an order placed ``at``: with chance ``returning`` one from an earlier show
        (unless ``need`` more units would take them past ``limit``: ``held`` is what each buyer
        holds of the listing; None: no limit), else a new one."""
        if self.earlier and rng.random() < returning:
            number = self.earlier[int(rng.random() * len(self.earlier))]
            if held is None or held.get(number, 0) + need <= limit:
                self.this_show.add(number)
                return number
        number = self.count
        self.count += 1
        self.pk.append(0)
        self.new.append((number, at))
        self.this_show.add(number)
        return number

    def end_show(self) -> None:
        self.earlier.extend(sorted(self.this_show))
        self.this_show = set()
        self.new = []


RETURNING_SHARE = 0.35  # of the orders of a show after the first: buyers of earlier shows


# --- the shows -----------------------------------------------------------------------------------
@dataclass
class Show:
    start: datetime
    minutes: int
    streamer: t.Streamer
    platforms: list[str]
    weight: float
    title: str
    orders: int = 0


def weighted_sample(rng: random.Random, weights: Sequence[float], k: int) -> list[int]:
    """``k`` distinct indexes, each drawn with probability by weight (Efraimidis-Spirakis)."""
    keys = [(rng.random() ** (1.0 / w) if w > 0 else 0.0, i) for i, w in enumerate(weights)]
    return [i for _key, i in sorted(keys, reverse=True)[:k]]


def apportion(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` split by ``weights`` into integers summing to ``total`` exactly (largest remainder;
    ties to the lower index)."""
    if not weights:
        return []
    s = float(sum(weights))
    if s <= 0:
        weights, s = [1.0] * len(weights), float(len(weights))
    raw = [total * w / s for w in weights]
    out = [int(x) for x in raw]
    left = total - sum(out)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - out[i]), i))
    for i in order[:left]:
        out[i] += 1
    return out


def cumulative(weights: Sequence[float]) -> list[float]:
    acc, out = 0.0, []
    for w in weights:
        acc += w
        out.append(acc)
    return [x / acc for x in out]


def draw(rng: random.Random, cum: Sequence[float]) -> int:
    """An index drawn by the shares whose running sums are ``cum`` (``cumulative``)."""
    r = rng.random()
    for i, c in enumerate(cum):
        if r < c:
            return i
    return len(cum) - 1


def schedule(*, orders: int, shows: int, weeks: int, end: datetime, rng: random.Random) -> list[Show]:
    """``shows`` shows over the ``weeks`` before ``end`` sharing ``orders`` orders (see ``history``)."""
    tz = ZoneInfo(settings.TIME_ZONE)
    local_end = end.astimezone(tz)
    begin = end - timedelta(weeks=weeks)
    slots: list[tuple[datetime, float]] = []
    day = begin.astimezone(tz).date()
    while day <= local_end.date():
        for hour in t.HOUR_WEIGHT:
            start = datetime.combine(day, time(hour), tz)
            if begin <= start and start + timedelta(hours=1) + SHOW_TAIL <= end:
                slots.append((start, t.slot_weight(start.weekday(), hour)))
        day += timedelta(days=1)
    if len(slots) < shows:
        raise HistoryError(
            f"{shows} shows do not fit before {local_end:%Y-%m-%d %H:%M} in {weeks} weeks "
            f"(at most {len(slots)}: one an hour)",
        )
    # Merchants put more shows in good slots, but not only there: the draw flattens the weights.
    chosen = sorted(weighted_sample(rng, [w**0.6 for _s, w in slots], shows))
    streamers = cumulative([s.share for s in t.STREAMERS])
    out: list[Show] = []
    for n, i in enumerate(chosen):
        start, slot_w = slots[i]
        streamer = t.STREAMERS[draw(rng, streamers)]
        next_start = slots[chosen[n + 1]][0] if n + 1 < len(chosen) else end - SHOW_TAIL
        room = int((min(next_start, end - SHOW_TAIL) - start).total_seconds() // 60)
        minutes = min(rng.choice((60, 90, 120, 120, 150, 180, 240)), room)
        platforms = ["storefront"] + [p for p, share in t.PLATFORM_SHARE.items() if rng.random() < share]
        weight = slot_w * streamer.strength * math.sqrt(minutes / 120) * rng.lognormvariate(0, 0.25)
        local = start.astimezone(tz)
        title = f"{rng.choice(t.SHOW_THEMES)} · {streamer.name.split()[0]} {local.month}月{local.day}日"
        out.append(Show(start, minutes, streamer, platforms, weight, title))
    for show, n_orders in zip(out, apportion(orders, [s.weight for s in out]), strict=True):
        show.orders = n_orders
    return out


# --- one show's orders ---------------------------------------------------------------------------
@dataclass
class DrawnListing:
    sku: Sku
    price: Decimal
    limit: int
    opens: datetime
    closes: datetime
    demand: float
    tau: float  # seconds: the mean time to an order after opening, for the early rush
    units: int = 0  # ordered, whatever became of the orders: the quota covers them all
    sold: int = 0  # held by the orders kept (shipped, delivered, completed)
    sold_out: bool = False
    quota: int = 0
    pk: int = 0


@dataclass(slots=True)
class DrawnOrder:
    listing: int  # index into the show's listings
    space: str
    buyer: int  # number in the space's pool
    channel: str
    quantity: int
    status: str
    created: datetime
    paid: datetime | None
    updated: datetime
    reason: str
    version: int
    carrier: str
    tracking: str
    second: int | None  # a second line (platform orders): index of another listing's SKU


def show_listings(show: Show, skus: list[Sku], rng: random.Random) -> list[DrawnListing]:
    """The show's listings: 3-12 SKUs (by appeal, and the streamer's categories), opened one after
    another through the show, each at a flash price with a buyer limit, a window and a demand."""
    k = max(3, min(12, len(skus), round(2 + show.minutes / 20 + rng.uniform(-1, 1))))
    affinity = show.streamer.affinity
    picked = weighted_sample(rng, [s.appeal * affinity.get(s.category, 1.0) for s in skus], k)
    started = show.start + timedelta(seconds=rng.uniform(0, 300))
    slot = (show.minutes * 60 - 300) / k
    out = []
    for i, sku_index in enumerate(picked):
        sku = skus[sku_index]
        discount = rng.uniform(0.55, 0.9)
        price = t.flash_price(sku.price, discount)
        opens = started + timedelta(seconds=i * slot + rng.uniform(0, slot * 0.15))
        window = max(240.0, slot * rng.uniform(0.6, 0.85))
        demand = sku.appeal * affinity.get(sku.category, 1.0) * (1.45 - discount) * rng.lognormvariate(0, 0.35)
        limit = 3 if price < 60 else 2 if price < 200 else 1
        out.append(
            DrawnListing(sku, price, limit, opens, opens + timedelta(seconds=window), demand, rng.uniform(30, 180))
        )
    return out


@dataclass(frozen=True)
class Odds:
    expire_own: float = 0.09  # storefront/API orders never paid
    expire_platform: float = 0.05
    buyer_cancel: float = 0.03
    refund: float = 0.04


ODDS = Odds()
CARRIER_CUM = cumulative([c[2] for c in t.CARRIERS])


def show_orders(
    show: Show, listings: list[DrawnListing], pools: dict[str, Pool], rng: random.Random, end: datetime
) -> list[DrawnOrder]:
    """The show's ``show.orders`` orders, shared over its listings by demand, each with its time,
    channel, buyer, quantity and what became of it by ``end``; then each listing's quota (at
    least what was ordered from it: it sold out, or had units left)."""
    channels = [c for c in t.CHANNEL_WEIGHT if c == "api" or c in show.platforms]
    channel_cum = cumulative([t.CHANNEL_WEIGHT[c] for c in channels])
    per_listing = apportion(show.orders, [li.demand for li in listings])
    orders: list[DrawnOrder] = []
    day = timedelta(days=1)
    for index, (li, n) in enumerate(zip(listings, per_listing, strict=True)):
        window = (li.closes - li.opens).total_seconds()
        # Most orders come in the first minutes; a listing that sells out is all rush, the others
        # trickle on through their window.
        li.sold_out = n >= 5 and rng.random() < 0.6
        rush = 1.0 if li.sold_out else 0.85
        offsets = sorted(
            min(rng.expovariate(1.0 / li.tau) if rng.random() < rush else rng.uniform(0, window), window - 1)
            for _ in range(n)
        )
        # Own buyers' units on this listing, every order counted (the live rule counts the kept
        # ones only: this is stricter), so no buyer goes over the per-buyer limit.
        held: dict[int, int] = {}
        for off in offsets:
            channel = channels[draw(rng, channel_cum)]
            r = rng.random()
            quantity = min(li.limit, 1 if r < 0.8 else 2 if r < 0.95 else 3)
            created = li.opens + timedelta(seconds=off)
            platform = channel in PLATFORM_CHANNELS
            space = channel if platform else OWN
            buyer = pools[space].pick(rng, RETURNING_SHARE, created, None if platform else held, quantity, li.limit)
            if not platform:
                held[buyer] = held.get(buyer, 0) + quantity
            li.units += quantity
            second = None
            if platform and len(listings) > 1 and rng.random() < 0.06:
                second = (index + 1 + int(rng.random() * (len(listings) - 1))) % len(listings)
            paid: datetime | None = None
            carrier = tracking = reason = ""
            r = rng.random()
            expire = ODDS.expire_platform if platform else ODDS.expire_own
            if r < expire:
                status, version, reason = S.CANCELLED, 2, t.EXPIRED_REASON
                updated = created + timedelta(seconds=PAY_WINDOW)
            elif r < expire + ODDS.buyer_cancel:
                status, version, reason = S.CANCELLED, 2, rng.choice(t.BUYER_CANCEL_REASONS)
                updated = created + timedelta(seconds=rng.uniform(15, PAY_WINDOW * 0.8))
            else:
                paid = created + timedelta(seconds=min(5 + rng.expovariate(1 / 40), PAY_WINDOW - 5))
                if r < expire + ODDS.buyer_cancel + ODDS.refund:
                    status, version, reason = S.REFUNDED, 4, rng.choice(t.REFUND_REASONS)
                    updated = paid + timedelta(seconds=rng.uniform(600, 10 * 86400))
                    if updated >= end:
                        updated = paid + (end - paid) * rng.uniform(0.2, 0.9)
                else:
                    shipped = paid + timedelta(hours=rng.uniform(4, 48))
                    delivered = shipped + day * rng.uniform(1, 4)
                    completed = delivered + (day * rng.uniform(0.5, 7) if rng.random() < 0.4 else day * 7)
                    if completed <= end:
                        status, version, updated = S.COMPLETED, 6, completed
                    elif delivered <= end:
                        status, version, updated = S.DELIVERED, 5, delivered
                    else:
                        if shipped >= end:
                            shipped = paid + (end - paid) * rng.uniform(0.3, 0.9)
                        status, version, updated = S.SHIPPED, 4, shipped
                    name, prefix, _share = t.CARRIERS[draw(rng, CARRIER_CUM)]
                    carrier, tracking = name, f"{prefix}{rng.randrange(10**11, 10**12)}"
                    li.sold += quantity
            orders.append(
                DrawnOrder(
                    listing=index,
                    space=space,
                    buyer=buyer,
                    channel=channel,
                    quantity=quantity,
                    status=status,
                    created=created,
                    paid=paid,
                    updated=updated,
                    reason=reason,
                    version=version,
                    carrier=carrier,
                    tracking=tracking,
                    second=second,
                )
            )
    for li in listings:
        # A listing that sold out offered exactly what was ordered; the others had units left.
        li.quota = li.units if li.sold_out else li.units + max(3, int(li.units * rng.uniform(0.1, 0.6)))
    return orders
