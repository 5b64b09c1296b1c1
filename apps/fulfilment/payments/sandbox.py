"""The demo's sandbox payments, told to the payment provider's local simulator (:mod:`.simulator`).

The sandbox pay button (``apps.orders.views.order_pay_sandbox``) marks an order paid with a made-up
transaction the provider never saw, so a refund of it would be refused (404
``transaction_not_found``). Before the payment is applied the button calls
``hooks.registry.sandbox_paid`` (registered in ``FulfilmentConfig.ready``), which registers the
transaction with the simulator at ``PAYMENT_PROVIDER_URL`` (``POST /_sim/transactions``): the demo's
refunds are then paid back and called back like real ones.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Final

import httpx
from django.conf import settings

from .protocol import format_amount

log = logging.getLogger(__name__)

REGISTER_PATH: Final = "/_sim/transactions"
REGISTER_TIMEOUT: Final = 1.0  # seconds: the buyer's pay button waits for it


def sandbox_payment_register(*, transaction_id: str, amount: Decimal) -> bool:
    """Register a sandbox payment with the simulator; whether it took it. Best-effort: a short
    timeout, and no failure raises (nothing configured, nothing listening, a real provider that has
    no such path): the payment goes on, and only that payment's refunds will be refused."""
    base = settings.PAYMENT_PROVIDER_URL
    if not base:
        return False
    try:
        answer = httpx.post(
            base.rstrip("/") + REGISTER_PATH,
            json={"transaction_id": transaction_id, "amount": format_amount(amount)},
            timeout=REGISTER_TIMEOUT,
        )
    except Exception as exc:  # noqa: BLE001 - a transport error, a bad URL or amount: never the payment's problem
        log.warning("sandbox payment %s not registered with %s: %s", transaction_id, base, exc)
        return False
    if not answer.is_success:
        log.warning("sandbox payment %s not registered with %s: HTTP %s", transaction_id, base, answer.status_code)
        return False
    return True
