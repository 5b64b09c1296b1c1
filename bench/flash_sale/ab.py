"""Two revisions of the server under the same accepted-order flood, interleaved (issue 15's A/Bs).

    .venv/bin/python -m bench.flash_sale.ab --before HEAD~1 [--rules on] [--rounds 4] [--seconds 10] [--off]

The working tree ("after") against ``--before`` (a git revision, checked out in a temporary
worktree). Each round starts a fresh 2-worker ``livecommerce.serve`` from each tree in turn (the
order alternating from round to round), warms it 3 s, then drives it with ``wrk`` as
``bench.flash_sale.wire`` does (256 connections, a new buyer and Idempotency-Key per request) for
``--seconds`` on a listing of 10^6 units, 1 per buyer: every answer an accepted order. ``--off``
adds a third arm per round, always last: the working tree with the rules off. Printed: every arm
(orders/s, server CPU and Redis CPU per order, p99; Redis CPU is the whole Redis server's, so
another user of it counts too), the medians, and per round the ratio of orders/s after ÷ before
(and after ÷ rules off) with its median. The two arms of a ratio ran one after the other, each
on its own fresh server, a minute apart at most: adjacent, not simultaneous, so a machine shared
with other work still moves them apart; more rounds narrow that, and an effect of a few per cent
needs more rounds than the default to show.

An arm runs in a process of its own inside its tree (``--arm``), so each side runs its own code,
its bench helpers included: the before revision must have ``bench/flash_sale/wire.py`` (issue 15)
and the same migrations (the bench database is migrated by each side). Each arm has its own
merchant, show and listing, and buyer numbers of its own (``--block``). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
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
    p.add_argument("--block", type=int, default=0, help=argparse.SUPPRESS)  # the arm's buyer numbers
    args = p.parse_args(argv)
    if args.arm is None and not args.before:
        p.error("--before REVISION is required")
    if args.rounds < 1 or args.seconds < 1:
        p.error("--rounds and --seconds must be at least 1")
    return args


def arm(rules: str, seconds: int, block: int) -> dict[str, Any]:
    """One arm, run by the tree in the current directory with its own bench helpers; its wrk runs
    take the buyer numbers of blocks ``block`` and ``block + 1`` (``wire.run_wrk``)."""
    sys.path.insert(0, os.getcwd())
    import itertools
    import secrets
    import time

    from bench.flash_sale import run as flash
    from bench.flash_sale import wire

    wire._blocks = itertools.count(block)
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


def run_arm(tree: Path, rules: str, seconds: int, block: int) -> dict[str, Any]:
    """One arm in ``tree``, in a process group of its own: an arm that overruns is stopped with
    the server it started (the server's workers die with it)."""
    cmd = [sys.executable, str(HERE), "--arm", rules, "--seconds", str(seconds), "--block", str(block)]
    proc = subprocess.Popen(
        cmd, cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=seconds + 300)
    except subprocess.TimeoutExpired:
        _stop_group(proc)
        raise SystemExit(f"the arm in {tree} did not finish within {seconds + 300} s") from None
    except BaseException:
        _stop_group(proc)
        raise
    lines = [line for line in stdout.splitlines() if line.startswith("ARM ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"the arm in {tree} failed ({proc.returncode}):\n{stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1][4:])
    if result["other"]:
        raise SystemExit(f"the arm in {tree} answered other than 201: {result['other']}")
    return result


def _stop_group(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def compare(args: argparse.Namespace) -> dict[str, Any]:
    rev = subprocess.run(
        ["git", "rev-parse", "--verify", "--short", f"{args.before}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if rev.returncode != 0:
        raise SystemExit(f"not a commit: {args.before}")
    before = Path(tempfile.mkdtemp(prefix="lc-ab-")) / "tree"
    trees = {"before": before, "after": ROOT}
    arms: dict[str, list[dict[str, Any]]] = {"before": [], "after": [], "off": []}
    blocks = iter(range(0, 10_000, 2))
    try:
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(before), rev.stdout.strip()], cwd=ROOT, check=True
        )
        for rnd in range(args.rounds):
            for side in ("before", "after") if rnd % 2 == 0 else ("after", "before"):
                arms[side].append(run_arm(trees[side], args.rules, args.seconds, next(blocks)))
                _print(f"round {rnd + 1} {side}", arms[side][-1])
            if args.off:
                arms["off"].append(run_arm(ROOT, "off", args.seconds, next(blocks)))
                _print(f"round {rnd + 1} after, rules off", arms["off"][-1])
    finally:
        if before.exists():
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, check=False)
        shutil.rmtree(before.parent, ignore_errors=True)
    summary = {
        side: {k: statistics.median(x[k] for x in runs) for k in ("rps", "cpu_us", "redis_cpu_us", "p99_ms")}
        for side, runs in arms.items()
        if runs
    }
    ratios = {"before": [a["rps"] / b["rps"] for a, b in zip(arms["after"], arms["before"], strict=True)]}
    if arms["off"]:
        ratios["off"] = [a["rps"] / b["rps"] for a, b in zip(arms["after"], arms["off"], strict=True)]
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
        print("ARM " + json.dumps(arm(args.arm, args.seconds, args.block)), flush=True)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    res = compare(args)
    print(f"before: {res['before']}; after: the working tree; rules {res['rules']}; {args.rounds} rounds")
    for side, m in res["medians"].items():
        _print(f"median, {side}", m)
    for against, values in res["ratios"].items():
        each = ", ".join(f"{r:.2f}" for r in values)
        print(f"orders/s, after ÷ {against}: median {statistics.median(values):.2f} (rounds: {each})")


if __name__ == "__main__":
    main()
