"""Time-slot analysis across shows: minutes on air and what sold in them land in the weekday × hour
cells of China time; GMV per hour on air ranks; a slot with too few shows is never recommended;
the API validates its parameters and keeps to the token's merchant."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from apps.catalog.models import LiveSession
from apps.reports.models import SessionReport
from apps.reports.slots import slot_analysis

from ..factories import make_session

pytestmark = pytest.mark.django_db
CN = ZoneInfo("Asia/Shanghai")


def show(merchant, start: datetime, hours: str, minutes: list[tuple[int, int, str]], streamer: str = "小雅"):  # type: ignore[no-untyped-def]
    """A rolled-up show: ``minutes`` = (minute since start, paid orders, GMV)."""
    session = make_session(merchant)
    LiveSession.objects.filter(pk=session.pk).update(started_at=start, streamer=streamer)
    by_minute = [{"minute": m, "orders": n + 1, "paid": n, "gmv": gmv} for m, n, gmv in minutes]
    gmv = sum((Decimal(g) for _m, _n, g in minutes), Decimal("0.00"))
    figures = {
        "orders": sum(r["orders"] for r in by_minute), "paid": sum(r["paid"] for r in by_minute), "gmv": str(gmv),
        "by_minute": by_minute,
        "categories": [{"category": "美妆", "orders": 3, "paid": 2, "units": 4, "gmv": "10.00"}],
    }  # fmt: skip
    return SessionReport.objects.create(
        session=session, merchant=merchant, starts_at=start, streamer=streamer, hours_on_air=Decimal(hours),
        orders=figures["orders"], paid=figures["paid"], units=5, gmv=gmv, figures=figures, ended=True,
    )  # fmt: skip


def test_a_show_spanning_hours_counts_its_minutes_and_sales_in_each(merchant) -> None:  # type: ignore[no-untyped-def]
    start = datetime(2026, 11, 6, 19, 30, tzinfo=CN)  # a Friday
    show(merchant, start, "1.667", [(0, 2, "100.00"), (45, 1, "60.00"), (95, 1, "30.00")])
    cells = {(c["weekday"], c["hour"]): c for c in slot_analysis(merchant_id=merchant.pk)["cells"]}
    assert set(cells) == {(4, 19), (4, 20), (4, 21)}
    assert cells[(4, 19)]["hours_on_air"] == "0.500" and cells[(4, 19)]["gmv"] == "100.00"
    assert cells[(4, 20)]["hours_on_air"] == "1.000" and cells[(4, 20)]["gmv"] == "60.00"
    assert cells[(4, 21)]["gmv"] == "30.00" and cells[(4, 19)]["gmv_per_hour"] == "200.00"
    assert cells[(4, 19)]["conversion"] == "0.6667"  # 2 paid of 3 orders


def test_only_slots_with_enough_shows_are_recommended(merchant, other_merchant) -> None:  # type: ignore[no-untyped-def]
    for week in range(3):  # three Saturday-evening shows selling steadily
        show(merchant, datetime(2026, 10, 3 + 7 * week, 20, 0, tzinfo=CN), "1", [(10, 5, "500.00")], streamer="A")
    show(merchant, datetime(2026, 10, 6, 9, 0, tzinfo=CN), "1", [(5, 9, "5000.00")], streamer="B")  # one lucky Tuesday
    show(other_merchant, datetime(2026, 10, 6, 9, 0, tzinfo=CN), "1", [(5, 1, "1.00")])
    result = slot_analysis(merchant_id=merchant.pk)
    assert result["shows"] == 4
    assert [(c["weekday"], c["hour"], c["shows"]) for c in result["recommended"]] == [(5, 20, 3)]
    assert [(c["weekday"], c["hour"], c["shows"]) for c in result["too_few_shows"]] == [(1, 9, 1)]
    assert [s["streamer"] for s in result["streamers"]] == ["B", "A"]  # by GMV per hour on air
    assert result["categories"][0]["category"] == "美妆" and result["categories"][0]["shows"] == 4
    assert slot_analysis(merchant_id=merchant.pk, min_shows=1)["recommended"][0]["hour"] == 9


def test_the_api_validates_and_keeps_to_the_merchant(merchant, other_merchant, api) -> None:  # type: ignore[no-untyped-def]
    show(merchant, datetime(2026, 10, 3, 20, 0, tzinfo=CN), "1", [(10, 5, "500.00")])
    show(other_merchant, datetime(2026, 10, 3, 20, 0, tzinfo=CN), "1", [(10, 5, "900.00")])
    body = api.get("/api/v1/reports/slots?min_shows=1").json()
    assert body["shows"] == 1 and body["recommended"][0]["gmv"] == "500.00"
    assert api.get("/api/v1/reports/slots?since=2026-10-04").json()["shows"] == 0
    for bad in ("min_shows=0", "min_shows=x", "since=yesterday"):
        r = api.get(f"/api/v1/reports/slots?{bad}")
        assert r.status_code == 400 and r.json()["code"] == "invalid", bad
    r = api.get("/api/v1/reports/slots?nope=1")
    assert r.status_code == 400 and r.json()["code"] == "unknown_parameter"
