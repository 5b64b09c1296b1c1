"""The Redis gate's Lua scripts, against a real Redis and a real 3-node Redis Cluster.

Every test runs twice through the ``gate_client`` fixture (tests/inventory/conftest.py).
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster

from apps.core.redis import LuaScript
from apps.orders.placement.gate import scripts as gate
from apps.orders.placement.gate.keys import listing_keys
from apps.orders.placement.gate.scripts import (
    NOT_OPEN,
    GateMeta,
    GateResult,
    Hold,
    gate_adopt,
    gate_load,
    gate_meta,
    gate_rebuild_lock,
    gate_recount,
    gate_release,
    gate_reserve,
    gate_state,
)

from ..waiting import wait_until

LUA = Path(gate.__file__).parent / "lua"
NOW = 1_700_000_000_000
LISTING = 42


def meta(**overrides: Any) -> GateMeta:
    values: dict[str, Any] = {"closed": False, "opens_ms": 0, "closes_ms": 0, "quota": 10, "limit": 2}
    values.update(overrides)
    return GateMeta(**values)


def load(client: Any, listing: int = LISTING, holds: list[Hold] | None = None, **kw: Any) -> int:
    return gate_load(listing, meta(**kw), holds or [], client=client)


def adopt(client: Any, hold: str, buyer: str = "b1", qty: int = 1, ts: int = NOW) -> str:
    return gate_adopt(LISTING, hold_id=hold, buyer=buyer, quantity=qty, ts_ms=ts, client=client)


def reserve(client: Any, hold: str, buyer: str = "b1", qty: int = 1, now: int = NOW, listing: int = LISTING):
    return gate_reserve(listing, hold_id=hold, buyer=buyer, quantity=qty, now_ms=now, client=client)


def state(client: Any, listing: int = LISTING) -> dict[str, Any]:
    s = gate_state(listing, client=client)
    assert s is not None
    return s


def assert_consistent(s: dict[str, Any]) -> None:
    """The gate's own invariant: counters agree with the holds."""
    per_buyer: Counter[str] = Counter()
    for buyer, qty, _ts in s["holds"].values():
        per_buyer[buyer] += qty
    assert s["buyers"] == dict(per_buyer)
    assert sum(s["buyers"].values()) == s["quota"] - s["left"]


def script_flush(client: Any) -> None:
    client.script_flush()  # a cluster client sends SCRIPT FLUSH to every primary


def nodes_with_script(client: Any, sha: str) -> int:
    """On how many nodes (1 for a standalone server) the script is cached."""
    if isinstance(client, RedisCluster):
        conns = [client.get_redis_connection(node) for node in client.get_primaries()]
    else:
        conns = [client]
    return sum(1 for conn in conns if conn.script_exists(sha)[0])


def node_count(client: Any) -> int:
    return len(client.get_primaries()) if isinstance(client, RedisCluster) else 1


def eval_file(client: Any, name: str, keys: list[str], args: list[str]) -> Any:
    return client.eval((LUA / name).read_text(), len(keys), *keys, *args)


# --- reserve ------------------------------------------------------------------------------------


def test_reserve_answers_not_loaded_when_state_is_missing(gate_client):
    assert reserve(gate_client, "o1") == GateResult("not_loaded", 0, 0)
    assert gate_state(LISTING, client=gate_client) is None
    k = listing_keys(LISTING)
    assert gate_client.exists(k["buyers"], k["holds"]) == 0


def test_reserve_takes_a_hold(gate_client):
    ver = load(gate_client, quota=10, limit=3)
    assert reserve(gate_client, "o1", "alice", 2) == GateResult("ok", 8, 2)
    assert reserve(gate_client, "o2", "alice", 1) == GateResult("ok", 7, 3)
    assert reserve(gate_client, "o3", "bob", 1) == GateResult("ok", 6, 1)
    s = state(gate_client)
    assert s["left"] == 6 and s["ver"] == ver + 3
    assert s["buyers"] == {"alice": 3, "bob": 1}
    assert s["holds"] == {"o1": ("alice", 2, NOW), "o2": ("alice", 1, NOW), "o3": ("bob", 1, NOW)}
    assert_consistent(s)


def remember(client: Any, hold: str, buyer: str = "b1", qty: int = 1, now: int = NOW) -> GateResult:
    return gate_reserve(LISTING, hold_id=hold, buyer=buyer, quantity=qty, now_ms=now, client=client, remember=True)


def test_reserve_remembers_hold_ids_and_tells_a_released_one_apart(gate_client):
    load(gate_client, quota=3, limit=2)
    assert remember(gate_client, "o1", "alice", 2) == GateResult("ok", 1, 2)
    assert gate_client.hgetall(listing_keys(LISTING)["seen"]) == {"o1": "1"}
    # While held: a replay, no second effect.
    assert remember(gate_client, "o1", "alice", 2) == GateResult("ok", 1, 2, replay=True)
    assert gate_release(LISTING, hold_id="o1", client=gate_client) == "released"
    before = state(gate_client)
    # Released: "seen", and nothing written, whatever else holds (here: units are left).
    assert remember(gate_client, "o1", "alice", 2) == GateResult("seen", 3, 0, replay=True)
    assert state(gate_client) == before
    # Without remember the same hold id is simply new again (the caller found no order).
    assert reserve(gate_client, "o1", "alice", 2) == GateResult("ok", 1, 2)
    assert_consistent(state(gate_client))


def test_reserve_seen_wins_over_sold_out_and_closed(gate_client):
    """A replay of a cancelled order must find its order, not a refusal meant for new buyers."""
    load(gate_client, quota=1, limit=1)
    assert remember(gate_client, "o1", "alice").status == "ok"
    gate_release(LISTING, hold_id="o1", client=gate_client)
    assert remember(gate_client, "o2", "bob").status == "ok"  # the last unit goes to bob
    assert remember(gate_client, "o3", "carol").status == "sold_out"
    assert remember(gate_client, "o1", "alice").status == "seen"
    gate_meta(LISTING, meta(closed=True, quota=1, limit=1), client=gate_client)
    assert remember(gate_client, "o1", "alice").status == "seen"
    assert remember(gate_client, "o4", "dave").status == "closed"
    # Refusals are not remembered.
    assert set(gate_client.hkeys(listing_keys(LISTING)["seen"])) == {"o1", "o2"}


def test_reserve_without_remember_never_touches_seen(gate_client):
    load(gate_client, quota=3, limit=3)
    assert reserve(gate_client, "o1", "alice").status == "ok"
    assert gate_client.exists(listing_keys(LISTING)["seen"]) == 0


def test_reserve_same_hold_twice_has_no_second_effect(gate_client):
    load(gate_client, quota=10, limit=5)
    assert reserve(gate_client, "o1", "alice", 2) == GateResult("ok", 8, 2)
    before = state(gate_client)
    assert reserve(gate_client, "o1", "alice", 2) == GateResult("ok", 8, 2, replay=True)
    # A replay with other arguments still reports the original hold, untouched.
    assert reserve(gate_client, "o1", "mallory", 3, now=NOW + 5) == GateResult("ok", 8, 2, replay=True)
    assert state(gate_client) == before


def test_reserve_replay_of_a_taken_hold_is_ok_even_after_the_window_closed(gate_client):
    load(gate_client, quota=2, limit=2)
    assert reserve(gate_client, "o1", "alice", 2).status == "ok"
    gate_meta(LISTING, meta(closed=True, quota=2, limit=2), client=gate_client)
    assert reserve(gate_client, "o1", "alice", 2) == GateResult("ok", 0, 2, replay=True)
    assert reserve(gate_client, "o2", "bob", 1).status == "closed"


def test_reserve_enforces_the_per_buyer_limit(gate_client):
    load(gate_client, quota=10, limit=2)
    assert reserve(gate_client, "o1", "alice", 1).status == "ok"
    assert reserve(gate_client, "o2", "alice", 2) == GateResult("over_limit", 9, 1)
    assert reserve(gate_client, "o3", "alice", 1) == GateResult("ok", 8, 2)
    assert reserve(gate_client, "o4", "alice", 1) == GateResult("over_limit", 8, 2)
    assert reserve(gate_client, "o5", "bob", 2) == GateResult("ok", 6, 2)
    assert reserve(gate_client, "o6", "bob", 3) == GateResult("over_limit", 6, 2)


def test_reserve_answers_sold_out_when_fewer_units_are_left_than_asked(gate_client):
    load(gate_client, quota=3, limit=3)
    assert reserve(gate_client, "o1", "alice", 2) == GateResult("ok", 1, 2)
    assert reserve(gate_client, "o2", "bob", 2) == GateResult("sold_out", 1, 0)
    assert reserve(gate_client, "o3", "bob", 1) == GateResult("ok", 0, 1)
    assert reserve(gate_client, "o4", "carol", 1) == GateResult("sold_out", 0, 0)


def test_the_limit_is_checked_before_sold_out(gate_client):
    """A buyer asking for more than they may have is told so, never "sold out" while units are
    left (issue 10); a buyer within their limit gets "sold out" when too few are left."""
    load(gate_client, quota=3, limit=2)
    assert reserve(gate_client, "o1", "alice", 3) == GateResult("over_limit", 3, 0)
    assert reserve(gate_client, "o2", "alice", 1).status == "ok"
    assert reserve(gate_client, "o3", "alice", 2) == GateResult("over_limit", 2, 1)
    assert reserve(gate_client, "o4", "bob", 2).status == "ok"
    assert reserve(gate_client, "o5", "carol", 2) == GateResult("sold_out", 0, 0)


def test_failed_reserves_write_nothing(gate_client):
    load(gate_client, quota=2, limit=1, closes_ms=NOW + 1000)
    reserve(gate_client, "o1", "alice", 1)
    reserve(gate_client, "o2", "bob", 1)
    before = state(gate_client)
    assert reserve(gate_client, "o3", "alice", 1).status == "over_limit"
    assert reserve(gate_client, "o4", "carol", 1).status == "sold_out"
    assert reserve(gate_client, "o5", "dave", 1, now=NOW + 1000).status == "closed"
    assert state(gate_client) == before


def test_reserve_answers_closed_when_the_listing_is_closed(gate_client):
    load(gate_client, closed=True)
    assert reserve(gate_client, "o1") == GateResult("closed", 10, 0)


@pytest.mark.parametrize(
    ("opens", "closes", "now", "status"),
    [
        (NOT_OPEN, 0, NOW, "closed"),  # not opened yet
        (NOW + 1, 0, NOW, "closed"),  # one ms before it opens
        (NOW, 0, NOW, "ok"),  # opens inclusive
        (0, 0, NOW, "ok"),  # no start, no end
        (0, NOW + 1, NOW, "ok"),  # one ms before it closes
        (0, NOW, NOW, "closed"),  # closes exclusive
        (NOW - 10, NOW - 5, NOW, "closed"),  # over
    ],
)
def test_reserve_follows_the_window(gate_client, opens, closes, now, status):
    load(gate_client, opens_ms=opens, closes_ms=closes)
    assert reserve(gate_client, "o1", now=now).status == status


def test_reserve_rejects_a_bad_quantity(gate_client):
    load(gate_client)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError):
            reserve(gate_client, "o1", qty=bad)
    k = listing_keys(LISTING)
    keys = [k["state"], k["buyers"], k["holds"], k["tally"]]
    for bad in ("0", "-2", "1.5", "x"):
        with pytest.raises(redis.ResponseError, match="qty must be a positive integer"):
            eval_file(gate_client, "reserve.lua", keys, ["o1", "b1", bad, str(NOW)])
    with pytest.raises(redis.ResponseError, match="now_ms must be a number"):
        eval_file(gate_client, "reserve.lua", keys, ["o1", "b1", "1", "soon"])
    assert state(gate_client)["holds"] == {}


# --- release ------------------------------------------------------------------------------------


def test_release_gives_units_back_and_is_idempotent(gate_client):
    ver = load(gate_client, quota=5, limit=3)
    reserve(gate_client, "o1", "alice", 2)
    reserve(gate_client, "o2", "alice", 1)
    assert gate_release(LISTING, hold_id="o1", client=gate_client) == "released"
    s = state(gate_client)
    assert (s["left"], s["buyers"], list(s["holds"]), s["ver"]) == (4, {"alice": 1}, ["o2"], ver + 3)
    assert gate_release(LISTING, hold_id="o1", client=gate_client) == "absent"
    assert state(gate_client) == s
    assert gate_release(LISTING, hold_id="o2", client=gate_client) == "released"
    s = state(gate_client)
    # The buyer's field is deleted at zero, not left behind as "0".
    assert (s["left"], s["buyers"], s["holds"]) == (5, {}, {})
    assert gate_release(LISTING, hold_id="o2", client=gate_client) == "absent"
    assert gate_release(LISTING, hold_id="never", client=gate_client) == "absent"


def test_release_script_replies_with_status_and_left(gate_client):
    load(gate_client, quota=5)
    reserve(gate_client, "o1", "alice", 2)
    k = listing_keys(LISTING)
    keys = [k["state"], k["buyers"], k["holds"]]
    assert eval_file(gate_client, "release.lua", keys, ["o1"]) == ["released", 5]
    assert eval_file(gate_client, "release.lua", keys, ["o1"]) == ["absent", 5]


def test_release_touches_nothing_when_not_loaded(gate_client):
    load(gate_client)
    reserve(gate_client, "o1", "alice", 1)
    k = listing_keys(LISTING)
    gate_client.delete(k["state"])
    assert gate_release(LISTING, hold_id="o1", client=gate_client) == "not_loaded"
    assert gate_client.hgetall(k["holds"]) == {"o1": f"alice|1|{NOW}"}
    assert gate_client.hgetall(k["buyers"]) == {"alice": "1"}


def test_buyer_keys_may_contain_the_separator(gate_client):
    load(gate_client, quota=5, limit=2)
    buyer = "douyin|shop|7"
    assert reserve(gate_client, "o1", buyer, 2) == GateResult("ok", 3, 2)
    assert state(gate_client)["holds"]["o1"] == (buyer, 2, NOW)
    assert gate_recount(LISTING, client=gate_client) is False
    assert gate_release(LISTING, hold_id="o1", client=gate_client) == "released"
    assert state(gate_client)["buyers"] == {}


# --- load ---------------------------------------------------------------------------------------


def test_load_builds_the_gate_from_database_truth(gate_client):
    holds = [("o1", "alice", 2), ("o2", "bob", 1), ("o3", "alice", 1)]
    before_ms = int(time.time() * 1000)
    ver = load(gate_client, holds=holds, quota=10, limit=3, opens_ms=NOW, closes_ms=NOW + 60_000)
    s = state(gate_client)
    assert ver == s["ver"] and ver > 0
    assert {k: s[k] for k in ("closed", "opens", "closes", "quota", "left", "limit")} == {
        "closed": False,
        "opens": NOW,
        "closes": NOW + 60_000,
        "quota": 10,
        "left": 6,
        "limit": 3,
    }
    assert s["buyers"] == {"alice": 3, "bob": 1}
    assert {h: (b, q) for h, (b, q, _ts) in s["holds"].items()} == {h: (b, q) for h, b, q in holds}
    # Loaded holds carry the server's clock as their timestamp.
    assert all(abs(ts - before_ms) < 60_000 for _b, _q, ts in s["holds"].values())
    assert_consistent(s)
    assert reserve(gate_client, "o4", "alice", 1, now=NOW).status == "over_limit"
    assert reserve(gate_client, "o4", "bob", 2, now=NOW) == GateResult("ok", 4, 3)


def test_load_script_replies_loaded_left_ver(gate_client):
    k = listing_keys(LISTING)
    keys = [k["state"], k["buyers"], k["holds"]]
    reply = eval_file(gate_client, "load.lua", keys, ["0", "0", "0", "5", "2", "1", "o1", "alice", "2"])
    assert reply[:2] == ["loaded", 3] and reply[2] == state(gate_client)["ver"]


def test_load_replaces_everything_and_ver_never_goes_backwards(gate_client):
    v1 = load(gate_client, holds=[("o1", "alice", 1)], quota=10)
    for i in range(5):
        reserve(gate_client, f"x{i}", f"b{i}", 1)
    gate_meta(LISTING, meta(quota=12), client=gate_client)
    v_before = state(gate_client)["ver"]
    assert v_before == v1 + 6
    v2 = load(gate_client, holds=[("o9", "zed", 2)], quota=7, limit=1, closed=True)
    assert v2 == v_before + 1
    s = state(gate_client)
    assert (s["quota"], s["left"], s["limit"], s["closed"]) == (7, 5, 1, True)
    assert s["buyers"] == {"zed": 2}
    assert list(s["holds"]) == ["o9"]
    # Loading an empty truth empties buyers and holds too.
    v3 = load(gate_client, quota=7)
    s = state(gate_client)
    assert v3 == v2 + 1 and s["left"] == 7 and s["buyers"] == {} and s["holds"] == {}


def test_a_fresh_load_after_redis_lost_the_keys_gets_a_higher_ver(gate_client):
    load(gate_client)
    for i in range(10):
        reserve(gate_client, f"o{i}", f"b{i}", 1)
        gate_release(LISTING, hold_id=f"o{i}", client=gate_client)
    lost_ver = state(gate_client)["ver"]
    k = listing_keys(LISTING)
    gate_client.delete(k["state"], k["buyers"], k["holds"])  # what a Redis restart does
    assert load(gate_client) > lost_ver


def test_load_of_many_holds(gate_client):
    holds = [(f"o{i}", f"b{i % 700}", 1 + i % 3) for i in range(3000)]
    total = sum(q for _h, _b, q in holds)
    load(gate_client, holds=holds, quota=total + 10, limit=100)
    s = state(gate_client)
    assert len(s["holds"]) == 3000 and len(s["buyers"]) == 700
    assert s["left"] == 10
    assert_consistent(s)


def test_load_with_more_holds_than_quota_gives_negative_left(gate_client):
    load(gate_client, holds=[("o1", "a", 2), ("o2", "b", 2)], quota=3)
    assert state(gate_client)["left"] == -1
    assert reserve(gate_client, "o3", "c", 1).status == "sold_out"


def test_load_rejects_bad_input_and_leaves_the_keys_alone(gate_client):
    load(gate_client, holds=[("o1", "alice", 1)], quota=5)
    before = state(gate_client)
    k = listing_keys(LISTING)
    keys = [k["state"], k["buyers"], k["holds"]]
    bad = {
        "duplicate hold id": ["0", "0", "0", "5", "2", "2", "o1", "a", "1", "o1", "b", "1"],
        "needs 9 ARGV": ["0", "0", "0", "5", "2", "1", "o1", "a"],
        "must be a positive integer": ["0", "0", "0", "5", "2", "1", "o1", "a", "0"],
        "closed must be 0 or 1": ["yes", "0", "0", "5", "2", "0"],
        "quota must be an integer": ["0", "0", "0", "five", "2", "0"],
        "at least 6 ARGV": ["0", "0", "0", "5", "2"],
    }
    for message, args in bad.items():
        with pytest.raises(redis.ResponseError, match=message):
            eval_file(gate_client, "load.lua", keys, args)
    assert state(gate_client) == before
    with pytest.raises(ValueError):
        gate_load(LISTING, meta(), [("o1", "a", 0)], client=gate_client)


# --- meta ---------------------------------------------------------------------------------------


def test_meta_answers_not_loaded_and_writes_nothing(gate_client):
    assert gate_meta(LISTING, meta(), client=gate_client) == "not_loaded"
    assert gate_state(LISTING, client=gate_client) is None


def test_meta_changes_quota_window_and_limit_keeping_holds(gate_client):
    ver = load(gate_client, quota=10, limit=1, opens_ms=NOT_OPEN)
    assert reserve(gate_client, "o1", "alice", 1).status == "closed"
    # Open the window, raise the quota and the limit.
    assert gate_meta(LISTING, meta(opens_ms=NOW, quota=15, limit=2), client=gate_client) == "ok"
    assert reserve(gate_client, "o1", "alice", 2) == GateResult("ok", 13, 2)
    s = state(gate_client)
    assert (s["opens"], s["quota"], s["limit"], s["ver"]) == (NOW, 15, 2, ver + 2)
    # Shrink the quota: left moves by exactly the change.
    gate_meta(LISTING, meta(opens_ms=NOW, quota=4, limit=2), client=gate_client)
    assert state(gate_client)["left"] == 2
    assert_consistent(state(gate_client))
    # Close by time.
    gate_meta(LISTING, meta(opens_ms=NOW, closes_ms=NOW, quota=4, limit=2), client=gate_client)
    assert reserve(gate_client, "o2", "bob", 1).status == "closed"


def test_meta_shrinking_quota_below_holds_makes_left_negative_and_sells_nothing(gate_client):
    load(gate_client, quota=5, limit=5)
    reserve(gate_client, "o1", "alice", 4)
    k = listing_keys(LISTING)
    reply = eval_file(gate_client, "meta.lua", [k["state"]], ["0", "0", "0", "2", "5"])
    assert reply[:2] == ["ok", -2] and reply[2] == state(gate_client)["ver"]
    assert reserve(gate_client, "o2", "bob", 1) == GateResult("sold_out", -2, 0)
    # Releases bring it back exactly.
    gate_release(LISTING, hold_id="o1", client=gate_client)
    assert reserve(gate_client, "o2", "bob", 1) == GateResult("ok", 1, 1)
    assert_consistent(state(gate_client))


def test_meta_rejects_bad_input(gate_client):
    load(gate_client)
    before = state(gate_client)
    k = listing_keys(LISTING)
    with pytest.raises(redis.ResponseError, match="closed must be 0 or 1"):
        eval_file(gate_client, "meta.lua", [k["state"]], ["2", "0", "0", "5", "1"])
    with pytest.raises(redis.ResponseError, match="limit must be an integer"):
        eval_file(gate_client, "meta.lua", [k["state"]], ["0", "0", "0", "5", "x"])
    assert state(gate_client) == before


# --- adopt --------------------------------------------------------------------------------------


def test_adopt_force_adds_a_lost_hold_once(gate_client):
    ver = load(gate_client, quota=2, limit=1, closed=True)
    k = listing_keys(LISTING)
    keys = [k["state"], k["buyers"], k["holds"]]
    # No window, quota or limit check: the database already decided.
    assert eval_file(gate_client, "adopt.lua", keys, ["o1", "alice", "2", str(NOW)]) == ["adopted", 0]
    assert adopt(gate_client, "o2", "alice", 1, NOW + 1) == "adopted"
    s = state(gate_client)
    assert s["left"] == -1 and s["buyers"] == {"alice": 3} and s["ver"] == ver + 2
    assert s["holds"] == {"o1": ("alice", 2, NOW), "o2": ("alice", 1, NOW + 1)}
    assert adopt(gate_client, "o2", "alice", 1) == "present"
    assert eval_file(gate_client, "adopt.lua", keys, ["o1", "bob", "5", str(NOW)]) == ["present", -1]
    assert state(gate_client) == s
    assert_consistent(s)


def test_adopt_answers_not_loaded(gate_client):
    assert adopt(gate_client, "o1", "a", 1) == "not_loaded"
    k = listing_keys(LISTING)
    assert gate_client.exists(k["state"], k["buyers"], k["holds"]) == 0


# --- recount ------------------------------------------------------------------------------------


def test_recount_repairs_a_corrupted_left(gate_client):
    load(gate_client, holds=[("o1", "alice", 2)], quota=10)
    reserve(gate_client, "o2", "bob", 1)
    ver = state(gate_client)["ver"]
    assert gate_recount(LISTING, client=gate_client) is False
    assert state(gate_client)["ver"] == ver
    k = listing_keys(LISTING)
    gate_client.hset(k["state"], "left", "9")
    assert gate_recount(LISTING, client=gate_client) is True
    s = state(gate_client)
    assert s["left"] == 7 and s["ver"] == ver + 1
    gate_client.hset(k["state"], "left", "garbage")
    keys = [k["state"], k["buyers"], k["holds"]]
    assert eval_file(gate_client, "recount.lua", keys, []) == ["ok", 7, 1]
    assert eval_file(gate_client, "recount.lua", keys, []) == ["ok", 7, 0]


@pytest.mark.parametrize(
    "corrupt",
    [
        {"alice": "5"},  # wrong count
        {"stray": "1"},  # extra buyer
        {"alice": "0"},  # zero left behind
    ],
)
def test_recount_repairs_buyers(gate_client, corrupt):
    load(gate_client, holds=[("o1", "alice", 2), ("o2", "bob", 1)], quota=10)
    k = listing_keys(LISTING)
    gate_client.hset(k["buyers"], mapping=corrupt)
    assert gate_recount(LISTING, client=gate_client) is True
    s = state(gate_client)
    assert s["buyers"] == {"alice": 2, "bob": 1} and s["left"] == 7


def test_recount_repairs_a_missing_buyer(gate_client):
    load(gate_client, holds=[("o1", "alice", 2), ("o2", "bob", 1)], quota=10)
    gate_client.hdel(listing_keys(LISTING)["buyers"], "bob")
    assert gate_recount(LISTING, client=gate_client) is True
    assert state(gate_client)["buyers"] == {"alice": 2, "bob": 1}


def test_recount_answers_not_loaded(gate_client):
    assert gate_recount(LISTING, client=gate_client) is False
    k = listing_keys(LISTING)
    assert eval_file(gate_client, "recount.lua", [k["state"], k["buyers"], k["holds"]], []) == [
        "not_loaded",
        0,
        0,
    ]


# --- scripts in general -------------------------------------------------------------------------


SCRIPTS_KEYS_ARGV = {
    "reserve.lua": (5, 4),  # the 5th (seen) may be left out
    "tally_drain.lua": (3, 0),
    "tally_ack.lua": (1, 1),
    "release.lua": (3, 1),
    "load.lua": (3, 6),
    "meta.lua": (1, 5),
    "adopt.lua": (3, 4),
    "recount.lua": (3, 0),
    "unlock.lua": (1, 1),
}


@pytest.mark.parametrize("name", sorted(SCRIPTS_KEYS_ARGV))
def test_scripts_assert_their_arity(gate_client, name):
    numkeys, numargs = SCRIPTS_KEYS_ARGV[name]
    k = listing_keys(LISTING)
    all_keys = [k["state"], k["buyers"], k["holds"], k["tally"], k["seen"], k["lock"]]
    args = ["0"] * numargs
    with pytest.raises(redis.ResponseError, match=f"{name} expects {numkeys} KEYS"):
        eval_file(gate_client, name, all_keys[: numkeys + 1], args)
    with pytest.raises(redis.ResponseError, match=f"{name} .*(expects|needs)"):
        eval_file(gate_client, name, all_keys[:numkeys], [*args, "extra", "more"])
    with pytest.raises(ValueError, match="takes"):
        LuaScript(LUA / name, numkeys)(all_keys[: numkeys + 1], args, client=gate_client)


@pytest.mark.parametrize("name", sorted(SCRIPTS_KEYS_ARGV))
def test_scripts_document_keys_argv_and_returns(name):
    header = (LUA / name).read_text().split("]]", 1)[0]
    assert "KEYS[1]" in header and "ARGV" in header and "Returns" in header


def test_scripts_are_reloaded_after_a_script_flush(gate_client):
    load(gate_client, quota=5, limit=5)
    assert reserve(gate_client, "o1", "alice", 1).status == "ok"
    script_flush(gate_client)  # what a Redis restart (or failover to a cold replica) does
    sha = hashlib.sha1((LUA / "reserve.lua").read_bytes()).hexdigest()
    assert nodes_with_script(gate_client, sha) == 0
    assert reserve(gate_client, "o2", "alice", 1) == GateResult("ok", 3, 2)
    assert nodes_with_script(gate_client, sha) == node_count(gate_client)
    script_flush(gate_client)
    assert gate_release(LISTING, hold_id="o1", client=gate_client) == "released"
    assert gate_meta(LISTING, meta(quota=6, limit=5), client=gate_client) == "ok"
    assert adopt(gate_client, "o3", "bob", 1) == "adopted"
    assert gate_recount(LISTING, client=gate_client) is False
    assert load(gate_client, quota=5) > 0
    with gate_rebuild_lock(LISTING, client=gate_client) as acquired:
        assert acquired
    assert gate_client.exists(listing_keys(LISTING)["lock"]) == 0


def test_scripts_are_reloaded_when_only_the_listings_node_forgot_them(redis_cluster):
    """A failover in a cluster: the node owning the listing has an empty script cache."""
    redis_cluster.flushdb(target_nodes=RedisCluster.PRIMARIES)
    try:
        load(redis_cluster, quota=5, limit=5)
        assert reserve(redis_cluster, "o1", "alice", 1).status == "ok"
        owner = redis_cluster.get_node_from_key(listing_keys(LISTING)["state"])
        redis_cluster.get_redis_connection(owner).script_flush()
        sha = hashlib.sha1((LUA / "reserve.lua").read_bytes()).hexdigest()
        assert nodes_with_script(redis_cluster, sha) == node_count(redis_cluster) - 1
        assert reserve(redis_cluster, "o2", "alice", 1) == GateResult("ok", 3, 2)
        assert nodes_with_script(redis_cluster, sha) == node_count(redis_cluster)
    finally:
        redis_cluster.flushdb(target_nodes=RedisCluster.PRIMARIES)


def test_gate_state_is_none_when_not_loaded(gate_client):
    assert gate_state(LISTING, client=gate_client) is None
    load(gate_client, opens_ms=NOT_OPEN)
    assert state(gate_client)["opens"] == NOT_OPEN


def test_listings_are_independent(gate_client):
    load(gate_client, listing=1, quota=1)
    load(gate_client, listing=2, quota=1)
    assert reserve(gate_client, "o1", listing=1).status == "ok"
    assert reserve(gate_client, "o1", listing=2).status == "ok"
    assert reserve(gate_client, "o2", listing=1).status == "sold_out"
    assert reserve(gate_client, "o3", listing=3).status == "not_loaded"


# --- rebuild lock -------------------------------------------------------------------------------


class LockWatch:
    """The Redis client, noting when a ``SET NX`` on the rebuild lock is refused: someone is
    waiting for the lock, a fact rather than a guess about how long threads take to get there."""

    def __init__(self, client: Any, key: str) -> None:
        self._client, self._key = client, key
        self.refused = threading.Event()

    def set(self, name: str, *args: Any, **kwargs: Any) -> Any:
        ok = self._client.set(name, *args, **kwargs)
        if name == self._key and kwargs.get("nx") and not ok:
            self.refused.set()
        return ok

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_rebuild_lock_only_one_of_two_threads_acquires(gate_client):
    barrier = threading.Barrier(2)
    watch = LockWatch(gate_client, listing_keys(LISTING)["lock"])
    results: list[bool] = []
    errors: list[BaseException] = []

    def rebuild(i: int) -> None:
        try:
            barrier.wait()
            with gate_rebuild_lock(LISTING, wait_s=30.0, client=watch) as acquired:
                results.append(acquired)
                if acquired:
                    # Hold it until the other thread has been refused the lock (it waits), then load.
                    assert watch.refused.wait(30), "the other thread never came to the lock"
                    load(gate_client, quota=3)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=rebuild, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sorted(results) == [False, True]
    assert state(gate_client)["quota"] == 3
    assert gate_client.exists(listing_keys(LISTING)["lock"]) == 0


def test_rebuild_lock_only_if_missing_declines_when_the_state_is_there(gate_client):
    load(gate_client)
    with gate_rebuild_lock(LISTING, only_if_missing=True, client=gate_client) as acquired:
        assert acquired is False
    assert gate_client.exists(listing_keys(LISTING)["lock"]) == 0
    # Without it the lock is taken regardless of the state (a forced reload).
    with gate_rebuild_lock(LISTING, client=gate_client) as acquired:
        assert acquired is True
        assert gate_client.exists(listing_keys(LISTING)["lock"]) == 1
    gate_client.delete(listing_keys(LISTING)["state"])
    with gate_rebuild_lock(LISTING, only_if_missing=True, client=gate_client) as acquired:
        assert acquired is True
    assert gate_client.exists(listing_keys(LISTING)["lock"]) == 0


def test_rebuild_lock_waiter_takes_over_when_the_holder_leaves_without_loading(gate_client):
    inside = threading.Event()
    watch = LockWatch(gate_client, listing_keys(LISTING)["lock"])
    results: list[bool] = []

    def first() -> None:
        with gate_rebuild_lock(LISTING, client=gate_client) as acquired:
            results.append(acquired)
            inside.set()
            watch.refused.wait(30)  # the waiter is waiting; then this one fails to load (database down)

    t = threading.Thread(target=first)
    t.start()
    assert inside.wait(30)
    with gate_rebuild_lock(LISTING, wait_s=30.0, client=watch) as acquired:
        results.append(acquired)
    t.join(30)
    assert watch.refused.is_set()  # it did wait for the lock
    assert results == [True, True]


def test_rebuild_lock_gives_up_after_wait_s(gate_client):
    k = listing_keys(LISTING)
    gate_client.set(k["lock"], "someone-else", px=120_000)
    started = time.monotonic()
    with gate_rebuild_lock(LISTING, wait_s=0.3, client=gate_client) as acquired:
        assert acquired is False
    # It waited wait_s, and gave up long before the lock it waited for expired (a loaded machine
    # may take seconds more; only a caller that waits for the lock itself takes 120 s).
    assert 0.25 <= time.monotonic() - started < 60
    assert gate_client.get(k["lock"]) == "someone-else"


def test_rebuild_lock_never_deletes_a_lock_it_no_longer_owns(gate_client):
    k = listing_keys(LISTING)
    with gate_rebuild_lock(LISTING, timeout_ms=100, client=gate_client) as acquired:
        assert acquired
        wait_until(lambda: not gate_client.exists(k["lock"]), what="the lock to expire")  # our lock expired ...
        assert gate_client.set(k["lock"], "second-owner", nx=True, px=10_000)  # ... and another took it
    assert gate_client.get(k["lock"]) == "second-owner"
    assert eval_file(gate_client, "unlock.lua", [k["lock"]], ["not-mine"]) == 0
    assert eval_file(gate_client, "unlock.lua", [k["lock"]], ["second-owner"]) == 1
    assert gate_client.exists(k["lock"]) == 0


# --- concurrency --------------------------------------------------------------------------------


def run_threads(n: int, target: Any) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def wrapped(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    assert not any(t.is_alive() for t in threads)


def test_concurrent_reserves_sell_exactly_the_quota(gate_client):
    quota, limit, buyers = 50, 2, 40  # 40 buyers x 2 > 50: the quota, not the limit, runs out
    load(gate_client, quota=quota, limit=limit)
    oks: dict[str, tuple[str, int]] = {}
    statuses: Counter[str] = Counter()
    lock = threading.Lock()

    def worker(tid: int) -> None:
        rng = random.Random(tid)
        mine: list[str] = []
        for i in range(300):
            if mine and i % 10 == 0:  # a client retry of an earlier request: no second effect
                hold, buyer, qty = rng.choice(mine), "retry", 2
            else:
                hold, buyer, qty = f"t{tid}-{i}", f"buyer{rng.randrange(buyers)}", rng.choice((1, 2))
            r = reserve(gate_client, hold, buyer, qty)
            assert r.left >= 0 and r.held <= limit
            with lock:
                statuses[r.status] += 1
                if r.status == "ok" and hold not in oks:
                    oks[hold] = (buyer, qty)
                    mine.append(hold)

    run_threads(32, worker)

    s = state(gate_client)
    assert s["left"] == 0
    assert sum(q for _b, q in oks.values()) == quota
    assert {h: (b, q) for h, (b, q, _ts) in s["holds"].items()} == oks
    assert max(s["buyers"].values()) <= limit
    assert sum(s["buyers"].values()) == sum(q for _b, q, _ts in s["holds"].values()) == quota - s["left"]
    assert_consistent(s)
    assert statuses["sold_out"] > 0 and set(statuses) <= {"ok", "sold_out", "over_limit"}
    assert gate_recount(LISTING, client=gate_client) is False


def test_concurrent_reserves_and_releases_keep_the_counters_exact(gate_client):
    quota, limit = 30, 3
    ver0 = load(gate_client, quota=quota, limit=limit)
    effects = Counter()
    lock = threading.Lock()

    def worker(tid: int) -> None:
        rng = random.Random(1000 + tid)
        for _ in range(120):
            hold = f"t{tid}-{rng.randrange(20)}"  # reuse ids: reserves and releases collide
            if rng.random() < 0.6:
                r = reserve(gate_client, hold, f"buyer{rng.randrange(12)}", rng.choice((1, 2, 3)))
                assert r.held <= limit and r.left >= 0
                status = r.status
            else:
                status = gate_release(LISTING, hold_id=hold, client=gate_client)
            with lock:
                effects[status] += 1

    run_threads(32, worker)
    s = state(gate_client)
    assert_consistent(s)
    assert all(0 < n <= limit for n in s["buyers"].values())
    assert 0 <= s["left"] <= quota
    assert effects["released"] > 0
    # Every change bumped ver once; replays and refusals did not.
    fresh_oks = s["ver"] - ver0 - effects["released"]
    assert 0 < fresh_oks <= effects["ok"]
    assert len(s["holds"]) == fresh_oks - effects["released"]
    assert gate_recount(LISTING, client=gate_client) is False


# --- cluster ------------------------------------------------------------------------------------


def test_a_listings_keys_share_one_cluster_slot(redis_cluster):
    for listing in (1, 42, 123456):
        keys = listing_keys(listing).values()
        slots = {redis_cluster.cluster_keyslot(k) for k in keys}
        assert len(slots) == 1
        assert slots == {redis_cluster.keyslot(k) for k in keys}


def test_listings_spread_over_the_cluster_nodes(redis_cluster):
    redis_cluster.flushdb(target_nodes=RedisCluster.PRIMARIES)
    try:
        nodes = {redis_cluster.get_node_from_key(listing_keys(i)["state"]).name for i in range(1, 61)}
        assert len(nodes) > 1
        for i in range(1, 61):
            load(redis_cluster, listing=i, quota=2)
            assert reserve(redis_cluster, "o1", listing=i).status == "ok"
        sizes = [redis_cluster.dbsize(target_nodes=node) for node in redis_cluster.get_primaries()]
        assert sum(sizes) == 60 * 4 and sum(1 for n in sizes if n) > 1  # state, buyers, holds, tally
    finally:
        redis_cluster.flushdb(target_nodes=RedisCluster.PRIMARIES)


def test_scripts_run_together_answer_each_on_its_own_standalone_and_on_a_cluster(gate_client):
    """``run_together`` (the guard's script and the gate's reserve in one trip): two listings
    (two slots on a cluster), a script error beside a success, and a script Redis forgot."""
    from apps.core.redis import run_together

    load(gate_client, listing=1, quota=2)
    load(gate_client, listing=2, quota=2)
    first = gate.reserve_call(1, hold_id="a", buyer="b1", quantity=1, now_ms=NOW)
    second = gate.reserve_call(2, hold_id="b", buyer="b1", quantity=5, now_ms=NOW)
    bad = gate.reserve_call(2, hold_id="c", buyer="b1", quantity=1, now_ms=NOW)
    bad = (bad[0], bad[1], ["c", "b1", "1", "not-a-time"])  # reserve.lua refuses a bad now_ms
    one, two, three = run_together([first, second, bad], client=gate_client)
    assert gate.reserve_result(one) == GateResult("ok", 1, 1)
    assert gate.reserve_result(two).status == "over_limit"  # 5 > the per-buyer limit
    assert isinstance(three, redis.ResponseError) and "now_ms" in str(three)
    script_flush(gate_client)  # a restarted Redis: both loaded again, each answering once
    again = gate.reserve_call(1, hold_id="d", buyer="b2", quantity=1, now_ms=NOW)
    four, five = run_together([again, gate.reserve_call(2, hold_id="e", buyer="b2", quantity=1, now_ms=NOW)],
                              client=gate_client)  # fmt: skip
    assert gate.reserve_result(four) == GateResult("ok", 0, 1)
    assert gate.reserve_result(five) == GateResult("ok", 1, 1)
    assert state(gate_client, 1)["left"] == 0 and state(gate_client, 2)["left"] == 1
