"""The traffic simulator's generator (apps/fraud/simulation.py): deterministic per seed, the mix
it is asked for, each abuse kind's signature, the genuine hard negatives, and bodies our order
parser accepts. No database: the generator is pure."""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from collections import Counter, defaultdict
from datetime import datetime

import pytest

from apps.fraud.simulation import (
    ABUSE_KINDS,
    GENUINE,
    GENUINE_GROUPS,
    KINDS,
    SCRIPT_UAS,
    VIRTUAL_PREFIXES,
    SimulatedAttempt,
    SimulationConfig,
    generate_attempts,
    random_config,
)
from apps.orders.placement.request import parse_order_request


@pytest.fixture(scope="module")
def show() -> list[SimulatedAttempt]:
    # every client described: the per-kind tests below read the clients (relaying is tested apart)
    return generate_attempts(SimulationConfig(seed=42, n_orders=5000, relayed_share=0.0))


def by_kind(show: list[SimulatedAttempt], kind: str) -> list[SimulatedAttempt]:
    return [a for a in show if a.label.kind == kind]


def by_group(show: list[SimulatedAttempt], group: str) -> list[SimulatedAttempt]:
    return [a for a in show if a.label.kind == GENUINE and a.label.group == group]


def age_days(a: SimulatedAttempt, config: SimulationConfig) -> float:
    return (config.opens_at - a.buyer.registered_at).total_seconds() / 86_400


def test_same_seed_gives_the_same_stream() -> None:
    config = random_config(5, n_orders=1500)
    assert generate_attempts(config) == generate_attempts(random_config(5, n_orders=1500))


def test_different_seeds_give_different_streams() -> None:
    a = generate_attempts(SimulationConfig(seed=1, n_orders=1000))
    b = generate_attempts(SimulationConfig(seed=2, n_orders=1000))
    assert [x.buyer.external_id for x in a] != [x.buyer.external_id for x in b]
    assert len({x.buyer.external_id for x in a} & {x.buyer.external_id for x in b}) < 10
    assert [x.t_ms for x in a] != [x.t_ms for x in b]


def test_random_config_varies_mix_and_knobs_per_seed() -> None:
    configs = [random_config(s) for s in range(8)]
    assert random_config(3) == random_config(3)
    assert len({round(c.mix[GENUINE], 4) for c in configs}) == 8
    assert len({round(c.genuine_groups["shared_ip"], 4) for c in configs}) == 8
    assert len({c.sniper.script_ua_share for c in configs}) == 8
    assert len({(c.quota, c.per_buyer_limit, c.window_ms) for c in configs}) > 3
    for c in configs:
        assert 0.08 <= 1 - c.mix[GENUINE] <= 0.35
        assert all(c.mix[k] > 0 for k in ABUSE_KINDS)


@pytest.mark.parametrize("seed", [11, 12])
def test_mix_and_genuine_groups_hold_over_5000_attempts(seed: int) -> None:
    config = random_config(seed, n_orders=5000)
    attempts = generate_attempts(config)
    assert len(attempts) == 5000
    kinds = Counter(a.label.kind for a in attempts)
    mix_total = sum(config.mix.values())
    for kind in KINDS:
        assert kinds[kind] / 5000 == pytest.approx(config.mix[kind] / mix_total, abs=0.002), kind
    genuine = kinds[GENUINE]
    groups = Counter(a.label.group for a in attempts if a.label.kind == GENUINE)
    group_total = sum(config.genuine_groups.values())
    for group in GENUINE_GROUPS:
        assert groups[group] / genuine == pytest.approx(config.genuine_groups[group] / group_total, abs=0.003)


def test_stream_is_sorted_with_unique_ids_and_retries_repeat_their_original(show: list[SimulatedAttempt]) -> None:
    assert [a.t_ms for a in show] == sorted(a.t_ms for a in show)
    assert len({a.attempt_id for a in show}) == len(show)
    ids = {a.attempt_id: i for i, a in enumerate(show)}
    retries = [a for a in show if a.retry_of]
    assert len(retries) > 50
    for r in retries:
        original = show[ids[r.retry_of]]  # type: ignore[index]
        assert ids[r.attempt_id] > ids[original.attempt_id]
        assert 0 < r.t_ms - original.t_ms <= 6001
        assert (r.buyer, r.client, r.shipping_address, r.quantity) == (
            original.buyer,
            original.client,
            original.shipping_address,
            original.quantity,
        )
        assert r.label.kind == GENUINE and not original.pays


def test_genuine_fans_arrive_in_a_burst_with_a_tail_on_aged_accounts(show: list[SimulatedAttempt]) -> None:
    config = SimulationConfig(seed=42)
    eager = [a.t_ms for a in by_group(show, "eager_fan")]
    assert min(eager) > 0
    assert 1000 < statistics.median(eager) < 5000
    assert sum(t <= 10_000 for t in eager) / len(eager) > 0.8
    assert max(eager) > 20_000  # the tail
    casual = [a.t_ms for a in by_group(show, "casual")]
    assert statistics.median(casual) > 30_000
    genuine = by_kind(show, GENUINE)
    ages = [age_days(a, config) for a in genuine]
    assert sum(age > 30 for age in ages) / len(ages) > 0.9
    assert statistics.median(ages) > 180
    assert all(a.quantity <= config.per_buyer_limit for a in genuine)
    assert all(ua not in SCRIPT_UAS and "Mobile" in ua for ua in (a.client.user_agent for a in genuine))
    in_app = sum("aweme_" in a.client.user_agent or "Kwai/" in a.client.user_agent for a in genuine)
    assert 0.5 < in_app / len(genuine) < 0.85
    assert 0.85 < sum(a.pays for a in genuine) / len(genuine) < 0.99


def test_shared_ip_fans_really_share_ips_and_eager_fans_do_not(show: list[SimulatedAttempt]) -> None:
    shared = by_group(show, "shared_ip")
    buyers_per_ip: dict[str, set[str]] = defaultdict(set)
    buyers_per_24: dict[str, set[str]] = defaultdict(set)
    for a in shared:
        buyers_per_ip[a.client.ip].add(a.buyer.external_id)
        buyers_per_24[a.client.ip.rsplit(".", 1)[0]].add(a.buyer.external_id)
    buyers = {a.buyer.external_id for a in shared}
    assert max(len(b) for b in buyers_per_ip.values()) >= 40  # one CGNAT egress, many fans
    assert max(len(b) for b in buyers_per_24.values()) >= 60
    assert len(buyers_per_24) <= len(buyers) / 20
    # Distinct devices: these are different people.
    assert len({a.client.device_id for a in shared}) == len(buyers)
    eager_per_ip = Counter(a.client.ip for a in by_group(show, "eager_fan") if a.retry_of is None)
    assert max(eager_per_ip.values()) <= 2


def test_households_share_one_drop_point_written_differently(show: list[SimulatedAttempt]) -> None:
    homes: dict[str, list[SimulatedAttempt]] = defaultdict(list)
    for a in by_group(show, "household"):
        if a.retry_of is None:
            homes[a.label.actor].append(a)
    full = [members for members in homes.values() if len(members) >= 2]
    assert len(full) > 50
    differ = 0
    for members in full:
        assert len({m.label.drop_point for m in members}) == 1
        assert len({m.buyer.external_id for m in members}) == len(members) <= 4
        details = [m.shipping_address.detail for m in members]
        differ += len(set(details)) == len(details)
    assert differ / len(full) > 0.9
    written = " ".join(a.shipping_address.detail for a in by_group(show, "household"))
    for mark in ("幢", "栋", "号楼", "室", "-", "０", "单元"):
        assert mark in written, mark


def test_snipers_fire_before_and_at_open_with_script_uas(show: list[SimulatedAttempt]) -> None:
    config = SimulationConfig(seed=42)
    snipers = by_kind(show, "sniper")
    before = [a for a in snipers if a.t_ms < 0]
    assert len(before) / len(snipers) > 0.4
    assert not [a for a in by_kind(show, GENUINE) if a.t_ms < 0]
    after = [a.t_ms for a in snipers if a.t_ms >= 0]
    assert statistics.median(after) < 400
    uas = Counter(a.client.user_agent in SCRIPT_UAS for a in snipers)
    assert uas[True] > 0 and uas[False] > 0  # some scripts disguise themselves
    assert all(a.quantity == config.per_buyer_limit for a in snipers)
    assert all(a.pays and a.pay_after_ms is not None and a.pay_after_ms < 2000 for a in snipers)
    # Regular timing: the gaps between one account's shots barely vary.
    shots: dict[str, list[int]] = defaultdict(list)
    for a in snipers:
        shots[a.buyer.external_id].append(a.t_ms)
    spreads = []
    for times in shots.values():
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        if len(gaps) >= 3:
            spreads.append(statistics.pstdev(gaps) / statistics.mean(gaps))
    assert spreads and statistics.median(spreads) < 0.15


def test_account_farms_have_young_accounts_few_devices_sequential_virtual_phones(
    show: list[SimulatedAttempt],
) -> None:
    config = SimulationConfig(seed=42)
    farm = by_kind(show, "account_farm")
    assert statistics.median(age_days(a, config) for a in farm) < 21
    farms: dict[str, list[SimulatedAttempt]] = defaultdict(list)
    for a in farm:
        farms[a.label.actor].append(a)
    for members in farms.values():
        if len(members) < 6:
            continue  # the last farm may be cut by the count
        phones = sorted(int(a.buyer.phone) for a in members)
        assert all(str(p)[:3] in VIRTUAL_PREFIXES for p in phones)
        assert all(0 < b - a <= config.account_farm.phone_step_max for a, b in zip(phones, phones[1:], strict=False))
        assert len({a.client.device_id for a in members}) <= config.account_farm.devices[1] < len(members)
        assert len({a.buyer.external_id for a in members}) == len(members)
        assert all(a.quantity == 1 for a in members)


def test_address_jigging_writes_one_drop_point_many_ways(show: list[SimulatedAttempt]) -> None:
    jig = by_kind(show, "address_jigging")
    points: dict[str, list[SimulatedAttempt]] = defaultdict(list)
    for a in jig:
        points[a.label.drop_point].append(a)
    big = [members for members in points.values() if len(members) >= 4]
    assert big
    for members in big:
        details = [a.shipping_address.detail for a in members]
        assert len(set(details)) == len(details)  # no two orders read the same
        assert len({a.buyer.external_id for a in members}) == len(members)
        assert len({a.buyer.phone for a in members}) == len(members)
    written = " ".join(a.shipping_address.detail for a in jig)
    assert any(mark in written for mark in ("Rm", "room"))
    assert "號" in written and "楼" in written


def test_proxy_rotation_uses_a_fresh_device_and_ip_every_order_with_few_inconsistent_uas(
    show: list[SimulatedAttempt],
) -> None:
    config = SimulationConfig(seed=42)
    proxy = by_kind(show, "proxy_rotation")
    assert len({a.client.device_id for a in proxy}) == len(proxy)
    assert len({a.client.ip for a in proxy}) == len(proxy)
    per_operator: dict[str, set[str]] = defaultdict(set)
    for a in proxy:
        per_operator[a.label.actor].add(a.client.user_agent)
    assert all(len(uas) <= config.proxy_rotation.ua_pool[1] for uas in per_operator.values())

    def contradictory(ua: str) -> bool:
        iphone_blink = "iPhone" in ua and "Chrome/" in ua
        desktop_app = ("Windows NT" in ua or "Macintosh" in ua) and ("aweme_" in ua or "Kwai/" in ua)
        return iphone_blink or desktop_app or ("Android" in ua and "iPhone" in ua)

    assert sum(contradictory(a.client.user_agent) for a in proxy) / len(proxy) > 0.4
    assert not [a for a in by_kind(show, GENUINE) if contradictory(a.client.user_agent)]
    assert statistics.median(age_days(a, config) for a in proxy) > 300  # dormant or bought accounts
    assert statistics.median(a.t_ms for a in proxy) < 2500


def test_hoarders_take_the_maximum_at_open_and_never_pay(show: list[SimulatedAttempt]) -> None:
    config = SimulationConfig(seed=42)
    hoard = by_kind(show, "hoarder")
    assert all(a.quantity == config.per_buyer_limit and not a.pays and a.pay_after_ms is None for a in hoard)
    first = [a for a in hoard if a.t_ms <= config.hoarder.open_spread_ms]
    again = [a for a in hoard if a.t_ms >= config.payment_window_ms]
    assert len(first) + len(again) == len(hoard) and first and again
    assert {a.buyer.external_id for a in again} <= {a.buyer.external_id for a in first}


def test_brushing_rings_share_devices_and_addresses_and_pay_instantly_off_peak(
    show: list[SimulatedAttempt],
) -> None:
    config = SimulationConfig(seed=42)
    brush = by_kind(show, "brushing_ring")
    assert all(a.pays and a.pay_after_ms is not None and a.pay_after_ms <= 3000 for a in brush)
    assert min(a.t_ms for a in brush) >= config.brushing_ring.start_after_ms
    rings: dict[str, list[SimulatedAttempt]] = defaultdict(list)
    for a in brush:
        rings[a.label.actor].append(a)
    for members in rings.values():
        accounts = {a.buyer.external_id for a in members}
        if len(accounts) < 4:
            continue
        assert len({a.client.device_id for a in members}) <= config.brushing_ring.devices[1] < len(accounts)
        assert len({a.label.drop_point for a in members}) <= config.brushing_ring.addresses[1] < len(accounts)
        assert all(a.quantity == 1 for a in members)


def test_order_body_is_accepted_by_the_order_parser(show: list[SimulatedAttempt]) -> None:
    """Every generated body is a valid order: it parses with its ``client`` block and
    ``buyer.registered_at``, which reach the request as the buyer's signals, and the rest is the
    same order as without them."""
    kinds_seen = set()
    for a in show:
        body = a.order_body(77)
        assert "label" not in json.dumps(body)
        stripped = json.loads(json.dumps(body, ensure_ascii=False))
        client = stripped.pop("client")
        registered = stripped["buyer"].pop("registered_at")
        request = parse_order_request(body)
        plain = parse_order_request(stripped)
        assert dataclasses.replace(request, client=plain.client, buyer_registered_at=None) == plain
        assert request.client.ip == a.client.ip and request.client.user_agent == a.client.user_agent
        assert request.client.device_id == (a.client.device_id or "")
        assert request.buyer_registered_at == a.buyer.registered_at
        assert request.listing_id == 77 and request.quantity == a.quantity
        assert request.buyer_external_id == a.buyer.external_id
        assert len(request.address["phone"]) == 11  # every written form is a mainland mobile
        assert datetime.fromisoformat(registered) == a.buyer.registered_at
        assert client["ip"] == a.client.ip and client["user_agent"] == a.client.user_agent
        assert client.get("device_id") == a.client.device_id
        kinds_seen.add(a.label.kind)
    assert kinds_seen == set(KINDS)


def test_relayed_actors_send_no_client_and_no_account_age_in_every_kind() -> None:
    """A share of actors reach us through a tool that describes nothing of the buyer's client:
    the whole actor (every order of a fan, a farm, a script), in genuine groups and abuse alike."""
    attempts = generate_attempts(SimulationConfig(seed=7, n_orders=5000, relayed_share=0.25))
    actors: dict[str, set[bool]] = {}
    for a in attempts:
        actors.setdefault(a.label.actor, set()).add(a.client.relayed)
    assert all(len(flags) == 1 for flags in actors.values())  # never half an actor
    share = sum(True in flags for flags in actors.values()) / len(actors)
    assert 0.20 < share < 0.30, share
    relayed = [a for a in attempts if a.client.relayed]
    assert {a.label.kind for a in relayed} == set(KINDS)
    assert {a.label.group for a in relayed if a.label.kind == "genuine"} == set(GENUINE_GROUPS)
    for a in relayed[:200]:
        body = a.order_body(77)
        assert "client" not in body and "registered_at" not in body["buyer"]
        request = parse_order_request(body)
        assert request.client.ip == request.client.device_id == request.client.user_agent == ""
        assert request.buyer_registered_at is None
    assert all(a.client.ip and a.client.user_agent for a in attempts if not a.client.relayed)
    assert generate_attempts(SimulationConfig(seed=7, n_orders=500, relayed_share=0.0))[0].client.relayed is False
    with pytest.raises(ValueError):
        SimulationConfig(relayed_share=1.5)


def test_config_refuses_unknown_kinds_and_bad_shares() -> None:
    with pytest.raises(ValueError, match="unknown keys"):
        SimulationConfig(mix={"genuine": 1.0, "card_testing": 0.1})
    with pytest.raises(ValueError, match="positive sum"):
        SimulationConfig(mix={"genuine": 0.0})
    with pytest.raises(ValueError, match="unknown provinces"):
        SimulationConfig(provinces=("Atlantis",))
    only = generate_attempts(SimulationConfig(seed=3, n_orders=300, mix={"genuine": 1, "hoarder": 1}))
    assert Counter(a.label.kind for a in only) == {"genuine": 150, "hoarder": 150}


def test_generating_5000_attempts_is_fast() -> None:
    """Measured, not asserted (no wall-clock assertions); shown with -s."""
    start = time.perf_counter()
    attempts = generate_attempts(random_config(99, n_orders=5000))
    elapsed = time.perf_counter() - start
    print(f"\ngenerated {len(attempts)} attempts in {elapsed * 1000:.0f} ms")
    assert len(attempts) == 5000
