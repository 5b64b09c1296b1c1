"""Report export pages: a POST from a report page makes a job (``exports.report_export_create``)
and redirects to its page, which polls a small JSON endpoint (``static/js/export-progress.js``)
and offers the file when it is written. Staff make and see the exports of the shops where their
role may export the reports (``roles.REPORTS``, "export"); another shop's job is a 404 like no job,
and a login whose role has no reports anywhere gets the reports' 403 page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.files.storage import storages
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from apps.catalog import selectors as catalog_selectors
from apps.merchants import roles
from apps.merchants.admin_scoping import role_scope
from apps.merchants.models import Merchant
from apps.orders.views import problem

from .exports import (
    CONTENT_TYPES,
    FORMATS,
    export_filename,
    job_state,
    report_export_create,
    report_export_expire,
)
from .models import ReportExport, SessionReport
from .rollups import mark_dirty
from .views import no_reports


def _scope(request: HttpRequest) -> list[int] | None:
    """The shops whose reports the login may export."""
    return role_scope(request, roles.REPORTS, "export")


def _bad_format(request: HttpRequest, kind: str) -> HttpResponse:
    allowed = ", ".join(f.upper() for f in FORMATS[kind])
    return problem(
        request,
        status=400,
        title=_("No such export format"),
        message=_("Choose one of: %(formats)s.") % {"formats": allowed},
    )


def _start(request: HttpRequest, *, merchant_id: int, kind: str, session_id: int | None = None) -> HttpResponse:
    fmt = request.POST.get("format", "")
    if fmt not in FORMATS[kind]:
        return _bad_format(request, kind)
    job = report_export_create(
        merchant_id=merchant_id, user_id=request.user.pk, kind=kind, fmt=fmt, session_id=session_id
    )
    return HttpResponseRedirect(reverse("report-export", args=[job.pk]))


@login_required
@require_POST
def session_export(request: HttpRequest, session_id: int) -> HttpResponse:
    scope = _scope(request)
    if scope == []:
        return no_reports(request)
    session = catalog_selectors.session_scoped(session_id=session_id, merchant_ids=scope)
    if session is None:
        return problem(request, status=404, title=_("Show not found"), message=_("There is no such show in your shop."))
    if not SessionReport.objects.filter(session_id=session.pk).exists():
        mark_dirty(session.pk)
        return problem(
            request,
            status=409,
            title=_("Report not ready"),
            message=_("This show's report is not computed yet, so there is nothing to export; try again in a minute."),
        )
    return _start(request, merchant_id=session.merchant_id, kind=ReportExport.Kind.SESSION, session_id=session.pk)


@login_required
@require_POST
def slots_export(request: HttpRequest) -> HttpResponse:
    scope = _scope(request)
    if scope == []:
        return no_reports(request)
    merchants = Merchant.objects.all() if scope is None else Merchant.objects.filter(pk__in=scope)
    chosen = request.POST.get("merchant", "")
    merchant = merchants.filter(pk=chosen).first() if chosen.isdigit() else merchants.order_by("name").first()
    if merchant is None:
        return problem(request, status=404, title=_("Shop not found"), message=_("There is no such shop."))
    return _start(request, merchant_id=merchant.pk, kind=ReportExport.Kind.SLOTS)


def _job(request: HttpRequest, job_id: int) -> ReportExport | None:
    """The login's job, a killed one (still "running" past the task timeout) failed first."""
    jobs = ReportExport.objects.select_related("session", "merchant").filter(pk=job_id)
    scope = _scope(request)
    if scope is not None:
        jobs = jobs.filter(merchant_id__in=scope)
    job = jobs.first()
    return report_export_expire(job) if job is not None else None


def _no_job(request: HttpRequest) -> HttpResponse:
    return problem(request, status=404, title=_("Export not found"), message=_("There is no such export in your shop."))


@login_required
@never_cache
def export_job(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _job(request, job_id)
    if job is None:
        return _no_job(request)
    back = (
        reverse("report-session", args=[job.session_id])
        if job.kind == ReportExport.Kind.SESSION
        else reverse("report-slots-page") + f"?merchant={job.merchant_id}"
    )
    again = (
        reverse("report-session-export", args=[job.session_id])
        if job.kind == ReportExport.Kind.SESSION
        else reverse("report-slots-export")
    )
    context = {
        "job": job,
        "state": job_state(job, reverse("report-export-download", args=[job.pk])),
        "progress_url": reverse("report-export-progress", args=[job.pk]),
        "back_url": back,
        "again_url": again,  # a failed job's page offers the same export again
        "what": job.session.title if job.session else _("Time slots"),
    }
    return render(request, "reports/export_job.html", context)


@login_required
@never_cache
def export_progress(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _job(request, job_id)
    if job is None:
        return JsonResponse({"code": "not_found", "message": _("There is no such export in your shop.")}, status=404)
    return JsonResponse(job_state(job, reverse("report-export-download", args=[job.pk])))


@login_required
@never_cache
def export_download(request: HttpRequest, job_id: int) -> HttpResponseBase:
    job = _job(request, job_id)
    if job is None:
        return _no_job(request)
    if job.status != ReportExport.Status.DONE or not job.file:
        return problem(request, status=404, title=_("Export not ready"), message=_("This export is not ready."))
    return FileResponse(
        storages["exports"].open(job.file, "rb"),
        as_attachment=True,
        filename=export_filename(job),
        content_type=CONTENT_TYPES[job.format],
    )
