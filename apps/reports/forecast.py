"""Demand forecast (AI 预测): the units a planned show will sell of each SKU, from the merchant's
past shows, with an interval, a suggested quota and the stock to hold; and the rolling-origin
backtest that says how good it is against the naive baseline (the same SKU's units in its last
show).

Read from the rollups only (``SessionReport.figures["listings"]``): one observation per listing of
a past show, its paid units the target. Features known when a show is planned: the SKU's mean and
last units in earlier shows (and how many shows it was in), its category's mean, the price, the
streamer, weekday and hour (China time), whether it is the weekend, the show's length and how many
listings it has. The model is scikit-learn's ``HistGradientBoostingRegressor`` with a Poisson loss
(counts) for the expected units, and two quantile models (10th and 90th percentiles) for the
interval. Units sold are capped by the quota (a sold-out listing hides demand): the forecast is of
units *sold* at the quotas merchants set, and the suggestion errs upwards (the interval's top).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings

from apps.catalog.models import SKU

from .models import history_stamp, past_reports

MIN_TRAIN_SHOWS = 12
SEED = 7


@dataclass(frozen=True)
class Observation:
    session_id: int
    starts_at: datetime
    sku: str
    category: str
    streamer: str
    price: float
    hours: float
    listings: int
    units: int


@dataclass(frozen=True)
class Plan:
    """A planned show: the SKUs (code, category, flash price), the streamer, when, how long."""

    skus: list[tuple[str, str, float]]
    streamer: str
    starts_at: datetime
    hours: float


@dataclass
class History:
    """What earlier shows say about SKUs and categories (built from the training observations)."""

    sku_units: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    cat_units: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    streamers: list[str] = field(default_factory=list)
    mean: float = 0.0

    @classmethod
    def of(cls, observations: list[Observation]) -> History:
        h = cls()
        for o in sorted(observations, key=lambda o: o.starts_at):
            h.sku_units[o.sku].append(o.units)
            h.cat_units[o.category].append(o.units)
        h.streamers = sorted({o.streamer for o in observations})
        h.mean = sum(o.units for o in observations) / len(observations) if observations else 0.0
        return h

    def last(self, sku: str, category: str) -> float:
        """The naive baseline: the SKU's units in its last show (its category's mean, else the mean,
        for a SKU never shown)."""
        units = self.sku_units.get(sku)
        if units:
            return float(units[-1])
        cat = self.cat_units.get(category)
        return sum(cat) / len(cat) if cat else self.mean


def observations(*, merchant_id: int) -> list[Observation]:
    tz = ZoneInfo(settings.TIME_ZONE)
    out = []
    rows = past_reports(merchant_id).order_by("starts_at")
    for session_id, starts_at, streamer, hours, figures in rows.values_list(
        "session_id", "starts_at", "streamer", "hours_on_air", "figures"
    ).iterator(chunk_size=500):
        listings = figures.get("listings", [])
        if starts_at is None:  # filtered out above; for the type checker
            continue
        for li in listings:
            out.append(
                Observation(
                    session_id=session_id, starts_at=starts_at.astimezone(tz), sku=li["sku"],
                    category=li.get("category", ""), streamer=streamer, price=float(li.get("price") or 0),
                    hours=float(hours), listings=len(listings), units=int(li["units"]),
                )
            )  # fmt: skip
    return out


def _features(h: History, *, sku: str, category: str, streamer: str, price: float, at: datetime, hours: float,
              listings: int) -> list[float]:  # fmt: skip
    units = h.sku_units.get(sku, [])
    cat = h.cat_units.get(category, [])
    return [
        sum(units) / len(units) if units else math.nan,
        float(units[-1]) if units else math.nan,
        float(len(units)),
        sum(cat) / len(cat) if cat else math.nan,
        price,
        float(at.weekday()),
        float(at.hour),
        1.0 if at.weekday() >= 5 else 0.0,
        hours,
        float(listings),
        *[1.0 if streamer == s else 0.0 for s in h.streamers],
    ]


@dataclass
class Model:
    history: History
    point: Any
    spread: float  # the interval's half-width per sqrt(expected + 1) (split-conformal, 80 %)

    def predict(self, rows: list[list[float]]) -> list[tuple[float, float, float]]:
        out = []
        with one_thread():
            predicted = self.point.predict(rows)
        for m in predicted:
            mid = max(float(m), 0.0)
            half = self.spread * math.sqrt(mid + 1)
            out.append((mid, max(mid - half, 0.0), mid + half))
        return out


COVERAGE = 0.8


def _design(train: list[Observation], history: History) -> tuple[list[list[float]], list[int]]:
    """Features of each observation from the shows before it only (as at planning time), so the
    model learns what history says, not what the show itself did. Fills ``history``."""
    xs, ys = [], []
    for o in sorted(train, key=lambda o: (o.starts_at, o.session_id)):
        xs.append(_features(history, sku=o.sku, category=o.category, streamer=o.streamer, price=o.price,
                            at=o.starts_at, hours=o.hours, listings=o.listings))  # fmt: skip
        ys.append(o.units)
        history.sku_units[o.sku].append(o.units)
        history.cat_units[o.category].append(o.units)
    history.mean = sum(ys) / len(ys) if ys else 0.0
    return xs, ys


def one_thread() -> Any:
    """scikit-learn's OpenMP on one thread: on a busy machine (a web worker beside others) its
    threads wait for each other, and one thread is faster (0.9 s against 1.5 s for 200 shows)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def _regressor() -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(
        loss="poisson", max_iter=200, learning_rate=0.08, max_leaf_nodes=15, min_samples_leaf=8, random_state=SEED
    )


def fit(train: list[Observation]) -> Model:
    """Train the expected-units model on ``train``, and size its 80 % interval by split conformal
    prediction: a model fitted on the earlier shows forecasts the latest fifth (at least 3 shows);
    the interval's half-width is the 80th percentile (finite-sample corrected) of their errors, each
    scaled by sqrt(expected + 1) (count data spread with their mean)."""
    streamers = sorted({o.streamer for o in train})
    shows = sorted({(o.starts_at, o.session_id) for o in train})
    cut = max(len(shows) - max(len(shows) // 5, 3), 1)
    late = {sid for _at, sid in shows[cut:]}
    early = [o for o in train if o.session_id not in late]
    calibration = [o for o in train if o.session_id in late]
    spread = 1.0
    if early and calibration:
        h = History(streamers=streamers)
        xs, ys = _design(early, h)
        with one_thread():
            first = _regressor().fit(xs, ys)
        rows = [
            _features(h, sku=o.sku, category=o.category, streamer=o.streamer, price=o.price, at=o.starts_at,
                      hours=o.hours, listings=o.listings)
            for o in calibration
        ]  # fmt: skip
        scores = sorted(
            abs(o.units - max(float(m), 0.0)) / math.sqrt(max(float(m), 0.0) + 1)
            for o, m in zip(calibration, first.predict(rows), strict=True)
        )
        rank = min(math.ceil((len(scores) + 1) * COVERAGE), len(scores)) - 1
        spread = scores[rank]
    history = History(streamers=streamers)
    xs, ys = _design(train, history)
    with one_thread():
        point = _regressor().fit(xs, ys)
    return Model(history, point, spread)


_FITTED: dict[int, tuple[tuple[int, str, int], Model]] = {}


def fitted(*, merchant_id: int, past: list[Observation]) -> Model:
    """The model fitted on ``past`` (all of the merchant's shows), kept in this process until the
    shows change: the forecast page fits once for its forecast and its suggestions."""
    stamp = history_stamp(merchant_id)
    kept = _FITTED.get(merchant_id)
    if kept is not None and kept[0] == stamp:
        return kept[1]
    model = fit(past)
    _FITTED[merchant_id] = (stamp, model)
    return model


def on_hand_of(sku: SKU | None) -> int:
    """The SKU's stock on hand (0 without a stock row)."""
    stock = getattr(sku, "stock", None) if sku is not None else None
    return int(stock.on_hand) if stock is not None else 0


def plan_of(*, skus: list[SKU], streamer: str, starts_at: datetime, hours: float) -> tuple[Plan, dict[str, int]]:
    """A planned show of catalogue SKUs (their category and price; ``product`` and ``stock``
    selected), and their stock on hand."""
    plan = Plan(
        skus=[(s.code, (s.product.category or "").strip(), float(s.price)) for s in skus],
        streamer=streamer,
        starts_at=starts_at,
        hours=hours,
    )
    return plan, {s.code: on_hand_of(s) for s in skus}


def plan_rows(model: Model, plan: Plan, *, listings: int | None = None) -> list[list[float]]:
    """The model's features of each SKU of ``plan`` (in a show of ``listings`` listings: by default
    the plan's own)."""
    at = plan.starts_at.astimezone(ZoneInfo(settings.TIME_ZONE))
    return [
        _features(model.history, sku=code, category=category, streamer=plan.streamer, price=price, at=at,
                  hours=plan.hours, listings=listings or len(plan.skus))
        for code, category, price in plan.skus
    ]  # fmt: skip


def forecast_plan(model: Model, plan: Plan, on_hand: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """Per SKU of ``plan``: expected units, the 80 % interval, the quota (the interval's top, rounded
    up), its record (last show's units, shows it was in) and, with ``on_hand``, the restock."""
    out = []
    for (code, category, _price), (mid, lo, hi) in zip(plan.skus, model.predict(plan_rows(model, plan)), strict=True):
        quota = math.ceil(hi)
        entry: dict[str, Any] = {
            "sku": code,
            "category": category,
            "expected": round(mid, 1),
            "low": math.floor(lo),
            "high": quota,
            "quota": quota,
            "last_show": model.history.sku_units.get(code, [None])[-1],
            "shows": len(model.history.sku_units.get(code, [])),
        }
        if on_hand is not None:
            entry["on_hand"] = on_hand.get(code, 0)
            entry["restock"] = max(quota - entry["on_hand"], 0)
        out.append(entry)
    return out


def forecast(*, merchant_id: int, plan: Plan, on_hand: dict[str, int] | None = None) -> dict[str, Any]:
    """Expected units per SKU of ``plan`` with an 80 % interval, the quota to set (the interval's
    top, rounded up) and how much to restock (quota less the stock on hand, when given)."""
    past = observations(merchant_id=merchant_id)
    shows = {o.session_id for o in past}
    if len(shows) < MIN_TRAIN_SHOWS:
        return {"shows": len(shows), "enough": False, "min_shows": MIN_TRAIN_SHOWS, "skus": []}
    skus = forecast_plan(fitted(merchant_id=merchant_id, past=past), plan, on_hand)
    return {"shows": len(shows), "enough": True, "min_shows": MIN_TRAIN_SHOWS, "skus": skus}


def backtest(*, merchant_id: int, min_train: int = MIN_TRAIN_SHOWS, step: int = 5) -> dict[str, Any]:
    """Rolling origin: for each block of ``step`` shows after the first ``min_train``, train on
    every show before it and forecast its listings; the naive baseline forecasts each listing's SKU
    at its units in that SKU's last earlier show. MAPE over listings that sold, WAPE over all, and
    how often the 80 % interval held the actual units. Then how the suggestions built on the
    forecast would have done on those held-out listings (``restock_scores``, ``featuring_scores``)."""
    past = observations(merchant_id=merchant_id)
    order = sorted({(o.starts_at, o.session_id) for o in past})
    sessions = [sid for _at, sid in order]
    by_show: dict[int, list[Observation]] = defaultdict(list)
    for o in past:
        by_show[o.session_id].append(o)
    held: list[Held] = []
    folds = 0
    for start in range(min_train, len(sessions), step):
        train = [o for sid in sessions[:start] for o in by_show[sid]]
        test = [o for sid in sessions[start : start + step] for o in by_show[sid]]
        if not train or not test:
            continue
        model = fit(train)
        naive = History.of(train)
        rows = [
            _features(model.history, sku=o.sku, category=o.category, streamer=o.streamer, price=o.price,
                      at=o.starts_at, hours=o.hours, listings=o.listings)
            for o in test
        ]  # fmt: skip
        for o, (mid, lo, hi) in zip(test, model.predict(rows), strict=True):
            held.append(Held(o, mid, lo, hi, naive.last(o.sku, o.category)))
        folds += 1
    total = len(held)
    return {
        "shows": len(sessions),
        "folds": folds,
        "listings": total,
        "model": _scores([(h.obs.units, h.mid) for h in held]),
        "naive": _scores([(h.obs.units, h.naive) for h in held]),
        "interval_coverage": round(sum(h.lo <= h.obs.units <= h.hi for h in held) / total, 3) if total else None,
        "restock": restock_scores(held),
        "featuring": featuring_scores(held),
    }


@dataclass(frozen=True)
class Held:
    """A held-out listing of the backtest: what it sold, and what each forecast said before it."""

    obs: Observation
    mid: float
    lo: float
    hi: float
    naive: float


def _stock(pairs: list[tuple[int, int]]) -> dict[str, Any]:
    """(actual units, quota) per listing: how a quota policy would have done. ``fill_rate`` is the
    share of the units sold that the quota covered, ``stockout_rate`` the share of listings whose
    units went past it, ``excess_units`` the quota left unsold."""
    actual = sum(a for a, _q in pairs)
    return {
        "stock": sum(q for _a, q in pairs),
        "fill_rate": round(sum(min(a, q) for a, q in pairs) / actual, 4) if actual else None,
        "stockout_rate": round(sum(a > q for a, q in pairs) / len(pairs), 4) if pairs else None,
        "short_units": sum(max(a - q, 0) for a, q in pairs),
        "excess_units": sum(max(q - a, 0) for a, q in pairs),
    }


def restock_scores(held: list[Held]) -> dict[str, Any]:
    """The restock suggestion on held-out listings: stock to the model's quota (its interval's top,
    rounded up) against stocking to the naive quota (the SKU's units in its last show), and against
    the naive quota scaled up to hold as much stock in all as the model's (so the comparison is
    where the stock goes, not how much)."""
    model = [(h.obs.units, math.ceil(h.hi)) for h in held]
    naive = [(h.obs.units, math.ceil(h.naive)) for h in held]
    naive_total = sum(q for _a, q in naive)
    k = sum(q for _a, q in model) / naive_total if naive_total else 1.0
    scaled = [(h.obs.units, math.floor(h.naive * k)) for h in held]  # floor: never more stock than the model's
    return {"listings": len(held), "model": _stock(model), "naive": _stock(naive), "naive_same_stock": _stock(scaled)}


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):  # ties share their mean rank
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(xs: list[float], ys: list[float]) -> float | None:
    """Spearman's rank correlation (ties at their mean rank); None when either side is constant."""
    rx, ry = _ranks(xs), _ranks(ys)
    n = len(xs)
    if n < 3:
        return None
    mx, my = sum(rx) / n, sum(ry) / n
    sx = math.sqrt(sum((r - mx) ** 2 for r in rx))
    sy = math.sqrt(sum((r - my) ** 2 for r in ry))
    if not sx or not sy:
        return None
    return round(sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True)) / (sx * sy), 4)


def _ranking(shows: list[tuple[float, float]]) -> dict[str, Any]:
    """(forecast, actual) units per hour of held-out shows: the rank correlation, and what the half
    the forecast ranked higher actually sold per hour against the lower half."""
    ranked = sorted(shows, key=lambda s: s[0], reverse=True)
    half = len(ranked) // 2
    top = [a for _f, a in ranked[:half]]
    bottom = [a for _f, a in ranked[len(ranked) - half :]]
    top_mean = sum(top) / len(top) if top else 0.0
    bottom_mean = sum(bottom) / len(bottom) if bottom else 0.0
    return {
        "spearman": spearman([f for f, _a in shows], [a for _f, a in shows]),
        "top_half_units_per_hour": round(top_mean, 2),
        "bottom_half_units_per_hour": round(bottom_mean, 2),
        "uplift": round(top_mean / bottom_mean - 1, 4) if bottom_mean else None,
    }


def _concordance(held: list[Held], guess: Any) -> float | None:
    """Pairs of held-out listings of the same SKU that sold differently: the share where the one
    forecast higher sold more (a tied forecast counts half)."""
    by_sku: dict[str, list[Held]] = defaultdict(list)
    for h in held:
        by_sku[h.obs.sku].append(h)
    right = pairs = 0.0
    for rows in by_sku.values():
        for i, a in enumerate(rows):
            for b in rows[i + 1 :]:
                if a.obs.units == b.obs.units:
                    continue
                pairs += 1
                fa, fb = guess(a), guess(b)
                right += 0.5 if fa == fb else float((fa > fb) == (a.obs.units > b.obs.units))
    return round(right / pairs, 4) if pairs else None


def featuring_scores(held: list[Held]) -> dict[str, Any]:
    """The featuring suggestion on held-out shows: did the shows (slot, streamer, line-up) the
    model ranked higher sell more units per hour on air, and, for one SKU shown in several
    held-out shows, did the show it was forecast to sell more in sell more (pair concordance)?
    Against the naive forecast, which knows nothing of slot or streamer."""
    shows: dict[int, list[Held]] = defaultdict(list)
    for h in held:
        shows[h.obs.session_id].append(h)
    per_hour = {
        who: [
            (sum(getattr(h, who) for h in rows) / rows[0].obs.hours, sum(h.obs.units for h in rows) / rows[0].obs.hours)
            for rows in shows.values()
            if rows[0].obs.hours > 0
        ]
        for who in ("mid", "naive")
    }
    return {
        "shows": len(per_hour["mid"]),
        "model": {**_ranking(per_hour["mid"]), "sku_pairs_right": _concordance(held, lambda h: h.mid)},
        "naive": {**_ranking(per_hour["naive"]), "sku_pairs_right": _concordance(held, lambda h: h.naive)},
    }


def _scores(pairs: list[tuple[int, float]]) -> dict[str, float | None]:
    sold = [(a, f) for a, f in pairs if a > 0]
    actual = sum(a for a, _f in pairs)
    return {
        "mape": round(sum(abs(a - f) / a for a, f in sold) / len(sold), 4) if sold else None,
        "wape": round(sum(abs(a - f) for a, f in pairs) / actual, 4) if actual else None,
    }
