"""Tenancy writes: merchants, staff memberships, API tokens."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from apps.core.errors import ApplicationError

from . import roles
from .models import ApiToken, Membership, Merchant
from .tokens import forget_local, hash_token, token_cache_key

TOKEN_PREFIX = "lc_"
REVOKED_MARKER_SECONDS = 3600


@transaction.atomic
def merchant_create(*, slug: str, name: str) -> Merchant:
    if Merchant.objects.filter(slug=slug).exists():
        raise ApplicationError(f"merchant {slug!r} already exists", code="merchant_exists", http_status=409)
    return Merchant.objects.create(slug=slug, name=name)


def _check_role(role: str) -> None:
    if role not in roles.ROLES:
        raise ApplicationError(
            f"unknown role {role!r}", code="unknown_role", extra={"role": role, "roles": list(roles.ROLES)}
        )


@transaction.atomic
def staff_create(*, merchant: Merchant, username: str, password: str, role: str = Membership.Role.OWNER):
    """Create (or attach) a staff login that may use the admin for this merchant, with ``role``
    there (:mod:`apps.merchants.roles`). Its role is all it is granted: no Django model
    permissions are given (the admin consults the role). An existing member keeps the row and
    takes the new role."""
    _check_role(role)
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username, defaults={"is_staff": True})
    if created or password:
        user.set_password(password)
    user.is_staff = True
    user.save()
    Membership.objects.update_or_create(user=user, merchant=merchant, defaults={"role": role})
    return user


@transaction.atomic
def api_token_create(*, merchant: Merchant, name: str, role: str = roles.OPERATOR) -> tuple[ApiToken, str]:
    """Make a token with ``role`` (fixed for its life); returns the row and the raw token (shown
    once, stored hashed)."""
    _check_role(role)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(merchant=merchant, name=name, role=role, prefix=raw[:10], key_hash=hash_token(raw))
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


class MembershipError(ApplicationError):
    http_status = 409


def ensure_not_last_owner(*, membership: Membership, new_role: str | None) -> None:
    """Refuse to demote (``new_role``) or remove (``None``) a merchant's last owner."""
    current = Membership.objects.filter(pk=membership.pk).values_list("role", flat=True).first()
    if current != roles.OWNER or new_role == roles.OWNER:
        return
    owners = Membership.objects.filter(merchant_id=membership.merchant_id, role=roles.OWNER).exclude(pk=membership.pk)
    if not owners.exists():
        raise MembershipError("a merchant keeps at least one owner", code="last_owner")


def _refuse_if_last_owner(membership: Membership, new_role: str | None) -> None:
    # Lock the merchant's owner rows first: two owners demoting each other at once cannot both win.
    list(
        Membership.objects.select_for_update()
        .filter(merchant_id=membership.merchant_id, role=roles.OWNER)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    ensure_not_last_owner(membership=membership, new_role=new_role)


@transaction.atomic
def member_add(*, merchant: Merchant, username: str, password: str, role: str) -> Membership:
    """An owner adds a staff member: a NEW login (an owner never takes over someone else's login,
    which may belong to another merchant), with ``role`` in ``merchant``."""
    _check_role(role)
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise MembershipError(
            "this username is taken; pick another", code="username_taken", extra={"field": "username"}
        )
    user = User(username=username, is_staff=True)
    user.set_password(password)
    user.save()
    return Membership.objects.create(user=user, merchant=merchant, role=role)


@transaction.atomic
def member_role_set(*, membership: Membership, role: str) -> Membership:
    """Give a member another role (refused for the merchant's last owner)."""
    _check_role(role)
    _refuse_if_last_owner(membership, role)
    Membership.objects.filter(pk=membership.pk).update(role=role)
    membership.role = role
    return membership


@transaction.atomic
def member_remove(*, membership: Membership) -> None:
    """Take a login's access to the merchant away (its login stays; refused for the last owner)."""
    _refuse_if_last_owner(membership, None)
    membership.delete()
