"""After-sales asked on a sales platform (Douyin, Kuaishou, Taobao), mirrored here.

The buyer of a platform order asks the platform, the merchant decides there, and the platform pays
the buyer back: none of it goes through our payment provider. What we keep is the picture and the
consequences: each platform request is a ``RefundRequest`` (source ``platform``, keyed by
``"<platform>:<its id>"``), moved by the platform's messages (``hooks.registry.platform_aftersale``,
told by the platform inbox), and

- when the platform says the money went back (``succeeded``), the order records it through the
  state machine and the ledger like any refund: the whole order -> ``refund_pending`` -> ``refunded``
  (before shipping its units go back on sale; after shipping that is the after-sales step, not a
  conflict), a part -> ``refund_due`` and ``refunded`` grow together (nothing is left owed, so no
  sweep acts on it);
- returned goods are restocked when they arrive: the merchant's *Goods received* here (restock only:
  the money is the platform's), or, when the platform paid a return before anyone marked the goods
  received, at that moment (the platform refunds a return once the seller confirmed the goods, or
  the seller let the confirmation time out);
- approve, reject and withdraw are refused here (``refund_on_platform``): the decision is the
  platform's and comes back as its next message.

Messages repeat and arrive out of order: a step older than the newest one applied (by the platform's
time, then by the step's rank) changes nothing, and a request the platform paid is final.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.core.errors import Conflict
from apps.orders.models import Order, OrderLine, OrderStatus
from apps.orders.services.transitions import (
    order_lock,
    order_record_event,
    order_record_refund_due,
    order_record_refunded,
    order_transition,
)

from .models import RefundLine, RefundRequest
from .refunds import REFUNDABLE, SHIPPED, refundable_amount, restock, returnable_units

R = RefundRequest.Status
K = RefundRequest.Kind
S = OrderStatus

RANK = {
    "requested": 0,
    "modified": 0,
    "agreed": 1,
    "return_agreed": 1,
    "goods_returned": 2,
    "refused": 3,
    "closed": 3,
    "succeeded": 4,
}
"""Steps in the order a request takes them: at the same platform time, a lower rank comes earlier."""

STEP_TEXT = {
    "requested": "requested",
    "modified": "changed by the buyer",
    "agreed": "agreed",
    "return_agreed": "return agreed",
    "goods_returned": "goods sent back by the buyer",
    "refused": "refused",
    "succeeded": "paid back by the platform",
    "closed": "closed",
}


def platform_aftersale_apply(
    *,
    order_id: int,
    platform: str,
    refund_id: str,
    phase: str,
    kind: str | None,
    amount: Decimal | None,
    occurred_at: datetime | None,
    platform_status: str,
    sku_id: int | None = None,
    units: int | None = None,
    reason: str = "",
) -> RefundRequest | None:
    """``hooks.registry.platform_aftersale``: apply one step of a platform's request to our order
    (see the module docstring). Returns the request (None for an order that is not a platform's)."""
    if phase not in RANK:
        raise ValueError(f"unknown after-sales step {phase!r}")
    key = f"{platform}:{refund_id}"[:80]
    with transaction.atomic():
        order = order_lock(pk=order_id)
        if order.channel != platform:
            return None
        req = RefundRequest.objects.select_for_update().filter(merchant_id=order.merchant_id, platform_refund_id=key)
        found = req.first()
        if found is not None and found.order_id != order.pk:
            raise ValueError(f"{key} belongs to another order (id {found.order_id}), not to order id {order.pk}")
        if found is None:
            found = _create(order, key=key, phase=phase, kind=kind, amount=amount, sku_id=sku_id, units=units,
                            reason=reason, platform=platform)  # fmt: skip
        elif not _newer(found, phase, occurred_at, platform_status):
            return found
        _step(found, order, platform=platform, phase=phase, kind=kind, amount=amount, occurred_at=occurred_at,
              platform_status=platform_status)  # fmt: skip
    return found


def _newer(req: RefundRequest, phase: str, at: datetime | None, platform_status: str) -> bool:
    """Whether a step changes the request: never once the platform paid; a step older than the
    newest applied, or the same step again (time, step and word), changes nothing; a step without
    a time applies only over untimed steps, and only moving forward."""
    if req.status == R.REFUNDED:
        return False
    current = RANK.get(req.platform_phase, -1)
    if at is None:
        return req.platform_event_at is None and RANK[phase] > current
    if req.platform_event_at is None or at > req.platform_event_at:
        return True
    if at < req.platform_event_at or (phase == req.platform_phase and platform_status[:40] == req.platform_status):
        return False
    return RANK[phase] >= current


def _create(
    order: Order,
    *,
    key: str,
    phase: str,
    kind: str | None,
    amount: Decimal | None,
    sku_id: int | None,
    units: int | None,
    reason: str,
    platform: str,
) -> RefundRequest:
    kind = kind or (K.RETURN if phase in ("return_agreed", "goods_returned") else K.REFUND)
    line = OrderLine.objects.filter(order=order, sku_id=sku_id).first() if sku_id is not None else None
    if not amount or amount <= 0:  # not said (or 0): the sub-order's worth, else what is left
        amount = line.unit_price * (units or line.quantity) if line is not None else refundable_amount(order)
    req = RefundRequest.objects.create(
        merchant_id=order.merchant_id,
        order=order,
        kind=kind,
        source=RefundRequest.Source.PLATFORM,
        amount=_bounded(amount, order),
        reason=reason[:300],
        requested_by=platform,
        platform_refund_id=key,
    )
    if kind == K.RETURN:
        _return_lines(req, order, line=line, units=units)
    order_record_event(
        order=order,
        actor=platform,
        reason=f"{req.public_id}: {platform} after-sales {key.split(':', 1)[1]}, {req.get_kind_display()} {req.amount}",
    )
    return req


def _bounded(amount: Decimal, order: Order) -> Decimal:
    """The platform's amount, kept within what the schema holds (more than 0, at most the total)."""
    return max(min(amount, order.total), Decimal("0.01"))


def _return_lines(req: RefundRequest, order: Order, *, line: OrderLine | None, units: int | None) -> None:
    """The units coming back: the sub-order the platform named, else every unit not in another
    return (only once the order shipped: before that nothing can come back)."""
    if order.status not in SHIPPED or RefundLine.objects.filter(refund=req).exists():
        return
    left = returnable_units(order)
    if line is not None:
        picked = [(line, min(units or line.quantity, left.get(line.pk, 0)))]
    else:
        picked = [(ol, left.get(ol.pk, 0)) for ol in OrderLine.objects.filter(order=order).order_by("pk")]
    RefundLine.objects.bulk_create([RefundLine(refund=req, order_line=ol, quantity=n) for ol, n in picked if n > 0])


def _step(
    req: RefundRequest,
    order: Order,
    *,
    platform: str,
    phase: str,
    kind: str | None,
    amount: Decimal | None,
    occurred_at: datetime | None,
    platform_status: str,
) -> None:
    was = req.status
    req.platform_phase, req.platform_status = phase, platform_status[:40]
    req.platform_event_at = max(filter(None, (req.platform_event_at, occurred_at)), default=None)
    if amount is not None and amount > 0:  # 0 or missing: not said (a "closed" step carries none)
        req.amount = _bounded(amount, order)
    if (kind == K.RETURN or phase in ("return_agreed", "goods_returned")) and req.kind != K.RETURN:
        req.kind = K.RETURN
        _return_lines(req, order, line=None, units=None)
    elif kind == K.REFUND and req.kind == K.RETURN and phase in ("requested", "modified") and not req.received_at:
        req.kind = K.REFUND  # the buyer changed a return into money alone before any goods moved
        RefundLine.objects.filter(refund=req).delete()
    elif req.kind == K.RETURN:
        _return_lines(req, order, line=None, units=None)  # asked before it shipped: the units now
    if phase in ("requested", "modified"):
        req.status = R.REQUESTED
    elif phase == "agreed":
        req.status = R.AWAITING_RETURN if req.kind == K.RETURN else R.REFUNDING
    elif phase in ("return_agreed", "goods_returned"):
        req.status = R.AWAITING_RETURN
    elif phase == "refused":
        req.status = R.REJECTED
    elif phase == "closed":
        req.status = R.WITHDRAWN
    if phase in ("agreed", "return_agreed", "refused") and was != req.status:
        req.decided_by, req.decided_at = platform, timezone.now()
    # "paid back 0" (a voucher alone, say): the request ends, no money is recorded
    recorded = phase == "succeeded" and amount != 0 and _paid(req, order, platform=platform)
    if phase == "succeeded" and amount == 0:
        req.status, req.refunded_at = R.REFUNDED, timezone.now()
    req.next_attempt_at = None  # never sent to our payment provider
    req.save()
    if not recorded and (req.status != was or phase in ("modified", "goods_returned")):
        text = STEP_TEXT[phase]
        order_record_event(order=order, actor=platform, reason=f"{req.public_id}: {platform} says {text}")


def _paid(req: RefundRequest, order: Order, *, platform: str) -> bool:
    """The platform paid ``req.amount`` back: the goods of a return not yet marked received are
    restocked, and the order records the money, at most what of its total no other platform payment
    recorded: the whole of it through the state machine (``refund_pending -> refunded``; a held
    order is cancelled), a part by growing ``refund_due`` and ``refunded`` together. When the
    platform's order status ended the order first (its rest of the total is owed already), the
    money is recorded up to what is owed. Returns whether the order recorded it (in its ledger)."""
    now = timezone.now()
    if req.kind == K.RETURN and req.received_at is None:
        _return_lines(req, order, line=None, units=None)
        restock(req, order, why="the platform refunded the return")
        req.received_at = now
    req.status, req.refunded_at = R.REFUNDED, now
    locked = order_lock(pk=order.pk)
    recorded = (
        RefundRequest.objects.filter(order=order, source=RefundRequest.Source.PLATFORM, in_refund_due=True)
        .exclude(pk=req.pk)
        .aggregate(s=Sum("amount"))["s"]
    ) or Decimal("0")
    amount = min(req.amount, locked.total - recorded)
    reason = f"{req.public_id}: {platform} refunded {req.amount}"
    if amount <= 0:
        return False
    if locked.status in REFUNDABLE:
        if recorded + amount >= locked.total:
            to = S.CANCELLED if locked.status == S.ON_HOLD else S.REFUND_PENDING
            locked = order_transition(order=locked, to=to, actor=platform, reason=reason, refund_amount=amount)
        else:
            locked = order_record_refund_due(order=locked, amount=amount, actor=platform, reason=reason)
    elif locked.paid_at is not None and locked.status in (S.CANCELLED, S.REFUND_PENDING, S.REFUNDED):
        amount = min(amount, locked.refund_due - locked.refunded)
        if amount <= 0:
            return False
    else:  # never paid here (the platform's payment was not seen): nothing is owed through us
        return False
    order_record_refunded(order=locked, amount=amount, actor=platform, reason=reason)
    req.in_refund_due = True
    return True


def platform_receive(req: RefundRequest, order: Order, *, actor: str) -> None:
    """*Goods received* for a platform's return (the caller holds the order and request locks):
    restock only; the money is the platform's to pay, and its message tells us."""
    _return_lines(req, order, line=None, units=None)  # asked before it shipped: the units now
    if req.kind != K.RETURN or req.status != R.AWAITING_RETURN or req.received_at is not None:
        raise Conflict(
            _("Refund %(refund)s is not waiting for returned goods.") % {"refund": req.public_id},
            code="refund_state",
            extra={"status": req.status},
        )
    restock(req, order, why="goods received")
    req.received_at = timezone.now()
    req.save(update_fields=["received_at"])
    order_record_event(order=order, actor=actor, reason=f"{req.public_id}: goods received, back on the shelf")


def decided_on_platform(req: RefundRequest) -> Conflict:
    """The answer to approve, reject, withdraw or send again on a platform's request."""
    platform = req.platform_refund_id.split(":", 1)[0] or req.order.channel
    return Conflict(
        _("Refund %(refund)s was asked on %(platform)s: decide it there; its answer comes back here.")
        % {"refund": req.public_id, "platform": platform},
        code="refund_on_platform",
    )


def platform_summary(req: RefundRequest) -> dict[str, Any] | None:
    """The platform side of a request for reads (None for our own requests)."""
    if req.source != RefundRequest.Source.PLATFORM:
        return None
    platform, _sep, refund_id = req.platform_refund_id.partition(":")
    return {
        "name": platform,
        "refund_id": refund_id,
        "status": req.platform_status,
        "step": req.platform_phase,
        "at": req.platform_event_at,
    }
