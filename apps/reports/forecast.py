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

from .models import SessionReport

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
    rows = SessionReport.objects.filter(merchant_id=merchant_id, starts_at__isnull=False).order_by("starts_at")
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
        for m in self.point.predict(rows):
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
    return Model(history, _regressor().fit(xs, ys), spread)


def forecast(*, merchant_id: int, plan: Plan, on_hand: dict[str, int] | None = None) -> dict[str, Any]:
    """Expected units per SKU of ``plan`` with an 80 % interval, the quota to set (the interval's
    top, rounded up) and how much to restock (quota less the stock on hand, when given)."""
    past = observations(merchant_id=merchant_id)
    shows = {o.session_id for o in past}
    if len(shows) < MIN_TRAIN_SHOWS:
        return {"shows": len(shows), "enough": False, "min_shows": MIN_TRAIN_SHOWS, "skus": []}
    model = fit(past)
    at = plan.starts_at.astimezone(ZoneInfo(settings.TIME_ZONE))
    rows = [
        _features(model.history, sku=code, category=category, streamer=plan.streamer, price=price, at=at,
                  hours=plan.hours, listings=len(plan.skus))
        for code, category, price in plan.skus
    ]  # fmt: skip
    out = []
    for (code, category, _price), (mid, lo, hi) in zip(plan.skus, model.predict(rows), strict=True):
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
    return {"shows": len(shows), "enough": True, "min_shows": MIN_TRAIN_SHOWS, "skus": out}


def backtest(*, merchant_id: int, min_train: int = MIN_TRAIN_SHOWS, step: int = 5) -> dict[str, Any]:
    """Rolling origin: for each block of ``step`` shows after the first ``min_train``, train on
    every show before it and forecast its listings; the naive baseline forecasts each listing's SKU
    at its units in that SKU's last earlier show. MAPE over listings that sold, WAPE over all, and
    how often the 80 % interval held the actual units."""
    past = observations(merchant_id=merchant_id)
    order = sorted({(o.starts_at, o.session_id) for o in past})
    sessions = [sid for _at, sid in order]
    by_show: dict[int, list[Observation]] = defaultdict(list)
    for o in past:
        by_show[o.session_id].append(o)
    errors: dict[str, list[tuple[int, float]]] = {"model": [], "naive": []}  # (actual, forecast)
    covered = total = folds = 0
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
            errors["model"].append((o.units, mid))
            errors["naive"].append((o.units, naive.last(o.sku, o.category)))
            covered += lo <= o.units <= hi
            total += 1
        folds += 1
    return {
        "shows": len(sessions),
        "folds": folds,
        "listings": total,
        "model": _scores(errors["model"]),
        "naive": _scores(errors["naive"]),
        "interval_coverage": round(covered / total, 3) if total else None,
    }


def _scores(pairs: list[tuple[int, float]]) -> dict[str, float | None]:
    sold = [(a, f) for a, f in pairs if a > 0]
    actual = sum(a for a, _f in pairs)
    return {
        "mape": round(sum(abs(a - f) / a for a, f in sold) / len(sold), 4) if sold else None,
        "wape": round(sum(abs(a - f) for a, f in pairs) / actual, 4) if actual else None,
    }
