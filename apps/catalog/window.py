"""The one definition of "this listing is open" (its sale window).

A listing is open at ``now`` when it is not closed, its window has not ended (``closes_at`` is
unset or later than ``now``), and either it was opened with no start time or its start time has
come (``opens_at <= now``, whether it is still ``scheduled`` or already ``open``).

Every other form is derived from ``is_open`` and held to it by one table of cases
(``tests/catalog/test_window.py``): the ORM filter ``open_q`` and ``status_q`` (reads, the SQLite
placement engine), the gate's encoding ``gate_window`` (``reserve.lua`` compares it with the
clock), and the PostgreSQL function ``lc_listing_open`` (``apps/orders/placement/sql``).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q

OPEN, SCHEDULED, CLOSED = "open", "scheduled", "closed"

NOT_OPEN_MS = 9_000_000_000_000_000
"""The gate's ``opens`` for a listing that has not been opened (beyond any clock, exact in a double)."""


def is_open(*, status: str, opens_at: datetime | None, closes_at: datetime | None, now: datetime) -> bool:
    """The definition."""
    if status == CLOSED:
        return False
    if closes_at is not None and closes_at <= now:
        return False
    if opens_at is None:
        return status == OPEN
    return opens_at <= now


def effective_status(*, status: str, opens_at: datetime | None, closes_at: datetime | None, now: datetime) -> str:
    """``open`` inside the window, ``closed`` once it ended (or closed by hand), else ``scheduled``."""
    if is_open(status=status, opens_at=opens_at, closes_at=closes_at, now=now):
        return OPEN
    if status == CLOSED or (closes_at is not None and closes_at <= now):
        return CLOSED
    return SCHEDULED


def open_q(now: datetime) -> Q:
    """The rows for which ``is_open`` holds at ``now``."""
    return (
        ~Q(status=CLOSED)
        & (Q(closes_at__isnull=True) | Q(closes_at__gt=now))
        & (Q(opens_at__isnull=True, status=OPEN) | Q(opens_at__lte=now))
    )


def status_q(status: str, now: datetime) -> Q:
    """The rows whose ``effective_status`` at ``now`` is ``status``."""
    ended = Q(status=CLOSED) | Q(closes_at__lte=now)
    if status == CLOSED:
        return ended
    if status == OPEN:
        return open_q(now)
    return ~ended & ~open_q(now)


def gate_window(*, status: str, opens_at: datetime | None, closes_at: datetime | None) -> tuple[bool, int, int]:
    """``(closed, opens_ms, closes_ms)`` as the gate stores them; ``reserve.lua`` answers
    ``closed`` when ``closed`` or ``now < opens_ms`` or ``0 < closes_ms <= now``."""
    closed = status == CLOSED
    if opens_at is not None:
        opens = int(opens_at.timestamp() * 1000)
    else:
        opens = 0 if status == OPEN else NOT_OPEN_MS
    closes = int(closes_at.timestamp() * 1000) if closes_at is not None else 0
    return closed, opens, closes
