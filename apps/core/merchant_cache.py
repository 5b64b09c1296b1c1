"""A small set of strings per merchant that a hot path reads on every order (which webhook event
types a merchant's endpoints want, which events it sends SMS for), cached so that a merchant with
nothing configured costs no query and, most of the time, no Redis round trip.

Per process: ``LOCAL_SECONDS``. Then Redis (``<prefix>:<merchant>``, ``REDIS_SECONDS``), then the
database (the loader). ``invalidate`` drops both (this process at once, the Redis copy for every
process; other processes' local copies within ``LOCAL_SECONDS``). Redis may vanish: its copy is
rebuilt from the database.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from apps.core.redis import get_client

log = logging.getLogger(__name__)
LOCAL_SECONDS = 2.0
REDIS_SECONDS = 300


class MerchantSetCache:
    """``get(merchant_id)`` -> frozenset from ``load(merchant_id)``, cached as the module says."""

    def __init__(self, prefix: str, load: Callable[[int], frozenset[str]], what: str) -> None:
        self.prefix, self.load, self.what = prefix, load, what
        self._local: dict[int, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def key(self, merchant_id: int) -> str:
        return f"{self.prefix}:{merchant_id}"

    def get(self, merchant_id: int) -> frozenset[str]:
        now = time.monotonic()
        hit = self._local.get(merchant_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        values: frozenset[str] | None = None
        try:
            raw = get_client().get(self.key(merchant_id))
            if raw is not None:
                values = frozenset(json.loads(raw))
        except Exception:  # noqa: BLE001 - Redis may vanish; the database knows
            log.warning("%s cache unavailable", self.what, exc_info=True)
        if values is None:
            values = self.load(merchant_id)
            try:
                get_client().set(self.key(merchant_id), json.dumps(sorted(values)), ex=REDIS_SECONDS)
            except Exception:  # noqa: BLE001 - the next read rebuilds it
                pass
        with self._lock:
            self._local[merchant_id] = (now + LOCAL_SECONDS, values)
        return values

    def invalidate(self, merchant_id: int) -> None:
        with self._lock:
            self._local.pop(merchant_id, None)
        try:
            get_client().delete(self.key(merchant_id))
        except Exception:  # noqa: BLE001 - its copy expires within REDIS_SECONDS
            log.warning("%s cache not invalidated", self.what, exc_info=True)

    def clear_local(self) -> None:
        """Tests reuse merchant ids across rolled-back transactions; production never does."""
        with self._lock:
            self._local.clear()
