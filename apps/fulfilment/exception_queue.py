"""The exception queue's kinds that other apps cause (异常订单): what opens and resolves them, the
queue's actions that hand them back to those apps, and the queue's counts for the dashboards.

The batch opens ``bad_address``, ``stock_short`` and ``carrier_rejected``, the automation
``no_movement`` (``shipping``, ``automation``). The kinds here follow the order's changes
(``orders.hooks.order_changed``, after commit) and the platform intake's reports
(``orders.hooks.order_attention``); both receivers are connected in ``FulfilmentConfig.ready``:

- ``risk_hold``: the order went ``on_hold`` (risk control holds it for review). Resolved when it
  leaves the hold (approved: ``confirmed``; rejected: ``cancelled``), by whoever moved it. The
  queue's *approve* / *reject* call risk control's review (``hooks.registry.risk_review``).
- ``refund_owed``: a payment the order does not keep: paid after cancellation (``cancelled ->
  refund_pending``), or a second payment or one of another amount (an event that adds to
  ``refund_due`` and keeps the status). Resolved when the order reaches ``refunded``, or by
  :func:`refund_owed_resolve` once the money went back with the order kept.
- ``platform_conflict``: a sales platform cancelled or refunded an order that cannot follow here.
  Resolved when the order is cancelled or refunded here (the queue's *cancel here* does that
  through ``order_cancel``), or by hand.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext

from apps.core.errors import ApplicationError
from apps.orders import hooks
from apps.orders.models import PLATFORM_CHANNELS, Order, OrderEvent, OrderStatus, Payment
from apps.orders.services.transitions import order_cancel

from .models import ExceptionKind, FulfilmentException
from .selectors import exception_open_counts
from .shipping import exception_open, exception_resolve

log = logging.getLogger(__name__)
K = ExceptionKind
S = OrderStatus
OWED_OUTCOMES = (Payment.Outcome.LATE, Payment.Outcome.DUPLICATE_ORDER, Payment.Outcome.AMOUNT_MISMATCH)
ENDED_HERE = (S.CANCELLED, S.REFUND_PENDING, S.REFUNDED)


# --- opened and resolved by the order's changes ----------------------------------------------------


def on_order_changed(
    sender: Any = None, *, order: Any, from_status: str | None = None, created: bool = False, **_: Any
) -> None:
    """Receiver of ``order_changed``. A placement returns at once, and so does every change that
    touches none of these kinds (paid, confirmed, shipped, an unpaid order expiring): no query.
    Never raises: the change is committed; what failed here is logged."""
    if created:
        return
    status = order.status
    try:
        if status == S.ON_HOLD and from_status != S.ON_HOLD:
            _risk_hold_open(order)
        elif from_status == S.ON_HOLD and status != S.ON_HOLD:
            _resolve_by_change(order, K.RISK_HOLD)
        if (status == S.REFUND_PENDING and from_status == S.CANCELLED) or (
            status == from_status and status != S.REFUNDED and (order.refund_due or 0) > 0
        ):
            _refund_owed_open(order)
        if status == S.REFUNDED and from_status != S.REFUNDED:
            _resolve_by_change(order, K.REFUND_OWED)
        if status in ENDED_HERE and from_status != status and order.channel in PLATFORM_CHANNELS:
            _resolve_by_change(order, K.PLATFORM_CONFLICT)
    except Exception:  # noqa: BLE001 - the order's change stands; the queue is told next time
        log.warning("exception queue not updated", extra={"order": getattr(order, "public_id", None)}, exc_info=True)


def on_order_attention(sender: Any = None, *, order: Any, kind: str, detail: str = "", **_: Any) -> None:
    """Receiver of ``order_attention`` (inside the sender's transaction: opened in a savepoint,
    committed or rolled back with its cause)."""
    if kind != hooks.ATTENTION_PLATFORM_CONFLICT:
        log.warning("unknown order attention kind", extra={"kind": kind})
        return
    exception_open(order=order, kind=K.PLATFORM_CONFLICT, detail=detail)


def _risk_hold_open(order: Order) -> None:
    risk = hooks.order_risk(order)
    if risk is None:
        detail = gettext("held for risk review")
    else:
        score = risk.get("score")
        detail = gettext("risk score %(score)s: %(reasons)s") % {
            "score": f"{score:.1f}" if isinstance(score, int | float) else "-",
            "reasons": "; ".join(str(r) for r in risk.get("reasons") or []) or "-",
        }
    exception_open(order=order, kind=K.RISK_HOLD, detail=detail)


def _refund_owed_open(order: Order) -> None:
    """Open for the newest payment the order does not keep, unless the queue has seen it already
    (a later change that keeps the status, with the refund sent meanwhile, opens nothing)."""
    last = (
        FulfilmentException.objects.filter(order_id=order.pk, kind=K.REFUND_OWED)
        .order_by("-opened_at")
        .values_list("opened_at", flat=True)
        .first()
    )
    owed = Payment.objects.filter(order_id=order.pk, outcome__in=OWED_OUTCOMES, amount__gt=0)
    if last is not None:
        owed = owed.filter(received_at__gt=last)
    payment = owed.order_by("-pk").first()
    if payment is None:
        return
    detail = gettext("%(outcome)s: %(amount)s (transaction %(txn)s); owed back in all: %(due)s") % {
        "outcome": payment.get_outcome_display(),
        "amount": payment.amount,
        "txn": payment.transaction_id,
        "due": order.refund_due,
    }
    exception_open(order=order, kind=K.REFUND_OWED, detail=detail)


def _resolve_by_change(order: Order, kind: str) -> int:
    """Resolve the order's open exception of ``kind``, by the actor of its latest ledger event."""
    open_ones = FulfilmentException.objects.filter(order_id=order.pk, kind=kind, resolved_at__isnull=True)
    if not open_ones.exists():
        return 0
    actor = OrderEvent.objects.filter(order_id=order.pk).order_by("-seq").values_list("actor", flat=True).first() or ""
    resolution = gettext("the order is now %(status)s") % {"status": S(order.status).label}
    return exception_resolve(exceptions=open_ones, actor=actor or "system", resolution=resolution)


def refund_owed_resolve(*, order: Order, actor: str, resolution: str = "") -> int:
    """Resolve the order's open ``refund_owed`` exception: for the refund engine, once what the
    order owed back was paid back and the order keeps its status (a second payment of an order
    that ships). An order that reaches ``refunded`` is resolved without it. Returns how many were
    resolved (0 or 1)."""
    return exception_resolve(
        exceptions=FulfilmentException.objects.filter(order_id=order.pk, kind=K.REFUND_OWED),
        actor=actor,
        resolution=resolution or gettext("refunded"),
    )


# --- the queue's actions ----------------------------------------------------------------------------


@dataclass
class ActionReport:
    """What a queue action did: ``done`` orders (their public ids), ``refused`` ones with their
    status, the review's ``outcomes`` counted, and ``skipped`` selected rows of another kind or
    resolved already."""

    done: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    skipped: int = 0


def risk_holds_review(*, exceptions: QuerySet[FulfilmentException], approve: bool, user: Any) -> ActionReport:
    """Approve or reject the held orders of the open ``risk_hold`` exceptions among ``exceptions``
    through risk control's review (``hooks.registry.risk_review``: the fraud admin's own service),
    merchant by merchant, each order on its own. The exceptions resolve themselves as the orders
    leave the hold (``on_order_changed``). Raises RuntimeError when no risk control is installed
    (the admin then offers no such action)."""
    review = hooks.registry.risk_review
    if review is None:
        raise RuntimeError("risk control is not installed (hooks.registry.risk_review)")
    rows = list(exceptions.values_list("merchant_id", "order_id", "kind", "resolved_at"))
    by_merchant: dict[int, list[int]] = defaultdict(list)
    for merchant_id, order_id, kind, resolved_at in rows:
        if kind == K.RISK_HOLD and resolved_at is None:
            by_merchant[merchant_id].append(order_id)
    report = ActionReport(skipped=len(rows) - sum(len(ids) for ids in by_merchant.values()))
    outcomes: dict[str, int] = defaultdict(int)
    for merchant_id, order_ids in sorted(by_merchant.items()):
        for result in review(order_ids=order_ids, merchant_id=merchant_id, approve=approve, user=user):
            outcomes[result.outcome] += 1
            if result.outcome in ("approved", "rejected"):
                report.done.append(result.public_id)
            else:
                report.refused.append((result.public_id, result.status))
    report.outcomes = dict(outcomes)
    return report


def platform_conflicts_cancel(*, exceptions: QuerySet[FulfilmentException], actor: str) -> ActionReport:
    """Cancel here the orders of the open ``platform_conflict`` exceptions among ``exceptions``
    (``order_cancel``: a paid or confirmed order becomes ``refund_pending``, a held one
    ``cancelled``), each on its own, and resolve each exception whose order was cancelled. An
    order that cannot be cancelled here any more (it shipped) is reported and stays in the queue."""
    rows = list(exceptions.select_related("order").order_by("pk"))
    report = ActionReport()
    for exc in rows:
        if exc.kind != K.PLATFORM_CONFLICT or exc.resolved_at is not None:
            report.skipped += 1
            continue
        try:
            order = order_cancel(
                order=exc.order, actor=actor, reason="exception queue: cancelled here after the platform cancelled"
            )
        except ApplicationError:
            current = Order.objects.filter(pk=exc.order_id).values_list("status", flat=True).first() or ""
            report.refused.append((exc.order.public_id, current))
            continue
        exception_resolve(
            exceptions=FulfilmentException.objects.filter(pk=exc.pk),
            actor=actor,
            resolution=gettext("cancelled here: the order is now %(status)s") % {"status": S(order.status).label},
        )
        report.done.append(order.public_id)
    return report


# --- counts for the dashboards ---------------------------------------------------------------------


def exception_counts(*, merchant_ids: list[int] | None, merchant_id: int | None = None) -> list[dict[str, Any]]:
    """``hooks.registry.exception_counts``: every kind with its open count (one query) and the link
    to the queue filtered by it (open ones are the queue's default; ``merchant`` narrows a
    multi-merchant login's queue to one)."""
    ids = merchant_ids
    if merchant_id is not None:
        ids = [merchant_id] if merchant_ids is None or merchant_id in merchant_ids else []
    counts = exception_open_counts(merchant_ids=ids)
    base = reverse("admin:fulfilment_fulfilmentexception_changelist")
    extra = {"merchant": str(merchant_id)} if merchant_id is not None else {}
    return [
        {
            "kind": kind.value,
            "label": kind.label,
            "count": counts.get(kind.value, 0),
            "url": f"{base}?{urlencode({'kind__exact': kind.value, **extra})}",
        }
        for kind in ExceptionKind
    ]
