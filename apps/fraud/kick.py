"""Asking for a scoring burst after an order commits (``scoring.score_burst`` does the work).
Light on purpose: the web workers call it for every order and must not load the model."""

from __future__ import annotations

import logging
import time
from secrets import token_hex

from django.conf import settings
from django_q.tasks import async_task

from apps.core.redis import get_client

log = logging.getLogger(__name__)
KICK_EVERY_S = 0.5
KICK_KEY = "lc:risk:kick"


_last_kick = 0.0


def kick(*, force: bool = False) -> None:
    """Ask for a scoring burst soon (after an order committed): at most one queued per second
    across processes, and this process asks Redis at most every ``KICK_EVERY_S``. Best effort: the
    minute schedule scores whatever a lost kick left."""
    global _last_kick
    if not settings.FRAUD_SCORE_ON_COMMIT:
        return
    now = time.monotonic()
    if not force and now - _last_kick < KICK_EVERY_S:
        return
    _last_kick = now
    try:
        if force or get_client().set(KICK_KEY, "1", nx=True, px=1000):
            async_task("apps.fraud.scoring.score_burst", q_options={"task_name": f"risk scoring {token_hex(4)}"})
    except Exception:  # noqa: BLE001 - the minute schedule catches up
        log.warning("risk scoring not queued; the schedule will score", exc_info=True)
