"""Which event types a merchant's active endpoints want, cached so that an order change of a
merchant without endpoints costs no query and, most of the time, no Redis round trip.

Cached by ``apps.core.merchant_cache`` (``lc:webhooks:subs:<merchant>``). Saving or deleting an
endpoint invalidates it after commit.
"""

from __future__ import annotations

from apps.core.merchant_cache import MerchantSetCache


def _from_db(merchant_id: int) -> frozenset[str]:
    from .models import WebhookEndpoint

    types: set[str] = set()
    for events in WebhookEndpoint.objects.filter(merchant_id=merchant_id, is_active=True).values_list(
        "events", flat=True
    ):
        types.update(events or [])
    return frozenset(types)


_cache = MerchantSetCache("lc:webhooks:subs", _from_db, "webhook subscription")
subscribed_types = _cache.get
invalidate = _cache.invalidate
clear_local = _cache.clear_local


def wants(merchant_id: int, event_type: str) -> bool:
    return event_type in subscribed_types(merchant_id)
