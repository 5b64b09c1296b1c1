"""Tenancy reads."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from .models import Membership, Merchant


def user_merchant_ids(*, user_id: int) -> list[int]:
    """The merchants a staff login belongs to (active merchants only)."""
    return list(
        Membership.objects.filter(user_id=user_id, merchant__is_active=True)
        .order_by("merchant_id")
        .values_list("merchant_id", flat=True)
    )


def staff_scope(user: Any) -> list[int] | None:
    """What a logged-in staff page may show: None for a superuser (every merchant), else the
    merchants the login belongs to (an empty list: none)."""
    if user.is_superuser:
        return None
    return user_merchant_ids(user_id=int(user.pk or 0))


def merchant_by_slug(*, slug: str) -> Merchant | None:
    return Merchant.objects.filter(slug=slug, is_active=True).first()


def merchant_list() -> QuerySet[Merchant]:
    """Every merchant (active or not), by slug, with its staff logins prefetched."""
    return Merchant.objects.order_by("slug").prefetch_related(
        Prefetch("memberships", queryset=Membership.objects.select_related("user").order_by("user__username"))
    )
