"""The order state machine: which status may follow which (DESIGN.md "Order lifecycle").

Used by the one write path (``transitions.order_transition``) and by the ledger's verification,
which holds every order's recorded history to it."""

from __future__ import annotations

from apps.orders.models import OrderStatus

S = OrderStatus

TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING_PAYMENT: frozenset({S.PAID, S.CANCELLED}),
    S.PAID: frozenset({S.CONFIRMED, S.ON_HOLD, S.REFUND_PENDING}),
    S.ON_HOLD: frozenset({S.CONFIRMED, S.CANCELLED}),
    S.CONFIRMED: frozenset({S.SHIPPED, S.REFUND_PENDING}),
    # After-sales: a full refund after shipping (the goods came back, or never arrived).
    S.SHIPPED: frozenset({S.DELIVERED, S.REFUND_PENDING}),
    S.DELIVERED: frozenset({S.COMPLETED, S.REFUND_PENDING}),
    S.COMPLETED: frozenset({S.REFUND_PENDING}),
    S.CANCELLED: frozenset({S.REFUND_PENDING}),  # a payment that arrived after cancellation
    S.REFUND_PENDING: frozenset({S.REFUNDED}),
    S.REFUNDED: frozenset(),
}


AFTER_SALES_STEPS = frozenset(
    {(S.SHIPPED, S.REFUND_PENDING), (S.DELIVERED, S.REFUND_PENDING), (S.COMPLETED, S.REFUND_PENDING)}
)
"""Steps taken only by after-sales (``apps.fulfilment.refunds``: a request approved, goods received),
never on the way to another status (a platform's cancel after shipping is a conflict for a person)."""


def can_transition(current: str, to: str) -> bool:
    return to in TRANSITIONS.get(current, frozenset())


FIRST_STATUSES = frozenset({S.PENDING_PAYMENT})
"""What an order's first ledger event may say it became (``"" -> pending_payment``)."""


def is_recorded_step(previous_to: str | None, from_status: str, to_status: str) -> bool:
    """Whether an event may follow the order's previous event in its history: it starts where the
    previous one ended, and is a transition of the state machine, or a change that keeps the
    status (an amount owed back: ``order_record_refund_due``)."""
    if previous_to is None:
        return from_status == "" and to_status in FIRST_STATUSES
    return from_status == previous_to and (to_status == from_status or can_transition(from_status, to_status))
