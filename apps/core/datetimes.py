"""The range of date-times the system takes in: years 2000 to 2099, in UTC.

Outside it a local time may not even be expressible (year 1 in Asia/Shanghai renders with the
+08:05:43 offset of local mean time, which is not RFC 3339; ``0001-01-01T00:00:00+14:00`` is a
date before the year 1 in UTC, and ``9999-12-31T23:59:59-23:59`` one after 9999), and the admin
and the API then fail on a stored value. Every date-time input (API fields, webhooks) is checked
with :func:`in_range`.
"""

from __future__ import annotations

from datetime import UTC, datetime

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive
RANGE_MESSAGE = "Date-time must be in the years 2000 to 2099 (UTC)."
DATE_RANGE_MESSAGE = "Date must be in the years 2000 to 2099."


def in_range(value: datetime) -> bool:
    """Whether an aware date-time lies in [EARLIEST, LATEST) once converted to UTC (a naive one
    is taken as UTC). Never raises, even for a value whose UTC form is outside year 1..9999."""
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError):
        return False
    return EARLIEST <= utc < LATEST
