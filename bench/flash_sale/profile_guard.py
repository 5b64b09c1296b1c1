"""Where a sold-out answer's CPU goes, with the risk rules on and off: one server worker.

    .venv/bin/python -m bench.flash_sale.profile_guard [--rounds 2] [--requests 6000] [--clients 64]

For each round, one sale with the rules on and one with them off (alternating which goes first),
each on a fresh single-worker ``livecommerce.serve`` running ``profile_app``: a listing of one
unit is sold out, then ``--requests`` new buyers (``risk.buyer_body``) ask for it. Prints, per
sold-out answer, the worker process's CPU, Redis's CPU, and the thread CPU of each step of the
order path (``profile_app``). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.flash_sale import run as bench


def one(env: dict[str, str], arm: str, requests: int, clients: int, out: Path) -> dict:
    from bench.flash_sale import loadgen

    port = bench.free_port()
    cmd = [sys.executable, "-m", "livecommerce.serve", "--workers", "1", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--app", "bench.flash_sale.profile_app:application"]
    server_env = {**env, "FRAUD_RULES": "1" if arm == "on" else "0", "PROFILE_OUT": str(out)}
    proc = bench.wait_healthy(subprocess.Popen(cmd, cwd=bench.ROOT, env=server_env), port, "server")
    try:
        host = f"127.0.0.1:{port}"
        token, listing, _m, warm = bench.make_fixture(quota=1, limit=1, warm_quota=bench.WARM_ORDERS)
        assert warm is not None
        path = "/api/v1/orders"
        warmup = bench.order_requests(path, token, warm, bench.WARM_ORDERS, host, "warm")
        asyncio.run(loadgen.run("127.0.0.1", port, warmup, clients))
        first = bench.WARM_ORDERS
        asyncio.run(loadgen.run("127.0.0.1", port, bench.order_requests(path, token, listing, 2, host, first=first), 1))
        reqs = bench.order_requests(path, token, listing, requests, host, "late", first=first + 2)
        time.sleep(2.5)  # the totals file is written every second
        before, cpu0 = json.loads(out.read_text()), bench.cpu_seconds(proc.pid)
        res = asyncio.run(loadgen.run("127.0.0.1", port, reqs, clients))
        cpu1 = bench.cpu_seconds(proc.pid)
        time.sleep(2.5)
        after = json.loads(out.read_text())
    finally:
        proc.terminate()
        proc.wait(10)
    n = len(res.latencies)
    steps = {
        name: 1e6 * (after[name][1] - before.get(name, [0, 0.0, 0.0])[1]) / n
        for name in after
        if name != "process_cpu_s" and after[name][0] > before.get(name, [0])[0]
    }
    return {
        "arm": arm,
        "answers": dict(res.codes),
        "per_s": res.rps,
        "worker_cpu_us": 1e6 * (cpu1["server"] - cpu0["server"]) / n,
        "redis_cpu_us": 1e6 * (cpu1["redis"] - cpu0["redis"]) / n,
        "steps_us": steps,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--requests", type=int, default=6000)
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--database-url", default=bench.DEFAULT_DB)
    p.add_argument("--redis-url", default=bench.DEFAULT_REDIS)
    args = p.parse_args()
    env = bench.setup_env(args)
    sys.path.insert(0, str(bench.ROOT))
    bench.prepare_database(args)
    import django

    django.setup()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for arm in ("on", "off") if rnd % 2 == 0 else ("off", "on"):
                r = one(env, arm, args.requests, args.clients, Path(tmp) / "totals.json")
                runs.append(r)
                print(
                    f"rules {arm}: {r['answers']} at {r['per_s']:.0f}/s; per answer: worker process "
                    f"{r['worker_cpu_us']:.0f} µs CPU, Redis {r['redis_cpu_us']:.0f} µs",
                    flush=True,
                )
                for name, us in sorted(r["steps_us"].items()):
                    print(f"    {name:40s} {us:7.1f} µs thread CPU per answer")
    print(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
