"""Hooks the apps above orders register, so orders never imports them (DESIGN: a lower app reacts
to a higher one through a hook the higher app registers).

- ``order_changed``: sent after an order change has committed (``events.order_changed_on_commit``),
  in the thread that made it, with kwargs ``order`` (the order as changed), ``from_status`` (None for
  a new order or when not known) and ``created``. Receivers must be cheap when they have nothing to
  do (placement calls it for every order) and must not raise (it is sent with ``send_robust``).
- ``order_attention``: sent by an app above orders when an order needs a person for a reason only
  that app sees and no status change tells (a platform cancelled an order that shipped here), with
  kwargs ``order`` (an Order: ``pk`` and ``merchant_id`` are read), ``kind`` (one of
  ``ATTENTION_KINDS``) and ``detail`` (a sentence in the active language). Sent inside the sender's
  transaction, so what a receiver records commits or rolls back with its cause: a receiver writes
  in a savepoint of its own, and must not raise (``send_robust``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.dispatch import Signal

from apps.core.redis import LuaScript, is_redis_error

from .models import PLATFORM_CHANNELS

log = logging.getLogger(__name__)

order_changed = Signal()
order_attention = Signal()

ATTENTION_PLATFORM_CONFLICT = "platform_conflict"
"""A sales platform says the order is cancelled or refunded; here it is not, and cannot follow."""
ATTENTION_KINDS = (ATTENTION_PLATFORM_CONFLICT,)


# --- risk control (apps/fraud registers these in its AppConfig.ready) ---------------------------
class PlacementGuard(Protocol):
    def __call__(self, *, info: Any, req: Any, public_id: str, channel: str) -> GuardCall: ...


@dataclass(frozen=True)
class GuardCall:
    """The guard's one Redis script call for an attempt (``script``, an ``apps.core.redis.LuaScript``,
    with its ``keys`` and ``args``), which ``order_place`` runs in the same round trip as the
    gate's reserve, and ``judge``: given the script's reply, or the Redis error the call raised,
    it returns the verdict or raises the refusal."""

    script: LuaScript
    keys: list[str]
    args: list[Any]
    judge: Callable[[Any], GuardVerdict]

    def run_alone(self) -> GuardVerdict:
        """The script in a round trip of its own, then the judgement (a Redis error is judged,
        not raised); raises the refusal, whose follow-up is the caller's."""
        try:
            reply = self.script(self.keys, self.args)
        except Exception as exc:
            if not is_redis_error(exc):
                raise
            reply = exc
        return self.judge(reply)


def refusal_follow_up(exc: BaseException) -> None:
    """Run what a guard's refusal asks to do once the units the gate held for the attempt are
    back (its ``after_release``: risk control records the blocked attempt there, so no unit stays
    held while it writes). Never raises: the refusal is the answer."""
    follow_up = getattr(exc, "after_release", None)
    if follow_up is None:
        return
    try:
        follow_up()
    except Exception:  # noqa: BLE001 - the refusal stands; the follow-up logs its own failures
        log.warning("a guard refusal's follow-up failed", exc_info=True)


@dataclass(frozen=True)
class GuardVerdict:
    """What the guard lets through: the order's payment window when it must be shorter than the
    listing's (None: the listing's), and ``rules``, stored with the order's signals."""

    pay_window_seconds: int | None = None
    rules: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Registry:
    guard: PlacementGuard | None = None
    guard_local: Callable[..., bool] | None = None
    closed: Callable[..., None] | None = None
    risk_of: Callable[[Any], dict[str, Any] | None] | None = None
    platform_of: Callable[[Any], dict[str, Any] | None] | None = None
    read_prefetch: tuple[str, ...] = ()
    order_page_panels: list[Callable[[Any, Any], str]] = field(default_factory=list)
    confirm_filter: Callable[[Any], Any] | None = None
    order_admin_actions: list[Callable[..., Any]] = field(default_factory=list)
    order_trace_of: Callable[[Any], dict[str, Any] | None] | None = None
    order_aftersales_of: Callable[[Any], dict[str, Any] | None] | None = None
    refunds_owed_of: Callable[[Any], Any] | None = None
    risk_review: Callable[..., list[Any]] | None = None
    exception_counts: Callable[..., list[dict[str, Any]]] | None = None
    sandbox_paid: Callable[..., Any] | None = None
    platform_aftersale: Callable[..., Any] | None = None
    session_risk_counts: Callable[..., dict[str, int]] | None = None


registry = _Registry()
"""- ``guard``: called by ``order_place`` with the listing's ``ListingInfo``, the ``OrderRequest``,
  the order's public id and its channel; returns a ``GuardCall``: its script runs in one round
  trip with the gate's reserve, then its ``judge`` raises an ``ApplicationError`` to refuse the
  order (the units the gate held are given back, then the refusal's ``after_release``, if it
  has one, runs: ``refusal_follow_up``; orders writes nothing), else returns a ``GuardVerdict``.
- ``guard_local(merchant_id, for_seconds, refresh=None)``: whether the guard's ``judge`` for this
  merchant's attempts needs nothing but process memory (no shared cache, no database) for at
  least ``for_seconds`` more; the event loop (``placement.eventloop``) runs the guard only then,
  and hands the attempt to a worker thread otherwise (None: always). ``refresh`` runs a callable
  in the background: given, what judging needs is read again there before it leaves memory.
- ``closed(info=, req=, public_id=)``: told when the gate refused an attempt because the listing was not
  open (409 ``listing_closed``); must not raise.
- ``risk_of(order)``: the order's ``risk`` for reads (``{score, decision, reasons}``), or None
  while it is not assessed.
- ``platform_of(order)``: for an order a sales platform sold (``models.PLATFORM_CHANNELS``), its
  ``platform`` for reads (``{name, shop_id, order_id}``); never asked for other orders.
- ``read_prefetch``: relations of Order that ``risk_of`` and ``platform_of`` read, prefetched by
  order lists (each app adds its own).
- ``order_page_panels``: ``panel(request, order) -> html`` drawn on the admin's order page.
- ``confirm_filter(orders) -> orders``: narrows a queryset of paid orders to those risk control
  lets be confirmed without a person (assessed and not flagged); the automatic confirmation
  (``apps.fulfilment.automation``) confirms no other.
- ``order_admin_actions``: admin actions ``(modeladmin, request, queryset)`` offered on the order
  list besides its own (their ``allowed_permissions`` name role verbs of the orders area).
- ``order_trace_of(order)``: the order's parcel trace for the buyer's status page
  (``{parcel: {express, waybill_no, state, delivered_at}, events: [{at, text, location}]}``,
  newest first), or None before it ships; later lines come as ``order.trace`` pushes.
- ``order_aftersales_of(order)``: the buyer's after-sales panel on the status page (``{requests:
  [...], can_request, can_return, refundable, action}``), or None when there is nothing to show.
- ``refunds_owed_of(order)``: what the order's after-sales requests already owe back (a Decimal),
  so a cancellation owes only the rest of the total (``apps.fulfilment``).
- ``risk_review(order_ids=, merchant_id=, approve=, user=)``: risk control's review decision
  (approve: ``on_hold -> confirmed``; reject: ``on_hold -> cancelled``, a refund owed) for these
  orders of ``merchant_id``, each on its own; returns one result per order with ``public_id``,
  ``outcome`` (``approved``, ``rejected``, ``already_reviewed`` or ``not_reviewable``) and
  ``status`` (the order's status after it). Registered by ``apps.fraud``.
- ``exception_counts(merchant_ids=, merchant_id=None)``: the open order exceptions (异常订单) of
  these merchants (None: every merchant) by kind, in one query: ``[{kind, label, count, url}]``
  for every kind, ``url`` the exception queue filtered by that kind (and by ``merchant_id`` when
  given). Registered by ``apps.fulfilment``; read through :func:`order_exception_counts`.
- ``sandbox_paid(transaction_id=, amount=)``: told by the demo's sandbox pay button, before the
  payment is applied, of the payment it makes up, so the payment provider's local simulator knows
  the transaction and pays its refunds back (``apps.fulfilment``). Best-effort: quick, and a
  failure (or an exception, which the button logs) never stops the payment.
- ``platform_aftersale(order_id=, platform=, refund_id=, phase=, kind=, amount=, occurred_at=,
  platform_status=, sku_id=, units=, reason=)``: a sales platform's after-sales step for one of
  our orders (``apps.platforms.protocol.aftersales.AfterSale``'s fields, as keywords; the sub-order
  it names as our ``sku_id`` and its ``units``, both None for the whole order), told by the platform
  inbox; the receiver mirrors it as the order's after-sales request and applies what it means for
  the order (``apps.fulfilment``). In its own transaction; an exception fails the message, which is
  retried.
- ``session_risk_counts(session_id=)``: risk control's verdicts of a show for its report: ``{allowed,
  held, approved, rejected, blocked}`` (held: orders held for review, of which approved / rejected
  so far; blocked: attempts refused, no order). Registered by ``apps.fraud``."""


def order_risk(order: Any) -> dict[str, Any] | None:
    return registry.risk_of(order) if registry.risk_of is not None else None


def order_platform(order: Any) -> dict[str, Any] | None:
    """``{name, shop_id, order_id}`` of the platform that sold the order, None for our own channels."""
    if order.channel not in PLATFORM_CHANNELS or registry.platform_of is None:
        return None
    return registry.platform_of(order)


def order_exception_counts(*, merchant_ids: list[int] | None, merchant_id: int | None = None) -> list[dict[str, Any]]:
    """The exception queue's open counts by kind for the dashboards (``registry.exception_counts``),
    or an empty list when no app keeps a queue."""
    if registry.exception_counts is None:
        return []
    return registry.exception_counts(merchant_ids=merchant_ids, merchant_id=merchant_id)
