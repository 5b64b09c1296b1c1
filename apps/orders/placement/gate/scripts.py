"""The Redis gate for flash-sale listings: Redis decides fast, the database stays the truth.

Each listing has three hash-tagged keys (``keys.listing_keys``), one slot in a cluster:

- ``state``: ``closed`` ("0"/"1"), ``opens``/``closes`` (epoch ms; ``closes`` 0 = no end; ``opens``
  ``NOT_OPEN`` = not yet opened), ``quota``, ``left``, ``limit`` (per buyer), ``ver``;
- ``buyers``: buyer key -> units held;
- ``holds``: hold id (the order's public id) -> ``"buyer|qty|ts_ms"``.

Every change runs in one Lua script (``lua/*.lua``; each file documents its KEYS, ARGV and
replies), so the gate is atomic per listing. This module is pure Redis: no models, and settings
only through ``apps.core.redis`` (``get_client`` when no ``client`` is given).
The rebuild from the database and the reconciler are ``rebuild.py`` and ``reconcile.py``.

A script that finds no ``state`` answers ``not_loaded``: the caller rebuilds the listing from the
database under ``gate_rebuild_lock`` with ``gate_load`` and retries.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apps.catalog.window import NOT_OPEN_MS
from apps.core.redis import LuaScript, ScriptCall, get_client, is_redis_error

from .keys import listing_keys

NOT_OPEN = NOT_OPEN_MS
"""``opens`` value for a window that is not opened yet (``apps.catalog.window``)."""

_LUA = Path(__file__).parent / "lua"
_reserve = LuaScript(_LUA / "reserve.lua", (4, 5))
_release = LuaScript(_LUA / "release.lua", 3)
_load = LuaScript(_LUA / "load.lua", 3)
_meta = LuaScript(_LUA / "meta.lua", 1)
_adopt = LuaScript(_LUA / "adopt.lua", 3)
_recount = LuaScript(_LUA / "recount.lua", 3)
_unlock = LuaScript(_LUA / "unlock.lua", 1)
_tally_drain = LuaScript(_LUA / "tally_drain.lua", 3)
_tally_ack = LuaScript(_LUA / "tally_ack.lua", 1)

TALLY_OUTCOMES = ("ok", "closed", "over_limit", "sold_out")
"""What ``reserve.lua`` counts in a listing's tally: its fresh decisions."""

Hold = tuple[str, str, int]
"""A live order's hold as ``gate_load`` takes it: (hold id, buyer, quantity)."""

# Statuses, as the scripts spell them.
OK = "ok"
NOT_LOADED = "not_loaded"
CLOSED = "closed"
SOLD_OUT = "sold_out"
OVER_LIMIT = "over_limit"
SEEN = "seen"
RELEASED = "released"
ABSENT = "absent"
ADOPTED = "adopted"
PRESENT = "present"


@dataclass(frozen=True)
class GateResult:
    """A reserve's answer: ``status`` (ok | closed | sold_out | over_limit | not_loaded | seen),
    units ``left`` on the listing and units ``held`` by the buyer after the call; ``replay`` when
    the hold id already holds units (``ok``) or held them before (``seen``)."""

    status: str
    left: int
    held: int
    replay: bool = False


@dataclass(frozen=True)
class GateMeta:
    """A listing's gate parameters. ``opens_ms=NOT_OPEN`` = not opened yet; ``closes_ms=0`` = no end."""

    closed: bool
    opens_ms: int
    closes_ms: int
    quota: int
    limit: int

    def as_args(self) -> list[str]:
        return [
            "1" if self.closed else "0",
            str(int(self.opens_ms)),
            str(int(self.closes_ms)),
            str(int(self.quota)),
            str(int(self.limit)),
        ]


def _keys3(listing_id: int) -> list[str]:
    k = listing_keys(listing_id)
    return [k["state"], k["buyers"], k["holds"]]


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def gate_reserve(
    listing_id: int,
    *,
    hold_id: str,
    buyer: str,
    quantity: int,
    now_ms: int,
    client: Any = None,
    remember: bool = False,
) -> GateResult:
    """Atomically check window, units left and the buyer's limit, and take the hold.

    Idempotent on ``hold_id``: a hold that already exists answers ``ok`` (``replay``) with no
    second effect. With ``remember`` the listing also keeps every hold id it ever held, and a
    hold id that held units before but holds none now answers ``seen`` (nothing written): an
    idempotent replay of an order that was since cancelled or expired.
    Raises ``ValueError`` for a non-positive quantity, a Redis error if Redis is unreachable.
    """
    script, keys, args = reserve_call(
        listing_id, hold_id=hold_id, buyer=buyer, quantity=quantity, now_ms=now_ms, remember=remember
    )
    return reserve_result(script(keys, args, client=client))


def reserve_call(
    listing_id: int, *, hold_id: str, buyer: str, quantity: int, now_ms: int, remember: bool = False
) -> ScriptCall:
    """``gate_reserve``'s script call, to run with others in one round trip (``run_together``);
    ``reserve_result`` reads its reply."""
    _positive("quantity", quantity)
    k = listing_keys(listing_id)
    keys = [k["state"], k["buyers"], k["holds"], k["tally"]]
    if remember:
        keys.append(k["seen"])
    return _reserve, keys, [hold_id, buyer, str(quantity), str(int(now_ms))]


def reserve_result(reply: Any) -> GateResult:
    status, left, held, replay = reply
    return GateResult(status=status, left=int(left), held=int(held), replay=bool(replay))


def gate_release(listing_id: int, *, hold_id: str, client: Any = None) -> str:
    """Give a hold's units back: ``released``, ``absent`` (already gone; idempotent) or ``not_loaded``."""
    script, keys, args = release_call(listing_id, hold_id=hold_id)
    status, _left = script(keys, args, client=client)
    return status


def release_call(listing_id: int, *, hold_id: str) -> ScriptCall:
    """``gate_release``'s script call (for the event loop's ``run_together_async``)."""
    return _release, _keys3(listing_id), [hold_id]


def gate_load(listing_id: int, meta: GateMeta, holds: Iterable[Hold], client: Any = None) -> int:
    """Replace the listing's gate with database truth (``holds``: hold id, buyer, quantity of each
    live order). ``left`` becomes ``quota - sum(quantity)``. Returns the new ``ver``, which is
    always above any version the listing had before. Call it under ``gate_rebuild_lock``."""
    args = meta.as_args()
    flat: list[str] = []
    for hold_id, buyer, quantity in holds:
        _positive("quantity", quantity)
        flat += [str(hold_id), str(buyer), str(quantity)]
    args.append(str(len(flat) // 3))
    args += flat
    _status, _left, ver = _load(_keys3(listing_id), args, client=client)
    return int(ver)


def gate_meta(listing_id: int, meta: GateMeta, client: Any = None) -> str:
    """Apply a changed window, quota or limit, keeping the holds: ``ok`` or ``not_loaded``.
    ``left`` moves by exactly the quota change (it may go negative; reserve then says sold_out)."""
    status, _left, _ver = _meta([listing_keys(listing_id)["state"]], meta.as_args(), client=client)
    return status


def gate_adopt(
    listing_id: int,
    *,
    hold_id: str,
    buyer: str,
    quantity: int,
    ts_ms: int,
    client: Any = None,
) -> str:
    """Force-add a hold the database has and Redis lost (no window, quota or limit check):
    ``adopted``, ``present`` (already there; idempotent) or ``not_loaded``."""
    _positive("quantity", quantity)
    args = [hold_id, buyer, str(quantity), str(int(ts_ms))]
    status, _left = _adopt(_keys3(listing_id), args, client=client)
    return status


def gate_recount(listing_id: int, client: Any = None) -> bool:
    """Recompute ``left`` and ``buyers`` from the holds. True if anything had drifted (and was fixed)."""
    _status, _left, changed = _recount(_keys3(listing_id), [], client=client)
    return bool(changed)


@dataclass(frozen=True)
class Tally:
    """A listing's counts handed over by ``gate_tally_drain``: its decisions since the last
    hand-over (``TALLY_OUTCOMES``), and the hand-over's sequence number (it only grows: the
    database adds a hand-over only when its number is above the last one it took)."""

    seq: int
    counts: dict[str, int]


def gate_tally_drain(listing_id: int, client: Any = None) -> Tally | None:
    """Take a listing's tally for the database (None when there is nothing to hand over). A
    hand-over that was never acknowledged is returned again with its number: add the counts only
    if the database's last number for the listing is below it, then ``gate_tally_ack``."""
    k = listing_keys(listing_id)
    flat = _tally_drain([k["tally"], k["tally_pending"], k["tally_seq"]], [], client=client)
    if not flat:
        return None
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    seq = _int(fields.pop("seq"))
    return Tally(seq=seq, counts={name: _int(fields.get(name)) for name in TALLY_OUTCOMES})


def gate_tally_ack(listing_id: int, seq: int, client: Any = None) -> bool:
    """Forget a hand-over the database has taken (True when it was still there)."""
    return bool(_tally_ack([listing_keys(listing_id)["tally_pending"]], [str(seq)], client=client))


def _parse_hold(record: str) -> tuple[str, int, int]:
    buyer, qty, ts = record.rsplit("|", 2)
    return buyer, int(qty), int(ts)


def _int(value: str | None, default: int = 0) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:  # Lua numbers come back as "1.5e+15" once they pass 2^53
        return int(float(value))


def gate_state(listing_id: int, client: Any = None) -> dict[str, Any] | None:
    """A consistent snapshot (one MULTI) of the listing's gate, or None when it is not loaded::

    {"closed": bool, "opens": int, "closes": int, "quota": int, "left": int, "limit": int,
     "ver": int, "buyers": {buyer: units}, "holds": {hold_id: (buyer, qty, ts_ms)}}
    """
    client = client or get_client()
    keys = listing_keys(listing_id)
    pipe = client.pipeline(transaction=True)
    pipe.hgetall(keys["state"])
    pipe.hgetall(keys["buyers"])
    pipe.hgetall(keys["holds"])
    state, buyers, holds = pipe.execute()
    if not state:
        return None
    return {
        "closed": state.get("closed") == "1",
        "opens": _int(state.get("opens")),
        "closes": _int(state.get("closes")),
        "quota": _int(state.get("quota")),
        "left": _int(state.get("left")),
        "limit": _int(state.get("limit")),
        "ver": _int(state.get("ver")),
        "buyers": {b: _int(n) for b, n in buyers.items()},
        "holds": {h: _parse_hold(r) for h, r in holds.items()},
    }


@contextmanager
def gate_rebuild_lock(
    listing_id: int,
    *,
    timeout_ms: int = 5000,
    wait_s: float = 3.0,
    only_if_missing: bool = False,
    client: Any = None,
) -> Iterator[bool]:
    """Serialise rebuilds of one listing's gate across processes.

    Yields True when this caller holds the lock (``SET NX PX timeout_ms`` with a random token):
    load the state with ``gate_load`` and leave; the lock is released on exit by
    compare-and-delete, so an expired lock another caller took since is never removed.

    Yields False when another caller held the lock and either the state appeared meanwhile
    (retry the gate) or ``wait_s`` passed (the gate stays unavailable for now).

    A lock taken at the first try says nothing about the state: another caller may have loaded
    it since this caller's ``not_loaded``, and loading again would drop holds taken since. The
    ``not_loaded`` path should pass ``only_if_missing=True``: then a lock acquired while the
    state exists is given back at once and the answer is False. Leave it False to force a
    reload (the reconciler).
    """
    client = client or get_client()
    keys = listing_keys(listing_id)
    token = secrets.token_hex(16)
    deadline = time.monotonic() + wait_s
    delay = 0.005
    waited = False
    acquired = bool(client.set(keys["lock"], token, nx=True, px=timeout_ms))
    while not acquired:
        if client.exists(keys["state"]) or time.monotonic() >= deadline:
            break
        waited = True
        time.sleep(min(delay, max(deadline - time.monotonic(), 0)))
        delay = min(delay * 2, 0.1)
        acquired = bool(client.set(keys["lock"], token, nx=True, px=timeout_ms))
    if acquired and (waited or only_if_missing) and client.exists(keys["state"]):
        # Whoever held the lock has just loaded the state: nothing left to rebuild.
        _unlock([keys["lock"]], [token], client=client)
        acquired = False
    try:
        yield acquired
    finally:
        if acquired:
            try:
                _unlock([keys["lock"]], [token], client=client)
            except Exception as exc:
                # Redis gone mid-rebuild: the lock expires by itself after timeout_ms.
                if not is_redis_error(exc):
                    raise
