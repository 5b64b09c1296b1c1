"""Row locks of fulfilment's writes (CONVENTIONS.md: fixed order, ``of=("self",)``)."""

from __future__ import annotations

from apps.merchants.models import Merchant


def lock_merchant_accounts(merchant_id: int) -> None:
    """Serialise changes to a merchant's carrier accounts (which one is the default) by locking
    the merchant's row: an account being added has no row of its own to lock yet."""
    list(Merchant.objects.select_for_update(of=("self",)).filter(pk=merchant_id).only("pk"))
