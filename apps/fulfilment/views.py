"""The carriers' tracking push endpoint: ``/hooks/carriers/<carrier>/<push_token>`` (``tracking``)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.core.errors import is_database_unavailable

from .carriers.base import CARRIERS
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
