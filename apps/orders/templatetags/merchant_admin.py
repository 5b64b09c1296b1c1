"""The merchant's overview on the admin index: today's shows, live numbers, useful links."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import template
from django.db.models import Q
from django.utils import timezone

from apps.catalog.models import LiveSession
from apps.merchants.admin_scoping import is_superuser, user_merchant_ids
from apps.merchants.models import Merchant
from apps.orders.selectors import session_summary

register = template.Library()


@register.inclusion_tag("admin/merchant_overview.html", takes_context=True)
def merchant_overview(context: dict[str, Any]) -> dict[str, Any]:
    request = context["request"]
    ids = None if is_superuser(request) else user_merchant_ids(request)
    now = timezone.localtime()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    shows = LiveSession.objects.select_related("merchant").filter(
        Q(status=LiveSession.Status.LIVE)
        | Q(scheduled_at__gte=start, scheduled_at__lt=start + timedelta(days=1))
        | Q(started_at__gte=start)
    )
    merchants = Merchant.objects.all()
    if ids is not None:
        shows = shows.filter(merchant_id__in=ids)
        merchants = merchants.filter(pk__in=ids)
    rows = [
        {"show": s, "stats": session_summary(session_id=s.pk)} for s in shows.order_by("-status", "scheduled_at")[:20]
    ]
    return {"shows": rows, "merchants": list(merchants[:5]), "today": now.date()}
