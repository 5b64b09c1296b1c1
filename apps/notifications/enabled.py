"""Which events a merchant sends SMS for (an enabled account and an enabled template for each),
cached so that an order change of a merchant without SMS costs no query and, most of the time,
no Redis round trip (``order_changed`` is sent for every order placed).

Per process: ``LOCAL_SECONDS``. Then Redis (``lc:sms:events:<merchant>``, ``REDIS_SECONDS``),
then the database. Saving or deleting an account or a template drops both after commit (this
process at once, the Redis copy for every process; other processes' local copies within
``LOCAL_SECONDS``). Redis may vanish: its copy is rebuilt from the database.
"""

from __future__ import annotations

import json
import logging
import threading
import time

from apps.core.redis import get_client

log = logging.getLogger(__name__)
LOCAL_SECONDS = 2.0
REDIS_SECONDS = 300

_local: dict[int, tuple[float, frozenset[str]]] = {}
_lock = threading.Lock()


def _key(merchant_id: int) -> str:
    return f"lc:sms:events:{merchant_id}"


def _from_db(merchant_id: int) -> frozenset[str]:
    from .models import SmsAccount, SmsTemplate

    if not SmsAccount.objects.filter(merchant_id=merchant_id, enabled=True).exists():
        return frozenset()
    return frozenset(
        SmsTemplate.objects.filter(merchant_id=merchant_id, enabled=True)
        .exclude(template_code="")
        .values_list("event", flat=True)
    )


def enabled_events(merchant_id: int) -> frozenset[str]:
    now = time.monotonic()
    hit = _local.get(merchant_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    events: frozenset[str] | None = None
    try:
        raw = get_client().get(_key(merchant_id))
        if raw is not None:
            events = frozenset(json.loads(raw))
    except Exception:  # noqa: BLE001 - Redis may vanish; the database knows
        log.warning("sms settings cache unavailable", exc_info=True)
    if events is None:
        events = _from_db(merchant_id)
        try:
            get_client().set(_key(merchant_id), json.dumps(sorted(events)), ex=REDIS_SECONDS)
        except Exception:  # noqa: BLE001
            pass
    with _lock:
        _local[merchant_id] = (now + LOCAL_SECONDS, events)
    return events


def invalidate(merchant_id: int) -> None:
    with _lock:
        _local.pop(merchant_id, None)
    try:
        get_client().delete(_key(merchant_id))
    except Exception:  # noqa: BLE001 - its copy expires within REDIS_SECONDS
        log.warning("sms settings cache not invalidated", exc_info=True)


def clear_local() -> None:
    """Tests reuse merchant ids across rolled-back transactions; production never does."""
    with _lock:
        _local.clear()
