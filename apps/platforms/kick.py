"""Asking for inbox processing after messages commit (``processing.process_burst`` does the work):
at most one task queued per second across processes; the minute schedule catches up."""

from __future__ import annotations

import logging
import time
from secrets import token_hex

from django.conf import settings
from django_q.tasks import async_task

from apps.core.redis import get_client

log = logging.getLogger(__name__)
KICK_EVERY_S = 0.2
KICK_KEY = "lc:platforms:kick"
_last_kick = 0.0


def kick_processing(*, force: bool = False) -> None:
    global _last_kick
    if not settings.PLATFORM_PROCESS_ON_COMMIT:
        return
    now = time.monotonic()
    if not force and now - _last_kick < KICK_EVERY_S:
        return
    _last_kick = now
    try:
        if force or get_client().set(KICK_KEY, "1", nx=True, px=500):
            async_task(
                "apps.platforms.processing.process_burst", q_options={"task_name": f"platform inbox {token_hex(4)}"}
            )
    except Exception:  # noqa: BLE001 - the minute schedule catches up
        log.warning("platform inbox processing not queued; the schedule will process", exc_info=True)
