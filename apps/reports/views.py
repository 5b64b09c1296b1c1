"""Report pages for the merchant's staff (a login that is staff of the shop; superusers see every
shop). They read the rollups only (``SessionReport``), never the orders."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from apps.catalog import selectors as catalog_selectors
from apps.merchants import selectors as merchant_selectors
from apps.merchants.models import Merchant
from apps.orders.views import problem

from .models import SessionReport
from .rollups import mark_dirty
from .slots import WEEKDAYS, slot_analysis

PAGE = 50


def _scope(request: HttpRequest) -> list[int] | None:
    return merchant_selectors.staff_scope(request.user)


def _no_shop(request: HttpRequest) -> HttpResponse:
    return problem(
        request,
        status=403,
        title=_("No shop for this login"),
        message=_("Your login is not staff of any shop, so there are no reports to show."),
    )


@login_required
@never_cache
def report_index(request: HttpRequest) -> HttpResponse:
    scope = _scope(request)
    if scope == []:
        return _no_shop(request)
    qs = SessionReport.objects.select_related("session", "merchant").order_by("-starts_at", "-session_id")
    if scope is not None:
        qs = qs.filter(merchant_id__in=scope)
    page = Paginator(qs, PAGE).get_page(request.GET.get("page"))
    return render(request, "reports/index.html", {"page": page, "reports": page.object_list})


@login_required
@never_cache
def report_session(request: HttpRequest, session_id: int) -> HttpResponse:
    scope = _scope(request)
    session = catalog_selectors.session_scoped(session_id=session_id, merchant_ids=scope)
    if session is None:  # another merchant's show is as good as no show
        return problem(request, status=404, title=_("Show not found"), message=_("There is no such show in your shop."))
    report = SessionReport.objects.filter(session_id=session.pk).first()
    if report is None:
        mark_dirty(session.pk)
        return problem(
            request,
            status=404,
            title=_("Report not ready"),
            message=_("This show's report is being computed; try again in a minute."),
        )
    figures = report.figures
    context = {
        "session": session,
        "merchant": session.merchant,
        "report": report,
        "f": figures,
        "top_regions": figures["regions"][:10],
        "page_data": {
            "figures": figures,
            "text": {
                "orders": _("Orders"),
                "paid": _("Paid"),
                "gmv": _("GMV (paid)"),
                "units": _("Units taken"),
                "seconds": _("Seconds since the listing opened"),
                "minute": _("Minutes since the show started"),
                "new": _("New buyers"),
                "returning": _("Returning buyers"),
                "no_address": _("No address"),
                "channel": {
                    "storefront": _("Storefront"),
                    "api": _("API"),
                    "douyin": _("Douyin"),
                    "kuaishou": _("Kuaishou"),
                    "taobao": _("Taobao"),
                },
            },
        },
    }
    return render(request, "reports/session.html", context)


@login_required
@never_cache
def report_slots(request: HttpRequest) -> HttpResponse:
    """The time-slot page: a weekday × hour heatmap of GMV per hour on air, the recommendations with
    their sample sizes, and the streamers and categories."""
    scope = _scope(request)
    if scope == []:
        return _no_shop(request)
    merchants = Merchant.objects.order_by("name") if scope is None else Merchant.objects.filter(pk__in=scope)
    chosen = request.GET.get("merchant")
    merchant = merchants.filter(pk=chosen).first() if chosen and chosen.isdigit() else merchants.first()
    if merchant is None:
        return problem(request, status=404, title=_("Shop not found"), message=_("There is no such shop."))
    result = slot_analysis(merchant_id=merchant.pk)
    cells = {(c["weekday"], c["hour"]): c for c in result["cells"]}
    top = max((Decimal(c["gmv_per_hour"]) for c in result["cells"]), default=Decimal(0))
    rows = []
    for wd, name in enumerate(WEEKDAYS):
        row = []
        for hour in range(24):
            cell = cells.get((wd, hour))
            level = int(Decimal(cell["gmv_per_hour"]) / top * 9) if cell and top else None
            row.append({"hour": hour, "cell": cell, "level": level})
        rows.append({"name": name, "cells": row})
    return render(
        request,
        "reports/slots.html",
        {
            "merchant": merchant,
            "merchants": merchants,
            "r": result,
            "rows": rows,
            "hours": range(24),
            "weekdays": WEEKDAYS,
        },  # fmt: skip
    )
