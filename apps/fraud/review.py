"""The merchant's review of flagged orders: approve or reject, one by one or in bulk.

Every decision goes through the order state machine and so is a ledger event:

- approve a held order: ``on_hold -> confirmed``; approve one not paid yet: an event that keeps
  its status (``pending_payment -> pending_payment``, "risk review: approved"), and its payment
  later no longer holds it;
- reject a held order: ``on_hold -> cancelled`` (its total becomes a refund owed); reject one not
  paid yet: ``pending_payment -> cancelled`` (its units go back on sale).

The outcome is stored on the assessment (who, when) and becomes a training label for
``train_fraud_model`` (approved = genuine, rejected = abuse). A decision is idempotent: an
assessment reviewed already is left as it is and reported as such.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from apps.orders.errors import InvalidTransition
from apps.orders.models import Order, OrderStatus
from apps.orders.services.transitions import order_cancel, order_record_event, order_transition

from .models import Decision, ReviewOutcome, RiskAssessment

S = OrderStatus


@dataclass(frozen=True)
class ReviewResult:
    public_id: str
    outcome: str  # "approved", "rejected", "already_reviewed" or "not_reviewable"
    status: str  # the order's status after it


def reviewable(merchant_id: int):  # noqa: ANN201 - a QuerySet of RiskAssessment
    """The review queue: flagged orders of the merchant not reviewed yet, that still wait for a
    decision (held, or not paid yet)."""
    return RiskAssessment.objects.filter(
        merchant_id=merchant_id,
        decision=Decision.REVIEW,
        review_outcome=ReviewOutcome.NONE,
        order__isnull=False,
        order__status__in=(S.ON_HOLD, S.PENDING_PAYMENT, S.PAID),
    )


def review_decide(*, assessment_id: int, merchant_id: int, approve: bool, user=None) -> ReviewResult:  # noqa: ANN001
    """Approve or reject one flagged order of ``merchant_id`` (another merchant's is not found)."""
    with transaction.atomic():
        assessment = (
            RiskAssessment.objects.select_for_update()
            .select_related("order")
            .get(pk=assessment_id, merchant_id=merchant_id, order__isnull=False)
        )
        order: Order = assessment.order  # type: ignore[assignment]
        if assessment.review_outcome:
            return ReviewResult(order.public_id, "already_reviewed", order.status)
        actor = f"staff:{user.pk}" if user is not None and user.pk else "merchant"
        try:
            order = _apply(order, approve=approve, actor=actor)
        except InvalidTransition:
            return ReviewResult(order.public_id, "not_reviewable", Order.objects.get(pk=order.pk).status)
        assessment.review_outcome = ReviewOutcome.APPROVED if approve else ReviewOutcome.REJECTED
        assessment.reviewed_by = user if user is not None and user.pk else None
        assessment.reviewed_at = timezone.now()
        assessment.save(update_fields=["review_outcome", "reviewed_by", "reviewed_at", "updated_at"])
    return ReviewResult(order.public_id, assessment.review_outcome, order.status)


def _apply(order: Order, *, approve: bool, actor: str) -> Order:
    current = Order.objects.only("status").get(pk=order.pk).status
    if approve:
        if current == S.ON_HOLD:
            return order_transition(order=order, to=S.CONFIRMED, actor=actor, reason="risk review: approved")
        if current in (S.PENDING_PAYMENT, S.PAID):
            return order_record_event(order=order, actor=actor, reason="risk review: approved")
    else:
        if current == S.ON_HOLD:
            return order_transition(order=order, to=S.CANCELLED, actor=actor, reason="risk review: rejected")
        if current in (S.PENDING_PAYMENT, S.PAID):
            return order_cancel(order=order, actor=actor, reason="risk review: rejected")
    raise InvalidTransition(f"an order in {current} cannot be reviewed", extra={"from": current})


def review_bulk(*, assessment_ids: list[int], merchant_id: int, approve: bool, user=None) -> list[ReviewResult]:  # noqa: ANN001
    """Each order decided on its own (one failing leaves the others decided)."""
    return [
        review_decide(assessment_id=pk, merchant_id=merchant_id, approve=approve, user=user) for pk in assessment_ids
    ]


def review_orders(*, order_ids: list[int], merchant_id: int, approve: bool, user=None) -> list[ReviewResult]:  # noqa: ANN001
    """``hooks.registry.risk_review``: the review decision for orders of ``merchant_id`` named by
    their primary keys (the exception queue's approve / reject): each order's assessment decided
    by :func:`review_decide`, on its own. An order with no assessment (or another merchant's) is
    ``not_reviewable``."""
    assessments = dict(
        RiskAssessment.objects.filter(merchant_id=merchant_id, order_id__in=order_ids).values_list("order_id", "pk")
    )
    results = []
    for order_id in sorted(set(order_ids)):
        pk = assessments.get(order_id)
        if pk is not None:
            results.append(review_decide(assessment_id=pk, merchant_id=merchant_id, approve=approve, user=user))
            continue
        row = Order.objects.filter(pk=order_id, merchant_id=merchant_id).values_list("public_id", "status").first()
        if row is not None:
            results.append(ReviewResult(row[0], "not_reviewable", row[1]))
    return results
