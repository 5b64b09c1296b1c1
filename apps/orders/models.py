from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from apps.catalog.models import MONEY, SKU, Listing, LiveSession
from apps.merchants.models import Merchant


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", _("Awaiting payment")
    PAID = "paid", _("Paid")
    ON_HOLD = "on_hold", _("On hold (risk review)")
    CONFIRMED = "confirmed", _("Confirmed")
    SHIPPED = "shipped", _("Shipped")
    DELIVERED = "delivered", _("Delivered")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")
    REFUND_PENDING = "refund_pending", _("Refund pending")
    REFUNDED = "refunded", _("Refunded")


# Orders in these states hold their units against the listing quota and the buyer's limit.
PLATFORM_CHANNELS = ("douyin", "kuaishou", "taobao")
"""Channels of orders a sales platform sold (``services.imports``): the platform applied its own
per-buyer limits, so the gate holds them for the buyer ``"*"`` (no limit) and the listing's
per-buyer rows do not count them."""

LIVE_STATUSES = (
    OrderStatus.PENDING_PAYMENT,
    OrderStatus.PAID,
    OrderStatus.ON_HOLD,
    OrderStatus.CONFIRMED,
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
    OrderStatus.COMPLETED,
)
# ... and in these the units are still reserved in stock (not yet shipped).
RESERVING_STATUSES = (
    OrderStatus.PENDING_PAYMENT,
    OrderStatus.PAID,
    OrderStatus.ON_HOLD,
    OrderStatus.CONFIRMED,
)


# Foreign keys marked ``db_index=False`` lead a composite index or unique constraint already; a
# second index would only cost every order insert (the flash-sale hot path) another write.
class Buyer(models.Model):
    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="buyers", db_index=False, verbose_name=_("merchant")
    )
    external_id = models.CharField(_("buyer id"), max_length=100)
    name = models.CharField(_("name"), max_length=100, blank=True, default="")
    phone = models.CharField(_("phone"), max_length=32, blank=True, default="")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("buyer")
        verbose_name_plural = _("buyers")
        constraints = [models.UniqueConstraint(fields=["merchant", "external_id"], name="uniq_buyer_per_merchant")]

    def __str__(self) -> str:
        return self.name or self.external_id


class ListingBuyer(models.Model):
    """Units a buyer holds in live orders of a listing: the database side of the buyer limit."""

    merchant_path = "listing__merchant"

    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="+", db_index=False)
    buyer = models.ForeignKey(Buyer, on_delete=models.CASCADE, related_name="+")
    units = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["listing", "buyer"], name="uniq_listing_buyer"),
            models.CheckConstraint(condition=Q(units__gte=0), name="listing_buyer_units_non_negative"),
        ]


class Order(models.Model):
    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="orders", db_index=False, verbose_name=_("merchant")
    )
    public_id = models.CharField(_("order no."), max_length=32, editable=False)  # unique: Meta (no LIKE index)
    session = models.ForeignKey(
        LiveSession,
        on_delete=models.PROTECT,
        related_name="orders",
        null=True,
        blank=True,
        db_index=False,
        verbose_name=_("show"),
    )
    listing = models.ForeignKey(
        Listing,
        on_delete=models.PROTECT,
        related_name="orders",
        null=True,
        blank=True,
        db_index=False,
        verbose_name=_("listing"),
    )
    buyer = models.ForeignKey(Buyer, on_delete=models.PROTECT, related_name="orders", verbose_name=_("buyer"))
    channel = models.CharField(_("channel"), max_length=16, default="api")
    status = models.CharField(
        _("status"), max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING_PAYMENT, editable=False
    )
    total = models.DecimalField(_("total"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    pay_by = models.DateTimeField(_("pay by"), null=True, blank=True)
    shipping_address = models.JSONField(_("shipping address"), default=dict, blank=True)
    idempotency_key = models.CharField(max_length=100, null=True, blank=True, editable=False)
    request_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    cancel_reason = models.CharField(_("cancel reason"), max_length=200, blank=True, default="", editable=False)
    refund_due = models.DecimalField(_("refund due"), **MONEY, default=0, editable=False)
    # What the payment provider (or the platform) confirmed it paid back of ``refund_due``.
    refunded = models.DecimalField(_("refunded"), **MONEY, default=0, db_default=0, editable=False)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True, editable=False)
    carrier = models.CharField(_("carrier"), max_length=50, blank=True, default="")
    tracking_number = models.CharField(_("tracking number"), max_length=64, blank=True, default="")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "pay_by"]),
            models.Index(fields=["merchant", "status"]),
            models.Index(fields=["session", "status"]),
            models.Index(fields=["listing", "status"]),
            # The few orders that owe money back (the refund sweep reads them each minute).
            models.Index(fields=["id"], condition=Q(refund_due__gt=F("refunded")), name="order_refund_owed"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["public_id"], name="uniq_order_public_id"),
            models.UniqueConstraint(
                fields=["merchant", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="uniq_order_idempotency_key",
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_non_negative"),
        ]

    def __str__(self) -> str:
        return self.public_id


class OrderLine(models.Model):
    merchant_path = "order__merchant"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines", verbose_name=_("order"))
    listing = models.ForeignKey(
        Listing, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("listing")
    )
    sku = models.ForeignKey(SKU, on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    quantity = models.PositiveIntegerField(_("quantity"))
    unit_price = models.DecimalField(_("unit price"), **MONEY)
    line_total = models.DecimalField(_("line total"), **MONEY)
    # False for a platform order's line that stock could not cover when it arrived (the platform
    # had sold it already): it holds nothing, so a cancel releases nothing and it cannot ship
    # until a person covers it.
    reserved = models.BooleanField(_("stock reserved"), default=True, db_default=True)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        constraints = [models.CheckConstraint(condition=Q(quantity__gte=1), name="order_line_quantity_positive")]


class Payment(models.Model):
    """Every payment notification the provider sent, whatever became of it."""

    class Outcome(models.TextChoices):
        APPLIED = "applied", _("Applied (order paid)")
        LATE = "late", _("After cancellation: refund owed")
        DUPLICATE_ORDER = "duplicate_order", _("Order already paid: refund owed")
        AMOUNT_MISMATCH = "amount_mismatch", _("Refused: amount differs from the total")

    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="payments", verbose_name=_("merchant")
    )
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments", verbose_name=_("order"))
    transaction_id = models.CharField(_("transaction id"), max_length=100, unique=True)
    amount = models.DecimalField(_("amount"), **MONEY)
    paid_at = models.DateTimeField(_("paid at"))
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome.choices)
    raw = models.TextField(_("raw notification"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-id"]


class LedgerHead(models.Model):
    """The tip of a merchant's hash chain; locked to append."""

    merchant = models.OneToOneField(Merchant, on_delete=models.PROTECT, primary_key=True, related_name="+")
    seq = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)


class OrderEvent(models.Model):
    """Append-only, hash-chained ledger of order status changes, one chain per merchant."""

    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="+", db_index=False, verbose_name=_("merchant")
    )
    seq = models.PositiveBigIntegerField(_("sequence"))
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="events", verbose_name=_("order"))
    from_status = models.CharField(_("from status"), max_length=20, blank=True, default="")
    to_status = models.CharField(_("to status"), max_length=20)
    actor = models.CharField(_("actor"), max_length=100)
    reason = models.CharField(_("reason"), max_length=200, blank=True, default="")
    created_at = models.DateTimeField(_("at"))
    prev_hash = models.CharField(_("previous hash"), max_length=64)
    hash = models.CharField(_("hash"), max_length=64)

    class Meta:
        verbose_name = _("order event")
        verbose_name_plural = _("order events")
        ordering = ["merchant_id", "seq"]
        constraints = [models.UniqueConstraint(fields=["merchant", "seq"], name="uniq_ledger_seq")]


class OrderSignals(models.Model):
    """What the request said about the buyer when the order was placed (risk control reads it):
    the client's IP, device id and user agent, the account's creation time where the caller knew
    it, when the request reached the server (``received_at``, stamped before it queued for a
    thread: ``apps.core.arrival``; null where nothing stamped it), and what the hot-path risk
    rules made of the attempt (``rules``: decision, reasons, dry-run hits, the counters they
    saw). Written in the placement's own transaction, so an
    accepted order always has its signals; one row per order (the order's primary key)."""

    order = models.OneToOneField(
        Order, on_delete=models.CASCADE, primary_key=True, related_name="signals", verbose_name=_("order")
    )
    ip = models.CharField(_("IP"), max_length=45, blank=True, default="")
    device_id = models.CharField(_("device"), max_length=128, blank=True, default="")
    user_agent = models.CharField(_("user agent"), max_length=512, blank=True, default="")
    buyer_registered_at = models.DateTimeField(_("account created"), null=True, blank=True)
    received_at = models.DateTimeField(_("request received"), null=True, blank=True)
    rules = models.JSONField(_("risk rules"), default=dict, blank=True)

    class Meta:
        verbose_name = _("order signals")
        verbose_name_plural = _("order signals")

    def __str__(self) -> str:
        return f"signals of order {self.order_id}"


# --- the back office's own records about an order (never columns of Order: the placement's SQL
# functions insert Order rows column by column) -------------------------------------------------
NOTE_MAX_LENGTH = 500


class OrderNote(models.Model):
    """A merchant's note on an order (备注), newest first; visible to the merchant's staff only."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+", verbose_name=_("merchant"))
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="notes", verbose_name=_("order"))
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("author"),
    )
    text = models.CharField(_("note"), max_length=NOTE_MAX_LENGTH)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("order note")
        verbose_name_plural = _("order notes")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.text[:40]


class FlagColour(models.TextChoices):
    NONE = "", _("No flag")
    RED = "red", _("Red")
    ORANGE = "orange", _("Orange")
    GREEN = "green", _("Green")
    BLUE = "blue", _("Blue")
    PURPLE = "purple", _("Purple")


class OrderFlag(models.Model):
    """The flag (旗帜) a merchant sets on an order to sort its work; one per order."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+", verbose_name=_("merchant"))
    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="flag", verbose_name=_("order"))
    colour = models.CharField(_("flag"), max_length=10, choices=FlagColour.choices, blank=True, default="")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("set by"),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("order flag")
        verbose_name_plural = _("order flags")
        indexes = [models.Index(fields=["merchant", "colour"])]

    def __str__(self) -> str:
        return self.get_colour_display()


class ExportJob(models.Model):
    """An export of an order list too large to build while the browser waits: a django-q2 task
    writes the file (through Django's storage API) and counts its rows as it goes."""

    class Kind(models.TextChoices):
        ORDERS = "orders", _("Orders")

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        XLSX = "xlsx", "XLSX"

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("merchant")
    )  # null: a superuser's export across merchants
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("user")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.ORDERS)
    format = models.CharField(_("format"), max_length=8, choices=Format.choices)
    filters = models.TextField(_("filters"), blank=True, default="")  # the list's query string
    language = models.CharField(_("language"), max_length=16, default="zh-hans")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.QUEUED)
    rows_done = models.PositiveIntegerField(_("rows done"), default=0)
    rows_total = models.PositiveIntegerField(_("rows in total"), default=0)
    file = models.CharField(_("file"), max_length=255, blank=True, default="")  # a default_storage name
    error = models.CharField(_("error"), max_length=200, blank=True, default="")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("export")
        verbose_name_plural = _("exports")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind}-{self.pk}.{self.format}"


class ListingTally(models.Model):
    """What the gate decided for a listing, for its report: every fresh answer it gave to an order
    attempt (``accepted`` holds taken; ``closed``, ``over_limit`` and ``sold_out`` refusals).
    Counted in Redis by ``reserve.lua`` and added here by ``services.tallies.take_tallies``, once
    per hand-over (``seq``: hand-overs are numbered upwards; a row takes only a higher one).
    Attempts the database decided alone, while Redis was away, are not counted."""

    listing = models.OneToOneField(
        Listing, on_delete=models.CASCADE, primary_key=True, related_name="tally", verbose_name=_("listing")
    )
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", verbose_name=_("merchant"))
    accepted = models.PositiveBigIntegerField(_("accepted"), default=0)
    closed = models.PositiveBigIntegerField(_("refused: closed"), default=0)
    over_limit = models.PositiveBigIntegerField(_("refused: over the limit"), default=0)
    sold_out = models.PositiveBigIntegerField(_("refused: sold out"), default=0)
    seq = models.PositiveBigIntegerField(_("last hand-over"), default=0)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("listing tally")
        verbose_name_plural = _("listing tallies")

    def __str__(self) -> str:
        return f"{self.listing_id}: {self.attempts} attempts"

    @property
    def attempts(self) -> int:
        return self.accepted + self.closed + self.over_limit + self.sold_out
