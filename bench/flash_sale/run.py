"""Flash-sale benchmark against PostgreSQL + Redis, served as in production (uvicorn workers).

    .venv/bin/python -m bench.flash_sale.run [--workers 2] [--quota 1000] [--extra 6000] [--risk both]

For each concurrency (64, 256) in one run: a trivial endpoint (the ceiling), the gated order
path (Redis Lua gate + row-locked truth) and the baseline (select_for_update, no gate). Prints
a table and writes it into docs/performance.md. Not part of the test suite.

``--risk both`` (the default) runs every gated sale twice per round, once on a server with the
risk rules on (``FRAUD_RULES=1``, the placement guard's one Redis script before the gate) and
once with them off, in alternating order, and writes what the rules cost into its own block of
docs/performance.md (``risk.render_risk``); the main table's gated row is the rules-on arm.
``--risk on`` / ``off`` runs the gated sales with the rules on or off only.

At high rates this module's Python load generator is itself the limit: ``bench.flash_sale.wire``
measures the same server with ``wrk`` beside the machine's two ceilings (a plain ASGI app with one
Redis call, ``pgbench`` on one hot row) and reports CPU per answer.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/livecommerce_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/4"
WARM_ORDERS = 400
SENTINEL_KEY = "lc:bench:flash_sale:sentinel"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_env(args: argparse.Namespace, settings_module: str = "bench.flash_sale.settings") -> dict[str, str]:
    """Environment for the benchmark and its server: production settings, the bench's database
    and Redis, a fresh secret."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        DJANGO_SETTINGS_MODULE=settings_module,
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PAYMENT_WEBHOOK_SECRET="bench-secret",
        LEDGER_KEY=secrets.token_urlsafe(48),
        LC_SECRETS_KEYS=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    )
    os.environ.update(env)
    return env


def prepare_database(args: argparse.Namespace) -> None:
    name = args.database_url.rsplit("/", 1)[1]
    exists = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", f"SELECT 1 FROM pg_database WHERE datname='{name}'"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not exists:
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f"CREATE DATABASE {name}"], check=True)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True)


def make_fixture(quota: int, limit: int, warm_quota: int = 0) -> tuple[str, int, int, int | None]:
    """A merchant, a token and one open listing on a fresh SKU; returns (token, listing id,
    merchant id, warm-up listing id). With ``warm_quota`` a second open listing (another SKU)
    takes the warm-up orders, so the server meets the sale with its pools, prepared statements
    and caches in the state a server that has been up for a while has them."""
    from decimal import Decimal

    from apps.catalog import services as catalog
    from apps.merchants import services as merchants

    slug = f"bench-{secrets.token_hex(4)}"
    m = merchants.merchant_create(slug=slug, name=slug)
    _, token = merchants.api_token_create(merchant=m, name="bench")
    product = catalog.product_create(merchant=m, name="Hot item")
    sku = catalog.sku_create(merchant=m, product=product, code="HOT", name="", price=Decimal("99"), on_hand=quota)
    show = catalog.session_create(merchant=m, title="bench", streamer="b", platforms=["storefront"], scheduled_at=None)
    listing = catalog.listing_create(
        merchant=m,
        session=show,
        sku=sku,
        price=Decimal("9.90"),
        quota=quota,
        per_buyer_limit=limit,
    )
    catalog.listing_open(listing=listing)
    warm_id = None
    if warm_quota:
        wsku = catalog.sku_create(
            merchant=m, product=product, code="WARM", name="", price=Decimal("1"), on_hand=warm_quota
        )
        warm = catalog.listing_create(
            merchant=m, session=show, sku=wsku, price=Decimal("1.00"), quota=warm_quota, per_buyer_limit=1
        )
        catalog.listing_open(listing=warm)
        warm_id = warm.pk
    return token, listing.pk, m.pk, warm_id


def order_requests(
    path: str, token: str, listing: int, n: int, host: str, prefix: str = "u", first: int = 0
) -> list[bytes]:
    """``n`` orders from new buyers ``first`` .. ``first + n - 1`` (``risk.buyer_body``: each its own
    phone, address and device, with the ``client`` block and registration time the rules read)."""
    return [_order_request(path, token, body, host, prefix) for body in order_bodies(listing, n, prefix, first)]


def order_bodies(listing: int, n: int, prefix: str = "u", first: int = 0) -> list[dict]:
    from bench.flash_sale.risk import buyer_body

    return [buyer_body(listing, first + i, prefix) for i in range(n)]


def _order_request(path: str, token: str, body: dict, host: str, prefix: str) -> bytes:
    from bench.flash_sale.loadgen import build

    key = f"{prefix}-k{body['buyer']['external_id'][len(prefix) :]}"
    headers = {"Authorization": f"Token {token}", "Idempotency-Key": key}
    return build("POST", path, host, json.dumps(body).encode(), headers)


def pg_xacts(dbname: str) -> int:
    out = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-tAc",
            f"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname='{dbname}'",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return int(out)


def start_server(env: dict[str, str], workers: int, port: int, server: str = "serve") -> subprocess.Popen:
    """As the operations guide serves production: ``livecommerce.serve`` (uvicorn workers, one
    SO_REUSEPORT socket each); ``server="uvicorn"`` runs plain ``uvicorn --workers`` instead
    (one shared socket) for comparison."""
    if server == "uvicorn":
        cmd = [sys.executable, "-m", "uvicorn", "livecommerce.asgi:application", "--workers", str(workers)]
        cmd += ["--no-access-log", "--log-level", "warning", "--loop", "uvloop", "--http", "httptools"]
        cmd += ["--lifespan", "off", "--host", "127.0.0.1", "--port", str(port)]
    else:
        cmd = [sys.executable, "-m", "livecommerce.serve", "--workers", str(workers), "--host", "127.0.0.1"]
        cmd += ["--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    return wait_healthy(proc, port, "server")


def wait_healthy(proc: subprocess.Popen, port: int, what: str) -> subprocess.Popen:
    """Return ``proc`` once ``/healthz`` answers on ``port`` (60 s), else kill it and exit."""
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:  # noqa: S310
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{what} did not start")


def sale(
    path: str, port: int, c: int, quota: int, extra: int, dbname: str, late: int = 3000, server_pid: int | None = None
) -> dict:
    from apps.core.redis import get_client
    from bench.flash_sale import loadgen
    from bench.flash_sale.risk import bodies_digest

    host = f"127.0.0.1:{port}"
    loadavg = os.getloadavg()[0]
    # A key nobody else writes: gone at the end means the Redis database was flushed during the
    # sale (another user of the same db number), which disturbs the gate and the counters.
    sentinel = secrets.token_hex(8)
    get_client().set(SENTINEL_KEY, sentinel)
    token, listing, _m, warm_listing = make_fixture(quota, limit=1, warm_quota=WARM_ORDERS)
    assert warm_listing is not None
    # Warm up on another listing of the same merchant, at the same concurrency: every worker's
    # threads, database connections (and their prepared statements) and caches are in use.
    # Buyer numbers never repeat within the sale's show (warm-up, sale, late buyers), so every
    # buyer has its own phone, address and device (``risk.buyer_body``).
    warm_bodies = order_bodies(warm_listing, WARM_ORDERS, "warm")
    warm = [_order_request(path, token, b, host, "warm") for b in warm_bodies]
    wres = asyncio.run(loadgen.run("127.0.0.1", port, warm, c))
    bodies = order_bodies(listing, quota + extra, "u", first=WARM_ORDERS)[1:]
    reqs = [_order_request(path, token, b, host, "u") for b in bodies]
    x0 = pg_xacts(dbname)
    res = asyncio.run(loadgen.run("127.0.0.1", port, reqs, c))
    x1 = pg_xacts(dbname)
    accepted = res.codes.get("pending_payment", 0) + res.codes.get("201", 0)
    sold_out = res.codes.get("sold_out", 0)
    acc_window = (res.last_by_code.get("pending_payment", res.started) - res.started) or 1e-9
    so_first = res.first_by_code.get("sold_out")
    so_window = (res.last_by_code.get("sold_out", 0) - so_first) if so_first else 0
    # A pure sold-out phase: how many database transactions does it cost?
    late_bodies = order_bodies(listing, late, "late", first=WARM_ORDERS + quota + extra)
    more = [_order_request(path, token, b, host, "late") for b in late_bodies]
    time.sleep(1.0)  # the coalesced websocket pushes that follow the last orders (they read the database) go out
    p0 = pg_xacts(dbname)
    cpu0 = cpu_seconds(server_pid)
    so = asyncio.run(loadgen.run("127.0.0.1", port, more, c))
    cpu1 = cpu_seconds(server_pid)
    p1 = pg_xacts(dbname)
    answers = max(len(so.latencies), 1)
    expected = {"pending_payment", "sold_out", "201"}
    other = {k: v for k, v in res.codes.items() if k not in expected}
    for k, v in [*so.codes.items(), *wres.codes.items()]:
        if k not in expected:
            other[k] = other.get(k, 0) + v
    return {
        "clients": c,
        "requests": len(reqs),
        "accepted": accepted,
        "sold_out": sold_out,
        "other": other,
        "risk_blocked": other.get("risk_blocked", 0),
        "accepted_per_s": accepted / acc_window,
        "sold_out_per_s": so.rps,
        "sold_out_during_sale_per_s": (sold_out / so_window) if so_window else 0.0,
        "whole_sale_s": res.seconds,
        "p50_ms": res.median_ms(),
        "p99_ms": res.pct(99),
        "accepted_p50_ms": res.code_pct("pending_payment", 50),
        "accepted_p99_ms": res.code_pct("pending_payment", 99),
        "sold_out_p50_ms": so.median_ms(),
        "sold_out_p99_ms": so.pct(99),
        "db_xacts_during_sale": x1 - x0,
        "db_xacts_per_sold_out": (p1 - p0) / answers,
        "server_cpu_ms_per_sold_out": (cpu1["server"] - cpu0["server"]) * 1000 / answers,
        "redis_cpu_ms_per_sold_out": (cpu1["redis"] - cpu0["redis"]) * 1000 / answers,
        "statuses": dict(res.statuses),
        "bodies": bodies_digest(warm_bodies + bodies + late_bodies),
        "loadavg": loadavg,
        "redis_flushed": get_client().get(SENTINEL_KEY) not in (sentinel, sentinel.encode()),
    }


def paced(path: str, port: int, acc_rate: float, so_rate: float, seconds: float) -> dict:
    """Below saturation: on a new listing of a new merchant, ``acc_rate`` orders/s for ``seconds``
    (its quota is exactly that many: all accepted), then ``so_rate`` requests/s for ``seconds``
    at the sold-out listing; open loop (``loadgen.run_paced``: a latency runs from when the
    request was due). What one answer costs when nobody queues, rules on or off."""
    from bench.flash_sale import loadgen

    host = f"127.0.0.1:{port}"
    n_acc, n_so = int(acc_rate * seconds), int(so_rate * seconds)
    token, listing, _m, _w = make_fixture(n_acc, limit=1)
    first = 10_000_000  # buyers of their own: the rules' counters start from nothing
    acc = order_requests(path, token, listing, n_acc, host, "pa", first)
    so = order_requests(path, token, listing, n_so, host, "ps", first + n_acc)
    a = asyncio.run(loadgen.run_paced("127.0.0.1", port, acc, acc_rate))
    time.sleep(1.0)
    b = asyncio.run(loadgen.run_paced("127.0.0.1", port, so, so_rate))
    other = {k: v for k, v in [*a.codes.items(), *b.codes.items()] if k not in {"pending_payment", "sold_out"}}
    return {
        "paced_accepted": a.codes.get("pending_payment", 0),
        "paced_accepted_rate": acc_rate,
        "paced_accepted_p50_ms": a.code_pct("pending_payment", 50),
        "paced_accepted_p99_ms": a.code_pct("pending_payment", 99),
        "paced_sold_out": b.codes.get("sold_out", 0),
        "paced_sold_out_rate": so_rate,
        "paced_sold_out_p50_ms": b.code_pct("sold_out", 50),
        "paced_sold_out_p99_ms": b.code_pct("sold_out", 99),
        "paced_other": other,
    }


def side_by_side(env: dict[str, str], args: argparse.Namespace, rnd: int) -> dict:
    """One round of the paced phase with both arms served at once: a server with the rules on and
    one with them off, each warmed with ``WARM_ORDERS`` orders on a listing of its own merchant,
    then ``acc_rate`` orders/s to each (interleaved: the off arm's requests half a period after
    the on arm's) for ``paced_seconds``, then ``so_rate`` sold-out requests/s to each the same
    way. One load generator, one machine, the same moments: noise from elsewhere falls on both
    arms alike, which arms measured one after the other cannot promise."""
    from bench.flash_sale import loadgen

    acc_rate, so_rate = (float(x) for x in args.paced.split(","))
    n_acc, n_so = int(acc_rate * args.paced_seconds), int(so_rate * args.paced_seconds)
    first = 20_000_000 + rnd * 100_000  # buyers of their own in every round
    with (
        serving(env, "on", args.workers, args.server) as (port_on, _pid_on),
        serving(env, "off", args.workers, args.server) as (port_off, _pid_off),
    ):
        arms: dict[str, dict[str, Any]] = {}
        for arm, port in (("on", port_on), ("off", port_off)):
            host = f"127.0.0.1:{port}"
            token, listing, _m, warm_listing = make_fixture(n_acc, limit=1, warm_quota=WARM_ORDERS)
            assert warm_listing is not None
            warm = order_requests("/api/v1/orders", token, warm_listing, WARM_ORDERS, host, "sw", first)
            asyncio.run(loadgen.run("127.0.0.1", port, warm, 32))
            arms[arm] = {
                "port": port,
                "acc": order_requests("/api/v1/orders", token, listing, n_acc, host, "sa", first + WARM_ORDERS),
                "so": order_requests("/api/v1/orders", token, listing, n_so, host, "ss", first + WARM_ORDERS + n_acc),
            }
        time.sleep(1.0)

        async def both(kind: str, rate: float) -> tuple[loadgen.Result, loadgen.Result]:
            on, off = await asyncio.gather(
                loadgen.run_paced("127.0.0.1", arms["on"]["port"], arms["on"][kind], rate),
                loadgen.run_paced("127.0.0.1", arms["off"]["port"], arms["off"][kind], rate, offset=0.5 / rate),
            )
            return on, off

        acc_on, acc_off = asyncio.run(both("acc", acc_rate))
        time.sleep(1.0)
        so_on, so_off = asyncio.run(both("so", so_rate))
    out: dict = {"round": rnd, "load": os.getloadavg()[0], "warm": WARM_ORDERS}
    for arm, a, b in (("on", acc_on, so_on), ("off", acc_off, so_off)):
        out[arm] = {
            "accepted": a.codes.get("pending_payment", 0),
            "accepted_p50_ms": a.code_pct("pending_payment", 50),
            "accepted_p99_ms": a.code_pct("pending_payment", 99),
            "sold_out": b.codes.get("sold_out", 0),
            "sold_out_p50_ms": b.code_pct("sold_out", 50),
            "sold_out_p99_ms": b.code_pct("sold_out", 99),
            "other": {
                k: v for k, v in [*a.codes.items(), *b.codes.items()] if k not in {"pending_payment", "sold_out"}
            },
        }
    return out


def cpu_seconds(server_pid: int | None) -> dict[str, float]:
    """CPU time used so far by the server (the process and its workers) and by Redis (the whole
    server: other users of the same Redis count too). A saturated box's throughput follows the
    CPU each answer costs, which other work on the machine does not change the way it changes
    wall-clock rates."""
    from apps.core.redis import get_client

    server = 0.0
    if server_pid is not None:
        tick = os.sysconf("SC_CLK_TCK")
        family = {server_pid}
        stats = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                stats.append((int(entry.name), int(fields[1]), (int(fields[11]) + int(fields[12])) / tick))
        grew = True
        while grew:  # the server's descendants (workers started by livecommerce.serve)
            grew = False
            for pid, ppid, _ in stats:
                if ppid in family and pid not in family:
                    family.add(pid)
                    grew = True
        server = sum(cpu for pid, _, cpu in stats if pid in family)
    info = get_client().info("cpu")
    return {"server": server, "redis": float(info["used_cpu_user"]) + float(info["used_cpu_sys"])}


MEDIAN_KEYS = (
    "accepted_per_s",
    "sold_out_per_s",
    "whole_sale_s",
    "p50_ms",
    "p99_ms",
    "accepted_p50_ms",
    "accepted_p99_ms",
    "sold_out_p50_ms",
    "sold_out_p99_ms",
    "db_xacts_per_sold_out",
    "server_cpu_ms_per_sold_out",
    "redis_cpu_ms_per_sold_out",
)
PACED_KEYS = ("paced_accepted_p50_ms", "paced_accepted_p99_ms", "paced_sold_out_p50_ms", "paced_sold_out_p99_ms")


def median_of(runs: list[dict]) -> dict:
    """Each figure's median over repeated sales (the machine is shared and noisy), with every
    run's accepted orders/s and p99 kept alongside."""
    out = dict(runs[len(runs) // 2])
    for key in MEDIAN_KEYS + tuple(k for k in PACED_KEYS if k in runs[0]):
        out[key] = statistics.median(r[key] for r in runs)
    out["runs"] = len(runs)
    out["accepted_per_s_runs"] = [round(r["accepted_per_s"]) for r in runs]
    out["p99_ms_runs"] = [round(r["p99_ms"]) for r in runs]
    out["db_xacts_per_sold_out_max"] = max(r["db_xacts_per_sold_out"] for r in runs)
    other: dict[str, int] = {}
    for r in runs:
        for k, v in r["other"].items():
            other[k] = other.get(k, 0) + v
    out["other"] = other
    out["risk_blocked"] = sum(r["risk_blocked"] for r in runs)
    out["redis_flushed"] = sum(bool(r.get("redis_flushed")) for r in runs)
    return out


def trivial(port: int, c: int, seconds: float) -> dict:
    from bench.flash_sale import loadgen

    req = loadgen.build("GET", "/healthz", f"127.0.0.1:{port}", None, {})
    res = asyncio.run(loadgen.run("127.0.0.1", port, [req] * 200_000, c, duration=seconds))
    return {"clients": c, "rps": res.rps, "p50_ms": res.median_ms(), "p99_ms": res.pct(99)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--quota", type=int, default=1000)
    p.add_argument("--extra", type=int, default=6000, help="requests beyond the quota (sold-out answers)")
    p.add_argument("--late", type=int, default=3000, help="buyers after the sell-out (the sold-out phase)")
    p.add_argument("--clients", default="64,256")
    p.add_argument("--database-url", default=DEFAULT_DB)
    p.add_argument("--redis-url", default=DEFAULT_REDIS)
    p.add_argument("--no-docs", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="ORDER_FASTPATH_THREADS per worker")
    p.add_argument("--server", choices=["serve", "uvicorn"], default="serve")
    p.add_argument("--repeat", type=int, default=3, help="gated sales per concurrency (the median is reported)")
    p.add_argument("--only", choices=["gated", "baseline", "trivial"], action="append")
    p.add_argument(
        "--paced",
        default="100,400",
        help="after each gated sale, on the same server: ACCEPTED,SOLD_OUT requests/s at a fixed rate (open "
        "loop, below saturation) for --paced-seconds each; 0 skips",
    )
    p.add_argument("--paced-seconds", type=float, default=15.0)
    p.add_argument(
        "--side-by-side",
        type=int,
        default=3,
        help="with --risk both: rounds of the paced phase with a rules-on and a rules-off server up at once, "
        "their requests interleaved (0 skips)",
    )
    p.add_argument(
        "--risk",
        choices=["on", "off", "both"],
        default="both",
        help="the risk rules (FRAUD_RULES) on the server; both: every gated round is one sale with the rules on "
        "and one with them off, each on a fresh server, in alternating order",
    )
    args = p.parse_args()
    command = "python -m bench.flash_sale.run " + " ".join(sys.argv[1:])
    env = setup_env(args)
    if args.threads:
        env["ORDER_FASTPATH_THREADS"] = str(args.threads)
    sys.path.insert(0, str(ROOT))
    prepare_database(args)
    import django

    django.setup()
    dbname = args.database_url.rsplit("/", 1)[1]
    arms = ("on", "off") if args.risk == "both" else (args.risk,)
    results: dict[str, list] = {"trivial": [], "gated": [], "baseline": [], "risk": []}
    only = args.only or ["trivial", "gated", "baseline"]

    rates = [float(x) for x in args.paced.split(",")] if args.paced not in ("", "0") else []

    def sale_on(arm: str, c: int) -> dict:
        with serving(env, arm, args.workers, args.server) as (port, pid):
            out = {**sale("/api/v1/orders", port, c, args.quota, args.extra, dbname, args.late, pid), "arm": arm}
            if rates:
                out.update(paced("/api/v1/orders", port, rates[0], rates[1], args.paced_seconds))
            return out

    for c in [int(x) for x in args.clients.split(",")]:
        if "trivial" in only:
            with serving(env, arms[0], args.workers, args.server) as (port, _pid):
                results["trivial"].append(trivial(port, c, 5))
        if "gated" in only:
            sales = []
            for rnd in range(args.repeat):
                # Alternate which arm goes first, so a machine that drifts (other work, a growing
                # database) weighs on both arms alike.
                for arm in arms if rnd % 2 == 0 else arms[::-1]:
                    sales.append(sale_on(arm, c))
                    _progress(sales[-1])
            by_arm = {arm: [s for s in sales if s["arm"] == arm] for arm in arms}
            results["gated"].append(median_of(by_arm[arms[0]]))
            if args.risk == "both":
                results["risk"].append(
                    {
                        "clients": c,
                        "on": median_of(by_arm["on"]),
                        "off": median_of(by_arm["off"]),
                        "on_runs": by_arm["on"],
                        "off_runs": by_arm["off"],
                        "sales": sales,
                        "same_bodies": len({s["bodies"] for s in sales}) == 1,
                    }
                )
        if "baseline" in only:
            with serving(env, arms[0], args.workers, args.server) as (port, pid):
                results["baseline"].append(
                    sale("/bench/baseline/orders", port, c, args.quota, args.extra, dbname, args.late, pid)
                )
    side: list[dict] = []
    if results["risk"] and rates and args.side_by_side:
        for rnd in range(args.side_by_side):
            side.append(side_by_side(env, args, rnd))
            print(f"side by side, round {rnd + 1}: {json.dumps(side[-1], default=str)}", flush=True)
    guard = None
    if results["risk"]:
        from bench.flash_sale.risk import guard_cost, hold_cost, render_risk

        _token, listing, _m, _w = make_fixture(quota=10, limit=1)
        guard = guard_cost(listing, first=0, n=5000)
        _token, hold_off, _m, _w = make_fixture(quota=5000, limit=1)
        _token, hold_on, _m, _w = make_fixture(quota=5000, limit=1)
        guard["hold"] = hold_cost(hold_off, hold_on, first=0, n=5000)  # type: ignore[assignment]
        guard["side"] = side  # type: ignore[assignment]
        risk_report = render_risk(results["risk"], guard, args, command)
        print(risk_report)
        if not args.no_docs:
            title = "Risk rules on vs off (`bench/flash_sale --risk both`)"
            write_docs(risk_report, marker="flash_sale_risk", title=title)
    if args.only:
        print(json.dumps({**results, "guard": guard}, indent=1, default=str))
        return
    report = render(results, args)
    print(report)
    print(json.dumps({**results, "guard": guard}, indent=1, default=str))
    if not args.no_docs:
        write_docs(report)


def _progress(s: dict) -> None:
    print(
        f"{s['clients']} clients, rules {s['arm']}: accepted {s['accepted_per_s']:.0f}/s "
        f"p99 {s['accepted_p99_ms']:.0f} ms, sold out {s['sold_out_per_s']:.0f}/s "
        f"p99 {s['sold_out_p99_ms']:.1f} ms, other {s['other'] or 'none'}, load {s['loadavg']:.1f}"
        + (
            f"; paced: accepted p50/p99 {s['paced_accepted_p50_ms']:.1f}/{s['paced_accepted_p99_ms']:.1f} ms, "
            f"sold out p50/p99 {s['paced_sold_out_p50_ms']:.2f}/{s['paced_sold_out_p99_ms']:.2f} ms, "
            f"other {s['paced_other'] or 'none'}"
            if "paced_accepted_p99_ms" in s
            else ""
        )
        + (", REDIS FLUSHED BY ANOTHER PROCESS DURING THE SALE" if s["redis_flushed"] else ""),
        flush=True,
    )


@contextlib.contextmanager
def serving(env: dict[str, str], arm: str, workers: int, server: str) -> Iterator[tuple[int, int]]:
    """A fresh server with the risk rules on or off (``FRAUD_RULES``) for the block's duration;
    its port and process id."""
    port = free_port()
    proc = start_server({**env, "FRAUD_RULES": "1" if arm == "on" else "0"}, workers, port, server)
    try:
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def render(r: dict, args: argparse.Namespace) -> str:
    lines = [
        f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
        f"{args.workers} uvicorn workers ({'livecommerce.serve' if args.server == 'serve' else 'uvicorn --workers'}), "
        f"PostgreSQL + Redis on the same box, load generator on the same box (1 core). "
        f"Quota {args.quota} units, {args.quota + args.extra} buyers, 1 unit each; gated figures are the median "
        f"of {args.repeat} sales with the risk rules {'on' if args.risk != 'off' else 'off'}, the baseline one sale.",
        "",
        "| clients | path | accepted orders/s | sold-out answers/s | whole sale (s) | p50 ms | p99 ms "
        "| accepted p50 / p99 ms | sold-out p99 ms | DB xacts per sold-out |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t, g, b in zip(r["trivial"], r["gated"], r["baseline"], strict=True):
        lines.append(
            f"| {t['clients']} | trivial `/healthz` (ceiling) | — | {t['rps']:.0f} req/s | — | "
            f"{t['p50_ms']:.1f} | {t['p99_ms']:.1f} | — | — | — |"
        )
        for name, x in (("gated (this system)", g), ("baseline (select_for_update)", b)):
            lines.append(
                f"| {x['clients']} | {name} | {x['accepted_per_s']:.0f} | {x['sold_out_per_s']:.0f} | "
                f"{x['whole_sale_s']:.2f} | {x['p50_ms']:.1f} | {x['p99_ms']:.1f} | "
                f"{x['accepted_p50_ms']:.0f} / {x['accepted_p99_ms']:.0f} | {x['sold_out_p99_ms']:.1f} | "
                f"{x['db_xacts_per_sold_out']:.2f} |"
            )
        acc = g["accepted_per_s"] / max(b["accepted_per_s"], 1e-9)
        so = g["sold_out_per_s"] / max(b["sold_out_per_s"], 1e-9)
        whole = b["whole_sale_s"] / max(g["whole_sale_s"], 1e-9)
        ratio = f"| {g['clients']} | **ratios** gated/baseline | {acc:.2f}x | {so:.2f}x | {whole:.2f}x faster |"
        lines.append(ratio + " | | | | |")
    for g in r["gated"]:
        lines.append(
            f"\nGated at {g['clients']} clients: median of {g['runs']} sales; accepted orders/s per sale "
            f"{g['accepted_per_s_runs']}, p99 ms per sale {g['p99_ms_runs']}; per sale accepted {g['accepted']}, "
            f"sold out {g['sold_out']}, other {g['other'] or 'none'}; most DB transactions per sold-out answer in "
            f"any sale {g['db_xacts_per_sold_out_max']:.2f}."
        )
    return "\n".join(lines)


def write_docs(report: str, marker: str = "flash_sale", title: str = "Flash sale (`bench/flash_sale`)") -> None:
    """Replace the block between ``<!-- {marker}:start -->`` and its end in docs/performance.md
    (appended under ``title`` the first time); the text around it is left as written."""
    path = ROOT / "docs" / "performance.md"
    text = path.read_text() if path.exists() else "# Performance\n"
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    block = f"{start}\n{report}\n{end}"
    if start in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text += f"\n## {title}\n\n{block}\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
