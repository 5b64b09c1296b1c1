"""An order's features for the risk model, and the words that explain a risky one.

Pure functions over ``OrderFacts``: no database, no Redis, no clock. Two callers build the same
inputs: training and evaluation from simulated shows (``offline.py``, through ``ShowIndex``), and
the scorer from the database (the lead's ``scoring.py`` builds the same ``Neighbourhood`` from
indexed queries). Whatever the source, ``order_features(order, neighbourhood)`` is the only
function that turns them into numbers, so the model sees online exactly what it was trained on.

The neighbourhood
-----------------
The buyers an order is linked to: the orders of the same show reachable from it through an
equal ``phone_key``, ``address_key``, drop point (``facts.drop_point_key(address_key)``: the same
flat written differently) or ``device`` (transitively: A shares a device with B, B an address
with C), the order itself included, breadth first from the order, at most
``NEIGHBOURHOOD_CAP`` orders. **Not by IP**: carrier-grade NAT and campus networks put hundreds
of genuine fans on one address or /24; the IP enters only as two counts, ``ip_buyers`` and
``ip24_buyers`` (distinct buyers of the show on the order's IP and /24), which the model learns
to read both ways (a ring's office IP, a mobile carrier's NAT).

Only orders placed up to the moment of scoring are in it (``ShowIndex.neighbourhood(as_of_ms=)``):
nothing from the future leaks into a score. The model is trained over a spread of such moments
(``offline.SCORING_DELAYS_MS``), so it scores an order seconds after it is placed (few links
yet) or again later (more links, payment known) on one scale.

Features
--------
``FEATURE_NAMES`` fixes their order; ``order_features`` returns exactly those keys, all floats.
A missing value has its own 0/1 flag and a sentinel of -1 in the value. Counts that span orders
of magnitude (time since open, account age, payment delay, IP buyers) are log-scaled. Nothing
here reads a label or anything only the simulator knows.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .facts import OrderFacts, drop_point_key
from .useragent import UA_CLASSES, classify_user_agent

__all__ = [
    "FEATURE_NAMES",
    "NEIGHBOURHOOD_CAP",
    "YOUNG_ACCOUNT_DAYS",
    "Neighbourhood",
    "ShowIndex",
    "explain",
    "order_features",
]

NEIGHBOURHOOD_CAP = 500  # orders: a bigger ring is already unmistakable, and the query stays bounded
YOUNG_ACCOUNT_DAYS = 30
DAY_MS = 86_400_000
MISSING = -1.0

FEATURE_NAMES: tuple[str, ...] = (
    # timing
    "since_open_log",  # log10(1 + ms after the listing opened); -1 unknown
    "since_open_missing",
    "early_attempts_log",  # log2(1 + attempts by this buyer/device/IP before open)
    "paid_known",  # 1 when paid at the time of scoring
    "paid_after_log",  # log10(1 + ms from order to payment); -1 not paid (yet)
    # identity
    "account_age_log",  # log10(1 + days from account creation to the order); -1 unknown
    "account_age_missing",
    "phone_missing",
    "device_missing",
    "address_missing",
    # client
    *(f"ua_{c}" for c in UA_CLASSES),
    # quantity
    "quantity",
    "quantity_at_limit",
    "quantity_share",  # quantity / per-buyer limit
    # the linked cluster (phone / address / device, transitively)
    "cluster_buyers",  # distinct buyers, the order's own included
    "cluster_orders",
    "cluster_orders_per_buyer",
    "address_buyers",  # distinct buyers on the order's own address key (0: no address)
    "drop_buyers",  # distinct buyers on its drop point (facts.drop_point_key; 0: none)
    "drop_address_variants",  # distinct address keys written for that drop point
    "phone_buyers",
    "device_buyers",
    "cluster_devices",
    "cluster_ips",
    "cluster_addresses",
    "cluster_buyers_per_device",
    "cluster_young_share",  # of the cluster's buyers with a known age, the share under 30 days
    "cluster_registration_span_log",  # log10(1 + days between the first and last account creation); -1 < 2 known
    "cluster_time_span_log",  # log10(1 + ms between the cluster's first and last order)
    "cluster_same_ua_buyers",  # other buyers in the cluster sending this order's exact user agent
    "cluster_at_limit_share",  # of the cluster's orders, the share at the per-buyer limit
    "nearest_linked_phone_gap_log",  # log10(|this phone - the nearest other linked phone|); -1 none
    # the network
    "ip_buyers_log",  # log2(1 + distinct buyers of the show on this IP)
    "ip24_buyers_log",
    "ip_missing",
)


@dataclass(frozen=True)
class Neighbourhood:
    """What the features know about the rest of the show (see the module docstring)."""

    linked: tuple[OrderFacts, ...]  # the linked orders, the order itself included, at most NEIGHBOURHOOD_CAP
    ip_buyers: int = 0  # distinct buyers of the show on the order's IP (the order's own included)
    ip24_buyers: int = 0  # ... on its IPv4 /24 (IPv6 /48)


class ShowIndex:
    """One show's orders in memory, for neighbourhoods offline (training, evaluation, tests).

    Per key (phone, address, device) the orders in time order, so that a neighbourhood "as of"
    a moment is a bisection per key; per IP and /24 the running count of distinct buyers."""

    def __init__(self, facts: Iterable[OrderFacts]) -> None:
        self._orders: list[OrderFacts] = sorted(facts, key=lambda f: (f.placed_ms, f.key))
        self._links: dict[tuple[str, str], list[int]] = defaultdict(list)  # (kind, value) -> positions
        ip_orders: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, f in enumerate(self._orders):
            for link in _links_of(f):
                self._links[link].append(i)
            if f.ip:
                ip_orders[("ip", f.ip)].append(i)
            if f.ip24:
                ip_orders[("ip24", f.ip24)].append(i)
        self._times = [f.placed_ms for f in self._orders]
        self._link_times = {k: [self._times[i] for i in v] for k, v in self._links.items()}
        # Per IP key: placing times, and the number of distinct buyers after each order.
        self._ip_counts: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
        for k, positions in ip_orders.items():
            buyers: set[str] = set()
            counts = []
            for i in positions:
                buyers.add(self._orders[i].buyer)
                counts.append(len(buyers))
            self._ip_counts[k] = ([self._times[i] for i in positions], counts)

    def __len__(self) -> int:
        return len(self._orders)

    def __iter__(self) -> Any:
        return iter(self._orders)

    def neighbourhood(self, order: OrderFacts, *, as_of_ms: int | None = None) -> Neighbourhood:
        """The order's neighbourhood among the orders placed at or before ``as_of_ms`` (default:
        the order's own placing time, i.e. none placed after it). The order itself is always in
        it, first, whether or not it is in the index."""
        as_of = order.placed_ms if as_of_ms is None else as_of_ms
        linked = [order]
        seen_keys = {order.key}
        seen_links: set[tuple[str, str]] = set()
        queue = deque(_links_of(order))
        while queue and len(linked) < NEIGHBOURHOOD_CAP:
            link = queue.popleft()
            if link in seen_links:
                continue
            seen_links.add(link)
            positions = self._links.get(link)
            if not positions:
                continue
            for i in positions[: bisect_right(self._link_times[link], as_of)]:
                other = self._orders[i]
                if other.key in seen_keys:
                    continue
                seen_keys.add(other.key)
                linked.append(other)
                if len(linked) >= NEIGHBOURHOOD_CAP:
                    break
                queue.extend(k for k in _links_of(other) if k not in seen_links)
        return Neighbourhood(
            linked=tuple(linked),
            ip_buyers=self._buyers_on(("ip", order.ip), order, as_of) if order.ip else 0,
            ip24_buyers=self._buyers_on(("ip24", order.ip24), order, as_of) if order.ip24 else 0,
        )

    def _buyers_on(self, key: tuple[str, str | None], order: OrderFacts, as_of: int) -> int:
        entry = self._ip_counts.get(key)  # type: ignore[arg-type]  # key[1] is set by the caller
        if entry is None:
            return 1
        times, counts = entry
        n = bisect_right(times, as_of)
        return max(1, counts[n - 1] if n else 0)


_drop_point = lru_cache(maxsize=65_536)(drop_point_key)


def _links_of(f: OrderFacts) -> list[tuple[str, str]]:
    out = []
    if f.phone_key:
        out.append(("phone", f.phone_key))
    if f.address_key:
        out.append(("address", f.address_key))
        drop = _drop_point(f.address_key)
        if drop:
            out.append(("drop", drop))
    if f.device:
        out.append(("device", f.device))
    return out


def _log10p(x: float) -> float:
    return math.log10(1.0 + max(0.0, x))


def _log2p(x: float) -> float:
    return math.log2(1.0 + max(0.0, x))


def _age_days(f: OrderFacts) -> float | None:
    if f.registered_ms is None:
        return None
    return max(0.0, (f.placed_ms - f.registered_ms) / DAY_MS)


def _phone_number(key: str | None) -> int | None:
    return int(key) if key and key.isdigit() else None


def order_features(order: OrderFacts, nb: Neighbourhood) -> dict[str, float]:
    """The order's features, keyed and ordered as ``FEATURE_NAMES`` (see the module docstring)."""
    f: dict[str, float] = {}
    # timing
    since = order.since_open_ms
    f["since_open_log"] = _log10p(since) if since is not None else MISSING
    f["since_open_missing"] = float(since is None)
    f["early_attempts_log"] = _log2p(order.early_attempts)
    paid = order.paid_after_ms
    f["paid_known"] = float(paid is not None)
    f["paid_after_log"] = _log10p(paid) if paid is not None else MISSING
    # identity
    age = _age_days(order)
    f["account_age_log"] = _log10p(age) if age is not None else MISSING
    f["account_age_missing"] = float(age is None)
    f["phone_missing"] = float(not order.phone_key)
    f["device_missing"] = float(not order.device)
    f["address_missing"] = float(not order.address_key)
    # client
    ua = classify_user_agent(order.user_agent)
    for c in UA_CLASSES:
        f[f"ua_{c}"] = float(ua == c)
    # quantity
    limit = max(1, order.limit)
    f["quantity"] = float(order.quantity)
    f["quantity_at_limit"] = float(order.quantity >= limit)
    f["quantity_share"] = order.quantity / limit
    # the cluster
    linked = nb.linked if any(o.key == order.key for o in nb.linked) else (order, *nb.linked)
    buyers: dict[str, OrderFacts] = {}
    for o in linked:
        buyers.setdefault(o.buyer, o)
    n_buyers = len(buyers)
    devices = {o.device for o in linked if o.device}
    f["cluster_buyers"] = float(n_buyers)
    f["cluster_orders"] = float(len(linked))
    f["cluster_orders_per_buyer"] = len(linked) / n_buyers
    f["address_buyers"] = _buyers_sharing(linked, "address_key", order.address_key)
    drop = _drop_point(order.address_key) if order.address_key else None
    at_drop = [o for o in linked if drop and o.address_key and _drop_point(o.address_key) == drop]
    f["drop_buyers"] = float(len({o.buyer for o in at_drop}))
    f["drop_address_variants"] = float(len({o.address_key for o in at_drop}))
    f["phone_buyers"] = _buyers_sharing(linked, "phone_key", order.phone_key)
    f["device_buyers"] = _buyers_sharing(linked, "device", order.device)
    f["cluster_devices"] = float(len(devices))
    f["cluster_ips"] = float(len({o.ip for o in linked if o.ip}))
    f["cluster_addresses"] = float(len({o.address_key for o in linked if o.address_key}))
    f["cluster_buyers_per_device"] = n_buyers / max(1, len(devices))
    ages = [a for a in (_age_days(o) for o in buyers.values()) if a is not None]
    f["cluster_young_share"] = sum(a < YOUNG_ACCOUNT_DAYS for a in ages) / len(ages) if ages else 0.0
    registered = [o.registered_ms for o in buyers.values() if o.registered_ms is not None]
    f["cluster_registration_span_log"] = (
        _log10p((max(registered) - min(registered)) / DAY_MS) if len(registered) >= 2 else MISSING
    )
    times = [o.placed_ms for o in linked]
    f["cluster_time_span_log"] = _log10p(max(times) - min(times))
    ua_text = order.user_agent
    f["cluster_same_ua_buyers"] = float(
        len({o.buyer for o in linked if ua_text and o.user_agent == ua_text and o.buyer != order.buyer})
    )
    f["cluster_at_limit_share"] = sum(o.quantity >= max(1, o.limit) for o in linked) / len(linked)
    mine = _phone_number(order.phone_key)
    gaps = (
        [
            abs(mine - theirs)
            for o in buyers.values()
            if o.buyer != order.buyer and (theirs := _phone_number(o.phone_key)) is not None and theirs != mine
        ]
        if mine is not None
        else []
    )
    f["nearest_linked_phone_gap_log"] = math.log10(min(gaps)) if gaps else MISSING
    # the network
    f["ip_buyers_log"] = _log2p(nb.ip_buyers)
    f["ip24_buyers_log"] = _log2p(nb.ip24_buyers)
    f["ip_missing"] = float(not order.ip)
    return f


def _buyers_sharing(linked: Iterable[OrderFacts], attr: str, value: str | None) -> float:
    if not value:
        return 0.0
    return float(len({o.buyer for o in linked if getattr(o, attr) == value}))


# --- explanations ------------------------------------------------------------------------------


def explain(order: OrderFacts, features: dict[str, float], *, limit: int = 3) -> list[dict[str, Any]]:
    """Up to ``limit`` reasons a merchant can check, most telling first, as
    ``{"code": ..., "params": {...}}`` (codes and texts in ``reasons.py``).

    Called for an order the model scored high: it names what in the order and its links is
    unusual for a fan (a bot's client, shots before open, identities shared with other buyers,
    a cluster of new accounts...). A high score with none of these gets ``model_pattern``."""
    found: list[tuple[float, str, dict[str, int]]] = []

    def add(weight: float, code: str, **params: int) -> None:
        found.append((weight, code, params))

    g = features.get
    if g("ua_headless"):
        add(100, "headless_browser")
    if g("ua_script"):
        add(100, "script_client")
    if g("ua_inconsistent"):
        add(90, "inconsistent_client")
    if order.early_attempts > 0:
        add(85 + min(order.early_attempts, 10), "early_attempts", attempts=order.early_attempts)
    since = order.since_open_ms
    if since is not None and 0 <= since < 300:
        add(80, "ordered_at_open", ms=since)
    device_buyers = int(g("device_buyers", 0))
    if device_buyers >= 2:
        add(70 + min(device_buyers, 25), "device_shared", buyers=device_buyers)
    phone_buyers = int(g("phone_buyers", 0))
    if phone_buyers >= 2:
        add(65 + min(phone_buyers, 25), "phone_shared", buyers=phone_buyers)
    address_buyers = int(g("address_buyers", 0))
    drop_buyers = int(g("drop_buyers", 0))
    variants = int(g("drop_address_variants", 0))
    if drop_buyers >= 3 and variants >= 3 and drop_buyers > address_buyers:
        # one flat, written many ways: a household shares its flat with one to three others
        add(62 + min(drop_buyers, 30), "address_variants", buyers=drop_buyers, variants=variants)
    elif address_buyers >= 3:
        add(60 + min(address_buyers, 30), "address_shared", buyers=address_buyers)
    cluster = int(g("cluster_buyers", 1))
    if cluster >= 3 and cluster > max(device_buyers, phone_buyers, address_buyers, drop_buyers):
        add(55 + min(cluster, 30), "linked_buyers", buyers=cluster - 1)
    young_share = g("cluster_young_share", 0.0) or 0.0
    if cluster >= 3 and young_share >= 0.5:
        add(55 + 20 * young_share, "young_cluster", percent=round(100 * young_share), buyers=cluster)
    age = _age_days(order)
    if age is not None and age < YOUNG_ACCOUNT_DAYS and not (cluster >= 3 and young_share >= 0.5):
        add(50 + (YOUNG_ACCOUNT_DAYS - age), "young_account", days=int(age))
    orders = int(g("cluster_orders", 1))
    if cluster >= 2 and orders >= 1.5 * cluster:
        add(45, "repeat_orders", orders=orders, buyers=cluster)
    if g("quantity_at_limit") and order.quantity > 1 and since is not None and since < 5000:
        add(40, "max_quantity", quantity=order.quantity)
    paid = order.paid_after_ms
    if paid is not None and paid < 3000:
        add(35, "instant_payment", ms=paid)
    addresses = int(g("cluster_addresses", 0))
    if addresses >= 4 and cluster >= 4 and not any(code == "address_variants" for _, code, _ in found):
        add(30, "many_addresses", addresses=addresses)
    if g("device_missing"):
        add(20, "device_missing")
    if not found:
        return [{"code": "model_pattern", "params": {}}]
    found.sort(key=lambda x: -x[0])
    return [{"code": code, "params": params} for _, code, params in found[:limit]]
