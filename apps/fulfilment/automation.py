"""The steps that need no person, run by the worker every minute (``tasks``):

- **auto-confirm**: a paid order is confirmed once the merchant's cooling window has passed since
  payment, unless risk control holds it or has not cleared it yet (``hooks.confirm_filter``);
- **auto-complete**: a delivered order completes the merchant's number of days after its parcel
  was delivered;
- **no movement**: a shipped parcel whose trace has not moved for the merchant's number of days
  goes to the exception queue.

Each is a query for what is due and a transition per order through the state machine with
``allowed_from``, so a run repeated (or two workers at once) moves nothing twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.orders import hooks
from apps.orders.errors import InvalidTransition
from apps.orders.models import Order, OrderStatus
from apps.orders.services.transitions import order_transition

from .models import ExceptionKind, FulfilmentException, FulfilmentSettings, Parcel, ParcelOrder, RefundRequest

log = logging.getLogger(__name__)

DEFAULTS = FulfilmentSettings()  # the model's defaults, for merchants who never changed them


def _settings_by_merchant(merchant_ids: set[int]) -> dict[int, FulfilmentSettings]:
    found = {s.merchant_id: s for s in FulfilmentSettings.objects.filter(merchant_id__in=merchant_ids)}
    return {m: found.get(m, DEFAULTS) for m in merchant_ids}


def _move(order: Order, *, to: str, allowed_from: str, actor: str, reason: str) -> bool:
    try:
        with transaction.atomic():
            order_transition(order=order, to=to, actor=actor, reason=reason, allowed_from=(allowed_from,))
        return True
    except InvalidTransition:
        return False  # it moved on meanwhile (cancelled, refunded, held)


def auto_confirm(*, now: datetime | None = None, limit: int = 5000) -> int:
    """Confirm the paid orders whose cooling window has passed (see the module docstring)."""
    now = now or timezone.now()
    paid = Order.objects.filter(status=OrderStatus.PAID, paid_at__isnull=False)
    merchants = set(paid.values_list("merchant_id", flat=True).distinct())
    done = 0
    for merchant_id, conf in _settings_by_merchant(merchants).items():
        if not conf.auto_confirm:
            continue
        due = paid.filter(merchant_id=merchant_id, paid_at__lte=now - timedelta(minutes=conf.confirm_after_minutes))
        if hooks.registry.confirm_filter is not None:
            due = hooks.registry.confirm_filter(due)
        for order in due.order_by("paid_at", "pk")[: limit - done]:
            done += _move(
                order,
                to=OrderStatus.CONFIRMED,
                allowed_from=OrderStatus.PAID,
                actor="auto-confirm",
                reason=f"{conf.confirm_after_minutes} min after payment",
            )
        if done >= limit:
            break
    return done


def auto_complete(*, now: datetime | None = None, limit: int = 5000) -> int:
    """Complete the delivered orders whose parcel was delivered long enough ago (not while an
    after-sales request of the order is open: it completes once that is settled)."""
    now = now or timezone.now()
    delivered = Order.objects.filter(status=OrderStatus.DELIVERED)
    merchants = set(delivered.values_list("merchant_id", flat=True).distinct())
    done = 0
    for merchant_id, conf in _settings_by_merchant(merchants).items():
        cutoff = now - timedelta(days=conf.complete_after_days)
        parcels = Parcel.objects.filter(
            merchant_id=merchant_id, status=Parcel.Status.DELIVERED, delivered_at__lte=cutoff
        )
        due = delivered.filter(
            merchant_id=merchant_id, pk__in=ParcelOrder.objects.filter(parcel__in=parcels).values("order_id")
        ).exclude(refund_requests__status__in=RefundRequest.OPEN)  # 售后中: not while a request is open
        for order in due.order_by("pk")[: limit - done]:
            done += _move(
                order,
                to=OrderStatus.COMPLETED,
                allowed_from=OrderStatus.DELIVERED,
                actor="auto-complete",
                reason=f"{conf.complete_after_days} days after delivery",
            )
        if done >= limit:
            break
    return done


def flag_stale_parcels(*, now: datetime | None = None, limit: int = 5000) -> int:
    """Open a ``no_movement`` exception for each order of a shipped parcel whose trace has not
    moved for the merchant's number of days (once: an open one is kept)."""
    from .shipping import exception_open

    now = now or timezone.now()
    shipped = Parcel.objects.filter(status=Parcel.Status.SHIPPED)
    merchants = set(shipped.values_list("merchant_id", flat=True).distinct())
    opened = 0
    for merchant_id, conf in _settings_by_merchant(merchants).items():
        cutoff = now - timedelta(days=conf.stale_after_days)
        stale = (
            shipped.filter(merchant_id=merchant_id)
            .annotate(moved=Coalesce("last_event_at", "shipped_at"))
            .filter(moved__lte=cutoff)
        )
        open_already = FulfilmentException.objects.filter(
            kind=ExceptionKind.NO_MOVEMENT, resolved_at__isnull=True
        ).values("order_id")
        members = ParcelOrder.objects.filter(parcel__in=stale).exclude(Q(order_id__in=open_already))
        for member in members.select_related("order", "parcel")[: limit - opened]:
            exception_open(
                order=member.order,
                kind=ExceptionKind.NO_MOVEMENT,
                parcel=member.parcel,
                detail=_("no tracking movement for %(days)d days (waybill %(waybill)s)")
                % {"days": conf.stale_after_days, "waybill": member.parcel.waybill_no},
            )
            opened += 1
    return opened
