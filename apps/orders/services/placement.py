"""Placing a flash-sale order: the Redis gate decides first, the database decides last.

1. Idempotency: a key seen before answers with its order (a Redis lookup, then the database).
2. The gate (Lua ``reserve``) holds units for the order's public id; ``sold_out``, ``closed`` and
   ``over_limit`` answer at once without touching the database; a missing key is rebuilt from the
   database under a lock; an unreachable Redis lets the database decide alone.
3. One transaction: buyer, order, line, stock movement, then the hot rows as late as possible
   (buyer limit upsert, listing quota, stock — each one conditional statement), the ledger last.
4. On failure the hold is released (idempotent) and a gate/database disagreement is counted.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core import signing
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.catalog.models import SKU, Listing
from apps.catalog.selectors import ListingInfo, listing_info
from apps.core.redis import get_client, is_redis_error
from apps.inventory import gate
from apps.inventory import services as inventory
from apps.orders import events as notify
from apps.orders.errors import (
    IdempotencyConflict,
    ListingClosed,
    ListingNotFound,
    OverBuyerLimit,
    SoldOut,
    Unavailable,
)
from apps.orders.models import Buyer, ListingBuyer, Order, OrderLine, OrderStatus
from apps.orders.validation import OrderRequest

from .gate_sync import buyer_key, gate_rebuild
from .ledger import content_digest, ledger_append

log = logging.getLogger(__name__)
STATUS_SALT = "livecommerce.order-status"
IDEM_TTL = 24 * 3600


@dataclass(frozen=True)
class Placement:
    order: Order
    created: bool


class _GateDisagreed(Exception):
    def __init__(self, error: Exception) -> None:
        self.error = error


# --- ids and links -------------------------------------------------------------------------------
def new_public_id(*, merchant_id: int, idempotency_key: str | None) -> str:
    """Unguessable; derived from the idempotency key when there is one so that concurrent
    duplicates share one gate hold."""
    if idempotency_key is None:
        return "o" + secrets.token_hex(12)
    mac = hmac.new(settings.SECRET_KEY.encode(), f"{merchant_id}:{idempotency_key}".encode(), hashlib.sha256)
    return "o" + mac.hexdigest()[:24]


def status_token(public_id: str) -> str:
    return signing.TimestampSigner(salt=STATUS_SALT).sign(public_id).split(":", 1)[1]


def check_status_token(public_id: str, token: str) -> bool:
    try:
        signing.TimestampSigner(salt=STATUS_SALT).unsign(
            f"{public_id}:{token}", max_age=settings.ORDER_STATUS_LINK_MAX_AGE
        )
        return True
    except signing.BadSignature:
        return False


def status_path(order: Order) -> str:
    return f"/o/{order.public_id}/?t={status_token(order.public_id)}"


def _idem_cache_key(merchant_id: int, key: str) -> str:
    return f"lc:idem:{merchant_id}:{hashlib.sha256(key.encode()).hexdigest()[:32]}"


# --- the service -----------------------------------------------------------------------------------
def order_place(
    *,
    req: OrderRequest,
    merchant_id: int | None,
    idempotency_key: str | None,
    channel: str = "api",
    actor: str = "buyer",
) -> Placement:
    """Place an order for one listing. ``merchant_id`` is the token's merchant (None for the
    public storefront). Raises ListingNotFound, SoldOut, OverBuyerLimit, ListingClosed,
    IdempotencyConflict. Opens no database transaction when the gate says no."""
    info = listing_info(req.listing_id)
    if info is None or (merchant_id is not None and info.merchant_id != merchant_id):
        raise ListingNotFound("no such listing", extra={"listing": req.listing_id})
    merchant_id = info.merchant_id
    fingerprint = req.fingerprint()
    if idempotency_key is not None:
        existing = _idempotent_replay(merchant_id, idempotency_key, fingerprint)
        if existing is not None:
            return Placement(existing, created=False)
    public_id = new_public_id(merchant_id=merchant_id, idempotency_key=idempotency_key)
    bkey = buyer_key(req.buyer_external_id)
    held = _gate_hold(info, public_id=public_id, buyer=bkey, quantity=req.quantity)
    try:
        order = _create_in_db(info, req, public_id, idempotency_key, fingerprint, channel, actor)
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key won; it owns the shared hold.
        if idempotency_key is None:
            _release(info.id, public_id, held)
            raise
        existing = _idempotent_replay(merchant_id, idempotency_key, fingerprint, use_cache=False)
        if existing is None:
            _release(info.id, public_id, held)
            raise
        return Placement(existing, created=False)
    except DatabaseError as exc:
        _release(info.id, public_id, held)
        log.warning("order transaction failed", extra={"listing": info.id}, exc_info=True)
        raise Unavailable("could not save the order; nothing was charged or held — please retry") from exc
    except _GateDisagreed as d:
        _release(info.id, public_id, held)
        if held:
            _count_drift(info.id, d.error)
        raise d.error from None
    except BaseException:
        _release(info.id, public_id, held)
        raise
    return Placement(order, created=True)


def _idempotent_replay(merchant_id: int, key: str, fingerprint: str, *, use_cache: bool = True) -> Order | None:
    if use_cache:
        try:
            cached = get_client().get(_idem_cache_key(merchant_id, key))
        except Exception:  # noqa: BLE001 - fall through to the database
            cached = "?"
        if cached is None:
            return None
    order = Order.objects.filter(merchant_id=merchant_id, idempotency_key=key).first()
    if order is None:
        return None
    if order.request_hash != fingerprint:
        raise IdempotencyConflict("this Idempotency-Key was used with a different request body")
    return order


def _gate_hold(info: ListingInfo, *, public_id: str, buyer: str, quantity: int) -> bool:
    """True when the gate holds units for this order; False when Redis is unreachable (the
    database decides alone). Raises the gate's refusal."""
    try:
        for _attempt in range(3):
            result = gate.gate_reserve(
                info.id, hold_id=public_id, buyer=buyer, quantity=quantity, now_ms=int(time.time() * 1000)
            )
            if result.status == gate.OK:
                return True
            if result.status == gate.SOLD_OUT:
                raise SoldOut("sold out", extra={"listing": info.id, "left": max(result.left, 0)})
            if result.status == gate.OVER_LIMIT:
                raise OverBuyerLimit(
                    f"at most {info.per_buyer_limit} per buyer",
                    extra={"listing": info.id, "limit": info.per_buyer_limit, "held": result.held},
                )
            if result.status == gate.CLOSED:
                raise ListingClosed("this listing is not open", extra={"listing": info.id})
            gate_rebuild(info.id)  # not_loaded: rebuild from the database, then try again
        log.warning("gate could not be loaded; the database decides", extra={"listing": info.id})
        return False
    except Exception as exc:
        if is_redis_error(exc):
            log.warning("redis unavailable; the database decides", extra={"listing": info.id})
            return False
        raise


def _release(listing_id: int, public_id: str, held: bool) -> None:
    if not held:
        return
    try:
        gate.gate_release(listing_id, hold_id=public_id)
    except Exception:  # noqa: BLE001 - the reconciler frees an orphaned hold
        log.warning("gate release failed", extra={"listing": listing_id, "order": public_id}, exc_info=True)


def _count_drift(listing_id: int, error: Exception) -> None:
    log.warning(
        "gate and database disagree; the database wins",
        extra={"listing": listing_id, "db_answer": getattr(error, "code", str(error))},
    )
    try:
        client = get_client()
        client.incr("lc:metrics:gate_drift")
        client.sadd("lc:reconcile:due", listing_id)
    except Exception:  # noqa: BLE001
        pass


def _buyer_upsert(merchant_id: int, req: OrderRequest) -> Buyer:
    """The buyer's id, created or refreshed in one statement (no read-then-insert race)."""
    table = Buyer._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {table} (merchant_id, external_id, name, phone, created_at) VALUES (%s, %s, %s, %s, %s) "
            f"ON CONFLICT (merchant_id, external_id) DO UPDATE SET "
            f"name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE {table}.name END, "
            f"phone = CASE WHEN excluded.phone <> '' THEN excluded.phone ELSE {table}.phone END "
            f"RETURNING id, name, phone",
            [merchant_id, req.buyer_external_id, req.buyer_name, req.buyer_phone, timezone.now()],
        )
        pk, name, phone = cur.fetchone()
    return Buyer(pk=pk, merchant_id=merchant_id, external_id=req.buyer_external_id, name=name, phone=phone)


def _listing_buyer_add(listing_id: int, buyer_id: int, quantity: int, limit: int) -> bool:
    """Upsert the buyer's units on the listing, only if they stay within the limit."""
    table = ListingBuyer._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {table} (listing_id, buyer_id, units) VALUES (%s, %s, %s) "  # noqa: S608 - table name
            f"ON CONFLICT (listing_id, buyer_id) DO UPDATE SET units = {table}.units + excluded.units "
            f"WHERE {table}.units + excluded.units <= %s RETURNING units",
            [listing_id, buyer_id, quantity, limit],
        )
        return cur.fetchone() is not None


def _create_in_db(
    info: ListingInfo,
    req: OrderRequest,
    public_id: str,
    idempotency_key: str | None,
    fingerprint: str,
    channel: str,
    actor: str,
) -> Order:
    qty = req.quantity
    with transaction.atomic():
        now = timezone.now()
        listing = Listing.objects.only("price", "per_buyer_limit", "payment_window_seconds").get(pk=info.id)
        unit_price = Decimal(listing.price)
        buyer = _buyer_upsert(info.merchant_id, req)
        order = Order.objects.create(
            merchant_id=info.merchant_id,
            public_id=public_id,
            session_id=info.session_id,
            listing_id=info.id,
            buyer=buyer,
            channel=channel,
            total=unit_price * qty,
            pay_by=now + timedelta(seconds=listing.payment_window_seconds),
            shipping_address=req.address,
            idempotency_key=idempotency_key,
            request_hash=fingerprint,
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
        line.sku = SKU(pk=info.sku_id, code=info.sku_code, merchant_id=info.merchant_id)
        order._prefetched_objects_cache = {"lines": [line]}
        inventory.stock_reserve_record(
            sku_id=info.sku_id, merchant_id=info.merchant_id, quantity=qty, reference=public_id
        )
        reason = f"placed via {channel}"
        if connection.vendor == "postgresql":
            seq = _hot_rows_one_statement(info, order, buyer.pk, qty, listing.per_buyer_limit, now, actor, reason)
        else:
            seq = _hot_rows(info, order, buyer.pk, qty, listing.per_buyer_limit, now, actor, reason)
        notify.order_changed_on_commit(order, listing_id=info.id, seq=seq)
        if idempotency_key is not None:
            key = _idem_cache_key(info.merchant_id, idempotency_key)
            transaction.on_commit(lambda: _remember_key(key, public_id))
    return order


def _window_open(now: datetime) -> Q:
    return (Q(closes_at__isnull=True) | Q(closes_at__gt=now)) & (
        Q(status=Listing.Status.OPEN, opens_at__isnull=True)
        | Q(status__in=(Listing.Status.OPEN, Listing.Status.SCHEDULED), opens_at__lte=now)
    )


def _refusal(info: ListingInfo, now: datetime, *, buyer_ok: bool, listing_ok: bool, limit: int) -> _GateDisagreed:
    if not buyer_ok:
        return _GateDisagreed(OverBuyerLimit(f"at most {limit} per buyer", extra={"listing": info.id, "limit": limit}))
    if not listing_ok and not Listing.objects.filter(_window_open(now), pk=info.id).exists():
        return _GateDisagreed(ListingClosed("this listing is not open", extra={"listing": info.id}))
    return _GateDisagreed(SoldOut("sold out", extra={"listing": info.id}))


def _hot_rows(
    info: ListingInfo, order: Order, buyer_id: int, qty: int, limit: int, now: datetime, actor: str, reason: str
) -> int:
    """Buyer limit, listing quota, stock, ledger: one conditional statement each (any engine)."""
    if not _listing_buyer_add(info.id, buyer_id, qty, limit):
        raise _refusal(info, now, buyer_ok=False, listing_ok=False, limit=limit)
    updated = Listing.objects.filter(_window_open(now), pk=info.id, sold__lte=F("quota") - qty).update(
        sold=F("sold") + qty, version=F("version") + 1
    )
    if updated != 1:
        raise _refusal(info, now, buyer_ok=True, listing_ok=False, limit=limit)
    if not inventory.stock_reserve(sku_id=info.sku_id, quantity=qty):
        raise _refusal(info, now, buyer_ok=True, listing_ok=True, limit=limit)
    event = ledger_append(
        order=order, from_status="", to_status=OrderStatus.PENDING_PAYMENT, actor=actor, reason=reason
    )
    return event.seq


# PostgreSQL: the four hot rows and the ledger event in ONE statement, so the row locks are held for
# one round trip plus the commit instead of six (a lock holder waiting for its client to send the
# next statement is what caps a hot SKU). Each step runs only if the one before it succeeded; the
# counts say which refused. The chain link uses the same formula as ledger.chain_hash.
_HOT_SQL = """
WITH b AS (
  INSERT INTO orders_listingbuyer (listing_id, buyer_id, units) VALUES (%(listing)s, %(buyer)s, %(qty)s)
  ON CONFLICT (listing_id, buyer_id) DO UPDATE SET units = orders_listingbuyer.units + excluded.units
  WHERE orders_listingbuyer.units + excluded.units <= %(limit)s
  RETURNING 1
), l AS (
  UPDATE catalog_listing SET sold = sold + %(qty)s, version = version + 1
  WHERE id = %(listing)s AND sold + %(qty)s <= quota
    AND (closes_at IS NULL OR closes_at > %(now)s)
    AND ((status = 'open' AND opens_at IS NULL) OR (status IN ('open', 'scheduled') AND opens_at <= %(now)s))
    AND EXISTS (SELECT 1 FROM b)
  RETURNING 1
), s AS (
  UPDATE inventory_stock SET reserved = reserved + %(qty)s
  WHERE sku_id = %(sku)s AND reserved + %(qty)s <= on_hand AND EXISTS (SELECT 1 FROM l)
  RETURNING 1
), p AS (
  SELECT merchant_id, seq, last_hash FROM orders_ledgerhead
  WHERE merchant_id = %(merchant)s AND EXISTS (SELECT 1 FROM s)
  FOR UPDATE
), h AS (
  UPDATE orders_ledgerhead AS lh SET seq = p.seq + 1,
    last_hash = encode(sha256(convert_to(p.last_hash || ':' || (p.seq + 1) || ':' || %(digest)s, 'UTF8')), 'hex')
  FROM p WHERE lh.merchant_id = p.merchant_id
  RETURNING lh.seq AS seq, p.last_hash AS prev, lh.last_hash AS hash
), e AS (
  INSERT INTO orders_orderevent
    (merchant_id, seq, order_id, from_status, to_status, actor, reason, created_at, prev_hash, hash)
  SELECT %(merchant)s, h.seq, %(order)s, '', %(to)s, %(actor)s, %(reason)s, %(now)s, h.prev, h.hash FROM h
  RETURNING seq
)
SELECT (SELECT count(*) FROM b), (SELECT count(*) FROM l), (SELECT count(*) FROM s), (SELECT seq FROM e)
"""


def _hot_rows_one_statement(
    info: ListingInfo, order: Order, buyer_id: int, qty: int, limit: int, now: datetime, actor: str, reason: str
) -> int:
    actor, reason = actor[:100], reason[:200]
    digest = content_digest(
        merchant_id=info.merchant_id,
        order_public_id=order.public_id,
        from_status="",
        to_status=OrderStatus.PENDING_PAYMENT,
        actor=actor,
        reason=reason,
        created_at=now,
    )
    params = {
        "listing": info.id,
        "buyer": buyer_id,
        "qty": qty,
        "limit": limit,
        "now": now,
        "sku": info.sku_id,
        "merchant": info.merchant_id,
        "digest": digest,
        "order": order.pk,
        "to": OrderStatus.PENDING_PAYMENT,
        "actor": actor,
        "reason": reason,
    }
    with connection.cursor() as cur:
        cur.execute(_HOT_SQL, params)
        buyer_ok, listing_ok, stock_ok, seq = cur.fetchone()
    if not (buyer_ok and listing_ok and stock_ok):
        raise _refusal(info, now, buyer_ok=bool(buyer_ok), listing_ok=bool(listing_ok), limit=limit)
    if seq is None:  # the merchant has no ledger head yet: append the slow way (creates it)
        seq = ledger_append(
            order=order, from_status="", to_status=OrderStatus.PENDING_PAYMENT, actor=actor, reason=reason
        ).seq
    return seq


def _remember_key(key: str, public_id: str) -> None:
    try:
        get_client().set(key, public_id, ex=IDEM_TTL)
    except Exception:  # noqa: BLE001 - the database still knows the key
        pass
