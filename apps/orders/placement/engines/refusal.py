"""How the database's refusals are answered (shared by the engines)."""

from __future__ import annotations

from datetime import datetime

from apps.catalog import window
from apps.catalog.models import Listing
from apps.catalog.selectors import ListingInfo
from apps.core.errors import ApplicationError
from apps.orders.errors import ListingClosed, OverBuyerLimit, SoldOut


class Refused(Exception):  # noqa: N818 - a control-flow signal carrying the refusal
    """The database refused what the gate had allowed; ``error`` is the answer to give."""

    def __init__(self, error: ApplicationError) -> None:
        super().__init__(error.code)
        self.error = error


def refusal(info: ListingInfo, now: datetime, *, step: str, limit: int) -> Refused:
    """The answer for a refused step: ``buyer`` (over the limit), ``listing`` (closed, or its
    quota is gone) or ``stock``."""
    if step == "buyer":
        return Refused(OverBuyerLimit(f"at most {limit} per buyer", extra={"listing": info.id, "limit": limit}))
    if step == "listing" and not Listing.objects.filter(window.open_q(now), pk=info.id).exists():
        return Refused(ListingClosed("this listing is not open", extra={"listing": info.id}))
    return Refused(SoldOut("sold out", extra={"listing": info.id}))
