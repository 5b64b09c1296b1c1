"""Tracking pushes: a carrier tells us where a parcel is; the parcel's trace grows, and a delivered
parcel moves its orders to ``delivered`` through the state machine.

A push reaches ``/hooks/carriers/<carrier>/<push_token>``: the token names exactly one carrier
account, whatever the body claims. The body is stored as it came (``CarrierPush``) before anything
reads it; then it is verified with the account's secret (Kuaidi100: the push salt, Kdniao: the
AppKey) and applied. Applying is idempotent and order-independent:

- each trace line is stored once (unique per parcel, time and text), so a push delivered twice
  adds nothing;
- a push whose newest line is older than what the parcel has seen does not move its state back
  (a late ``in transit`` after ``delivered`` changes nothing), and ``delivered`` is never undone;
- ``shipped -> delivered`` goes through ``order_transition`` with ``allowed_from=(shipped,)``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.orders.errors import InvalidTransition
from apps.orders.models import Order, OrderStatus
from apps.orders.services.transitions import order_transition

from .carriers import kdniao, kuaidi100
from .carriers.base import BadMessage, BadSignature, CarrierError, Tracking
from .models import CarrierAccount, CarrierPush, ExceptionKind, Parcel, ParcelOrder, TrackingEvent
from .selectors import account_by_push_token

log = logging.getLogger(__name__)

# A parcel's status for a carrier's canonical tracking state (None: the state does not change it).
_STATUS_OF = {
    "delivered": Parcel.Status.DELIVERED,
    "problem": Parcel.Status.PROBLEM,
    "returned": Parcel.Status.RETURNED,
    "collected": Parcel.Status.SHIPPED,
    "in_transit": Parcel.Status.SHIPPED,
    "delivering": Parcel.Status.SHIPPED,
}


@dataclass(frozen=True)
class PushAnswer:
    """What the push view answers: the HTTP status, the body in the carrier's format, its type."""

    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"


def _answer(carrier: str, account: CarrierAccount | None, ok: bool, reason: str = "") -> bytes:
    if carrier == "kdniao":
        return kdniao.push_answer(account.app_id if account else "", ok, reason)
    return kuaidi100.push_answer(ok)


def push_receive(*, carrier: str, push_token: str, content_type: str, body: bytes) -> PushAnswer:
    """Store, verify and apply one push; the answer tells the carrier whether to push it again
    (a failure we may recover from asks for it again; a bad signature or format does not)."""
    account = account_by_push_token(carrier=carrier, push_token=push_token)
    if account is None or not account.enabled:
        return PushAnswer(404, _answer(carrier, None, False, "unknown push url"))
    push = CarrierPush.objects.create(
        account=account, content_type=content_type[:200], body=body.decode("utf-8", errors="replace")
    )
    return PushAnswer(*push_apply(push, account))


def push_apply(push: CarrierPush, account: CarrierAccount) -> tuple[int, bytes]:
    """Verify and apply a stored push (again, for one that failed): (HTTP status, answer body)."""
    carrier = account.carrier
    try:
        form = kdniao.decode_form(push.body.encode())
        if carrier == "kdniao":
            trackings = kdniao.parse_push(form, account.app_key)
        else:
            trackings = [kuaidi100.parse_push(form, account.push_salt or None)]
    except (BadSignature, BadMessage) as exc:
        _outcome(push, CarrierPush.Outcome.REFUSED, error=f"{exc.code}: {exc.message}")
        return 400, _answer(carrier, account, False, exc.message)
    try:
        outcomes = [tracking_apply(account, t) for t in trackings]
    except Exception as exc:
        log.exception("tracking push failed", extra={"push": push.pk})
        _outcome(push, CarrierPush.Outcome.FAILED, error=str(exc), waybills=trackings)
        return 500, _answer(carrier, account, False, "temporary failure")
    known = any(outcomes) or not trackings
    _outcome(
        push,
        CarrierPush.Outcome.APPLIED if known else CarrierPush.Outcome.UNKNOWN_WAYBILL,
        waybills=trackings,
    )
    return 200, _answer(carrier, account, True)


def _outcome(push: CarrierPush, outcome: str, *, error: str = "", waybills: Sequence[Tracking] = ()) -> None:
    CarrierPush.objects.filter(pk=push.pk).update(
        outcome=outcome,
        error=error[:300],
        waybills=",".join(t.waybill_no for t in waybills)[:500],
        processed_at=timezone.now(),
    )


def _newest(tracking: Tracking) -> datetime | None:
    times = [e.at for e in tracking.events if e.at is not None]
    return max(times) if times else None


def tracking_apply(account: CarrierAccount, tracking: Tracking) -> bool:
    """Apply one waybill's trace to its parcel (False: no parcel of this account has the waybill)."""
    from .shipping import exception_open

    if not tracking.waybill_no:
        return False
    with transaction.atomic():
        parcel = Parcel.objects.select_for_update().filter(account=account, waybill_no=tracking.waybill_no).first()
        if parcel is None:
            return False
        TrackingEvent.objects.bulk_create(
            [
                TrackingEvent(parcel=parcel, at=e.at, text=e.text[:500], location=e.location[:200], code=e.code[:32])
                for e in tracking.events
                if e.at is not None and e.text
            ],
            ignore_conflicts=True,
        )
        newest = _newest(tracking)
        stale = newest is not None and parcel.last_event_at is not None and newest < parcel.last_event_at
        fields: list[str] = []
        if newest is not None and not stale:
            parcel.last_event_at = newest
            fields.append("last_event_at")
        status = _STATUS_OF.get(tracking.state)
        if (
            status is not None
            and not stale
            and parcel.status not in (Parcel.Status.DELIVERED, Parcel.Status.PENDING, Parcel.Status.WAYBILL)
        ):
            parcel.track_state = tracking.state
            fields.append("track_state")
            if status != parcel.status:
                parcel.status = status
                fields.append("status")
                if status == Parcel.Status.DELIVERED:
                    parcel.delivered_at = newest or timezone.now()
                    fields.append("delivered_at")
        if fields:
            parcel.save(update_fields=fields)
        orders = list(Order.objects.filter(pk__in=ParcelOrder.objects.filter(parcel=parcel).values("order_id")))
        if parcel.status == Parcel.Status.DELIVERED:
            for order in orders:
                if order.status != OrderStatus.SHIPPED:
                    continue
                try:
                    with transaction.atomic():
                        order_transition(
                            order=order,
                            to=OrderStatus.DELIVERED,
                            actor=f"carrier {account.carrier}",
                            reason=f"{parcel.waybill_no} {tracking.carrier_state}".strip(),
                            allowed_from=(OrderStatus.SHIPPED,),
                        )
                except InvalidTransition:
                    continue
        elif parcel.status in (Parcel.Status.PROBLEM, Parcel.Status.RETURNED) and "status" in fields:
            last = tracking.events[-1].text if tracking.events else tracking.carrier_state
            for order in orders:
                exception_open(
                    order=order,
                    kind=ExceptionKind.CARRIER_REJECTED,
                    detail=_("the carrier reports: %(text)s") % {"text": last},
                    parcel=parcel,
                )
        transaction.on_commit(lambda: _tell_buyers(parcel, orders))
    return True


def trace_of(parcel: Parcel) -> dict[str, Any]:
    """A parcel's trace as the buyer's status page shows it (newest line first)."""
    lines = TrackingEvent.objects.filter(parcel=parcel).order_by("-at", "-id")[:50]
    return {
        "parcel": {
            "express": str(parcel.get_express_display()),
            "waybill_no": parcel.waybill_no,
            "state": parcel.track_state,
            "delivered_at": parcel.delivered_at.isoformat() if parcel.delivered_at else None,
        },
        "events": [{"at": e.at.isoformat(), "text": e.text, "location": e.location} for e in lines],
    }


def order_trace(order: Order) -> dict[str, Any] | None:
    """``hooks.registry.order_trace_of``: the trace of the order's parcel, None before it has a waybill."""
    member = ParcelOrder.objects.filter(order_id=order.pk).select_related("parcel").first()
    if member is None or not member.parcel.waybill_no:
        return None
    return trace_of(member.parcel)


def trace_payload(parcel: Parcel, order: Order) -> dict[str, Any]:
    """The ``order.trace`` push to the order's status page."""
    return {"type": "order.trace", "version": order.version, "order": order.public_id, **trace_of(parcel)}


def _tell_buyers(parcel: Parcel, orders: list[Order]) -> None:
    """Push the new trace to the orders' status pages (their status may not have changed)."""
    from apps.core import events

    for order in orders:
        order.refresh_from_db(fields=["version"])
        try:
            events.publish(f"order.{order.public_id}", trace_payload(parcel, order))
        except Exception:  # noqa: BLE001 - the page catches up on its next load
            log.warning("trace push to the status page failed", exc_info=True)


def pushes_retry(*, limit: int = 500) -> int:
    """Apply again the pushes that failed for a reason of ours (a database hiccup): a carrier that
    got our failure answer may push again, but this does not wait for it."""
    done = 0
    for push in CarrierPush.objects.filter(outcome=CarrierPush.Outcome.FAILED).select_related("account")[:limit]:
        try:
            push_apply(push, push.account)
            done += 1
        except CarrierError:
            continue
    return done
