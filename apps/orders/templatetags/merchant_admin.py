"""The merchant's home page in the back office (the admin index): figures from
``orders/backoffice.py``, the exception queue's open counts (``hooks.order_exception_counts``),
links to the live dashboard and the storefronts."""

from __future__ import annotations

from typing import Any

from django import template

from apps.merchants import roles
from apps.merchants.admin_scoping import is_superuser, user_merchant_ids
from apps.merchants.models import Merchant
from apps.orders.backoffice import home_figures
from apps.orders.hooks import order_exception_counts

register = template.Library()


@register.inclusion_tag("admin/merchant_overview.html", takes_context=True)
def merchant_overview(context: dict[str, Any]) -> dict[str, Any]:
    request = context["request"]
    ids = None if is_superuser(request) else user_merchant_ids(request)
    merchants = Merchant.objects.filter(is_active=True)
    if ids is not None:
        merchants = merchants.filter(pk__in=ids)
    # The exception queue's open counts, for the merchants whose orders the login may see.
    queue_ids = None if ids is None else user_merchant_ids(request, roles.ORDERS, "view")
    return {
        **home_figures(merchant_ids=ids),
        "exceptions": order_exception_counts(merchant_ids=queue_ids),
        "merchants": list(merchants[:5]),
        # the reports' links only for a login whose role may read them somewhere (not customer service)
        "reports": ids is None or bool(user_merchant_ids(request, roles.REPORTS, "view")),
        "request": request,
    }
