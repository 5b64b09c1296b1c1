"""What the back office's order page shows, readable at a glance: the ledger in words, the lines
with names and pictures, the postal address, and the actions valid in the order's state now.
The admin (``orders/admin.py``) renders it; nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from .exports import postal_line
from .models import Order, OrderEvent, OrderStatus
from .services.state_machine import can_transition

S = OrderStatus

# Channels as merchants name them (the platform's own name, or our API).
CHANNEL_LABELS: dict[str, Promise] = {
    "storefront": _("Live storefront"),
    "api": _("API"),
    "douyin": _("Douyin"),
    "kuaishou": _("Kuaishou"),
    "taobao": _("Taobao / Tmall"),
}

# What an event that moved an order to a status means, in words.
EVENT_TEXTS: dict[str, Promise] = {
    S.PENDING_PAYMENT: _("Buyer placed the order"),
    S.PAID: _("Paid"),
    S.ON_HOLD: _("Held for risk review"),
    S.CONFIRMED: _("Confirmed by the merchant"),
    S.SHIPPED: _("Shipped"),
    S.DELIVERED: _("Delivered"),
    S.COMPLETED: _("Completed"),
    S.CANCELLED: _("Cancelled"),
    S.REFUND_PENDING: _("Refund started"),
    S.REFUNDED: _("Refunded"),
}
# Reasons recorded by the system that say more than the status does.
REASON_TEXTS: dict[str, Promise] = {
    "payment deadline passed": _("Not paid in time, cancelled automatically"),
    "cancelled by buyer": _("Cancelled by the buyer"),
    "cancelled by merchant": _("Cancelled by the merchant"),
    "cancelled in admin": _("Cancelled by the merchant"),
    "confirmed in admin": _("Confirmed by the merchant"),
    "held for risk review": _("Held for risk review"),
    "risk review: approved": _("Approved in risk review"),
    "risk review: rejected": _("Rejected in risk review"),
}


def channel_label(channel: str) -> str:
    return str(CHANNEL_LABELS.get(channel, channel))


def event_text(event: OrderEvent) -> str:
    """One ledger event in words: "Buyer placed the order", "Not paid in time, cancelled
    automatically", "Refund owed recorded"..."""
    if event.reason in REASON_TEXTS:
        return str(REASON_TEXTS[event.reason])
    if event.from_status and event.from_status == event.to_status:
        return str(_("Amount to refund recorded"))
    return str(EVENT_TEXTS.get(event.to_status, event.to_status))


def actor_text(actor: str, staff_names: dict[int, str]) -> str:
    """Who did it: the buyer, the system, a named staff member, an API token, the payment
    provider, a sales platform."""
    kind, _sep, rest = actor.partition(":")
    if kind == "buyer":
        return str(_("Buyer"))
    if kind == "system":
        return str(_("System"))
    if kind == "payment":
        return str(_("Payment provider"))
    if kind == "risk":
        return str(_("Risk control"))
    if kind == "token":
        return str(_("API (token %(id)s)") % {"id": rest})
    if kind == "staff" and rest.isdigit():
        name = staff_names.get(int(rest))
        return str(_("Staff: %(name)s") % {"name": name}) if name else str(_("Staff"))
    return actor


def timeline(events: list[OrderEvent]) -> list[dict[str, Any]]:
    staff_ids = {
        int(e.actor.partition(":")[2])
        for e in events
        if e.actor.startswith("staff:") and e.actor.partition(":")[2].isdigit()
    }
    names = {u.pk: (u.get_full_name() or u.get_username()) for u in get_user_model().objects.filter(pk__in=staff_ids)}
    return [
        {
            "at": e.created_at,
            "text": event_text(e),
            "actor": actor_text(e.actor, names),
            "status": e.to_status,
            "reason": e.reason if e.reason not in REASON_TEXTS and not e.reason.startswith("placed via") else "",
        }
        for e in events
    ]


def line_rows(order: Order) -> list[dict[str, Any]]:
    rows = []
    for line in order.lines.all():
        sku = line.sku
        rows.append(
            {
                "product": sku.product.name,
                "code": sku.code,
                "name": sku.name,
                # Variants and pictures come with the catalog's SKU images and colour/size: read
                # them where the SKU has them, so this page works with and without them.
                "variant": getattr(sku, "variant", "") or "",
                "image_url": getattr(sku, "image_url", None) or "",
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "line_total": line.line_total,
            }
        )
    return rows


def address_block(order: Order) -> dict[str, str]:
    a = order.shipping_address or {}
    return {"name": str(a.get("name") or ""), "phone": str(a.get("phone") or ""), "line": postal_line(a)}


@dataclass(frozen=True)
class OrderAction:
    key: str  # the URL segment and the roles hook: ``has_<key>_permission``
    label: Promise
    style: str  # "primary" | "danger"
    confirm: Promise  # what the button asks before it posts


ACTIONS: tuple[OrderAction, ...] = (
    OrderAction("confirm", _("Confirm order"), "primary", _("Confirm this order for shipping?")),
    OrderAction("cancel", _("Cancel order"), "danger", _("Cancel this order? A paid order becomes a refund.")),
)
ACTIONS_BY_KEY = {a.key: a for a in ACTIONS}


def action_valid(key: str, status: str) -> bool:
    """Whether the action can be taken in ``status`` now (the state machine decides; the
    service checks again under the row lock). A held order (``on_hold``) is decided in the risk
    review (approve / reject), which records the decision and its training label."""
    if status == S.ON_HOLD:
        return False
    if key == "confirm":
        return can_transition(status, S.CONFIRMED)
    if key == "cancel":
        # order_cancel: unpaid or held -> cancelled; paid or confirmed -> refund pending.
        return status in (S.PAID, S.CONFIRMED) or can_transition(status, S.CANCELLED)
    return False
