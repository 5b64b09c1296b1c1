"""Rollups the reports read (never the orders table on a page view), and the report exports."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.catalog.models import LiveSession
from apps.merchants.models import Merchant
from apps.orders.models import ExportJob

MONEY: dict[str, Any] = {"max_digits": 14, "decimal_places": 2}


class SessionReport(models.Model):
    """One show's figures (``figures.session_figures``), recomputed by the rollup job after its
    orders change (each minute while it is live). The columns are what analyses across shows read
    (time slots, streamers, forecasts) without opening ``figures``. Read from the read replica
    when one is configured (``apps.core.db_router``): only the rollup job writes it."""

    replica_reads = True

    session = models.OneToOneField(
        LiveSession, on_delete=models.CASCADE, primary_key=True, related_name="report", verbose_name=_("show")
    )
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", verbose_name=_("merchant"))
    starts_at = models.DateTimeField(_("started"), null=True, blank=True)
    streamer = models.CharField(_("streamer"), max_length=100, blank=True, default="")
    hours_on_air = models.DecimalField(_("hours on air"), max_digits=8, decimal_places=3, default=0)
    orders = models.PositiveIntegerField(_("orders"), default=0)
    paid = models.PositiveIntegerField(_("paid orders"), default=0)
    units = models.PositiveIntegerField(_("units"), default=0)
    gmv = models.DecimalField(_("GMV"), **MONEY, default=0)
    refunded = models.DecimalField(_("refunds"), **MONEY, default=0)
    figures = models.JSONField(_("figures"), default=dict)
    # An ended show: what analyses across shows (time slots, forecast, suggestions) read.
    ended = models.BooleanField(_("show ended"), default=False)
    computed_at = models.DateTimeField(_("computed at"), auto_now=True)
    # When the figures last changed (a recomputation that found them equal leaves it): what caches
    # of analyses across shows are keyed by (``history_stamp``).
    changed_at = models.DateTimeField(_("figures changed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("show report")
        verbose_name_plural = _("show reports")
        indexes = [models.Index(fields=["merchant", "starts_at"])]

    def __str__(self) -> str:
        return str(self.session_id)


class ReportExport(models.Model):
    """A report written to a file (CSV, XLSX, PDF) by a django-q2 task (``exports.report_export_run``),
    which counts the sections it has written so that the job's page shows a moving bar. The file is
    kept in the private ``exports`` storage and read back only by the tenant-walled download."""

    class Kind(models.TextChoices):
        SESSION = "session", _("Show report")
        SLOTS = "slots", _("Time slots")

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        XLSX = "xlsx", "XLSX"
        PDF = "pdf", "PDF"

    Status = ExportJob.Status  # queued, running, done, failed: the order exports' states

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", verbose_name=_("merchant"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
    )  # null: asked through the API (a token has no user)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    session = models.ForeignKey(
        LiveSession, on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("show")
    )  # the show of a show report; none for the time slots
    format = models.CharField(_("format"), max_length=8, choices=Format.choices)
    language = models.CharField(_("language"), max_length=16, default="zh-hans")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.QUEUED)
    steps_done = models.PositiveIntegerField(_("sections done"), default=0)
    steps_total = models.PositiveIntegerField(_("sections in total"), default=0)
    file = models.CharField(_("file"), max_length=255, blank=True, default="")  # a name in storages["exports"]
    error = models.CharField(_("error"), max_length=200, blank=True, default="")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)  # set by the run that claimed it
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("report export")
        verbose_name_plural = _("report exports")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="slots") | models.Q(session__isnull=False), name="report_export_session_kind"
            ),
            models.CheckConstraint(condition=~models.Q(kind="slots", format="pdf"), name="report_export_slots_no_pdf"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}-{self.pk}.{self.format}"

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        return int(self.steps_done * 100 / self.steps_total) if self.steps_total else 0


def past_reports(merchant_id: int) -> models.QuerySet[SessionReport]:
    """The reports of the merchant's ended shows: what analyses across shows read (a live show's
    figures are not final, and a scheduled show has sold nothing)."""
    return SessionReport.objects.filter(merchant_id=merchant_id, ended=True, starts_at__isnull=False)


def history_stamp(merchant_id: int) -> tuple[int, str, int]:
    """Changes when an ended show's report is added, deleted or its figures change (not when a
    recomputation finds them as they were, nor with a live show's minutes): what caches of analyses
    across shows are keyed by (one indexed aggregate)."""
    seen = past_reports(merchant_id).aggregate(
        n=models.Count("pk"), at=models.Max("changed_at"), last=models.Max("session_id")
    )
    return seen["n"], seen["at"].isoformat() if seen["at"] else "", seen["last"] or 0
