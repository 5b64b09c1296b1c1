"""Risk features (apps/fraud/features.py), the drop-point key (facts.py), offline facts
(offline.py) and reason texts (reasons.py): graph features on hand-built orders, the exact
feature list, explanations, and that nothing the simulator alone knows reaches the facts."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import translation

from apps.core.normalise import normalise_address
from apps.fraud.facts import OrderFacts, drop_point_key, ip_prefix
from apps.fraud.features import (
    FEATURE_NAMES,
    NEIGHBOURHOOD_CAP,
    Neighbourhood,
    ShowIndex,
    explain,
    order_features,
)
from apps.fraud.offline import ServerLag, facts_from_attempts, scored_view, show_facts
from apps.fraud.reasons import REASONS, render_reason, render_reasons
from apps.fraud.simulation import (
    Label,
    SimulatedAddress,
    SimulatedAttempt,
    SimulatedBuyer,
    SimulatedClient,
    SimulationConfig,
    generate_attempts,
    random_config,
)

OPEN_MS = 1_750_000_000_000
DAY_MS = 86_400_000
HOME = {"province": "浙江省", "city": "杭州市", "district": "西湖区", "detail": "文三路100号阳光花园3幢1202室"}


def order(
    key: str,
    buyer: str,
    *,
    at: int = 2000,
    device: str | None = None,
    phone: str | None = None,
    address: dict[str, str] | str | None = None,
    ip: str | None = None,
    age_days: float | None = 400.0,
    quantity: int = 1,
    limit: int = 2,
    ua: str = "",
    early: int = 0,
    paid_after: int | None = None,
) -> OrderFacts:
    placed = OPEN_MS + at
    return OrderFacts(
        key=key,
        show="s1",
        listing="1",
        buyer=buyer,
        placed_ms=placed,
        since_open_ms=at,
        quantity=quantity,
        limit=limit,
        registered_ms=None if age_days is None else placed - int(age_days * DAY_MS),
        phone_key=phone,
        address_key=normalise_address(address) if address is not None else None,
        device=device,
        ip=ip,
        ip24=ip_prefix(ip),
        user_agent=ua,
        early_attempts=early,
        paid_after_ms=paid_after,
    )


def features_in(orders: list[OrderFacts], target: OrderFacts, **kw: int) -> dict[str, float]:
    return order_features(target, ShowIndex(orders).neighbourhood(target, **kw))


# --- graph features ------------------------------------------------------------------------------


def test_a_farm_sharing_two_devices_is_one_big_cluster_of_young_accounts() -> None:
    farm = [
        order(
            f"f{i}",
            f"farm{i}",
            at=1000 + 300 * i,
            device=("dev-a", "dev-b")[i % 2],
            phone=f"170{12345600 + i:08d}",
            address={**HOME, "detail": f"人民路{i % 3 + 1}号"},  # three drop points bridge the two devices
            ip=f"39.{i}.0.7",
            age_days=3.0,
        )
        for i in range(12)
    ]
    fans = [order(f"g{i}", f"fan{i}", device=f"d{i}", address={**HOME, "detail": f"解放路{i}号"}) for i in range(5)]
    f = features_in(farm + fans, farm[-1], as_of_ms=farm[-1].placed_ms)
    assert f["cluster_buyers"] == 12
    assert f["device_buyers"] == 6
    assert f["cluster_devices"] == 2
    assert f["cluster_buyers_per_device"] == 6
    assert f["cluster_young_share"] == 1.0
    assert f["address_buyers"] == 4  # accounts 2, 5, 8 and 11
    assert f["cluster_addresses"] == 3
    assert f["nearest_linked_phone_gap_log"] == 0.0  # consecutive numbers: a gap of 1
    assert f["cluster_registration_span_log"] < 0.1  # made in one batch
    lone = features_in(farm + fans, fans[0])
    assert lone["cluster_buyers"] == 1 and lone["device_buyers"] == 1


def test_a_household_of_three_is_linked_by_its_address_however_written_not_by_its_ip() -> None:
    writings = ["文三路100号阳光花园3幢1202室", "文三路１００號阳光花园3栋12-02", "文三路100号 阳光花园 3号楼 1202"]
    nat = "117.136.5.9"  # a carrier NAT: 200 strangers and the family behind one address
    family = [
        order(f"h{i}", f"member{i}", device=f"hd{i}", address={**HOME, "detail": w}, ip=nat, at=1500 + 400 * i)
        for i, w in enumerate(writings)
    ]
    strangers = [
        order(f"n{i}", f"stranger{i}", device=f"nd{i}", address={**HOME, "detail": f"学府路{i + 1}号"}, ip=nat)
        for i in range(200)
    ]
    f = features_in(family + strangers, family[-1])
    assert f["address_buyers"] == 3
    assert f["drop_buyers"] == 3
    assert f["cluster_buyers"] == 3  # not 203: the IP links nobody
    assert f["ip_buyers_log"] == pytest.approx(7.672, abs=0.01)  # log2(1 + 203)
    assert f["device_buyers"] == 1


def test_a_jigged_drop_point_links_through_the_drop_point_key() -> None:
    jigged = [
        "青年路887号新城嘉园14号楼2903",
        "新城嘉园青年路887号14座Rm2903一期",
        "新城嘉园14-2903（菜鸟驿站）",
        "虎丘区新城嘉园14幢29-03-A",
        "青年路887號 新城嘉园 14幢 29楼03号B区",
    ]
    region = {"province": "江苏省", "city": "苏州市", "district": "虎丘区"}
    ring = []
    for i, detail in enumerate(jigged):
        addr = {**region, "detail": detail}
        if detail.startswith("虎丘区"):
            addr["district"] = ""
        ring.append(order(f"j{i}", f"jig{i}", device=f"jd{i}", address=addr, ip=f"223.104.{i}.1"))
    assert len({o.address_key for o in ring}) == 5  # no two keys equal: the crew's aim
    f = features_in(ring, ring[-1])
    assert f["drop_buyers"] == 5
    assert f["drop_address_variants"] == 5
    assert f["cluster_buyers"] == 5
    assert f["address_buyers"] == 1


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("江苏苏州虎丘|青年路887号新城嘉园14栋2903", "江苏苏州|虎丘区新城嘉园青年路887号14栋2903放门口"),
        ("江苏苏州虎丘|新城嘉园14-2903", "江苏苏州虎丘|新城嘉园14栋29-03-a"),
        ("湖北武汉武昌|东风路339号阳光公寓28栋3单元1007", "湖北武汉武昌|阳光公寓东风路339号28栋3单元1007号a栋"),
        ("浙江宁波鄞州|幸福路676号绿城嘉园5栋104", "浙江宁波鄞州|绿城嘉园5栋1-041期"),
    ],
)
def test_drop_point_key_joins_writings_of_one_flat(a: str, b: str) -> None:
    assert drop_point_key(a) == drop_point_key(b) is not None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("江苏苏州虎丘|青年路887号新城嘉园14栋2903", "江苏苏州虎丘|青年路887号新城嘉园14栋2904"),  # room
        ("江苏苏州虎丘|青年路887号新城嘉园14栋2903", "江苏苏州虎丘|青年路887号新城嘉园15栋2903"),  # building
        ("江苏苏州虎丘|新城嘉园14栋2单元2903", "江苏苏州虎丘|新城嘉园14栋3单元2903"),  # unit
        ("安徽合肥庐阳|长江路310号御景嘉园23栋1706", "安徽合肥庐阳|建设路599号御景佳园23栋1706"),  # compound
        ("江苏苏州虎丘|新城嘉园14栋2903", "江苏苏州姑苏|新城嘉园14栋2903"),  # district
        ("浙江杭州西湖|人民路1号1栋101", "浙江杭州西湖|人民路3号1栋101"),  # a bare road: its number
        ("浙江杭州西湖|迎宾大道9号1栋101", "浙江杭州西湖|迎宾大道19号1栋101"),
        ("北京海淀|中关村大街5号1栋105", "北京海淀|中关村大街107号1栋105"),
    ],
)
def test_drop_point_key_keeps_different_flats_apart(a: str, b: str) -> None:
    assert drop_point_key(a) != drop_point_key(b)


def test_drop_point_key_is_none_without_a_building_and_room() -> None:
    assert drop_point_key(None) is None
    assert drop_point_key("浙江杭州西湖|文三路100号") is None


def test_the_neighbourhood_sees_no_order_placed_after_its_moment() -> None:
    a = order("a", "b1", device="dev", at=1000)
    b = order("b", "b2", device="dev", at=3000)
    index = ShowIndex([a, b])
    assert [o.key for o in index.neighbourhood(a).linked] == ["a"]
    assert [o.key for o in index.neighbourhood(a, as_of_ms=b.placed_ms).linked] == ["a", "b"]
    assert [o.key for o in index.neighbourhood(b).linked] == ["b", "a"]


def test_the_neighbourhood_links_transitively_and_is_capped() -> None:
    # A chain: order i shares a device with i+1 and a phone with i-1.
    chain = [order(f"c{i}", f"b{i}", device=f"d{i // 2}", phone=f"138{(i + 1) // 2:08d}") for i in range(9)]
    assert len(ShowIndex(chain).neighbourhood(chain[0]).linked) == 9
    many = [order(f"m{i}", f"b{i}", device="shared") for i in range(NEIGHBOURHOOD_CAP + 50)]
    nb = ShowIndex(many).neighbourhood(many[0])
    assert len(nb.linked) == NEIGHBOURHOOD_CAP
    assert nb.linked[0].key == "m0"


def test_order_features_are_exactly_feature_names_in_order_and_all_floats() -> None:
    o = order("x", "buyer", device="d", phone="13800001111", address=HOME, ip="1.2.3.4", ua="curl/8.5.0")
    f = order_features(o, Neighbourhood(linked=(o,), ip_buyers=1, ip24_buyers=1))
    assert tuple(f) == FEATURE_NAMES
    assert all(type(v) is float for v in f.values())
    assert f["ua_script"] == 1.0 and f["ua_browser"] == 0.0
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)


def test_missing_signals_get_their_flags_and_sentinels() -> None:
    o = order("x", "buyer", age_days=None)
    o = dataclasses.replace(o, since_open_ms=None)
    f = order_features(o, Neighbourhood(linked=()))  # the order itself is added when absent
    assert f["account_age_missing"] == 1.0 and f["account_age_log"] == -1.0
    assert f["since_open_missing"] == 1.0 and f["since_open_log"] == -1.0
    assert f["phone_missing"] == f["device_missing"] == f["address_missing"] == f["ip_missing"] == 1.0
    assert f["ua_missing"] == 1.0
    assert f["paid_known"] == 0.0 and f["paid_after_log"] == -1.0
    assert f["cluster_buyers"] == 1.0 and f["cluster_orders"] == 1.0


# --- explanations and reason texts ----------------------------------------------------------------


def test_explain_names_what_a_merchant_can_check() -> None:
    farm = [order(f"f{i}", f"farm{i}", device="wall", age_days=2.0, at=900 + 200 * i) for i in range(8)]
    f = features_in(farm, farm[-1])
    codes = [r["code"] for r in explain(farm[-1], f)]
    assert codes[0] == "device_shared"
    assert "young_cluster" in codes
    assert explain(farm[-1], f)[0]["params"] == {"buyers": 8}

    sniper = order("s", "script", at=12, quantity=2, limit=2, ua="python-requests/2.31.0", early=6, paid_after=400)
    f = order_features(sniper, Neighbourhood(linked=(sniper,)))
    assert [r["code"] for r in explain(sniper, f)] == ["script_client", "early_attempts", "ordered_at_open"]

    fan = order("g", "fan", device="d", ua="Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148")
    f = order_features(fan, Neighbourhood(linked=(fan,)))
    assert explain(fan, f) == [{"code": "model_pattern", "params": {}}]


def test_every_code_explain_can_give_has_a_text() -> None:
    pairs = show_facts(random_config(31, n_orders=1500))
    index = ShowIndex(f for f, _ in pairs)
    codes = set()
    for facts, _ in pairs:
        codes.update(r["code"] for r in explain(facts, order_features(facts, index.neighbourhood(facts))))
    assert len(codes) >= 10
    assert codes <= set(REASONS)


def test_reasons_render_with_their_parameters() -> None:
    with translation.override("en"):
        assert render_reason("device_shared", {"buyers": 7}) == "7 buyers ordered from this device in this show"
        assert render_reason("device_shared", {"buyers": 1}) == "1 buyer ordered from this device in this show"
        assert render_reason("early_attempts", {"attempts": 3.0}) == "3 attempts before the sale opened"
        assert render_reason("risk_unavailable", None) == "Risk checks could not run for this order"
        assert render_reasons([{"code": "young_cluster", "params": {"percent": 80, "buyers": 10}}]) == [
            "80% of the 10 linked buyers have accounts less than 30 days old"
        ]


def test_a_reason_that_cannot_render_is_its_code_never_an_error() -> None:
    assert render_reason("from_a_newer_release", {"x": 1}) == "from_a_newer_release"
    assert render_reason("device_shared", {}) == "device_shared"
    assert render_reason("device_shared", {"buyers": "seven"}) == "device_shared"
    assert render_reason("device_shared", None) == "device_shared"


def test_the_hot_path_rule_codes_are_all_there() -> None:
    rule_codes = {
        "early_attempts": ("attempts",),
        "script_client": (),
        "headless_browser": (),
        "inconsistent_client": (),
        "ip_velocity": ("attempts",),
        "ip24_velocity": ("attempts",),
        "device_velocity": ("attempts",),
        "phone_velocity": ("attempts",),
        "address_velocity": ("attempts",),
        "device_shared": ("buyers",),
        "phone_shared": ("buyers",),
        "address_shared": ("buyers",),
        "short_payment_window": ("seconds",),
        "risk_unavailable": (),
    }
    with translation.override("en"):
        for code, params in rule_codes.items():
            assert REASONS[code].params == params
            text = render_reason(code, dict.fromkeys(params, 42))
            assert text != code and ("42" in text) == bool(params)


# --- offline facts ------------------------------------------------------------------------------------


def attempt(
    aid: str,
    t_ms: int,
    *,
    buyer: str = "dy1",
    device: str | None = "dev1",
    ip: str = "39.1.2.3",
    quantity: int = 1,
    pays: bool = True,
    pay_after: int | None = 5000,
    kind: str = "genuine",
) -> SimulatedAttempt:
    return SimulatedAttempt(
        attempt_id=aid,
        t_ms=t_ms,
        buyer=SimulatedBuyer(buyer, "王伟", "13800001111", datetime(2024, 1, 1, tzinfo=UTC)),
        client=SimulatedClient(ip, device, "okhttp/4.12.0"),
        shipping_address=SimulatedAddress("王伟", "+86 138 0000 1111", "浙江省", "杭州市", "西湖区", "文三路1号"),
        quantity=quantity,
        pays=pays,
        pay_after_ms=pay_after if pays else None,
        retry_of=None,
        label=Label(kind, "eager_fan" if kind == "genuine" else kind, "a1", "p1"),
    )


def test_attempts_before_open_are_not_orders_but_count_as_early_attempts() -> None:
    attempts = [
        attempt("a1", -900, buyer="dy1", device=None, ip="47.96.0.1"),
        attempt("a2", -500, buyer="dy2", device="dev9", ip="47.96.0.1"),
        attempt("a3", -100, buyer="dy1", device=None, ip="47.96.0.1"),
        attempt("a4", 30, buyer="dy1", device=None, ip="47.96.0.1", quantity=2),
        attempt("a5", 900, buyer="dy3", device="dev9", ip="39.0.0.1"),
        attempt("a6", 1500, buyer="dy4", device="dev4", ip="39.0.0.2"),
    ]
    facts = {f.key: f for f, _ in facts_from_attempts(attempts, limit=2, opens_at_ms=OPEN_MS)}
    assert set(facts) == {"a4", "a5", "a6"}
    assert facts["a4"].early_attempts == 3  # the IP's three shots (the buyer's own: two)
    assert facts["a5"].early_attempts == 1  # its device shot once before open, by another account
    assert facts["a6"].early_attempts == 0
    a4 = facts["a4"]
    assert (a4.placed_ms, a4.since_open_ms, a4.quantity, a4.limit) == (OPEN_MS + 30, 30, 2, 2)
    assert a4.phone_key == "13800001111" and a4.address_key == normalise_address(attempts[3].shipping_address.as_dict())
    assert (a4.ip, a4.ip24, a4.device, a4.user_agent) == ("47.96.0.1", "47.96.0.0/24", None, "okhttp/4.12.0")
    assert a4.paid_after_ms == 5000


def test_the_per_buyer_limit_and_a_repeated_key_make_no_new_order() -> None:
    attempts = [
        attempt("a1", 100, quantity=2, pays=False),
        attempt("a1", 200, quantity=2, pays=False),  # the same key again: the same order
        attempt("a2", 300, quantity=1),  # over the limit while a1 holds 2
        attempt("a3", 60_000 + 150, quantity=2),  # a1's units came back at the end of its window
    ]
    got = facts_from_attempts(attempts, limit=2, opens_at_ms=OPEN_MS, payment_window_ms=60_000)
    assert [f.key for f, _ in got] == ["a1", "a3"]
    assert got[0][0].paid_after_ms is None
    never_released = facts_from_attempts(attempts, limit=2, opens_at_ms=OPEN_MS)
    assert [f.key for f, _ in never_released] == ["a1"]


def test_the_facts_never_depend_on_the_label() -> None:
    attempts = generate_attempts(SimulationConfig(seed=5, n_orders=1200))
    labels = [a.label for a in attempts]
    random.Random(1).shuffle(labels)
    shuffled = [dataclasses.replace(a, label=lab) for a, lab in zip(attempts, labels, strict=True)]
    plain = facts_from_attempts(attempts, limit=2)
    other = facts_from_attempts(shuffled, limit=2)
    assert [f for f, _ in plain] == [f for f, _ in other]
    assert [lab for _, lab in plain] != [lab for _, lab in other]  # the labels did move


def test_a_payment_made_after_scoring_is_not_known_then() -> None:
    o = order("x", "b", paid_after=20_000)
    assert scored_view(o, 5_000).paid_after_ms is None
    assert scored_view(o, 30_000).paid_after_ms == 20_000
    assert scored_view(o, None).paid_after_ms == 20_000


def test_registration_and_timing_come_from_the_attempt() -> None:
    config = random_config(8, n_orders=400)
    pairs = show_facts(config)
    opens = int(config.opens_at.timestamp() * 1000)
    attempts = {a.attempt_id: a for a in generate_attempts(config)}
    for facts, _ in pairs[:50]:
        a = attempts[facts.key]
        assert facts.placed_ms == opens + a.t_ms >= opens
        assert facts.registered_ms == int(a.buyer.registered_at.timestamp() * 1000)
        assert facts.limit == config.per_buyer_limit
        assert facts.registered_ms < facts.placed_ms + timedelta(days=1).total_seconds() * 1000


# --- a busy server's lag (offline.ServerLag) -----------------------------------------------------
def test_a_burst_above_the_servers_rate_queues_in_arrival_order() -> None:
    slow = ServerLag(per_s=50, seed=7)
    burst = [float(i) for i in range(200)]  # 200 requests in 0.2 s, a 50/s server: ~4 s to drain
    waited = slow.delays(burst)
    done = [t + d for t, d in zip(burst, waited, strict=True)]
    assert done == sorted(done)  # first come, first served
    assert all(d > 0 for d in waited)
    assert 2_500 < waited[-1] < 6_000 and waited[0] < 200
    fast = ServerLag(per_s=5_000, seed=7).delays([i * 100.0 for i in range(200)])  # 10/s to a 5000/s server
    assert max(fast) < 5
    assert slow.delays(list(reversed(burst))) == list(reversed(waited))  # each request keeps its own wait


def test_a_lagged_show_moves_the_servers_clock_not_what_the_buyers_did() -> None:
    config = random_config(31, n_orders=1500)
    exact = show_facts(config)
    lag = ServerLag.for_show(31)
    lagged = facts_from_attempts(
        generate_attempts(config),
        show="sim-31",
        limit=config.per_buyer_limit,
        opens_at_ms=int(config.opens_at.timestamp() * 1000),
        payment_window_ms=config.payment_window_ms,
        lag=ServerLag(per_s=40, seed=31),
    )
    assert lag == ServerLag.for_show(31)  # drawn from the seed: the same server every time
    assert [(f.key, lab) for f, lab in exact] == [(f.key, lab) for f, lab in lagged]  # the same orders
    shifts = []
    for (e, _), (g, _) in zip(exact, lagged, strict=True):
        shift = g.since_open_ms - e.since_open_ms
        assert shift >= 0 and g.placed_ms - e.placed_ms == shift
        same = ("buyer", "device", "ip", "address_key", "quantity", "early_attempts")
        assert [getattr(e, k) for k in same] == [getattr(g, k) for k in same]
        assert (e.paid_after_ms is None) == (g.paid_after_ms is None) and (g.paid_after_ms or 0) >= 0
        shifts.append(shift)
    shifts.sort()
    assert shifts[len(shifts) // 2] > 1_000  # the opening burst waited seconds on a 40/s server
    draws = [ServerLag.for_show(seed) for seed in range(1000, 1200)]
    assert 0.15 < sum(d is None for d in draws) / len(draws) < 0.35  # a quarter of shows keep up
    lo, hi = ServerLag.RANGE_PER_S
    assert all(lo <= d.per_s <= hi for d in draws if d is not None)
