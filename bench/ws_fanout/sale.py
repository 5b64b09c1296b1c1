"""The flash-sale load for the fan-out bench, in its own process: C keep-alive clients posting
orders for one listing through the API until N requests or the time limit. Prints JSON."""

from __future__ import annotations

import argparse
import asyncio
import json

from bench.flash_sale.loadgen import run
from bench.flash_sale.run import order_requests


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--listing", type=int, required=True)
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--prefix", default="sale", help="buyer ids and Idempotency-Keys: unique per run")
    a = p.parse_args()
    reqs = order_requests("/api/v1/orders", a.token, a.listing, a.requests, f"127.0.0.1:{a.port}", prefix=a.prefix)
    res = asyncio.run(run("127.0.0.1", a.port, reqs, a.concurrency, duration=a.seconds))
    print(
        json.dumps(
            {
                "requests": len(res.latencies),
                "seconds": res.seconds,
                "rps": res.rps,
                "codes": dict(res.codes),
                "p50_ms": res.median_ms(),
                "p99_ms": res.pct(99),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
