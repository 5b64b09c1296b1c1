"""Platform sync benchmark (issue 12) against PostgreSQL + Redis and a real django-q2 worker.

    DATABASE_URL=postgres://... REDIS_URL=redis://.../N .venv/bin/python -m bench.platform_sync.run
        [--steady-seconds 20] [--rate 10] [--burst 500] [--orders 400]

1. **Change → push latency**: a Douyin simulator (in this process, real sockets) sells one SKU;
   this process places orders (the real order path: gate, database, after-commit hooks) and the
   worker's stock drain pushes the count. For each order: from its commit to the first stock call
   the simulator received carrying that count or a later one (coalescing skips intermediate
   values). A steady stream (``--rate`` orders/s) and a burst (``--burst`` orders from 4 threads
   as fast as they go). Also the calls made, per second of sale.
2. **Storefront order path with a faulty platform**: p50/p99 of ``order_place`` (what the order
   API does, after-commit hooks included) in three arms on fresh listings — no platform shop, the
   three platforms connected and answering, the three connected and timing out on every call
   (the worker's drain retrying them meanwhile).

Writes both tables into docs/performance.md (markers ``platform_sync`` and
``platform_sync_storefront``). Uses the database and Redis of the environment (migrated first).
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
WORKER_ENV = {"Q_WORKERS": "2", "FRAUD_SCORE_ON_COMMIT": "0", "LOG_LEVEL": "WARNING"}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "livecommerce.settings.local")
    os.environ.update(WORKER_ENV)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True)
    import django

    django.setup()


def start_worker() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "livecommerce.worker"], cwd=ROOT, env={**os.environ, **WORKER_ENV},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the cluster finishes its running tasks), then SIGKILL to its own process group."""
    worker.terminate()
    try:
        worker.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(5)


def fixture(label: str, *, quota: int, platforms: tuple[str, ...], stack: ExitStack) -> tuple[Any, Any, dict]:
    """A fresh merchant with one open listing and a shop (and simulator) per platform, each
    linked to the listing's SKU."""
    from decimal import Decimal

    from apps.catalog import services as catalog
    from apps.catalog.models import Product
    from apps.merchants.models import Merchant
    from apps.platforms.services import shop_create
    from apps.platforms.simulator import make_simulator
    from apps.platforms.stock_sync import sku_link_seen, stock_count_confirm

    stamp = f"{label}-{int(time.time() * 1000)}"
    merchant = Merchant.objects.create(name=f"bench {stamp}", slug=f"bench-{stamp}")
    product = Product.objects.create(merchant=merchant, name="bench tee")
    sku = catalog.sku_create(merchant=merchant, product=product, code=f"TEE-{stamp}", name="", price=Decimal("99"),
                             on_hand=quota)  # fmt: skip
    session = catalog.session_create(merchant=merchant, title="bench", streamer="host", platforms=["storefront"],
                                     scheduled_at=None)  # fmt: skip
    listing = catalog.listing_open(listing=catalog.listing_create(
        merchant=merchant, session=session, sku=sku, price=Decimal("9.90"), quota=quota, per_buyer_limit=1,
        payment_window_seconds=900))  # fmt: skip
    sims = {}
    for platform in platforms:
        extra = {"msg_secret": "a3NfbXNnX3NlY3JldF8xNg=="} if platform == "kuaishou" else {}
        sim = stack.enter_context(make_simulator(platform, app_key=f"{platform}-app", app_secret="s",
                                                 access_token="t", shop_id=f"{platform}-{stamp}", **extra))  # fmt: skip
        shop = shop_create(merchant=merchant, platform=platform, shop_id=f"{platform}-{stamp}",
                           app_key=f"{platform}-app", app_secret="s", access_token="t", api_base_url=sim.base_url,
                           **extra)  # fmt: skip
        link = sku_link_seen(shop=shop, sku=sku, platform_item_id="3600000000001", platform_sku_id="1750000000001",
                             merchant_sku_code=sku.code)  # fmt: skip
        if platform == "kuaishou" and link is not None:
            sim.set_platform_stock(sku.code, quota)
            stock_count_confirm(link=link, platform_count=quota)
        sims[platform] = sim
    return merchant, listing, sims


def place(listing: Any, buyer: str) -> float:
    """Place one order through the order path; returns the monotonic time after its commit (and
    its after-commit hooks) and the wall time the simulator's clock compares with."""
    from apps.orders.placement.request import parse_order_request
    from apps.orders.placement.service import order_place

    body = {"listing": listing.pk, "quantity": 1, "buyer": {"external_id": buyer, "name": "B", "phone": "13800000000"},
            "shipping_address": {"name": "B", "phone": "13800000000", "province": "浙江省", "city": "杭州市",
                                 "district": "西湖区", "detail": "文三路 1 号"}}  # fmt: skip
    order_place(req=parse_order_request(body), merchant_id=listing.merchant_id, idempotency_key=buyer,
                channel="storefront")  # fmt: skip
    return time.time()


def latencies(sim: Any, commits: list[tuple[float, int]]) -> list[float]:
    """For each (commit wall time, count after it): the first stock call at or after it whose
    count is that one or lower (a later change's)."""
    calls = sorted((c.at, c.params["stock_num"]) for c in sim.calls("stock") if c.accepted)
    out = []
    for at, count in commits:
        first = next((t for t, n in calls if t >= at - 0.002 and n <= count), None)
        if first is not None:
            out.append(max(0.0, first - at))
    return out


def scenario(label: str, listing: Any, sim: Any, buyers: list[str], *, rate: float | None, threads: int) -> dict:
    from django.db import close_old_connections

    from apps.inventory.models import Stock

    sim.clear_calls()
    commits: list[tuple[float, int]] = []
    lock = threading.Lock()
    started = time.time()

    def run(chunk: list[str]) -> None:
        for i, buyer in enumerate(chunk):
            at = place(listing, buyer)
            with lock:
                commits.append((at, 0))
            if rate:
                time.sleep(max(0.0, started + (i + 1) / rate - time.time()))
        close_old_connections()

    chunks = [buyers[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=run, args=(c,)) for c in chunks]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    sale_seconds = time.time() - started
    # the count right after each commit: commits are totally ordered by the stock row
    commits.sort()
    quota = Stock.objects.get(sku_id=listing.sku_id).on_hand
    commits = [(at, quota - (i + 1)) for i, (at, _) in enumerate(commits)]
    final = commits[-1][1]
    deadline = time.time() + 15
    while time.time() < deadline and sim.stock.get(listing.sku.code) != final:
        time.sleep(0.01)
    lat = latencies(sim, commits)
    calls = len(sim.calls("stock"))
    return {"label": label, "orders": len(commits), "sale_s": sale_seconds, "calls": calls,
            "calls_per_s": calls / max(sale_seconds, 1e-9), "converged": sim.stock.get(listing.sku.code) == final,
            "p50": pct(lat, 50) * 1000, "p90": pct(lat, 90) * 1000, "p99": pct(lat, 99) * 1000,
            "max": max(lat) * 1000 if lat else float("nan"), "measured": len(lat)}  # fmt: skip


def storefront_arm(label: str, platforms: tuple[str, ...], fault: bool, orders: int) -> dict:
    with ExitStack() as stack:
        _, listing, sims = fixture(label, quota=orders + 50, platforms=platforms, stack=stack)
        for sim in sims.values():
            if fault:
                sim.set_fault("timeout", 3600, hang=30)
        for i in range(20):  # warm
            place(listing, f"{label}-warm-{i}")
        times = []
        for i in range(orders):
            t = time.perf_counter()
            place(listing, f"{label}-{i}")
            times.append((time.perf_counter() - t) * 1000)
        time.sleep(2)  # the drain keeps working on the platforms a little longer
    # counted once the simulators stopped: a hanging call is recorded when its hang ends
    time.sleep(0.5)
    faults = sum(len(s.calls("fault")) for s in sims.values())
    pushes = sum(len(s.calls("stock")) for s in sims.values())
    return {"label": label, "p50": pct(times, 50), "p99": pct(times, 99), "mean": statistics.fmean(times),
            "orders": orders, "faults": faults, "pushes": pushes}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steady-seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--orders", type=int, default=400)
    args = parser.parse_args()
    setup()
    worker = start_worker()
    try:
        time.sleep(3)  # the cluster starts
        results = []
        with ExitStack() as stack:
            steady_n = int(args.steady_seconds * args.rate)
            _, listing, sims = fixture("steady", quota=steady_n + 10, platforms=("douyin",), stack=stack)
            time.sleep(1.5)
            buyers = [f"steady-{i}" for i in range(steady_n)]
            results.append(scenario(f"steady, {args.rate:g} orders/s", listing, sims["douyin"], buyers, rate=args.rate,
                                    threads=1))  # fmt: skip
            _, listing, sims = fixture("burst", quota=args.burst, platforms=("douyin",), stack=stack)
            time.sleep(1.5)
            buyers = [f"burst-{i}" for i in range(args.burst)]
            results.append(scenario(f"burst, {args.burst} orders, 4 threads", listing, sims["douyin"], buyers,
                                    rate=None, threads=4))  # fmt: skip
        arms = [
            storefront_arm("no platform shop", (), False, args.orders),
            storefront_arm("3 platforms answering", ("douyin", "kuaishou", "taobao"), False, args.orders),
            storefront_arm("3 platforms timing out", ("douyin", "kuaishou", "taobao"), True, args.orders),
        ]
    finally:
        stop_worker(worker)
    write(results, arms)


def write(results: list[dict], arms: list[dict]) -> None:
    sys.path.insert(0, str(ROOT))
    from bench.flash_sale.run import write_docs

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = (f"Run: {when}, {os.cpu_count()} cores; PostgreSQL + Redis, the bench process placing orders, a "
            "django-q2 cluster (2 workers) and the Douyin simulator all on the same box. PLATFORM_SYNC defaults "
            "(tick 0.25 s, min interval 0.25 s).")  # fmt: skip
    rows = ["| scenario | orders | sale (s) | stock calls | calls/s | converged | p50 ms | p90 ms | p99 ms | max ms |",
            "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        rows.append(f"| {r['label']} | {r['orders']} | {r['sale_s']:.1f} | {r['calls']} | {r['calls_per_s']:.1f} | "
                    f"{'yes' if r['converged'] else 'NO'} | {r['p50']:.0f} | {r['p90']:.0f} | {r['p99']:.0f} | "
                    f"{r['max']:.0f} |")  # fmt: skip
    report = head + "\n\nChange → push latency (order commit → the simulator receives that count or a later one):\n\n"
    write_docs(report + "\n".join(rows), marker="platform_sync", title="Platform stock sync (`bench/platform_sync`)")
    head2 = (f"Run: {when}. `order_place` (the order API's path, after-commit hooks included), one client, "
             "sequential, on a fresh listing per arm; the worker drains stock pushes meanwhile.")  # fmt: skip
    rows2 = ["| arm | orders | p50 ms | p99 ms | mean ms | stock pushes accepted | platform calls that hit the fault |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for a in arms:
        rows2.append(f"| {a['label']} | {a['orders']} | {a['p50']:.1f} | {a['p99']:.1f} | {a['mean']:.1f} | "
                     f"{a['pushes']} | {a['faults']} |")  # fmt: skip
    write_docs(head2 + "\n\n" + "\n".join(rows2), marker="platform_sync_storefront",
               title="Storefront order path with a faulty platform (`bench/platform_sync`)")  # fmt: skip
    print("\n".join(rows))
    print("\n".join(rows2))


if __name__ == "__main__":
    main()
