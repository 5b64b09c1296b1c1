"""SMS jobs (django-q2): the first attempt of each message, and the sweep every minute."""

from __future__ import annotations

from datetime import datetime

from . import services


def deliver(message_id: int, now: datetime | None = None) -> str:
    m = services.message_attempt(message_id=message_id, now=now)
    return "not due" if m is None else m.status


def retry_due_messages() -> int:
    """Every minute: messages the after-commit hook missed are recorded from the ledger, then
    every due message is sent."""
    services.messages_catch_up()
    return services.messages_retry_due()
