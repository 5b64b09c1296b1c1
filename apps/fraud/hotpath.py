"""Risk control on the hot path: the placement guard (``apps.orders.hooks.registry.guard``).

One Redis script per attempt (``lua/check.lua``), sent in one round trip with the stock gate's
reserve (``GuardCall``: the order service runs both), and nothing from the database: the script
counts the attempt and returns the counters; the merchant's rules (from process memory,
``rules.merchant_rules``) are applied to them here, with the user agent's class and the
account's age. The script remembers the counters it returned for the order's public id,
so a retry of the same Idempotency-Key gets the same verdict and counts nothing twice.

- ``block``: raises ``RiskBlocked`` (403 ``risk_blocked``, ``extra.reasons``); the order service
  gives back the units the gate held for the attempt and writes nothing. Then (the refusal's
  ``after_release``) the attempt is recorded as a ``RiskAssessment`` without an order (once per
  public id): no unit stays held while that row is written.
- ``review``: the order is placed; the verdict is stored with its signals and the scorer holds it
  for review once paid.
- a ``short_window`` rule (or a review verdict) places the order with the policy's short payment
  window, so a stock-locker's units come back quickly.

Redis unreachable: the rules cannot count, so they let the attempt through (``unavailable``
recorded on the order); the after-commit scorer still judges it. The invariant "Redis may vanish"
wins over the rules.

``note_closed`` (``hooks.registry.closed``) counts an attempt the gate refused with 409
``listing_closed`` for the buyer and the device (``early.lua``): one more Redis call, only on that
refusal, which places no order.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from django.db import DatabaseError

from apps.core.normalise import normalise_address
from apps.core.redis import LuaScript, is_redis_error
from apps.orders.hooks import GuardCall, GuardVerdict, refusal_follow_up
from apps.orders.placement.gate.keys import buyer_key

from .errors import RiskBlocked
from .facts import OrderFacts, buyer_phone_key, drop_point_key, ip_prefix
from .models import Decision, RiskAssessment, RuleAction, RuleMode
from .rules import CATALOGUE, YOUNG_DAYS, merchant_rules
from .useragent import classify_user_agent, names_a_library

log = logging.getLogger(__name__)
_LUA = Path(__file__).parent / "lua"
_check = LuaScript(_LUA / "check.lua", 1)
_early = LuaScript(_LUA / "early.lua", 1)
TTL_SECONDS = 2 * 86_400  # counters outlive any show
_TTL = str(TTL_SECONDS)
# What the catalogue's rules read, so all that ``check.lua`` counts: attempts on the listing per
# value of these dimensions (``<dim>.l``), distinct buyers in the show per value of these (``<dim>.b``).
_VELOCITY_DIMS = frozenset(spec.metric[:-2] for spec in CATALOGUE.values() if spec.metric.endswith(".l"))
_SET_DIMS = frozenset(spec.metric[:-2] for spec in CATALOGUE.values() if spec.metric.endswith(".b"))


def risk_key(session_id: int | None, listing_id: int) -> str:
    """The hash of an attempt's counters (``check.lua``): its show's, or the listing's when it is
    in none. Hash-tagged, so a cluster keeps all of a show's counters in one slot."""
    return f"lc:{{risk:{session_id}}}" if session_id else f"lc:{{risk:l{listing_id}}}"


def _digest(value: str) -> str:
    return hashlib.blake2b(value.encode(), digest_size=8).hexdigest()


def _ip24(ip: str) -> str | None:
    """``facts.ip_prefix`` without ``ipaddress`` for the common case: the request parser has
    already normalised the IP, so a dotted quad's /24 is its first three parts."""
    if ip.count(".") == 3 and ":" not in ip:
        return ip.rpartition(".")[0] + ".0/24"
    return ip_prefix(ip)


def attempt_dims(req: Any) -> list[tuple[str, str]]:
    """The values an attempt is known by: (dimension, value or short digest), in a fixed order.
    ``check.lua`` counts those a rule reads (``_VELOCITY_DIMS``, ``_SET_DIMS``)."""
    dims: list[tuple[str, str]] = []
    client = req.client
    if client.ip:
        dims.append(("ip", client.ip))
        prefix = _ip24(client.ip)
        if prefix:
            dims.append(("ip24", prefix))
    if client.device_id:
        dims.append(("dev", _digest(client.device_id)))
    phone = buyer_phone_key(req.buyer_phone, req.address.get("phone"))
    if phone:
        dims.append(("phone", phone))
    address = normalise_address(req.address) if req.address else None
    if address:
        dims.append(("addr", _digest(address)))
        drop = drop_point_key(address)
        if drop:
            dims.append(("drop", _digest(drop)))
    return dims


def _client_metrics(req: Any, limit: int, now: datetime) -> dict[str, int]:
    ua = classify_user_agent(req.client.user_agent)
    registered = req.buyer_registered_at
    # Only a known young account: the storefront knows no account age, and a fan buying the
    # maximum there must keep the listing's payment window.
    young = registered is not None and now - registered < timedelta(days=YOUNG_DAYS)
    return {
        "ua_script": int(names_a_library(req.client.user_agent)),
        "ua_headless": int(ua == "headless"),
        "ua_inconsistent": int(ua == "inconsistent"),
        "hoard": int(limit > 1 and req.quantity >= limit and young),
    }


class _Plan(NamedTuple):
    """What ``check.lua`` counts for attempts known by one sequence of dimensions (``attempt_dims``
    gives a handful of such sequences: with or without a device, a phone, an address...)."""

    velocity: tuple[int, ...]  # positions in the dims of the velocity fields, in order
    sets: tuple[int, ...]  # positions of the distinct-buyer fields
    device: int | None  # position of the device's digest
    shape: str  # what the numbers count, in order: a retry with other signals gets none of them
    metrics: tuple[str, ...]  # the name of each number the script returns after ``replay``


@functools.lru_cache(maxsize=256)
def _plan(kinds: tuple[str, ...]) -> _Plan:
    velocity = tuple(i for i, dim in enumerate(kinds) if dim in _VELOCITY_DIMS)
    sets = tuple(i for i, dim in enumerate(kinds) if dim in _SET_DIMS)
    return _Plan(
        velocity,
        sets,
        kinds.index("dev") if "dev" in kinds else None,
        ",".join(kinds[i] for i in velocity) + "/" + ",".join(kinds[i] for i in sets),
        (*(f"{kinds[i]}.l" for i in velocity), *(f"{kinds[i]}.b" for i in sets), "early"),
    )


def _plan_of(dims: list[tuple[str, str]]) -> _Plan:
    return _plan(tuple(dim for dim, _value in dims))


def check_call(info: Any, req: Any, public_id: str, dims: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """The ``check.lua`` call's keys and arguments for an attempt."""
    plan = _plan_of(dims)
    fields = [f"{dims[i][0]}:{dims[i][1]}" for i in plan.velocity]
    fields += [f"{dims[i][0]}:{dims[i][1]}" for i in plan.sets]
    device = dims[plan.device][1] if plan.device is not None else ""
    args = [public_id, str(info.id), buyer_key(req.buyer_external_id), _TTL, device, plan.shape]
    return [risk_key(info.session_id, info.id)], [*args, str(len(plan.velocity)), *fields]


def read_counters(numbers: list[Any], dims: list[tuple[str, str]]) -> tuple[bool, dict[str, int]]:
    """``check.lua``'s reply: (replay, the counters the rules read)."""
    names = _plan_of(dims).metrics
    replay = bool(numbers[0])
    if replay and len(numbers) - 1 != len(names):
        # A retry of the key with other signals (a device id it lacked before, a phone instead
        # of a device...): the script returns no numbers, those remembered for the key were
        # counted for other dimensions. The retry is judged like an attempt with nothing counted
        # (a new key would be no different).
        return True, {"early": 0}
    return replay, dict(zip(names, map(int, numbers[1 : len(names) + 1]), strict=True))


def count_attempt(info: Any, req: Any, public_id: str, dims: list[tuple[str, str]]) -> tuple[bool, dict[str, int]]:
    """One ``check.lua`` call on its own: (replay, the counters the rules read)."""
    keys, args = check_call(info, req, public_id, dims)
    return read_counters(_check(keys, args), dims)


def apply_rules(rules: Any, metrics: dict[str, int]) -> tuple[str, list[list[Any]], list[list[Any]], bool]:
    """The merchant's rules over an attempt's counters: (decision, hits, dry-run hits, short)."""
    decision, short = Decision.ALLOW, False
    hits: list[list[Any]] = []
    dry: list[list[Any]] = []
    for rule in rules.rules:
        value = metrics.get(rule.metric)
        if value is None or value <= rule.threshold:
            continue
        if rule.mode != RuleMode.ON:
            dry.append([rule.code, value])
            continue
        hits.append([rule.code, value])
        if rule.action == RuleAction.BLOCK:
            decision = Decision.BLOCK
        elif rule.action == RuleAction.REVIEW and decision == Decision.ALLOW:
            decision = Decision.REVIEW
        elif rule.action == RuleAction.SHORT_WINDOW:
            short = True
    return decision, hits, dry, short


def risk_guard(*, info: Any, req: Any, public_id: str, channel: str) -> GuardCall:
    """The placement guard (see the module docstring): the attempt's ``check.lua`` call, which
    the order service runs in one round trip with the gate's reserve, and its judge."""
    dims = attempt_dims(req)
    keys, args = check_call(info, req, public_id, dims)

    def judge(reply: Any) -> GuardVerdict:
        return judge_attempt(info, req, public_id, dims, reply)

    return GuardCall(script=_check, keys=keys, args=args, judge=judge)


def risk_verdict(*, info: Any, req: Any, public_id: str, channel: str) -> GuardVerdict:
    """The guard's verdict with its script call on its own (one round trip)."""
    try:
        return risk_guard(info=info, req=req, public_id=public_id, channel=channel).run_alone()
    except RiskBlocked as refusal:
        refusal_follow_up(refusal)
        raise


def judge_attempt(info: Any, req: Any, public_id: str, dims: list[tuple[str, str]], reply: Any) -> GuardVerdict:
    """The merchant's rules over ``check.lua``'s reply (or the Redis error its call raised)."""
    if isinstance(reply, BaseException):
        if not is_redis_error(reply):
            raise reply
        log.warning("risk rules skipped: redis unavailable", extra={"listing": info.id})
        return GuardVerdict(rules={"decision": Decision.ALLOW, "unavailable": True})
    replay, metrics = read_counters(reply, dims)
    rules = merchant_rules(info.merchant_id)
    metrics.update(_client_metrics(req, info.per_buyer_limit, datetime.now(UTC)))
    decision, hits, dry, short = apply_rules(rules, metrics)
    stored: dict[str, Any] = {"decision": decision, "hits": hits, "dry": dry, "metrics": metrics}
    if decision == Decision.BLOCK:
        refusal = RiskBlocked(
            "this order was refused by the merchant's risk rules",
            extra={"listing": info.id, "reasons": [code for code, _value in hits]},
        )
        if not replay:  # recorded once the order service has given back what the gate held

            def record() -> None:
                _record_block(info, req, public_id, hits, dry, stored)

            refusal.after_release = record
        raise refusal
    window = rules.short_window_seconds if short or decision == Decision.REVIEW else None
    if window is not None:
        stored["pay_window_seconds"] = window
    return GuardVerdict(pay_window_seconds=window, rules=stored)


def note_closed(*, info: Any, req: Any, public_id: str) -> None:
    """Count an attempt the gate refused because the listing was not open (``early.lua``), and
    forget the numbers remembered for its public id (a retry after the opening counts afresh)."""
    fields = [f"b:{buyer_key(req.buyer_external_id)}"]
    if req.client.device_id:
        fields.append(f"dev:{_digest(req.client.device_id)}")
    try:
        _early([risk_key(info.session_id, info.id)], [str(info.id), str(TTL_SECONDS), public_id, *fields])
    except Exception as exc:
        if not is_redis_error(exc):
            raise
        log.warning("early attempt not counted: redis unavailable", extra={"listing": info.id})


def rule_reason(code: str, value: Any) -> dict[str, Any]:
    """A rule hit as a reason (``reasons.render_reason``): distinct-buyer counters say how many
    buyers, velocity counters how many attempts; user-agent rules need no number."""
    spec = CATALOGUE.get(code)
    metric = spec.metric if spec else ""
    if metric.endswith(".b"):
        return {"code": code, "params": {"buyers": value}}
    if metric.endswith(".l") or metric == "early":
        return {"code": code, "params": {"attempts": value}}
    return {"code": code, "params": {}}


def _record_block(info: Any, req: Any, public_id: str, hits: list, dry: list, stored: dict) -> None:
    """The blocked attempt's assessment (no order). A failure to write it is logged, never turns
    the 403 into a 5xx: the counters already hold the attempt."""
    reasons = [rule_reason(code, value) for code, value in hits]
    now = datetime.now(UTC)
    address = normalise_address(req.address) if req.address else None
    facts = OrderFacts(
        key=public_id,
        show=str(info.session_id or ""),
        listing=str(info.id),
        buyer=req.buyer_external_id,
        placed_ms=int(now.timestamp() * 1000),
        since_open_ms=None,
        quantity=req.quantity,
        limit=info.per_buyer_limit,
        registered_ms=int(req.buyer_registered_at.timestamp() * 1000) if req.buyer_registered_at else None,
        phone_key=buyer_phone_key(req.buyer_phone, req.address.get("phone")),
        address_key=address,
        device=req.client.device_id or None,
        ip=req.client.ip or None,
        ip24=ip_prefix(req.client.ip),
        user_agent=req.client.user_agent,
        early_attempts=int(stored["metrics"].get("early", 0) or 0),
    )
    try:
        RiskAssessment.objects.create(
            merchant_id=info.merchant_id,
            session_id=info.session_id,
            listing_id=info.id,
            public_id=public_id,
            buyer_external_id=req.buyer_external_id,
            phone_key=facts.phone_key or "",
            address_key=(address or "")[:300],
            drop_point=(drop_point_key(address) or "")[:300],
            device_id=req.client.device_id,
            ip=req.client.ip,
            ip24=facts.ip24 or "",
            registered_at=req.buyer_registered_at,
            decision=Decision.BLOCK,
            reasons=reasons,
            facts={**asdict(facts), "rules": stored},
        )
    except DatabaseError:
        log.warning("blocked attempt not recorded", extra={"listing": info.id, "order": public_id}, exc_info=True)
