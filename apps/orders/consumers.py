"""Websocket consumers: authorise at connect, join groups, send the snapshot, forward pushes.

Paths (``livecommerce/routing.py``):

- ``/ws/orders/<public id>/?t=<token>``  a buyer's own order (the token of its status link)
- ``/ws/listings/<id>/``                 stock left of one listing (public, for the storefront)
- ``/ws/sessions/<id>/``                 a show, for its merchant's staff (admin session) or API token
- ``/ws/merchant/``                      every order of a merchant, staff or API token

Every message is JSON with a namespaced ``type`` and a ``version``. The snapshot is sent first,
after joining the groups, so nothing published in between is lost: a push older than the
snapshot is ignored by the client by its version. A refused connection is accepted, told why
(``{"type": "error", "code", "message"}``) and closed with 4401 (no or bad credentials), 4403
(not yours) or 4404 (no such thing), so browsers see the reason, not a bare handshake failure.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.catalog import selectors as catalog_selectors
from apps.merchants import selectors as merchant_selectors
from apps.merchants.authentication import resolve_token, token_from_header
from apps.orders import fanout, selectors
from apps.orders.placement.links import check_status_token

log = logging.getLogger(__name__)

UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, SERVER_ERROR = 4401, 4403, 4404, 1011


class Refused(Exception):
    def __init__(self, close_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.close_code, self.code, self.message = close_code, code, message


# --- join rules and snapshots (sync: run through database_sync_to_async) ---------------------------
def _order_access(public_id: str, token: str) -> None:
    if not token:
        raise Refused(UNAUTHENTICATED, "token_required", "this order's status link token (?t=) is required")
    if not check_status_token(public_id, token):
        raise Refused(FORBIDDEN, "invalid_token", "this link does not open this order, or it has expired")


def _order_snapshot(public_id: str, token: str) -> dict[str, Any]:
    _order_access(public_id, token)
    order = selectors.order_public(public_id=public_id)
    if order is None:
        raise Refused(NOT_FOUND, "order_not_found", "no such order")
    return selectors.order_snapshot(order=order)


def _listing_snapshot(listing_id: int) -> dict[str, Any]:
    listing = catalog_selectors.listing_public(listing_id=listing_id)
    if listing is None:
        raise Refused(NOT_FOUND, "listing_not_found", "no such listing")
    line = selectors.listing_line(listing)
    return {"type": "listing.snapshot", "version": line["version"], "listing": line}


def _merchant_scope(token: str, user: Any) -> list[int] | None:
    """Merchants the connection may see (None: all, a superuser). An API token wins over the
    admin session when both are given."""
    if token:
        principal = resolve_token(token)
        if principal is None:
            raise Refused(UNAUTHENTICATED, "invalid_token", "invalid or revoked API token")
        return [principal.merchant_id]
    if user is not None and getattr(user, "is_authenticated", False):
        if getattr(user, "is_superuser", False):
            return None
        ids = merchant_selectors.user_merchant_ids(user_id=user.pk)
        if not ids:
            raise Refused(FORBIDDEN, "not_merchant_staff", "this login belongs to no merchant")
        return ids
    raise Refused(UNAUTHENTICATED, "authentication_required", "log in as merchant staff or pass an API token")


def _session_access(session_id: int, token: str, user: Any) -> Any:
    scope = _merchant_scope(token, user)
    session = catalog_selectors.session_scoped(session_id=session_id, merchant_ids=scope)
    if session is None:  # another merchant's show looks the same as no show
        raise Refused(FORBIDDEN, "forbidden", "this show is not yours")
    return session


def _merchant_access(token: str, user: Any, wanted: str) -> int:
    scope = _merchant_scope(token, user)
    if wanted:
        if not wanted.isdigit():
            raise Refused(FORBIDDEN, "forbidden", "no such merchant")
        merchant_id = int(wanted)
        if scope is not None and merchant_id not in scope:
            raise Refused(FORBIDDEN, "forbidden", "this merchant is not yours")
        return merchant_id
    if scope is not None and len(scope) == 1:
        return scope[0]
    raise Refused(FORBIDDEN, "merchant_required", "this login has several merchants: pass ?merchant=<id>")


# --- consumers --------------------------------------------------------------------------------------
class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Base: ``authorise`` checks access and names the groups; ``snapshot(first)`` reads the
    current state (a later ``resync`` checks access again: a revoked token or an expired link
    stops there). The snapshot is read after joining, so no push falls in between."""

    async def connect(self) -> None:
        await self.accept()
        self.joined = False
        try:
            await self.join(await self.authorise())
            await self.send_json(await database_sync_to_async(self.snapshot)(True))
            await self.snapshot_sent()
            self.joined = True
        except Refused as r:
            await self.refuse(r.close_code, r.code, r.message)
        except Exception:
            log.exception("websocket connect failed", extra={"path": self.scope.get("path")})
            await self.refuse(SERVER_ERROR, "server_error", "could not load the current state; retry shortly")

    async def refuse(self, close_code: int, code: str, message: str) -> None:
        await self.leave()
        await self.send_json({"type": "error", "code": code, "message": message})
        await self.close(code=close_code)

    async def leave(self) -> None:
        """Stop receiving pushes (channel-layer groups are left by channels on disconnect)."""

    async def authorise(self) -> list[str]:
        """Each consumer checks its own join rule and names its groups (abstract)."""
        raise NotImplementedError

    async def join(self, groups: list[str]) -> None:
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups.append(group)

    async def snapshot_sent(self) -> None:
        """Pushes queued while the snapshot was read go out after this (channels: on return)."""

    def snapshot(self, first: bool) -> dict[str, Any]:
        """Each consumer reads its own current state (abstract)."""
        raise NotImplementedError

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "resync" and self.joined:
            try:
                await self.send_json(await database_sync_to_async(self.snapshot)(False))
            except Refused as r:
                await self.refuse(r.close_code, r.code, r.message)
        else:
            await self.send_json({"type": "error", "code": "unknown_message", "message": "send ping or resync"})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        if text_data is None:
            await self.send_json({"type": "error", "code": "unknown_message", "message": "send JSON text"})
            return
        try:
            content = await self.decode_json(text_data)
        except ValueError:
            await self.send_json({"type": "error", "code": "malformed_message", "message": "not JSON"})
            return
        await self.receive_json(content, **kwargs)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels runs close_old_connections() in its sync thread before every handler: one
        # thread hop per message per subscriber, serialised through that one thread, which made a
        # push to 1,000 subscribers take ~250 ms. A push touches no database: skip the hop.
        if message.get("type") == "broadcast":
            await self.broadcast(message)
            return
        await super().dispatch(message)

    async def broadcast(self, event: dict[str, Any]) -> None:
        """A group push from ``apps.core.events.publish``."""
        if self.joined:
            await self.send_json(event["payload"])

    # helpers
    def query(self, name: str) -> str:
        raw = self.scope.get("query_string", b"").decode("latin1")
        return (parse_qs(raw).get(name) or [""])[0]

    def api_token(self) -> str:
        token = self.query("token")
        if token:
            return token
        for key, value in self.scope.get("headers", []):
            if key == b"authorization":
                return token_from_header(value.decode("latin1"))
        return ""


class OrderConsumer(LiveConsumer):
    async def authorise(self) -> list[str]:
        self.public_id = self.scope["url_route"]["kwargs"]["public_id"]
        self.token = self.query("t")
        _order_access(self.public_id, self.token)  # a signature check: no database
        return [f"order.{self.public_id}"]

    def snapshot(self, first: bool) -> dict[str, Any]:
        return _order_snapshot(self.public_id, self.token)


class ListingConsumer(LiveConsumer):
    """Stock of one listing, for every viewer of a show: pushes come through the process-local
    fan-out (``fanout.py``), not one channel-layer delivery per viewer."""

    fanout_group = ""

    async def authorise(self) -> list[str]:
        self.listing_id = int(self.scope["url_route"]["kwargs"]["listing_id"])
        return [f"listing.{self.listing_id}"]

    async def join(self, groups: list[str]) -> None:
        (self.fanout_group,) = groups
        await fanout.subscribe(self.fanout_group, self)

    async def snapshot_sent(self) -> None:
        await fanout.ready(self.fanout_group, self)

    async def leave(self) -> None:
        if self.fanout_group:
            group, self.fanout_group = self.fanout_group, ""
            await fanout.unsubscribe(group, self)

    async def disconnect(self, code: int) -> None:
        await self.leave()

    def snapshot(self, first: bool) -> dict[str, Any]:
        return _listing_snapshot(self.listing_id)


class SessionConsumer(LiveConsumer):
    async def authorise(self) -> list[str]:
        self.session_id = int(self.scope["url_route"]["kwargs"]["session_id"])
        self.credentials = (self.api_token(), self.scope.get("user"))
        self.session = await database_sync_to_async(_session_access)(self.session_id, *self.credentials)
        return [f"session.{self.session_id}"]

    def snapshot(self, first: bool) -> dict[str, Any]:
        session = self.session if first else _session_access(self.session_id, *self.credentials)
        return selectors.session_snapshot(session=session)


class MerchantConsumer(LiveConsumer):
    async def authorise(self) -> list[str]:
        self.credentials = (self.api_token(), self.scope.get("user"), self.query("merchant"))
        self.merchant_id = await database_sync_to_async(_merchant_access)(*self.credentials)
        return [f"merchant.{self.merchant_id}"]

    def snapshot(self, first: bool) -> dict[str, Any]:
        if not first:
            _merchant_access(*self.credentials)
        return selectors.merchant_snapshot(merchant_id=self.merchant_id)
