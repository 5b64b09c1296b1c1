"""The one way to change an order's status.

``order_transition`` locks the order row, checks the state machine, applies the transition's
stock effects, bumps the version, appends to the ledger and publishes after commit. Releases
happen only on a transition out of a stock-holding state, so cancel, expiry and refund release
exactly once however often they are asked.
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import DatabaseError, connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from apps.catalog.models import Listing
from apps.core.bulk import update_rows
from apps.core.errors import ApplicationError, is_database_unavailable
from apps.inventory import services as inventory
from apps.orders import events as notify
from apps.orders import hooks
from apps.orders.errors import InvalidTransition, OrderNotFound
from apps.orders.models import LIVE_STATUSES, RESERVING_STATUSES, ListingBuyer, Order, OrderLine, OrderStatus
from apps.orders.placement.gate import scripts as gate

from .ledger import LedgerEntry, ledger_append, ledger_append_many
from .state_machine import can_transition

log = logging.getLogger(__name__)
S = OrderStatus


def order_lock(*, public_id: str | None = None, pk: int | None = None, merchant_id: int | None = None) -> Order:
    qs = Order.objects.select_for_update(of=("self",))
    if merchant_id is not None:
        qs = qs.filter(merchant_id=merchant_id)
    if public_id is not None:
        order = qs.filter(public_id=public_id).first()
    elif pk is not None:
        order = qs.filter(pk=pk).first()
    else:
        raise ValueError("order_lock needs a public_id or a pk")
    if order is None:
        raise OrderNotFound("no such order")
    return order


def _release_units(order: Order, reason: str, *, stock: bool = True) -> None:
    """Give the order's units back: buyer limit, listing quota, stock; the gate after commit. A
    line that holds nothing (``reserved`` False: a platform's oversold line) gives nothing back.
    ``stock`` False (a shipped order refunded): the units left the warehouse, so only the listing's
    counters and the gate give them back; returned goods are restocked when they arrive."""
    for line in OrderLine.objects.filter(order=order, reserved=True):
        if line.listing_id:
            ListingBuyer.objects.filter(listing_id=line.listing_id, buyer_id=order.buyer_id).update(
                units=F("units") - line.quantity
            )
            Listing.objects.filter(pk=line.listing_id).update(sold=F("sold") - line.quantity, version=F("version") + 1)
        if stock:
            inventory.stock_release(
                sku_id=line.sku_id,
                merchant_id=order.merchant_id,
                quantity=line.quantity,
                reference=order.public_id,
                reason=reason,
            )
        if line.listing_id:
            listing_id, public_id = line.listing_id, order.public_id
            transaction.on_commit(functools.partial(_gate_release, listing_id, public_id))


def _gate_release(listing_id: int, public_id: str) -> None:
    try:
        gate.gate_release(listing_id, hold_id=public_id)
    except Exception:  # noqa: BLE001 - Redis may vanish; the reconciler frees the hold
        log.warning("gate release failed", extra={"listing": listing_id, "order": public_id}, exc_info=True)


def _line_not_reserved(order: Order) -> InvalidTransition:
    return InvalidTransition(
        "a line of this order holds no stock yet (oversold on a platform): cover it before shipping",
        extra={"order": order.public_id, "reason": "line_not_reserved"},
    )


def _check_transition(locked: Order, to: str, allowed_from: tuple[str, ...] | None) -> None:
    """Raise InvalidTransition unless the locked order may go to ``to`` (from one of ``allowed_from``)."""
    current = locked.status
    if allowed_from is not None and current not in allowed_from or not can_transition(current, to):
        raise InvalidTransition(
            f"cannot go from {current} to {to}",
            extra={"from": current, "to": to, "order": locked.public_id},
        )


def _ship_units(order: Order) -> None:
    if OrderLine.objects.filter(order=order, reserved=False).exists():
        raise _line_not_reserved(order)
    for line in OrderLine.objects.filter(order=order):
        inventory.stock_ship(
            sku_id=line.sku_id, merchant_id=order.merchant_id, quantity=line.quantity, reference=order.public_id
        )


def _rest_of_total(order: Order) -> Decimal:
    """What a cancellation owes back of the order's total: the total, less what its after-sales
    requests already owe (``hooks.registry.refunds_owed_of``), so a part refunded before is not
    owed twice."""
    owed = hooks.registry.refunds_owed_of(order) if hooks.registry.refunds_owed_of else Decimal("0")
    return max(order.total - owed, Decimal("0"))


@transaction.atomic
def order_transition(
    *,
    order: Order | None = None,
    public_id: str | None = None,
    to: str,
    actor: str,
    reason: str = "",
    allowed_from: tuple[str, ...] | None = None,
    refund_amount: Decimal | None = None,
    carrier: str = "",
    tracking_number: str = "",
) -> Order:
    """Move an order to ``to``. Raises OrderNotFound or InvalidTransition (409)."""
    locked = order_lock(public_id=public_id) if order is None else order_lock(pk=order.pk)
    current = locked.status
    _check_transition(locked, to, allowed_from)
    fields = ["status", "version", "updated_at"]
    if current in LIVE_STATUSES and to not in LIVE_STATUSES:
        _release_units(locked, reason or to, stock=current in RESERVING_STATUSES)
    if to == S.SHIPPED:
        _ship_units(locked)
        locked.carrier, locked.tracking_number = carrier[:50], tracking_number[:64]
        fields += ["carrier", "tracking_number"]
    if to == S.PAID:
        locked.paid_at = timezone.now()
        fields.append("paid_at")
    if to == S.CANCELLED:
        locked.cancel_reason = reason[:200]
        fields.append("cancel_reason")
        if current == S.ON_HOLD:  # it was paid: its total is owed back, on top of anything owed already
            owed = refund_amount if refund_amount is not None else _rest_of_total(locked)
            locked.refund_due = (locked.refund_due or Decimal("0")) + owed
            fields.append("refund_due")
    if to == S.REFUND_PENDING:
        # Owed back: this amount (a late payment) or the total, on top of anything owed already (a
        # refund from a cancelled hold, a duplicate payment): money received is never forgotten.
        owed = refund_amount if refund_amount is not None else _rest_of_total(locked)
        locked.refund_due = (locked.refund_due or Decimal("0")) + owed
        fields.append("refund_due")
        if reason and not locked.cancel_reason:  # keep why it was cancelled; the ledger has the rest
            locked.cancel_reason = reason[:200]
            fields.append("cancel_reason")
    locked.status = to
    locked.version += 1
    locked.save(update_fields=fields)
    event = ledger_append(order=locked, from_status=current, to_status=to, actor=actor, reason=reason)
    notify.order_changed_on_commit(locked, listing_id=locked.listing_id, seq=event.seq, from_status=current)
    return locked


MANY_TARGETS = frozenset({S.CONFIRMED, S.SHIPPED, S.DELIVERED, S.COMPLETED})
"""Where ``orders_transition_many`` moves orders: forward steps that release nothing and owe
nothing (from a live status to a live status), whose only effect beyond the status is shipping
the units (``shipped``). Cancels, refunds and payments go one by one through ``order_transition``."""


@dataclass(frozen=True)
class TransitionItem:
    """One order of :func:`orders_transition_many` and what its step records: the reason in its
    ledger event, and for ``shipped`` the carrier and tracking number."""

    pk: int
    reason: str = ""
    carrier: str = ""
    tracking_number: str = ""


@dataclass
class ManyTransitions:
    """What :func:`orders_transition_many` did: the orders it moved (locked rows, as written, in pk
    order) and, by pk, why it left the others alone (InvalidTransition or OrderNotFound)."""

    moved: list[Order] = field(default_factory=list)
    refused: dict[int, ApplicationError] = field(default_factory=dict)


@transaction.atomic
def orders_transition_many(
    *,
    merchant_id: int,
    items: Sequence[TransitionItem],
    to: str,
    actor: str,
    allowed_from: tuple[str, ...] | None = None,
) -> ManyTransitions:
    """``order_transition`` for many orders of one merchant in one transaction, with set-based
    writes: the same checks and effects, order by order, in fewer statements.

    Locks the orders in one ``SELECT ... FOR UPDATE`` (by pk: the global lock order, orders before
    stock before the ledger head); checks each against the state machine and ``allowed_from``
    exactly as ``order_transition`` does, and a ``shipped`` step also against lines that hold no
    stock. An order that fails is refused (``refused``, with the error ``order_transition`` would
    have raised) and left alone; the others proceed: their units shipped (a movement per line,
    each SKU's stock row moved once), their rows updated, one ledger event each appended under one
    lock of the merchant's head (the same chain ``ledger_append`` builds), and each change
    published after commit as ``order_transition`` publishes it. ``to`` must be one of
    ``MANY_TARGETS`` (ValueError otherwise). Raises InsufficientStock (nothing written) when
    stock no longer covers what the orders reserved."""
    if to not in MANY_TARGETS:
        raise ValueError(f"orders_transition_many cannot move orders to {to}: use order_transition")
    wanted = {item.pk: item for item in items}
    result = ManyTransitions()
    if not wanted:
        return result
    locked = list(order_lock_many(pks=list(wanted), merchant_id=merchant_id))
    found = {order.pk for order in locked}
    for pk in wanted.keys() - found:
        result.refused[pk] = OrderNotFound("no such order")
    movable: list[Order] = []
    for order in locked:
        try:
            _check_transition(order, to, allowed_from)
        except InvalidTransition as exc:
            result.refused[order.pk] = exc
            continue
        movable.append(order)
    if to == S.SHIPPED:
        movable = _ship_units_many(movable, result.refused)
    if not movable:
        return result
    now = timezone.now()
    current = {order.pk: order.status for order in movable}
    for order in movable:
        order.status = to
        order.version += 1
        order.updated_at = now
        if to == S.SHIPPED:
            item = wanted[order.pk]
            order.carrier, order.tracking_number = item.carrier[:50], item.tracking_number[:64]
    _write_many(movable, to=to, now=now)
    events = ledger_append_many(
        merchant_id=merchant_id,
        entries=[
            LedgerEntry(order=o, from_status=current[o.pk], to_status=to, actor=actor, reason=wanted[o.pk].reason)
            for o in movable
        ],
    )
    for order, event in zip(movable, events, strict=True):
        notify.order_changed_on_commit(order, listing_id=order.listing_id, seq=event.seq, from_status=current[order.pk])
    result.moved = movable
    return result


def order_lock_many(*, pks: Sequence[int], merchant_id: int) -> QuerySet[Order]:
    """The merchant's orders among ``pks``, locked in one statement in pk order (the order every
    transaction that locks several orders takes them in, so two cannot deadlock)."""
    return Order.objects.select_for_update(of=("self",)).filter(merchant_id=merchant_id, pk__in=pks).order_by("pk")


def _ship_units_many(orders: list[Order], refused: dict[int, ApplicationError]) -> list[Order]:
    """``_ship_units`` for many orders: an order with a line that holds no stock is refused (the
    same error); the units of the others leave the warehouse in one ``stock_ship_many`` per
    merchant. Returns the orders that ship."""
    if not orders:
        return orders
    lines: dict[int, list[tuple[int, int, bool]]] = defaultdict(list)
    for order_id, sku_id, quantity, reserved in OrderLine.objects.filter(order__in=orders).values_list(
        "order_id", "sku_id", "quantity", "reserved"
    ):
        lines[order_id].append((sku_id, quantity, reserved))
    shipping: list[Order] = []
    for order in orders:
        if not all(reserved for _sku, _q, reserved in lines[order.pk]):
            refused[order.pk] = _line_not_reserved(order)
        else:
            shipping.append(order)
    by_merchant: dict[int, list[inventory.ShipLine]] = defaultdict(list)
    for order in shipping:
        for sku_id, quantity, _reserved in lines[order.pk]:
            by_merchant[order.merchant_id].append(
                inventory.ShipLine(sku_id=sku_id, quantity=quantity, reference=order.public_id)
            )
    for merchant_id, ship_lines in by_merchant.items():
        inventory.stock_ship_many(merchant_id=merchant_id, lines=ship_lines)
    return shipping


def _write_many(orders: list[Order], *, to: str, now: datetime) -> None:
    """Write what ``orders_transition_many`` set on the locked rows: the status, ``updated_at``,
    each one's version (read under its lock, so exactly one up) and for ``shipped`` its carrier and
    tracking number, in one ``UPDATE`` per 500 orders."""
    fields = ["version", "carrier", "tracking_number"] if to == S.SHIPPED else ["version"]
    update_rows(Order, orders, fields, same={"status": to, "updated_at": now})


@transaction.atomic
def order_record_refund_due(*, order: Order, amount: Decimal, actor: str, reason: str) -> Order:
    """Add ``amount`` to what the order owes back, without changing its status (a second
    payment for an order another transaction already paid). Like ``order_transition``: under
    the order row lock, bumps the version, appends a ledger event (from == to == the current
    status, so the order's status still equals its last event) and publishes after commit.
    Raises OrderNotFound."""
    locked = order_lock(pk=order.pk)
    current = locked.status
    locked.refund_due = (locked.refund_due or Decimal("0")) + amount
    locked.version += 1
    locked.save(update_fields=["refund_due", "version", "updated_at"])
    event = ledger_append(order=locked, from_status=current, to_status=current, actor=actor, reason=reason)
    notify.order_changed_on_commit(locked, listing_id=locked.listing_id, seq=event.seq, from_status=current)
    return locked


@transaction.atomic
def order_record_refunded(*, order: Order, amount: Decimal, actor: str, reason: str) -> Order:
    """The provider (or the platform) paid ``amount`` back. Adds it to ``refunded`` under the row
    lock with a ledger event, and an order whose whole refund due is now paid back goes on from
    ``refund_pending`` to ``refunded`` through ``order_transition`` (in the same transaction).
    Raises OrderNotFound."""
    locked = order_lock(pk=order.pk)
    current = locked.status
    locked.refunded = (locked.refunded or Decimal("0")) + amount
    locked.version += 1
    locked.save(update_fields=["refunded", "version", "updated_at"])
    event = ledger_append(order=locked, from_status=current, to_status=current, actor=actor, reason=reason)
    if current == S.REFUND_PENDING and locked.refunded >= locked.refund_due:
        return order_transition(order=locked, to=S.REFUNDED, actor=actor, reason="refund paid in full")
    notify.order_changed_on_commit(locked, listing_id=locked.listing_id, seq=event.seq, from_status=current)
    return locked


@transaction.atomic
def order_record_event(*, order: Order, actor: str, reason: str) -> Order:
    """Record a decision about an order that keeps its status (a risk review approving an order
    not paid yet): under the row lock, a version bump and a ledger event from == to, published
    after commit, like ``order_record_refund_due`` without the amount. Raises OrderNotFound."""
    locked = order_lock(pk=order.pk)
    current = locked.status
    locked.version += 1
    locked.save(update_fields=["version", "updated_at"])
    event = ledger_append(order=locked, from_status=current, to_status=current, actor=actor, reason=reason)
    notify.order_changed_on_commit(locked, listing_id=locked.listing_id, seq=event.seq, from_status=current)
    return locked


CANCELLED_OUTCOMES = (S.CANCELLED, S.REFUND_PENDING)


def order_cancel(*, order: Order, actor: str, reason: str, by_buyer: bool = False) -> Order:
    """Cancel. A buyer may cancel only while unpaid; a merchant cancelling a paid order
    turns it into a refund. The choice is made from the locked row, never from ``order`` as the
    caller read it (a payment may have landed since).

    A database fault can come after the commit (the connection dies before the client hears
    back): then the database is asked again, on a fresh connection, and an order that is now
    cancelled (or owed a refund) is the answer — the cancel is done, and what the commit's own
    after-commit work would have done is done now (Django drops those callbacks when the commit
    call fails): the gate gives the units back and the change is published. An order that was
    already cancelled before the call is answered the same way (a cancel is idempotent).
    Otherwise the fault is raised (a 503: nothing was changed)."""
    try:
        return _order_cancel(order=order, actor=actor, reason=reason, by_buyer=by_buyer)
    except DatabaseError as exc:
        if not is_database_unavailable(exc) or connection.in_atomic_block:
            raise
        connection.close()  # the broken connection goes; the next query checks out a fresh one
        try:
            current = Order.objects.get(pk=order.pk)
        except DatabaseError:
            raise exc from None
        if current.status in CANCELLED_OUTCOMES:
            log.warning("cancel saw a database fault after it committed", extra={"order": current.public_id})
            _after_lost_commit(current)
            return current
        raise


def _after_lost_commit(order: Order) -> None:
    """The after-commit effects of a cancel whose commit reply was lost (both idempotent)."""
    for listing_id in OrderLine.objects.filter(order=order, listing_id__isnull=False).values_list(
        "listing_id", flat=True
    ):
        _gate_release(listing_id, order.public_id)
    notify.order_changed_on_commit(order, listing_id=order.listing_id)


@transaction.atomic
def _order_cancel(*, order: Order, actor: str, reason: str, by_buyer: bool) -> Order:
    if by_buyer:
        return order_transition(
            order=order,
            to=S.CANCELLED,
            actor=actor,
            reason=reason or "cancelled by buyer",
            allowed_from=(S.PENDING_PAYMENT,),
        )
    locked = order_lock(pk=order.pk)
    to = S.REFUND_PENDING if locked.status in (S.PAID, S.CONFIRMED) else S.CANCELLED
    return order_transition(order=locked, to=to, actor=actor, reason=reason or "cancelled by merchant")


EXPIRY_REASON = "payment deadline passed"
"""The reason (``cancel_reason``) of an order cancelled because its payment deadline passed."""


def orders_expire_due(*, now=None, limit: int = 1000) -> int:
    """Cancel unpaid orders whose payment deadline passed. Safe to run concurrently and twice:
    each order is decided under its row lock (a payment that won is left alone)."""
    now = now or timezone.now()
    due = list(
        Order.objects.filter(status=S.PENDING_PAYMENT, pay_by__lte=now)
        .order_by("pay_by")
        .values_list("pk", flat=True)[:limit]
    )
    expired = 0
    for pk in due:
        try:
            order_transition(
                order=Order(pk=pk),
                to=S.CANCELLED,
                actor="system:expiry",
                reason=EXPIRY_REASON,
                allowed_from=(S.PENDING_PAYMENT,),
            )
            expired += 1
        except (InvalidTransition, OrderNotFound):
            continue
    return expired
