"""Orders in any status, made the way production makes them: placed through the API, then moved
along the state machine by the transition service."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from apps.merchants.models import Merchant
from apps.orders.models import Order, OrderStatus
from apps.orders.services.transitions import order_transition
from tests.factories import make_listing, make_token, order_body

S = OrderStatus
PATHS: dict[str, list[str]] = {
    S.PENDING_PAYMENT: [],
    S.PAID: [S.PAID],
    S.ON_HOLD: [S.PAID, S.ON_HOLD],
    S.CONFIRMED: [S.PAID, S.CONFIRMED],
    S.SHIPPED: [S.PAID, S.CONFIRMED, S.SHIPPED],
    S.DELIVERED: [S.PAID, S.CONFIRMED, S.SHIPPED, S.DELIVERED],
    S.CANCELLED: [S.CANCELLED],
    S.REFUND_PENDING: [S.PAID, S.REFUND_PENDING],
    S.REFUNDED: [S.PAID, S.REFUND_PENDING, S.REFUNDED],
}


@pytest.fixture
def make_order(db) -> Callable[..., Order]:  # type: ignore[no-untyped-def]
    clients: dict[int, APIClient] = {}
    counter = iter(range(1, 10_000))

    def make(
        *,
        merchant: Merchant,
        status: str = S.PENDING_PAYMENT,
        buyer: str | None = None,
        body: dict | None = None,
        **listing_kw,
    ) -> Order:
        if merchant.pk not in clients:
            c = APIClient()
            c.credentials(HTTP_AUTHORIZATION=f"Token {make_token(merchant)}")
            clients[merchant.pk] = c
        listing = make_listing(merchant, quota=5, price=listing_kw.pop("price", "59.90"), **listing_kw)
        payload = body or order_body(listing.pk, buyer=buyer or f"u{next(counter):04d}")
        payload["listing"] = listing.pk
        r = clients[merchant.pk].post("/api/v1/orders", payload, format="json")
        assert r.status_code == 201, r.content
        order = Order.objects.get(public_id=r.json()["id"])
        for to in PATHS[status]:
            order = order_transition(order=order, to=to, actor="system", reason="测试")
        return order

    return make
