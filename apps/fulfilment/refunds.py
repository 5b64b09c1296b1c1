"""After-sales (售后): refund requests, the decisions on them, returned goods, and the money back.

A request is money back alone (仅退款) or goods back first (退货退款), for the whole order or part of
it. Where stock goes:

- an order refunded in full before it shipped goes to ``refund_pending`` through the state machine:
  its units were never picked, so they go back on sale at once (``order_transition`` releases them);
- after shipping, the units left the warehouse: a refund alone (a lost parcel, a price adjustment)
  moves no stock, and returned goods go back on the shelf when they **arrive** (``refund_receive``,
  a ``return`` stock movement naming the refund), never on approval.

What the order owes back is committed when the money is due (approval, or receipt for a return):
the order's ``refund_due`` grows through ``order_transition`` / ``order_record_refund_due``, with a
ledger event. The money is then sent to the payment provider (``payments.client``) by refund number
(its idempotency key: a call repeated after a timeout is one refund); the provider's signed callback
(stored raw first, ``RefundNotice``) marks it paid through ``order_record_refunded``, and a full refund
takes the order on to ``refunded``. A callback replayed, a callback racing the query that found the
same answer, a request retried: each has one effect.

Money owed that no request covers (paid after cancellation, a second payment, a paid order the
merchant cancelled) gets a ``system`` request each minute (``refunds_owed_sweep``), so it is paid
back without a person. Platform orders are refunded by their platform.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import DecimalField, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.core.errors import ApplicationError, Conflict, NotFound
from apps.inventory import services as inventory
from apps.orders.errors import IdempotencyConflict
from apps.orders.models import PLATFORM_CHANNELS, Order, OrderLine, OrderStatus, Payment
from apps.orders.services.transitions import (
    order_lock,
    order_record_event,
    order_record_refund_due,
    order_record_refunded,
    order_transition,
)

from .models import ExceptionKind, FulfilmentException, RefundLine, RefundNotice, RefundRequest
from .payments.client import ProviderRefused, ProviderUnavailable, refund_client
from .payments.protocol import RefundCall

log = logging.getLogger(__name__)
S = OrderStatus
R = RefundRequest.Status
K = RefundRequest.Kind

UNSHIPPED = (S.PAID, S.ON_HOLD, S.CONFIRMED)
SHIPPED = (S.SHIPPED, S.DELIVERED, S.COMPLETED)
REFUNDABLE = UNSHIPPED + SHIPPED
RETRY_DELAYS = (30, 120, 600, 1800, 3600)  # seconds after the 1st, 2nd, ... failed call; then hourly
QUERY_AFTER = timedelta(minutes=10)  # accepted but no callback yet: ask the provider
SEND_LEASE = timedelta(seconds=60)  # a sender claims a refund for this long
NOTIFY_PATH = "/hooks/payments/refunds"
SWEEP_CURSOR = "lc:refunds:owed-sweep-cursor"
MAX_ATTEMPTS = 24  # calls the provider could not answer (about a day): then a person looks


@dataclass(frozen=True)
class LineAsk:
    """Units of one line of the order to send back: the line's SKU code and how many."""

    sku: str
    quantity: int


def _invalid(message: str, **extra: Any) -> ApplicationError:
    return ApplicationError(message, code="invalid", extra=extra)


MONEY_TEXT = re.compile(r"^[0-9]{1,10}(\.[0-9]{1,2})?$")


def _money(value: Any, field: str = "amount") -> Decimal:
    text = str(value).strip()
    if not MONEY_TEXT.match(text):
        raise _invalid(_("The amount must be a number of yuan, like 12.30."), field=field)
    amount = Decimal(text)
    if amount <= 0:
        raise _invalid(_("The amount must be more than 0 with at most 2 decimals."), field=field)
    return amount


# --- reading -----------------------------------------------------------------------------------


def refundable_amount(order: Order) -> Decimal:
    """What may still be asked back of the order's total: less every request that is open or whose
    money is owed or paid (requests for extra payments, ``system``, are on top of the total)."""
    taken = (
        RefundRequest.objects.filter(order=order, status__in=RefundRequest.OPEN + RefundRequest.OWED)
        .exclude(source=RefundRequest.Source.SYSTEM)
        .aggregate(s=Sum("amount"))["s"]
    ) or Decimal("0")
    return max(order.total - taken, Decimal("0"))


def _owed_by_requests(order: Order, *, exclude: int | None = None) -> Decimal:
    """What the order owes back through its own requests (not the system's), already committed:
    ours once owed, a platform's once the order recorded the platform's payment of it."""
    P = RefundRequest.Source.PLATFORM
    qs = RefundRequest.objects.filter(
        Q(status__in=RefundRequest.OWED) & ~Q(source=P) | Q(source=P, in_refund_due=True), order=order
    ).exclude(source=RefundRequest.Source.SYSTEM)
    if exclude is not None:
        qs = qs.exclude(pk=exclude)
    return qs.aggregate(s=Sum("amount"))["s"] or Decimal("0")


def refunds_owed_of(order: Order) -> Decimal:
    """``hooks.registry.refunds_owed_of``: what the order's requests already owe back (a
    cancellation owes the rest of the total, not the whole of it again)."""
    return _owed_by_requests(order)


def returnable_units(order: Order) -> dict[int, int]:
    """Per order line id, the units not yet in a return (open, owed or paid, or received: goods
    back on the shelf stay counted whatever became of their request)."""
    asked = dict(
        RefundLine.objects.filter(refund__order=order)
        .filter(Q(refund__status__in=RefundRequest.OPEN + RefundRequest.OWED) | Q(refund__received_at__isnull=False))
        .values("order_line_id")
        .annotate(n=Sum("quantity"))
        .values_list("order_line_id", "n")
    )
    return {
        line_id: qty - asked.get(line_id, 0)
        for line_id, qty in OrderLine.objects.filter(order=order).values_list("id", "quantity")
    }


def refund_open_for(order: Order) -> RefundRequest | None:
    return RefundRequest.objects.filter(order=order, status__in=RefundRequest.OPEN).first()


def refunds_of(*, merchant_id: int) -> QuerySet[RefundRequest]:
    return (
        RefundRequest.objects.filter(merchant_id=merchant_id)
        .select_related("order")
        .prefetch_related("lines__order_line__sku")
    )


def refund_get(*, merchant_id: int, public_id: str) -> RefundRequest:
    refund = refunds_of(merchant_id=merchant_id).filter(public_id=public_id).first()
    if refund is None:
        raise NotFound(_("No refund with this number."))
    return refund


# --- asking --------------------------------------------------------------------------------------


def refund_request(
    *,
    order: Order,
    kind: str,
    source: str,
    actor: str,
    amount: Any = None,
    lines: Iterable[LineAsk] | None = None,
    reason: str = "",
    idempotency_key: str | None = None,
) -> tuple[RefundRequest, bool]:
    """Ask for money back on ``order``. Returns (the request, whether it is new): the same
    ``idempotency_key`` again answers the request it made. A refund of an order that has not
    shipped is approved at once when the merchant's settings say so."""
    if kind not in K.values:
        raise _invalid(_("The kind must be 'refund' or 'return'."), field="kind")
    asks = list(lines or [])
    if kind == K.REFUND and asks:
        raise _invalid(_("Lines are for returns: a refund alone gives an amount."), field="lines")
    with transaction.atomic():
        locked = order_lock(pk=order.pk)
        if idempotency_key:
            existing = RefundRequest.objects.filter(merchant_id=locked.merchant_id, idempotency_key=idempotency_key)
            found = existing.first()
            if found is not None:
                if found.order_id != locked.pk or found.kind != kind:
                    raise IdempotencyConflict("this Idempotency-Key was used for another refund request")
                return found, False
        refund = _create(
            locked, kind=kind, source=source, actor=actor, amount=amount, asks=asks, reason=reason, key=idempotency_key
        )
        auto = (  # a part of the money waits for a person: the goods still ship
            kind == K.REFUND
            and locked.status in UNSHIPPED
            and refund.amount >= locked.total - _owed_by_requests(locked, exclude=refund.pk)
            and _settings(locked.merchant_id).auto_approve_unshipped_refunds
        )
        if auto:
            _approve(refund, locked, actor="system:auto-approve", note=_("approved automatically: not shipped"))
    if refund.status == R.REFUNDING:
        transaction.on_commit(lambda: refund_enqueue(refund.pk))
    return refund, True


def _settings(merchant_id: int) -> Any:
    from .shipping import fulfilment_settings

    return fulfilment_settings(merchant_id)


def _create(
    order: Order, *, kind: str, source: str, actor: str, amount: Any, asks: list[LineAsk], reason: str, key: str | None
) -> RefundRequest:
    if order.status not in REFUNDABLE:
        raise Conflict(
            _("This order cannot be refunded now (it is %(status)s).") % {"status": order.get_status_display()},
            code="refund_not_allowed",
            extra={"status": order.status},
        )
    if order.channel in PLATFORM_CHANNELS and source != RefundRequest.Source.PLATFORM:
        raise Conflict(
            _("This order was sold on %(platform)s: the buyer asks for a refund there.") % {"platform": order.channel},
            code="refund_on_platform",
        )
    if kind == K.RETURN and order.status not in SHIPPED:
        raise Conflict(
            _("Nothing has shipped yet: ask for a refund, not a return."),
            code="refund_not_allowed",
            extra={"status": order.status},
        )
    open_one = refund_open_for(order)
    if open_one is not None:
        raise Conflict(
            _("This order has a refund request in progress (%(refund)s).") % {"refund": open_one.public_id},
            code="refund_open",
            extra={"refund": open_one.public_id},
        )
    left = refundable_amount(order)
    if left <= 0:
        raise Conflict(_("This order's whole amount is refunded or being refunded."), code="nothing_to_refund")
    picked = _pick_lines(order, asks) if kind == K.RETURN else []
    if amount is None or amount == "":
        value = (
            left
            if not picked or _whole_order(order, picked)
            else sum((line.unit_price * qty for line, qty in picked), Decimal("0"))
        )
        value = min(value, left)
    else:
        value = _money(amount)
        if picked and not _whole_order(order, picked):
            worth = sum((line.unit_price * qty for line, qty in picked), Decimal("0"))
            if value > worth:
                raise _invalid(
                    _("A return of these units refunds at most %(worth)s.") % {"worth": worth},
                    field="amount",
                    refundable=str(worth),
                )
        if value > left:
            raise _invalid(
                _("At most %(left)s can still be refunded.") % {"left": left}, field="amount", refundable=str(left)
            )
    payment = (
        Payment.objects.filter(order=order, outcome=Payment.Outcome.APPLIED).order_by("id").first()
        if order.channel not in PLATFORM_CHANNELS
        else None
    )
    try:
        with transaction.atomic():
            refund = RefundRequest.objects.create(
                merchant_id=order.merchant_id,
                order=order,
                kind=kind,
                source=source,
                amount=value,
                reason=reason.strip()[:300],
                idempotency_key=key or None,
                transaction_id=payment.transaction_id if payment else "",
                requested_by=actor[:150],
            )
    except IntegrityError:  # a request raced this one to the order (the row lock makes it rare)
        raise Conflict(_("This order has a refund request in progress."), code="refund_open") from None
    RefundLine.objects.bulk_create([RefundLine(refund=refund, order_line=line, quantity=qty) for line, qty in picked])
    what = _("return and refund") if kind == K.RETURN else _("refund")
    order_record_event(
        order=order,
        actor=actor,
        reason=f"{refund.public_id}: {what} {value} requested" + (f" ({reason})" if reason else ""),
    )
    return refund


def _pick_lines(order: Order, asks: list[LineAsk]) -> list[tuple[OrderLine, int]]:
    """The order lines a return names, with how many units; none named: every unit not yet
    returned."""
    left = returnable_units(order)
    by_sku = {line.sku.code: line for line in OrderLine.objects.filter(order=order).select_related("sku")}
    if not asks:
        picked = [(line, left[line.pk]) for line in by_sku.values() if left.get(line.pk, 0) > 0]
        if not picked:
            raise Conflict(_("Every unit of this order is already being returned."), code="nothing_to_refund")
        return picked
    seen: set[str] = set()
    picked = []
    for i, ask in enumerate(asks):
        line = by_sku.get(ask.sku)
        if line is None or ask.sku in seen:
            raise _invalid(
                _("Line %(n)d: the order has no (other) line of SKU %(sku)s.") % {"n": i + 1, "sku": ask.sku},
                field=f"lines[{i}].sku",
            )
        seen.add(ask.sku)
        if not isinstance(ask.quantity, int) or isinstance(ask.quantity, bool) or not 0 < ask.quantity <= left[line.pk]:
            raise _invalid(
                _("Line %(n)d: between 1 and %(max)d units of %(sku)s can be returned.")
                % {"n": i + 1, "max": left[line.pk], "sku": ask.sku},
                field=f"lines[{i}].quantity",
            )
        picked.append((line, ask.quantity))
    return picked


def _whole_order(order: Order, picked: list[tuple[OrderLine, int]]) -> bool:
    units = dict(OrderLine.objects.filter(order=order).values_list("id", "quantity"))
    return sum(q for _line, q in picked) == sum(units.values())


# --- deciding ------------------------------------------------------------------------------------


def _lock(refund: RefundRequest) -> RefundRequest:
    return RefundRequest.objects.select_for_update().get(pk=refund.pk)


def _expect(refund: RefundRequest, *states: str) -> None:
    if refund.status not in states:
        raise Conflict(
            _("Refund %(refund)s is %(status)s: it cannot take this step.")
            % {"refund": refund.public_id, "status": refund.get_status_display()},
            code="refund_state",
            extra={"status": refund.status},
        )


def _not_platform(refund: RefundRequest) -> None:
    if refund.source == RefundRequest.Source.PLATFORM:
        from .platform_refunds import decided_on_platform

        raise decided_on_platform(refund)


def _expect_refundable(order: Order) -> None:
    if order.status not in REFUNDABLE:
        raise Conflict(
            _("This order cannot be refunded now (it is %(status)s).") % {"status": order.get_status_display()},
            code="refund_not_allowed",
            extra={"status": order.status},
        )


@transaction.atomic
def refund_approve(*, refund: RefundRequest, actor: str, note: str = "") -> RefundRequest:
    """Agree to a request: a return now waits for the goods; money alone is owed at once."""
    order = order_lock(pk=refund.order_id)
    req = _lock(refund)
    _not_platform(req)
    _expect(req, R.REQUESTED)
    _expect_refundable(order)
    _approve(req, order, actor=actor, note=note)
    if req.status == R.REFUNDING:
        transaction.on_commit(lambda: refund_enqueue(req.pk))
    return req


def _approve(refund: RefundRequest, order: Order, *, actor: str, note: str) -> None:
    refund.decided_by, refund.decided_at, refund.decision_note = actor[:150], timezone.now(), note[:300]
    if refund.kind == K.RETURN:
        refund.status = R.AWAITING_RETURN
        refund.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        order_record_event(order=order, actor=actor, reason=f"{refund.public_id}: return approved, awaiting the goods")
        return
    _owe(refund, order, actor=actor, step="approved")


def _owe(refund: RefundRequest, order: Order, *, actor: str, step: str) -> None:
    """The money is due now: the order owes it back (ledger), and the refund is on its way. A
    request for the whole order takes the order to ``refund_pending`` (before shipping that gives
    its units back to the sale)."""
    whole = _owed_by_requests(order, exclude=refund.pk) + refund.amount >= order.total
    reason = f"{refund.public_id}: {step}, {refund.amount} to refund"
    if whole and order.status == S.ON_HOLD:  # cancelled, owing this amount (the rest is owed already)
        order_transition(order=order, to=S.CANCELLED, actor=actor, reason=reason, refund_amount=refund.amount)
    elif whole and order.status in (S.PAID, S.CONFIRMED) + SHIPPED:
        order_transition(order=order, to=S.REFUND_PENDING, actor=actor, reason=reason, refund_amount=refund.amount)
    else:
        order_record_refund_due(order=order, amount=refund.amount, actor=actor, reason=reason)
    refund.status = R.REFUNDING
    refund.next_attempt_at = timezone.now()
    refund.save(update_fields=["status", "next_attempt_at", "decided_by", "decided_at", "decision_note", "received_at"])


@transaction.atomic
def refund_reject(*, refund: RefundRequest, actor: str, note: str) -> RefundRequest:
    """Refuse a request (or a return whose goods never came or are not what was sold)."""
    if not note.strip():
        raise _invalid(_("Say why the request is rejected: the buyer sees it."), field="note")
    order = order_lock(pk=refund.order_id)
    req = _lock(refund)
    _not_platform(req)
    _expect(req, R.REQUESTED, R.AWAITING_RETURN)
    req.status, req.decided_by, req.decided_at = R.REJECTED, actor[:150], timezone.now()
    req.decision_note = note.strip()[:300]
    req.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    order_record_event(order=order, actor=actor, reason=f"{req.public_id}: rejected ({req.decision_note})")
    return req


@transaction.atomic
def refund_withdraw(*, refund: RefundRequest, actor: str) -> RefundRequest:
    """The buyer takes the request back (before the money is owed)."""
    order = order_lock(pk=refund.order_id)
    req = _lock(refund)
    _not_platform(req)
    _expect(req, R.REQUESTED, R.AWAITING_RETURN)
    req.status = R.WITHDRAWN
    req.save(update_fields=["status"])
    order_record_event(order=order, actor=actor, reason=f"{req.public_id}: withdrawn")
    return req


@transaction.atomic
def refund_receive(*, refund: RefundRequest, actor: str) -> RefundRequest:
    """The returned goods arrived: back on the shelf (a ``return`` movement per line), and the
    money is owed now."""
    order = order_lock(pk=refund.order_id)
    req = _lock(refund)
    _expect(req, R.AWAITING_RETURN)
    if req.source == RefundRequest.Source.PLATFORM:  # restock only: the platform pays
        from .platform_refunds import platform_receive

        platform_receive(req, order, actor=actor)
        return req
    _expect_refundable(order)
    restock(req, order)
    req.received_at = timezone.now()
    _owe(req, order, actor=actor, step="goods received")
    transaction.on_commit(lambda: refund_enqueue(req.pk))
    return req


def restock(refund: RefundRequest, order: Order, *, why: str = "") -> None:
    """A return's units back on the shelf: a ``return`` stock movement per line, naming the refund."""
    for line in RefundLine.objects.filter(refund=refund).select_related("order_line__sku"):
        inventory.stock_return(
            sku=line.order_line.sku,
            quantity=line.quantity,
            reason=f"returned ({refund.public_id}{', ' + why if why else ''})",
            reference=order.public_id,
        )


# --- paying --------------------------------------------------------------------------------------


def refund_enqueue(refund_id: int) -> None:
    """Send the refund from the worker (the minute sweep sends it anyway if this is lost)."""
    from django_q.tasks import async_task

    try:
        async_task("apps.fulfilment.tasks.send_refund", refund_id, q_options={"task_name": f"refund {refund_id}"})
    except Exception:  # noqa: BLE001 - the broker may be down: the minute sweep sends it
        log.warning("refund not enqueued; the sweep sends it", extra={"refund": refund_id}, exc_info=True)


def notify_url() -> str:
    from django.conf import settings

    return settings.PUBLIC_BASE_URL.rstrip("/") + NOTIFY_PATH if settings.PUBLIC_BASE_URL else ""


def _claim(refund_id: int) -> RefundRequest | None:
    """Take the refund for one send (a lease, so two workers never call for it at once)."""
    now = timezone.now()
    with transaction.atomic():
        refund = RefundRequest.objects.select_for_update(skip_locked=True).filter(pk=refund_id).first()
        if refund is None or refund.status != R.REFUNDING or (refund.next_attempt_at and refund.next_attempt_at > now):
            return None
        refund.attempts += 1
        refund.next_attempt_at = now + SEND_LEASE
        refund.save(update_fields=["attempts", "next_attempt_at"])
        return refund


def refund_send(refund_id: int) -> str:
    """One call to the provider for a refund that is due: create it (idempotent by number), or,
    once the provider has it, ask how it went. Returns what happened, for the task's log."""
    refund = _claim(refund_id)
    if refund is None:
        return "not due"
    if refund.order.channel in PLATFORM_CHANNELS:
        return _failed(refund, "platform_order", _("A platform's order is refunded on the platform."))
    if not refund.transaction_id:
        return _failed(refund, "no_payment", _("No payment of ours to refund: settle it by hand."))
    try:
        with refund_client() as client:
            if refund.provider_refund_id:
                answer = client.query_refund(provider_no(refund))
                if answer is None:  # the provider lost it: create it again (same number)
                    answer = client.create_refund(_call(refund))
            else:
                answer = client.create_refund(_call(refund))
    except ProviderRefused as exc:
        if exc.code not in RETRYABLE_REFUSALS:
            return _failed(refund, exc.code, exc.message)
        return _later(refund, f"{exc.code}: {exc.message}")  # our clock or keys: fixed by a person, then it goes
    except ProviderUnavailable as exc:
        return _later(refund, str(exc))
    if answer.status == "succeeded":
        try:
            return refund_paid(
                refund_no=provider_no(refund),
                amount=answer.amount,
                provider_refund_id=answer.refund_id,
                actor="payment-provider",
            )
        except ApplicationError as exc:  # paid another amount than asked: a person looks
            return _failed(refund, exc.code, exc.message)
    if answer.status == "failed":
        return _failed(refund, "refund_failed", answer.failure_reason or "")
    RefundRequest.objects.filter(pk=refund.pk, status=R.REFUNDING).update(
        provider_refund_id=answer.refund_id[:100], next_attempt_at=timezone.now() + QUERY_AFTER, last_error=""
    )
    return "accepted"


RETRYABLE_REFUSALS = frozenset({"signature_invalid", "timestamp_stale", "invalid_request"})
"""Refusals of how we called, not of the refund (keys, clock, a field): the refund waits and goes
once a person fixed the cause, under the same number (the provider applied nothing)."""


def _later(refund: RefundRequest, error: str) -> str:
    if refund.attempts >= MAX_ATTEMPTS:
        return _failed(refund, "provider_unavailable", f"no answer after {refund.attempts} attempts: {error}")
    delay = RETRY_DELAYS[min(refund.attempts - 1, len(RETRY_DELAYS) - 1)]
    RefundRequest.objects.filter(pk=refund.pk, status=R.REFUNDING).update(
        next_attempt_at=timezone.now() + timedelta(seconds=delay), last_error=error[:300]
    )
    return f"provider unavailable, again in {delay}s"


def provider_no(refund: RefundRequest) -> str:
    return refund.refund_no or refund.public_id


def _call(refund: RefundRequest) -> RefundCall:
    url = notify_url()
    if not url:  # the provider could not tell us the outcome: wait until the site knows its address
        raise ProviderUnavailable("PUBLIC_BASE_URL is not set: the provider needs an address for its callback")
    return RefundCall(
        refund_no=provider_no(refund),
        transaction_id=refund.transaction_id,
        amount=refund.amount,
        reason=(refund.reason or refund.get_kind_display())[:80],
        notify_url=url,
    )


def _failed(refund: RefundRequest, code: str, message: str) -> str:
    with transaction.atomic():
        order_lock(pk=refund.order_id)  # the order first, then the refund: the lock order everywhere
        req = _lock(refund)
        if req.status != R.REFUNDING:
            return f"already {req.status}"
        req.status, req.last_error, req.next_attempt_at = R.FAILED, f"{code}: {message}"[:300], None
        req.save(update_fields=["status", "last_error", "next_attempt_at"])
        from .shipping import exception_open

        exception_open(
            order=req.order,
            kind=ExceptionKind.REFUND_OWED,
            detail=f"{req.public_id} {req.amount}: {code} {message}",
        )
    return f"failed: {code}"


def refund_paid(*, refund_no: str, amount: Decimal, provider_refund_id: str, actor: str) -> str:
    """The provider says the refund is paid: once (a replayed callback, or a callback and a query
    saying the same, has no second effect)."""
    with transaction.atomic():
        found = _by_provider_no(refund_no)
        if found is None:
            raise NotFound(_("No refund with this number."), code="refund_not_found")
        order_lock(pk=found.order_id)  # the order first, then the refund
        refund = _lock(found)
        if refund.status == R.REFUNDED:
            return "already"
        if refund.status not in (R.REFUNDING, R.FAILED):
            raise Conflict(_("This refund was not sent."), code="refund_state", extra={"status": refund.status})
        if amount != refund.amount:
            raise ApplicationError(
                _("The refunded amount %(paid)s differs from the refund's %(amount)s.")
                % {"paid": amount, "amount": refund.amount},
                code="amount_mismatch",
                http_status=422,
            )
        refund.status, refund.refunded_at, refund.next_attempt_at = R.REFUNDED, timezone.now(), None
        refund.provider_refund_id = provider_refund_id[:100] or refund.provider_refund_id
        refund.last_error = ""
        refund.save(update_fields=["status", "refunded_at", "next_attempt_at", "provider_refund_id", "last_error"])
        order = order_record_refunded(
            order=refund.order, amount=amount, actor=actor, reason=f"{refund.public_id}: {amount} refunded"
        )
        if order.refunded >= order.refund_due:
            FulfilmentException.objects.filter(
                order=order, kind=ExceptionKind.REFUND_OWED, resolved_at__isnull=True
            ).update(resolved_at=timezone.now(), resolved_by=actor[:150], resolution=f"refunded ({refund.public_id})")
    return "applied"


def _by_provider_no(refund_no: str, *, lock: bool = False) -> RefundRequest | None:
    """The refund the provider knows by ``refund_no`` (the refund's own number, or the one it was
    sent again under)."""
    qs = RefundRequest.objects.select_for_update() if lock else RefundRequest.objects
    base = refund_no.split("-", 1)[0]
    refund = qs.filter(public_id=base).first()
    if refund is None or provider_no(refund) != refund_no:
        return None  # unknown, or an earlier number of a refund sent again since (its failure is history)
    return refund


def refund_retry(*, refund: RefundRequest, actor: str) -> RefundRequest:
    """Send a failed refund again (a person fixed what the provider refused). The provider is asked
    first what became of the number it knows: paid after all, it is recorded as paid; failed, it
    goes again under a new number; unknown there, under the same one. Never while the provider
    may still pay the earlier attempt (a Conflict: try again later)."""
    _not_platform(refund)
    _expect(refund, R.FAILED)
    try:
        with refund_client() as client:
            earlier = client.query_refund(provider_no(refund))
    except (ProviderUnavailable, ProviderRefused) as exc:
        raise Conflict(
            _("The payment provider could not say what became of the earlier attempt; try again later."),
            code="refund_state",
            extra={"status": refund.status, "provider": str(exc)[:200]},
        ) from None
    if earlier is not None and earlier.status == "succeeded":
        refund_paid(
            refund_no=provider_no(refund), amount=earlier.amount, provider_refund_id=earlier.refund_id, actor=actor
        )
        return RefundRequest.objects.get(pk=refund.pk)
    if earlier is not None and earlier.status != "failed":
        raise Conflict(
            _("The payment provider is still processing the earlier attempt."),
            code="refund_state",
            extra={"status": refund.status},
        )
    with transaction.atomic():
        order_lock(pk=refund.order_id)
        req = _lock(refund)
        _expect(req, R.FAILED)
        if earlier is not None:  # failed there: a failed refund stays failed, so a new number
            tries = int(provider_no(req).rpartition("-")[2]) if "-" in provider_no(req) else 1
            req.refund_no = f"{req.public_id}-{tries + 1}"
        req.status, req.next_attempt_at, req.last_error = R.REFUNDING, timezone.now(), ""
        req.provider_refund_id, req.attempts = "", 0
        req.save(
            update_fields=["status", "next_attempt_at", "last_error", "refund_no", "provider_refund_id", "attempts"]
        )
        order_record_event(order=req.order, actor=actor, reason=f"{req.public_id}: sent again")
    transaction.on_commit(lambda: refund_enqueue(req.pk))
    return req


# --- the provider's callback -----------------------------------------------------------------------


def notice_receive(*, body: bytes, timestamp: str | None, signature: str | None) -> RefundNotice:
    """Store a refund callback as it arrived (before anything reads it)."""
    return RefundNotice.objects.create(
        body=body.decode("utf-8", "replace")[:100_000],
        timestamp=(timestamp or "")[:40],
        signature=(signature or "")[:200],
    )


def notice_refuse(notice: RefundNotice, exc: ApplicationError) -> None:
    notice.outcome, notice.error, notice.processed_at = RefundNotice.Outcome.REFUSED, exc.message[:300], timezone.now()
    notice.save(update_fields=["outcome", "error", "processed_at"])


def notice_apply(notice: RefundNotice, callback: Any) -> str:
    """Apply a verified callback (``payments.protocol.RefundCallback``); records the outcome on
    the notice. Raises NotFound for an unknown refund number."""
    outcome = RefundNotice.Outcome
    refund = _by_provider_no(callback.refund_no)
    superseded = (
        None
        if refund is not None
        else RefundRequest.objects.filter(public_id=callback.refund_no.split("-", 1)[0]).exclude(refund_no="").first()
    )
    owner = refund or superseded
    notice.refund_no, notice.merchant_id = callback.refund_no[:64], owner.merchant_id if owner else None
    if superseded is not None:  # a number the refund was sent under before it was sent again: history
        notice.outcome, notice.processed_at = outcome.ALREADY, timezone.now()
        notice.error = f"superseded by {provider_no(superseded)}"[:300]
        notice.save(update_fields=["refund_no", "merchant", "outcome", "error", "processed_at"])
        return "already"
    try:
        if refund is None:
            raise NotFound(_("No refund with this number."), code="refund_not_found")
        if callback.status == "succeeded":
            result = refund_paid(
                refund_no=callback.refund_no,
                amount=callback.amount,
                provider_refund_id=callback.refund_id,
                actor="payment-provider",
            )
        else:
            result = _failed(refund, "refund_failed", callback.failure_reason or "")
            result = "already" if result.startswith("already") else "applied"
    except ApplicationError as exc:
        notice.outcome = outcome.UNKNOWN if isinstance(exc, NotFound) else outcome.REFUSED
        notice.error, notice.processed_at = exc.message[:300], timezone.now()
        notice.save(update_fields=["refund_no", "merchant", "outcome", "error", "processed_at"])
        raise
    notice.outcome = outcome.ALREADY if result == "already" else outcome.APPLIED
    notice.processed_at = timezone.now()
    notice.save(update_fields=["refund_no", "merchant", "outcome", "processed_at"])
    return result


# --- the minute sweep ------------------------------------------------------------------------------


def refunds_due(*, limit: int = 200) -> int:
    """Send (or ask after) every refund whose time has come. Returns how many were tried."""
    due = list(
        RefundRequest.objects.filter(status=R.REFUNDING, next_attempt_at__lte=timezone.now())
        .exclude(source=RefundRequest.Source.PLATFORM)  # the platform pays those
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in due:
        try:
            refund_send(pk)
        except Exception:  # noqa: BLE001 - one refund's fault must not stop the others
            log.exception("refund send failed", extra={"refund": pk})
    return len(due)


def refunds_owed_sweep(*, limit: int = 200) -> int:
    """Money an order owes back that no request covers (paid after cancellation, a second
    payment, a paid order cancelled by the merchant): a ``system`` request per payment it came
    from, sent without a person. Returns how many were made."""
    owed_reqs = RefundRequest.objects.filter(order=OuterRef("pk"), status__in=RefundRequest.OWED)
    covered = Subquery(
        owed_reqs.order_by().values("order").annotate(s=Sum("amount")).values("s")[:1],
        output_field=DecimalField(max_digits=12, decimal_places=2),
    )
    orders = (
        Order.objects.exclude(channel__in=PLATFORM_CHANNELS)
        .filter(refund_due__gt=F("refunded"))
        .annotate(covered=Coalesce(covered, Decimal("0"), output_field=DecimalField(max_digits=12, decimal_places=2)))
        .filter(covered__lt=F("refund_due"))
        .exclude(Exists(RefundRequest.objects.filter(order=OuterRef("pk"), status=R.REFUNDING)))
    )
    # A cursor, so orders that cannot be settled here (nothing left to refund: a person's) never
    # keep the sweep from the others; it starts over once it reached the end.
    cursor = cache.get(SWEEP_CURSOR) or 0
    batch = list(orders.filter(pk__gt=cursor).order_by("pk")[:limit])
    cache.set(SWEEP_CURSOR, batch[-1].pk if len(batch) == limit else 0, None)
    made = 0
    for order in batch:
        made += _owed_requests(order)
    return made


def _owed_requests(order: Order) -> int:
    made = 0
    with transaction.atomic():
        locked = order_lock(pk=order.pk)
        open_one = refund_open_for(locked)
        if open_one is not None:
            if locked.status in REFUNDABLE or open_one.status == R.REFUNDING:
                return 0  # a person decides it first; the rest follows once it is settled
            # The order was cancelled (its whole total is owed now): the request is moot.
            open_one.status, open_one.decided_by, open_one.decided_at = R.REJECTED, "system", timezone.now()
            open_one.decision_note = str(_("closed: the order was cancelled and its whole amount is refunded"))
            open_one.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        covered = (
            RefundRequest.objects.filter(order=locked, status__in=RefundRequest.OWED).aggregate(s=Sum("amount"))["s"]
        ) or Decimal("0")
        owed = locked.refund_due - covered
        if owed <= 0:
            return 0
        refunded_by_txn = dict(
            RefundRequest.objects.filter(order=locked, status__in=RefundRequest.OWED)
            .values("transaction_id")
            .annotate(s=Sum("amount"))
            .values_list("transaction_id", "s")
        )
        # The extra payments first (they are what is owed), then the order's own.
        payments = sorted(
            Payment.objects.filter(order=locked), key=lambda p: (p.outcome == Payment.Outcome.APPLIED, p.pk)
        )
        for payment in payments:
            room = payment.amount - refunded_by_txn.get(payment.transaction_id, Decimal("0"))
            take = min(room, owed)
            if take <= 0:
                continue
            # One open request per order: the rest of what is owed follows once this one is paid.
            refund = RefundRequest.objects.create(
                merchant_id=locked.merchant_id,
                order=locked,
                kind=K.REFUND,
                source=RefundRequest.Source.SYSTEM,
                status=R.REFUNDING,
                amount=take,
                reason=f"owed: {payment.get_outcome_display()}"[:300],
                transaction_id=payment.transaction_id,
                requested_by="system:refund-owed",
                decided_by="system:refund-owed",
                decided_at=timezone.now(),
                next_attempt_at=timezone.now(),
            )
            order_record_event(
                order=locked, actor="system:refund-owed", reason=f"{refund.public_id}: {take} owed, refund sent"
            )
            made += 1
            break
        else:  # owed, but no payment of ours has room left: a person settles it
            from .shipping import exception_open

            exception_open(
                order=locked,
                kind=ExceptionKind.REFUND_OWED,
                detail=f"{owed} owed back, no payment left to refund: settle it by hand",
            )
    return made


# --- the buyer's status page ------------------------------------------------------------------------

BUYER_REASONS = {
    "not_wanted": gettext_lazy("No longer wanted"),
    "wrong_item": gettext_lazy("Wrong item sent"),
    "damaged": gettext_lazy("Damaged"),
    "not_received": gettext_lazy("Not received"),
    "size": gettext_lazy("Does not fit"),
    "other": gettext_lazy("Other"),
}


def buyer_panel(order: Order) -> dict[str, Any] | None:
    """``hooks.registry.order_aftersales_of``: the order's requests and whether the buyer may ask
    (None when the order could never be refunded here and has no requests)."""
    requests = list(RefundRequest.objects.filter(order=order).order_by("-id")[:10])
    can = (
        order.status in REFUNDABLE
        and order.channel not in PLATFORM_CHANNELS
        and not any(r.status in RefundRequest.OPEN for r in requests)
    )
    left = refundable_amount(order) if can else Decimal("0")
    if not requests and not (can and left > 0):
        return None
    return {
        "requests": [
            {
                "id": r.public_id,
                "kind": r.get_kind_display(),
                "amount": str(r.amount),
                "status": r.status,
                "status_label": r.get_status_display(),
                "note": r.decision_note,
                "can_withdraw": (
                    r.status in (R.REQUESTED, R.AWAITING_RETURN) and r.source != RefundRequest.Source.PLATFORM
                ),
                "at": r.requested_at,
            }
            for r in requests
        ],
        "can_request": can and left > 0,
        "can_return": can and left > 0 and order.status in SHIPPED,
        "refundable": str(left),
        "reasons": {code: str(text) for code, text in BUYER_REASONS.items()},
    }
