"""The placement on PostgreSQL: ONE call of ``lc_place_order`` (``sql/lc_place_order.v2.sql``),
as a prepared statement in autocommit, so the server commits the moment it returns and the hot
row locks are never held while a busy client gets round to sending COMMIT. Orders waiting at the
same moment go together through the batcher (``lc_place_orders``, one commit per batch).

The function returns the rows it wrote; the order, its line and its buyer are built from them
(``model_from_row``), so a field added to a model reaches the answer without a change here.
"""

from __future__ import annotations

import functools
import json
from contextlib import nullcontext
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, IntegrityError, connection, models, transaction
from django.db.models.base import ModelState
from django.utils import timezone

from apps.catalog.models import Listing
from apps.catalog.selectors import ListingInfo
from apps.orders.errors import ListingNotFound
from apps.orders.models import Buyer, LedgerHead, Order, OrderLine, OrderStatus
from apps.orders.services.ledger import content_digest

from ..batcher import batcher_for
from ..pgcall import refused_step, run_prepared
from ..request import OrderRequest
from .new_order import NewOrder
from .refusal import refusal

PLACE_SQL = """
SELECT * FROM lc_place_order(
  %(listing)s::bigint, %(merchant)s::bigint, %(session)s::bigint, %(sku)s::bigint, %(qty)s::integer,
  %(ext)s::text, %(name)s::text, %(phone)s::text, %(now)s::timestamptz, %(public_id)s::text,
  %(channel)s::text, %(to)s::text, %(address)s::jsonb, %(idem)s::text, %(fingerprint)s::text,
  %(actor)s::text, %(reason)s::text, %(digest)s::text, %(pay_window)s::integer, %(signals)s::jsonb
)
"""
M = TypeVar("M", bound=models.Model)


def place_params(info: ListingInfo, req: OrderRequest, new: NewOrder) -> dict[str, Any]:
    """The arguments of ``lc_place_order`` for this order (the batcher's item), stamped now."""
    now = timezone.now()
    actor, reason = new.actor[:100], f"placed via {new.channel}"[:200]
    return {
        "listing": info.id,
        "merchant": info.merchant_id,
        "session": info.session_id,
        "sku": info.sku_id,
        "qty": req.quantity,
        "ext": req.buyer_external_id,
        "name": req.buyer_name,
        "phone": req.buyer_phone,
        "now": now,
        "public_id": new.public_id,
        "channel": new.channel,
        "to": OrderStatus.PENDING_PAYMENT,
        "address": req.address,
        "idem": new.idempotency_key,
        "fingerprint": new.fingerprint,
        "actor": actor,
        "reason": reason,
        "digest": content_digest(
            merchant_id=info.merchant_id,
            order_public_id=new.public_id,
            from_status="",
            to_status=OrderStatus.PENDING_PAYMENT,
            actor=actor,
            reason=reason,
            created_at=now,
        ),
        "pay_window": new.pay_window_seconds,
        "signals": new.signals,
    }


def place(info: ListingInfo, req: OrderRequest, new: NewOrder) -> tuple[Order, int]:
    params = place_params(info, req, new)
    now = params["now"]
    for attempt in (1, 2):
        try:
            if connection.in_atomic_block or not settings.ORDER_BATCHING:
                # Inside a caller's transaction a savepoint keeps a refusal from poisoning it.
                with transaction.atomic() if connection.in_atomic_block else nullcontext():
                    rows = run_prepared(
                        PLACE_SQL, {**params, "address": json.dumps(req.address), "signals": new.signals_json()}
                    )
                row = rows[0]
            else:
                row = batcher_for(info.id).place(params)
            break
        except IntegrityError:
            raise
        except DatabaseError as exc:
            step = refused_step(exc)
            if step is None:
                raise
            if step == "ledger" and attempt == 1:  # the merchant's first event: create the head
                LedgerHead.objects.get_or_create(merchant_id=info.merchant_id)
                continue
            if step == "no_listing":
                raise ListingNotFound("no such listing", extra={"listing": info.id}) from None
            limit = Listing.objects.filter(pk=info.id).values_list("per_buyer_limit", flat=True).first() or 0
            raise refusal(info, now, step=step, limit=limit) from None
    return order_from_row(row, info)


def order_from_row(row: tuple, info: ListingInfo) -> tuple[Order, int]:
    """The order (its buyer and its one line prefetched) and its ledger event's seq, from the row
    ``lc_place_order`` returned."""
    order_row, line_row, buyer_row, seq = row
    order = model_from_row(Order, order_row)
    order.buyer = model_from_row(Buyer, buyer_row)
    line = model_from_row(OrderLine, line_row)
    line.sku = info.sku()
    line.order = order
    order._prefetched_objects_cache = {"lines": [line]}  # type: ignore[attr-defined]  # Django's prefetch cache
    return order, seq


def model_from_row(model: type[M], row: dict[str, Any]) -> M:
    """An instance of ``model`` from a row the database returned as jsonb (``to_jsonb``): every
    concrete field, converted for its type. A column missing from the row is an error, never a
    silent default.

    What ``model.from_db`` builds, without ``Model.__init__``'s per-field work (signals, defaults,
    keyword handling): the three models placement builds have plain fields only, and
    ``tests/orders/test_accept_on_loop.py`` holds the two ways to the same instances."""
    attnames, columns = _layout(model)
    obj = model.__new__(model)
    state = obj._state = ModelState()
    state.adding, state.db = False, DEFAULT_DB_ALIAS  # the batcher's and every placement's database
    values = [None if (v := row[column]) is None else convert(v) for column, convert in columns]
    obj.__dict__.update(zip(attnames, values, strict=True))
    return obj


@functools.cache
def _layout(model: type[models.Model]) -> tuple[list[str], list[tuple[str, Any]]]:
    """The model's concrete fields as (column, converter): jsonb gives timestamps as ISO text,
    numerics as exact decimals (or ints), everything else in its Python type already."""
    columns: list[tuple[str, Any]] = []
    for f in model._meta.concrete_fields:
        convert: Any
        if isinstance(f, models.DateTimeField):
            convert = datetime.fromisoformat
        elif isinstance(f, models.DecimalField):
            convert = _decimal
        elif (
            isinstance(f, (models.JSONField, models.CharField, models.TextField, models.IntegerField)) or f.is_relation
        ):
            convert = _same
        else:
            convert = f.to_python
        columns.append((f.column or f.attname, convert))  # a concrete field always has its column
    return [f.attname for f in model._meta.concrete_fields], columns


def _same(value: Any) -> Any:
    return value


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(value)
