"""The flash-sale benchmark's buyers, and what the risk rules cost (``run.py --risk both``).

Buyers look like a genuine crowd to the rules: each its own external id, phone, shipping address
and device; a few thousand IPs shared by a few buyers each (carrier NAT); a mobile app's user
agent; an account opened in 2022. So the hot-path script counts every dimension and no rule
fires: the on arm pays for the counting, never for a refusal. The body of buyer ``n`` depends on
``n`` alone, so both arms of a comparison send the same bytes (the listing id aside).

``guard_cost`` times the guard itself in this process (no HTTP, no queue): what each attempt
pays, split into the one Redis script call and the Python around it.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from datetime import date, timedelta
from typing import Any

IP_POOL = 3000
# Carrier ranges (China Telecom / Mobile / Unicom): an IP's /24 holds four of the pool's IPs.
_NETS = ((112, 10), (117, 136), (223, 104), (36, 112), (183, 192), (39, 144))
_USER_AGENTS = tuple(
    f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    f"Mobile/15E148 aweme/{app}"
    for ios in ("17_4_1", "17_5", "16_7_8", "17_3_1")
    for app in ("30.1.0", "29.9.0", "30.0.0")
) + tuple(
    f"Mozilla/5.0 (Linux; Android {android}; {model} Build/{build}; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    f"Version/4.0 Chrome/{chrome} Mobile Safari/537.36 aweme/{app}"
    for android, model, build in (("13", "V2227A", "TP1A.220624.014"), ("14", "PJA110", "UKQ1.230924.001"))
    for chrome in ("120.0.6099.193",)
    for app in ("30.1.0", "29.9.0")
)
_PLACES = (
    ("浙江省", "杭州市", "西湖区", "文三路"),
    ("广东省", "深圳市", "南山区", "科技园路"),
    ("江苏省", "南京市", "鼓楼区", "中山北路"),
    ("四川省", "成都市", "武侯区", "人民南路"),
    ("北京市", "北京市", "海淀区", "中关村大街"),
    ("上海市", "上海市", "浦东新区", "张江路"),
)
_SINCE = date(2022, 1, 1)
FLUSHED = " (Redis flushed by another process)"


def client_ip(n: int) -> str:
    """One of ``IP_POOL`` IPv4 addresses, spread over 750 /24 networks."""
    k = n % IP_POOL
    a, b = _NETS[k % len(_NETS)]
    j = k // len(_NETS)
    return f"{a}.{b}.{j % 125}.{10 + j // 125}"


def buyer_body(listing: int, n: int, prefix: str = "u") -> dict[str, Any]:
    """Buyer ``n``'s order: its own phone (11-digit mainland mobile), address and device.
    Distinct ``n`` give distinct phones, addresses and devices (for ``n`` under 10^8)."""
    phone = f"13{5 + n % 5}{n:08d}"
    province, city, district, road = _PLACES[n % len(_PLACES)]
    device = hashlib.blake2b(f"dev{n}".encode(), digest_size=8).hexdigest()
    opened = _SINCE + timedelta(days=n % 365)
    return {
        "listing": listing,
        "quantity": 1,
        "buyer": {
            "external_id": f"{prefix}{n}",
            "name": "B",
            "phone": phone,
            "registered_at": f"{opened.isoformat()}T{n % 24:02d}:{n % 60:02d}:00+08:00",
        },
        "shipping_address": {
            "name": "B",
            "phone": phone,
            "province": province,
            "city": city,
            "district": district,
            "detail": f"{road}{n % 500 + 1}号{n // 500 + 1}栋{101 + n % 17}室",
        },
        "client": {
            "ip": client_ip(n),
            "device_id": f"d-{device}",
            "user_agent": _USER_AGENTS[n % len(_USER_AGENTS)],
        },
    }


def bodies_digest(bodies: list[dict[str, Any]]) -> str:
    """A digest of request bodies with the listing id left out: equal for the two arms' sales
    exactly when they sent the same buyers."""
    h = hashlib.sha256()
    for body in bodies:
        h.update(json.dumps({**body, "listing": 0}, sort_keys=True).encode())
    return h.hexdigest()[:16]


def guard_cost(listing: int, first: int, n: int) -> dict[str, float]:
    """Call the placement guard on its own (``apps.fraud.hotpath.risk_verdict``: its script in a
    round trip of its own, not with the gate's) for ``n`` new buyers on ``listing``, one after
    another in this process, against the benchmark's Redis; the guard's time per attempt and the
    part of it spent in its one script call (p50 / p99 / mean, µs)."""
    from apps.catalog.selectors import listing_info
    from apps.fraud import hotpath
    from apps.orders.placement.links import new_public_id
    from apps.orders.placement.request import parse_order_request

    info = listing_info(listing)
    assert info is not None
    reqs = [parse_order_request(buyer_body(listing, first + i, prefix="guard")) for i in range(n)]
    script = hotpath._check
    in_script: list[float] = []

    def timed(keys: list[str], args: list[Any]) -> Any:
        t0 = time.perf_counter()
        try:
            return script(keys, args)
        finally:
            in_script.append(time.perf_counter() - t0)

    total: list[float] = []
    hotpath._check = timed  # type: ignore[assignment]  # time the script call where the guard makes it
    try:
        for i, req in enumerate(reqs):
            public_id = new_public_id(merchant_id=info.merchant_id, idempotency_key=f"guard-{first + i}")
            t0 = time.perf_counter()
            verdict = hotpath.risk_verdict(info=info, req=req, public_id=public_id, channel="api")
            total.append(time.perf_counter() - t0)
            if verdict.rules.get("hits"):
                raise SystemExit(f"a rule fired on a benchmark buyer: {verdict.rules}")
    finally:
        hotpath._check = script
    warm = slice(min(200, n // 10), None)  # the first calls load the script and the merchant's rules

    def stats(xs: list[float]) -> dict[str, float]:
        s = sorted(xs[warm])
        return {
            "p50_us": statistics.median(s) * 1e6,
            "p99_us": s[min(len(s) - 1, int(0.99 * len(s)))] * 1e6,
            "mean_us": statistics.fmean(s) * 1e6,
        }

    guard, lua = stats(total), stats(in_script)
    return {
        "calls": len(total[warm]),
        **{f"guard_{k}": v for k, v in guard.items()},
        **{f"script_{k}": v for k, v in lua.items()},
        "python_mean_us": guard["mean_us"] - lua["mean_us"],
    }


def hold_cost(listing_off: int, listing_on: int, first: int, n: int) -> dict[str, float]:
    """What the rules add to an accepted order's Redis step, in this process (no HTTP, no queue,
    no database): for ``n`` new buyers one after another, the gate's reserve alone on
    ``listing_off`` (the order path with the rules off) and the guard with the gate's reserve
    in one round trip, judged (``service._guard_with_gate``, the rules on) on ``listing_on``,
    alternating, so both arms see the same machine. Each call holds a unit (the listings need
    ``n`` units). Returns p50 / p99 / mean µs of both arms and their differences (the rules-on
    arm's quantile minus the rules-off arm's)."""
    from apps.catalog.selectors import listing_info
    from apps.orders.placement import service
    from apps.orders.placement.gate import scripts as gate
    from apps.orders.placement.gate.keys import buyer_key
    from apps.orders.placement.gate.rebuild import gate_rebuild
    from apps.orders.placement.links import new_public_id
    from apps.orders.placement.request import parse_order_request

    off, on = listing_info(listing_off), listing_info(listing_on)
    assert off is not None and on is not None
    gate_rebuild(off.id)
    gate_rebuild(on.id)
    reqs = [parse_order_request(buyer_body(listing_on, first + i, prefix="hold")) for i in range(n)]
    t_off: list[float] = []
    t_on: list[float] = []
    for i, req in enumerate(reqs):
        pid_off = new_public_id(merchant_id=off.merchant_id, idempotency_key=f"hold-off-{first + i}")
        pid_on = new_public_id(merchant_id=on.merchant_id, idempotency_key=f"hold-on-{first + i}")
        bkey = buyer_key(req.buyer_external_id)
        arms = [("off", pid_off), ("on", pid_on)] if i % 2 == 0 else [("on", pid_on), ("off", pid_off)]
        for arm, pid in arms:
            t0 = time.perf_counter()
            if arm == "off":
                result = gate.gate_reserve(
                    off.id, hold_id=pid, buyer=bkey, quantity=1, now_ms=int(time.time() * 1000), remember=True
                )
                t_off.append(time.perf_counter() - t0)
            else:
                verdict, first_result = service._guard_with_gate(on, req, pid, "api", buyer=bkey, remember=True)
                t_on.append(time.perf_counter() - t0)
                result = first_result  # type: ignore[assignment]
                if verdict.rules.get("hits"):
                    raise SystemExit(f"a rule fired on a benchmark buyer: {verdict.rules}")
            if result is None or result.status != gate.OK:
                raise SystemExit(f"the gate did not hold a unit for a benchmark buyer: {result}")
    warm = slice(min(200, n // 10), None)

    def stats(xs: list[float]) -> dict[str, float]:
        s = sorted(xs)
        return {
            "p50_us": statistics.median(s) * 1e6,
            "p99_us": s[min(len(s) - 1, int(0.99 * len(s)))] * 1e6,
            "mean_us": statistics.fmean(s) * 1e6,
        }

    a, b = stats(t_off[warm]), stats(t_on[warm])
    return {
        "calls": len(t_off[warm]),
        **{f"off_{k}": v for k, v in a.items()},
        **{f"on_{k}": v for k, v in b.items()},
        **{f"added_{k}": b[k] - a[k] for k in a},
    }


def paired(on: list[dict], off: list[dict], key: str, *, diff: bool = False) -> list[float]:
    """Per round, the on sale against the off sale of the same round: on/off, or on - off."""
    return [(a[key] - b[key]) if diff else a[key] / max(b[key], 1e-9) for a, b in zip(on, off, strict=True)]


def render_risk(risk: list[dict], guard: dict | None, args: Any, command: str) -> str:
    """The "Risk rules on vs off" block of docs/performance.md."""
    lines = [
        f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.workers} `livecommerce.serve` workers, "
        "PostgreSQL + Redis and the load generator on the same 2-core box (shared with other work: the load "
        "average at the start of each sale is listed). Command: "
        f"`{command}`.",
        "",
        f"Each round is one sale with the rules on (`FRAUD_RULES=1`) and one with them off (`FRAUD_RULES=0`), "
        "each on a freshly started server, the order alternating from round to round (on, off / off, on / ...). "
        f"A sale: {args.quota} units, {args.quota + args.extra} buyers with 1 unit each after 400 warm-up orders "
        f"on another listing, then {args.late} more buyers after the sell-out (the sold-out figures). Every buyer "
        "is new, with its own phone, address and device, one of 3,000 IPs and an app user agent, and the same "
        "bodies in both arms. A figure is the median over the rounds.",
        "",
        "| clients | rules | rounds | accepted orders/s | accepted p50 / p99 ms | sold-out answers/s "
        "| sold-out p50 / p99 ms | CPU ms per sold-out answer: workers + Redis | 403 `risk_blocked` | other answers |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in risk:
        for arm in ("on", "off"):
            m = r[arm]
            lines.append(
                f"| {r['clients']} | {arm} | {m['runs']} | {m['accepted_per_s']:.0f} | "
                f"{m['accepted_p50_ms']:.0f} / {m['accepted_p99_ms']:.0f} | {m['sold_out_per_s']:.0f} | "
                f"{m['sold_out_p50_ms']:.1f} / {m['sold_out_p99_ms']:.1f} | "
                f"{m['server_cpu_ms_per_sold_out']:.3f} + {m['redis_cpu_ms_per_sold_out']:.3f} | {m['risk_blocked']} | "
                f"{_others(m['other'])} |"
            )
        on, off = r["on"], r["off"]
        lines.append(
            f"| {r['clients']} | **on / off** | | **{on['accepted_per_s'] / off['accepted_per_s']:.3f}x** | "
            f"**{on['accepted_p50_ms'] - off['accepted_p50_ms']:+.0f} / "
            f"{on['accepted_p99_ms'] - off['accepted_p99_ms']:+.0f} ms** | "
            f"**{on['sold_out_per_s'] / off['sold_out_per_s']:.3f}x** | "
            f"**{on['sold_out_p50_ms'] - off['sold_out_p50_ms']:+.1f} / "
            f"{on['sold_out_p99_ms'] - off['sold_out_p99_ms']:+.1f} ms** | **{cpu(on) / cpu(off):.2f}x** | | |"
        )
    paced = [r for r in risk if "paced_accepted_p99_ms" in r["on"]]
    if paced:
        lines += [
            "",
            "Below saturation, on the same servers after each sale (open loop: requests at a fixed rate, a "
            "latency counted from when the request was due, so waiting for a connection counts): what one "
            "answer costs when nobody queues. Median over the rounds.",
            "",
            "| clients (sale) | rules | accepted: rate / orders | accepted p50 / p99 ms | sold out: rate / answers "
            "| sold-out p50 / p99 ms | other answers |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in paced:
            for arm in ("on", "off"):
                m = r[arm]
                others = {}
                for s in r[f"{arm}_runs"]:
                    for k, v in s["paced_other"].items():
                        others[k] = others.get(k, 0) + v
                lines.append(
                    f"| {r['clients']} | {arm} | {m['paced_accepted_rate']:.0f}/s / {m['paced_accepted']} | "
                    f"{m['paced_accepted_p50_ms']:.1f} / {m['paced_accepted_p99_ms']:.1f} | "
                    f"{m['paced_sold_out_rate']:.0f}/s / {m['paced_sold_out']} | "
                    f"{m['paced_sold_out_p50_ms']:.2f} / {m['paced_sold_out_p99_ms']:.2f} | {_others(others)} |"
                )
            on, off = r["on"], r["off"]
            acc = paired(r["on_runs"], r["off_runs"], "paced_accepted_p99_ms", diff=True)
            sol = paired(r["on_runs"], r["off_runs"], "paced_sold_out_p99_ms", diff=True)
            lines.append(
                f"| {r['clients']} | **on - off** | | "
                f"**{on['paced_accepted_p50_ms'] - off['paced_accepted_p50_ms']:+.1f} / "
                f"{on['paced_accepted_p99_ms'] - off['paced_accepted_p99_ms']:+.1f} ms** | | "
                f"**{on['paced_sold_out_p50_ms'] - off['paced_sold_out_p50_ms']:+.2f} / "
                f"{on['paced_sold_out_p99_ms'] - off['paced_sold_out_p99_ms']:+.2f} ms** | |"
            )
            lines.append(
                f"\nPer round, p99 on - off: accepted {', '.join(f'{x:+.1f}' for x in acc)} ms; "
                f"sold out {', '.join(f'{x:+.2f}' for x in sol)} ms."
            )
    lines += ["", "Each sale in the order run (rules, accepted/s, accepted p99 ms, sold-out/s, sold-out p99 ms, load):"]
    for r in risk:
        sales = "; ".join(
            f"{s['arm']} {s['accepted_per_s']:.0f}, {s['accepted_p99_ms']:.0f}, {s['sold_out_per_s']:.0f}, "
            f"{s['sold_out_p99_ms']:.1f}, {s['loadavg']:.1f}{FLUSHED if s['redis_flushed'] else ''}"
            for s in r["sales"]
        )
        ratios = ", ".join(f"{x:.2f}" for x in paired(r["on_runs"], r["off_runs"], "sold_out_per_s"))
        diffs = ", ".join(f"{x:+.1f}" for x in paired(r["on_runs"], r["off_runs"], "sold_out_p99_ms", diff=True))
        acc = ", ".join(f"{x:.2f}" for x in paired(r["on_runs"], r["off_runs"], "accepted_per_s"))
        same = "identical in every sale" if r["same_bodies"] else "DIFFERENT between sales"
        lines.append(
            f"\n{r['clients']} clients: {sales}. Per round on/off: accepted/s {acc}; sold-out/s {ratios}; "
            f"sold-out p99 on - off {diffs} ms. Request bodies: {same}. Sales whose Redis database another "
            f"process flushed meanwhile: {sum(s['redis_flushed'] for s in r['sales'])}."
        )
    if guard:
        lines.append(
            f"\nThe guard alone, in one process without HTTP (`risk.guard_cost`, {guard['calls']} new buyers one "
            f"after another against the same Redis): p50 {guard['guard_p50_us']:.0f} µs, p99 "
            f"{guard['guard_p99_us']:.0f} µs, mean {guard['guard_mean_us']:.0f} µs per attempt, of which the "
            f"script call (one round trip) p50 {guard['script_p50_us']:.0f} µs, p99 {guard['script_p99_us']:.0f} µs, "
            f"mean {guard['script_mean_us']:.0f} µs; Python around it {guard['python_mean_us']:.0f} µs on average."
        )
    side = guard.get("side") if guard else None
    if side:
        lines += render_side_by_side(side, args)
    hold = guard.get("hold") if guard else None
    if hold:
        lines.append(
            f"\nThe Redis step of an accepted order, in one process without HTTP (`risk.hold_cost`, {hold['calls']} "
            "new buyers one after another, the two arms alternating): the gate's reserve alone (rules off) p50 "
            f"{hold['off_p50_us']:.0f} µs, p99 {hold['off_p99_us']:.0f} µs; the guard's script and the gate's "
            f"reserve in one round trip, judged (rules on) p50 {hold['on_p50_us']:.0f} µs, p99 "
            f"{hold['on_p99_us']:.0f} µs. **The rules add p50 {hold['added_p50_us']:+.0f} µs, p99 "
            f"{hold['added_p99_us']:+.0f} µs** (on - off, per quantile; mean {hold['added_mean_us']:+.0f} µs)."
        )
    return "\n".join(lines)


def render_side_by_side(side: list[dict], args: Any) -> list[str]:
    """The side-by-side rounds (``run.side_by_side``) as a table and the per-round differences."""
    acc_rate, so_rate = args.paced.split(",")

    def med(arm: str, key: str) -> float:
        return statistics.median(r[arm][key] for r in side)

    def diffs(key: str) -> list[float]:
        return [r["on"][key] - r["off"][key] for r in side]

    def mdiff(key: str) -> float:
        return statistics.median(diffs(key))

    others = {k: v for r in side for arm in ("on", "off") for k, v in r[arm]["other"].items()}
    loads = ", ".join(f"{r['load']:.1f}" for r in side)
    counts = ", ".join(f"{r['on']['accepted']}/{r['off']['accepted']}" for r in side)
    return [
        "",
        f"Side by side (`--side-by-side {len(side)}`): in each round a rules-on and a rules-off server are up at "
        f"once, each warmed with {side[0]['warm']} orders, and one load generator sends both their paced requests "
        f"interleaved (the off arm's half a period after the on arm's): {acc_rate} accepted orders/s to each for "
        f"{args.paced_seconds:g} s, then {so_rate} sold-out requests/s to each. Both arms meet the same moments of "
        "the machine. Median over the rounds.",
        "",
        "| rules | accepted p50 / p99 ms | sold-out p50 / p99 ms |",
        "|---|---|---|",
        f"| on | {med('on', 'accepted_p50_ms'):.1f} / {med('on', 'accepted_p99_ms'):.1f} | "
        f"{med('on', 'sold_out_p50_ms'):.2f} / {med('on', 'sold_out_p99_ms'):.2f} |",
        f"| off | {med('off', 'accepted_p50_ms'):.1f} / {med('off', 'accepted_p99_ms'):.1f} | "
        f"{med('off', 'sold_out_p50_ms'):.2f} / {med('off', 'sold_out_p99_ms'):.2f} |",
        f"| **on - off** (median of the rounds' differences) | **{mdiff('accepted_p50_ms'):+.1f} / "
        f"{mdiff('accepted_p99_ms'):+.1f}** | **{mdiff('sold_out_p50_ms'):+.2f} / {mdiff('sold_out_p99_ms'):+.2f}** |",
        "",
        "Per round, p99 on - off: accepted "
        + ", ".join(f"{x:+.1f}" for x in diffs("accepted_p99_ms"))
        + " ms; sold out "
        + ", ".join(f"{x:+.2f}" for x in diffs("sold_out_p99_ms"))
        + f" ms (load at the end of each round: {loads}); accepted orders per round, on/off: {counts}; other "
        f"answers: {_others(others)}.",
    ]


def cpu(m: dict) -> float:
    """CPU ms per sold-out answer, the server's workers and Redis together."""
    return m["server_cpu_ms_per_sold_out"] + m["redis_cpu_ms_per_sold_out"]


def _others(codes: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(codes.items())) or "none"
