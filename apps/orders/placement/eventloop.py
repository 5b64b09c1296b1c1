"""Refusals of ``POST /api/v1/orders`` answered on the event loop (``fastpath.OrderFastPath``).

During a flash sale nearly every order request is refused (sold out, over the limit, closed,
blocked by the risk rules, bad input). Such an answer needs no database and no worker thread, so
``decide`` gives it right on the event loop, from process memory and one Redis round trip:

1. the token from this process's token cache only (``resolve_token_local``: a fresh entry, never
   one past ``TOKEN_LOCAL_CACHE_SECONDS``, so revocation keeps its bound), the role, the content
   type, and the body parsed and validated once (``parse_order_body``, ``parse_order_request``,
   ``parse_idempotency_key``): their errors are answered here;
2. the listing from the in-process listing cache only (``listing_info_local``) and, when the risk
   guard runs, the merchant's rules only if they are in process memory (``hooks.registry.guard_local``);
3. the gate's reserve (and the guard's script with it, as ``service._guard_with_gate`` and the
   sold-out hint decide) in one pipelined round trip through the loop's one Redis connection
   (``apps.core.redis.run_together_async``, ``apps.core.redis_wire``).

A refusal is answered with the body the thread path would give (the same exceptions, rendered the
same way), and what a refusal does besides the answer still happens, in the thread path's order:
``closed`` tells ``hooks.registry.closed`` (in the worker pool, awaited: risk control counts early
attempts there, and judges the buyer's next attempt by them), a risk block gives the held units
back (``release.lua``, on the loop, awaited: a retry or the next buyer finds them) and then runs
its ``refusal_follow_up`` in the worker pool, not waited for. If the merchant's rules leave process
memory while Redis answers, or Redis fails after the reserve may have run, the thread takes over
with the same hold id (``Decided``), so no hold is orphaned under a second id. Anything else goes
on to a worker thread (``HandOff``): an accepted hold, a replay or a key seen before with what
Redis said (``service.Decided``, so the thread asks Redis nothing twice and keeps its
release-on-failure logic); a cache miss or a cluster (no ``Decided``: the thread path from the
start, which decides with the database when Redis is gone).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import translation
from rest_framework import exceptions

from apps.catalog.selectors import ListingInfo, listing_info_local
from apps.core.api_policy import api_language
from apps.core.errors import ApplicationError
from apps.core.redis import get_async_client, is_redis_error, run_together_async
from apps.merchants import roles
from apps.merchants.authentication import MAX_TOKEN_LENGTH, TokenPrincipal, resolve_token_local, token_from_header
from apps.orders import hooks

from .gate import scripts as gate
from .gate.keys import buyer_key
from .links import new_public_id
from .request import OrderRequest, parse_idempotency_key, parse_order_body, parse_order_request
from .service import Decided, gate_refusal, listing_for, sold_out_lately

log = logging.getLogger(__name__)

RULES_MARGIN_S = 1.0
"""The merchant's rules must stay in process memory this long for the loop to judge an attempt
(its Redis round trip comes between the look and the judgement)."""

Answer = tuple[int, dict[str, Any]]
Spawn = Callable[[Callable[[], None]], "asyncio.Future[None]"]
"""Runs a sync side effect in the worker pool (exceptions logged); the caller may await it or not."""


@dataclass(frozen=True)
class Parsed:
    """A request the loop authenticated and validated: the thread path takes it as it is."""

    principal: TokenPrincipal
    req: OrderRequest
    key: str | None


@dataclass(frozen=True)
class HandOff:
    """Go on in a worker thread: with the parsed request (None: from the start) and what Redis
    already decided (None: nothing yet)."""

    parsed: Parsed | None = None
    decided: Decided | None = None


def error(status: int, code: str, message: str) -> Answer:
    return status, {"code": code, "message": message, "extra": {}}


def not_authenticated() -> Answer:
    return error(401, "not_authenticated", str(exceptions.NotAuthenticated.default_detail))


def bad_auth_header() -> Answer:
    return error(401, "authentication_failed", "Authorization header must be 'Bearer <token>' or 'Token <token>'.")


def bad_token() -> Answer:
    return error(401, "authentication_failed", "Invalid or revoked token.")


def unsupported_media_type(ctype: str) -> Answer:
    detail = str(exceptions.UnsupportedMediaType.default_detail).format(media_type=ctype)
    return error(415, "unsupported_media_type", detail)


def content_type(headers: dict[str, str]) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


async def decide(headers: dict[str, str], body: bytes, received_at: datetime | None, spawn: Spawn) -> Answer | HandOff:
    """The answer given on the loop, or the hand-off to a worker thread (see the module docstring)."""
    translation.activate(api_language(headers.get("accept-language", "")))  # as ApiPolicyMiddleware
    try:
        parsed = _parse(headers, body, received_at, spawn)
        if not isinstance(parsed, Parsed):
            return parsed
        info = listing_info_local(parsed.req.listing_id, spawn)
        if info is None:
            return HandOff(parsed)
        listing_for(parsed.req, parsed.principal.merchant_id, info)
        return await _ask_redis(parsed, info, spawn)
    except ApplicationError as exc:
        return exc.http_status, exc.as_dict()
    finally:
        translation.deactivate()


def check_request(
    headers: dict[str, str], resolve: Callable[[str], TokenPrincipal | HandOff | None]
) -> TokenPrincipal | Answer | HandOff:
    """The token (``resolve``: its principal, None for an invalid one, or a hand-off when it
    cannot tell here), the role and the content type, in the order and with the answers of the
    DRF view; raises the role's refusal."""
    auth = headers.get("authorization", "")
    if not auth:
        return not_authenticated()
    raw = token_from_header(auth)
    if not raw:  # the same answers as MerchantTokenAuthentication
        return bad_auth_header()
    principal = resolve(raw) if len(raw) <= MAX_TOKEN_LENGTH else None
    if principal is None:
        return bad_token()
    if isinstance(principal, HandOff):
        return principal
    roles.require(principal.role, roles.ORDERS, "add")  # as the DRF view's IsMerchantToken
    ctype = content_type(headers)
    if ctype != "application/json":
        return unsupported_media_type(ctype)
    return principal


def _parse(
    headers: dict[str, str], body: bytes, received_at: datetime | None, spawn: Spawn
) -> Parsed | Answer | HandOff:
    """What ``fastpath._handle`` checks before the order service, in its order; raises the
    validation's refusals."""

    def local_token(raw: str) -> TokenPrincipal | HandOff:
        # Not in this process's cache, or stale: resolve_token decides, in a worker thread. A
        # token about to go stale is refreshed in the worker pool meanwhile.
        return resolve_token_local(raw, refresh=spawn) or HandOff()

    principal = check_request(headers, local_token)
    if not isinstance(principal, TokenPrincipal):
        return principal
    req = parse_order_request(parse_order_body(body), received_at)
    return Parsed(principal, req, parse_idempotency_key(headers.get("idempotency-key")))


async def _ask_redis(parsed: Parsed, info: ListingInfo, spawn: Spawn) -> Answer | HandOff:
    """The guard's script and the gate's reserve in one round trip, judged as ``order_place``
    judges them."""
    client = get_async_client()
    if client is None:
        return HandOff(parsed)
    req, key = parsed.req, parsed.key
    guard = hooks.registry.guard
    with_guard = guard is not None and not sold_out_lately(info.id)
    local = hooks.registry.guard_local
    if with_guard and (local is None or not local(info.merchant_id, RULES_MARGIN_S, spawn)):
        return HandOff(parsed)  # judging would read the shared cache or the database
    public_id = new_public_id(merchant_id=info.merchant_id, idempotency_key=key)
    reserve = gate.reserve_call(
        info.id,
        hold_id=public_id,
        buyer=buyer_key(req.buyer_external_id),
        quantity=req.quantity,
        now_ms=int(time.time() * 1000),
        remember=key is not None,
    )
    call = guard(info=info, req=req, public_id=public_id, channel="api") if with_guard and guard else None
    calls = [(call.script, call.keys, call.args), reserve] if call is not None else [reserve]
    try:
        replies = await run_together_async(calls, client)
    except Exception as exc:
        if not is_redis_error(exc):
            raise
        log.warning("redis unavailable on the event loop; a worker thread decides", extra={"listing": info.id})
        # The reserve may have run before the connection failed: the thread asks again under the
        # same hold id, so such a hold is found (a replay), never orphaned under a new one.
        return HandOff(parsed, Decided(public_id, None, None, info))
    gate_reply = replies[-1]
    first = None if isinstance(gate_reply, BaseException) else gate.reserve_result(gate_reply)
    verdict = None
    if call is not None:
        if local is None or not local(info.merchant_id, 0.0):
            # The rules left process memory during the round trip (their time ran out, or a
            # change dropped them): judging here would read the shared cache or the database. The
            # thread judges, with the gate's answer and this hold id (the guard's script sees the
            # same attempt again: counted once).
            return HandOff(parsed, Decided(public_id, None, first, info))
        try:
            verdict = call.judge(replies[0])
        except ApplicationError as exc:
            # As _guard_with_gate: the units the gate held go back (before the answer, so a retry
            # or the next buyer finds them), then the refusal's follow-up, not waited for.
            held = first is not None and first.status == gate.OK and not first.replay
            await _give_back(info.id, public_id, held, exc, spawn)
            raise
        except Exception:
            log.exception("risk judgement failed on the event loop; a worker thread decides")
            return HandOff(parsed, Decided(public_id, None, first, info))
    decided = Decided(public_id, verdict, first, info)
    if first is None or first.status in (gate.OK, gate.SEEN, gate.NOT_LOADED):
        return HandOff(parsed, decided)
    refusal = gate_refusal(info, first)
    if refusal is None:  # a status this code does not know: the thread path decides
        return HandOff(parsed, decided)
    closed = hooks.registry.closed
    if first.status == gate.CLOSED and closed is not None:
        # Counted before the answer, as the thread path does (the early-attempt rule judges the
        # buyer's next attempt by it).
        await spawn(lambda: closed(info=info, req=req, public_id=public_id))
    raise refusal


async def _give_back(listing_id: int, public_id: str, held: bool, exc: BaseException, spawn: Spawn) -> None:
    """Release the units held for a refused attempt (on the loop, awaited), then run the refusal's
    follow-up in the worker pool without waiting for it."""
    if held:
        try:
            client = get_async_client()
            assert client is not None  # the attempt was decided through it
            script, keys, args = gate.release_call(listing_id, hold_id=public_id)
            (reply,) = await run_together_async([(script, keys, args)], client)
            if isinstance(reply, BaseException):
                raise reply
        except Exception:  # noqa: BLE001 - the reconciler frees an orphaned hold
            log.warning("gate release failed", extra={"listing": listing_id, "order": public_id}, exc_info=True)
    if getattr(exc, "after_release", None) is not None:
        spawn(lambda: hooks.refusal_follow_up(exc))
