"""Reports benchmark (issue 14) on PostgreSQL: a generated history of ``--orders`` orders over
``--shows`` shows, then the post-show report page, its API and the time-slot page and API, each
answered in-process through the whole Django stack (middleware, auth, templates), p50/p95 over
``--reps`` requests spread over many shows; beside them, in the same run, what the same answers
cost computed from the orders (the naive scan: a show's figures from its orders, and the
weekday × hour GMV from every order of the merchant).

    .venv/bin/python -m bench.reports.run [--orders 1000000] [--shows 200] [--reps 60] \
        [--database-url postgres://postgres@127.0.0.1:5432/lc_bench_reports] [--redis-url redis://127.0.0.1:6379/14]

The history is made once per database (``generate_history --if-absent``); a later run measures
again. Writes the table into docs/performance.md (marker ``reports``). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from io import StringIO
from typing import Any

from bench.fulfilment.run import setup


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def timed(fn: Any, reps: int) -> list[float]:
    out = []
    for i in range(reps):
        began = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - began) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--shows", type=int, default=200)
    parser.add_argument("--reps", type=int, default=60)
    parser.add_argument("--naive-reps", type=int, default=5)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/lc_bench_reports")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    setup(args)

    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count, Sum
    from django.db.models.functions import ExtractHour, ExtractWeekDay
    from django.test import Client
    from rest_framework.test import APIClient

    from apps.catalog.models import LiveSession
    from apps.merchants import services as merchants
    from apps.merchants.models import Merchant
    from apps.orders.models import Order
    from apps.reports.figures import session_figures
    from apps.reports.models import SessionReport
    from apps.reports.slots import _slot_analysis

    merchant = Merchant.objects.filter(slug="bench-reports").first()
    if merchant is None:
        merchant = merchants.merchant_create(name="Bench reports", slug="bench-reports")
    out = StringIO()
    began = time.monotonic()
    call_command("generate_history", "--merchant", merchant.slug, "--orders", str(args.orders), "--shows",
                 str(args.shows), "--weeks", "52", "--seed", "1", "--if-absent", stdout=out)  # fmt: skip
    made = json.loads(out.getvalue() or "{}")
    generate_s = time.monotonic() - began
    orders = Order.objects.filter(merchant=merchant).count()
    sessions = list(
        LiveSession.objects.filter(merchant=merchant, generated=True).order_by("pk").values_list("pk", flat=True)
    )
    assert SessionReport.objects.filter(merchant=merchant).count() == len(sessions), "reports missing"
    with connection.cursor() as cur:
        cur.execute("ANALYZE")

    user = merchants.staff_create(merchant=merchant, username=f"bench-{int(time.time())}", password="pw-bench-123456")
    web = Client()
    web.force_login(user)
    from tests.factories import make_token

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {make_token(merchant)}")

    def get(client: Any, path: str) -> None:
        r = client.get(path)
        assert r.status_code == 200, (path, r.status_code)

    for warm in (f"/reports/sessions/{sessions[0]}/", "/reports/slots/"):
        get(web, warm)

    def show(i: int) -> int:
        return sessions[(i * 7) % len(sessions)]

    rows: list[tuple[str, list[float]]] = [
        ("post-show report page", timed(lambda i: get(web, f"/reports/sessions/{show(i)}/"), args.reps)),
        ("post-show report API", timed(lambda i: get(api, f"/api/v1/reports/sessions/{show(i)}"), args.reps)),
        ("time-slot page", timed(lambda i: get(web, "/reports/slots/"), args.reps)),
        ("time-slot API", timed(lambda i: get(api, "/api/v1/reports/slots"), args.reps)),
        # The analysis is cached until an ended show's figures change: the same page with the cache
        # emptied before each request (what the first view after such a change costs).
        ("time-slot page, cache cold", timed(lambda i: (cache.clear(), get(web, "/reports/slots/")), args.reps)),
        ("time-slot API, cache cold", timed(lambda i: (cache.clear(), get(api, "/api/v1/reports/slots")), args.reps)),
    ]  # fmt: skip
    naive_show = timed(
        lambda i: session_figures(LiveSession.objects.get(pk=sessions[(i * 37) % len(sessions)])), args.naive_reps
    )

    def naive_slots(_i: int) -> None:
        list(
            Order.objects.filter(merchant=merchant, paid_at__isnull=False)
            .annotate(wd=ExtractWeekDay("created_at"), h=ExtractHour("created_at"))
            .values("wd", "h")
            .annotate(n=Count("pk"), gmv=Sum("total"))
        )

    naive_slot = timed(naive_slots, args.naive_reps)
    in_process_slots = timed(lambda i: _slot_analysis(merchant_id=merchant.pk, since=None, min_shows=3), 10)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Run {stamp}, PostgreSQL + Redis on this machine; {orders:,} generated orders over {len(sessions)} shows "
        f"(`generate_history`: {made.get('seconds', '–')} s to make, reports rolled up in "
        f"{made.get('reports_seconds', '–')} s; {generate_s:.0f} s in all this run). Each figure: "
        f"{args.reps} requests through the whole Django stack in-process (reports of different shows), ms.",
        "",
        "| answer | p50 | p95 | max |",
        "|---|---|---|---|",
    ]
    for name, ms in rows:
        lines.append(f"| {name} | {statistics.median(ms):.1f} | **{pct(ms, 0.95):.1f}** | {max(ms):.1f} |")
    lines += [
        f"| (in process, uncached) the slot analysis over {len(sessions)} rollups "
        f"| {statistics.median(in_process_slots):.1f} "
        f"| {pct(in_process_slots, 0.95):.1f} | {max(in_process_slots):.1f} |",
        f"| naive: one show's figures from its orders (`session_figures`) | {statistics.median(naive_show):.1f} "
        f"| {pct(naive_show, 0.95):.1f} | {max(naive_show):.1f} |",
        f"| naive: weekday × hour GMV from every order (one SQL aggregate) | {statistics.median(naive_slot):.1f} "
        f"| {pct(naive_slot, 0.95):.1f} | {max(naive_slot):.1f} |",
        "",
        f"p95 ratio, report page vs naive show scan: {pct(rows[0][1], 0.95) / pct(naive_show, 0.95):.3f}; "
        f"slot page vs naive slot scan: {pct(rows[2][1], 0.95) / pct(naive_slot, 0.95):.3f} "
        f"(cache cold: {pct(rows[4][1], 0.95) / pct(naive_slot, 0.95):.3f}).",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_docs:
        from bench.flash_sale.run import write_docs

        write_docs(report, marker="reports", title="Reports (`bench/reports`)")


if __name__ == "__main__":
    main()
