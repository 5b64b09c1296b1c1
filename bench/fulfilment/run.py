"""Batch-shipping benchmark (issue 13) against PostgreSQL + Redis and the Kuaidi100 simulator.

    .venv/bin/python -m bench.fulfilment.run [--orders 10000] [--naive 500] \
        [--database-url postgres://...] [--redis-url redis://.../N]

1. **The batch**: ``--orders`` confirmed orders of one show (placed through ``order_place``, paid
   and confirmed through the state machine; about 1 buyer in 14 orders twice to one address, so
   parcels merge) are shipped by one batch (``shipping.batch_run``, as the worker runs it): screen,
   merge into parcels, a waybill per parcel from the simulator over real sockets (8 in flight),
   ``confirmed -> shipped`` through the state machine (ledger, status-page push, webhooks and
   the rest of the after-commit hooks), then the labels PDF and the picking list. Wall time,
   orders per second, database queries per order (counted by a connection wrapper).
2. **The naive loop**, measured in the same run on ``--naive`` other orders of the show: what a
   person's script does, one order after another: a waybill call, the transition, a one-page
   label PDF each.

Writes the table into docs/performance.md (marker ``fulfilment``). The simulator runs in this
process. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class QueryCounter:
    """``connection.execute_wrapper``: counts the queries run through it."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.n += 1
        return execute(sql, params, many, context)


def setup(args: argparse.Namespace) -> None:
    os.environ.update(
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        DJANGO_SETTINGS_MODULE="livecommerce.settings.local",
        LC_SECRETS_KEYS=os.environ.get("LC_SECRETS_KEYS") or base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    )
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
    import django

    django.setup()


def fixture(n: int, base_url: str) -> tuple[Any, Any, list[str]]:
    """A merchant with a default Kuaidi100 account on the simulator and ``n`` confirmed orders of
    one show; returns (merchant, account, order public ids in placement order)."""
    from apps.catalog import services as catalog
    from apps.fulfilment import services as fulfilment
    from apps.fulfilment.models import CarrierAccount
    from apps.fulfilment.simulator import DEMO_ACCOUNTS
    from apps.merchants import services as merchants
    from apps.orders.models import OrderStatus
    from apps.orders.placement.request import parse_order_request
    from apps.orders.placement.service import order_place
    from apps.orders.services.transitions import order_transition

    demo = DEMO_ACCOUNTS["kuaidi100"]
    slug = f"ship-{secrets.token_hex(4)}"
    merchant = merchants.merchant_create(slug=slug, name="西湖茶庄")
    account = fulfilment.carrier_account_create(
        merchant=merchant,
        carrier="kuaidi100",
        app_id=demo["customer"],
        app_key=demo["key"],
        app_secret=demo["secret"],
        push_salt=demo["salt"],
        express="ZTO",
        sender={"name": "西湖茶庄仓", "mobile": "13800000001", "province": "浙江省", "city": "杭州市",
                "district": "余杭区", "detail": "文一西路 1 号"},
        api_base_url=base_url,
        is_default=True,
    )  # fmt: skip
    show = catalog.session_create(merchant=merchant, title="bench", streamer="b", platforms=["storefront"],
                                  scheduled_at=None)  # fmt: skip
    product = catalog.product_create(merchant=merchant, name="西湖龙井 明前特级")
    sku = catalog.sku_create(merchant=merchant, product=product, code="LJ-001", name="250g", price=Decimal("268"),
                             on_hand=n + 10)  # fmt: skip
    listing = catalog.listing_open(
        listing=catalog.listing_create(merchant=merchant, session=show, sku=sku, price=Decimal("9.90"), quota=n,
                                       per_buyer_limit=2)
    )  # fmt: skip
    ids: list[str] = []
    started = time.perf_counter()
    for i in range(n):
        buyer = i - 1 if i % 14 == 13 else i  # every 14th order: the previous buyer again, same address
        phone = f"139{buyer:08d}"
        body = {
            "listing": listing.pk,
            "quantity": 1,
            "buyer": {"external_id": f"b{buyer}", "name": f"买家{buyer}", "phone": phone},
            "shipping_address": {"name": f"买家{buyer}", "phone": phone, "province": "浙江省", "city": "杭州市",
                                 "district": "西湖区", "detail": f"文三路{buyer % 500 + 1}号{buyer}室"},
        }  # fmt: skip
        placed = order_place(req=parse_order_request(body), merchant_id=merchant.pk, idempotency_key=f"k{i}")
        public_id = placed.order.public_id
        order_transition(public_id=public_id, to=OrderStatus.PAID, actor="payment", reason="paid")
        order_transition(public_id=public_id, to=OrderStatus.CONFIRMED, actor="auto-confirm", reason="bench")
        ids.append(public_id)
        if (i + 1) % 1000 == 0:
            print(f"  {i + 1} orders placed, paid and confirmed ({time.perf_counter() - started:.0f} s)", flush=True)
    return merchant, CarrierAccount.objects.get(pk=account.pk), ids


def run_batch(merchant: Any, ids: list[str]) -> dict[str, Any]:
    from django.db import connection

    from apps.fulfilment import shipping
    from apps.fulfilment.models import Parcel, ShipBatch, ShipBatchItem

    batch = shipping.batch_create(merchant_id=merchant.pk, actor="bench", orders=ids)  # its queued task is not run
    counter = QueryCounter()
    t0 = time.perf_counter()
    with connection.execute_wrapper(counter):
        done = shipping.batch_run(batch.pk, enqueue_retry=False)
    wall = time.perf_counter() - t0
    assert done.status == ShipBatch.Status.DONE, done.status
    shipped = ShipBatchItem.objects.filter(batch=batch, result="shipped").count()
    parcels = Parcel.objects.filter(pk__in=ShipBatchItem.objects.filter(batch=batch).values("parcel_id")).count()
    return {"orders": len(ids), "shipped": shipped, "parcels": parcels, "wall": wall,
            "rate": shipped / wall, "queries": counter.n / len(ids)}  # fmt: skip


def run_naive(account: Any, ids: list[str]) -> dict[str, Any]:
    """One order after another: a waybill, the transition, a one-page label."""
    from django.db import connection
    from django.utils import timezone

    from apps.fulfilment.carriers.base import Party, WaybillRequest
    from apps.fulfilment.documents import LabelData, render_labels
    from apps.orders.models import Order, OrderStatus
    from apps.orders.services.transitions import order_transition

    counter = QueryCounter()
    client = account.client()
    t0 = time.perf_counter()
    with connection.execute_wrapper(counter):
        for public_id in ids:
            order = Order.objects.get(public_id=public_id)
            a = order.shipping_address
            receiver = Party(name=a["name"], mobile=a["phone"], province=a["province"], city=a["city"],
                             district=a["district"], detail=a["detail"])  # fmt: skip
            waybill = client.create_waybill(
                WaybillRequest(order_code=f"N{public_id}", express="ZTO", sender=account.sender, receiver=receiver,
                               items=(("西湖龙井 明前特级 250g", 1),))
            )  # fmt: skip
            order_transition(order=order, to=OrderStatus.SHIPPED, actor="script", reason="naive",
                             carrier="中通快递", tracking_number=waybill.waybill_no)  # fmt: skip
            render_labels([LabelData(waybill_no=waybill.waybill_no, express="ZTO", routing_code=waybill.routing_code,
                                     sender=account.sender, receiver=receiver, goods=(("西湖龙井", 1),),
                                     parcel_code=f"N{public_id}", order_codes=(public_id,), merchant_name="西湖茶庄",
                                     printed_at=timezone.now())])  # fmt: skip
    wall = time.perf_counter() - t0
    client.close()
    return {"orders": len(ids), "wall": wall, "rate": len(ids) / wall, "queries": counter.n / len(ids)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=10_000, help="orders in the batch")
    parser.add_argument("--naive", type=int, default=500, help="orders shipped one by one (the baseline)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    if not args.database_url or not args.redis_url:
        parser.error("a PostgreSQL database and a Redis db: --database-url and --redis-url (or the environment's)")
    setup(args)
    from apps.fulfilment.simulator import DEMO_ACCOUNTS, Kuaidi100Simulator

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0]
    with Kuaidi100Simulator(**DEMO_ACCOUNTS["kuaidi100"]) as sim:
        merchant, account, ids = fixture(args.orders + args.naive, sim.base_url)
        naive_ids, batch_ids = ids[: args.naive], ids[args.naive :]
        naive = run_naive(account, naive_ids)
        print(f"naive loop: {naive['orders']} orders in {naive['wall']:.1f} s, {naive['rate']:.0f}/s, "
              f"{naive['queries']:.1f} queries per order", flush=True)  # fmt: skip
        batch = run_batch(merchant, batch_ids)
        print(f"batch: {batch['shipped']} of {batch['orders']} orders shipped in {batch['parcels']} parcels, "
              f"{batch['wall']:.1f} s, {batch['rate']:.0f}/s, {batch['queries']:.1f} queries per order",
              flush=True)  # fmt: skip
    report = (
        f"Run: {when}, {os.cpu_count()} cores (load average {load:.1f} at the start). Command: `python -m "
        f"bench.fulfilment.run --orders {args.orders} --naive {args.naive}` (PostgreSQL + Redis; the Kuaidi100 "
        "simulator in the bench process, over real sockets). Orders of one show, confirmed; every 14th is the "
        "previous buyer's second order to the same address (merged into one parcel).\n\n"
        "| how | orders | parcels | wall s | orders/s | queries per order |\n|---|---|---|---|---|---|\n"
        f"| one batch (`shipping.batch_run`: waybills 8 in flight, shipped, labels PDF, picking list) | "
        f"{batch['orders']} | {batch['parcels']} | {batch['wall']:.1f} | {batch['rate']:.0f} | "
        f"{batch['queries']:.1f} |\n"
        f"| naive loop (one waybill, one transition, one label PDF per order) | {naive['orders']} | "
        f"{naive['orders']} | {naive['wall']:.1f} | {naive['rate']:.0f} | {naive['queries']:.1f} |\n\n"
        f"Batch / naive: {batch['rate'] / naive['rate']:.1f}× the orders per second. Target: ≥ 200 orders/s."
    )
    print(report)
    if not args.no_docs:
        from bench.flash_sale.run import write_docs

        write_docs(report, marker="fulfilment", title="Batch shipping (`bench/fulfilment`)")


if __name__ == "__main__":
    main()
