"""Stock from the merchant's own ERP/WMS: ``POST /api/v1/stock/sync`` (issue 10).

One request carries up to ``MAX_ITEMS`` SKUs by code, each with an absolute count (``on_hand``)
or a change (``delta``). The request's *shape* is all or nothing: a malformed body is a 400 and
changes nothing (``api/serializers.py``). Each SKU's *outcome* is its own:

- ``applied``: on hand moved (a stock movement with the sync id as its reference, quotas cut to
  fit a shrink, the gate and ``stock_changed`` after commit — ``services.stocks_adjust_locked``);
- ``unchanged``: it already had that count (or the delta was 0): nothing written, nothing sent;
- ``conflict``: the count would go below what live orders hold (``insufficient_stock``, with the
  reserved figure): that SKU is left as it was — never clamped — and the others still apply;
- ``error``: ``unknown_sku`` (no SKU with that code for this merchant: another merchant's code
  is unknown too) or ``stock_limit`` (a delta that would take on hand past ``MAX_UNITS``).

All of it is one transaction: the sync id is claimed first (``StockSync``, unique per merchant),
then the SKUs' active listings and stock rows are locked in the global order (``locks.py``) and
every delta is computed from the locked row, so an order landing meanwhile is never undone.
A retry with the same sync id and body answers the stored response and changes nothing; the same
sync id with another body is a 422 ``idempotency_key_reused``. A concurrent duplicate waits on
the claimed sync id and then answers the stored response.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from apps.catalog.models import MAX_UNITS
from apps.catalog.selectors import sku_list
from apps.core.errors import ApplicationError

from .errors import InsufficientStock, StockError
from .locks import stock_sync_lock
from .models import StockMovement, StockSync
from .services import LockedChange, stock_change_check, stocks_adjust_locked

log = logging.getLogger(__name__)

MAX_ITEMS = 1000
DEFAULT_REASON = "stock sync"

APPLIED, UNCHANGED, CONFLICT, ERROR = "applied", "unchanged", "conflict", "error"
STATUSES = (APPLIED, UNCHANGED, CONFLICT, ERROR)


class SyncIdReused(ApplicationError):
    """The same name and status as an order's reused ``Idempotency-Key``."""

    code = "idempotency_key_reused"
    http_status = 422


@dataclass(frozen=True)
class SyncItem:
    """One SKU of a sync: exactly one of ``on_hand`` (absolute) and ``delta`` is set."""

    sku: str
    on_hand: int | None = None
    delta: int | None = None


@dataclass(frozen=True)
class SyncRequest:
    sync_id: str
    items: tuple[SyncItem, ...]
    reason: str = DEFAULT_REASON

    def fingerprint(self) -> str:
        """What makes two requests the same sync: the items (in order) and the reason."""
        body = {"reason": self.reason, "items": [[i.sku, i.on_hand, i.delta] for i in self.items]}
        return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True)
class SyncOutcome:
    response: dict[str, Any]
    replayed: bool


def stock_sync(*, merchant_id: int, request: SyncRequest) -> SyncOutcome:
    """Apply an ERP's stock figures for the merchant, once per ``sync_id``.

    Opens its own transaction (call it outside one: a concurrent duplicate is told apart by the
    unique sync id, which needs the first one committed). Raises ``SyncIdReused`` (422) when the
    sync id was used with another body; every per-SKU outcome is in the response.
    """
    if not request.items or len(request.items) > MAX_ITEMS:
        raise StockError(f"a sync takes 1 to {MAX_ITEMS} items", extra={"field": "items"})
    fingerprint = request.fingerprint()
    stored = _stored(merchant_id, request.sync_id, fingerprint)
    if stored is not None:
        return SyncOutcome(stored, replayed=True)
    try:
        with transaction.atomic():
            # Claim the sync id first: a concurrent duplicate waits here (on PostgreSQL, on the
            # unique index; on SQLite, for the write lock) until this one commits, then replays.
            record = StockSync.objects.create(
                merchant_id=merchant_id, sync_id=request.sync_id, request_hash=fingerprint
            )
            response = _apply(merchant_id, request, created_at=record.created_at.isoformat())
            StockSync.objects.filter(pk=record.pk).update(response=json.dumps(response, ensure_ascii=False))
    except IntegrityError:
        stored = _stored(merchant_id, request.sync_id, fingerprint)
        if stored is None:
            raise
        return SyncOutcome(stored, replayed=True)
    summary = response["summary"]
    log.info("stock sync", extra={"merchant": merchant_id, "sync_id": request.sync_id, **summary})
    return SyncOutcome(response, replayed=False)


def _stored(merchant_id: int, sync_id: str, fingerprint: str) -> dict[str, Any] | None:
    row = StockSync.objects.filter(merchant_id=merchant_id, sync_id=sync_id).values("request_hash", "response").first()
    if row is None:
        return None
    if row["request_hash"] != fingerprint:
        raise SyncIdReused(_("this sync_id was used with a different request body"), extra={"sync_id": sync_id})
    response: dict[str, Any] = json.loads(row["response"])
    return response


def _apply(merchant_id: int, request: SyncRequest, *, created_at: str) -> dict[str, Any]:
    """Inside the sync's transaction: lock, decide and apply SKU by SKU, in the request's order."""
    skus = {sku.code: sku for sku in sku_list(merchant_id=merchant_id).filter(code__in={i.sku for i in request.items})}
    listings, stocks = stock_sync_lock(sorted(sku.pk for sku in skus.values()))
    results: list[dict[str, Any] | None] = []
    changes: list[tuple[int, str, int, LockedChange]] = []  # (index in results, code, before, change)
    for item in request.items:
        sku = skus.get(item.sku)
        stock = stocks.get(sku.pk) if sku is not None else None
        if sku is None or stock is None:
            results.append(_result(item.sku, ERROR, code="unknown_sku", message=_("no SKU with this code")))
            continue
        before = stock.on_hand
        delta = item.delta if item.delta is not None else (item.on_hand or 0) - before
        requested = before + delta
        if delta == 0:
            results.append(_result(item.sku, UNCHANGED, stock=stock, before=before, requested=requested))
            continue
        try:
            if requested < 0:  # a delta past zero; an absolute count is checked on input
                raise StockError("below zero", code="stock_limit")
            stock_change_check(stock, delta)
        except InsufficientStock:
            message = _("on hand cannot go below the %(reserved)d units live orders hold") % {
                "reserved": stock.reserved
            }
            results.append(
                _result(
                    item.sku,
                    CONFLICT,
                    stock=stock,
                    before=before,
                    requested=requested,
                    code=InsufficientStock.code,
                    message=message,
                )
            )
            continue
        except StockError:
            results.append(_limit_error(item.sku, stock, before, requested))
            continue
        kind = StockMovement.Kind.RECEIVE if delta > 0 else StockMovement.Kind.ADJUST
        changes.append(
            (len(results), item.sku, before, LockedChange(sku, listings.get(sku.pk, []), stock, delta, kind))
        )
        results.append(None)  # filled in once applied
    stocks_adjust_locked([c for *_, c in changes], reason=request.reason, reference=request.sync_id, source="sync")
    for index, code, before, change in changes:
        results[index] = _result(code, APPLIED, stock=change.stock, before=before, requested=before + change.delta)
    done = [r for r in results if r is not None]
    summary = {status: 0 for status in STATUSES}
    for r in done:
        summary[r["status"]] += 1
    return {"sync_id": request.sync_id, "created_at": created_at, "summary": summary, "results": done}


def _limit_error(sku: str, stock: Any, before: int, requested: int) -> dict[str, Any]:
    return _result(
        sku,
        ERROR,
        stock=stock,
        before=before,
        requested=requested,
        code="stock_limit",
        message=_("on hand must stay within 0 to %(max)d units") % {"max": MAX_UNITS},
    )


def _result(
    sku: str,
    status: str,
    *,
    stock: Any = None,
    before: int | None = None,
    requested: int | None = None,
    code: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    return {
        "sku": sku,
        "status": status,
        "on_hand": stock.on_hand if stock is not None else None,
        "reserved": stock.reserved if stock is not None else None,
        "available": stock.on_hand - stock.reserved if stock is not None else None,
        "previous_on_hand": before,
        "requested_on_hand": requested,
        "code": code,
        "message": message,
    }
