"""One policy for everything under ``/api`` (issue 10, "an API integrators can build on"):

- Language: English unless the client's ``Accept-Language`` asks for a language the project
  speaks (``zh-hans``); the site's default (Chinese, for the merchant pages) never leaks into the
  API. The DRF view and the order fast path pick it the same way (``api_language``).
- Errors: every answer of 400 and above under ``/api`` is JSON ``{code, message, extra}``, with
  DEBUG on or off (Django's debug 404/500 pages are HTML) and whatever the path.
- Paths: ``/api/v1/orders/`` is ``/api/v1/orders`` (a trailing slash on a resource is dropped
  before routing, so a tool that adds one gets the resource, not a 404).
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.utils import translation
from django.utils.translation import get_supported_language_variant
from django.utils.translation.trans_real import parse_accept_lang_header

API_DEFAULT_LANGUAGE = "en"
VERSIONED = "/api/v1/"  # the resources; /api/schema/ and /api/docs/ keep their slash
_STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "throttled",
    500: "server_error",
    502: "bad_gateway",
    503: "temporarily_unavailable",
}


def is_api_path(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


def api_language(accept_language: str) -> str:
    """The language of an API answer: the first of the client's ``Accept-Language`` choices the
    project speaks, else English."""
    for code, _q in parse_accept_lang_header(accept_language or ""):
        if code == "*":
            break
        try:
            return get_supported_language_variant(code)
        except LookupError:
            continue
    return API_DEFAULT_LANGUAGE


def _message(status: int) -> str:
    try:
        return HTTPStatus(status).phrase + "."
    except ValueError:
        return "Error."


class ApiPolicyMiddleware:
    """Place right after ``LocaleMiddleware`` (it overrides the language that one chose)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not is_api_path(request.path_info):
            return self.get_response(request)
        if request.path_info.startswith(VERSIONED) and request.path_info.endswith("/"):
            request.path_info = request.path_info.rstrip("/")
        language = api_language(request.META.get("HTTP_ACCEPT_LANGUAGE", ""))
        translation.activate(language)
        request.LANGUAGE_CODE = language  # as LocaleMiddleware sets it
        response = self.get_response(request)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith("application/json"):
            return self._as_json(response)
        return response

    @staticmethod
    def _as_json(response: HttpResponseBase) -> HttpResponseBase:
        """An error answered by Django itself (its debug pages, a CSRF or host failure) in the
        API's error shape. The original body is not echoed (a debug page holds settings)."""
        status = response.status_code
        code = _STATUS_CODES.get(status, "error" if status < 500 else "server_error")
        out = JsonResponse({"code": code, "message": _message(status), "extra": {}}, status=status)
        for header in ("Allow", "Retry-After", "WWW-Authenticate", "X-Request-ID", "Content-Language"):
            if header in response:
                out[header] = response[header]
        return out
