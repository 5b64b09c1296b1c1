"""The carriers' tracking push endpoint: ``/hooks/carriers/<carrier>/<push_token>`` (``tracking``),
and the payment provider's refund callbacks: ``/hooks/payments/refunds`` (``refunds``)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.core.errors import ApplicationError, is_database_unavailable
from apps.orders.views import back_to_status, order_for_link

from .carriers.base import CARRIERS
from .models import RefundRequest
from .payments.protocol import verify_and_parse_callback
from .refunds import BUYER_REASONS, notice_apply, notice_receive, notice_refuse, refund_request, refund_withdraw
from .tracking import push_receive

JSON = "application/json"
MAX_BODY = 2 * 1024 * 1024  # a push carries one waybill's trace (Kdniao: a few): far below this


@csrf_exempt
@require_POST
def carrier_push(request: HttpRequest, carrier: str, push_token: str) -> HttpResponse:
    if carrier not in CARRIERS:
        return HttpResponse(b'{"result":false,"message":"unknown carrier"}', status=404, content_type=JSON)
    if len(request.body) > MAX_BODY:
        return HttpResponse(b'{"result":false,"message":"body too large"}', status=413, content_type=JSON)
    try:
        answer = push_receive(
            carrier=carrier,
            push_token=push_token,
            content_type=request.headers.get("Content-Type", ""),
            body=request.body,
        )
    except Exception as exc:
        if is_database_unavailable(exc):  # nothing stored: the carrier pushes again
            return HttpResponse(b'{"result":false,"message":"retry"}', status=503, content_type=JSON)
        raise
    return HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)


@csrf_exempt
@require_POST
def refund_callback(request: HttpRequest) -> HttpResponse:
    """A signed refund result from the payment provider: stored, verified, applied once. A 2xx
    tells the provider to stop sending it; anything else, it sends again."""
    if len(request.body) > MAX_BODY:
        return JsonResponse({"code": "payload_too_large", "message": "body too large"}, status=413)
    try:
        notice = notice_receive(
            body=request.body,
            timestamp=request.headers.get("X-Timestamp"),
            signature=request.headers.get("X-Signature"),
        )
    except Exception as exc:
        if is_database_unavailable(exc):  # nothing stored: the provider sends it again
            return JsonResponse({"code": "temporarily_unavailable", "message": "try again"}, status=503)
        raise
    try:
        callback = verify_and_parse_callback(
            request.body,
            request.headers.get("X-Timestamp"),
            request.headers.get("X-Signature"),
            secret=settings.PAYMENT_WEBHOOK_SECRET,
            max_skew=settings.PAYMENT_MAX_SKEW_SECONDS,
        )
    except ApplicationError as exc:
        notice_refuse(notice, exc)
        return JsonResponse(exc.as_dict(), status=exc.http_status)
    try:
        outcome = notice_apply(notice, callback)
    except ApplicationError as exc:
        return JsonResponse(exc.as_dict(), status=exc.http_status)
    return JsonResponse({"ok": True, "outcome": outcome})


# --- the buyer's after-sales on the status page (``/o/<id>/refund``) -----------------------------------


@require_POST
def buyer_refund(request: HttpRequest, public_id: str) -> HttpResponse:
    """The buyer asks for money back (or to send the goods back) from the status page."""
    token = request.POST.get("t", "")
    order = order_for_link(request, public_id, token)
    if isinstance(order, HttpResponse):
        return order
    code = request.POST.get("reason", "other")
    reason = str(BUYER_REASONS.get(code, BUYER_REASONS["other"]))
    detail = request.POST.get("detail", "").strip()[:200]
    kind = request.POST.get("kind", "refund")
    amount = request.POST.get("amount", "").strip() or None
    try:
        refund_request(
            order=order,
            kind=kind,
            source=RefundRequest.Source.BUYER,
            actor="buyer",
            amount=amount,
            reason=f"{reason}: {detail}" if detail else reason,
        )
        messages.success(request, _("Your request was sent to the shop."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return back_to_status(public_id, token)


@require_POST
def buyer_refund_withdraw(request: HttpRequest, public_id: str, refund_id: str) -> HttpResponse:
    token = request.POST.get("t", "")
    order = order_for_link(request, public_id, token)
    if isinstance(order, HttpResponse):
        return order
    refund = RefundRequest.objects.filter(order=order, public_id=refund_id).first()
    if refund is None:
        messages.error(request, _("No such request on this order."))
        return back_to_status(public_id, token)
    try:
        refund_withdraw(refund=refund, actor="buyer")
        messages.success(request, _("Your request was withdrawn."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return back_to_status(public_id, token)
