"""Report pages for the merchant's staff (a login whose role in the shop has the reports,
``roles.REPORTS``; superusers see every shop). They read the rollups only (``SessionReport``), never the orders."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from apps.catalog import selectors as catalog_selectors
from apps.catalog.models import SKU
from apps.merchants import roles
from apps.merchants.admin_scoping import role_scope, user_roles
from apps.merchants.models import Merchant
from apps.orders.views import problem

from .exports import channel_names
from .forecast import forecast, on_hand_of, plan_of
from .forms import ForecastForm
from .models import SessionReport
from .rollups import mark_dirty
from .slots import WEEKDAYS, slot_analysis
from .suggestions import plan_defaults, suggestions

PAGE = 50


def _scope(request: HttpRequest) -> list[int] | None:
    """The shops whose reports the login may read: where its role has the reports (``roles.REPORTS``)."""
    return role_scope(request, roles.REPORTS, "view")


def no_reports(request: HttpRequest) -> HttpResponse:
    """403: a login with no shop, or whose role in its shops does not include the reports."""
    if not user_roles(request):
        return problem(
            request,
            status=403,
            title=_("No shop for this login"),
            message=_("Your login is not staff of any shop, so there are no reports to show."),
        )
    return problem(
        request,
        status=403,
        title=_("No reports for this role"),
        message=_("Your role in your shop does not include the reports; ask the shop's owner."),
    )


@login_required
@never_cache
def report_index(request: HttpRequest) -> HttpResponse:
    scope = _scope(request)
    if scope == []:
        return no_reports(request)
    qs = SessionReport.objects.select_related("session", "merchant").order_by("-starts_at", "-session_id")
    if scope is not None:
        qs = qs.filter(merchant_id__in=scope)
    page = Paginator(qs, PAGE).get_page(request.GET.get("page"))
    return render(request, "reports/index.html", {"page": page, "reports": page.object_list})


@login_required
@never_cache
def report_session(request: HttpRequest, session_id: int) -> HttpResponse:
    scope = _scope(request)
    if scope == []:
        return no_reports(request)
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
                "channel": channel_names(),  # the chart's labels; the table is named on the server
            },
        },
    }
    return render(request, "reports/session.html", context)


def _pick_merchant(request: HttpRequest) -> HttpResponse | tuple[Merchant, QuerySet[Merchant]]:
    """The shop a page across shows is about (``?merchant=``, else the login's first), and the shops
    the login may pick from; or the page saying there is none."""
    scope = _scope(request)
    if scope == []:
        return no_reports(request)
    merchants = Merchant.objects.order_by("name") if scope is None else Merchant.objects.filter(pk__in=scope)
    chosen = request.GET.get("merchant")
    merchant = merchants.filter(pk=chosen).first() if chosen and chosen.isdigit() else merchants.first()
    if merchant is None:
        return problem(request, status=404, title=_("Shop not found"), message=_("There is no such shop."))
    return merchant, merchants


@login_required
@never_cache
def report_slots(request: HttpRequest) -> HttpResponse:
    """The time-slot page: a weekday × hour heatmap of GMV per hour on air, the recommendations with
    their sample sizes, and the streamers and categories."""
    picked = _pick_merchant(request)
    if isinstance(picked, HttpResponse):
        return picked
    merchant, merchants = picked
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


def _slot_name(weekday: int, hour: int) -> str:
    return f"{WEEKDAYS[weekday]} {hour:02d}:00"


@login_required
@never_cache
def report_forecast(request: HttpRequest) -> HttpResponse:
    """The demand-forecast page: plan a show (pre-filled with the next recommended slot and the
    last show's streamer and SKUs), see each SKU's expected units, interval, quota and restock; then
    the restock and featuring suggestions, and how such suggestions did in the backtest."""
    picked = _pick_merchant(request)
    if isinstance(picked, HttpResponse):
        return picked
    merchant, merchants = picked
    skus = list(
        SKU.objects.filter(merchant=merchant).select_related("product", "stock").order_by("product__category", "code")
    )
    defaults = plan_defaults(merchant_id=merchant.pk)
    asked = any(k in request.GET for k in ForecastForm.base_fields)
    if asked:  # the user's plan: its errors are a 400
        form = plan = ForecastForm(request.GET, skus=skus)
    else:  # the defaults fill the form; they are forecast when they make a valid plan, never a 400
        initial = ForecastForm.plan_data(defaults, skus=skus) if defaults is not None else {}
        form = ForecastForm(initial=initial, skus=skus)
        plan = ForecastForm(initial, skus=skus)
    result = None
    if plan.is_bound and plan.is_valid():
        planned, on_hand = plan_of(
            skus=[plan.catalogue[c] for c in plan.cleaned_data["sku"]],
            streamer=plan.cleaned_data["streamer"],
            starts_at=plan.starts_at(),
            hours=float(plan.cleaned_data["hours"]),
        )
        result = forecast(merchant_id=merchant.pk, plan=planned, on_hand=on_hand)
        for row in result["skus"]:
            row["name"] = plan.catalogue[row["sku"]].product.name
    chosen = set(form["sku"].value() or [])
    groups: dict[str, list[dict[str, Any]]] = {}
    for s in skus:
        groups.setdefault((s.product.category or "").strip(), []).append(
            {
                "code": s.code,
                "name": s.product.name,
                "variant": s.name,
                "checked": s.code in chosen,
                "on_hand": on_hand_of(s),
            }  # fmt: skip
        )
    advice = suggestions(merchant_id=merchant.pk)
    for item in (advice["featuring"] or {}).get("items", []):
        item["best"]["slot"] = _slot_name(item["best"]["weekday"], item["best"]["hour"])
        item["usual"]["slot"] = _slot_name(item["usual"]["weekday"], item["usual"]["hour"])
    streamers = sorted(set(SessionReport.objects.filter(merchant=merchant).values_list("streamer", flat=True)) - {""})
    slot = defaults.slot if defaults else None
    status = 400 if asked and form.errors else 200
    context = {
        "merchant": merchant,
        "merchants": merchants,
        "form": form,
        "groups": sorted(groups.items()),
        "streamers": streamers,
        "result": result,
        "defaults": defaults,
        "default_slot": _slot_name(slot["weekday"], slot["hour"]) if slot else "",
        "s": advice,
        "bt": advice["backtest"],
        "page_data": {
            "skus": result["skus"] if result else [],
            "text": {"expected": _("Expected units"), "interval": _("80% interval"), "last": _("Last show")},
        },
    }
    return render(request, "reports/forecast.html", context, status=status)
