"""Rollups the reports read (never the orders table on a page view)."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.catalog.models import LiveSession
from apps.merchants.models import Merchant

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
    computed_at = models.DateTimeField(_("computed at"), auto_now=True)

    class Meta:
        verbose_name = _("show report")
        verbose_name_plural = _("show reports")
        indexes = [models.Index(fields=["merchant", "starts_at"])]

    def __str__(self) -> str:
        return str(self.session_id)
