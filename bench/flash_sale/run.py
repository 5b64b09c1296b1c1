"""Flash-sale benchmark against PostgreSQL + Redis, served as in production (uvicorn workers).

    .venv/bin/python -m bench.flash_sale.run [--workers 2] [--quota 1000] [--extra 6000]

For each concurrency (64, 256) in one run: a trivial endpoint (the ceiling), the gated order
path (Redis Lua gate + row-locked truth) and the baseline (select_for_update, no gate). Prints
a table and writes it into docs/performance.md. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/livecommerce_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/4"
WARM_ORDERS = 400


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


def order_requests(path: str, token: str, listing: int, n: int, host: str, prefix: str = "u") -> list[bytes]:
    from bench.flash_sale.loadgen import build

    out = []
    for i in range(n):
        body = json.dumps(
            {
                "listing": listing,
                "quantity": 1,
                "buyer": {"external_id": f"{prefix}{i}", "name": "B", "phone": "13800000000"},
                "shipping_address": {
                    "name": "B",
                    "phone": "13800000000",
                    "province": "浙江省",
                    "city": "杭州市",
                    "district": "西湖区",
                    "detail": "1号",
                },
            }
        ).encode()
        out.append(
            build("POST", path, host, body, {"Authorization": f"Token {token}", "Idempotency-Key": f"{prefix}-k{i}"})
        )
    return out


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


def sale(path: str, port: int, c: int, quota: int, extra: int, dbname: str) -> dict:
    from bench.flash_sale import loadgen

    host = f"127.0.0.1:{port}"
    token, listing, _m, warm_listing = make_fixture(quota, limit=1, warm_quota=WARM_ORDERS)
    # Warm up on another listing of the same merchant, at the same concurrency: every worker's
    # threads, database connections (and their prepared statements) and caches are in use.
    warm = order_requests(path, token, warm_listing, WARM_ORDERS, host, prefix="warm")
    asyncio.run(loadgen.run("127.0.0.1", port, warm, c))
    reqs = order_requests(path, token, listing, quota + extra, host)[1:]
    x0 = pg_xacts(dbname)
    res = asyncio.run(loadgen.run("127.0.0.1", port, reqs, c))
    x1 = pg_xacts(dbname)
    accepted = res.codes.get("pending_payment", 0) + res.codes.get("201", 0)
    sold_out = res.codes.get("sold_out", 0)
    acc_window = (res.last_by_code.get("pending_payment", res.started) - res.started) or 1e-9
    so_first = res.first_by_code.get("sold_out")
    so_window = (res.last_by_code.get("sold_out", 0) - so_first) if so_first else 0
    # A pure sold-out phase: how many database transactions does it cost?
    more = order_requests(path, token, listing, 3000, host, prefix="late")
    time.sleep(1.0)  # the coalesced websocket pushes that follow the last orders (they read the database) go out
    p0 = pg_xacts(dbname)
    so = asyncio.run(loadgen.run("127.0.0.1", port, more, c))
    p1 = pg_xacts(dbname)
    return {
        "clients": c,
        "requests": len(reqs),
        "accepted": accepted,
        "sold_out": sold_out,
        "other": {k: v for k, v in res.codes.items() if k not in {"pending_payment", "sold_out", "201"}},
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
        "db_xacts_per_sold_out": (p1 - p0) / max(len(so.latencies), 1),
        "statuses": dict(res.statuses),
    }


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
)


def median_of(runs: list[dict]) -> dict:
    """Each figure's median over repeated sales (the machine is shared and noisy), with every
    run's accepted orders/s and p99 kept alongside."""
    out = dict(runs[len(runs) // 2])
    for key in MEDIAN_KEYS:
        out[key] = statistics.median(r[key] for r in runs)
    out["runs"] = len(runs)
    out["accepted_per_s_runs"] = [round(r["accepted_per_s"]) for r in runs]
    out["p99_ms_runs"] = [round(r["p99_ms"]) for r in runs]
    out["db_xacts_per_sold_out_max"] = max(r["db_xacts_per_sold_out"] for r in runs)
    out["other"] = {k: v for r in runs for k, v in r["other"].items()}
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
    p.add_argument("--clients", default="64,256")
    p.add_argument("--database-url", default=DEFAULT_DB)
    p.add_argument("--redis-url", default=DEFAULT_REDIS)
    p.add_argument("--no-docs", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="ORDER_FASTPATH_THREADS per worker")
    p.add_argument("--server", choices=["serve", "uvicorn"], default="serve")
    p.add_argument("--repeat", type=int, default=3, help="gated sales per concurrency (the median is reported)")
    p.add_argument("--only", choices=["gated", "baseline", "trivial"], action="append")
    args = p.parse_args()
    env = setup_env(args)
    if args.threads:
        env["ORDER_FASTPATH_THREADS"] = str(args.threads)
    sys.path.insert(0, str(ROOT))
    prepare_database(args)
    import django

    django.setup()
    dbname = args.database_url.rsplit("/", 1)[1]
    port = free_port()
    server = start_server(env, args.workers, port, args.server)
    results: dict[str, list] = {"trivial": [], "gated": [], "baseline": []}
    try:
        for c in [int(x) for x in args.clients.split(",")]:
            only = args.only or ["trivial", "gated", "baseline"]
            if "trivial" in only:
                results["trivial"].append(trivial(port, c, 5))
            if "gated" in only:
                runs = [sale("/api/v1/orders", port, c, args.quota, args.extra, dbname) for _ in range(args.repeat)]
                results["gated"].append(median_of(runs))
            if "baseline" in only:
                results["baseline"].append(sale("/bench/baseline/orders", port, c, args.quota, args.extra, dbname))
    finally:
        server.terminate()
        server.wait(10)
    if args.only:
        print(json.dumps(results, indent=1, default=str))
        return
    report = render(results, args)
    print(report)
    print(json.dumps(results, indent=1, default=str))
    if not args.no_docs:
        write_docs(report)


def render(r: dict, args: argparse.Namespace) -> str:
    lines = [
        f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
        f"{args.workers} uvicorn workers ({'livecommerce.serve' if args.server == 'serve' else 'uvicorn --workers'}), "
        f"PostgreSQL + Redis on the same box, load generator on the same box (1 core). "
        f"Quota {args.quota} units, {args.quota + args.extra} buyers, 1 unit each; gated figures are the median "
        f"of {args.repeat} sales, the baseline one sale.",
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


def write_docs(report: str) -> None:
    path = ROOT / "docs" / "performance.md"
    text = path.read_text() if path.exists() else "# Performance\n"
    start, end = "<!-- flash_sale:start -->", "<!-- flash_sale:end -->"
    block = f"{start}\n{report}\n{end}"
    if start in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text += f"\n## Flash sale (`bench/flash_sale`)\n\n{block}\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
