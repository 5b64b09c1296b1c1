"""Tenancy writes: merchants, staff memberships, API tokens."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from apps.core.errors import ApplicationError

from .models import ApiToken, Membership, Merchant
from .tokens import forget_local, hash_token, token_cache_key

TOKEN_PREFIX = "lc_"
REVOKED_MARKER_SECONDS = 3600
STAFF_APPS = ("catalog", "inventory", "orders", "merchants", "fraud", "platforms", "fulfilment", "reports", "webhooks")


@transaction.atomic
def merchant_create(*, slug: str, name: str) -> Merchant:
    if Merchant.objects.filter(slug=slug).exists():
        raise ApplicationError(f"merchant {slug!r} already exists", code="merchant_exists", http_status=409)
    return Merchant.objects.create(slug=slug, name=name)


@transaction.atomic
def staff_create(*, merchant: Merchant, username: str, password: str, role: str = Membership.Role.OWNER):
    """Create (or attach) a staff login that may use the admin for this merchant only."""
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username, defaults={"is_staff": True})
    if created or password:
        user.set_password(password)
    user.is_staff = True
    user.save()
    perms = Permission.objects.filter(content_type__app_label__in=STAFF_APPS)
    user.user_permissions.add(*perms)
    Membership.objects.get_or_create(user=user, merchant=merchant, defaults={"role": role})
    return user


@transaction.atomic
def api_token_create(*, merchant: Merchant, name: str) -> tuple[ApiToken, str]:
    """Make a token; returns the row and the raw token (shown once, stored hashed)."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(merchant=merchant, name=name, prefix=raw[:10], key_hash=hash_token(raw))
    return token, raw


def api_tokens_forget(*, merchant: Merchant) -> None:
    """Drop the merchant's tokens from the auth cache after commit, so a change of the merchant
    (deactivation) reaches the API at once in this process, and within
    ``TOKEN_LOCAL_CACHE_SECONDS`` in the others, instead of after ``TOKEN_CACHE_SECONDS``."""
    keys = [token_cache_key(h) for h in ApiToken.objects.filter(merchant=merchant).values_list("key_hash", flat=True)]
    if keys:
        hashes = [k.split(":", 1)[1] for k in keys]

        def forget() -> None:
            forget_local(hashes)
            cache.delete_many(keys)

        transaction.on_commit(forget)


@transaction.atomic
def api_token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    key = token_cache_key(token.key_hash)

    # A "revoked" marker, not a delete: a request that read the token from the database just
    # before this commit only ever *adds* to the cache (cache.add), so it cannot put it back.
    def mark_revoked() -> None:
        forget_local([token.key_hash])
        cache.set(key, "-", timeout=REVOKED_MARKER_SECONDS)

    transaction.on_commit(mark_revoked)
    return token
