"""The demand forecast on generated history: it beats the naive baseline (the same SKU's last
show) in a rolling-origin backtest, its 80 % interval holds about 80 % of held-out listings, and a
planned show gets per-SKU expectations, an interval, a quota and what to restock."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.reports.forecast import MIN_TRAIN_SHOWS, Plan, backtest, forecast, observations

pytestmark = pytest.mark.django_db


def test_the_forecast_beats_the_naive_baseline_on_held_out_shows(history) -> None:  # type: ignore[no-untyped-def]
    result = backtest(merchant_id=history.pk)
    assert result["shows"] == 36 and result["folds"] == 5 and result["listings"] > 100
    assert result["model"]["wape"] < result["naive"]["wape"]
    assert result["model"]["mape"] < result["naive"]["mape"]
    assert 0.6 <= result["interval_coverage"] <= 0.95
    assert backtest(merchant_id=history.pk) == result  # deterministic


def test_a_planned_show_gets_units_an_interval_a_quota_and_a_restock(history) -> None:  # type: ignore[no-untyped-def]
    past = observations(merchant_id=history.pk)
    known = {o.sku: (o.category, o.price) for o in past}
    skus = [(code, cat, price) for code, (cat, price) in sorted(known.items())[:3]] + [("NEW-1", "美妆", 59.0)]
    streamer = past[-1].streamer
    plan = Plan(skus=skus, streamer=streamer, starts_at=timezone.now() + timedelta(days=2), hours=2.0)
    result = forecast(merchant_id=history.pk, plan=plan, on_hand={skus[0][0]: 10_000})
    assert result["enough"] and result["shows"] == 36
    assert [s["sku"] for s in result["skus"]] == [s[0] for s in skus]
    for s in result["skus"]:
        assert 0 <= s["low"] <= s["expected"] <= s["high"] == s["quota"]
        assert s["restock"] == max(s["quota"] - s["on_hand"], 0)
    assert result["skus"][0]["restock"] == 0 and result["skus"][0]["shows"] > 0
    assert result["skus"][-1]["shows"] == 0 and result["skus"][-1]["last_show"] is None  # never shown


def test_too_few_shows_say_so_instead_of_forecasting(merchant) -> None:  # type: ignore[no-untyped-def]
    call_command("generate_history", "--merchant", merchant.slug, "--orders", "300", "--shows", "4", "-v", "0")
    plan = Plan(skus=[("X", "", 9.9)], streamer="A", starts_at=timezone.now(), hours=1.0)
    result = forecast(merchant_id=merchant.pk, plan=plan)
    assert result == {"shows": 4, "enough": False, "min_shows": MIN_TRAIN_SHOWS, "skus": []}
    with pytest.raises(CommandError, match="too few shows"):
        call_command("forecast_backtest", "--merchant", merchant.slug)


def test_the_backtest_command(history) -> None:  # type: ignore[no-untyped-def]
    out = StringIO()
    call_command("forecast_backtest", "--merchant", history.slug, stdout=out)
    printed = json.loads(out.getvalue())
    assert printed["merchant"] == history.slug and printed["model"]["wape"] < printed["naive"]["wape"]
    for bad in (["--merchant", "nobody"], ["--merchant", history.slug, "--step", "0"]):
        with pytest.raises(CommandError):
            call_command("forecast_backtest", *bad)


def test_the_forecast_api_for_a_planned_show(history, other_merchant, api) -> None:  # type: ignore[no-untyped-def]
    from apps.catalog.models import SKU

    codes = list(SKU.objects.filter(merchant=history, code__startswith="HIST-").values_list("code", flat=True)[:2])
    query = "&".join(f"sku={c}" for c in codes) + "&streamer=小雅&starts_at=2026-12-20T20:00:00%2B08:00&hours=2"
    r = api.get(f"/api/v1/reports/forecast?{query}")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["enough"] and [s["sku"] for s in body["skus"]] == codes
    for s in body["skus"]:
        assert s["low"] <= s["expected"] <= s["high"] == s["quota"]
        assert s["restock"] == max(s["quota"] - s["on_hand"], 0)
    when = "starts_at=2026-12-20T20:00:00Z"
    for bad in (f"streamer=A&{when}", f"sku={codes[0]}&streamer=A&starts_at=soon",
                f"sku={codes[0]}&streamer=A&{when}&hours=40", f"sku=NOPE&streamer=A&{when}"):  # fmt: skip
        r = api.get(f"/api/v1/reports/forecast?{bad}")
        assert r.status_code == 400 and r.json()["code"] == "invalid", (bad, r.content)
    assert api.get(f"/api/v1/reports/forecast?{query}&x=1").json()["code"] == "unknown_parameter"
    # another merchant's SKU codes are unknown here
    from ..factories import make_sku

    theirs = make_sku(other_merchant, code="RIVAL-ONLY-1")
    r = api.get(f"/api/v1/reports/forecast?sku={theirs.code}&streamer=A&{when}")
    assert r.status_code == 400 and "RIVAL-ONLY-1" in r.json()["extra"]["fields"]["sku"]
