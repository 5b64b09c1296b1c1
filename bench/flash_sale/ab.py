"""Two revisions of the server under the same accepted-order flood, interleaved (issue 15's A/Bs).

    .venv/bin/python -m bench.flash_sale.ab --before HEAD~1 [--rules on] [--rounds 4] [--seconds 10] [--off]

The working tree ("after") against ``--before`` (a git revision, checked out in a temporary
worktree). Each round starts a fresh 2-worker ``livecommerce.serve`` from each tree in turn (the
order alternating from round to round), warms it 3 s, then drives it with ``wrk`` as
``bench.flash_sale.wire`` does (256 connections, a new buyer and Idempotency-Key per request) for
``--seconds`` on a listing of 10^6 units, 1 per buyer: every answer an accepted order. ``--off``
adds an arm per round: the working tree with the rules off, the reference the rules' cost is
measured against. Printed: every arm (orders/s, server CPU and Redis CPU per order, p99), the
medians, and the after ÷ before ratio of orders/s within each round (both met the same moments
of a shared machine) with its median.

An arm runs in a process of its own inside its tree (``--arm``), so each side runs its own code,
its bench helpers included: the before revision must have ``bench/flash_sale/wire.py`` (issue 15)
and the same migrations (the bench database is migrated by each side). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", help="the git revision to compare the working tree with")
    p.add_argument("--rules", choices=("on", "off"), default="on", help="the risk rules, both sides")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--seconds", type=int, default=10, help="each measured arm")
    p.add_argument("--off", action="store_true", help="also the working tree with the rules off, each round")
    p.add_argument("--arm", choices=("on", "off"), help=argparse.SUPPRESS)  # one arm, in the current directory's tree
    args = p.parse_args(argv)
    if args.arm is None and not args.before:
        p.error("--before REVISION is required")
    if args.rounds < 1 or args.seconds < 1:
        p.error("--rounds and --seconds must be at least 1")
    return args


def arm(rules: str, seconds: int) -> dict[str, Any]:
    """One arm, run by the tree in the current directory with its own bench helpers."""
    sys.path.insert(0, os.getcwd())
    import secrets
    import time

    from bench.flash_sale import run as flash
    from bench.flash_sale import wire

    args = wire.parse_args(["--seconds", str(seconds)])
    env = flash.setup_env(args)
    flash.prepare_database(args)
    import django

    django.setup()
    with flash.serving(env, rules, 2, "serve") as (port, pid):
        url = f"http://127.0.0.1:{port}/api/v1/orders"
        token, listing, _merchant, _warm = flash.make_fixture(wire.ACCEPTED_QUOTA, limit=1)
        wire.run_wrk(url, token=token, listing=listing, prefix=f"wa{secrets.token_hex(3)}", seconds=3, args=args)
        time.sleep(1.0)
        res = wire.wrk_arm("accepted", pid, url, token=token, listing=listing, args=args)
    return {
        "rps": res["rps"],
        "cpu_us": res["cpu_us"],
        "redis_cpu_us": res["redis_cpu_us"],
        "p99_ms": res["p99_ms"],
        "other": res["other"],
        "loadavg": res["loadavg"],
    }


def run_arm(tree: Path, rules: str, seconds: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(HERE), "--arm", rules, "--seconds", str(seconds)],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=seconds + 300,
        check=False,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("ARM ")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"the arm in {tree} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1][4:])
    if result["other"]:
        raise SystemExit(f"the arm in {tree} answered other than 201: {result['other']}")
    return result


def compare(args: argparse.Namespace) -> dict[str, Any]:
    rev = subprocess.run(["git", "rev-parse", "--short", args.before], cwd=ROOT, capture_output=True, text=True)
    if rev.returncode != 0:
        raise SystemExit(f"not a revision: {args.before}")
    before = Path(tempfile.mkdtemp(prefix="lc-ab-")) / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(before), args.before], cwd=ROOT, check=True)
    trees = {"before": before, "after": ROOT}
    arms: dict[str, list[dict[str, Any]]] = {"before": [], "after": [], "off": []}
    try:
        for rnd in range(args.rounds):
            for side in ("before", "after") if rnd % 2 == 0 else ("after", "before"):
                arms[side].append(run_arm(trees[side], args.rules, args.seconds))
                _print(f"round {rnd + 1} {side}", arms[side][-1])
            if args.off:
                arms["off"].append(run_arm(ROOT, "off", args.seconds))
                _print(f"round {rnd + 1} after, rules off", arms["off"][-1])
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, check=False)
        shutil.rmtree(before.parent, ignore_errors=True)
    ratios = [a["rps"] / b["rps"] for a, b in zip(arms["after"], arms["before"], strict=True)]
    summary = {
        side: {k: statistics.median(x[k] for x in runs) for k in ("rps", "cpu_us", "redis_cpu_us", "p99_ms")}
        for side, runs in arms.items()
        if runs
    }
    return {"before": rev.stdout.strip(), "rules": args.rules, "arms": arms, "medians": summary, "ratios": ratios}


def _print(label: str, x: dict[str, Any]) -> None:
    print(
        f"{label}: {x['rps']:.0f} orders/s, server CPU {x['cpu_us']:.0f} µs/order, "
        f"Redis {x['redis_cpu_us']:.0f} µs/order, p99 {x['p99_ms']:.0f} ms"
        + (f", load {x['loadavg']:.2f}" if "loadavg" in x else ""),
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.arm is not None:
        print("ARM " + json.dumps(arm(args.arm, args.seconds)), flush=True)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    res = compare(args)
    for side, m in res["medians"].items():
        _print(f"median, {side}", m)
    each = ", ".join(f"{r:.2f}" for r in res["ratios"])
    print(f"after ÷ before, orders/s: {statistics.median(res['ratios']):.2f} (rounds: {each})")


if __name__ == "__main__":
    main()
