from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from csp.constants import UNSAFE_INLINE
from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse

from .client_ip import client_ip as resolve_client_ip
from .errors import RETRY_AFTER_SECONDS, database_unavailable, is_database_unavailable
from .logging import request_id_from, request_id_var


class RequestIdMiddleware:
    """Take X-Request-ID from the proxy (or make one), log with it, echo it back."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def _start(self, request: HttpRequest) -> str:
        rid = request_id_from(request.headers.get("X-Request-ID"))
        request.request_id = rid  # type: ignore[attr-defined]  # the request id travels with the request
        request_id_var.set(rid)
        return rid

    def __call__(self, request: HttpRequest):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        rid = self._start(request)
        response: HttpResponse = self.get_response(request)
        response["X-Request-ID"] = rid
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        rid = self._start(request)
        response = await self.get_response(request)
        response["X-Request-ID"] = rid
        return response


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware (``CONTENT_SECURITY_POLICY``), plus ``style-src 'unsafe-inline'`` on
    ``CSP_INLINE_STYLE_PATHS``: the Django admin and Swagger UI ship templates with inline <style>
    blocks we do not control. Scripts stay ``'self'`` everywhere, and such a page never asks for
    a nonce (a nonce would make browsers ignore ``'unsafe-inline'``)."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if request.path_info.startswith(tuple(settings.CSP_INLINE_STYLE_PATHS)):
            update = dict(parts.update or {})
            update["style-src"] = [*update.get("style-src", []), UNSAFE_INLINE]
            parts.update = update
        return parts


def client_ip(request: HttpRequest) -> str | None:
    """The client address for login throttling (``AXES_CLIENT_IP_CALLABLE``): REMOTE_ADDR, which
    daphne/uvicorn already set from the trusted proxy's headers. X-Forwarded-For only through
    ``apps.core.client_ip`` (the storefront's definition): never with ``TRUSTED_PROXY_COUNT`` = 0
    (the default), and otherwise only the entry our own outermost proxy appended, never what the
    client wrote there, which it could fill with a fresh address for every attempt."""
    if not getattr(settings, "TRUSTED_PROXY_COUNT", 0):
        return request.META.get("REMOTE_ADDR")  # exactly as before the setting existed
    return resolve_client_ip(request) or request.META.get("REMOTE_ADDR")


class DatabaseUnavailableMiddleware:
    """A database fault outside the DRF views (pages, admin, webhooks Django serves itself) is a
    503 with ``Retry-After``, JSON under ``/api/``, never a 500."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponseBase | None:
        if not is_database_unavailable(exception):
            return None
        retried = self._retry_once(request)
        if retried is not None:
            return retried
        err = database_unavailable()
        if request.path.startswith("/api/"):
            response: HttpResponseBase = JsonResponse(err.as_dict(), status=503)
        else:
            response = HttpResponse(
                "<!doctype html><title>503</title>"
                "<p>Busy for a moment — please retry.</p><p>系统繁忙，请稍后重试。</p>",
                status=503,
            )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @staticmethod
    def _retry_once(request: HttpRequest) -> HttpResponseBase | None:
        """A read (GET/HEAD) that met a broken connection runs once more on a fresh one: a
        connection the database dropped (a restart, a terminated backend) is not the reader's
        problem. Writes are never retried here (their outcome is for their service to tell)."""
        match = request.resolver_match
        if request.method not in ("GET", "HEAD") or match is None or getattr(request, "_db_retried", False):
            return None
        request._db_retried = True  # type: ignore[attr-defined]  # one retry per request
        if connection.in_atomic_block:
            return None
        connection.close()
        try:
            response = match.func(request, *match.args, **match.kwargs)
            if hasattr(response, "render") and callable(response.render):
                response = response.render()
            return response
        except Exception as exc:  # noqa: BLE001 - a second fault is the 503 below; anything else re-raises
            if is_database_unavailable(exc):
                return None
            raise
