"""Suggestions built on the demand forecast (the article's "AI 帮助商家规划库存和促销策略"), each
with the figures behind it:

- **restock**: for the next planned show (the earliest scheduled show with listings), or else a
  show of the SKUs sold most in the recent shows at the next recommended slot, which SKUs to
  restock before it and by how much: the forecast's quota (its 80 % interval's top) less the stock
  on hand, only where that is positive, largest first.
- **featuring**: for the SKUs sold most recently, the slot (weekday × hour, among the time-slot
  analysis's cells with at least ``min_shows`` shows on air) and the streamer (with at least
  ``min_shows`` shows) where the model forecasts it sells the most units (so the most GMV at its
  price), against its forecast in its usual slot with its usual streamer: the uplift, and the sample
  sizes behind both.

How such suggestions did on held-out shows is the backtest's (``forecast.backtest``: ``restock``
and ``featuring``), which takes tens of seconds, so it is computed by a job and kept in the cache
until the merchant's shows change (``backtest_result``).
"""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from apps.catalog.models import SKU, Listing, LiveSession

from .forecast import (
    MIN_TRAIN_SHOWS,
    Model,
    Observation,
    Plan,
    backtest,
    fitted,
    forecast_plan,
    history_stamp,
    observations,
    on_hand_of,
    plan_rows,
)
from .models import SessionReport, past_reports
from .slots import MIN_SHOWS, slot_analysis

logger = logging.getLogger(__name__)

TOP_SKUS = 8
RECENT_SHOWS = 10  # "sold most recently": units in the merchant's last 10 shows
BACKTEST_STEP = 10
BACKTEST_TTL = 7 * 24 * 3600


@dataclass(frozen=True)
class PlanDefaults:
    """What the forecast page starts with: the next start of the best recommended slot (else the
    same time a week after the last show), the last show's streamer, length and SKUs."""

    starts_at: datetime
    streamer: str
    hours: float
    skus: list[str]
    slot: dict[str, Any] | None


def next_start(weekday: int, hour: int, *, after: datetime) -> datetime:
    """The first ``weekday`` at ``hour``:00 (the merchant's clock) after ``after``."""
    local = after.astimezone(ZoneInfo(settings.TIME_ZONE))
    at = local.replace(hour=hour, minute=0, second=0, microsecond=0) + timedelta(days=(weekday - local.weekday()) % 7)
    return at if at > local else at + timedelta(days=7)


def _last_show(merchant_id: int) -> SessionReport | None:
    return past_reports(merchant_id).order_by("-starts_at", "-session_id").first()


def plan_defaults(*, merchant_id: int, now: datetime | None = None) -> PlanDefaults | None:
    """None when the merchant has no past show."""
    now = now or timezone.now()
    last = _last_show(merchant_id)
    if last is None or last.starts_at is None:
        return None
    recommended = slot_analysis(merchant_id=merchant_id)["recommended"]
    slot = recommended[0] if recommended else None
    if slot is not None:
        starts_at = next_start(slot["weekday"], slot["hour"], after=now)
    else:
        starts_at = last.starts_at + timedelta(days=7 * max(math.ceil((now - last.starts_at).days / 7), 1))
    hours = max(round(float(last.hours_on_air) * 2) / 2, 0.5)
    skus = list(dict.fromkeys(li["sku"] for li in last.figures.get("listings", [])))
    return PlanDefaults(starts_at=starts_at, streamer=last.streamer, hours=hours, skus=skus, slot=slot)


def _recent_top(past: list[Observation], n: int) -> list[str]:
    """The ``n`` SKUs with the most units in the last ``RECENT_SHOWS`` shows."""
    shows = sorted({(o.starts_at, o.session_id) for o in past})[-RECENT_SHOWS:]
    recent = {sid for _at, sid in shows}
    units: Counter[str] = Counter()
    for o in past:
        if o.session_id in recent:
            units[o.sku] += o.units
    return [code for code, _u in sorted(units.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def _planned_show(merchant_id: int, now: datetime) -> LiveSession | None:
    return (
        LiveSession.objects.filter(
            merchant_id=merchant_id, status=LiveSession.Status.SCHEDULED, scheduled_at__gte=now, listings__isnull=False
        )
        .order_by("scheduled_at", "pk")
        .first()
    )


def _skus(merchant_id: int, codes: list[str]) -> dict[str, SKU]:
    return {
        s.code: s
        for s in SKU.objects.filter(merchant_id=merchant_id, code__in=codes).select_related("product", "stock")
    }


def restock(
    *, merchant_id: int, model: Model, past: list[Observation], now: datetime, defaults: PlanDefaults
) -> dict[str, Any]:
    """Which SKUs to restock before the next show, and by how much (quota less on hand, > 0)."""
    planned = _planned_show(merchant_id, now)
    hours = median(o.hours for o in past)
    if planned is not None and planned.scheduled_at is not None:
        listings = (
            Listing.objects.filter(session=planned, parent__isnull=True).select_related("sku__product").order_by("pk")
        )
        items = {li.sku.code: ((li.sku.product.category or "").strip(), float(li.price)) for li in listings}
        plan = Plan(
            skus=[(c, cat, price) for c, (cat, price) in items.items()],
            streamer=planned.streamer,
            starts_at=planned.scheduled_at,
            hours=hours,
        )
        show: dict[str, Any] = {"source": "scheduled", "session": planned.pk, "title": planned.title}
    else:
        codes = _recent_top(past, TOP_SKUS + 4)
        last_of = {o.sku: o for o in past}  # past is in time order: the SKU's last listing
        plan = Plan(
            skus=[(c, last_of[c].category, last_of[c].price) for c in codes],
            streamer=defaults.streamer,
            starts_at=defaults.starts_at,
            hours=hours,
        )
        show = {"source": "recent", "session": None, "title": ""}
    catalogue = _skus(merchant_id, [c for c, _cat, _p in plan.skus])
    on_hand = {c: on_hand_of(catalogue.get(c)) for c, _cat, _p in plan.skus}
    prices = {c: p for c, _cat, p in plan.skus}
    rows = []
    entries = forecast_plan(model, plan, on_hand)
    for entry in entries:
        if entry["restock"] <= 0:
            continue
        sku = catalogue.get(entry["sku"])
        price = Decimal(str(prices[entry["sku"]])).quantize(Decimal("0.01"))
        rows.append(
            {
                **entry,
                "name": sku.product.name if sku is not None else "",
                "price": str(price),
                "gmv_at_stake": str((price * entry["restock"]).quantize(Decimal("0.01"))),
            }
        )
    rows.sort(key=lambda r: (-r["restock"], -Decimal(r["gmv_at_stake"]), r["sku"]))
    show.update(streamer=plan.streamer, starts_at=plan.starts_at, hours=plan.hours, skus=len(plan.skus))
    return {"show": show, "items": rows, "covered": len(entries) - len(rows)}


def featuring(
    *, merchant_id: int, model: Model, past: list[Observation], now: datetime, min_shows: int, top: int
) -> dict[str, Any]:
    """For the SKUs sold most recently: the slot and streamer with the highest forecast, against the
    SKU's usual slot and streamer."""
    every = slot_analysis(merchant_id=merchant_id, min_shows=min_shows)["cells"]
    all_slot_shows = {(c["weekday"], c["hour"]): c["shows"] for c in every}
    cells = [c for c in every if c["shows"] >= min_shows]
    show_of: dict[int, Observation] = {}
    per_show: dict[int, int] = Counter()
    for o in past:
        show_of[o.session_id] = o
    streamer_shows = Counter(o.streamer for o in show_of.values())
    streamers = sorted(s for s, n in streamer_shows.items() if n >= min_shows)
    for o in past:
        per_show[o.session_id] += 1
    hours = median(o.hours for o in show_of.values())
    listings = round(median(per_show.values()))
    codes = _recent_top(past, top)
    catalogue = _skus(merchant_id, codes)
    records: dict[str, list[Observation]] = defaultdict(list)
    for o in past:
        records[o.sku].append(o)
    slot_shows = {(c["weekday"], c["hour"]): c["shows"] for c in cells}
    out: list[dict[str, Any]] = []
    if not cells or not streamers:
        return {"slots": len(cells), "streamers": len(streamers), "min_shows": min_shows, "items": []}
    for code in codes:
        mine = records[code]
        latest = mine[-1]
        usual_slot, usual_slot_n = Counter((o.starts_at.weekday(), o.starts_at.hour) for o in mine).most_common(1)[0]
        usual_streamer, usual_streamer_n = Counter(o.streamer for o in mine).most_common(1)[0]
        candidates = [(c["weekday"], c["hour"], s) for c in cells for s in streamers]
        plans = [
            Plan(skus=[(code, latest.category, latest.price)], streamer=streamer,
                 starts_at=next_start(weekday, hour, after=now), hours=hours)
            for weekday, hour, streamer in [*candidates, (*usual_slot, usual_streamer)]
        ]  # fmt: skip
        rows = [plan_rows(model, p, listings=listings)[0] for p in plans]
        predicted = [mid for mid, _lo, _hi in model.predict(rows)]
        usual = predicted.pop()
        best_i = max(range(len(candidates)), key=lambda i: (predicted[i], -i))
        weekday, hour, streamer = candidates[best_i]
        price = Decimal(str(latest.price)).quantize(Decimal("0.01"))
        best = predicted[best_i]
        sku = catalogue.get(code)
        out.append(
            {
                "sku": code,
                "name": sku.product.name if sku is not None else "",
                "category": latest.category,
                "price": str(price),
                "shows": len(mine),
                "best": {
                    "weekday": weekday,
                    "hour": hour,
                    "streamer": streamer,
                    "expected": round(best, 1),
                    "gmv": str((price * Decimal(str(round(best, 1)))).quantize(Decimal("0.01"))),
                    "slot_shows": slot_shows[(weekday, hour)],
                    "streamer_shows": streamer_shows[streamer],
                },
                "usual": {
                    "weekday": usual_slot[0],
                    "hour": usual_slot[1],
                    "streamer": usual_streamer,
                    "expected": round(usual, 1),
                    "gmv": str((price * Decimal(str(round(usual, 1)))).quantize(Decimal("0.01"))),
                    "slot_shows": all_slot_shows.get(usual_slot, 0),
                    "streamer_shows": streamer_shows[usual_streamer],
                    "sku_slot_shows": usual_slot_n,
                    "sku_streamer_shows": usual_streamer_n,
                },
                "uplift_units": round(best - usual, 1),
                "uplift": round(best / usual - 1, 4) if usual > 0 else None,
            }
        )
    out.sort(key=lambda r: (-float(r["uplift_units"]), str(r["sku"])))
    return {"slots": len(cells), "streamers": len(streamers), "min_shows": min_shows, "items": out}


def suggestions(
    *, merchant_id: int, min_shows: int = MIN_SHOWS, top: int = TOP_SKUS, now: datetime | None = None
) -> dict[str, Any]:
    """Restock and featuring suggestions from one model fitted on every past show, with the
    backtest of such suggestions when it has been computed (``backtest_result``)."""
    now = now or timezone.now()
    past = observations(merchant_id=merchant_id)
    shows = len({o.session_id for o in past})
    base: dict[str, Any] = {"shows": shows, "min_shows": MIN_TRAIN_SHOWS, "enough": shows >= MIN_TRAIN_SHOWS}
    defaults = plan_defaults(merchant_id=merchant_id, now=now)
    if not base["enough"] or defaults is None:
        return {**base, "restock": None, "featuring": None, "backtest": None}
    model = fitted(merchant_id=merchant_id, past=past)
    return {
        **base,
        "restock": restock(merchant_id=merchant_id, model=model, past=past, now=now, defaults=defaults),
        "featuring": featuring(merchant_id=merchant_id, model=model, past=past, now=now, min_shows=min_shows, top=top),
        "backtest": backtest_result(merchant_id=merchant_id),
    }


def _backtest_key(merchant_id: int) -> str:
    """The cache key of the merchant's backtest: it changes when a show is added or recomputed."""
    n, at, last = history_stamp(merchant_id)
    return f"reports:suggestion-backtest:{merchant_id}:{n}:{last}:{at}"


def backtest_compute(merchant_id: int) -> dict[str, Any]:
    """Run the backtest (tens of seconds for 200 shows) and keep it until the shows change (a job,
    also ``manage.py forecast_backtest``)."""
    key = _backtest_key(merchant_id)
    result = backtest(merchant_id=merchant_id, step=BACKTEST_STEP)
    result["step"] = BACKTEST_STEP
    result["computed_at"] = timezone.now().isoformat()
    cache.set(key, result, BACKTEST_TTL)
    cache.delete(key + ":queued")
    return result


def backtest_result(*, merchant_id: int) -> dict[str, Any] | None:
    """The kept backtest; None while it is being computed (the first ask queues the job)."""
    key = _backtest_key(merchant_id)
    kept = cache.get(key)
    if kept is not None:
        return kept
    if cache.add(key + ":queued", 1, 600):
        from django_q.tasks import async_task

        try:
            async_task("apps.reports.tasks.suggestion_backtest", merchant_id, q_options={"task_name": key})
        except Exception:  # no task queue (Redis gone): the page still answers, without the backtest
            logger.exception("could not queue the suggestions' backtest")
            cache.delete(key + ":queued")
    return cache.get(key)  # a synchronous queue (tests) has computed it already
