"""Websocket fan-out benchmark: one daphne process on PostgreSQL + Redis.

    .venv/bin/python -m bench.ws_fanout.run [--subscribers 1000] [--max-subscribers 2000]

1. Memory: N storefront viewers subscribe to one listing's stock (``/ws/listings/<id>/``); the
   server's RSS is read at 250, 500, 1,000 and 2,000 subscribers.
2. Broadcast: a show event published to the listing's group reaches every subscriber; delay from
   publish to receipt, p50 / p99 over all receipts (at 1,000 and at 2,000 subscribers).
3. Own order under a flash sale: while a sale posts orders to the same server as fast as C clients
   can (and 1,000 viewers watch the stock), a buyer's order is paid and its status page socket
   waits for ``order.updated``: delay from the payment's commit to the socket (payment applied in
   this process through ``payment_receive``), and from sending the signed notification over HTTP
   to the socket.

Prints a table and writes it into docs/performance.md under "Websocket fan-out". Every loop is
bounded in count and time; all traffic stays on 127.0.0.1. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import websockets

from bench.ws_fanout.viewer import Viewer

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/livecommerce_ws_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/2"
STEPS = (250, 500, 1000, 2000)


# --- setup -----------------------------------------------------------------------------------------
def setup_env(args: argparse.Namespace) -> dict[str, str]:
    from bench.flash_sale.run import setup_env as flash_sale_env

    return flash_sale_env(args, settings_module="bench.ws_fanout.settings")


def prepare(args: argparse.Namespace) -> None:
    from bench.flash_sale.run import prepare_database

    prepare_database(args)
    import django

    django.setup()
    from apps.core.redis import get_client

    get_client().flushdb()


def make_show(sale_quota: int, own_quota: int) -> dict:
    from decimal import Decimal

    from apps.catalog import services as catalog
    from apps.merchants import services as merchants

    slug = f"wsbench-{secrets.token_hex(4)}"
    m = merchants.merchant_create(slug=slug, name=slug)
    _, token = merchants.api_token_create(merchant=m, name="bench")
    show = catalog.session_create(merchant=m, title="bench", streamer="b", platforms=["storefront"], scheduled_at=None)
    out = {"token": token, "merchant": m.pk, "session": show.pk}
    for key, quota in (("sale", sale_quota), ("own", own_quota)):
        product = catalog.product_create(merchant=m, name=key)
        sku = catalog.sku_create(
            merchant=m, product=product, code=key.upper(), name="", price=Decimal("99"), on_hand=quota
        )
        listing = catalog.listing_create(
            merchant=m, session=show, sku=sku, price=Decimal("9.90"), quota=quota, per_buyer_limit=1
        )
        catalog.listing_open(listing=listing)
        out[key] = listing.pk
    return out


SERVERS = {
    "daphne": ["-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", "livecommerce.asgi:application"],
    "uvicorn": [
        "-m", "uvicorn", "livecommerce.asgi:application", "--host", "127.0.0.1", "--port", "{port}",
        "--no-access-log", "--log-level", "warning", "--loop", "uvloop", "--http", "httptools",
        "--ws", "websockets", "--lifespan", "off",
    ],
}  # fmt: skip


def start_server(kind: str, env: dict[str, str], port: int) -> subprocess.Popen:
    """One server process (no workers: the point is what one process holds)."""
    proc = subprocess.Popen(
        [sys.executable, *(a.replace("{port}", str(port)) for a in SERVERS[kind])],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    from bench.flash_sale.run import wait_healthy

    return wait_healthy(proc, port, kind)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    ys = sorted(xs)
    return ys[min(len(ys) - 1, int(p / 100 * len(ys)))]


# --- subscribers ------------------------------------------------------------------------------------
async def connect_viewers(port: int, path: str, n: int, sink: dict, batch: int = 100) -> list[Viewer]:
    viewers = [Viewer(port, path, sink) for _ in range(n)]
    for i in range(0, n, batch):
        await asyncio.gather(*(v.start() for v in viewers[i : i + batch]))
    return viewers


async def broadcast(group: str, rounds: int, expect: int, sink: dict) -> dict:
    """Publish ``rounds`` show events through the app's publisher; delays of every receipt."""
    from apps.core import events

    sink.clear()
    base = int(time.time() * 1000)
    for k in range(rounds):
        events.publish(group, {"type": "show.event", "version": base + k, "sent_at": time.time()})
        await asyncio.sleep(0.5)
    deadline = time.time() + 10
    while time.time() < deadline and sum(len(v) for v in sink.values()) < rounds * expect:
        await asyncio.sleep(0.1)
    delays = [d for v in sink.values() for d in v]
    last = [max(v) for v in sink.values() if v]
    return {
        "received": len(delays),
        "expected": rounds * expect,
        "p50": pct(delays, 50) * 1000,
        "p99": pct(delays, 99) * 1000,
        "last_p50": statistics.median(last) * 1000 if last else float("nan"),
    }


# --- own order under sale ------------------------------------------------------------------------------
def _place_own(listing: int, i: int):  # type: ignore[no-untyped-def]
    from apps.orders.placement.links import status_token
    from apps.orders.placement.request import parse_order_request
    from apps.orders.placement.service import order_place

    req = parse_order_request(
        {
            "listing": listing,
            "quantity": 1,
            "buyer": {"external_id": f"own-{i}-{secrets.token_hex(3)}", "name": "B", "phone": "13800000000"},
            "shipping_address": {
                "name": "B",
                "phone": "13800000000",
                "province": "浙江省",
                "city": "杭州市",
                "district": "西湖区",
                "detail": "1号",
            },
        }
    )
    order = order_place(req=req, merchant_id=None, idempotency_key=None, channel="storefront").order
    return order, status_token(order.public_id)


def _notice(order) -> tuple[bytes, str, str]:  # type: ignore[no-untyped-def]
    from apps.orders.services import payments

    body = json.dumps(
        {
            "order": order.public_id,
            "transaction_id": f"bench-{order.public_id}",
            "amount": str(order.total),
            "paid_at": "2026-11-24T20:00:00+08:00",
        }
    ).encode()
    ts = str(int(time.time()))
    return body, ts, payments.sign(body, ts)


def _pay_in_process(order) -> float:  # type: ignore[no-untyped-def]
    from django.db import close_old_connections

    from apps.orders.services import payments

    body, ts, sig = _notice(order)
    payments.payment_receive(body=body, timestamp=ts, signature=sig)
    committed = time.time()  # the pushes were queued at commit, just before this returned
    close_old_connections()
    return committed


def _pay_over_http(port: int, order) -> float:  # type: ignore[no-untyped-def]
    body, ts, sig = _notice(order)
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/payments/notify",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "X-Timestamp": ts, "X-Signature": sig},
    )
    sent = time.time()
    with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 - loopback
        assert r.status == 200, r.status
    return sent


async def own_orders(port: int, http_port: int, listing: int, samples: int) -> dict:
    """Buyers' own orders, placed and watched before the sale starts; each is paid while the sale
    runs (in turn through ``payment_receive`` here, and as a signed notification over HTTP)."""
    watched = []
    for i in range(samples):
        order, token = await asyncio.to_thread(_place_own, listing, i)
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/orders/{order.public_id}/?t={token}")
        snap = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert snap["type"] == "order.snapshot", snap
        watched.append((order, ws))
    return {"watched": watched, "http_port": http_port}


async def pay_watched(own: dict) -> dict:
    commit, notify = [], []
    for i, (order, ws) in enumerate(own["watched"]):
        if own["sale"].poll() is not None:
            break  # only payments made while the sale runs count
        over_http = i % 2 == 1
        payer = (
            asyncio.to_thread(_pay_over_http, own["http_port"], order)
            if over_http
            else asyncio.to_thread(_pay_in_process, order)
        )
        pay = asyncio.create_task(payer)
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if msg["type"] == "order.updated" and msg["order"]["status"] == "paid":
                seen = time.time()
                break
        start = await pay
        (notify if over_http else commit).append(seen - start)
    for _, ws in own["watched"]:
        await ws.close()
    return {"commit": commit, "notify": notify}


def start_sale(env: dict[str, str], port: int, show: dict, args: argparse.Namespace) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.ws_fanout.sale", "--port", str(port), "--token", show["token"],
         "--listing", str(show["sale"]), "--requests", str(args.sale_orders), "--concurrency",
         str(args.sale_concurrency), "--seconds", str(args.sale_seconds), "--prefix", f"s{port}-"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


async def under_sale(args, env, show, port: int, http_port: int) -> dict:  # type: ignore[no-untyped-def]
    own = await own_orders(port, http_port, show["own"], args.own_samples)
    own["sale"] = sale = start_sale(env, http_port, show, args)
    await asyncio.sleep(2)  # the sale is under way
    delays = await pay_watched(own)
    stdout, _ = await asyncio.to_thread(sale.communicate, None, args.sale_seconds + 60)
    return {**delays, "sale": json.loads(stdout.strip().splitlines()[-1])}


# --- main ----------------------------------------------------------------------------------------------
async def measure(args: argparse.Namespace, env: dict[str, str], kind: str, proc, port: int) -> dict:  # type: ignore[no-untyped-def]
    show = await asyncio.to_thread(make_show, 2 * args.sale_orders, 2 * args.own_samples + 10)
    path = f"/ws/listings/{show['sale']}/"
    group = f"listing.{show['sale']}"
    sink: dict[int, list[float]] = {}
    out: dict = {"rss": {}, "broadcast": {}, "own": {}, "load": os.getloadavg()[0]}
    viewers = await connect_viewers(port, path, 10, sink)
    await asyncio.sleep(1)
    out["rss"][0] = rss_mb(proc.pid)
    for step in [s for s in STEPS if s <= args.max_subscribers]:
        viewers += await connect_viewers(port, path, step - len(viewers), sink)
        await asyncio.sleep(1)
        out["rss"][step] = rss_mb(proc.pid)
        print(f"  {step} subscribers: RSS {out['rss'][step]:.1f} MB", flush=True)
        if step == args.subscribers or step == args.max_subscribers:
            out["broadcast"][step] = await broadcast(group, args.broadcasts, len(viewers), sink)
            print(f"  broadcast to {step}: {out['broadcast'][step]}", flush=True)
    await asyncio.gather(*(v.stop() for v in viewers))
    # the own-order phase: the nominal audience watches the stock from its own process
    hold = 4 * args.sale_seconds + 120
    audience = subprocess.Popen(
        [sys.executable, "-m", "bench.ws_fanout.viewer", str(port), path, str(args.subscribers), str(hold)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert (await asyncio.to_thread(audience.stdout.readline)).strip() == "ready"
        out["own"]["same"] = await under_sale(args, env, show, port, port)
        print(f"  own orders, sale on the same process: {pct(out['own']['same']['commit'], 99) * 1000:.0f} ms p99")
        from bench.flash_sale.run import free_port

        http_port = free_port()
        http = start_server("uvicorn", env, http_port)  # the production layout: HTTP on its own worker
        try:
            out["own"]["separate"] = await under_sale(args, env, show, port, http_port)
        finally:
            http.terminate()
            http.wait(10)
    finally:
        audience.terminate()
        audience.wait(10)
    out["load"] = max(out["load"], os.getloadavg()[0])
    return out


def render(kind: str, r: dict, args: argparse.Namespace) -> str:
    rss = r["rss"]
    base = rss[0]
    lines = [
        f"### One {kind} process",
        "",
        f"Machine load average during the run: up to {r['load']:.1f} on 2 cores (other work included).",
        "",
        "| subscribers | server RSS | per subscriber |",
        "| ---: | ---: | ---: |",
        f"| 10 (warm) | {base:.1f} MB | |",
    ]
    for n, mb in rss.items():
        if n:
            lines.append(f"| {n:,} | {mb:.1f} MB | {(mb - base) * 1024 / (n - 10):.0f} KB |")
    lines += ["", "| delay | p50 | p99 | note |", "| --- | ---: | ---: | --- |"]
    for n, b in r["broadcast"].items():
        lines.append(
            f"| show event broadcast to {n:,} subscribers, publish → received | {b['p50']:.0f} ms | {b['p99']:.0f} ms "
            f"| {args.broadcasts} events, {b['received']:,}/{b['expected']:,} receipts; last subscriber p50 "
            f"{b['last_p50']:.0f} ms |"
        )
    for layout, own in r["own"].items():
        sale = own["sale"]
        where = (
            f"the sale ({sale['rps']:.0f} orders/s, {args.sale_concurrency} clients, p99 {sale['p99_ms']:.0f} ms) "
            + ("on the same process" if layout == "same" else "on a separate HTTP worker (uvicorn)")
            + f", {args.subscribers:,} viewers watching"
        )
        lines.append(
            f"| own order: payment commit → status socket | {pct(own['commit'], 50) * 1000:.0f} ms "
            f"| {pct(own['commit'], 99) * 1000:.0f} ms | {len(own['commit'])} orders; {where} |"
        )
        lines.append(
            f"| own order: signed notification sent over HTTP → status socket | "
            f"{pct(own['notify'], 50) * 1000:.0f} ms | {pct(own['notify'], 99) * 1000:.0f} ms "
            f"| {len(own['notify'])} orders; same; includes the request's wait behind the sale |"
        )
    answers = {k: dict(v["sale"]["codes"]) for k, v in r["own"].items()}
    lines += ["", f"Sale answers: `{json.dumps(answers, ensure_ascii=False)}`.", ""]
    return "\n".join(lines)


def preamble() -> str:
    return (
        "One server process on PostgreSQL + Redis (`RedisPubSubChannelLayer`), on this 2-core machine; the "
        "subscribers (a bare asyncio websocket client, `viewer.py`, all in one process) and the sale's load "
        "generator run on the same machine, so every delay includes the client's own time to read the frames. "
        "Subscribers are storefront "
        f"viewers on `/ws/listings/<id>/`. Run: `python -m bench.ws_fanout.run` ({time.strftime('%Y-%m-%d')}).\n"
    )


def write_docs(report: str) -> None:
    path = ROOT / "docs" / "performance.md"
    text = path.read_text() if path.exists() else "# Performance\n"
    start, end = "<!-- ws_fanout:start -->", "<!-- ws_fanout:end -->"
    block = f"{start}\n{report}\n{end}"
    if start in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + f"\n\n## Websocket fan-out (`bench/ws_fanout`)\n\n{block}\n"
    path.write_text(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", default=DEFAULT_DB)
    p.add_argument("--redis-url", default=DEFAULT_REDIS)
    p.add_argument("--subscribers", type=int, default=1000)
    p.add_argument("--max-subscribers", type=int, default=2000)
    p.add_argument("--broadcasts", type=int, default=20)
    p.add_argument("--own-samples", type=int, default=200)
    p.add_argument("--sale-orders", type=int, default=30000)
    p.add_argument("--sale-concurrency", type=int, default=16)
    p.add_argument("--sale-seconds", type=float, default=30.0)
    p.add_argument("--servers", default="daphne,uvicorn", help="comma-separated: daphne, uvicorn")
    p.add_argument("--no-docs", action="store_true", help="print only; leave docs/performance.md alone")
    args = p.parse_args()
    env = setup_env(args)
    prepare(args)
    from bench.flash_sale.run import free_port

    sections = [preamble()]
    for kind in [k.strip() for k in args.servers.split(",") if k.strip()]:
        port = free_port()
        proc = start_server(kind, env, port)
        try:
            print(f"{kind} pid {proc.pid} on :{port}", flush=True)
            result = asyncio.run(measure(args, env, kind, proc, port))
        finally:
            proc.terminate()
            proc.wait(10)
        sections.append(render(kind, result, args))
        print(sections[-1], flush=True)
    report = "\n".join(sections).rstrip("\n")
    print(report)
    if not args.no_docs:
        write_docs(report)


if __name__ == "__main__":
    main()
