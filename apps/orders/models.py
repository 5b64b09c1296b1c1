from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.catalog.models import MONEY, SKU, Listing, LiveSession
from apps.merchants.models import Merchant


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", "Pending payment"
    PAID = "paid", "Paid"
    ON_HOLD = "on_hold", "On hold (review)"
    CONFIRMED = "confirmed", "Confirmed"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    REFUND_PENDING = "refund_pending", "Refund pending"
    REFUNDED = "refunded", "Refunded"


# Orders in these states hold their units against the listing quota and the buyer's limit.
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
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="buyers", db_index=False)
    external_id = models.CharField(max_length=100)
    name = models.CharField(max_length=100, blank=True, default="")
    phone = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
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
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="orders", db_index=False)
    public_id = models.CharField(max_length=32, editable=False)  # unique: Meta (no LIKE index)
    session = models.ForeignKey(
        LiveSession, on_delete=models.PROTECT, related_name="orders", null=True, blank=True, db_index=False
    )
    listing = models.ForeignKey(
        Listing, on_delete=models.PROTECT, related_name="orders", null=True, blank=True, db_index=False
    )
    buyer = models.ForeignKey(Buyer, on_delete=models.PROTECT, related_name="orders")
    channel = models.CharField(max_length=16, default="api")
    status = models.CharField(
        max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING_PAYMENT, editable=False
    )
    total = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, default="CNY")
    pay_by = models.DateTimeField(null=True, blank=True)
    shipping_address = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=100, null=True, blank=True, editable=False)
    request_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)
    cancel_reason = models.CharField(max_length=200, blank=True, default="", editable=False)
    refund_due = models.DecimalField(**MONEY, default=0, editable=False)
    paid_at = models.DateTimeField(null=True, blank=True, editable=False)
    carrier = models.CharField(max_length=50, blank=True, default="")
    tracking_number = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "pay_by"]),
            models.Index(fields=["merchant", "status"]),
            models.Index(fields=["session", "status"]),
            models.Index(fields=["listing", "status"]),
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

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    listing = models.ForeignKey(Listing, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    sku = models.ForeignKey(SKU, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(**MONEY)
    line_total = models.DecimalField(**MONEY)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(quantity__gte=1), name="order_line_quantity_positive")]


class Payment(models.Model):
    """Every payment notification the provider sent, whatever became of it."""

    class Outcome(models.TextChoices):
        APPLIED = "applied", "Applied (order paid)"
        LATE = "late", "After cancellation: refund owed"
        DUPLICATE_ORDER = "duplicate_order", "Order already paid: refund owed"
        AMOUNT_MISMATCH = "amount_mismatch", "Refused: amount differs from the total"

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="payments")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    transaction_id = models.CharField(max_length=100, unique=True)
    amount = models.DecimalField(**MONEY)
    paid_at = models.DateTimeField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    raw = models.TextField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]


class LedgerHead(models.Model):
    """The tip of a merchant's hash chain; locked to append."""

    merchant = models.OneToOneField(Merchant, on_delete=models.PROTECT, primary_key=True, related_name="+")
    seq = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)


class OrderEvent(models.Model):
    """Append-only, hash-chained ledger of order status changes, one chain per merchant."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+", db_index=False)
    seq = models.PositiveBigIntegerField()
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="events")
    from_status = models.CharField(max_length=20, blank=True, default="")
    to_status = models.CharField(max_length=20)
    actor = models.CharField(max_length=100)
    reason = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["merchant_id", "seq"]
        constraints = [models.UniqueConstraint(fields=["merchant", "seq"], name="uniq_ledger_seq")]
