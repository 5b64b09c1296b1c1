"""The flash sale at wire speed (issue 15): the real server under a compiled load generator, beside
the two ceilings of this machine, in one run.

    .venv/bin/python -m bench.flash_sale.wire [--seconds 10] [--warm 3] [--rounds 1]

``wrk`` (Debian's package: ``apt-get install -y wrk``) drives every HTTP arm with
``bench/flash_sale/wrk/order.lua``: 2 threads, 256 connections, a real order body with a new buyer
(phone, address, device) and a new Idempotency-Key per request. The arms (row names are stable:
later runs are compared to earlier ones by them):

- ``ceiling_asgi``: the refusal ceiling, ``bench.flash_sale.ceiling_asgi`` (read the body, parse
  the JSON, one ``redis.asyncio`` EVALSHA, answer 409) served by ``livecommerce.serve`` exactly as
  production serves the real app (its workers, uvloop, httptools, one ``SO_REUSEPORT`` socket each).
- ``sold_out_rules_off`` / ``sold_out_rules_on``: the real server (``livecommerce.serve``, as
  ``run.py`` starts it, ``FRAUD_RULES`` 0 / 1) answering a listing whose one unit is sold.
- ``accepted_rules_off`` / ``accepted_rules_on``: the same server on a listing of 10^6 units, 1 per
  buyer: every request is an accepted order (201), durable commits.
- ``ceiling_pgbench``: the accepted ceiling, ``pgbench`` running one conditional
  ``UPDATE hot SET units_left = units_left - 1 WHERE id = 1 AND units_left > 0 RETURNING units_left``
  on one row, ``synchronous_commit=on``.

For each arm: answers/s, latency p50/p99, and the CPU microseconds per answer of the server
processes alone (``/proc/<pid>/stat`` utime+stime of the serve process and its workers, before and
after; for pgbench the backends serving it, ``/proc/<pid>/schedstat``), plus Redis's CPU per answer
(the whole Redis server: other users of it count too). The table goes into docs/performance.md
between ``<!-- flash_sale_wire:start -->`` and ``<!-- flash_sale_wire:end -->``; the raw figures go
to ``bench/flash_sale/results/wire-<date>.json``, and every run prints its ratios to the oldest run
there by the time it started (the issue's baseline) or to ``--compare FILE``.
``figures(parse_args([...]))`` returns the same dict for other code. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bench.flash_sale import run as flash

HERE = Path(__file__).resolve().parent
LUA = HERE / "wrk" / "order.lua"
RESULTS = HERE / "results"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/lc_wrk_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/5"
ACCEPTED_QUOTA = 1_000_000
PGBENCH_SQL = "UPDATE hot SET units_left = units_left - 1 WHERE id = 1 AND units_left > 0 RETURNING units_left;\n"
ROWS = {
    "sold_out_rules_off": "sold-out answers, rules off",
    "sold_out_rules_on": "sold-out answers, rules on",
    "accepted_rules_off": "accepted orders, rules off",
    "accepted_rules_on": "accepted orders, rules on",
    "ceiling_asgi": "ceiling: plain ASGI app, one `redis.asyncio` EVALSHA, 409",
    "ceiling_pgbench": "ceiling: pgbench one-row `UPDATE … RETURNING`, durable",
}
# What each kind of arm must answer: an HTTP status, and for a refusal its body's ``code``.
EXPECTED = {"sold_out": ("409", "sold_out"), "accepted": ("201", None), "ceiling_asgi": ("409", "sold_out")}
# Buyer numbers: each wrk run takes a block of its own (order.lua gives each thread 2*10^6 of it),
# so no two requests of a run share a phone, an address or a device.
_BLOCK = 4_000_000
_blocks = itertools.count()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=int, default=10, help="each measured arm")
    p.add_argument("--warm", type=int, default=3, help="wrk warm-up of each real server (accepted orders)")
    p.add_argument("--rounds", type=int, default=1, help="rounds; the rules-on/off order alternates, medians kept")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--connections", type=int, default=256, help="wrk connections")
    p.add_argument(
        "--pg-clients",
        default="8,64",
        help="pgbench client counts, one pgbench run each; the ceiling is the best of them (a hot row does more "
        "with fewer clients; PostgreSQL's max_connections, 100 here, caps the count)",
    )
    p.add_argument("--database-url", default=DEFAULT_DB)
    p.add_argument("--redis-url", default=DEFAULT_REDIS)
    p.add_argument("--compare", type=Path, default=None, help="a results file to print ratios to (default: oldest)")
    p.add_argument("--no-docs", action="store_true")
    p.add_argument("--no-save", action="store_true", help="do not write bench/flash_sale/results/wire-<date>.json")
    p.add_argument(
        "--from-results",
        type=Path,
        default=None,
        help="measure nothing: render a saved results file (its ratios recomputed from its rounds) and write the docs",
    )
    return p.parse_args(argv)


def require(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise SystemExit(
            f"{tool} is not installed; this benchmark needs it: apt-get install -y {package} "
            "(run on demand; the test suite does not need it)"
        )
    return path


# --- wrk -------------------------------------------------------------------------------------


def parse_wrk(stdout: str) -> dict[str, Any]:
    """The ``WRK_JSON`` line that order.lua's done() prints."""
    for line in stdout.splitlines():
        if line.startswith("WRK_JSON "):
            return json.loads(line[len("WRK_JSON ") :])
    raise SystemExit(f"wrk printed no WRK_JSON line:\n{stdout}")


def run_wrk(
    url: str, *, token: str, listing: int, prefix: str, seconds: int, args: argparse.Namespace
) -> dict[str, Any]:
    first = 30_000_000 + (next(_blocks) * _BLOCK) % 68_000_000
    cmd = [require("wrk", "wrk"), f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s"]
    cmd += ["--timeout", "10s", "-s", str(LUA), url, "--", token, str(listing), prefix, str(first)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=False)
    if out.returncode != 0:
        raise SystemExit(f"wrk failed ({out.returncode}): {out.stderr}\n{out.stdout}")
    return parse_wrk(out.stdout)


def wrk_arm(kind: str, pid: int, url: str, *, token: str, listing: int, args: argparse.Namespace) -> dict[str, Any]:
    """One measured wrk run with the server's (and Redis's) CPU read before and after."""
    load = os.getloadavg()[0]
    c0 = flash.cpu_seconds(pid)
    prefix = f"{kind[:2]}{secrets.token_hex(3)}"
    res = run_wrk(url, token=token, listing=listing, prefix=prefix, seconds=args.seconds, args=args)
    c1 = flash.cpu_seconds(pid)
    answers = max(res["requests"], 1)
    ok, other = expected_answers(res, *EXPECTED[kind])
    return {
        "rps": ok / res["seconds"],
        "p50_ms": res["p50_ms"],
        "p99_ms": res["p99_ms"],
        "cpu_us": (c1["server"] - c0["server"]) * 1e6 / answers,
        "redis_cpu_us": (c1["redis"] - c0["redis"]) * 1e6 / answers,
        "answers": res["requests"],
        "expected": ok,
        "other": other,
        "loadavg": load,
        "wrk": res,
    }


def expected_answers(res: dict[str, Any], status: str, code: str | None) -> tuple[int, dict[str, int]]:
    """How many answers were the expected one (``status``, and for a refusal its ``code``), and
    the others by status (a refusal: "status code")."""
    key = status if code is None else f"{status} {code}"
    answers = {**{k: v for k, v in res["statuses"].items() if int(k) < 400}, **res.get("codes", {})}
    return answers.get(key, 0), {k: v for k, v in answers.items() if k != key}


# --- the real server -------------------------------------------------------------------------


def sell_out(port: int, token: str, listing: int) -> None:
    """Buy the listing's one unit, so that every later order meets ``sold_out``."""
    from bench.flash_sale.risk import buyer_body

    body = json.dumps(buyer_body(listing, 0, prefix=f"first{secrets.token_hex(3)}")).encode()
    req = urllib.request.Request(  # noqa: S310 (loopback)
        f"http://127.0.0.1:{port}/api/v1/orders",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310
        if r.status != 201:
            raise SystemExit(f"the sold-out listing's one unit was not sold: {r.status}")


def system_arms(env: dict[str, str], rules: str, args: argparse.Namespace) -> dict[str, dict]:
    """A fresh ``livecommerce.serve`` with the risk rules ``on`` / ``off``: warm-up, then the
    sold-out arm, then the accepted arm."""
    with flash.serving(env, rules, args.workers, "serve") as (port, pid):
        url = f"http://127.0.0.1:{port}/api/v1/orders"
        token, big, _m, _w = flash.make_fixture(ACCEPTED_QUOTA, limit=1)
        so_token, sold, _m, _w = flash.make_fixture(1, limit=1)
        sell_out(port, so_token, sold)
        # Warm: every worker's threads, database connections, prepared statements and caches in
        # use, as on a server that has been up for a while; then a second on the sold-out listing.
        run_wrk(url, token=token, listing=big, prefix=f"wa{secrets.token_hex(3)}", seconds=args.warm, args=args)
        run_wrk(url, token=so_token, listing=sold, prefix=f"ws{secrets.token_hex(3)}", seconds=1, args=args)
        time.sleep(1.0)
        out = {f"sold_out_rules_{rules}": wrk_arm("sold_out", pid, url, token=so_token, listing=sold, args=args)}
        time.sleep(1.0)
        out[f"accepted_rules_{rules}"] = wrk_arm("accepted", pid, url, token=token, listing=big, args=args)
    return out


# --- the refusal ceiling -----------------------------------------------------------------------


def asgi_ceiling(env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    from apps.core.redis import get_client
    from bench.flash_sale.ceiling_asgi import ceiling_key

    listing = 1
    get_client().hset(ceiling_key(listing), "left", 0)
    port = flash.free_port()
    cmd = [sys.executable, "-m", "livecommerce.serve", "--workers", str(args.workers), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--app", "bench.flash_sale.ceiling_asgi:app"]
    proc = flash.wait_healthy(subprocess.Popen(cmd, cwd=flash.ROOT, env=env), port, "ceiling server")
    try:
        url = f"http://127.0.0.1:{port}/api/v1/orders"
        run_wrk(url, token="none", listing=listing, prefix="wc", seconds=1, args=args)
        time.sleep(0.5)
        return wrk_arm("ceiling_asgi", proc.pid, url, token="none", listing=listing, args=args)
    finally:
        proc.terminate()
        proc.wait(10)


# --- the accepted ceiling ----------------------------------------------------------------------


def _psql(database_url: str, sql: str) -> str:
    u = urlparse(database_url)
    cmd = ["psql", "-h", u.hostname or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    cmd += ["-d", u.path.lstrip("/"), "-v", "ON_ERROR_STOP=1", "-tAc", sql]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def _schedstat_ns(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def pgbench_ceiling(args: argparse.Namespace, clients: int) -> dict[str, Any]:
    """pgbench on one hot row, durable. Latency from its per-transaction log; CPU of the backends
    serving it, read from /proc every 0.1 s while it runs (single-threaded processes: schedstat's
    nanoseconds), over the window between the first and the last complete reading, divided by the
    transactions that completed in that window."""
    require("pgbench", "postgresql-client")
    u = urlparse(args.database_url)
    dbname = u.path.lstrip("/")
    _psql(
        args.database_url,
        "CREATE TABLE IF NOT EXISTS hot (id int PRIMARY KEY, units_left bigint NOT NULL); "
        "INSERT INTO hot VALUES (1, 1000000000) ON CONFLICT (id) DO UPDATE SET units_left = EXCLUDED.units_left",
    )
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="wire-pgbench-") as tmp:
        script = Path(tmp) / "hot.sql"
        script.write_text(PGBENCH_SQL)
        cmd = ["pgbench", "-n", "-c", str(clients), "-j", str(args.threads), "-T", str(args.seconds)]
        cmd += ["-f", str(script), "-l", "--log-prefix", f"{tmp}/log", "-h", u.hostname or "127.0.0.1"]
        cmd += ["-p", str(u.port or 5432), "-U", u.username or "postgres", dbname]
        env = {**os.environ, "PGOPTIONS": "-c synchronous_commit=on", "PGAPPNAME": "wire-pgbench"}
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        time.sleep(1.5)
        pids = [
            int(x)
            for x in _psql(
                args.database_url,
                f"SELECT pid FROM pg_stat_activity WHERE datname = '{dbname}' AND application_name = 'wire-pgbench'",
            ).split()
        ]
        readings: list[tuple[float, int]] = []
        while proc.poll() is None:
            now = time.time()
            values = [_schedstat_ns(pid) for pid in pids]
            if pids and all(v is not None for v in values):
                readings.append((now, sum(v for v in values if v is not None)))
            time.sleep(0.1)
        stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"pgbench failed: {stderr}\n{stdout}")
        done: list[tuple[float, int]] = []  # (completed at, latency µs)
        for log in Path(tmp).glob("log*"):
            for line in log.read_text().splitlines():
                f = line.split()
                done.append((int(f[4]) + int(f[5]) / 1e6, int(f[2])))
    tps = next(float(line.split()[2]) for line in stdout.splitlines() if line.startswith("tps ="))
    lat = sorted(x for _, x in done)
    cpu_us = None
    if len(readings) >= 2:
        (t0, n0), (t1, n1) = readings[0], readings[-1]
        in_window = sum(1 for t, _ in done if t0 <= t <= t1)
        cpu_us = (n1 - n0) / 1000 / max(in_window, 1)
    return {
        "rps": tps,
        "p50_ms": statistics.median(lat) / 1000 if lat else 0.0,
        "p99_ms": lat[min(len(lat) - 1, int(0.99 * len(lat)))] / 1000 if lat else 0.0,
        "cpu_us": cpu_us,
        "redis_cpu_us": None,
        "answers": len(done),
        "expected": len(done),
        "other": {},
        "loadavg": load,
        "clients": clients,
        "backends_sampled": len(pids),
    }


def best_pgbench(args: argparse.Namespace) -> dict[str, Any]:
    """pgbench at each of ``--pg-clients``; the best run, with every run's transactions/s."""
    runs = []
    for clients in (int(c) for c in args.pg_clients.split(",")):
        runs.append(pgbench_ceiling(args, clients))
        _progress(f"ceiling_pgbench ({clients} clients)", runs[-1])
    best = max(runs, key=lambda x: x["rps"])
    return {**best, "by_clients": {str(x["clients"]): round(x["rps"]) for x in runs}}


# --- one run -----------------------------------------------------------------------------------


def figures(args: argparse.Namespace) -> dict[str, Any]:
    """Every arm, ``args.rounds`` times (the rules-on/off order alternating), each figure the
    median over the rounds; with every round's figures under ``rounds``."""
    require("wrk", "wrk")
    require("pgbench", "postgresql-client")
    env = flash.setup_env(args)
    sys.path.insert(0, str(flash.ROOT))
    flash.prepare_database(args)
    import django

    django.setup()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = os.getloadavg()
    rounds: list[dict[str, dict]] = []
    for rnd in range(args.rounds):
        order = ("off", "on") if rnd % 2 == 0 else ("on", "off")
        r: dict[str, dict] = {"ceiling_asgi": asgi_ceiling(env, args)}
        _progress("ceiling_asgi", r["ceiling_asgi"])
        for rules in order:
            for name, arm in system_arms(env, rules, args).items():
                r[name] = arm
                _progress(name, arm)
            if rules == order[0]:
                r["ceiling_pgbench"] = best_pgbench(args)
        rounds.append(r)
    rows = {}
    for name in ROWS:
        runs = [r[name] for r in rounds]
        rows[name] = {
            key: statistics.median(x[key] for x in runs) if all(x[key] is not None for x in runs) else None
            for key in ("rps", "p50_ms", "p99_ms", "cpu_us", "redis_cpu_us")
        }
        rows[name]["other"] = {k: sum(x["other"].get(k, 0) for x in runs) for x in runs for k in x["other"]}
        rows[name]["answers"] = sum(x["answers"] for x in runs)
        rows[name]["loadavg"] = [round(x["loadavg"], 2) for x in runs]
        if name == "ceiling_pgbench":
            rows[name]["by_clients"] = [x["by_clients"] for x in runs]
    return {
        "started": started,
        "loadavg_at_start": list(load),
        "cores": os.cpu_count(),
        "settings": {
            "seconds": args.seconds,
            "warm": args.warm,
            "rounds": args.rounds,
            "workers": args.workers,
            "wrk_threads": args.threads,
            "connections": args.connections,
            "pg_clients": args.pg_clients,
        },
        "rows": rows,
        "ratios": ratios(rounds),
        "rounds": rounds,
    }


RATIOS = {
    # name: (row, its figure, ceiling row, the ceiling's figure); a ratio within one round, so both
    # sides met the same moments of a shared machine. CPU ratios are the ceiling's over the row's:
    # like the throughput ratios, 1.0 is "as cheap as the ceiling".
    "sold_out_rules_{}_vs_asgi": ("sold_out_rules_{}", "rps", "ceiling_asgi", "rps"),
    "sold_out_rules_{}_p99_vs_asgi": ("sold_out_rules_{}", "p99_ms", "ceiling_asgi", "p99_ms"),
    "sold_out_rules_{}_cpu_vs_asgi": ("ceiling_asgi", "cpu_us", "sold_out_rules_{}", "cpu_us"),
    "accepted_rules_{}_vs_pgbench": ("accepted_rules_{}", "rps", "ceiling_pgbench", "rps"),
}


def ratios(rounds: list[dict[str, dict]]) -> dict[str, Any]:
    """What the issue's targets are stated in — sold-out answers/s over the ASGI ceiling's (and
    p99 over its p99, and the ceiling's CPU per answer over the row's), accepted orders/s over
    pgbench's transactions/s — computed in each round, the median of the rounds, and each round's
    under ``<name>_rounds``."""
    out: dict[str, Any] = {}
    for rules in ("off", "on"):
        for name, (row, key, ceiling, ckey) in RATIOS.items():
            per_round = [r[row.format(rules)][key] / r[ceiling.format(rules)][ckey] for r in rounds]
            out[name.format(rules)] = statistics.median(per_round)
            out[f"{name.format(rules)}_rounds"] = [round(x, 3) for x in per_round]
    return out


def _progress(name: str, arm: dict[str, Any]) -> None:
    cpu = f"{arm['cpu_us']:.0f}" if arm["cpu_us"] is not None else "-"
    print(
        f"{name}: {arm['rps']:.0f}/s, p50 {arm['p50_ms']:.1f} ms, p99 {arm['p99_ms']:.1f} ms, "
        f"CPU {cpu} µs/answer, {arm['answers']} answers, other {arm['other'] or 'none'}, "
        f"load {arm['loadavg']:.2f}",
        flush=True,
    )


# --- the report --------------------------------------------------------------------------------


def previous(compare: Path | None, exclude: Path | None) -> tuple[Path, dict] | None:
    """The results file to compare with: ``compare``, else the oldest run in results/ (the issue's
    baseline) that is not this run's own. Oldest by the time each file says its run started,
    not by name: ``wire-<date>-2.json`` sorts before ``wire-<date>.json``."""
    if compare is not None:
        return compare, load(compare)
    files = sorted((p for p in RESULTS.glob("wire-*.json") if p != exclude), key=lambda p: (_started(p), p.name))
    return (files[0], load(files[0])) if files else None


def _started(path: Path) -> str:
    """When the run of a results file started (``"2026-12-03 06:28 UTC"``: sorts as time does)."""
    try:
        return str(json.loads(path.read_text()).get("started", ""))
    except (OSError, ValueError):
        return ""


def load(path: Path) -> dict[str, Any]:
    """A saved run, its ratios recomputed from its rounds (as this code computes them)."""
    figs = json.loads(path.read_text())
    figs["ratios"] = ratios(figs["rounds"])
    return figs


def _f(x: float | None, fmt: str) -> str:
    return "—" if x is None else format(x, fmt)


def render(figs: dict[str, Any], command: str, before: tuple[Path, dict] | None = None) -> str:
    s = figs["settings"]
    la = ", ".join(f"{x:.2f}" for x in figs["loadavg_at_start"])
    by_clients = figs["rows"]["ceiling_pgbench"]["by_clients"]
    pg = "; ".join(", ".join(f"{c} clients {tps}/s" for c, tps in by.items()) for by in by_clients)
    lines = [
        f"Run: {figs['started']}, {figs['cores']} cores shared with other work (load average at the start: {la}). "
        f"{s['workers']} `livecommerce.serve` workers; PostgreSQL, Redis and the load generator on the same box. "
        f"wrk {s['wrk_threads']} threads, {s['connections']} connections, {s['seconds']} s per arm "
        f"(`bench/flash_sale/wrk/order.lua`: a real order body, a new buyer and Idempotency-Key per request), "
        f"after a {s['warm']} s warm-up of each real server; pgbench with {s['pg_clients']} clients "
        f"(one run each, the best kept: {pg}), {s['seconds']} s, `synchronous_commit=on`. "
        + (f"Median of {s['rounds']} rounds." if s["rounds"] > 1 else "One round.")
        + f" Command: `{command}`.",
        "",
        "| row | what | answers/s | p50 ms | p99 ms | server CPU µs/answer | Redis CPU µs/answer | other answers |"
        + (" vs baseline (answers/s) |" if before else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|" if before else ""),
    ]
    for name, what in ROWS.items():
        x = figs["rows"][name]
        line = (
            f"| `{name}` | {what} | {x['rps']:.0f} | {x['p50_ms']:.1f} | {x['p99_ms']:.1f} | "
            f"{_f(x['cpu_us'], '.0f')} | {_f(x['redis_cpu_us'], '.0f')} | "
            f"{', '.join(f'{k}: {v}' for k, v in sorted(x['other'].items())) or 'none'} |"
        )
        if before:
            old = before[1]["rows"].get(name)
            line += f" {x['rps'] / old['rps']:.2f}x |" if old and old["rps"] else " — |"
        lines.append(line)
    r = figs["ratios"]

    def ratio(name: str) -> str:
        rounds = r[f"{name}_rounds"]
        each = f" ({', '.join(f'{x:.2f}' for x in rounds)})" if len(rounds) > 1 else ""
        return f"{r[name]:.2f}{each}"

    lines += [
        "",
        "Ratios within a round (both sides met the same moments of the machine); the median of the rounds, each "
        "round in brackets:",
        "",
        "| ratio | rules off | rules on | issue 15's target |",
        "|---|---|---|---|",
    ]
    for name, what, target in (
        ("sold_out_rules_{}_vs_asgi", "sold-out answers/s ÷ plain-ASGI ceiling", "≥ 0.80"),
        ("sold_out_rules_{}_p99_vs_asgi", "sold-out p99 ÷ plain-ASGI ceiling's p99", "≤ 2"),
        ("sold_out_rules_{}_cpu_vs_asgi", "plain-ASGI ceiling's server CPU per answer ÷ sold-out's", "—"),
        ("accepted_rules_{}_vs_pgbench", "accepted orders/s ÷ pgbench hot-row ceiling", "≥ 0.40"),
    ):
        lines.append(f"| {what} | {ratio(name.format('off'))} | {ratio(name.format('on'))} | {target} |")
    if before:
        old = before[1]["ratios"]
        lines.append(
            f"\nAgainst `{before[0].relative_to(flash.ROOT) if before[0].is_relative_to(flash.ROOT) else before[0]}` "
            f"({before[1]['started']}): sold-out ÷ ASGI ceiling, rules off "
            f"{old['sold_out_rules_off_vs_asgi']:.2f} → {r['sold_out_rules_off_vs_asgi']:.2f}, rules on "
            f"{old['sold_out_rules_on_vs_asgi']:.2f} → {r['sold_out_rules_on_vs_asgi']:.2f}; accepted ÷ pgbench, "
            f"rules off {old['accepted_rules_off_vs_pgbench']:.2f} → {r['accepted_rules_off_vs_pgbench']:.2f}, "
            f"rules on {old['accepted_rules_on_vs_pgbench']:.2f} → {r['accepted_rules_on_vs_pgbench']:.2f}."
        )
    per_arm = "; ".join(f"{name} {x['loadavg']}" for name, x in figs["rows"].items())
    lines.append(f"\nLoad average (1 min) at the start of each arm: {per_arm}.")
    return "\n".join(lines)


def save(figs: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    day = figs["started"][:10]
    path = RESULTS / f"wire-{day}.json"
    n = 2
    while path.exists():
        path = RESULTS / f"wire-{day}-{n}.json"
        n += 1
    path.write_text(json.dumps(figs, indent=1, default=str) + "\n")
    return path


def main() -> None:
    args = parse_args()
    if args.from_results:
        path = args.from_results.resolve()
        figs = load(path)
    else:
        figs = figures(args)
        figs["command"] = ("python -m bench.flash_sale.wire " + " ".join(sys.argv[1:])).strip()
        path = None if args.no_save else save(figs)
    report = render(figs, figs["command"], previous(args.compare, path))
    print(report)
    if path:
        print(f"raw figures: {path}")
    if not args.no_docs:
        flash.write_docs(
            report, marker="flash_sale_wire", title="Flash sale at wire speed (`bench/flash_sale/wire.py`, issue 15)"
        )


if __name__ == "__main__":
    main()
