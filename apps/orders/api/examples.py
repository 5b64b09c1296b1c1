"""Realistic examples for the schema: a flash-sale order as a streamer tool sends it, the order the
API answers, and a payment notification as the provider sends it. ``tests/core/test_openapi_contract.py``
POSTs them to the API (the create example answers 201, the notification 200) and holds each to the
schema and to the real answer's shape, so they cannot drift from what the API does."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample

ORDER_CREATE_BODY: dict[str, Any] = {
    "listing": 42,
    "quantity": 2,
    "buyer": {
        "external_id": "douyin-73920581",
        "name": "王小明",
        "phone": "13800001001",
        "registered_at": "2023-11-05T21:42:10+08:00",
    },
    "shipping_address": {
        "name": "王小明",
        "phone": "13800001001",
        "province": "浙江省",
        "city": "杭州市",
        "district": "西湖区",
        "detail": "文三路 100 号 3 幢 502 室",
    },
    "client": {
        "ip": "112.10.36.21",
        "device_id": "dy-did-5f0c8e2a91b34d7e",
        "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 aweme/29.1.0",
    },
}
IDEMPOTENCY_KEY = "douyin-73920581-42-20260618200301"

ORDER: dict[str, Any] = {
    "id": "o3f9c2a7d1e84b05c6a7d9e21",
    "status": "pending_payment",
    "listing": 42,
    "session": 7,
    "channel": "api",
    "platform": None,
    "buyer": {"external_id": "douyin-73920581", "name": "王小明", "phone": "13800001001"},
    "lines": [
        {
            "sku": "LIP-RED-01",
            "sku_name": "正红色 #999",
            "product_name": "丝绒哑光口红",
            "listing": 42,
            "quantity": 2,
            "unit_price": "89.00",
            "line_total": "178.00",
            "reserved": True,
        }
    ],
    "total": "178.00",
    "currency": "CNY",
    "pay_by": "2026-06-18T20:18:01+08:00",
    "paid_at": None,
    "status_url": "https://shop.example.com/o/o3f9c2a7d1e84b05c6a7d9e21/?t=1xYT6n:Dge0MNE4aR5Jjhyo54Jdi18Xpp0g74bmwU8x1kI-FdE",
    "shipping_address": ORDER_CREATE_BODY["shipping_address"],
    "cancel_reason": "",
    "refund_due": "0.00",
    "refunded": "0.00",
    "carrier": "",
    "tracking_number": "",
    "risk": None,
    "version": 1,
    "created_at": "2026-06-18T20:03:01.482113+08:00",
    "updated_at": "2026-06-18T20:03:01.482113+08:00",
}

PAID_ORDER: dict[str, Any] = {
    **ORDER,
    "status": "paid",
    "paid_at": "2026-06-18T20:04:12+08:00",
    "risk": {"score": 3.2, "decision": "allow", "reasons": []},
    "version": 2,
    "updated_at": "2026-06-18T20:04:12.907341+08:00",
}

PAYMENT_NOTIFY_BODY: dict[str, Any] = {
    "order": "o3f9c2a7d1e84b05c6a7d9e21",
    "transaction_id": "4200002601202606181234567890",
    "amount": "178.00",
    "paid_at": "2026-06-18T20:04:12+08:00",
}
PAYMENT_TIMESTAMP = "1781784252"
PAYMENT_SIGNATURE = "9b0e6f4c1d2a8e7f3b5c6d9a0e1f2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c"
PAYMENT_RESULT: dict[str, Any] = {
    "transaction_id": "4200002601202606181234567890",
    "order": "o3f9c2a7d1e84b05c6a7d9e21",
    "outcome": "applied",
    "order_status": "paid",
}

ORDER_CREATE_EXAMPLES = [
    OpenApiExample(
        "FlashSaleOrder",
        summary="Two units for a Douyin viewer, shipped to Hangzhou",
        value=ORDER_CREATE_BODY,
        request_only=True,
    ),
    OpenApiExample("Placed", summary="Placed: pay by `pay_by`", value=ORDER, response_only=True, status_codes=["201"]),
    OpenApiExample(
        "Replayed",
        summary="A retry with the same Idempotency-Key and body: the same order",
        value=ORDER,
        response_only=True,
        status_codes=["200"],
    ),
]
ORDER_EXAMPLES = [OpenApiExample("Paid", summary="A paid order", value=PAID_ORDER, response_only=True)]
PAYMENT_EXAMPLES = [
    OpenApiExample(
        "Payment",
        summary="The provider's notification (sign the exact bytes you send)",
        value=PAYMENT_NOTIFY_BODY,
        request_only=True,
    ),
    OpenApiExample("Applied", summary="Applied: the order is paid", value=PAYMENT_RESULT, response_only=True),
    OpenApiExample(
        "Late",
        summary="Paid after the order was cancelled: recorded, refund owed",
        value={**PAYMENT_RESULT, "outcome": "late", "order_status": "refund_pending"},
        response_only=True,
    ),
]
CHANGES_NEXT = "https://shop.example.com/api/v1/orders/changes?cursor=cD0yMDI2LTA2LTE4KzEyJTNBMDQlM0ExMi45MDczNDE%3D"
