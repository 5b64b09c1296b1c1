"""Suggestions built on the demand forecast: restock (the forecast's quota less the stock on hand,
only when positive, largest first), featuring (the slot and streamer with the highest forecast,
among those with enough shows, against the SKU's usual one), the backtest of such suggestions on
held-out shows (the model beats the naive baseline), the API and the page, and the tenant walls."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from apps.catalog.models import SKU
from apps.inventory.models import Stock
from apps.merchants import services as merchants
from apps.reports.forecast import Held, Observation, backtest, forecast, plan_of, restock_scores, spearman
from apps.reports.slots import slot_analysis
from apps.reports.suggestions import backtest_result, plan_defaults, suggestions

from ..factories import make_listing, make_session, make_sku

pytestmark = pytest.mark.django_db


def _short(merchant, codes: list[str], on_hand: int) -> None:  # type: ignore[no-untyped-def]
    Stock.objects.filter(sku__merchant=merchant, sku__code__in=codes).update(on_hand=on_hand)


def test_restock_is_the_quota_less_on_hand_and_only_when_positive(history, other_merchant) -> None:  # type: ignore[no-untyped-def]
    first = suggestions(merchant_id=history.pk)["restock"]
    assert first["show"]["source"] == "recent" and first["show"]["skus"] == 12
    codes = [c for c, *_ in _recent_codes(history)]
    _short(history, codes[:4], 3)  # four of the show's SKUs nearly sold out
    _short(history, codes[4:], 100_000)  # the rest stocked up
    call_command("generate_history", "--merchant", other_merchant.slug, "--orders", "2000", "--shows", "14",
                 "--seed", "3", "--weeks", "8", "-v", "0")  # fmt: skip
    _short(other_merchant, codes, 0)  # the rival's SKUs of the same codes: nothing on hand there
    result = suggestions(merchant_id=history.pk)
    assert result["shows"] == 36  # the rival's shows are not learnt from
    items = result["restock"]["items"]
    assert {r["sku"] for r in items} == set(codes[:4]) and result["restock"]["covered"] == 8
    assert [r["restock"] for r in items] == sorted((r["restock"] for r in items), reverse=True)
    for r in items:
        assert r["on_hand"] == 3 and r["restock"] == r["quota"] - 3 > 0
        assert r["gmv_at_stake"] == str((Decimal(r["price"]) * r["restock"]).quantize(Decimal("0.01")))
    # the same figures as the forecast of that show
    show = result["restock"]["show"]
    skus = list(SKU.objects.filter(merchant=history, code__in=codes[:4]).select_related("product", "stock"))
    plan, on_hand = plan_of(skus=skus, streamer=show["streamer"], starts_at=show["starts_at"], hours=show["hours"])
    alone = {r["sku"]: r for r in forecast(merchant_id=history.pk, plan=plan, on_hand=on_hand)["skus"]}
    assert all(r["expected"] > 0 and alone[r["sku"]]["on_hand"] == 3 for r in items)


def _recent_codes(merchant):  # type: ignore[no-untyped-def]
    from apps.reports.forecast import observations
    from apps.reports.suggestions import _recent_top

    return [(c,) for c in _recent_top(observations(merchant_id=merchant.pk), 12)]


def test_restock_follows_the_next_planned_show(history, other_merchant) -> None:  # type: ignore[no-untyped-def]
    show = make_session(history, title="双十二专场")
    show.scheduled_at = timezone.now() + timedelta(days=3)
    show.streamer = "小雅"
    show.save()
    hist = list(SKU.objects.filter(merchant=history, code__startswith="HIST-").order_by("code")[:2])
    for sku in hist:
        make_listing(history, session=show, sku=sku, quota=50, open_=False)
    _short(history, [s.code for s in hist], 0)
    rival = make_session(other_merchant, title="rival")  # another shop's planned show is not ours
    rival.scheduled_at = timezone.now() + timedelta(days=1)
    rival.save()
    make_listing(other_merchant, session=rival, sku=make_sku(other_merchant, code="RIVAL-ONLY-1", on_hand=20))
    restock = suggestions(merchant_id=history.pk)["restock"]
    assert restock["show"]["source"] == "scheduled" and restock["show"]["session"] == show.pk
    assert restock["show"]["streamer"] == "小雅" and restock["show"]["skus"] == 2
    assert [r["sku"] for r in restock["items"]] and {r["sku"] for r in restock["items"]} == {s.code for s in hist}
    assert all(r["restock"] == r["quota"] for r in restock["items"])  # nothing on hand


def test_featuring_picks_only_slots_and_streamers_with_enough_shows(history) -> None:  # type: ignore[no-untyped-def]
    result = suggestions(merchant_id=history.pk, min_shows=3, top=5)
    featuring = result["featuring"]
    cells = {(c["weekday"], c["hour"]): c["shows"] for c in slot_analysis(merchant_id=history.pk)["cells"]}
    enough = {k for k, n in cells.items() if n >= 3}
    assert featuring["slots"] == len(enough) and 0 < len(enough) < len(cells)  # some slots have too few
    assert len(featuring["items"]) == 5
    for item in featuring["items"]:
        best, usual = item["best"], item["usual"]
        slot = (best["weekday"], best["hour"])
        assert slot in enough and best["slot_shows"] == cells[slot]
        assert best["slot_shows"] >= 3 and best["streamer_shows"] >= 3
        assert item["uplift_units"] == pytest.approx(best["expected"] - usual["expected"], abs=0.11)
        assert usual["sku_slot_shows"] >= 1 and usual["sku_streamer_shows"] <= item["shows"]
        if (usual["weekday"], usual["hour"]) in enough and usual["streamer_shows"] >= 3:
            assert best["expected"] >= usual["expected"]  # the best is the best of the candidates
    uplifts = [i["uplift_units"] for i in featuring["items"]]
    assert uplifts == sorted(uplifts, reverse=True)
    none = suggestions(merchant_id=history.pk, min_shows=40)["featuring"]
    assert none["slots"] == 0 and none["items"] == []  # no slot has 40 shows: nothing suggested


def test_the_backtest_of_suggestions_beats_the_naive_baseline(history) -> None:  # type: ignore[no-untyped-def]
    result = backtest(merchant_id=history.pk)
    restock, featuring = result["restock"], result["featuring"]
    assert restock["listings"] == result["listings"] and featuring["shows"] == 24  # folds of 5, 5, 5, 5 and 4 shows
    assert restock["model"]["stockout_rate"] < restock["naive"]["stockout_rate"]
    assert restock["model"]["fill_rate"] > restock["naive"]["fill_rate"]
    same = restock["naive_same_stock"]  # as much stock as the model's, put where the last show sold
    assert same["stock"] <= restock["model"]["stock"] and restock["model"]["stockout_rate"] < same["stockout_rate"]
    assert featuring["model"]["spearman"] > featuring["naive"]["spearman"]
    assert featuring["model"]["uplift"] > 0 and featuring["model"]["sku_pairs_right"] > 0.5


def test_the_suggestions_backtest_scores_by_hand() -> None:
    at = timezone.now()

    def held(session: int, sku: str, units: int, mid: float, hi: float, naive: float) -> Held:
        o = Observation(session_id=session, starts_at=at, sku=sku, category="", streamer="A", price=1.0, hours=2.0,
                        listings=2, units=units)  # fmt: skip
        return Held(o, mid, 0.0, hi, naive)

    rows = [held(1, "A", 10, 9, 11.2, 4), held(1, "B", 0, 1, 2, 3), held(2, "A", 4, 5, 7, 10), held(2, "B", 6, 3, 5, 0)]
    scores = restock_scores(rows)
    # model quotas 12, 2, 7, 5: 10 + 0 + 4 + 5 of 20 units covered; B in show 2 ran out
    assert scores["model"] == {"stock": 26, "fill_rate": 0.95, "stockout_rate": 0.25, "short_units": 1,
                               "excess_units": 7}  # fmt: skip
    # naive quotas 4, 3, 10, 0: 4 + 0 + 4 + 0 covered
    assert scores["naive"] == {"stock": 17, "fill_rate": 0.4, "stockout_rate": 0.5, "short_units": 12,
                               "excess_units": 9}  # fmt: skip
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0 and spearman([1, 2, 3], [3, 2, 1]) == -1.0
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    from scipy.stats import spearmanr

    xs, ys = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0], [2.0, 7.0, 1.0, 8.0, 2.0, 8.0, 1.0]
    assert spearman(xs, ys) == pytest.approx(spearmanr(xs, ys).statistic, abs=1e-4)


def test_too_few_shows_suggest_nothing(merchant) -> None:  # type: ignore[no-untyped-def]
    call_command("generate_history", "--merchant", merchant.slug, "--orders", "300", "--shows", "4", "-v", "0")
    result = suggestions(merchant_id=merchant.pk)
    assert result == {"shows": 4, "min_shows": 12, "enough": False, "restock": None, "featuring": None,
                      "backtest": None}  # fmt: skip


def test_the_backtest_is_computed_by_a_job_and_kept(history) -> None:  # type: ignore[no-untyped-def]
    kept = backtest_result(merchant_id=history.pk)  # the test queue runs the job at once
    assert kept is not None and kept["step"] == 10 and kept["folds"] == 3
    assert backtest_result(merchant_id=history.pk) == kept  # from the cache
    assert suggestions(merchant_id=history.pk)["backtest"] == kept


def test_the_suggestions_api(history, api, other_api, other_merchant) -> None:  # type: ignore[no-untyped-def]
    make_sku(other_merchant, code="RIVAL-ONLY-1", on_hand=0)
    r = api.get("/api/v1/reports/suggestions?min_shows=3&top=4")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["enough"] and body["shows"] == 36 and len(body["featuring"]["items"]) == 4
    assert body["restock"]["show"]["source"] == "recent" and body["backtest"]["restock"]["model"]["fill_rate"] > 0
    assert "RIVAL-ONLY-1" not in r.content.decode()
    for bad in ("min_shows=0", "top=abc", "top=31", "min_shows=x"):
        r = api.get(f"/api/v1/reports/suggestions?{bad}")
        assert r.status_code == 400 and r.json()["code"] == "invalid", (bad, r.content)
    r = api.get("/api/v1/reports/suggestions?sku=A")
    assert r.status_code == 400 and r.json()["code"] == "unknown_parameter"
    theirs = other_api.get("/api/v1/reports/suggestions").json()  # the rival has no shows: nothing of ours
    assert theirs["shows"] == 0 and not theirs["enough"] and theirs["restock"] is None


def _staff(merchant) -> Client:  # type: ignore[no-untyped-def]
    user = merchants.staff_create(merchant=merchant, username=f"analyst-{merchant.slug}", password="pw-123456789")
    client = Client()
    client.force_login(user)
    return client


def test_the_forecast_page_starts_with_the_next_slot_and_the_last_show(history) -> None:  # type: ignore[no-untyped-def]
    defaults = plan_defaults(merchant_id=history.pk)
    assert defaults is not None and defaults.slot is not None and defaults.starts_at > timezone.now()
    page = _staff(history).get("/reports/forecast/")
    assert page.status_code == 200
    html = page.content.decode()
    for code in defaults.skus:
        assert f'value="{code}" checked' in html
    assert f'data-sku="{defaults.skus[0]}"' in html  # its forecast row
    assert 'data-chart="forecast"' in html and "data-backtest" in html


def test_the_forecast_page_answers_bad_input_with_form_errors(history, other_merchant) -> None:  # type: ignore[no-untyped-def]
    make_sku(other_merchant, code="RIVAL-ONLY-1")
    client = _staff(history)
    code = SKU.objects.filter(merchant=history).values_list("code", flat=True).first()
    for query, field in (
        ("sku=RIVAL-ONLY-1&streamer=A&date=2026-12-20&time=20:00&hours=2", "sku"),  # another shop's SKU
        (f"sku={code}&streamer=A&date=soon&time=20:00&hours=2", "date"),
        (f"sku={code}&streamer=A&date=2026-12-20&time=20:00&hours=40", "hours"),
        ("streamer=A&date=2026-12-20&time=20:00&hours=2", "sku"),
    ):
        r = client.get(f"/reports/forecast/?{query}")
        assert r.status_code == 400 and f'data-error="{field}"' in r.content.decode(), query
    mine = _staff(other_merchant).get(f"/reports/forecast/?sku={code}&streamer=A&date=2026-12-20&time=20:00&hours=2")
    assert mine.status_code == 400 and 'data-error="sku"' in mine.content.decode()  # our SKU is not theirs
    assert "RIVAL-ONLY-1" in mine.content.decode() and code not in mine.content.decode().split("data-error")[0]


def test_the_forecast_page_says_when_there_are_too_few_shows(merchant) -> None:  # type: ignore[no-untyped-def]
    call_command("generate_history", "--merchant", merchant.slug, "--orders", "300", "--shows", "4", "-v", "0")
    html = _staff(merchant).get("/reports/forecast/").content.decode()
    assert "data-forecast-message" in html and "4" in html
