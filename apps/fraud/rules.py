"""The hot-path rules: what each counts, its defaults, and a merchant's rules as the script takes them.

A rule is a counter over a threshold (``count > threshold`` fires) and an action: ``block`` (403
``risk_blocked``, nothing held), ``review`` (placed, then held for review once paid) or
``short_window`` (placed with the policy's short payment window: a stock-locker's units come back
quickly). Each rule is on, in dry run (its hits are recorded on the order, nothing changes) or off.

Counters (``lua/check.lua`` keeps them in one hash per show, hash-tagged for one cluster slot,
and counts only those a rule here reads; ``hotpath.apply_rules`` compares them with the thresholds):

- attempts per listing from one IP, IP /24, device, phone or normalised address (``*.l``);
- distinct buyers per device, phone, address or drop point (the flat however its address is
  written: ``facts.drop_point_key``) in the show (``*.b``);
- ``early``: attempts by this buyer or device on this listing while it was not open (counted when
  the gate answers 409 ``listing_closed``);
- from the request itself: ``ua_script`` (the user agent names an HTTP library or tool),
  ``ua_headless``, ``ua_inconsistent`` (the user agent's class) and ``hoard`` (the maximum
  quantity from an account known to be younger than ``YOUNG_DAYS``).

A merchant's rules are their ``RiskRule`` rows over ``CATALOGUE``'s defaults; the hot path reads
them like ``listing_info``: from process memory (``LOCAL_TTL`` seconds), else the shared cache
(Redis), else the database. A saved change drops the shared copy and this process's, so it reaches
every process within ``LOCAL_TTL``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.core.cache import cache

from apps.core.refresh_ahead import RefreshAhead, Spawn

from .catalogue import CATALOGUE, RuleSpec
from .models import RiskPolicy, RiskRule, RuleMode

YOUNG_DAYS = 180
LOCAL_TTL = 5.0
REFRESH_AHEAD = 0.5  # above the event loop's margin (RULES_MARGIN_S): refreshed before it stops judging
_ahead = RefreshAhead(REFRESH_AHEAD)


@dataclass(frozen=True)
class MerchantRules:
    rules: tuple[RuleSpec, ...]  # only rules that are on or in dry run
    short_window_seconds: int
    model_mode: str
    review_score: float | None


_cache: dict[int, tuple[float, MerchantRules]] = {}
_lock = threading.Lock()


def _shared_key(merchant_id: int) -> str:
    return f"risk-rules:v1:{merchant_id}"


def merchant_rules(merchant_id: int) -> MerchantRules:
    hit = _cache.get(merchant_id)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    rules = _shared(merchant_id)
    with _lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[merchant_id] = (time.monotonic() + LOCAL_TTL, rules)
    return rules


def rules_cached(merchant_id: int, for_seconds: float = 0.0, refresh: Spawn | None = None) -> bool:
    """Whether ``merchant_rules`` answers from process memory, with no shared cache or database,
    for at least ``for_seconds`` more (the event loop judges an attempt only then). ``refresh``:
    runs a callable in the background; given, a hit in the entry's last ``REFRESH_AHEAD`` of its
    time has the rules read again there, so a merchant on air keeps them in memory."""
    hit = _cache.get(merchant_id)
    if hit is None:
        return False
    left = hit[0] - time.monotonic()
    _ahead.hit(merchant_id, left, LOCAL_TTL, refresh, _refresh, merchant_id)
    return left > for_seconds


def _refresh(merchant_id: int) -> None:
    stamp = _ahead.stamp(merchant_id)
    rules = _shared(merchant_id, stamp)
    with _lock:
        if _ahead.stamp(merchant_id) == stamp:  # else a change came meanwhile: keep nothing read before it
            _cache[merchant_id] = (time.monotonic() + LOCAL_TTL, rules)


def _shared(merchant_id: int, stamp: int | None = None) -> MerchantRules:
    """The rules from the shared cache, else the database (then shared), unless a change came in
    this process since ``stamp`` (``forget``): what was read before it is not shared."""
    try:
        hit = cache.get(_shared_key(merchant_id))
    except Exception:  # noqa: BLE001 - Redis may vanish
        hit = None
    if isinstance(hit, dict):
        try:
            return MerchantRules(
                rules=tuple(RuleSpec(**r, label="") for r in hit["rules"]),
                short_window_seconds=hit["short_window_seconds"],
                model_mode=hit["model_mode"],
                review_score=hit["review_score"],
            )
        except (KeyError, TypeError):
            pass  # another version's shape: reload
    rules = load_rules(merchant_id)
    shared = {
        "rules": [
            {"code": r.code, "metric": r.metric, "threshold": r.threshold, "action": r.action, "mode": r.mode}
            for r in rules.rules
        ],
        "short_window_seconds": rules.short_window_seconds,
        "model_mode": rules.model_mode,
        "review_score": rules.review_score,
    }
    if stamp is not None and _ahead.stamp(merchant_id) != stamp:
        return rules
    try:
        cache.set(_shared_key(merchant_id), shared, timeout=300)
    except Exception:  # noqa: BLE001
        pass
    return rules


def forget(merchant_id: int) -> None:
    with _lock:
        _ahead.forget(merchant_id)
        _cache.pop(merchant_id, None)
    try:
        cache.delete(_shared_key(merchant_id))
    except Exception:  # noqa: BLE001 - the shared copy expires by itself
        pass


def load_rules(merchant_id: int) -> MerchantRules:
    """The merchant's rules from the database: its rows over the catalogue's defaults."""
    rows = {r.code: r for r in RiskRule.objects.filter(merchant_id=merchant_id)}
    specs = []
    for code, spec in CATALOGUE.items():
        row = rows.get(code)
        if row is not None:
            spec = RuleSpec(code, spec.metric, row.threshold, row.action, row.mode, spec.label)
        if spec.mode != RuleMode.OFF:
            specs.append(spec)
    policy = RiskPolicy.objects.filter(merchant_id=merchant_id).first() or RiskPolicy(merchant_id=merchant_id)
    return MerchantRules(tuple(specs), policy.short_window_seconds, policy.model_mode, policy.review_score)


def ensure_rules(merchant_id: int) -> None:
    """Give a merchant a row for every catalogue rule (at its default) and a policy, so the admin
    lists them all; existing rows are left as they are."""
    have = set(RiskRule.objects.filter(merchant_id=merchant_id).values_list("code", flat=True))
    RiskRule.objects.bulk_create(
        [
            RiskRule(merchant_id=merchant_id, code=s.code, threshold=s.threshold, action=s.action, mode=s.mode)
            for s in CATALOGUE.values()
            if s.code not in have
        ],
        ignore_conflicts=True,
    )
    RiskPolicy.objects.get_or_create(merchant_id=merchant_id)
