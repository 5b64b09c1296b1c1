"""Holding a flagged order: ``paid -> on_hold`` through the state machine. Kept apart from the
scorer (which loads the model) so the payment's hook in a web worker stays light."""

from __future__ import annotations

from django.db import transaction

from apps.orders.models import Order, OrderStatus
from apps.orders.services.transitions import order_transition

from .models import Decision, ReviewOutcome, RiskAssessment


def hold_if_flagged(order_pk: int) -> bool:
    """Hold a paid order whose assessment says ``review`` and has not been reviewed. True if held."""
    if not RiskAssessment.objects.filter(
        order_id=order_pk, decision=Decision.REVIEW, review_outcome=ReviewOutcome.NONE
    ).exists():
        return False
    if not Order.objects.filter(pk=order_pk, status=OrderStatus.PAID).exists():
        return False
    try:
        with transaction.atomic():
            # Under the assessment's lock (review_decide's order: assessment, then order): an
            # approval that committed meanwhile is seen, and the order is not held after it.
            still_flagged = (
                RiskAssessment.objects.select_for_update()
                .filter(order_id=order_pk, decision=Decision.REVIEW, review_outcome=ReviewOutcome.NONE)
                .exists()
            )
            if not still_flagged:
                return False
            order_transition(
                order=Order(pk=order_pk),
                to=OrderStatus.ON_HOLD,
                actor="risk",
                reason="held for risk review",
                allowed_from=(OrderStatus.PAID,),
            )
    except Exception as exc:  # noqa: BLE001 - confirmed meanwhile: too late to hold, and that is fine
        if getattr(exc, "code", "") != "invalid_transition":
            raise
        return False
    return True
