"""``order_place``: may this order be placed? The Redis gate decides first, the database last.

0. Risk control's guard (``hooks.registry.guard``, one Redis script) runs in the same round trip
   as the gate's reserve, and is judged first: it may refuse the attempt (403 ``risk_blocked``:
   the units the gate held go back, no order) or shorten its payment window. On a listing this
   process saw sold out within ``SOLD_OUT_HINT_S``, the gate answers alone first and the guard
   runs only when it held units (and its refusal gives them back).
1. The gate (``gate/lua/reserve.lua``) holds units for the order's public id (derived from the
   Idempotency-Key); ``sold_out``, ``closed`` and ``over_limit`` answer at once without touching
   the database; a missing key is rebuilt from the database under a lock; an unreachable Redis
   lets the database decide alone.
2. Idempotency: the gate remembers every hold id it held, so only a key used before (or a Redis
   that cannot tell) costs a database lookup of the earlier order.
3. The database (``engines``): buyer, order, line, stock movement, then the hot rows as late as
   possible, the ledger last.
4. On failure the hold is released (only a hold this request took) and a gate/database
   disagreement is counted and the listing queued for reconciliation.
5. After commit the order is published to its subscribers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.db import DatabaseError, IntegrityError

from apps.catalog.selectors import ListingInfo, listing_info
from apps.core.errors import ApplicationError
from apps.core.redis import get_client, is_redis_error, run_together
from apps.orders import events as notify
from apps.orders import hooks
from apps.orders.errors import (
    IdempotencyConflict,
    ListingClosed,
    ListingNotFound,
    OverBuyerLimit,
    SoldOut,
    Unavailable,
)
from apps.orders.models import LIVE_STATUSES, Order

from . import batcher
from .engines import NewOrder, Refused, place_in_db
from .gate import scripts as gate
from .gate.keys import DRIFT_COUNTER, RECONCILE_DUE, buyer_key
from .gate.rebuild import gate_rebuild
from .links import new_public_id
from .request import OrderRequest

log = logging.getLogger(__name__)
NOT_SAVED = "could not save the order; nothing was charged or held — please retry"
UNCONFIRMED = "the order could not be confirmed in time; retry with the same Idempotency-Key to learn its outcome"


@dataclass(frozen=True)
class Placement:
    order: Order
    created: bool


@dataclass(frozen=True)
class Decided:
    """What the event loop (``eventloop``) already had Redis decide for this attempt, handed on so
    the thread path asks Redis nothing twice: the order's ``public_id`` (its hold id), the
    guard's ``verdict`` (None: the guard has not run yet — the gate answered alone, as on a
    listing seen sold out lately) and the gate's first answer (None: ask it again)."""

    public_id: str
    verdict: hooks.GuardVerdict | None
    first: gate.GateResult | None
    info: ListingInfo | None = None  # the listing as the loop saw it (the thread does not look it up again)


def order_place(
    *,
    req: OrderRequest,
    merchant_id: int | None,
    idempotency_key: str | None,
    channel: str = "api",
    actor: str = "buyer",
    decided: Decided | None = None,
) -> Placement:
    """Place an order for one listing. ``merchant_id`` is the token's merchant (None for the
    public storefront). Raises ListingNotFound, SoldOut, OverBuyerLimit, ListingClosed,
    IdempotencyConflict, Unavailable (503: nothing was placed, or it is not known yet — retry
    with the same key). Opens no database transaction when the gate says no. ``decided``: the
    guard's and the gate's answers the event loop already had for this attempt (``Decided``)."""
    seen = decided.info if decided is not None and decided.info is not None else None
    info = listing_for(req, merchant_id, seen or listing_info(req.listing_id))
    merchant_id = info.merchant_id
    fingerprint = req.fingerprint()
    public_id = (
        decided.public_id
        if decided is not None
        else new_public_id(merchant_id=merchant_id, idempotency_key=idempotency_key)
    )
    # A listing this process saw sold out a moment ago: ask the gate first, so the flood of
    # attempts on a sold-out listing is answered without the risk guard's work; the guard runs
    # when the gate holds units (stock came back), and its refusal gives them back.
    bkey = buyer_key(req.buyer_external_id)
    remember = idempotency_key is not None
    verdict, first = (decided.verdict, decided.first) if decided is not None else (None, None)
    if decided is None and not sold_out_lately(info.id) and hooks.registry.guard is not None:
        verdict, first = _guard_with_gate(info, req, public_id, channel, buyer=bkey, remember=remember)
    try:
        gate_said = _gate_hold(
            info, public_id=public_id, buyer=bkey, quantity=req.quantity, remember=remember, first=first
        )
    except ListingClosed:
        if hooks.registry.closed is not None:
            hooks.registry.closed(info=info, req=req, public_id=public_id)
        raise
    if idempotency_key is not None and gate_said in (_REPLAY, _SEEN, _NO_GATE):
        # The key was used before (or Redis cannot tell): the database knows its order.
        existing = _idempotent_replay(merchant_id, idempotency_key, fingerprint)
        if existing is not None:
            return Placement(existing, created=False)
        if gate_said == _SEEN:  # its earlier attempt failed: this one is new after all
            gate_said = _gate_hold(info, public_id=public_id, buyer=bkey, quantity=req.quantity, remember=False)
    # Only a hold this request took is this request's to give back: a replay's hold belongs to the
    # request that took it (still in flight, or its order's).
    held = gate_said == _HELD
    if verdict is None:
        try:
            verdict = _guard(info, req, public_id, channel)
        except BaseException as exc:
            _release(info.id, public_id, held)
            hooks.refusal_follow_up(exc)
            raise
    new = NewOrder(
        public_id,
        idempotency_key,
        fingerprint,
        channel,
        actor,
        pay_window_seconds=verdict.pay_window_seconds,
        signals=signals_of(req, verdict),
    )
    try:
        order, seq = place_in_db(info, req, new)
    except IntegrityError as exc:
        # The key's order exists: a concurrent duplicate won, or the key was used before in a way
        # the gate could not tell (another listing, a Redis that lost its memory).
        existing = None
        if idempotency_key is not None:
            try:
                existing = _idempotent_replay(merchant_id, idempotency_key, fingerprint, lookup_only=True)
            finally:
                if held and not _hold_is_the_orders(existing, info):
                    _release(info.id, public_id, held)
        if existing is not None:
            if existing.request_hash != fingerprint:
                raise IdempotencyConflict("this Idempotency-Key was used with a different request body") from None
            return Placement(existing, created=False)
        if idempotency_key is None:  # with a key, the lookup's finally gave the hold back
            _release(info.id, public_id, held)
        log.warning("order transaction failed", extra={"listing": info.id}, exc_info=True)
        raise Unavailable(NOT_SAVED) from exc
    except batcher.BatchOutcomeUnknown as exc:
        # The order may still commit: its hold stays (the reconciler frees it if it does not).
        log.warning("order batch gave no answer", extra={"listing": info.id, "order": public_id})
        raise Unavailable(UNCONFIRMED) from exc
    except DatabaseError as exc:
        _release(info.id, public_id, held)
        log.warning("order transaction failed", extra={"listing": info.id}, exc_info=True)
        raise Unavailable(NOT_SAVED) from exc
    except Refused as refused:
        _release(info.id, public_id, held)
        if held:
            _count_drift(info.id, refused.error)
        raise refused.error from None
    except BaseException:
        _release(info.id, public_id, held)
        raise
    notify.order_changed_on_commit(order, listing_id=info.id, seq=seq, created=True)
    return Placement(order, created=True)


def listing_for(req: OrderRequest, merchant_id: int | None, info: ListingInfo | None) -> ListingInfo:
    """The listing the request names, if it is ``merchant_id``'s (None: any merchant's); else
    raises ListingNotFound."""
    if info is None or (merchant_id is not None and info.merchant_id != merchant_id):
        raise ListingNotFound("no such listing", extra={"listing": req.listing_id})
    return info


NO_VERDICT = hooks.GuardVerdict()


SOLD_OUT_HINT_S = 0.25
_sold_out_seen: dict[int, float] = {}


def sold_out_lately(listing_id: int) -> bool:
    """Whether this process saw the listing sold out within ``SOLD_OUT_HINT_S``: then the gate
    answers alone first, and the guard runs only when it holds units."""
    until = _sold_out_seen.get(listing_id)
    if until is None:
        return False
    if until > time.monotonic():
        return True
    _sold_out_seen.pop(listing_id, None)
    return False


def _guard(info: ListingInfo, req: OrderRequest, public_id: str, channel: str) -> hooks.GuardVerdict:
    """Risk control's say, its script on its own: raises its refusal, else its verdict."""
    guard = hooks.registry.guard
    if guard is None:
        return NO_VERDICT
    return guard(info=info, req=req, public_id=public_id, channel=channel).run_alone()


def _guard_with_gate(
    info: ListingInfo, req: OrderRequest, public_id: str, channel: str, *, buyer: str, remember: bool
) -> tuple[hooks.GuardVerdict, gate.GateResult | None]:
    """Risk control's script and the gate's first reserve in one round trip; then the guard's
    judgement, before the gate's answer is read, so its refusal comes first (as if it had run
    alone before the gate) and gives back the units the gate held. Returns the verdict and the
    gate's answer (None when Redis failed: ``_gate_hold`` asks again and decides)."""
    assert hooks.registry.guard is not None
    call = hooks.registry.guard(info=info, req=req, public_id=public_id, channel=channel)
    now_ms = int(time.time() * 1000)
    reserve = gate.reserve_call(
        info.id, hold_id=public_id, buyer=buyer, quantity=req.quantity, now_ms=now_ms, remember=remember
    )
    try:
        guard_reply, gate_reply = run_together([(call.script, call.keys, call.args), reserve])
    except Exception as exc:
        if not is_redis_error(exc):
            raise
        guard_reply, gate_reply = exc, exc
    first = None if isinstance(gate_reply, BaseException) else gate.reserve_result(gate_reply)
    try:
        verdict = call.judge(guard_reply)
    except BaseException as exc:
        _release(info.id, public_id, first is not None and first.status == gate.OK and not first.replay)
        hooks.refusal_follow_up(exc)
        raise
    return verdict, first


def signals_of(req: OrderRequest, verdict: hooks.GuardVerdict) -> dict:
    """The order's signals row, JSON-ready (``OrderSignals``)."""
    return {
        "ip": req.client.ip,
        "device_id": req.client.device_id,
        "user_agent": req.client.user_agent,
        "buyer_registered_at": req.buyer_registered_at.isoformat() if req.buyer_registered_at else None,
        "received_at": req.received_at.isoformat() if req.received_at else None,
        "rules": verdict.rules,
    }


def _idempotent_replay(merchant_id: int, key: str, fingerprint: str, *, lookup_only: bool = False) -> Order | None:
    order = Order.objects.filter(merchant_id=merchant_id, idempotency_key=key).first()
    if order is None or lookup_only:
        return order
    if order.request_hash != fingerprint:
        raise IdempotencyConflict("this Idempotency-Key was used with a different request body")
    return order


def _hold_is_the_orders(existing: Order | None, info: ListingInfo) -> bool:
    """Whether a hold under the key's public id on this listing is the existing order's own (its
    hold id is the same, derived from the key): only while that order is live on this listing.
    Otherwise a hold this request just took for it is spurious and must go back."""
    return existing is not None and existing.listing_id == info.id and existing.status in LIVE_STATUSES


# What the gate said (``_gate_hold``): units held for this order; the hold id holds units already
# (a replay, or a concurrent duplicate in flight); it held units before (a replay of a released
# order); Redis cannot decide (the database decides alone).
_HELD, _REPLAY, _SEEN, _NO_GATE = "held", "replay", "seen", "no_gate"


def _gate_hold(
    info: ListingInfo,
    *,
    public_id: str,
    buyer: str,
    quantity: int,
    remember: bool,
    first: gate.GateResult | None = None,
) -> str:
    """Ask the gate for a hold (``first``: its answer already had, from the guard's round trip);
    raises the gate's refusal."""
    try:
        for attempt in range(3):
            result = first if attempt == 0 and first is not None else None
            if result is None:
                result = gate.gate_reserve(
                    info.id,
                    hold_id=public_id,
                    buyer=buyer,
                    quantity=quantity,
                    now_ms=int(time.time() * 1000),
                    remember=remember,
                )
            if result.status == gate.OK:
                return _REPLAY if result.replay else _HELD
            if result.status == gate.SEEN:
                return _SEEN
            refusal = gate_refusal(info, result)
            if refusal is not None:
                raise refusal
            gate_rebuild(info.id)  # not_loaded: rebuild from the database, then try again
        log.warning("gate could not be loaded; the database decides", extra={"listing": info.id})
        return _NO_GATE
    except Exception as exc:
        if is_redis_error(exc):
            log.warning("redis unavailable; the database decides", extra={"listing": info.id})
            return _NO_GATE
        raise


def gate_refusal(info: ListingInfo, result: gate.GateResult) -> ApplicationError | None:
    """The refusal a gate answer stands for (None for ``ok``, ``seen`` and ``not_loaded``); a
    ``sold_out`` also marks the listing sold out lately in this process (``SOLD_OUT_HINT_S``)."""
    if result.status == gate.SOLD_OUT:
        _sold_out_seen[info.id] = time.monotonic() + SOLD_OUT_HINT_S
        return SoldOut("sold out", extra={"listing": info.id, "left": max(result.left, 0)})
    if result.status == gate.OVER_LIMIT:
        return OverBuyerLimit(
            f"at most {info.per_buyer_limit} per buyer",
            extra={"listing": info.id, "limit": info.per_buyer_limit, "held": result.held},
        )
    if result.status == gate.CLOSED:
        return ListingClosed("this listing is not open", extra={"listing": info.id})
    return None


def release_hold(listing_id: int, public_id: str) -> None:
    """Give back the units the gate holds for ``public_id`` (a failure is logged: the reconciler
    frees an orphaned hold)."""
    _release(listing_id, public_id, True)


def _release(listing_id: int, public_id: str, held: bool) -> None:
    if not held:
        return
    try:
        gate.gate_release(listing_id, hold_id=public_id)
    except Exception:  # noqa: BLE001 - the reconciler frees an orphaned hold
        log.warning("gate release failed", extra={"listing": listing_id, "order": public_id}, exc_info=True)


def _count_drift(listing_id: int, error: Exception) -> None:
    log.warning(
        "gate and database disagree; the database wins",
        extra={"listing": listing_id, "db_answer": getattr(error, "code", str(error))},
    )
    try:
        client = get_client()
        client.incr(DRIFT_COUNTER)
        client.sadd(RECONCILE_DUE, listing_id)
    except Exception:  # noqa: BLE001 - a metric; Redis may be gone
        pass
