from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypedDict

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Case, F, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.merchants.models import Merchant

from . import window
from .images import product_image_path, sku_image_path, validate_image


class MoneyField(TypedDict):
    max_digits: int
    decimal_places: int


MONEY: MoneyField = {"max_digits": 12, "decimal_places": 2}
MAX_UNITS = 10_000_000
"""The most units a SKU may have on hand, or a listing may offer (a database CHECK on stock)."""


class Platform(models.TextChoices):
    STOREFRONT = "storefront", _("Live storefront")
    DOUYIN = "douyin", _("Douyin")
    KUAISHOU = "kuaishou", _("Kuaishou")
    TAOBAO = "taobao", _("Taobao / Tmall")


CATEGORY_MAX_LENGTH = 50


class Product(models.Model):
    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="products", verbose_name=_("merchant")
    )
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True, default="")
    category = models.CharField(
        _("category"),
        max_length=CATEGORY_MAX_LENGTH,
        blank=True,
        default="",
        db_default="",
        help_text=_("A short name the reports group sales by, e.g. 美妆, 服饰, 食品."),
    )
    is_active = models.BooleanField(_("on sale"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["merchant", "name"]),
            models.Index(fields=["merchant", "category"]),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def main_image(self) -> ProductImage | None:
        """The first picture by position (from ``prefetch_related("images")`` when there is one)."""
        first = self.images.all()[:1]  # served from the prefetch cache when prefetched
        return next(iter(first), None)


class ProductImage(models.Model):
    """A picture of a product; the one with the lowest position is its main picture."""

    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="product_images", verbose_name=_("merchant")
    )
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="images", verbose_name=_("product"))
    image = models.ImageField(
        _("image"),
        upload_to=product_image_path,
        validators=[validate_image],
        help_text=_("JPEG, PNG, WebP or GIF, at most 5 MB."),
    )
    alt = models.CharField(
        _("alt text"),
        max_length=200,
        blank=True,
        default="",
        help_text=_("What the picture shows, for screen readers."),
    )
    position = models.PositiveSmallIntegerField(
        _("position"), default=0, help_text=_("The lowest position is the main picture.")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("product image")
        verbose_name_plural = _("product images")
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["product", "position"])]

    def __str__(self) -> str:
        return self.alt or (self.image.name or "").rsplit("/", 1)[-1]


VARIANT_MAX_LENGTH = 40


class SKU(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="skus", verbose_name=_("merchant"))
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="skus", verbose_name=_("product"))
    code = models.CharField(_("SKU code"), max_length=64)
    name = models.CharField(_("variant name"), max_length=200, blank=True, default="")
    color = models.CharField(pgettext_lazy("variant", "colour"), max_length=VARIANT_MAX_LENGTH, blank=True, default="")
    size = models.CharField(pgettext_lazy("variant", "size"), max_length=VARIANT_MAX_LENGTH, blank=True, default="")
    location = models.CharField(
        _("bin location"),
        max_length=64,
        blank=True,
        default="",
        help_text=_("Where it is kept in the warehouse (库位), printed on picking lists."),
    )
    price = models.DecimalField(_("price"), **MONEY, validators=[MinValueValidator(Decimal("0.01"))])
    image = models.ImageField(
        _("image"),
        upload_to=sku_image_path,
        blank=True,
        default="",
        validators=[validate_image],
        help_text=_(
            "Optional: without one, the product's main picture is shown. JPEG, PNG, WebP or GIF, at most 5 MB."
        ),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("SKU")
        verbose_name_plural = _("SKUs")
        ordering = ["product_id", "code"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "code"], name="uniq_sku_code_per_merchant"),
            models.CheckConstraint(condition=Q(price__gt=0), name="sku_price_positive"),
            models.UniqueConstraint(
                fields=["product", "color", "size"],
                condition=~Q(color="", size=""),
                name="uniq_sku_variant_per_product",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name or self.product.name}"

    @property
    def variant(self) -> str:
        """Colour and size as a buyer reads them ("红色 / XL"), or ""."""
        return " / ".join(v for v in (self.color, self.size) if v)

    @property
    def image_url(self) -> str:
        """The SKU's own picture, else its product's main picture, else "". For many SKUs,
        ``select_related("product").prefetch_related("product__images")`` keeps it query-free."""
        if self.image:
            return self.image.url
        main = self.product.main_image
        return main.image.url if main is not None else ""


class LiveSession(models.Model):
    """A live show."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", pgettext_lazy("show status", "Scheduled")
        LIVE = "live", pgettext_lazy("show status", "Live")
        ENDED = "ended", pgettext_lazy("show status", "Ended")

    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="sessions", verbose_name=_("merchant")
    )
    title = models.CharField(_("title"), max_length=200)
    streamer = models.CharField(_("streamer"), max_length=100)
    platforms = models.JSONField(_("platforms"), default=list, blank=True)
    scheduled_at = models.DateTimeField(_("scheduled for"), null=True, blank=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    # Made up by ``apps.reports.history`` (demo, tests, benchmarks), never sold: its orders carry no
    # ledger events (``orders.services.ledger`` knows), and ``generate_history --replace`` deletes it.
    generated = models.BooleanField(
        _("generated history"),
        default=False,
        db_default=False,
        editable=False,
        help_text=_("Made up for demonstrations and benchmarks, not a show that happened."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("live show")
        verbose_name_plural = _("live shows")
        ordering = ["-scheduled_at", "-id"]
        indexes = [models.Index(fields=["merchant", "status"])]

    def __str__(self) -> str:
        return self.title


@dataclass(frozen=True)
class PoolFigures:
    quota: int = 0
    sold: int = 0
    available: int = 0
    version: int = 0


def _pool_terms() -> dict[str, Any]:
    closed = Q(status="closed")
    return {
        # A closed pool keeps what it sold; its unsold units went back to the parent or the SKU.
        "quota": Case(When(closed, then=F("sold")), default=F("quota")),
        "sold": F("sold"),
        "available": Case(When(closed | Q(sold__gte=F("quota")), then=Value(0)), default=F("quota") - F("sold")),
        "version": F("version"),
    }


def pool_aggregates() -> dict[str, Any]:
    """``aggregate()`` arguments over a listing's pools (``pool_`` + a ``PoolFigures`` field)."""
    return {f"pool_{name}": Sum(term) for name, term in _pool_terms().items()}


def with_pool_figures(qs: QuerySet[Listing]) -> QuerySet[Listing]:
    """Annotate each listing with its pools' figures (``Listing.quota_total`` etc. read them, so a
    list of listings costs no query per row): one correlated subquery per figure."""
    annotations = {}
    for name, term in _pool_terms().items():
        sub = (
            Listing.objects.filter(parent_id=OuterRef("pk"))
            .order_by()
            .values("parent_id")
            .annotate(n=Sum(term))
            .values("n")
        )
        annotations[f"pool_{name}"] = Coalesce(Subquery(sub, output_field=models.BigIntegerField()), Value(0))
    return qs.annotate(**annotations)


class Listing(models.Model):
    """A SKU on air in a show: flash price, quota carved out of the SKU's stock, buyer limit."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", pgettext_lazy("listing status", "Scheduled")
        OPEN = "open", pgettext_lazy("listing status", "Open")
        CLOSED = "closed", pgettext_lazy("listing status", "Closed")

    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="listings", verbose_name=_("merchant")
    )
    session = models.ForeignKey(
        LiveSession, on_delete=models.PROTECT, related_name="listings", verbose_name=_("live show")
    )
    sku = models.ForeignKey(SKU, on_delete=models.PROTECT, related_name="listings", verbose_name=_("SKU"))
    price = models.DecimalField(_("flash price"), **MONEY, validators=[MinValueValidator(Decimal("0.01"))])
    quota = models.PositiveIntegerField(_("quota"), validators=[MinValueValidator(1)])
    sold = models.PositiveIntegerField(_("sold"), default=0, editable=False)  # units held by live orders
    per_buyer_limit = models.PositiveIntegerField(_("limit per buyer"), default=1, validators=[MinValueValidator(1)])
    payment_window_seconds = models.PositiveIntegerField(
        _("payment window (seconds)"), default=900, validators=[MinValueValidator(30)]
    )
    opens_at = models.DateTimeField(_("opens at"), null=True, blank=True)
    closes_at = models.DateTimeField(_("closes at"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    version = models.PositiveBigIntegerField(default=0, editable=False)
    # A channel pool: the units of the parent listing allocated to one sales platform (its
    # ``quota``), sold only by that platform's orders; the parent's ``quota`` is the shared part.
    parent = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="pools",
        editable=False,
        verbose_name=_("pool of listing"),
    )
    channel = models.CharField(
        _("channel"), max_length=16, choices=Platform.choices, blank=True, default="", editable=False
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("listing")
        verbose_name_plural = _("listings")
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
            models.CheckConstraint(
                condition=Q(parent__isnull=True, channel="") | (Q(parent__isnull=False) & ~Q(channel="")),
                name="listing_pool_has_channel",
            ),
            models.UniqueConstraint(
                fields=["parent", "channel"], condition=Q(parent__isnull=False), name="listing_pool_once_per_channel"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku.code} @ {self.session.title}"

    @property
    def available(self) -> int:
        """Units of this row left to sell: for a listing with channel pools, the shared part
        (what the storefront and the sharing platforms can buy)."""
        return max(self.quota - self.sold, 0)

    # --- a listing with its channel pools, as merchants and buyers read it --------------------
    # Figures of the pools, from ``with_pool_figures`` (annotations, no query) or else read once
    # (``pool_figures``). A closed pool counts what it sold (its unsold units went back).

    @property
    def is_pool(self) -> bool:
        return self.parent_id is not None

    def pool_figures(self) -> PoolFigures:
        """The pools' quota, sold, unsold-and-open and version sums (zeros for a pool itself)."""
        cached = getattr(self, "_pool_figures", None)
        if cached is not None:
            return cached
        annotated = getattr(self, "pool_quota", None)
        if annotated is not None:
            figures = PoolFigures(
                quota=int(annotated),
                sold=int(getattr(self, "pool_sold", 0) or 0),
                available=int(getattr(self, "pool_available", 0) or 0),
                version=int(getattr(self, "pool_version", 0) or 0),
            )
        elif self.pk is None or self.parent_id is not None:
            figures = PoolFigures()
        else:
            row = Listing.objects.filter(parent_id=self.pk).aggregate(**pool_aggregates())
            figures = PoolFigures(**{k.removeprefix("pool_"): int(v or 0) for k, v in row.items()})
        self._pool_figures = figures
        return figures

    @property
    def quota_total(self) -> int:
        return self.quota + self.pool_figures().quota

    @property
    def sold_total(self) -> int:
        return self.sold + self.pool_figures().sold

    @property
    def available_total(self) -> int:
        """Units left on every channel: the shared part and the open pools' unsold units."""
        return self.available + self.pool_figures().available

    @property
    def version_total(self) -> int:
        """Moves with every change of the listing or of one of its pools (a push's version)."""
        return self.version + self.pool_figures().version

    def effective_status(self, now: datetime | None = None) -> str:
        """``open`` only inside the window; ``scheduled`` before it; ``closed`` after it (``window``)."""
        return window.effective_status(
            status=self.status, opens_at=self.opens_at, closes_at=self.closes_at, now=now or timezone.now()
        )

    def is_open(self, now: datetime | None = None) -> bool:
        return window.is_open(
            status=self.status, opens_at=self.opens_at, closes_at=self.closes_at, now=now or timezone.now()
        )
