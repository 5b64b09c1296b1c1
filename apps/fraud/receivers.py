"""How risk control hears of the rest of the system (connected in ``FraudConfig.ready``)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import Q

from apps.orders.models import OrderStatus

from . import rules
from .holds import hold_if_flagged
from .kick import kick
from .models import Decision, ReviewOutcome, RiskAssessment, RiskPolicy, RiskRule
from .reasons import render_reason

log = logging.getLogger(__name__)


def risk_payload(assessment: RiskAssessment) -> dict[str, Any]:
    """``risk`` as reads show it: reasons in words, in the active language."""
    return {
        "score": assessment.score,
        "decision": assessment.decision,
        "reasons": [render_reason(r.get("code", ""), r.get("params") or {}) for r in assessment.reasons],
    }


def risk_of(order: Any) -> dict[str, Any] | None:
    """``risk`` on every order read: null until the order is assessed."""
    try:
        assessment = order.risk_assessment
    except RiskAssessment.DoesNotExist:
        return None
    return risk_payload(assessment) if assessment is not None else None


def confirm_filter(orders: Any) -> Any:
    """``hooks.confirm_filter``: the paid orders risk control lets be confirmed without a person:
    assessed, and allowed or approved by a reviewer. An order not assessed yet waits (its scoring
    may still flag it); one flagged for review waits for its review."""
    return orders.filter(
        Q(risk_assessment__decision=Decision.ALLOW) | Q(risk_assessment__review_outcome=ReviewOutcome.APPROVED)
    )


def on_order_changed(sender: Any = None, *, order: Any, from_status: str | None = None, **kwargs: Any) -> None:
    """A new order: ask for a scoring burst (``kick.kick``, throttled). A payment of an order
    the scorer flagged: hold it (``paid -> on_hold``). Cheap for every other change."""
    if kwargs.get("created"):
        kick()
        return
    if order.status != OrderStatus.PAID or from_status != OrderStatus.PENDING_PAYMENT:
        return
    hold_if_flagged(order.pk)


def on_merchant_saved(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    """A new merchant starts with every rule at its default (listed, editable, in the admin)."""
    if created and not raw:
        rules.ensure_rules(instance.pk)


def on_rules_saved(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """A changed rule or policy takes effect in this process once committed (others within
    LOCAL_TTL): dropped after the commit, so no process caches the old rules again in between."""
    if sender in (RiskRule, RiskPolicy):
        merchant_id = instance.merchant_id
        transaction.on_commit(lambda: rules.forget(merchant_id))


def session_risk_counts(*, session_id: int) -> dict[str, int]:
    """``hooks.registry.session_risk_counts``: a show's verdicts for its report, in one query."""
    counts = {"allowed": 0, "held": 0, "approved": 0, "rejected": 0, "blocked": 0}
    rows = (
        RiskAssessment.objects.filter(session_id=session_id)
        .values_list("decision", "review_outcome", "order_id")
        .iterator(chunk_size=5000)
    )
    for decision, outcome, order_id in rows:
        if decision == Decision.BLOCK and order_id is None:
            counts["blocked"] += 1
        elif decision == Decision.REVIEW:
            counts["held"] += 1
            if outcome in (ReviewOutcome.APPROVED, ReviewOutcome.REJECTED):
                counts[outcome] += 1
        elif decision == Decision.ALLOW:
            counts["allowed"] += 1
    return counts
