"""The one request handler for ``POST /api/v1/orders``: used by the DRF view (the documented
endpoint, through Django's stack) and by the ASGI fast path (``fastpath``), so the two answer
every input identically (``tests/orders/test_order_entry_parity.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apps.orders import selectors
from apps.orders.api.serializers import order_representation

from .request import OrderRequest, parse_idempotency_key, parse_order_request
from .service import Decided, order_place


def order_create_response(
    *,
    merchant_id: int,
    token_id: int,
    data: Any,
    idempotency_key: str | None,
    base_url: str,
    received_at: datetime | None = None,
) -> tuple[int, dict[str, Any]]:
    """Place an order and render the API answer (status, body). Raises ApplicationError for
    refusals (the caller renders them). ``received_at``: when the request reached the server
    (``apps.core.arrival``), kept among the order's risk signals."""
    req = parse_order_request(data, received_at)
    key = parse_idempotency_key(idempotency_key)
    return order_parsed_response(merchant_id=merchant_id, token_id=token_id, req=req, key=key, base_url=base_url)


def order_parsed_response(
    *,
    merchant_id: int,
    token_id: int,
    req: OrderRequest,
    key: str | None,
    base_url: str,
    decided: Decided | None = None,
) -> tuple[int, dict[str, Any]]:
    """``order_create_response`` for a request already parsed and validated (the event loop's,
    ``eventloop``), with what Redis already decided for it (``decided``, see ``order_place``)."""
    placed = order_place(
        req=req,
        merchant_id=merchant_id,
        idempotency_key=key,
        channel="api",
        actor=f"token:{token_id}",
        decided=decided,
    )
    order = placed.order
    if not placed.created:  # a replay: answer with the order as it is now
        order = selectors.order_for_merchant(merchant_id=merchant_id, public_id=order.public_id) or order
    body = order_representation(order, base_url=base_url, assessed=not placed.created)
    return (201 if placed.created else 200), body
