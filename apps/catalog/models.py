from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TypedDict

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.merchants.models import Merchant

from . import window


class MoneyField(TypedDict):
    max_digits: int
    decimal_places: int


MONEY: MoneyField = {"max_digits": 12, "decimal_places": 2}
MAX_UNITS = 10_000_000
"""The most units a SKU may have on hand, or a listing may offer (a database CHECK on stock)."""


class Platform(models.TextChoices):
    STOREFRONT = "storefront", "Live storefront"
    DOUYIN = "douyin", "Douyin 抖店"
    KUAISHOU = "kuaishou", "Kuaishou 快手小店"
    TAOBAO = "taobao", "Taobao / Tmall"


class Product(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="products")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["merchant", "name"])]

    def __str__(self) -> str:
        return self.name


class SKU(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="skus")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="skus")
    code = models.CharField(max_length=64)
    name = models.CharField(max_length=200, blank=True, default="")
    price = models.DecimalField(**MONEY, validators=[MinValueValidator(Decimal("0.01"))])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "SKU"
        ordering = ["product_id", "code"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "code"], name="uniq_sku_code_per_merchant"),
            models.CheckConstraint(condition=Q(price__gt=0), name="sku_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name or self.product.name}"


class LiveSession(models.Model):
    """A live show."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        LIVE = "live", "Live"
        ENDED = "ended", "Ended"

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="sessions")
    title = models.CharField(max_length=200)
    streamer = models.CharField(max_length=100)
    platforms = models.JSONField(default=list, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "live show"
        ordering = ["-scheduled_at", "-id"]
        indexes = [models.Index(fields=["merchant", "status"])]

    def __str__(self) -> str:
        return self.title


class Listing(models.Model):
    """A SKU on air in a show: flash price, quota carved out of the SKU's stock, buyer limit."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="listings")
    session = models.ForeignKey(LiveSession, on_delete=models.PROTECT, related_name="listings")
    sku = models.ForeignKey(SKU, on_delete=models.PROTECT, related_name="listings")
    price = models.DecimalField(**MONEY, validators=[MinValueValidator(Decimal("0.01"))])
    quota = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    sold = models.PositiveIntegerField(default=0, editable=False)  # units held by live orders
    per_buyer_limit = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    payment_window_seconds = models.PositiveIntegerField(default=900, validators=[MinValueValidator(30)])
    opens_at = models.DateTimeField(null=True, blank=True)
    closes_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    version = models.PositiveBigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session_id", "id"]
        indexes = [models.Index(fields=["merchant", "status"])]
        constraints = [
            models.CheckConstraint(condition=Q(sold__lte=models.F("quota")), name="listing_sold_within_quota"),
            models.CheckConstraint(condition=Q(price__gt=0), name="listing_price_positive"),
            models.CheckConstraint(condition=Q(per_buyer_limit__gte=1), name="listing_limit_positive"),
            models.CheckConstraint(
                condition=Q(opens_at__isnull=True) | Q(closes_at__isnull=True) | Q(closes_at__gt=models.F("opens_at")),
                name="listing_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku.code} @ {self.session.title}"

    @property
    def available(self) -> int:
        return max(self.quota - self.sold, 0)

    def effective_status(self, now: datetime | None = None) -> str:
        """``open`` only inside the window; ``scheduled`` before it; ``closed`` after it (``window``)."""
        return window.effective_status(
            status=self.status, opens_at=self.opens_at, closes_at=self.closes_at, now=now or timezone.now()
        )

    def is_open(self, now: datetime | None = None) -> bool:
        return window.is_open(
            status=self.status, opens_at=self.opens_at, closes_at=self.closes_at, now=now or timezone.now()
        )
