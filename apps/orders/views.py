"""Pages: the buyer's order status page, the live storefront, the merchant live dashboard.

Thin: each view reads through selectors, writes through one service (``order_place``,
``order_cancel``, ``payment_receive``) and renders; the live parts are pushed over the websockets
in ``consumers.py`` and drawn by the scripts in ``static/js``.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from apps.catalog import selectors as catalog_selectors
from apps.catalog.models import Listing, LiveSession
from apps.core.arrival import received_at
from apps.core.errors import ApplicationError
from apps.merchants import selectors as merchant_selectors

from . import hooks, selectors
from .errors import IdempotencyConflict, InvalidTransition, LedgerUnverifiable, ListingClosed, OverBuyerLimit, SoldOut
from .forms import BuyForm, idempotency_key_from, new_form_token
from .models import Order, OrderStatus
from .placement.links import STATUS_SALT, check_status_token, status_path
from .placement.service import order_place
from .services import payments
from .services.transitions import can_transition, order_cancel
from .storefront_client import client_signals, ensure_device_cookie

log = logging.getLogger(__name__)
S = OrderStatus
CANCEL_REASONS = {
    "changed_mind": gettext_noop("No longer needed"),
    "wrong_details": gettext_noop("Wrong address or details"),
    "found_cheaper": gettext_noop("Found it cheaper elsewhere"),
    "other": gettext_noop("Other reason"),
}
# Reasons are stored in English (the ledger is data); the buyer reads them in their language.
KNOWN_REASONS = (
    *CANCEL_REASONS.values(),
    gettext_noop("payment deadline passed"),
    gettext_noop("cancelled by buyer"),
    gettext_noop("cancelled by merchant"),
)


def reason_texts() -> dict[str, str]:
    return {r: _(r) for r in KNOWN_REASONS}


# --- shared bits -------------------------------------------------------------------------------------
def status_labels() -> dict[str, str]:
    return {
        S.PENDING_PAYMENT: _("Awaiting payment"),
        S.PAID: _("Paid"),
        S.ON_HOLD: _("Under review"),
        S.CONFIRMED: _("Confirmed"),
        S.SHIPPED: _("Shipped"),
        S.DELIVERED: _("Delivered"),
        S.COMPLETED: _("Completed"),
        S.CANCELLED: _("Cancelled"),
        S.REFUND_PENDING: _("Refund pending"),
        S.REFUNDED: _("Refunded"),
    }


def mask_phone(phone: str) -> str:
    digits = phone.strip()
    return f"{digits[:3]}****{digits[-4:]}" if len(digits) >= 8 else digits


def status_hints() -> dict[str, str]:
    return {
        S.PENDING_PAYMENT: _("Pay before the deadline, or the order is cancelled automatically."),
        S.PAID: _("Payment received. The shop is preparing your parcel."),
        S.ON_HOLD: _("Payment received. The order is being reviewed."),
        S.CONFIRMED: _("The shop confirmed your order and is packing it."),
        S.SHIPPED: _("Your parcel is on its way."),
        S.DELIVERED: _("Your parcel has been delivered."),
        S.COMPLETED: _("Order completed. Thank you for shopping with us!"),
        S.CANCELLED: _("This order was cancelled."),
        S.REFUND_PENDING: _("A refund is on its way to you."),
        S.REFUNDED: _("This order was refunded."),
    }


def problem(request: HttpRequest, *, status: int, title: str, message: str, hint: str = "") -> HttpResponse:
    response = render(
        request, "problem.html", {"title": title, "message": message, "hint": hint, "code": status}, status=status
    )
    response["Cache-Control"] = "no-store"
    return response


def sandbox_enabled() -> bool:
    return bool(settings.DEBUG or getattr(settings, "PAYMENT_SANDBOX", False))


def _link_state(public_id: str, token: str) -> str:
    """``ok``, ``expired`` or ``invalid``: only to word the refusal; the decision is
    ``check_status_token``'s."""
    if token and check_status_token(public_id, token):
        return "ok"
    try:
        signing.TimestampSigner(salt=STATUS_SALT).unsign(f"{public_id}:{token}", max_age=None)
        return "expired"
    except signing.BadSignature:
        return "invalid"


def _refuse_link(request: HttpRequest, state: str) -> HttpResponse:
    if state == "expired":
        return problem(
            request,
            status=403,
            title=_("This order link has expired"),
            message=_("For your privacy, order links stop working after a while."),
            hint=_("Open the latest link from your order message, or contact the shop."),
        )
    return problem(
        request,
        status=403,
        title=_("This order link is not valid"),
        message=_("The link is incomplete or was changed, so we cannot show this order."),
        hint=_("Check that you copied the whole link, or contact the shop."),
    )


def _order_for_link(request: HttpRequest, public_id: str, token: str) -> Order | HttpResponse:
    state = _link_state(public_id, token)
    if state != "ok":
        return _refuse_link(request, state)
    order = selectors.order_public(public_id=public_id)
    if order is None:
        return problem(
            request, status=404, title=_("Order not found"), message=_("This order does not exist or was removed.")
        )
    return order


def _back_to_status(public_id: str, token: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(f"/o/{public_id}/?{urlencode({'t': token})}", status=303)


# For the buyer's actions other apps serve on the status page (after-sales: ``apps.fulfilment``).
order_for_link = _order_for_link
back_to_status = _back_to_status


# --- buyer: order status page ------------------------------------------------------------------------
@never_cache
@require_http_methods(["GET", "HEAD"])
def order_status(request: HttpRequest, public_id: str) -> HttpResponse:
    token = request.GET.get("t", "")
    order = _order_for_link(request, public_id, token)
    if isinstance(order, HttpResponse):
        return order
    snapshot = selectors.order_snapshot(order=order)
    ledger_events, checkpoint = selectors.order_ledger(order=order)
    labels = status_labels()
    covered_to = checkpoint["seq"] if checkpoint else 0
    context = {
        "order": order,
        "snapshot": snapshot,
        "token": token,
        "labels": status_labels(),
        "label": status_labels().get(order.status, order.status),
        "timeline": [  # status changes only (a refund recorded, an amount owed: the ledger shows those)
            {"status": e.to_status, "label": status_labels().get(e.to_status, e.to_status), "at": e.created_at}
            for e in ledger_events
            if e.from_status != e.to_status
        ],
        "ledger": [
            {
                "at": e.created_at,
                "from": labels.get(e.from_status, e.from_status) if e.from_status else _("New order"),
                "to": labels.get(e.to_status, e.to_status),
                "same": e.from_status == e.to_status,
                "hash": e.hash[:12],
                "checkpointed": e.seq <= covered_to,
            }
            for e in ledger_events
        ],
        "ledger_pending": any(e.seq > covered_to for e in ledger_events),
        "checkpoint_at": parse_datetime(checkpoint["at"]) if checkpoint else None,
        "proof_url": f"/o/{order.public_id}/proof.json?{urlencode({'t': token})}",
        "items": snapshot["order"]["items"],
        "address": {
            **(order.shipping_address or {}),
            "phone": mask_phone((order.shipping_address or {}).get("phone", "")),
        },
        "hint": status_hints().get(order.status, ""),
        "cancel_reason": reason_texts().get(order.cancel_reason, order.cancel_reason),
        "aftersales": hooks.registry.order_aftersales_of(order) if hooks.registry.order_aftersales_of else None,
        "can_cancel": can_transition(order.status, S.CANCELLED) and order.status == S.PENDING_PAYMENT,
        "can_pay": sandbox_enabled() and order.status == S.PENDING_PAYMENT,
        "sandbox": sandbox_enabled(),
        "cancel_reasons": {k: _(v) for k, v in CANCEL_REASONS.items()},
        "ws_path": f"/ws/orders/{order.public_id}/?{urlencode({'t': token})}",
        "storefront": f"/live/{order.merchant.slug}/{order.session_id}/" if order.session_id else "",
        "page_data": {
            "snapshot": snapshot,
            "ws": f"/ws/orders/{order.public_id}/?{urlencode({'t': token})}",
            "labels": status_labels(),
            "hints": status_hints(),
            "reasons": reason_texts(),
            "tz": settings.TIME_ZONE,
            "text": {
                "left_to_pay": _("Pay within"),
                "expired": _("Payment time is up: this order will be cancelled."),
                "live": _("Live"),
                "reconnecting": _("Reconnecting…"),
                "offline": _("Updates stopped: this link is no longer valid. Reload the page."),
                # browser notifications (shown when the buyer allowed them)
                "notify_titles": {
                    S.PAID: _("Payment received"),
                    S.SHIPPED: _("Order shipped"),
                    S.DELIVERED: _("Order delivered"),
                },
                "notify_body": _("Order %(number)s") % {"number": order.public_id},
                "notify_on": _("Notifications on: this page tells you when your order is paid, shipped or delivered."),
                "notify_blocked": _("Notifications are blocked for this page in your browser's settings."),
            },
        },
    }
    response = render(request, "orders/status.html", context)
    response["Referrer-Policy"] = "same-origin"  # the link's token must not leak to other sites
    return response


@never_cache
@require_http_methods(["GET", "HEAD"])
def order_ledger_proof(request: HttpRequest, public_id: str) -> HttpResponse:
    """The order's ledger proof as a JSON download (same signed link as the status page); checked
    with ``python -m livecommerce.verify_proof``."""
    token = request.GET.get("t", "")
    order = _order_for_link(request, public_id, token)
    if isinstance(order, HttpResponse):
        return order
    try:
        proof = selectors.order_ledger_proof(order=order)
    except LedgerUnverifiable as exc:
        return JsonResponse(exc.as_dict(), status=exc.http_status)
    response = JsonResponse(proof, json_dumps_params={"indent": 2, "ensure_ascii": False})
    response["Content-Disposition"] = f'attachment; filename="order-{order.public_id}-ledger-proof.json"'
    response["Referrer-Policy"] = "same-origin"
    return response


@require_POST
def order_cancel_view(request: HttpRequest, public_id: str) -> HttpResponse:
    token = request.POST.get("t", "")
    order = _order_for_link(request, public_id, token)
    if isinstance(order, HttpResponse):
        return order
    code = request.POST.get("reason", "")
    reason = CANCEL_REASONS.get(code, CANCEL_REASONS["other"])
    try:
        order_cancel(order=order, actor="buyer", reason=reason, by_buyer=True)
        messages.success(request, _("Your order was cancelled."))
    except InvalidTransition:
        messages.error(request, _("This order can no longer be cancelled."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return _back_to_status(public_id, token)


@require_POST
def order_pay_sandbox(request: HttpRequest, public_id: str) -> HttpResponse:
    """The demo's pay button: a payment notification signed with the provider's secret, through
    exactly the path the provider's webhook takes (``payment_receive``)."""
    if not sandbox_enabled():
        return problem(request, status=404, title=_("Not available"), message=_("Sandbox payments are turned off."))
    token = request.POST.get("t", "")
    order = _order_for_link(request, public_id, token)
    if isinstance(order, HttpResponse):
        return order
    if order.status != S.PENDING_PAYMENT:
        messages.info(request, _("This order is not awaiting payment."))
        return _back_to_status(public_id, token)
    transaction_id = f"sandbox-{secrets.token_hex(10)}"
    _tell_sandbox_paid(transaction_id, order)
    body = json.dumps(
        {
            "order": order.public_id,
            "transaction_id": transaction_id,
            "amount": str(order.total),
            "paid_at": timezone.now().isoformat(),
        }
    ).encode()
    ts = str(int(time.time()))
    try:
        payments.payment_receive(body=body, timestamp=ts, signature=payments.sign(body, ts))
        messages.success(request, _("Payment received (sandbox)."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return _back_to_status(public_id, token)


def _tell_sandbox_paid(transaction_id: str, order: Order) -> None:
    """The provider (the local simulator) learns of the made-up payment first, as a real provider
    knows a payment before it notifies us: its refunds are then paid back, not refused as an
    unknown transaction. Never stops the payment."""
    if hooks.registry.sandbox_paid is None:
        return
    try:
        hooks.registry.sandbox_paid(transaction_id=transaction_id, amount=order.total)
    except Exception:  # noqa: BLE001 - best-effort: the payment goes on
        log.warning("sandbox payment not registered with the payment provider", exc_info=True)


# --- buyer: live storefront -------------------------------------------------------------------------
def _storefront_listing(listing: Listing) -> dict[str, Any]:
    line = selectors.listing_line(listing)
    line["tone"] = listing.pk % 6  # the product tile's colour
    line["sold_pct"] = min(100, round(100 * line["sold"] / line["quota"])) if line["quota"] else 100
    return line


ERROR_TEXT = {
    SoldOut.code: gettext_noop("Sold out: every unit of this item has been taken."),
    OverBuyerLimit.code: gettext_noop("You have reached the limit for this item."),
    ListingClosed.code: gettext_noop("This item is not on sale right now."),
    IdempotencyConflict.code: gettext_noop("This form was already used for another order. Please try again."),
    # The risk rules' refusal (apps/fraud): the reasons stay with the merchant, not the buyer.
    "risk_blocked": gettext_noop("We could not accept this order. Please contact the shop if you think this is wrong."),
}


def _error_message(exc: ApplicationError) -> str:
    if isinstance(exc, OverBuyerLimit) and exc.extra.get("limit"):
        return _("Limit %(limit)s per buyer: you have reached it for this item.") % {"limit": exc.extra["limit"]}
    text = ERROR_TEXT.get(exc.code)
    if text:
        return _(text)
    if exc.http_status >= 500:
        return _("We are very busy right now. Please try again in a moment.")
    return exc.message


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def storefront(request: HttpRequest, slug: str, session_id: int | None = None) -> HttpResponse:
    response = _storefront(request, slug, session_id)
    ensure_device_cookie(request, response)
    return response


def _storefront(request: HttpRequest, slug: str, session_id: int | None) -> HttpResponse:
    session = catalog_selectors.session_for_storefront(merchant_slug=slug, session_id=session_id)
    if session is None:
        merchant = merchant_selectors.merchant_by_slug(slug=slug)
        if merchant is None:
            return problem(
                request, status=404, title=_("Shop not found"), message=_("There is no shop at this address.")
            )
        return render(request, "orders/storefront_idle.html", {"merchant": merchant}, status=200)
    error: dict[str, str] | None = None
    status = 200
    selected = request.GET.get("listing", "")
    if request.method == "POST":
        form = BuyForm(request.POST)
        placed, error, status = _place(form, session, request)
        if placed is not None:
            return HttpResponseRedirect(status_path(placed), status=303)
        selected = request.POST.get("listing", "")
    else:
        form = BuyForm(initial={"quantity": 1})
    listings = [_storefront_listing(x) for x in catalog_selectors.session_listings(session_id=session.pk)]
    buyable = [str(x["id"]) for x in listings if x["status"] == "open" and x["available"] > 0]
    if str(selected) not in buyable:  # never preselect what cannot be bought
        selected = buyable[0] if buyable else ""
    context = {
        "merchant": session.merchant,
        "session": session,
        "listings": listings,
        "form": form,
        "error": error,
        "selected": str(selected),
        # A fresh token on every render: a failed try made no order, so the next is a new one.
        "form_token": new_form_token(),
        "live": session.status == LiveSession.Status.LIVE,
        "page_data": {
            "listings": listings,
            "tz": settings.TIME_ZONE,
            "text": {
                "left": _("%(n)s left"),
                "sold_out": _("Sold out"),
                "open": _("On sale"),
                "scheduled": _("Coming soon"),
                "closed": _("Ended"),
                "buy": _("Buy now"),
                "limit": _("Limit %(n)s per buyer"),
                "reconnecting": _("Reconnecting…"),
                "live": _("Live"),
            },
        },
    }
    return render(request, "orders/storefront.html", context, status=status)


def _place(
    form: BuyForm, session: LiveSession, request: HttpRequest
) -> tuple[Order | None, dict[str, str] | None, int]:
    """Place the order from the form; returns (order, None, 303) or (None, error, http status)."""
    key = idempotency_key_from(form.data.get("form_token", ""))
    if key is None:
        return None, {"code": "expired_form", "message": _("This page was open too long. Please submit again.")}, 400
    req = form.order_request(client=client_signals(request))
    if req is None:
        return None, {"code": "invalid", "message": _("Please check the highlighted fields.")}, 400
    req = replace(req, received_at=received_at(request))
    info = catalog_selectors.listing_info(req.listing_id)
    if info is None or info.session_id != session.pk:
        return None, {"code": "listing_not_found", "message": _("This item is not part of this show.")}, 404
    try:
        placed = order_place(req=req, merchant_id=None, idempotency_key=key, channel="storefront")
    except ApplicationError as exc:
        return None, {"code": exc.code, "message": _error_message(exc), "listing": str(req.listing_id)}, exc.http_status
    return placed.order, None, 303


# --- merchant: live dashboard ------------------------------------------------------------------------
def _staff_scope(request: HttpRequest) -> list[int] | None:
    return merchant_selectors.staff_scope(request.user)


@login_required
@never_cache
def dashboard_index(request: HttpRequest) -> HttpResponse:
    scope = _staff_scope(request)
    if scope == []:
        return problem(
            request,
            status=403,
            title=_("No shop for this login"),
            message=_("Your login is not staff of any shop, so there is no dashboard to show."),
        )
    shows = catalog_selectors.sessions_for_dashboard(merchant_ids=scope)
    exceptions = hooks.order_exception_counts(merchant_ids=scope)
    return render(request, "orders/dashboard_index.html", {"shows": shows, "exceptions": exceptions})


@login_required
@never_cache
def dashboard_session(request: HttpRequest, session_id: int) -> HttpResponse:
    scope = _staff_scope(request)
    session = catalog_selectors.session_scoped(session_id=session_id, merchant_ids=scope)
    if session is None:  # another merchant's show is as good as no show
        return problem(request, status=404, title=_("Show not found"), message=_("There is no such show in your shop."))
    snapshot = selectors.session_snapshot(session=session)
    context = {
        "session": session,
        "merchant": session.merchant,
        # the shop's whole queue (the admin filters it by kind and merchant, not by show)
        "exceptions": hooks.order_exception_counts(merchant_ids=scope, merchant_id=session.merchant_id),
        "page_data": {
            "snapshot": snapshot,
            "ws": f"/ws/sessions/{session.pk}/",
            "labels": status_labels(),
            "tz": settings.TIME_ZONE,
            "storefront": f"/live/{session.merchant.slug}/{session.pk}/",
            "text": {
                "reconnecting": _("Reconnecting…"),
                "live": _("Live"),
                "offline": _("Disconnected: log in again to keep watching."),
                "left": _("%(n)s left"),
                "sold_out": _("Sold out"),
                "no_orders": _("No orders yet: they appear here the moment they are placed."),
                "per_minute": _("orders / min"),
                "channel": {
                    "storefront": _("Storefront"),
                    "api": _("API"),
                    "douyin": _("Douyin"),
                    "kuaishou": _("Kuaishou"),
                    "taobao": _("Taobao"),
                },
                "status": {"open": _("On sale"), "scheduled": _("Coming soon"), "closed": _("Ended")},
            },
        },
    }
    return render(request, "orders/dashboard.html", context)


@never_cache
@require_http_methods(["GET", "HEAD"])
def home(request: HttpRequest) -> HttpResponse:
    """``/``: staff go to the back office; everyone else sees the shows on air now and coming up
    (storefront links) and the merchant login."""
    if getattr(request.user, "is_staff", False):
        return HttpResponseRedirect(reverse("admin:index"))
    return render(request, "orders/home.html", {"shows": catalog_selectors.sessions_on_air(days=7)})
