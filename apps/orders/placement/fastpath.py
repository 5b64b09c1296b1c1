"""A lean ASGI route for ``POST /api/v1/orders``: the flash-sale hot path.

Django's middleware chain and DRF's request machinery cost several thread hops and most of a
millisecond per request; during a flash sale nearly every request is answered by the Redis
gate, so that overhead is the ceiling. This adapter reads the request itself; a refusal
(sold out, over the limit, closed, risk block, bad input) is answered right on the event loop
(``eventloop.decide``: no worker thread, no database), and the rest makes ONE hop into a worker
thread that runs the same handler the DRF view runs (``handler.order_create_response``, or
``order_parsed_response`` with what the loop already parsed and Redis already decided): token
auth, ``parse_order_request`` validation, ``order_place``, the same serializer and error shape.
Everything else goes to Django untouched. The DRF view stays the documented endpoint (schema,
tests through the Django stack) and answers identically.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db import close_old_connections
from django.http.request import split_domain_port, validate_host
from django.utils import translation

from apps.core.api_policy import api_language
from apps.core.arrival import scope_received_at
from apps.core.errors import RETRY_AFTER_SECONDS, ApplicationError, database_unavailable, is_database_unavailable
from apps.core.logging import request_id_from, request_id_var
from apps.merchants.authentication import TokenPrincipal, resolve_token

from . import accept, eventloop
from .handler import order_create_response, order_parsed_response
from .request import MAX_BODY, parse_order_body, payload_too_large
from .service import Decided

log = logging.getLogger(__name__)
PATH = "/api/v1/orders"


def _handle(
    headers: dict[str, str], body: bytes, base_url: str, received_at: datetime | None = None
) -> tuple[int, dict[str, Any]]:
    """The request from the start in a worker thread: token, role, content type, validation,
    then the order service."""

    def answer() -> tuple[int, dict[str, Any]]:
        principal = eventloop.check_request(headers, resolve_token)
        if not isinstance(principal, TokenPrincipal):
            assert not isinstance(principal, eventloop.HandOff)  # resolve_token always decides
            return principal
        data = parse_order_body(body)
        return order_create_response(
            merchant_id=principal.merchant_id,
            token_id=principal.token_id,
            data=data,
            idempotency_key=headers.get("idempotency-key"),
            base_url=base_url,
            received_at=received_at,
        )

    return _in_thread(headers, answer)


def _handle_parsed(
    headers: dict[str, str], parsed: eventloop.Parsed, decided: Decided | None, base_url: str
) -> tuple[int, dict[str, Any]]:
    """A request the event loop authenticated and validated, with what Redis decided for it."""

    def answer() -> tuple[int, dict[str, Any]]:
        return order_parsed_response(
            merchant_id=parsed.principal.merchant_id,
            token_id=parsed.principal.token_id,
            req=parsed.req,
            key=parsed.key,
            base_url=base_url,
            decided=decided,
        )

    return _in_thread(headers, answer)


def _in_thread(headers: dict[str, str], answer: Callable[[], tuple[int, dict[str, Any]]]) -> tuple[int, dict[str, Any]]:
    close_old_connections()
    translation.activate(api_language(headers.get("accept-language", "")))  # as ApiPolicyMiddleware
    try:
        return answer()
    except ApplicationError as exc:
        return exc.http_status, exc.as_dict()
    except Exception as exc:
        if is_database_unavailable(exc):
            err = database_unavailable()
            return err.http_status, err.as_dict()
        log.exception("order fast path failed")
        return eventloop.error(500, "server_error", "Internal error.")
    finally:
        translation.deactivate()
        close_old_connections()


def _side_effect(fn: Callable[[], None]) -> None:
    """A refusal's follow-up (``eventloop.Spawn``) in a worker thread."""
    close_old_connections()
    try:
        fn()
    finally:
        close_old_connections()


def _logged(future: Any) -> None:
    exc = None if future.cancelled() else future.exception()
    if exc is not None:
        log.error("an order refusal's side effect failed", exc_info=exc)


def request_headers(scope: dict) -> dict[str, str]:
    """The request's headers by lower-case name, as Django's ASGI handler reads them: a name with
    "_" is dropped (it would pass for a "-" one), and a repeated header's values are joined by ",".
    """
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        if "_" in name:
            continue
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


_hosts_seen: dict[str, bool] = {}
_HOSTS_KEPT = 64  # a client sending many Host headers gets them checked each time, not remembered


def host_allowed(host: str) -> bool:
    """Django's ``HttpRequest.get_host`` check of a Host header against ``ALLOWED_HOSTS``, each
    host remembered (a server hears a handful; the check's regex and settings reads were ~3% of a
    sold-out answer). Forgotten when a setting changes (tests)."""
    ok = _hosts_seen.get(host)
    if ok is None:
        domain, _port = split_domain_port(host)
        allowed = settings.ALLOWED_HOSTS
        if settings.DEBUG and not allowed:  # as Django's HttpRequest.get_host
            allowed = [".localhost", "127.0.0.1", "[::1]"]
        ok = bool(domain) and validate_host(domain, allowed)
        if len(_hosts_seen) < _HOSTS_KEPT:
            _hosts_seen[host] = ok
    return ok


def _forget_hosts(**_kwargs: Any) -> None:
    _hosts_seen.clear()


setting_changed.connect(_forget_hosts, dispatch_uid="orders.fastpath.hosts")


class OrderFastPath:
    """ASGI middleware: serve ``POST /api/v1/orders`` directly, pass everything else on."""

    def __init__(self, app: Any, threads: int | None = None, event_loop: bool | None = None) -> None:
        self.app = app
        self.event_loop = settings.ORDER_EVENT_LOOP if event_loop is None else event_loop
        self.pool = ThreadPoolExecutor(
            max_workers=threads or settings.ORDER_FASTPATH_THREADS, thread_name_prefix="orders"
        )
        # Refusals' side effects: their own threads, a bounded backlog (settings.ORDER_SIDE_EFFECT_*).
        self.side_pool = ThreadPoolExecutor(
            max_workers=settings.ORDER_SIDE_EFFECT_THREADS, thread_name_prefix="orders-side"
        )
        self.side_backlog = 0
        self.effects = accept.Effects(self.pool)  # accepted orders' after-commit work (``accept``)
        self.placing: set[asyncio.Task] = set()  # accepted orders being placed from the loop
        self.side_dropped = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != PATH:
            return await self.app(scope, receive, send)
        headers = request_headers(scope)
        scheme = scope.get("scheme", "http")
        proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
        if proxy_header and headers.get(proxy_header[0][5:].lower().replace("_", "-")) == proxy_header[1]:
            scheme = "https"
        if getattr(settings, "SECURE_SSL_REDIRECT", False) and scheme != "https":
            return await self.app(scope, receive, send)  # Django answers with its redirect
        rid = request_id_from(headers.get("x-request-id"))
        host = headers.get("host", "")
        if not host_allowed(host):
            status, body_out = eventloop.error(400, "bad_host", "Invalid Host header.")
            return await self._send(send, status, body_out, rid)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                exc = payload_too_large()
                return await self._send(send, exc.http_status, exc.as_dict(), rid)
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        token = request_id_var.set(rid)
        try:
            status, body_out = await self._answer(scope, headers, b"".join(chunks), scheme, host)
        finally:
            request_id_var.reset(token)
        await self._send(send, status, body_out, rid)

    async def _answer(
        self, scope: dict, headers: dict[str, str], body: bytes, scheme: str, host: str
    ) -> tuple[int, dict[str, Any]]:
        loop = asyncio.get_running_loop()
        base_url = settings.PUBLIC_BASE_URL or f"{scheme}://{host}"
        received_at = scope_received_at(scope)
        if self.event_loop:
            try:
                decided = await eventloop.decide(headers, body, received_at, self._spawn)
            except Exception:
                log.exception("order refusal on the event loop failed; a worker thread decides")
                decided = eventloop.HandOff()
            if not isinstance(decided, eventloop.HandOff):
                return decided
            if decided.parsed is not None:
                if decided.decided is not None and accept.can_place(decided.decided):
                    # A task of its own, shielded: if the request goes away, the placement still
                    # finishes (its deadlines, its hold's release, its effects).
                    task = loop.create_task(self._accept(headers, decided.parsed, decided.decided, base_url))
                    self.placing.add(task)
                    task.add_done_callback(self.placing.discard)
                    return await asyncio.shield(task)
                return await loop.run_in_executor(
                    self.pool, _handle_parsed, headers, decided.parsed, decided.decided, base_url
                )
        return await loop.run_in_executor(self.pool, _handle, headers, body, base_url, received_at)

    async def _accept(
        self, headers: dict[str, str], parsed: eventloop.Parsed, decided: Decided, base_url: str
    ) -> tuple[int, dict[str, Any]]:
        """An accepted hold placed from the loop (``accept``), or by the thread path when the loop
        hands it back."""
        try:
            placed = await accept.place(parsed, decided, base_url=base_url, effects=self.effects, pool=self.pool)
        except ApplicationError as exc:
            translation.activate(api_language(headers.get("accept-language", "")))
            try:
                return exc.http_status, exc.as_dict()
            finally:
                translation.deactivate()
        except Exception:
            log.exception("order fast path failed")
            return eventloop.error(500, "server_error", "Internal error.")
        if placed is not None:
            return placed
        return await asyncio.get_running_loop().run_in_executor(
            self.pool, _handle_parsed, headers, parsed, decided, base_url
        )

    def _spawn(self, fn: Callable[[], None]) -> asyncio.Future[None]:
        """Run a refusal's side effect in the side pool (``eventloop.Spawn``); past the backlog
        it is dropped (logged) and the returned future is already done."""
        loop = asyncio.get_running_loop()
        if self.side_backlog >= settings.ORDER_SIDE_EFFECT_BACKLOG:
            self.side_dropped += 1
            if self.side_dropped % 1000 == 1:
                log.warning(
                    "order refusal side effects dropped: the backlog is full",
                    extra={"backlog": self.side_backlog, "dropped": self.side_dropped},
                )
            done: asyncio.Future[None] = loop.create_future()
            done.set_result(None)
            return done
        self.side_backlog += 1
        future = loop.run_in_executor(self.side_pool, _side_effect, fn)
        future.add_done_callback(self._side_done)
        return future

    def shutdown(self, wait: bool = True) -> None:
        """Stop both pools (``wait``: after what they were given has run)."""
        self.pool.shutdown(wait=wait)
        self.side_pool.shutdown(wait=wait)

    def _side_done(self, future: asyncio.Future[None]) -> None:
        self.side_backlog -= 1  # on the loop's thread, as the increment
        _logged(future)

    @staticmethod
    async def _send(send: Any, status: int, body: dict[str, Any], rid: str) -> None:
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
        headers.append((b"x-request-id", rid.encode()))
        if status == 401:
            headers.append((b"www-authenticate", b"Token"))
        if status == 503:
            headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": raw})
