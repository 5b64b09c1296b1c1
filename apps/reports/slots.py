"""Which time slots, streamers and categories sell best, across a merchant's shows (时段分析).

Read from the rollups only (``SessionReport``: one row per show with its per-minute figures), in
Python, exact. A show counts in every weekday × hour cell (China time, the merchant's clock) it was
on air in: its minutes on air there, and the orders and paid GMV of those minutes (``by_minute``).
So a show from 19:30 to 21:10 gives 30 minutes to 19:00, 60 to 20:00 and 10 to 21:00, each with
what sold in them.

For each cell, streamer and category: shows, hours on air, orders, paid orders, units (streamer,
category), GMV, **GMV per hour on air** (the ranking figure: a slot is not better because shows in it
ran longer) and conversion (paid / orders). A recommendation names the best cells by GMV per hour
among those with at least ``min_shows`` shows, with the figures and sample size behind each; a cell
with fewer shows is listed as too few to say.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext_lazy as _

from .figures import rate
from .models import history_stamp, past_reports

WEEKDAYS = (
    _("Mon"),
    _("Tue"),
    _("Wed"),
    _("Thu"),
    _("Fri"),
    _("Sat"),
    _("Sun"),
)
MIN_SHOWS = 3
CENT = Decimal("0.01")


def _cell() -> dict[str, Any]:
    return {"shows": set(), "minutes": 0, "orders": 0, "paid": 0, "gmv": Decimal("0.00")}


def _done(key: dict[str, Any], cell: dict[str, Any]) -> dict[str, Any]:
    hours = Decimal(cell["minutes"]) / 60
    return {
        **key,
        "shows": len(cell["shows"]),
        "hours_on_air": str(hours.quantize(Decimal("0.001"))),
        "orders": cell["orders"],
        "paid": cell["paid"],
        "gmv": str(cell["gmv"]),
        "gmv_per_hour": str((cell["gmv"] / hours).quantize(CENT)) if hours else "0.00",
        "conversion": rate(cell["paid"], cell["orders"]),
        **({"units": cell["units"]} if "units" in cell else {}),
    }


CACHE_SECONDS = 3600


def slot_analysis(*, merchant_id: int, since: datetime | None = None, min_shows: int = MIN_SHOWS) -> dict[str, Any]:
    """The weekday × hour heatmap, the streamers and categories, and the recommendations. Kept in
    the cache until a show of the merchant is added, recomputed or deleted (``history_stamp``), so
    a page view costs one indexed aggregate while the shows stand still; a rollup (each minute of a
    live show) makes the next view compute it again."""
    n, at, last = history_stamp(merchant_id)
    key = f"reports:slots:{merchant_id}:{n}:{last}:{at}:{since.isoformat() if since else ''}:{min_shows}"
    try:
        kept = cache.get(key)
    except Exception:  # noqa: BLE001 - the cache (Redis) may vanish: compute
        kept = None
    if kept is not None:
        return kept
    result = _slot_analysis(merchant_id=merchant_id, since=since, min_shows=min_shows)
    try:
        cache.set(key, result, CACHE_SECONDS)
    except Exception:  # noqa: BLE001
        pass
    return result


def _slot_analysis(*, merchant_id: int, since: datetime | None, min_shows: int) -> dict[str, Any]:
    tz = ZoneInfo(settings.TIME_ZONE)
    rows = past_reports(merchant_id)
    if since is not None:
        rows = rows.filter(starts_at__gte=since)
    cells: dict[tuple[int, int], dict[str, Any]] = defaultdict(_cell)
    streamers: dict[str, dict[str, Any]] = defaultdict(lambda: {**_cell(), "units": 0})
    categories: dict[str, dict[str, Any]] = defaultdict(lambda: {**_cell(), "units": 0})
    shows = 0
    week = 7 * 24
    for session_id, starts_at, streamer, hours, units, orders, paid, gmv, by_minute, cats in rows.values_list(
        "session_id", "starts_at", "streamer", "hours_on_air", "units", "orders", "paid", "gmv",
        "figures__by_minute", "figures__categories",
    ).iterator(chunk_size=500):  # fmt: skip
        if starts_at is None:  # filtered out above; for the type checker
            continue
        shows += 1
        start = starts_at.astimezone(tz)
        base = (start.weekday() * 24 + start.hour) * 60 + start.minute  # minute of the week
        on_air = max(int((Decimal(hours) * 60).to_integral_value(ROUND_HALF_UP)), 1)  # hours: 3 places
        at = base
        while at < base + on_air:  # the minutes on air, an hour cell at a time
            upto = min((at // 60 + 1) * 60, base + on_air)
            cell = cells[divmod((at // 60) % week, 24)]
            cell["shows"].add(session_id)
            cell["minutes"] += upto - at
            at = upto
        for m in by_minute or []:  # what sold, in the cell of its minute
            cell = cells[divmod(((base + m["minute"]) // 60) % week, 24)]
            cell["shows"].add(session_id)
            cell["orders"] += m["orders"]
            cell["paid"] += m["paid"]
            cell["gmv"] += Decimal(m["gmv"])
        s = streamers[streamer or "?"]
        s["shows"].add(session_id)
        s["minutes"] += on_air
        s["orders"] += orders
        s["paid"] += paid
        s["gmv"] += gmv
        s["units"] += units
        for c in cats or []:
            k = categories[c["category"] or "?"]
            k["shows"].add(session_id)
            k["minutes"] += on_air
            k["orders"] += c["orders"]
            k["paid"] += c["paid"]
            k["gmv"] += Decimal(c["gmv"])
            k["units"] += c["units"]
    heat = [_done({"weekday": wd, "hour": hour}, cell) for (wd, hour), cell in sorted(cells.items())]
    ranked = sorted(heat, key=lambda c: Decimal(c["gmv_per_hour"]), reverse=True)
    enough = [c for c in ranked if c["shows"] >= min_shows]
    too_few = [c for c in ranked if c["shows"] < min_shows and Decimal(c["gmv"]) > 0]
    return {
        "shows": shows,
        "min_shows": min_shows,
        "timezone": settings.TIME_ZONE,
        "cells": heat,
        "streamers": sorted(
            (_done({"streamer": k}, v) for k, v in streamers.items()),
            key=lambda r: Decimal(r["gmv_per_hour"]),
            reverse=True,
        ),
        "categories": sorted(
            (_done({"category": k}, v) for k, v in categories.items()),
            key=lambda r: Decimal(r["gmv_per_hour"]),
            reverse=True,
        ),
        "recommended": enough[:5],
        "too_few_shows": too_few[:10],
    }
