"""Which event types a merchant's active endpoints want, cached so that an order change of a
merchant without endpoints costs no query and, most of the time, no Redis round trip.

Per process: ``LOCAL_SECONDS``. Then Redis (``lc:webhooks:subs:<merchant>``, ``REDIS_SECONDS``),
then the database. Saving or deleting an endpoint drops both after commit (this process at once,
the Redis copy for every process; other processes' local copies within ``LOCAL_SECONDS``).
Redis may vanish: its copy is rebuilt from the database.
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
    return f"lc:webhooks:subs:{merchant_id}"


def _from_db(merchant_id: int) -> frozenset[str]:
    from .models import WebhookEndpoint

    types: set[str] = set()
    for events in WebhookEndpoint.objects.filter(merchant_id=merchant_id, is_active=True).values_list(
        "events", flat=True
    ):
        types.update(events or [])
    return frozenset(types)


def subscribed_types(merchant_id: int) -> frozenset[str]:
    now = time.monotonic()
    hit = _local.get(merchant_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    types: frozenset[str] | None = None
    try:
        raw = get_client().get(_key(merchant_id))
        if raw is not None:
            types = frozenset(json.loads(raw))
    except Exception:  # noqa: BLE001 - Redis may vanish; the database knows
        log.warning("webhook subscription cache unavailable", exc_info=True)
    if types is None:
        types = _from_db(merchant_id)
        try:
            get_client().set(_key(merchant_id), json.dumps(sorted(types)), ex=REDIS_SECONDS)
        except Exception:  # noqa: BLE001
            pass
    with _lock:
        _local[merchant_id] = (now + LOCAL_SECONDS, types)
    return types


def wants(merchant_id: int, event_type: str) -> bool:
    return event_type in subscribed_types(merchant_id)


def invalidate(merchant_id: int) -> None:
    with _lock:
        _local.pop(merchant_id, None)
    try:
        get_client().delete(_key(merchant_id))
    except Exception:  # noqa: BLE001 - its copy expires within REDIS_SECONDS
        log.warning("webhook subscription cache not invalidated", exc_info=True)


def clear_local() -> None:
    """Tests reuse merchant ids across rolled-back transactions; production never does."""
    with _lock:
        _local.clear()
