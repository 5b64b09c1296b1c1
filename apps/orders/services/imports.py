"""``order_import``: an order a sales platform has already sold (Douyin, Kuaishou, Taobao), drawn
on the same stock as the storefront's orders.

A line sold on a listing that is on air for that platform reserves through the same Redis gate
(``gate/lua/reserve.lua``) and the same conditional row updates (listing quota, then stock) as a
storefront order; a line with no such listing reserves the SKU's stock directly. The platform
has sold the units already, so an order is never refused for want of stock: a line the gate or
the rows cannot cover is written with ``reserved`` False (it holds nothing, so no unit is sold
twice) and reported back as short; the caller flags the order oversold for a person.

Idempotent on the idempotency key (``<platform>·<shop>·<platform order id>``): the same platform
order imported twice, concurrently or after a crash, is one order. The order starts as
``pending_payment`` without a payment deadline (the platform, not our expiry, decides when an
unpaid order ends); its payment is a transition the caller makes from the platform's word.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F

from apps.catalog.models import Listing
from apps.core.redis import get_client, is_redis_error
from apps.inventory import services as inventory
from apps.orders import events as notify
from apps.orders.models import RESERVING_STATUSES, Order, OrderLine, OrderSignals, OrderStatus
from apps.orders.placement.engines.generic import buyer_upsert
from apps.orders.placement.gate import scripts as gate
from apps.orders.placement.gate.keys import DRIFT_COUNTER, RECONCILE_DUE
from apps.orders.placement.gate.rebuild import gate_rebuild
from apps.orders.placement.links import new_public_id

from .ledger import ledger_append
from .transitions import order_lock, order_record_event

log = logging.getLogger(__name__)
PLATFORM_BUYER = "*"  # reserve.lua's buyer for a sales platform's order (no per-buyer limit; see PLATFORM_CHANNELS)


@dataclass(frozen=True)
class ImportLine:
    sku_id: int
    quantity: int
    unit_price: Decimal
    listing_id: int | None = None  # a listing on air for the platform: its quota; None: the SKU's stock
    # The listing the order is filed under, when ``listing_id`` is a platform's channel pool (its
    # parent, the listing merchants see); None: ``listing_id`` itself.
    listed_as: int | None = None


@dataclass(frozen=True)
class ImportedOrder:
    merchant_id: int
    channel: str  # "douyin" | "kuaishou" | "taobao"
    key: str  # the idempotency key: "<platform>·<shop>·<platform order id>" (never an API client's)
    buyer_external_id: str  # namespaced by platform ("douyin:<open id>")
    buyer_name: str
    buyer_phone: str
    shipping_address: dict
    lines: tuple[ImportLine, ...]
    total: Decimal
    session_id: int | None = None


@dataclass
class ImportResult:
    order: Order
    created: bool
    short: list[int] = field(default_factory=list)  # indexes of the lines that hold no stock


class _Short(Exception):  # noqa: N818 - rolls back one line's savepoint
    pass


def order_import(*, imported: ImportedOrder) -> ImportResult:
    """Write the platform's order (see the module docstring). Raises ValueError on an order with
    no lines or a non-positive quantity (the caller's mapping is wrong)."""
    if not imported.lines or any(line.quantity < 1 for line in imported.lines):
        raise ValueError("an imported order needs lines with positive quantities")
    existing = Order.objects.filter(merchant_id=imported.merchant_id, idempotency_key=imported.key).first()
    if existing is not None:
        if existing.channel != imported.channel:  # never adopt an order another channel placed
            raise ValueError(f"the key {imported.key!r} belongs to a {existing.channel} order")
        return ImportResult(existing, created=False)
    public_id = new_public_id(merchant_id=imported.merchant_id, idempotency_key=imported.key)
    # One gate hold per listing (the hold id is the order's public id): lines on one listing merge.
    per_listing: dict[int, int] = {}
    for line in imported.lines:
        if line.listing_id is not None:
            per_listing[line.listing_id] = per_listing.get(line.listing_id, 0) + line.quantity
    bkey = PLATFORM_BUYER  # the gate applies no per-buyer limit: the platform has applied its own
    gate_said = {lid: _gate_hold(lid, public_id, bkey, qty) for lid, qty in per_listing.items()}
    try:
        order, short, seq, refused = _write(imported, public_id, gate_said)
    except IntegrityError:
        # A concurrent import of the same platform order won: its order is the one, and the holds
        # (the hold id is the order's public id, derived from the key) are its own.
        existing = Order.objects.filter(merchant_id=imported.merchant_id, idempotency_key=imported.key).first()
        if existing is None:
            _release_held(gate_said, public_id, set(gate_said))
            raise
        if existing.channel != imported.channel:
            raise ValueError(f"the key {imported.key!r} belongs to a {existing.channel} order") from None
        return ImportResult(existing, created=False)
    except BaseException:
        _release_held(gate_said, public_id, set(gate_said))
        raise
    _release_held(gate_said, public_id, refused, drift=True)
    return ImportResult(order, created=True, short=short)


def _write(
    imported: ImportedOrder, public_id: str, gate_said: dict[int, str]
) -> tuple[Order, list[int], int, set[int]]:
    short: list[int] = []
    refused: set[int] = set()  # listings with a line the rows did not cover: their holds go back
    with transaction.atomic():
        buyer = buyer_upsert(
            imported.merchant_id, imported.buyer_external_id, imported.buyer_name[:100], imported.buyer_phone[:32]
        )
        first_listing = next(
            (ln.listed_as or ln.listing_id for ln in imported.lines if ln.listing_id is not None), None
        )
        # A listing that closed since (the gate says so): the platform sold it all the same, so
        # its lines draw on the SKU's stock, like a line sold with no listing on air.
        lines = [
            replace(ln, listing_id=None)
            if ln.listing_id is not None and gate_said.get(ln.listing_id) == "closed"
            else ln
            for ln in imported.lines
        ]
        order = Order.objects.create(
            merchant_id=imported.merchant_id,
            public_id=public_id,
            session_id=imported.session_id,
            listing_id=first_listing,
            buyer=buyer,
            channel=imported.channel,
            total=imported.total,
            pay_by=None,
            shipping_address=imported.shipping_address,
            idempotency_key=imported.key,
        )
        for i, line in enumerate(lines):
            reserved = _reserve_line(line, gate_said, public_id, imported.merchant_id)
            if not reserved:
                short.append(i)
                if line.listing_id is not None:
                    refused.add(line.listing_id)
            OrderLine.objects.create(
                order=order,
                listing_id=line.listing_id if reserved else None,
                sku_id=line.sku_id,
                quantity=line.quantity,
                unit_price=line.unit_price,
                line_total=line.unit_price * line.quantity,
                reserved=reserved,
            )
        OrderSignals.objects.create(order=order, rules={})  # scored like any order; no client to describe
        event = ledger_append(
            order=order,
            from_status="",
            to_status=OrderStatus.PENDING_PAYMENT,
            actor=imported.channel,
            reason=f"imported from {imported.channel}"
            + (f" ({len(short)} line(s) not covered by stock)" if short else ""),
        )
        notify.order_changed_on_commit(order, listing_id=first_listing, seq=event.seq, created=True)
    refused |= {lid for lid, said in gate_said.items() if said == "closed"}
    return order, short, event.seq, refused


def _reserve_line(line: ImportLine, gate_said: dict[int, str], public_id: str, merchant_id: int) -> bool:
    """Reserve one line in a savepoint: the listing's quota (when the gate held it or cannot
    tell) and the SKU's stock, or nothing at all."""
    if line.listing_id is not None and gate_said.get(line.listing_id) not in ("held", "replay", "no_gate"):
        return False  # the gate said sold out (or closed): the rows are not asked
    try:
        with transaction.atomic():
            if line.listing_id is not None:
                updated = Listing.objects.filter(pk=line.listing_id, sold__lte=F("quota") - line.quantity).update(
                    sold=F("sold") + line.quantity, version=F("version") + 1
                )
                if updated != 1:
                    raise _Short
            inventory.stock_reserve_record(
                sku_id=line.sku_id, merchant_id=merchant_id, quantity=line.quantity, reference=public_id
            )
            if not inventory.stock_reserve(sku_id=line.sku_id, quantity=line.quantity):
                raise _Short
    except _Short:
        return False
    return True


def _gate_hold(listing_id: int, public_id: str, bkey: str, quantity: int) -> str:
    """``held``, ``replay`` (this hold id holds units already: an earlier try of this import),
    ``refused`` (sold out), ``closed`` (the listing closed since) or ``no_gate`` (Redis cannot tell: the rows
    decide alone). Only a ``held`` hold is this call's to give back."""
    try:
        remember = True
        for _attempt in range(3):
            result = gate.gate_reserve(
                listing_id,
                hold_id=public_id,
                buyer=bkey,
                quantity=quantity,
                now_ms=int(time.time() * 1000),
                remember=remember,
            )
            if result.status == gate.OK:
                return "replay" if result.replay else "held"
            if result.status == gate.SEEN:  # an earlier try of this import held and released
                remember = False
                continue
            if result.status == gate.CLOSED:
                return "closed"
            if result.status in (gate.SOLD_OUT, gate.OVER_LIMIT):
                return "refused"
            gate_rebuild(listing_id)
        return "no_gate"
    except Exception as exc:
        if is_redis_error(exc):
            log.warning("redis unavailable; the database decides", extra={"listing": listing_id})
            return "no_gate"
        raise


def _release_held(gate_said: dict[int, str], public_id: str, listings: set[int], *, drift: bool = False) -> None:
    """Give back the holds this import took on ``listings``; with ``drift``, the rows refused what
    the gate had let through (or covered only part of it): counted, and the listing queued for
    the reconciler, which re-adopts the holds of what the rows did cover."""
    for listing_id in listings:
        if gate_said.get(listing_id) != "held":
            continue
        if drift:
            try:
                client = get_client()
                client.incr(DRIFT_COUNTER)
                client.sadd(RECONCILE_DUE, listing_id)
            except Exception:  # noqa: BLE001 - a metric; Redis may be gone
                pass
        try:
            gate.gate_release(listing_id, hold_id=public_id)
        except Exception:  # noqa: BLE001 - the reconciler frees an orphaned hold
            log.warning("gate release failed", extra={"listing": listing_id, "order": public_id}, exc_info=True)


def order_lines_cover(*, order_id: int, actor: str) -> int:
    """Reserve the SKU stock of an imported order's lines that hold none (oversold when they
    arrived), under the order's row lock, as far as stock now allows: each covered line holds
    its units from then on (released on cancel, shipped with the order), and the cover is a
    ledger event. Returns how many lines still hold nothing. Orders no longer holding stock
    (cancelled, refunded, shipped) are left as they are."""
    with transaction.atomic():
        order = order_lock(pk=order_id)
        short = list(OrderLine.objects.filter(order=order, reserved=False).order_by("pk"))
        if not short or order.status not in RESERVING_STATUSES:
            return len(short)
        left = 0
        for line in short:
            try:
                with transaction.atomic():
                    inventory.stock_reserve_record(
                        sku_id=line.sku_id, merchant_id=order.merchant_id, quantity=line.quantity,
                        reference=order.public_id,
                    )  # fmt: skip
                    if not inventory.stock_reserve(sku_id=line.sku_id, quantity=line.quantity):
                        raise _Short
            except _Short:
                left += 1
                continue
            OrderLine.objects.filter(pk=line.pk).update(reserved=True)
        if left < len(short):
            order_record_event(order=order, actor=actor, reason=f"{len(short) - left} line(s) covered by stock")
    return left
