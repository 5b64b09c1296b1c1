"""Inbox processing: a stored message becomes a platform order's current state.

Every message, thin or not, is completed by the order's detail fetched through the shop's API
client (``order.orderDetail``, ``open.order.detail``, ``taobao.trade.fullinfo.get``): the detail is
the platform's *current* state, so repeated and out-of-order messages (paid before created, a retry,
cancel after ship) all converge on it. Under the ``PlatformOrder`` row lock, a detail older than
the newest one applied changes nothing; the first detail of an order imports it
(``orders.services.imports.order_import``: the same gate and rows as the storefront); later ones
move it along the state machine through ``order_transition`` (actor = the platform). A platform
that cancels or refunds an order ours cannot follow (it shipped here, or the transition was
refused) is reported through ``orders.hooks.order_attention`` for a person to decide (the
exception queue's ``platform_conflict``).

Network calls happen outside any database transaction. A message that fails (the platform
unreachable, an error answer) is retried by later passes with backoff (2^attempts seconds, at most
5 minutes) for at least ``MAX_ATTEMPTS`` tries and as long as it is younger than ``RETRY_WINDOW``
(a platform down for an hour loses nothing); it stays visible in admin with its error. When a
shop's API times out or is unavailable (a retryable platform error), the pass leaves that shop's
other messages for the same retry time, untouched (no attempt counted): one hanging platform
costs a pass one timeout, not one per message, and never holds up the other shops' messages.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import defaultdict, deque
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import close_old_connections, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext

from apps.catalog import window
from apps.catalog.models import SKU, Listing
from apps.core.redis import get_client
from apps.orders import hooks
from apps.orders.errors import InvalidTransition
from apps.orders.models import Order, OrderLine, OrderStatus
from apps.orders.services.imports import ImportedOrder, ImportLine, order_import, order_lines_cover
from apps.orders.services.state_machine import AFTER_SALES_STEPS, TRANSITIONS
from apps.orders.services.transitions import order_record_refunded, order_transition

from . import stock_sync
from .clients import client_for
from .intake import stored_event
from .models import InboxMessage, PlatformOrder, PlatformShop, ShopPlatform
from .protocol.aftersales import AfterSale, aftersale_of
from .protocol.base import CanonicalOrder, PlatformError
from .selectors import resolve_sku

log = logging.getLogger(__name__)
S = OrderStatus
MAX_ATTEMPTS = 8
RETRY_WINDOW = timedelta(days=1)
BACKOFF_MAX_S = 300
BATCH = 100
LEASE_KEY = "lc:platforms:burst"
BURST_SECONDS = 5.0

# What a platform's canonical status asks of our order (``order_advance``).
TARGETS: dict[str, str] = {
    "pending_payment": S.PENDING_PAYMENT,
    "paid": S.PAID,
    "shipped": S.SHIPPED,
    "delivered": S.DELIVERED,
    "completed": S.COMPLETED,
    "cancelled": S.CANCELLED,
    "refunded": S.REFUNDED,
}
ENDED_THERE = ("cancelled", "refunded")
"""Canonical platform statuses that end the sale (the platform refunds a buyer who paid)."""
ENDED_HERE = (S.CANCELLED, S.REFUND_PENDING, S.REFUNDED)


def process_message(pk: int) -> str:
    """Process one stored message; returns its new state."""
    return _process(pk)[0]


def _process(pk: int) -> tuple[str, datetime | None]:
    """Process one stored message: its new state, and when it is retried if it failed because
    its shop's API timed out or was unavailable (a retryable platform error; else None)."""
    msg = InboxMessage.objects.select_related("shop").filter(pk=pk).first()
    if msg is None or msg.state not in (InboxMessage.State.PENDING, InboxMessage.State.FAILED) or msg.shop is None:
        return (msg.state if msg else "gone"), None
    try:
        event = stored_event(msg)
        order_id = event.order_id
        if not order_id or event.kind in ("verification", "heartbeat"):
            return _finish(msg, InboxMessage.State.IGNORED), None
        sale = aftersale_of(event)
        with client_for(msg.shop) as client:
            detail = client.order_detail(order_id)
        if sale is None:
            apply_detail(msg.shop, detail)
        else:
            apply_aftersale(msg.shop, detail, sale)
    except PlatformError as exc:  # retryable: a timeout, a 5xx, a busy code (the shop's API, not this message)
        state, retry_at = _fail(msg, exc)
        return state, (retry_at if exc.retryable else None)
    except Exception as exc:  # noqa: BLE001 - one message never stops the others; it is retried
        log.warning("platform message failed", extra={"inbox_message": msg.pk}, exc_info=True)
        return _fail(msg, exc)[0], None
    return _finish(msg, InboxMessage.State.PROCESSED), None


def _finish(msg: InboxMessage, state: str) -> str:
    InboxMessage.objects.filter(pk=msg.pk).update(
        state=state, processed_at=timezone.now(), attempts=msg.attempts + 1, error=""
    )
    return state


def _fail(msg: InboxMessage, exc: Exception) -> tuple[str, datetime]:
    """Record a failed attempt; returns the state and the retry time (2^attempts seconds on)."""
    attempts = msg.attempts + 1
    retry_at = timezone.now() + timedelta(seconds=min(2**attempts, BACKOFF_MAX_S))
    InboxMessage.objects.filter(pk=msg.pk).update(
        state=InboxMessage.State.FAILED, attempts=attempts, next_attempt_at=retry_at,
        error=f"{type(exc).__name__}: {exc}"[:500],
    )  # fmt: skip
    if msg.shop_id is not None:
        PlatformShop.objects.filter(pk=msg.shop_id).update(last_error=str(exc)[:500], last_error_at=timezone.now())
    return InboxMessage.State.FAILED, retry_at


def _due(now: Any) -> Q:
    """Pending messages (unless left for later because their shop was failing), and failed ones
    whose backoff is over, for ``MAX_ATTEMPTS`` tries or ``RETRY_WINDOW`` after arrival, whichever
    is later."""
    waited = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    retried = Q(attempts__lt=MAX_ATTEMPTS) | Q(received_at__gt=now - RETRY_WINDOW)
    return (Q(state=InboxMessage.State.PENDING) & waited) | (Q(state=InboxMessage.State.FAILED) & waited & retried)


def process_pending(limit: int = BATCH, *, now: Any = None) -> int:
    """Process the messages due at ``now`` (default: now), oldest first. Returns how many were
    processed. After a shop's API timed out or was unavailable, its other messages in the batch
    are left until the failed one's retry time, untouched (see the module docstring)."""
    rows = list(
        InboxMessage.objects.filter(_due(now or timezone.now())).order_by("pk").values_list("pk", "shop_id")[:limit]
    )
    down: dict[int, Any] = {}  # shop id -> when its failed message is retried
    left: dict[int, list[int]] = defaultdict(list)
    done = 0
    for pk, shop_id in rows:
        if shop_id in down:
            left[shop_id].append(pk)
            continue
        state, retry_at = _process(pk)
        done += state == InboxMessage.State.PROCESSED
        if retry_at is not None and shop_id is not None:
            down[shop_id] = retry_at
    for shop_id, pks in left.items():
        InboxMessage.objects.filter(
            pk__in=pks, state__in=(InboxMessage.State.PENDING, InboxMessage.State.FAILED)
        ).filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=down[shop_id])).update(
            next_attempt_at=down[shop_id]
        )
    return done


def process_burst(seconds: float = BURST_SECONDS) -> int:
    """Process what is due for up to ``seconds``, one burst at a time (a Redis lease)."""
    token = secrets.token_hex(8)
    client = get_client()
    try:
        if not client.set(LEASE_KEY, token, nx=True, px=int((seconds + 30) * 1000)):
            return 0
    except Exception:  # noqa: BLE001 - without Redis, process anyway
        token = ""
    deadline = time.monotonic() + seconds
    total = 0
    try:
        while time.monotonic() < deadline:
            done = process_pending()
            total += done
            due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now())
            if not InboxMessage.objects.filter(due, state=InboxMessage.State.PENDING).exists():
                break
    finally:
        close_old_connections()
        if token:
            try:
                if client.get(LEASE_KEY) == token:
                    client.delete(LEASE_KEY)
            except Exception:  # noqa: BLE001
                pass
    return total


# --- applying an order's detail ------------------------------------------------------------------


def live_listing(*, merchant_id: int, sku_id: int, platform: str) -> Listing | None:
    """The listing of the SKU on air now in a show sold on ``platform``, if any (never a channel
    pool: see :func:`channel_pool`)."""
    now = timezone.now()
    for listing in (
        Listing.objects.filter(window.open_q(now), merchant_id=merchant_id, sku_id=sku_id, parent__isnull=True)
        .select_related("session")
        .order_by("-id")
    ):
        if platform in (listing.session.platforms or []):
            return listing
    return None


def channel_pool(listing: Listing, platform: str) -> Listing | None:
    """The listing's open channel pool for ``platform`` (its allocated units), if it has one:
    that platform's orders draw on it, not on the shared quota. One query, platform intake only."""
    return Listing.objects.filter(window.open_q(timezone.now()), parent_id=listing.pk, channel=platform).first()


def apply_detail(shop: PlatformShop, detail: CanonicalOrder) -> PlatformOrder:
    """Bring the platform order (and ours) to the detail's state (see the module docstring). The
    import runs in its own short transaction, outside the platform order's lock: the listing and
    stock rows are held only as long as a storefront order holds them (it is idempotent on the
    key, so two workers importing the same order make one)."""
    with transaction.atomic():
        po, _ = PlatformOrder.objects.get_or_create(
            shop=shop, external_id=detail.order_id, defaults={"platform": shop.platform}
        )
        po = PlatformOrder.objects.select_for_update().get(pk=po.pk)
        if po.event_at and detail.updated_at and detail.updated_at < po.event_at:
            return po  # an older state than the one applied: nothing to do
        needs_import = po.order_id is None and detail.status not in ("cancelled", "refunded")
    imported = _import(shop, detail) if needs_import else None
    with transaction.atomic():
        po = PlatformOrder.objects.select_for_update().get(pk=po.pk)
        if po.event_at and detail.updated_at and detail.updated_at < po.event_at:
            return po  # a newer state was applied meanwhile
        was = po.status
        po.status, po.platform_status = detail.status, str(detail.platform_status or "")[:40]
        po.event_at = detail.updated_at or po.event_at
        po.detail = detail.raw
        if imported is not None and po.order_id is None:
            _record_import(po, imported)
        if po.order_id is not None:
            refused = False
            try:
                order_advance(po.order_id, TARGETS.get(detail.status, ""), actor=shop.platform)
            except InvalidTransition as exc:  # e.g. shipped on the platform with a line not covered
                po.exception_detail = {**po.exception_detail, "transition": str(exc)}
                refused = True
            if detail.status in ENDED_THERE and (refused or was != detail.status):
                _report_conflict(shop, po.order_id, detail)
        po.save()
    return po


def apply_aftersale(shop: PlatformShop, detail: CanonicalOrder, sale: AfterSale) -> PlatformOrder:
    """A refund message: the after-sales step goes to our order's after-sales request
    (``hooks.registry.platform_aftersale``) *before* the order's detail is applied, so a refund the
    platform paid for an order that shipped here moves the order through after-sales
    (``shipped -> refund_pending -> refunded``) instead of reporting a conflict. An order not yet
    imported is imported by its detail first (a refund can be the first message we see of it)."""
    linked = (
        PlatformOrder.objects.filter(shop=shop, external_id=detail.order_id, order__isnull=False)
        .values_list("order_id", flat=True)
        .first()
    )
    if linked is None:
        po = apply_detail(shop, detail)
        if po.order_id is not None:
            _tell_aftersale(shop, detail, po.order_id, sale)
        return po
    _tell_aftersale(shop, detail, linked, sale)
    return apply_detail(shop, detail)


def _tell_aftersale(shop: PlatformShop, detail: CanonicalOrder, order_id: int, sale: AfterSale) -> None:
    """Tell the step, with the sub-order it names as our SKU and its units (``sku_id``, ``units``;
    None: the whole order)."""
    if hooks.registry.platform_aftersale is None:
        return
    sku_id, units = None, None
    line = next((line for line in detail.lines if sale.line_id and line.line_id == sale.line_id), None)
    if line is not None:
        sku = resolve_sku(
            shop, platform_sku_id=str(line.platform_sku_id or ""), merchant_sku_code=line.merchant_sku_code or ""
        )
        sku_id, units = (sku.pk, line.quantity) if sku is not None else (None, None)
    hooks.registry.platform_aftersale(
        order_id=order_id,
        platform=sale.platform,
        refund_id=sale.refund_id,
        phase=sale.phase,
        kind=sale.kind,
        amount=sale.amount,
        occurred_at=sale.occurred_at,
        platform_status=sale.platform_status,
        sku_id=sku_id,
        units=units,
        reason=sale.reason,
    )


def _report_conflict(shop: PlatformShop, order_id: int, detail: CanonicalOrder) -> None:
    """The platform ended the sale (cancelled, refunded) and our order did not follow: it shipped
    here (no way back in the state machine), or a change here won the race and the transition
    was refused. A person decides: ``hooks.order_attention`` (the exception queue's
    ``platform_conflict``), once per change of the platform's status."""
    order = Order.objects.filter(pk=order_id).only("pk", "merchant_id", "status", "public_id").first()
    if order is None or order.status in ENDED_HERE:
        return
    text = gettext("%(platform)s says %(status)s (platform status %(code)s); here the order is %(here)s") % {
        "platform": ShopPlatform(shop.platform).label,
        "status": S(TARGETS[detail.status]).label,
        "code": detail.platform_status or "?",
        "here": order.get_status_display(),
    }
    hooks.order_attention.send_robust(sender=None, order=order, kind=hooks.ATTENTION_PLATFORM_CONFLICT, detail=text)


def _import(shop: PlatformShop, detail: CanonicalOrder) -> dict[str, Any]:
    """Map the lines and import the order: ``{"unmapped": [...]}`` or ``{"result": ImportResult}``."""
    lines: list[ImportLine] = []
    unmapped: list[dict[str, Any]] = []
    session_id = None
    for line in detail.lines:
        sku: SKU | None = resolve_sku(
            shop, platform_sku_id=str(line.platform_sku_id or ""), merchant_sku_code=line.merchant_sku_code or ""
        )
        if sku is None:
            unmapped.append({"platform_sku_id": line.platform_sku_id, "code": line.merchant_sku_code})
            continue
        stock_sync.sku_link_seen(
            shop=shop,
            sku=sku,
            platform_item_id=str(line.platform_item_id or ""),
            platform_sku_id=str(line.platform_sku_id or ""),
            merchant_sku_code=line.merchant_sku_code or "",
        )
        listing = live_listing(merchant_id=shop.merchant_id, sku_id=sku.pk, platform=shop.platform)
        pool = channel_pool(listing, shop.platform) if listing is not None else None
        session_id = session_id or (listing.session_id if listing else None)
        lines.append(
            ImportLine(
                sku_id=sku.pk,
                quantity=line.quantity,
                unit_price=line.unit_price,
                # The line holds units of the listing it draws on (the platform's pool, if it
                # has one); the order is filed under the listing merchants see.
                listing_id=(pool or listing).pk if listing else None,
                listed_as=listing.pk if listing else None,
            )
        )
    if unmapped or not lines:
        return {"unmapped": unmapped}
    buyer = str(detail.buyer_id or detail.order_id)
    receiver = detail.receiver or {}
    result = order_import(
        imported=ImportedOrder(
            merchant_id=shop.merchant_id,
            channel=shop.platform,
            # "·" is not printable ASCII: no API client's Idempotency-Key can take a platform's key
            key=f"{shop.platform}·{shop.shop_id}·{detail.order_id}",
            buyer_external_id=f"{shop.platform}:{buyer}"[:100],
            buyer_name=str(receiver.get("name") or "")[:100],
            buyer_phone=str(receiver.get("phone") or receiver.get("mobile") or "")[:32],
            shipping_address=dict(receiver),
            lines=tuple(lines),
            total=Decimal(detail.total),
            session_id=session_id,
        )
    )
    return {"result": result}


def _record_import(po: PlatformOrder, imported: dict[str, Any]) -> None:
    if "unmapped" in imported:
        po.exception = PlatformOrder.Problem.UNMAPPED
        po.exception_detail = {"unmapped": imported["unmapped"]}
        return
    result = imported["result"]
    po.order = result.order
    # From the order's lines, not from this call's result: a concurrent worker may have imported
    # the order (this call then found it, with nothing short of its own to report).
    short = list(
        OrderLine.objects.filter(order_id=result.order.pk, reserved=False)
        .order_by("pk")
        .values_list("quantity", flat=True)
    )
    if short:
        po.exception = PlatformOrder.Problem.OVERSOLD
        po.oversold_units = sum(short)
        po.exception_detail = {"short_lines": len(short)}
    elif po.exception == PlatformOrder.Problem.UNMAPPED:  # mapped since: resolved by the import
        po.exception, po.resolved_at = "", timezone.now()


def order_advance(order_id: int, target: str, *, actor: str) -> None:
    """Move our order along the state machine to ``target`` (the platform's word), by the
    shortest path that does not stop at ``on_hold`` (the platform never holds). Nothing when
    it is there already or no path leads there (a platform's cancel after shipping)."""
    if not target:
        return
    row = Order.objects.filter(pk=order_id).values_list("status", "public_id").first()
    if row is None or row[0] == target:
        return
    current, public_id = row
    goal = target
    if target == S.CANCELLED and current not in (S.PENDING_PAYMENT, S.ON_HOLD):
        goal = S.REFUNDED  # cancelled after payment: the platform refunds the buyer
    path = _path(current, goal)
    for step in path:
        order_transition(public_id=public_id, to=step, actor=actor, reason=f"{actor}: {target}")
    if path and goal == S.REFUNDED:  # the platform ended a paid sale: it paid the buyer back
        order = Order.objects.get(pk=order_id)
        if order.refund_due > order.refunded:
            order_record_refunded(
                order=order, amount=order.refund_due - order.refunded, actor=actor, reason=f"{actor}: refunded there"
            )


def _path(current: str, goal: str) -> list[str]:
    seen = {current}
    queue: deque[tuple[str, list[str]]] = deque([(current, [])])
    while queue:
        status, path = queue.popleft()
        for nxt in sorted(TRANSITIONS.get(status, ())):
            if nxt in seen or nxt == S.ON_HOLD or (status, nxt) in AFTER_SALES_STEPS:
                continue
            if nxt == goal:
                return [*path, nxt]
            seen.add(nxt)
            queue.append((nxt, [*path, nxt]))
    return []


def platform_order_retry(po: PlatformOrder) -> PlatformOrder:
    """What the exception queue's "retry" does: cover an oversold order's short lines from stock
    as far as it now allows, then fetch the order's detail again and apply it (imports an order
    whose SKU was mapped since)."""
    shop = PlatformShop.objects.get(pk=po.shop_id)
    order_id = po.order_id
    if po.exception == PlatformOrder.Problem.OVERSOLD and order_id is not None:
        left = order_lines_cover(order_id=order_id, actor=shop.platform)
        with transaction.atomic():
            po = PlatformOrder.objects.select_for_update().get(pk=po.pk)
            po.oversold_units = (
                OrderLine.objects.filter(order_id=order_id, reserved=False).aggregate(n=Sum("quantity"))["n"] or 0
            )
            if not left:
                po.exception, po.resolved_at = "", timezone.now()
            po.save()
    with client_for(shop) as client:
        detail = client.order_detail(po.external_id)
    return apply_detail(shop, detail)
