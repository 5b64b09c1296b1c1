"""The placement on any database Django supports (SQLite for the embedded default): one
``IMMEDIATE`` transaction of conditional statements, hot rows last, in the global lock order
(buyer limit, listing, stock, ledger head)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.catalog import window
from apps.catalog.models import Listing
from apps.catalog.selectors import ListingInfo
from apps.inventory import services as inventory
from apps.orders.models import Buyer, ListingBuyer, Order, OrderLine, OrderSignals, OrderStatus
from apps.orders.services.ledger import ledger_append

from ..request import OrderRequest
from .new_order import NewOrder
from .refusal import refusal


def place(info: ListingInfo, req: OrderRequest, new: NewOrder) -> tuple[Order, int]:
    qty = req.quantity
    with transaction.atomic():
        now = timezone.now()
        listing = Listing.objects.only("price", "per_buyer_limit", "payment_window_seconds").get(pk=info.id)
        unit_price = Decimal(listing.price)
        buyer = _buyer_upsert(info.merchant_id, req)
        order = Order.objects.create(
            merchant_id=info.merchant_id,
            public_id=new.public_id,
            session_id=info.session_id,
            listing_id=info.id,
            buyer=buyer,
            channel=new.channel,
            total=unit_price * qty,
            pay_by=now
            + timedelta(
                seconds=min(new.pay_window_seconds or listing.payment_window_seconds, listing.payment_window_seconds)
            ),
            shipping_address=req.address,
            idempotency_key=new.idempotency_key,
            request_hash=new.fingerprint,
        )
        line = OrderLine.objects.create(
            order=order,
            listing_id=info.id,
            sku_id=info.sku_id,
            quantity=qty,
            unit_price=unit_price,
            line_total=unit_price * qty,
        )
        # What the answer renders, without reading back what was just written.
        line.sku = info.sku()
        order._prefetched_objects_cache = {"lines": [line]}  # type: ignore[attr-defined]  # Django's prefetch cache
        if new.signals is not None:
            _signals_create(order, new.signals)
        inventory.stock_reserve_record(
            sku_id=info.sku_id, merchant_id=info.merchant_id, quantity=qty, reference=new.public_id
        )
        reason = f"placed via {new.channel}"
        seq = _hot_rows(info, order, buyer.pk, qty, listing.per_buyer_limit, now, new.actor, reason)
    return order, seq


def _pay_window(new: NewOrder, listing_window: int) -> int:
    """The listing's payment window, or the risk rules' shorter one."""
    return min(new.pay_window_seconds or listing_window, listing_window)


def _signals_create(order: Order, signals: dict) -> None:
    registered = signals.get("buyer_registered_at")
    received = signals.get("received_at")
    OrderSignals.objects.create(
        order=order,
        ip=signals.get("ip") or "",
        device_id=signals.get("device_id") or "",
        user_agent=signals.get("user_agent") or "",
        buyer_registered_at=datetime.fromisoformat(registered) if registered else None,
        received_at=datetime.fromisoformat(received) if received else None,
        rules=signals.get("rules") or {},
    )


def _buyer_upsert(merchant_id: int, req: OrderRequest) -> Buyer:
    return buyer_upsert(merchant_id, req.buyer_external_id, req.buyer_name, req.buyer_phone)


def buyer_upsert(merchant_id: int, external_id: str, name: str, phone: str) -> Buyer:
    """The buyer's id, created or refreshed in one statement (no read-then-insert race)."""
    table = Buyer._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {table} (merchant_id, external_id, name, phone, created_at) VALUES (%s, %s, %s, %s, %s) "
            f"ON CONFLICT (merchant_id, external_id) DO UPDATE SET "
            f"name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE {table}.name END, "
            f"phone = CASE WHEN excluded.phone <> '' THEN excluded.phone ELSE {table}.phone END "
            f"RETURNING id, name, phone",
            [merchant_id, external_id, name, phone, timezone.now()],
        )
        pk, name, phone = cur.fetchone()
    return Buyer(pk=pk, merchant_id=merchant_id, external_id=external_id, name=name, phone=phone)


def _listing_buyer_add(listing_id: int, buyer_id: int, quantity: int, limit: int) -> bool:
    """Upsert the buyer's units on the listing, only if they stay within the limit."""
    if quantity > limit:
        return False
    table = ListingBuyer._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {table} (listing_id, buyer_id, units) VALUES (%s, %s, %s) "
            f"ON CONFLICT (listing_id, buyer_id) DO UPDATE SET units = {table}.units + excluded.units "
            f"WHERE {table}.units + excluded.units <= %s RETURNING units",
            [listing_id, buyer_id, quantity, limit],
        )
        return cur.fetchone() is not None


def _hot_rows(
    info: ListingInfo, order: Order, buyer_id: int, qty: int, limit: int, now: datetime, actor: str, reason: str
) -> int:
    """Buyer limit, listing quota and window, stock, ledger: one conditional statement each."""
    if not _listing_buyer_add(info.id, buyer_id, qty, limit):
        raise refusal(info, now, step="buyer", limit=limit)
    updated = Listing.objects.filter(window.open_q(now), pk=info.id, sold__lte=F("quota") - qty).update(
        sold=F("sold") + qty, version=F("version") + 1
    )
    if updated != 1:
        raise refusal(info, now, step="listing", limit=limit)
    if not inventory.stock_reserve(sku_id=info.sku_id, quantity=qty):
        raise refusal(info, now, step="stock", limit=limit)
    event = ledger_append(
        order=order, from_status="", to_status=OrderStatus.PENDING_PAYMENT, actor=actor, reason=reason
    )
    return event.seq
