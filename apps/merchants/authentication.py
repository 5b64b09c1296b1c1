"""``Authorization: Token <token>`` for streamer tools.

The token's hash maps to its merchant through a short-lived Redis cache entry (a "revoked"
marker replaces it on revoke), so a hot endpoint answers without a database query; on top of it
each process keeps a valid token for ``TOKEN_LOCAL_CACHE_SECONDS`` (1 s), so a flash sale does
not ask Redis about the same token thousands of times a second. A revoked token therefore stops
working within that second everywhere (at once in the process that revoked it, unless a request
there read the token just before the revoke committed).
``last_used_at`` is written at most once a minute per token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from apps.core.refresh_ahead import RefreshAhead

from . import roles
from .models import ApiToken, Merchant
from .tokens import LOCAL_MAX, hash_token, local_tokens, local_tokens_lock, token_cache_key
from .tokens import forget_local as forget_local  # re-exported: callers that revoke tokens


@dataclass(frozen=True)
class TokenPrincipal:
    """What a valid token stands for: a merchant, with the token's role there. Used as
    ``request.user``."""

    token_id: int
    merchant_id: int
    role: str
    is_authenticated: bool = True

    @property
    def merchant(self) -> Merchant:
        return Merchant.objects.get(pk=self.merchant_id)


MAX_TOKEN_LENGTH = 200


def resolve_token(raw: str) -> TokenPrincipal | None:
    if not raw or len(raw) > MAX_TOKEN_LENGTH:
        return None
    hit_local = resolve_token_local(raw)
    if hit_local is not None:
        return hit_local
    return refresh_token(raw)


def refresh_token(raw: str) -> TokenPrincipal | None:
    """Resolve a token from the shared cache (else the database) and keep the answer in process
    memory: a valid token for ``TOKEN_LOCAL_CACHE_SECONDS`` from now, an invalid one dropped.
    Every local entry is thus at most that old since the shared cache said it was valid: the
    revocation bound."""
    key_hash = hash_token(raw)
    principal = _resolve_shared(key_hash)
    ttl = getattr(settings, "TOKEN_LOCAL_CACHE_SECONDS", 1.0)
    with local_tokens_lock:
        if principal is None or ttl <= 0:
            local_tokens.pop(key_hash, None)
        else:
            if len(local_tokens) >= LOCAL_MAX:
                local_tokens.clear()
            local_tokens[key_hash] = (time.monotonic() + ttl, principal)
    return principal


REFRESH_AHEAD = 0.25
"""Share of ``TOKEN_LOCAL_CACHE_SECONDS`` before its end in which a hit also refreshes the entry."""
_ahead = RefreshAhead(REFRESH_AHEAD)


def resolve_token_local(
    raw: str, refresh: Callable[[Callable[[], None]], object] | None = None
) -> TokenPrincipal | None:
    """A token this process resolved less than ``TOKEN_LOCAL_CACHE_SECONDS`` ago, from process
    memory only (no shared cache, no database: the event loop's check); None on a miss or a
    stale entry, which ``resolve_token`` decides (and caches). ``refresh``: runs a callable in
    the background; given, a hit in the entry's last ``REFRESH_AHEAD`` of its time has it
    refreshed there (``refresh_token``, once at a time per token), so a busy token never goes
    stale and its requests never wait for the shared cache."""
    key_hash = hash_token(raw)
    hit_local = local_tokens.get(key_hash)
    now = time.monotonic()
    if hit_local is None or hit_local[0] <= now:
        return None
    ttl = getattr(settings, "TOKEN_LOCAL_CACHE_SECONDS", 1.0)
    _ahead.hit(key_hash, hit_local[0] - now, ttl, refresh, refresh_token, raw)
    return hit_local[1]


def _resolve_shared(key_hash: str) -> TokenPrincipal | None:
    ck = token_cache_key(key_hash)
    try:
        hit = cache.get(ck)
    except Exception:  # noqa: BLE001 - Redis may vanish; the database answers
        hit = None
    if hit == "-":
        return None
    if hit:
        parts = hit.split(":")
        if len(parts) == 3 and parts[2] in roles.ROLES:
            return TokenPrincipal(token_id=int(parts[0]), merchant_id=int(parts[1]), role=parts[2])
        # An entry written before tokens had roles: ask the database. It is not deleted (that
        # could drop a revoked marker set meanwhile); it expires after TOKEN_CACHE_SECONDS.
    token = (
        ApiToken.objects.filter(key_hash=key_hash, revoked_at__isnull=True, merchant__is_active=True)
        .only("id", "merchant_id", "role", "last_used_at")
        .first()
    )
    value = f"{token.pk}:{token.merchant_id}:{token.role}" if token else "-"
    try:
        cache.add(ck, value, timeout=settings.TOKEN_CACHE_SECONDS)  # never overwrite a revoked marker
    except Exception:  # noqa: BLE001
        pass
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return TokenPrincipal(token_id=token.pk, merchant_id=token.merchant_id, role=token.role)


def token_from_header(value: str) -> str:
    parts = value.split()
    if len(parts) == 2 and parts[0].lower() in {"token", "bearer"}:
        return parts[1]
    return ""


class MerchantTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        raw = token_from_header(header)
        if not raw:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>' or 'Token <token>'.")
        principal = resolve_token(raw)
        if principal is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        request.merchant_id = principal.merchant_id
        return principal, principal

    def authenticate_header(self, request) -> str:
        return self.keyword


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_METHOD_VERBS = {"POST": "add", "PUT": "change", "PATCH": "change", "DELETE": "delete"}
_ACTION_VERBS = {"create": "add", "update": "change", "partial_update": "change", "destroy": "delete"}


def required_capability(request, view) -> tuple[str | None, str]:
    """The ``(area, verb)`` a request to ``view`` needs (:mod:`apps.merchants.roles`).

    A view declares ``role_area``; an extra action may declare its own in ``role_actions``
    (``{"cancel": ("orders", "cancel")}``). Reads need ``view``; create/update/delete need
    ``add``/``change``/``delete``; any other write (a custom action) needs ``change``. A view
    that declares no area fails closed: no role may do anything there (and a test requires
    every API view to declare one).
    """
    area = getattr(view, "role_area", None)
    action = getattr(view, "action", None)
    declared = getattr(view, "role_actions", {}).get(action) if action else None
    if declared:
        return declared
    if request.method in SAFE_METHODS or (not action and not hasattr(view, request.method.lower())):
        return area, "view"  # a read, or a method the view does not have (DRF answers 405)
    verb = _ACTION_VERBS.get(action or "") or ("change" if action else _METHOD_VERBS.get(request.method, "change"))
    return area, verb


class IsMerchantToken(permissions.BasePermission):
    """A valid token whose role may do what the request asks (403 ``insufficient_role``)."""

    def has_permission(self, request, view) -> bool:
        principal = request.auth
        if not isinstance(principal, TokenPrincipal):
            return False  # DRF answers 401 (no or bad token)
        area, verb = required_capability(request, view)
        roles.require(principal.role, area, verb)
        return True
