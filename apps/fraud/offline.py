"""Simulated shows as the server would record them, for training and evaluating the risk model.

``facts_from_attempts(attempts, ...)`` turns the simulator's attempts into the ``OrderFacts``
the server would hold for each one that becomes an order, with the same normalisers and the
same counting as the hot path, each paired with its label (kept beside the facts, never in
them: nothing here reads ``attempt.label`` to build a fact). What it reproduces:

- Before the listing opens, the gate answers 409 ``listing_closed``: no order, but the hot path's
  early-attempt counters move per buyer, device and IP; an order's ``early_attempts`` is the
  largest of its three counts so far.
- An attempt under an ``Idempotency-Key`` already placed is that order again, not a new one. (The
  simulator's retries after a hiccup carry their own key, as ``replay.py`` sends them, so they
  are new orders, and the unanswered first try is an unpaid one.)
- The per-buyer limit: an attempt that would take its buyer over it is 409 ``over_limit`` (no
  order). An unpaid order's units come back when its payment window ends, as the gate releases
  them.
- ``paid_after_ms`` from the attempt's ``pay_after_ms`` when the buyer pays.

Not reproduced: sold out (every attempt within the limit becomes an order, so a model sees the
whole show, not only the first ``quota`` units) and the hot-path rules' blocks (the model is
trained and judged on its own).

Scoring views
-------------
An order is scored some time after it is placed. ``scored_view(order, delay_ms)`` is the order as
known then (a payment made later is not known yet), and the neighbourhood includes the orders
placed until then. Training draws a delay per order from ``SCORING_DELAYS_MS``;
``evaluate`` reports each of ``EVALUATION_VIEWS``.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

from apps.core.client_ip import normal_ip
from apps.core.normalise import normalise_address

from .facts import OrderFacts, buyer_phone_key, ip_prefix
from .features import ShowIndex, order_features
from .simulation import (
    ABUSE_KINDS,
    GENUINE,
    GENUINE_GROUPS,
    Label,
    SimulatedAttempt,
    SimulationConfig,
    generate_attempts,
    random_config,
)

if TYPE_CHECKING:
    from .model import RiskModel

__all__ = [
    "EVALUATION_VIEWS",
    "SCORING_DELAYS_MS",
    "EvaluationReport",
    "ServerLag",
    "evaluate",
    "facts_from_attempts",
    "feature_rows",
    "format_report",
    "scored_view",
    "show_facts",
]

DEFAULT_OPENS_AT_MS = int(SimulationConfig().opens_at.timestamp() * 1000)

# When an order may be scored, after it is placed: at once, while the after-commit task queue is
# busy at the opening burst, when the buyer pays, after the show (None: everything known).
SCORING_DELAYS_MS: tuple[int | None, ...] = (0, 2_000, 5_000, 30_000, 300_000, None)
EVALUATION_VIEWS: Mapping[str, int | None] = {
    "at placing": 0,
    "5s after placing": 5_000,
    "after the show": None,
}


@dataclass(frozen=True)
class ServerLag:
    """A busy server between the buyers and the clock the detector reads: requests (orders,
    attempts before open, payments) are served one at a time in arrival order, each taking an
    exponential time of mean ``1 / per_s`` seconds, so at an opening burst above ``per_s`` a
    request waits for the ones before it. A replay against two uvicorn workers on a loaded
    2-core box served about 40 requests a second: eager fans' orders were stamped 2-3 s late at
    the median and up to 20 s late, and a model trained on exact timings held them as bots."""

    per_s: float
    seed: int = 0

    # Per training show: 1 in 4 on a server that keeps up, the rest log-uniform in this range.
    RANGE_PER_S: ClassVar[tuple[float, float]] = (25.0, 1_000.0)

    @classmethod
    def for_show(cls, seed: int) -> ServerLag | None:
        """The server a simulated show ran on, drawn from its seed (None: no lag)."""
        rng = random.Random(f"server-lag-{seed}")
        if rng.random() < 0.25:
            return None
        lo, hi = cls.RANGE_PER_S
        return cls(per_s=math.exp(rng.uniform(math.log(lo), math.log(hi))), seed=seed)

    def delays(self, times_ms: Sequence[float]) -> list[float]:
        """How long each request (by arrival time, ms) waited and was served, in input order."""
        rng = random.Random(f"server-lag-queue-{self.seed}")
        mean_ms = 1000.0 / self.per_s
        out = [0.0] * len(times_ms)
        free = -math.inf
        for i in sorted(range(len(times_ms)), key=lambda j: times_ms[j]):
            done = max(times_ms[i], free) + rng.expovariate(1.0 / mean_ms)
            free = done
            out[i] = done - times_ms[i]
        return out


def _lags(attempts: Sequence[SimulatedAttempt], lag: ServerLag | None) -> tuple[list[float], list[float]]:
    """Per attempt (in order): its order request's delay, and its payment's (0 when no lag)."""
    if lag is None:
        return [0.0] * len(attempts), [0.0] * len(attempts)
    pays = [i for i, a in enumerate(attempts) if a.pays and a.pay_after_ms is not None and a.t_ms >= 0]
    times = [float(a.t_ms) for a in attempts]
    times += [float(attempts[i].t_ms + (attempts[i].pay_after_ms or 0)) for i in pays]
    d = lag.delays(times)
    pay = [0.0] * len(attempts)
    for k, i in enumerate(pays):
        pay[i] = d[len(attempts) + k]
    return d[: len(attempts)], pay


def facts_from_attempts(
    attempts: Iterable[SimulatedAttempt],
    *,
    show: str = "sim",
    listing: str = "1",
    limit: int | None = None,
    opens_at_ms: int = DEFAULT_OPENS_AT_MS,
    payment_window_ms: int | None = None,
    lag: ServerLag | None = None,
) -> list[tuple[OrderFacts, Label]]:
    """The orders a server would record for ``attempts`` (see the module docstring), in time
    order, each with its attempt's label. ``limit``: the listing's per-buyer limit (default: the
    largest quantity any attempt asks for, which the simulator never exceeds).
    ``payment_window_ms``: when an unpaid order's units return to its buyer's limit (None:
    never, within the show). ``lag``: the server's queue, which moves the times the server
    records (placing, since open, time to pay), not what the buyers did."""
    attempts = sorted(attempts, key=lambda a: a.t_ms)
    order_lag, pay_lag = _lags(attempts, lag)
    if limit is None:
        limit = max((a.quantity for a in attempts), default=1)
    early: dict[tuple[str, str], int] = Counter()
    placed_keys: set[str] = set()
    held: dict[str, list[tuple[int, int]]] = defaultdict(list)  # buyer -> [(units, release at t_ms)]
    address_keys: dict[tuple[str, ...], str | None] = {}
    out: list[tuple[OrderFacts, Label]] = []
    for n, a in enumerate(attempts):
        ip = normal_ip(a.client.ip) if a.client.ip else None
        device = a.client.device_id or None
        who = [("buyer", a.buyer.external_id)]
        if device:
            who.append(("device", device))
        if ip:
            who.append(("ip", ip))
        if a.t_ms < 0:  # 409 listing_closed; only the early-attempt counters move
            for k in who:
                early[k] += 1
            continue
        if a.idempotency_key in placed_keys:
            continue  # the same order again
        holds = [h for h in held[a.buyer.external_id] if h[1] > a.t_ms]
        if sum(units for units, _ in holds) + a.quantity > limit:
            continue  # 409 over_limit
        released_at = a.t_ms + payment_window_ms if (not a.pays and payment_window_ms is not None) else 2**62
        holds.append((a.quantity, released_at))
        held[a.buyer.external_id] = holds
        placed_keys.add(a.idempotency_key)
        addr = a.shipping_address.as_dict()
        cache_key = tuple(addr.values())
        if cache_key not in address_keys:
            address_keys[cache_key] = normalise_address(addr) or None
        facts = OrderFacts(
            key=a.attempt_id,
            show=show,
            listing=listing,
            buyer=a.buyer.external_id,
            placed_ms=opens_at_ms + a.t_ms + round(order_lag[n]),
            since_open_ms=a.t_ms + round(order_lag[n]),
            quantity=a.quantity,
            limit=limit,
            registered_ms=None if a.client.relayed else int(a.buyer.registered_at.timestamp() * 1000),
            phone_key=buyer_phone_key(a.buyer.phone, a.shipping_address.phone),
            address_key=address_keys[cache_key],
            device=device,
            ip=ip,
            ip24=ip_prefix(ip),
            user_agent=a.client.user_agent or "",
            early_attempts=max(early[k] for k in who),
            paid_after_ms=(
                max(0, a.pay_after_ms + round(pay_lag[n] - order_lag[n]))
                if a.pays and a.pay_after_ms is not None
                else None
            ),
        )
        out.append((facts, a.label))
    return out


def show_facts(
    config: SimulationConfig, *, show: str | None = None, lagged: bool = False
) -> list[tuple[OrderFacts, Label]]:
    """One simulated show's orders, with its listing's limit, opening and payment window;
    ``lagged``: as recorded by the server the show's seed draws (``ServerLag.for_show``)."""
    return facts_from_attempts(
        generate_attempts(config),
        show=show or f"sim-{config.seed}",
        limit=config.per_buyer_limit,
        opens_at_ms=int(config.opens_at.timestamp() * 1000),
        payment_window_ms=config.payment_window_ms,
        lag=ServerLag.for_show(config.seed) if lagged else None,
    )


def scored_view(order: OrderFacts, delay_ms: int | None) -> OrderFacts:
    """The order as known ``delay_ms`` after it was placed (None: after the show): a payment
    made later is not known yet."""
    if delay_ms is None or order.paid_after_ms is None or order.paid_after_ms <= delay_ms:
        return order
    return replace(order, paid_after_ms=None)


def feature_rows(
    pairs: Sequence[tuple[OrderFacts, Label]],
    *,
    delay_ms: int | None = None,
    delays: Sequence[int | None] | None = None,
    rng: random.Random | None = None,
) -> Iterator[tuple[dict[str, float], Label]]:
    """Features of each order of one or more shows (grouped by ``OrderFacts.show``), scored
    ``delay_ms`` after placing, or at a delay drawn from ``delays`` per order."""
    by_show: dict[str, list[tuple[OrderFacts, Label]]] = defaultdict(list)
    for pair in pairs:
        by_show[pair[0].show].append(pair)
    for show_pairs in by_show.values():
        index = ShowIndex(f for f, _ in show_pairs)
        for facts, label in show_pairs:
            delay = (rng or random).choice(delays) if delays else delay_ms
            as_of = None if delay is None else facts.placed_ms + delay
            nb = index.neighbourhood(facts, as_of_ms=as_of if as_of is not None else 2**62)
            yield order_features(scored_view(facts, delay), nb), label


# --- evaluation --------------------------------------------------------------------------------


@dataclass
class Tally:
    orders: int = 0
    flagged: int = 0

    @property
    def rate(self) -> float:
        return self.flagged / self.orders if self.orders else 0.0


@dataclass
class ViewReport:
    by_kind: dict[str, Tally] = field(default_factory=lambda: {k: Tally() for k in ABUSE_KINDS})
    by_group: dict[str, Tally] = field(default_factory=lambda: {g: Tally() for g in GENUINE_GROUPS})

    @property
    def abuse(self) -> Tally:
        return Tally(sum(t.orders for t in self.by_kind.values()), sum(t.flagged for t in self.by_kind.values()))

    @property
    def genuine(self) -> Tally:
        return Tally(sum(t.orders for t in self.by_group.values()), sum(t.flagged for t in self.by_group.values()))

    @property
    def precision(self) -> float:
        flagged = self.abuse.flagged + self.genuine.flagged
        return self.abuse.flagged / flagged if flagged else 1.0

    def add(self, label: Label, flagged: bool) -> None:
        tally = self.by_group.setdefault(label.group, Tally()) if label.kind == GENUINE else None
        if tally is None:
            tally = self.by_kind.setdefault(label.kind, Tally())
        tally.orders += 1
        tally.flagged += int(flagged)

    def as_dict(self) -> dict[str, Any]:
        return {
            "recall": round(self.abuse.rate, 5),
            "genuine_flagged": round(self.genuine.rate, 5),
            "precision": round(self.precision, 5),
            "abuse_orders": self.abuse.orders,
            "genuine_orders": self.genuine.orders,
            "by_kind": {
                k: {"orders": t.orders, "flagged": t.flagged, "recall": round(t.rate, 5)}
                for k, t in self.by_kind.items()
            },
            "by_group": {
                g: {"orders": t.orders, "flagged": t.flagged, "flagged_share": round(t.rate, 5)}
                for g, t in self.by_group.items()
            },
        }


@dataclass
class EvaluationReport:
    seeds: tuple[int, ...]
    n_orders: int
    threshold: float
    views: dict[str, ViewReport]

    def as_dict(self) -> dict[str, Any]:
        return {
            "seeds": list(self.seeds),
            "n_orders": self.n_orders,
            "threshold": self.threshold,
            "views": {name: v.as_dict() for name, v in self.views.items()},
        }


def evaluate(
    model: RiskModel,
    seeds: Iterable[int],
    n_orders: int,
    *,
    views: Mapping[str, int | None] = EVALUATION_VIEWS,
    pairs_by_seed: Mapping[int, Sequence[tuple[OrderFacts, Label]]] | None = None,
    lagged: bool = False,
) -> EvaluationReport:
    """The model alone (no hot-path rules) on simulated shows ``random_config(seed, n_orders)``:
    per scoring view, recall per abuse kind and the share of genuine orders flagged per genuine
    group, at the model's threshold. ``pairs_by_seed`` reuses shows already generated;
    ``lagged``: each show as its seed's server recorded it (``ServerLag.for_show``)."""
    seeds = tuple(seeds)
    report = EvaluationReport(seeds, n_orders, model.threshold, {name: ViewReport() for name in views})
    for seed in seeds:
        pairs = (pairs_by_seed or {}).get(seed) or show_facts(random_config(seed, n_orders=n_orders), lagged=lagged)
        for name, delay in views.items():
            rows = list(feature_rows(pairs, delay_ms=delay))
            scores = model.score_many([f for f, _ in rows])
            for (_, label), score in zip(rows, scores, strict=True):
                report.views[name].add(label, model.flags(float(score)))
    return report


def format_report(report: EvaluationReport | Mapping[str, Any]) -> str:
    """A plain-text table: per view, each abuse kind's recall and each genuine group's flagged
    share, with counts."""
    data = report.as_dict() if isinstance(report, EvaluationReport) else report
    lines = [
        f"held-out seeds {data['seeds']}, {data['n_orders']} attempts each; threshold {data['threshold']:.2f}",
    ]
    for name, v in data["views"].items():
        lines.append("")
        lines.append(
            f"scored {name}: recall {100 * v['recall']:.2f}% of {v['abuse_orders']} abusive orders, "
            f"genuine flagged {100 * v['genuine_flagged']:.3f}% of {v['genuine_orders']}, "
            f"precision {100 * v['precision']:.2f}%"
        )
        lines.append(f"  {'abuse kind':<18}{'orders':>8}{'flagged':>9}{'recall':>9}")
        for kind, t in v["by_kind"].items():
            lines.append(f"  {kind:<18}{t['orders']:>8}{t['flagged']:>9}{100 * t['recall']:>8.2f}%")
        lines.append(f"  {'genuine group':<18}{'orders':>8}{'flagged':>9}{'share':>9}")
        for group, t in v["by_group"].items():
            lines.append(f"  {group:<18}{t['orders']:>8}{t['flagged']:>9}{100 * t['flagged_share']:>8.3f}%")
    return "\n".join(lines)
