"""Which events a merchant sends SMS for (an enabled account and an enabled template for each),
cached so that an order change of a merchant without SMS costs no query and, most of the time,
no Redis round trip (``order_changed`` is sent for every order placed).

Cached by ``apps.core.merchant_cache`` (``lc:sms:events:<merchant>``). Saving or deleting an
account or a template invalidates it after commit.
"""

from __future__ import annotations

from apps.core.merchant_cache import MerchantSetCache


def _from_db(merchant_id: int) -> frozenset[str]:
    from .models import SmsAccount, SmsTemplate

    if not SmsAccount.objects.filter(merchant_id=merchant_id, enabled=True).exists():
        return frozenset()
    return frozenset(
        SmsTemplate.objects.filter(merchant_id=merchant_id, enabled=True)
        .exclude(template_code="")
        .values_list("event", flat=True)
    )


_cache = MerchantSetCache("lc:sms:events", _from_db, "sms settings")
enabled_events = _cache.get
invalidate = _cache.invalidate
clear_local = _cache.clear_local
