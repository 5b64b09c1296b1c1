from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from apps.catalog.models import MAX_UNITS, SKU
from apps.merchants.models import Merchant


class Stock(models.Model):
    """Stock truth for one SKU. ``0 <= reserved <= on_hand <= MAX_UNITS`` is a database CHECK."""

    merchant_path = "sku__merchant"

    sku = models.OneToOneField(
        SKU, on_delete=models.CASCADE, related_name="stock", primary_key=True, verbose_name=_("SKU")
    )
    on_hand = models.IntegerField(_("on hand"), default=0)
    reserved = models.IntegerField(_("reserved"), default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("stock")
        verbose_name_plural = _("stock")
        constraints = [
            models.CheckConstraint(
                condition=Q(reserved__gte=0) & Q(reserved__lte=F("on_hand")), name="stock_reserved_within_on_hand"
            ),
            models.CheckConstraint(condition=Q(on_hand__lte=MAX_UNITS), name="stock_on_hand_within_bound"),
        ]

    def __str__(self) -> str:
        return _("%(sku)s: %(on_hand)d on hand, %(reserved)d reserved") % {
            "sku": self.sku.code,
            "on_hand": self.on_hand,
            "reserved": self.reserved,
        }

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class StockMovement(models.Model):
    """Append-only ledger: every change of a Stock row, from which the row can be recomputed."""

    class Kind(models.TextChoices):
        RECEIVE = "receive", _("Receive")
        RESERVE = "reserve", _("Reserve")
        RELEASE = "release", _("Release")
        SHIP = "ship", _("Ship")
        ADJUST = "adjust", _("Adjust")
        RETURN = "return", _("Return (restocked)")

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+", verbose_name=_("merchant"))
    sku = models.ForeignKey(
        SKU, on_delete=models.PROTECT, related_name="movements", db_index=False, verbose_name=_("SKU")
    )  # (sku, id)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    on_hand_delta = models.IntegerField(_("on hand change"), default=0)
    reserved_delta = models.IntegerField(_("reserved change"), default=0)
    reason = models.CharField(_("reason"), max_length=200, blank=True, default="")
    reference = models.CharField(_("reference"), max_length=100, blank=True, default="")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("stock movement")
        verbose_name_plural = _("stock movements")
        ordering = ["-id"]
        indexes = [models.Index(fields=["sku", "id"]), models.Index(fields=["reference"])]

    def __str__(self) -> str:
        return _("%(kind)s %(sku)s: on hand %(on_hand)+d, reserved %(reserved)+d") % {
            "kind": self.get_kind_display(),
            "sku": self.sku.code,
            "on_hand": self.on_hand_delta,
            "reserved": self.reserved_delta,
        }


class StockSync(models.Model):
    """One ``POST /api/v1/stock/sync`` from a merchant's ERP/WMS, kept so a retry with the same
    ``sync_id`` gets the same answer and changes nothing (``apps/inventory/sync.py``)."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+", verbose_name=_("merchant"))
    sync_id = models.CharField(_("sync id"), max_length=100)
    request_hash = models.CharField(_("request hash"), max_length=64, editable=False)
    # The answer as sent, as text: a replay answers the same bytes (jsonb would reorder the keys).
    response = models.TextField(_("response"), editable=False, default="")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("stock sync")
        verbose_name_plural = _("stock syncs")
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["merchant", "sync_id"], name="uniq_stock_sync_per_merchant")]

    def __str__(self) -> str:
        return self.sync_id
