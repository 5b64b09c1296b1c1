"""Scoring after commit: every order gets a ``RiskAssessment`` within seconds of being placed.

An order's commit kicks a scoring burst (``kick.kick``: a django-q2 task, at most one queued a
second); the burst (``score_burst``, one at a time under a Redis lease, at most ``BURST_SECONDS``,
then it queues the next if orders still wait) scores every order that has no assessment yet,
oldest first. The same burst runs every minute from the schedule, so an order whose process died
right after its commit, or whose kick was lost, is scored all the same. ``score_order``:

1. builds the order's ``OrderFacts`` from the order, its buyer, its listing's window and the
   signals stored with it (``orders.OrderSignals``);
2. finds its neighbourhood in the show from the assessments already written: the buyers linked to
   it by an equal phone, address or device, transitively (indexed queries, at most
   ``features.NEIGHBOURHOOD_CAP`` orders), and how many buyers share its IP and IP /24;
3. asks the model (``model.load_model``; with no model the rules alone decide) for a score and
   combines it with the hot-path rules' verdict: ``review`` when a rule said so or the score is at
   or above the review threshold (the merchant's ``RiskPolicy.review_score``, else the model's);
4. writes the assessment, and once committed: pushes it to the merchant's dashboard and, when the
   verdict is ``review`` and the order is paid, holds it (``paid -> on_hold`` through the state
   machine). An order paid later is held by the payment's ``order_changed`` hook (``hold_if_flagged``).
   A flagged order also re-scores the linked orders that were allowed before it arrived: the
   cluster they belong to has just shown itself.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from django.db import close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone

from apps.core import events
from apps.core.normalise import normalise_address
from apps.core.redis import get_client
from apps.orders.models import Order, OrderSignals

from .facts import OrderFacts, buyer_phone_key, drop_point_key, ip_prefix
from .features import NEIGHBOURHOOD_CAP, Neighbourhood, explain, order_features
from .holds import hold_if_flagged
from .hotpath import rule_reason
from .kick import kick
from .model import load_model
from .models import Decision, RiskAssessment, RuleMode
from .receivers import risk_payload
from .rules import merchant_rules

log = logging.getLogger(__name__)
BURST_SECONDS = 5.0  # one task's work, at most
IDLE_EXIT_S = 1.5  # a burst ends when nothing new came for this long
LEASE_KEY = "lc:risk:burst"
SETTLE_S = 60  # longer than any placement transaction: an order older than this has committed
BATCH = 200
WATERMARK_KEY = "lc:risk:scored-below"
FAILURES_KEY = "lc:risk:failures"  # hash: order pk -> scoring attempts that raised
MAX_FAILURES = 3  # then the rules' verdict is recorded alone (``not_scored``) and the scan moves on
RESCORE_LIMIT = 100


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def order_facts(order: Order, signals: OrderSignals | None) -> OrderFacts:
    """What the detector knows about a placed order (the online twin of ``offline.facts_from_attempts``)."""
    listing = order.listing
    address = order.shipping_address or {}
    phone = buyer_phone_key(order.buyer.phone, address.get("phone"))
    ip = signals.ip if signals else ""
    opens = listing.opens_at if listing is not None else None
    rules = signals.rules if signals else {}
    # The buyer's moment: when the request reached the server (a flash-sale burst can queue it
    # for seconds before the row is written), else when the order was written.
    placed = (signals.received_at if signals else None) or order.created_at
    paid_after = _ms(order.paid_at) - _ms(placed) if order.paid_at and placed else None  # type: ignore[operator]
    return OrderFacts(
        key=order.public_id,
        show=str(order.session_id or ""),
        listing=str(order.listing_id or ""),
        buyer=order.buyer.external_id,
        placed_ms=_ms(placed) or 0,
        since_open_ms=(_ms(placed) or 0) - (_ms(opens) or 0) if opens else None,
        quantity=sum(line.quantity for line in order.lines.all()) or 1,
        limit=listing.per_buyer_limit if listing is not None else 1,
        registered_ms=_ms(signals.buyer_registered_at) if signals else None,
        phone_key=phone,
        address_key=normalise_address(address) if address else None,
        device=(signals.device_id or None) if signals else None,
        ip=ip or None,
        ip24=ip_prefix(ip),
        user_agent=signals.user_agent if signals else "",
        early_attempts=int((rules.get("metrics") or {}).get("early", 0) or 0),
        paid_after_ms=paid_after,
    )


def _facts_of(row: dict[str, Any]) -> OrderFacts | None:
    """An assessment's stored facts (``asdict(OrderFacts)``), or None for a row without them."""
    data = row.get("facts") or {}
    if not data.get("key"):
        return None
    return OrderFacts(**{k: data.get(k) for k in OrderFacts.__dataclass_fields__})  # type: ignore[arg-type]


_LINK_FIELDS = ("phone_key", "address_key", "drop_point", "device_id")


def neighbourhood(facts: OrderFacts, *, session_id: int | None, listing_id: int | None) -> Neighbourhood:
    """The order's linked buyers in its show, from the assessments written so far: breadth first
    over an equal phone, address, drop point or device (``features`` explains why not the IP), at
    most ``NEIGHBOURHOOD_CAP`` orders, the order itself first."""
    scope = Q(session_id=session_id) if session_id else Q(listing_id=listing_id, session__isnull=True)
    own = {
        "phone_key": facts.phone_key,
        "address_key": facts.address_key,
        "drop_point": drop_point_key(facts.address_key),
        "device_id": facts.device,
    }
    seen: dict[str, set[str]] = {f: set() for f in _LINK_FIELDS}
    frontier: dict[str, set[str]] = {f: {v} if v else set() for f, v in own.items()}
    linked: dict[str, OrderFacts] = {facts.key: facts}
    while any(frontier.values()) and len(linked) < NEIGHBOURHOOD_CAP:
        q = Q()
        for field, values in frontier.items():
            if values:
                q |= Q(**{f"{field}__in": sorted(values)})
            seen[field] |= values
        rows = (
            RiskAssessment.objects.filter(scope)
            .filter(q)
            .exclude(public_id__in=list(linked))
            .order_by("id")
            .values("public_id", "facts", *_LINK_FIELDS)[: NEIGHBOURHOOD_CAP - len(linked)]
        )
        frontier = {f: set() for f in _LINK_FIELDS}
        for row in rows:
            other = _facts_of(row)
            if other is None:
                continue
            linked[row["public_id"]] = other
            for field in _LINK_FIELDS:
                value = row[field]
                if value and value not in seen[field]:
                    frontier[field].add(value)
    ip_buyers = ip24_buyers = 0
    if facts.ip:
        ip_buyers = _distinct_buyers(scope & Q(ip=facts.ip), facts.buyer)
    if facts.ip24:
        ip24_buyers = _distinct_buyers(scope & Q(ip24=facts.ip24), facts.buyer)
    return Neighbourhood(linked=tuple(linked.values()), ip_buyers=ip_buyers, ip24_buyers=ip24_buyers)


def _distinct_buyers(q: Q, buyer: str) -> int:
    others = (
        RiskAssessment.objects.filter(q).exclude(buyer_external_id=buyer).values("buyer_external_id").distinct().count()
    )
    return others + 1


def score_order(order_id: int, *, relink: bool = True) -> RiskAssessment | None:
    """Assess one order (again): see the module docstring. None when the order is gone."""
    order = Order.objects.select_related("buyer", "listing").prefetch_related("lines").filter(pk=order_id).first()
    if order is None:
        return None
    signals = OrderSignals.objects.filter(order_id=order.pk).first()
    facts = order_facts(order, signals)
    nb = neighbourhood(facts, session_id=order.session_id, listing_id=order.listing_id)
    features = order_features(facts, nb)
    policy = merchant_rules(order.merchant_id)
    rules = (signals.rules if signals else {}) or {}
    reasons: list[dict[str, Any]] = [
        rule_reason(code, value) for code, value in rules.get("hits") or [] if code != "hoarding"
    ]
    # An order relayed with nothing of the buyer's client (a streamer tool sending no ``client``, a
    # sales platform's order) is left to the rules: the model learnt from described clients and
    # reads a missing one as a bot's (docs/fraud.md, "Orders relayed without a client").
    described = bool(facts.ip or facts.device or facts.user_agent)
    model = load_model() if policy.model_mode != RuleMode.OFF and described else None
    score = model.score(features) if model is not None else None
    threshold = policy.review_score if policy.review_score is not None else (model.threshold if model else None)
    flagged = score is not None and threshold is not None and score >= threshold
    decision: str = Decision.REVIEW if rules.get("decision") == Decision.REVIEW else Decision.ALLOW
    if flagged and policy.model_mode == RuleMode.ON:
        decision = Decision.REVIEW
        reasons += [r for r in explain(facts, features) if r["code"] not in {x["code"] for x in reasons}]
    previous = RiskAssessment.objects.filter(order_id=order.pk).first()
    if previous is not None and previous.review_outcome:
        decision = previous.decision  # a merchant's review stands; only the figures are refreshed
    values = {
        "merchant_id": order.merchant_id,
        "session_id": order.session_id,
        "listing_id": order.listing_id,
        "public_id": order.public_id,
        "buyer_external_id": facts.buyer,
        "phone_key": facts.phone_key or "",
        "address_key": (facts.address_key or "")[:300],
        "drop_point": (drop_point_key(facts.address_key) or "")[:300],
        "device_id": facts.device or "",
        "ip": facts.ip or "",
        "ip24": facts.ip24 or "",
        "registered_at": signals.buyer_registered_at if signals else None,
        "decision": decision,
        "score": None if score is None else round(score, 2),
        "reasons": reasons[:5],
        "facts": {
            **asdict(facts),
            "rules": rules,
            "model_flagged": flagged,
            "model_mode": policy.model_mode,
            "model_skipped": "" if described else "no_client",
        },
        "features": features,
        "model_version": model.version if model is not None else "",
    }
    with transaction.atomic():
        assessment, _created = RiskAssessment.objects.update_or_create(order_id=order.pk, defaults=values)
    if previous is None or previous.decision != assessment.decision:
        _push(order, assessment)
    if assessment.decision == Decision.REVIEW and not assessment.review_outcome:
        hold_if_flagged(order.pk)
        if relink and (previous is None or previous.decision != Decision.REVIEW):
            _rescore_linked(nb, order.public_id)
    return assessment


def _rescore_linked(nb: Neighbourhood, own: str) -> None:
    keys = [f.key for f in nb.linked if f.key != own][:RESCORE_LIMIT]
    for pk in RiskAssessment.objects.filter(
        public_id__in=keys, decision=Decision.ALLOW, review_outcome="", order__isnull=False
    ).values_list("order_id", flat=True):
        try:
            score_order(pk, relink=False)
        except Exception:  # noqa: BLE001 - one neighbour failing must not undo this order's verdict
            log.warning("re-scoring a linked order failed", extra={"order_pk": pk}, exc_info=True)


def _push(order: Order, assessment: RiskAssessment) -> None:
    payload = {
        "type": "merchant.order.risk",
        "session": order.session_id,
        "order": {"id": order.public_id, "status": order.status, "risk": risk_payload(assessment)},
    }
    try:
        events.publish(f"merchant.{order.merchant_id}", payload)
    except Exception:  # noqa: BLE001 - a push is best effort; reads show the assessment
        log.warning("risk push failed", extra={"order": order.public_id}, exc_info=True)


def score_pending(limit: int = BATCH) -> int:
    """Score orders that have no assessment yet, oldest first. Returns how many were scored.

    Only orders placed with their signals (every order since risk control exists; not the
    history before it, which nobody should hold now). The watermark (every order at or below it
    is assessed) never passes an order placed in the last ``SETTLE_S``: ids are taken when an order
    row is inserted and it commits a moment later, so a smaller id can still appear after a
    larger one was scored."""
    try:
        low = int(get_client().get(WATERMARK_KEY) or 0)
    except Exception:  # noqa: BLE001 - Redis may vanish: scan from the start
        low = 0
    pending = list(
        Order.objects.filter(pk__gt=low, risk_assessment__isnull=True, signals__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    done = 0
    for pk in pending:
        try:
            score_order(pk)
            done += 1
        except Exception as exc:  # noqa: BLE001 - one order failing never stops the others
            log.warning("risk scoring failed", extra={"order_pk": pk}, exc_info=True)
            done += _note_failure(pk, exc)
    if pending:
        still = Order.objects.filter(
            pk__gt=low, pk__lte=pending[-1], risk_assessment__isnull=True, signals__isnull=False
        ).order_by("pk")
        first_left = still.values_list("pk", flat=True).first()
        mark = (first_left - 1) if first_left is not None else pending[-1]
        settled = (
            Order.objects.filter(pk__gt=low, pk__lte=mark, created_at__lt=timezone.now() - timedelta(seconds=SETTLE_S))
            .order_by("-pk")
            .values_list("pk", flat=True)
            .first()
        )
        mark = settled if settled is not None else low
        try:
            get_client().set(WATERMARK_KEY, mark)
        except Exception:  # noqa: BLE001
            pass
    return done


def _note_failure(pk: int, exc: BaseException) -> int:
    """Count a failed scoring of order ``pk``; at the ``MAX_FAILURES``-th, record the hot-path
    rules' verdict alone (reason ``not_scored``), so the order is assessed, shows why, and no
    longer holds the watermark back. Returns 1 when it recorded that assessment."""
    try:
        client = get_client()
        failures = int(client.hincrby(FAILURES_KEY, str(pk), 1))
        client.expire(FAILURES_KEY, 86_400)
    except Exception:  # noqa: BLE001 - without Redis nothing is counted: the next pass tries again
        return 0
    if failures < MAX_FAILURES:
        return 0
    try:
        order = Order.objects.filter(pk=pk).first()
        if order is None:
            return 0
        signals = OrderSignals.objects.filter(order_id=pk).first()
        rules = (signals.rules if signals else {}) or {}
        decision = Decision.REVIEW if rules.get("decision") == Decision.REVIEW else Decision.ALLOW
        reasons = [rule_reason(code, value) for code, value in rules.get("hits") or [] if code != "hoarding"]
        values = {
            "merchant_id": order.merchant_id,
            "session_id": order.session_id,
            "listing_id": order.listing_id,
            "public_id": order.public_id,
            "decision": decision,
            "score": None,
            "reasons": [*reasons[:4], {"code": "not_scored", "params": {}}],
            "facts": {"rules": rules, "error": f"{type(exc).__name__}: {exc}"[:500], "failures": failures},
            "features": {},
        }
        with transaction.atomic():
            _assessment, created = RiskAssessment.objects.get_or_create(order_id=pk, defaults=values)
        if created and decision == Decision.REVIEW:
            hold_if_flagged(pk)
        get_client().hdel(FAILURES_KEY, str(pk))
        return int(created)
    except Exception:  # noqa: BLE001 - the next pass tries again
        log.warning("risk: could not record an unscored order", extra={"order_pk": pk}, exc_info=True)
        return 0


def score_burst(seconds: float = BURST_SECONDS) -> int:
    """Score what is pending for up to ``seconds``, one burst at a time (a Redis lease), then queue
    another burst if orders are still waiting. Never holds a task worker for long: the expiry
    sweeper, webhook deliveries and exports share the same workers. Returns how many were scored."""
    token = secrets.token_hex(8)
    client = get_client()
    lease_ms = int((seconds + 5) * 1000)
    try:
        if not client.set(LEASE_KEY, token, nx=True, px=lease_ms):
            return 0  # a burst is running: this task frees its worker at once (the schedule catches up)
    except Exception:  # noqa: BLE001 - without Redis, score anyway (one sweeper per minute at most)
        token = ""
    deadline = time.monotonic() + seconds
    total, idle_since, more = 0, None, False
    try:
        while True:
            done = score_pending()
            total += done
            now = time.monotonic()
            if done:
                idle_since = None
            elif idle_since is None:
                idle_since = now
            if idle_since is not None and now - idle_since >= IDLE_EXIT_S:
                break  # nothing came for a while: orders placed since will kick a new burst
            if now >= deadline:
                more = done > 0
                break
            if not done:
                time.sleep(0.25)
    finally:
        close_old_connections()
        if token:
            try:
                if client.get(LEASE_KEY) == token:
                    client.delete(LEASE_KEY)
            except Exception:  # noqa: BLE001 - the lease expires by itself
                pass
    if more:
        kick(force=True)
    return total
