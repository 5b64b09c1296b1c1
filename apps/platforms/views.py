"""The push receiver the platforms call (``/hooks/platforms/<platform>/<push_token>``): the raw
body goes to ``intake.receive_push``, which stores it before the platform's reply is sent."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.core.errors import is_database_unavailable

from .intake import receive_push

MAX_BODY = 2 * 1024 * 1024  # a push of a few hundred events is far below this


@csrf_exempt
@require_POST
def platform_push(request: HttpRequest, platform: str, push_token: str) -> HttpResponse:
    if len(request.body) > MAX_BODY:
        return HttpResponse(b'{"code":413,"msg":"body too large"}', status=413, content_type="application/json")
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        answer = receive_push(platform=platform, push_token=push_token, headers=headers, body=request.body)
    except Exception as exc:
        if is_database_unavailable(exc):  # nothing stored: the platform retries
            return HttpResponse(b'{"code":503,"msg":"retry"}', status=503, content_type="application/json")
        raise
    return HttpResponse(answer.body, status=answer.status, content_type="application/json")
