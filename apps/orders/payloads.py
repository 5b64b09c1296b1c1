"""The JSON an order change is pushed as (websockets) and snapshotted as (the status page)."""

from __future__ import annotations

from typing import Any


def order_payload(order: Any, kind: str = "order.updated") -> dict[str, Any]:
    return {
        "type": kind,
        "version": order.version,
        "order": {
            "id": order.public_id,
            "status": order.status,
            "total": str(order.total),
            "pay_by": order.pay_by.isoformat() if order.pay_by else None,
            "paid_at": order.paid_at.isoformat() if order.paid_at else None,
            "cancel_reason": order.cancel_reason,
            "carrier": order.carrier,
            "tracking_number": order.tracking_number,
            "refund_due": str(order.refund_due),
            "refunded": str(order.refunded),
            "updated_at": order.updated_at.isoformat() if order.updated_at else None,
        },
    }
