"""Platform sync benchmark (issue 12) against PostgreSQL + Redis and a real django-q2 worker.

    .venv/bin/python -m bench.platform_sync.run [--database-url postgres://...] [--redis-url redis://.../N]
        [--steady-seconds 20] [--rate 10] [--burst 500] [--orders 600] [--rounds 3]

1. **Change → push latency**: a Douyin simulator (in this process, real sockets) sells one SKU;
   this process places orders (the real order path: gate, database, after-commit hooks) and the
   worker's stock drain pushes the count. For each order: from its commit to the first stock call
   the simulator received carrying that count or a later one (coalescing skips intermediate
   values). A steady stream (``--rate`` orders/s) and a burst (``--burst`` orders from 4 threads
   as fast as they go). Also the calls made, per second of sale.
2. **Storefront order path with a faulty platform**: p50/p99 of ``order_place`` (what the order
   API does, after-commit hooks included) in three arms, each on a fresh listing — no platform
   shop, the three platforms connected and answering, the three connected and timing out on
   every call (the worker's drain retrying them meanwhile) — repeated ``--rounds`` times with the
   arms in alternating order (forward, backward, ...). Per arm also: the time the order path
   spent in the stock sync's mark (its only platform work), the drains it queued, and the
   worker's CPU while the arm ran (the drain competes with the order path for this box's cores).

Writes both tables into docs/performance.md (markers ``platform_sync`` and
``platform_sync_storefront``). Uses ``--database-url`` / ``--redis-url`` (default: the
environment's ``DATABASE_URL`` / ``REDIS_URL``), migrated first. Not part of the test suite.
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
    from apps.platforms.models import PlatformShop
    from apps.platforms.services import shop_create
    from apps.platforms.simulator import make_simulator
    from apps.platforms.stock_sync import sku_link_seen, stock_count_confirm

    stamp = f"{label}-{int(time.time() * 1000)}"
    merchant = Merchant.objects.create(name=f"bench {stamp}", slug=f"bench-{stamp}")
    # when the scenario ends its shops are disconnected: left enabled with their simulators gone,
    # every later scenario would run beside a worker retrying them
    stack.callback(lambda: PlatformShop.objects.filter(merchant=merchant).update(enabled=False))
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and the processes of its group (the worker's cluster)."""
    total = 0
    for member in {pid, *(int(p) for p in os.popen(f"pgrep -g {pid}").read().split())}:
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def settle_worker(pid: int, *, idle: float = 0.15, limit: float = 30.0) -> float:
    """Wait until the worker uses under ``idle`` of a core over half a second (what the previous
    arm left it, its drains, is done); returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if cpu_seconds(pid) - before < idle * 0.5:
            break
    return time.monotonic() - started


class MarkTimer:
    """Times the stock sync's ``mark`` (the receivers call it through the module, after commit)
    and counts the drains it queued: what the order path does for the platforms."""

    def __init__(self) -> None:
        from apps.platforms import stock_sync

        self.module, self.mark, self.queue = stock_sync, stock_sync.mark, stock_sync.queue_drain
        self.seconds, self.calls, self.queued = 0.0, 0, 0

    def __enter__(self) -> MarkTimer:
        def mark(member: str, *, merchant_id: int | None) -> None:
            started = time.perf_counter()
            try:
                self.mark(member, merchant_id=merchant_id)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1

        def queue() -> None:
            self.queued += 1
            self.queue()

        self.module.mark, self.module.queue_drain = mark, queue  # type: ignore[assignment]  # timed stand-ins for the run
        return self

    def __exit__(self, *exc: object) -> None:
        self.module.mark, self.module.queue_drain = self.mark, self.queue  # type: ignore[assignment]  # restored


def storefront_arm(label: str, platforms: tuple[str, ...], fault: bool, orders: int, worker_pid: int,
                   tag: str) -> dict:  # fmt: skip
    with ExitStack() as stack:
        _, listing, sims = fixture(f"{label}-{tag}", quota=orders + 50, platforms=platforms, stack=stack)
        for sim in sims.values():
            if fault:
                sim.set_fault("timeout", 3600, hang=30)
        for i in range(20):  # warm
            place(listing, f"{label}-{tag}-warm-{i}")
        time.sleep(1.0)  # the first drain (the shops' links) is under way in every arm with shops
        settled = settle_worker(worker_pid)
        load = os.getloadavg()[0]
        times = []
        cpu0, wall0 = cpu_seconds(worker_pid), time.monotonic()
        with MarkTimer() as marks:
            for i in range(orders):
                t = time.perf_counter()
                place(listing, f"{label}-{tag}-{i}")
                times.append((time.perf_counter() - t) * 1000)
        worker_cpu = (cpu_seconds(worker_pid) - cpu0) / (time.monotonic() - wall0)
        time.sleep(2)  # the drain keeps working on the platforms a little longer
    # counted once the simulators stopped: a hanging call is recorded when its hang ends
    faults = sum(len(s.calls("fault")) for s in sims.values())
    pushes = sum(len(s.calls("stock")) for s in sims.values())
    return {"label": label, "p50": pct(times, 50), "p99": pct(times, 99), "mean": statistics.fmean(times),
            "orders": orders, "faults": faults, "pushes": pushes, "worker_cpu": worker_cpu * 100, "load": load,
            "mark_us": marks.seconds / max(1, marks.calls) * 1e6, "marks": marks.calls,
            "queued": marks.queued, "settled": settled}  # fmt: skip


ARMS: list[tuple[str, tuple[str, ...], bool]] = [
    ("no platform shop", (), False),
    ("3 platforms answering", ("douyin", "kuaishou", "taobao"), False),
    ("3 platforms timing out", ("douyin", "kuaishou", "taobao"), True),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steady-seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--orders", type=int, default=600, help="timed orders per storefront arm")
    parser.add_argument("--rounds", type=int, default=3, help="storefront rounds (arms in alternating order)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    args = parser.parse_args()
    if not args.database_url or not args.redis_url:
        parser.error("a PostgreSQL database and a Redis db: --database-url and --redis-url (or the environment's)")
    os.environ.update(DATABASE_URL=args.database_url, REDIS_URL=args.redis_url)
    setup()
    from django_q.models import Schedule

    from apps.platforms.models import PlatformShop

    PlatformShop.objects.filter(enabled=True).update(enabled=False)  # left by an earlier run
    # No risk scoring in this bench's worker (its cost is bench/flash_sale's subject): the minute
    # schedule would score an arm's orders at a random moment of a later arm, on the same two cores.
    Schedule.objects.filter(func="apps.fraud.scoring.score_burst").delete()
    worker = start_worker()
    try:
        time.sleep(3)  # the cluster starts
        results = []
        with ExitStack() as stack:
            settle_worker(worker.pid, limit=120)
            steady_n = int(args.steady_seconds * args.rate)
            _, listing, sims = fixture("steady", quota=steady_n + 10, platforms=("douyin",), stack=stack)
            time.sleep(1.5)
            buyers = [f"steady-{i}" for i in range(steady_n)]
            results.append(scenario(f"steady, {args.rate:g} orders/s", listing, sims["douyin"], buyers, rate=args.rate,
                                    threads=1))  # fmt: skip
            settle_worker(worker.pid, limit=120)
            _, listing, sims = fixture("burst", quota=args.burst, platforms=("douyin",), stack=stack)
            time.sleep(1.5)
            buyers = [f"burst-{i}" for i in range(args.burst)]
            results.append(scenario(f"burst, {args.burst} orders, 4 threads", listing, sims["douyin"], buyers,
                                    rate=None, threads=4))  # fmt: skip
        rounds: list[list[dict]] = []
        for n in range(args.rounds):
            order = ARMS if n % 2 == 0 else ARMS[::-1]
            arms = [storefront_arm(label, platforms, fault, args.orders, worker.pid, f"r{n}")
                    for label, platforms, fault in order]  # fmt: skip
            for a in arms:
                print(f"round {n + 1}: {a['label']}: p50 {a['p50']:.2f} p99 {a['p99']:.2f} mean {a['mean']:.2f} ms, "
                      f"mark {a['mark_us']:.0f} µs, worker {a['worker_cpu']:.0f}% CPU, load {a['load']:.1f}, "
                      f"settled {a['settled']:.1f} s, drains queued {a['queued']}", flush=True)  # fmt: skip
            rounds.append(arms)
    finally:
        stop_worker(worker)
    write(results, rounds, args)


def write(results: list[dict], rounds: list[list[dict]], args: argparse.Namespace) -> None:
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
    write_docs(storefront_report(when, rounds, args), marker="platform_sync_storefront",
               title="Storefront order path with a faulty platform (`bench/platform_sync`)")  # fmt: skip
    print("\n".join(rows))


def storefront_report(when: str, rounds: list[list[dict]], args: argparse.Namespace) -> str:
    med = statistics.median
    by_arm = {label: [next(a for a in arms if a["label"] == label) for arms in rounds] for label, _, _ in ARMS}
    loads = [a["load"] for arms in rounds for a in arms]
    head = (f"Run: {when}, {os.cpu_count()} cores shared with other work (load average at the start of the arms "
            f"{min(loads):.1f}–{max(loads):.1f}). Command: `python -m bench.platform_sync.run --orders {args.orders} "
            f"--rounds {args.rounds}` (PostgreSQL + Redis). `order_place` (the order API's path, after-commit hooks "
            "included), one client, sequential, each arm on a fresh listing after 20 warm-up orders; the django-q2 "
            "worker drains stock pushes meanwhile; the simulators run in the bench process. Before each arm the bench "
            "waits until the worker is idle (under 15% of a core: the previous arm's drains done), and an arm's shops "
            "are disconnected when it ends; the worker runs without the risk-scoring schedule (else it scores an "
            "arm's orders at a random moment of a later arm). Each round runs the "
            "three arms, in alternating order from round to round (forward, backward, ...). A figure is the median "
            "over the rounds.")  # fmt: skip
    rows = ["| arm | rounds × orders | p50 ms | p99 ms | mean ms | mark per order µs (mean) | drains queued by "
            "orders | worker CPU % | stock pushes accepted | platform calls that hit the fault |",
            "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for label, arms in by_arm.items():
        rows.append(f"| {label} | {len(arms)} × {args.orders} | {med(a['p50'] for a in arms):.1f} | "
                    f"{med(a['p99'] for a in arms):.1f} | {med(a['mean'] for a in arms):.1f} | "
                    f"{med(a['mark_us'] for a in arms):.0f} | {sum(a['queued'] for a in arms)} | "
                    f"{med(a['worker_cpu'] for a in arms):.0f} | {med(a['pushes'] for a in arms):.0f} | "
                    f"{med(a['faults'] for a in arms):.0f} |")  # fmt: skip
    base, ok, bad = (by_arm[label] for label, _, _ in ARMS)

    def diffs(xs: list[dict], ys: list[dict], key: str) -> str:
        return ", ".join(f"{x[key] - y[key]:+.1f}" for x, y in zip(xs, ys, strict=True))

    lines = [
        f"Per round, p99 (ms): answering − no shop {diffs(ok, base, 'p99')}; timing out − no shop "
        f"{diffs(bad, base, 'p99')}; timing out − answering {diffs(bad, ok, 'p99')}. p50: answering − no shop "
        f"{diffs(ok, base, 'p50')}; timing out − no shop {diffs(bad, base, 'p50')}; timing out − answering "
        f"{diffs(bad, ok, 'p50')}.",
        "",
        "Each arm in the order run (p50 / p99 / mean ms, worker CPU %, load, seconds waited for an idle worker):",
        "",
    ]
    for n, arms in enumerate(rounds, start=1):
        lines.append(f"Round {n}: " + "; ".join(
            f"{a['label']} {a['p50']:.1f} / {a['p99']:.1f} / {a['mean']:.1f}, {a['worker_cpu']:.0f}%, {a['load']:.1f}, "
            f"{a['settled']:.1f} s"
            for a in arms) + ".")  # fmt: skip
    return head + "\n\n" + "\n".join(rows) + "\n\n" + "\n".join(lines)


if __name__ == "__main__":
    main()
