"""The back office's own records about an order: notes (备注) and its flag (旗帜). Neither
touches the order row (its status changes only through ``transitions``)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from apps.orders.errors import FlagInvalid, NoteInvalid
from apps.orders.models import NOTE_MAX_LENGTH, FlagColour, Order, OrderFlag, OrderNote


@transaction.atomic
def order_note_add(*, order: Order, author: Any, text: str) -> OrderNote:
    """Add a note to ``order``. Raises NoteInvalid (empty, or over NOTE_MAX_LENGTH)."""
    text = (text or "").strip()
    if not text:
        raise NoteInvalid(_("A note cannot be empty."), extra={"field": "text"})
    if len(text) > NOTE_MAX_LENGTH:
        raise NoteInvalid(
            _("A note is at most %(n)d characters.") % {"n": NOTE_MAX_LENGTH},
            extra={"field": "text", "max_length": NOTE_MAX_LENGTH},
        )
    return OrderNote.objects.create(merchant_id=order.merchant_id, order=order, author=author, text=text)


@transaction.atomic
def order_flag_set(*, order: Order, user: Any, colour: str) -> OrderFlag:
    """Set (or clear, with ``""``) the flag of ``order``; setting the same colour twice is one
    flag. Raises FlagInvalid for a colour not in FlagColour."""
    if colour not in FlagColour.values:
        raise FlagInvalid(_("Unknown flag colour."), extra={"field": "colour", "allowed": list(FlagColour.values)})
    flag, _created = OrderFlag.objects.update_or_create(
        order=order, defaults={"merchant_id": order.merchant_id, "colour": colour, "updated_by": user}
    )
    return flag
