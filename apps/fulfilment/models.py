"""Fulfilment, the configuration side: a merchant's accounts with the carrier aggregators
(Kuaidi100, Kdniao), their secrets encrypted at rest, the ship-from address, and the client each
account calls the carrier with."""

from __future__ import annotations

import secrets
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.core.encryption import EncryptedTextField
from apps.merchants.models import Merchant

from .carriers.base import EXPRESS, Credentials, Party
from .carriers.transport import CarrierHttpClient
from .clients.kdniao import KdniaoClient
from .clients.kuaidi100 import Kuaidi100Client


class CarrierChoice(models.TextChoices):
    """The aggregators an account can be with (``carriers.base.CARRIERS``)."""

    KUAIDI100 = "kuaidi100", _("Kuaidi100")
    KDNIAO = "kdniao", _("Kdniao")


EXPRESS_CHOICES = [(code, names["name"]) for code, names in EXPRESS.items()]
"""Our express-company codes (``carriers.base.EXPRESS``) with their names as printed in China."""

PUSH_TOKEN_BYTES = 24
PUSH_SALT_BYTES = 16


def new_push_token() -> str:
    """The unguessable part of an account's tracking push URL (32 url-safe characters)."""
    return secrets.token_urlsafe(PUSH_TOKEN_BYTES)


def new_push_salt() -> str:
    """A salt for Kuaidi100 to sign its tracking pushes with (32 hex characters)."""
    return secrets.token_hex(PUSH_SALT_BYTES)


class CarrierAccount(models.Model):
    """A merchant's account with a carrier aggregator, and what its waybills need: the express
    company drawn from by default and the ship-from party.

    Field meanings per carrier (``carriers.base.Credentials``): Kuaidi100 ``app_id`` = customer,
    ``app_key`` = key, ``app_secret`` = the e-waybill secret, ``push_salt`` = the salt tracking
    pushes are signed with; Kdniao ``app_id`` = EBusinessID, ``app_key`` = AppKey (it signs both
    ways). ``partner_id`` / ``partner_key`` / ``month_code`` are the express company's network
    account (Kdniao CustomerName / CustomerPwd / MonthCode; Kuaidi100 partnerId / partnerKey).

    Secrets (``app_key``, ``app_secret``, ``push_salt``, ``partner_key``, ``month_code``) are
    encrypted at rest and never shown. The month code (月结账号) bills shipments to the merchant:
    whoever holds it can ship on the merchant's account, so it is kept like a password.

    At most one enabled account per merchant is its default (the one shipping uses unless told
    otherwise); a disabled account is never the default."""

    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="carrier_accounts", verbose_name=_("merchant")
    )
    carrier = models.CharField(_("carrier"), max_length=16, choices=CarrierChoice.choices)
    name = models.CharField(_("name"), max_length=200, blank=True, default="")
    app_id = models.CharField(
        _("account id"), max_length=64, help_text=_("Kuaidi100: the customer id. Kdniao: the EBusinessID.")
    )
    app_key = EncryptedTextField(_("account key"), blank=True, default="")
    app_secret = EncryptedTextField(_("e-waybill secret"), blank=True, default="")
    push_salt = EncryptedTextField(_("push salt"), blank=True, default="")
    partner_id = models.CharField(
        _("network account"),
        max_length=128,
        blank=True,
        default="",
        help_text=_("The express company's e-waybill account, where it needs one (Kdniao: CustomerName)."),
    )
    partner_key = EncryptedTextField(_("network account password"), blank=True, default="")
    month_code = EncryptedTextField(_("monthly settlement code"), blank=True, default="")
    express = models.CharField(_("express company"), max_length=8, choices=EXPRESS_CHOICES)
    sender_name = models.CharField(_("sender name"), max_length=64)
    sender_mobile = models.CharField(_("sender phone"), max_length=32)
    sender_province = models.CharField(_("province"), max_length=32)
    sender_city = models.CharField(_("city"), max_length=32)
    sender_district = models.CharField(_("district"), max_length=32)
    sender_detail = models.CharField(_("street address"), max_length=200)
    api_base_url = models.URLField(
        _("API base URL"),
        max_length=300,
        blank=True,
        default="",
        help_text=_("Empty: the carrier's production gateway. Set it for a sandbox or a local simulator."),
    )
    push_token = models.CharField(
        _("push token"), max_length=64, unique=True, default=new_push_token, editable=False
    )  # in the push URL's path: a tracking push reaches exactly this account, whatever its body claims
    enabled = models.BooleanField(_("enabled"), default=True)
    is_default = models.BooleanField(_("default account"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("carrier account")
        verbose_name_plural = _("carrier accounts")
        ordering = ["carrier", "name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant"],
                condition=Q(is_default=True, enabled=True),
                name="carrier_account_one_default",
            ),
            models.CheckConstraint(
                condition=Q(is_default=False) | Q(enabled=True), name="carrier_account_default_is_enabled"
            ),
        ]
        indexes = [models.Index(fields=["merchant", "carrier"])]

    def __str__(self) -> str:
        return f"{self.get_carrier_display()} {self.name or self.app_id}"

    @property
    def sender(self) -> Party:
        """The ship-from party of this account's waybills."""
        return Party(
            name=self.sender_name,
            mobile=self.sender_mobile,
            province=self.sender_province,
            city=self.sender_city,
            district=self.sender_district,
            detail=self.sender_detail,
        )

    def credentials(self) -> Credentials:
        """The account as the carrier protocols take it (decrypted secrets: keep it in memory)."""
        return Credentials(
            carrier=self.carrier,  # type: ignore[arg-type]  # a CarrierChoice value, which is a Carrier
            app_id=self.app_id,
            app_key=self.app_key,
            app_secret=self.app_secret,
            push_salt=self.push_salt,
            partner_id=self.partner_id,
            partner_key=self.partner_key,
            month_code=self.month_code,
        )

    def client(self, **options: Any) -> CarrierHttpClient:
        """The carrier's HTTP client for this account, on ``api_base_url`` (empty: the carrier's
        production hosts). ``options`` go to the client (``timeout``, ``clock``, ``transport``).
        Close it (or use it as a context manager)."""
        classes: dict[str, type[CarrierHttpClient]] = {
            CarrierChoice.KUAIDI100: Kuaidi100Client,
            CarrierChoice.KDNIAO: KdniaoClient,
        }
        return classes[self.carrier](self.credentials(), base_url=self.api_base_url or None, **options)


# --- shipping: settings, parcels, batches, tracking, exceptions -------------------------------


class FulfilmentSettings(models.Model):
    """A merchant's automation: the cooling window before a paid order is confirmed, how orders
    merge into parcels, when a parcel with no movement is an exception, and when a delivered
    order completes. One row per merchant, made with the defaults when first read."""

    merchant = models.OneToOneField(
        Merchant, on_delete=models.CASCADE, related_name="fulfilment_settings", verbose_name=_("merchant")
    )
    auto_confirm = models.BooleanField(
        _("confirm paid orders automatically"),
        default=True,
        help_text=_("Paid orders that risk control lets through are confirmed after the cooling window."),
    )
    confirm_after_minutes = models.PositiveIntegerField(
        _("cooling window (minutes)"),
        default=30,
        help_text=_("Buyers in a live show often cancel in the first minutes: wait this long after payment."),
    )
    merge_within_hours = models.PositiveIntegerField(
        _("merge window (hours)"),
        default=0,
        help_text=_(
            "Orders of one buyer to one address merge into one parcel when they are from one show, or "
            "paid within this many hours of each other (0: one show only)."
        ),
    )
    stale_after_days = models.PositiveIntegerField(
        _("no movement after (days)"),
        default=3,
        help_text=_("A shipped parcel with no tracking movement for this long goes to the exception queue."),
    )
    complete_after_days = models.PositiveIntegerField(
        _("complete after delivery (days)"),
        default=7,
        help_text=_("A delivered order completes this many days after delivery."),
    )
    auto_approve_unshipped_refunds = models.BooleanField(
        _("approve refunds of unshipped orders automatically"),
        default=True,
        help_text=_(
            "A refund request for an order that has not shipped is approved at once (nothing has left the "
            "warehouse); returns and refunds after shipping always wait for a person."
        ),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("fulfilment settings")
        verbose_name_plural = _("fulfilment settings")

    def __str__(self) -> str:
        return str(self.merchant)


class Parcel(models.Model):
    """One box to one address with one waybill: one order, or several of one buyer merged (合单).

    ``code`` is our parcel number, the carrier's idempotency key (the same code twice is one
    waybill), so a waybill call retried after a timeout never draws a second number."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for a waybill")
        WAYBILL = "waybill", _("Waybill allocated")
        SHIPPED = "shipped", _("Shipped")
        DELIVERED = "delivered", _("Delivered")
        PROBLEM = "problem", _("Problem")
        RETURNED = "returned", _("Returned")

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="parcels", verbose_name=_("merchant"))
    code = models.CharField(_("parcel no."), max_length=32)
    account = models.ForeignKey(
        CarrierAccount, on_delete=models.PROTECT, related_name="parcels", verbose_name=_("carrier account")
    )
    express = models.CharField(_("express company"), max_length=8, choices=EXPRESS_CHOICES)
    channel = models.CharField(_("channel"), max_length=16)
    address_key = models.CharField(_("address key"), max_length=300)
    receiver = models.JSONField(_("receiver"), default=dict)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    waybill_no = models.CharField(_("waybill no."), max_length=64, blank=True, default="")
    routing_code = models.CharField(_("routing code"), max_length=64, blank=True, default="")
    dest_code = models.CharField(_("destination code"), max_length=64, blank=True, default="")
    track_state = models.CharField(_("tracking state"), max_length=16, default="none")
    last_event_at = models.DateTimeField(_("last movement"), null=True, blank=True)
    shipped_at = models.DateTimeField(_("shipped at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    subscribed = models.BooleanField(_("tracking subscribed"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("parcel")
        verbose_name_plural = _("parcels")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "code"], name="parcel_code_per_merchant"),
            models.UniqueConstraint(
                fields=["account", "waybill_no"], condition=~Q(waybill_no=""), name="parcel_waybill_per_account"
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "status"]),
            models.Index(fields=["account", "waybill_no"]),
        ]

    def __str__(self) -> str:
        return self.waybill_no or self.code


class ParcelOrder(models.Model):
    """An order in a parcel. An order is in at most one parcel that has not been taken apart."""

    merchant_path = "parcel__merchant"

    parcel = models.ForeignKey(Parcel, on_delete=models.CASCADE, related_name="members", verbose_name=_("parcel"))
    order = models.OneToOneField(
        "orders.Order", on_delete=models.PROTECT, related_name="parcel_member", verbose_name=_("order")
    )

    class Meta:
        verbose_name = _("order in a parcel")
        verbose_name_plural = _("orders in parcels")


class TrackingEvent(models.Model):
    """One line of a parcel's trace as the carrier told it. A push delivered twice or out of order
    adds each line once (unique per parcel, time and text)."""

    merchant_path = "parcel__merchant"

    parcel = models.ForeignKey(Parcel, on_delete=models.CASCADE, related_name="events", verbose_name=_("parcel"))
    at = models.DateTimeField(_("time"))
    text = models.CharField(pgettext_lazy("tracking", "event"), max_length=500)
    location = models.CharField(_("location"), max_length=200, blank=True, default="")
    code = models.CharField(_("carrier code"), max_length=32, blank=True, default="")

    class Meta:
        verbose_name = _("tracking event")
        verbose_name_plural = _("tracking events")
        ordering = ["at", "id"]
        constraints = [models.UniqueConstraint(fields=["parcel", "at", "text"], name="tracking_event_once")]


class CarrierPush(models.Model):
    """A tracking push as it arrived, stored before anything reads it (nothing a carrier said is
    lost, whatever its processing does). ``outcome`` says what became of it."""

    class Outcome(models.TextChoices):
        RECEIVED = "received", _("Received")
        APPLIED = "applied", _("Applied")
        UNKNOWN_WAYBILL = "unknown_waybill", _("No parcel with this waybill")
        REFUSED = "refused", _("Refused (bad signature or format)")
        FAILED = "failed", pgettext_lazy("fulfilment", "Failed")

    merchant_path = "account__merchant"

    account = models.ForeignKey(
        CarrierAccount, on_delete=models.CASCADE, related_name="pushes", verbose_name=_("carrier account")
    )
    content_type = models.CharField(_("content type"), max_length=200, blank=True, default="")
    body = models.TextField(_("body"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome.choices, default=Outcome.RECEIVED)
    waybills = models.CharField(_("waybills"), max_length=500, blank=True, default="")
    error = models.CharField(pgettext_lazy("fulfilment", "error"), max_length=300, blank=True, default="")
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("tracking push")
        verbose_name_plural = _("tracking pushes")
        ordering = ["-id"]


class ShipBatch(models.Model):
    """One batch-ship action (批量发货): the orders chosen, the parcels and waybills they got, the
    labels and the picking list. Run by a django-q2 task; run twice, it does nothing twice."""

    class Status(models.TextChoices):
        QUEUED = "queued", pgettext_lazy("fulfilment", "Queued")
        RUNNING = "running", _("Running")
        RETRYING = "retrying", _("Waiting to retry")
        DONE = "done", _("Done")
        FAILED = "failed", pgettext_lazy("fulfilment", "Failed")

    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="ship_batches", verbose_name=_("merchant")
    )
    account = models.ForeignKey(
        CarrierAccount, on_delete=models.PROTECT, related_name="batches", verbose_name=_("carrier account")
    )
    created_by = models.CharField(_("created by"), max_length=150, blank=True, default="")
    selection = models.JSONField(_("selection"), default=dict)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(_("orders"), default=0)
    shipped = models.PositiveIntegerField(_("shipped"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    attempts = models.PositiveIntegerField(_("runs"), default=0)
    running_since = models.DateTimeField(_("running since"), null=True, blank=True, editable=False)
    labels_file = models.CharField(_("labels"), max_length=255, blank=True, default="")
    picking_xlsx = models.CharField(_("picking list (XLSX)"), max_length=255, blank=True, default="")
    picking_csv = models.CharField(_("picking list (CSV)"), max_length=255, blank=True, default="")
    error = models.CharField(pgettext_lazy("fulfilment", "error"), max_length=300, blank=True, default="")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("shipping batch")
        verbose_name_plural = _("shipping batches")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"#{self.pk}"


class ShipBatchItem(models.Model):
    """An order of a batch and what became of it."""

    class Result(models.TextChoices):
        PENDING = "pending", pgettext_lazy("fulfilment", "Pending")
        RETRY = "retry", _("Waiting to retry")
        SHIPPED = "shipped", _("Shipped")
        FAILED = "failed", pgettext_lazy("fulfilment", "Failed")
        SKIPPED = "skipped", pgettext_lazy("fulfilment", "Skipped")

    merchant_path = "batch__merchant"

    batch = models.ForeignKey(ShipBatch, on_delete=models.CASCADE, related_name="items", verbose_name=_("batch"))
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="+", verbose_name=_("order"))
    parcel = models.ForeignKey(
        Parcel, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("parcel")
    )
    result = models.CharField(_("result"), max_length=16, choices=Result.choices, default=Result.PENDING)
    code = models.CharField(_("code"), max_length=64, blank=True, default="")
    message = models.CharField(_("message"), max_length=300, blank=True, default="")

    class Meta:
        verbose_name = _("batch order")
        verbose_name_plural = _("batch orders")
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["batch", "order"], name="ship_batch_order_once")]


class ExceptionKind(models.TextChoices):
    BAD_ADDRESS = "bad_address", _("Bad or incomplete address")
    STOCK_SHORT = "stock_short", _("Stock short at ship time")
    PLATFORM_CONFLICT = "platform_conflict", _("Cancelled on the platform, paid here")
    REFUND_OWED = "refund_owed", _("Payment after cancellation: refund owed")
    CARRIER_REJECTED = "carrier_rejected", _("Carrier rejected the parcel")
    NO_MOVEMENT = "no_movement", _("No tracking movement")
    RISK_HOLD = "risk_hold", _("Held by risk control")


class FulfilmentException(models.Model):
    """One order that needs a person (异常订单), and why. At most one open exception per order and
    kind; resolving it records who and how."""

    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="fulfilment_exceptions", verbose_name=_("merchant")
    )
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="+", verbose_name=_("order"))
    parcel = models.ForeignKey(
        Parcel, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("parcel")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=ExceptionKind.choices)
    detail = models.CharField(_("detail"), max_length=300, blank=True, default="")
    opened_at = models.DateTimeField(_("opened at"), auto_now_add=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = models.CharField(_("resolved by"), max_length=150, blank=True, default="")
    resolution = models.CharField(_("resolution"), max_length=300, blank=True, default="")

    class Meta:
        verbose_name = _("order exception")
        verbose_name_plural = _("order exceptions")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "kind"], condition=Q(resolved_at__isnull=True), name="one_open_exception_per_kind"
            )
        ]
        indexes = [models.Index(fields=["merchant", "kind", "resolved_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.order_id}"


def new_refund_public_id() -> str:
    """A refund's number, also its ``refund_no`` at the payment provider (idempotency key)."""
    return "RF" + secrets.token_hex(8).upper()


class RefundRequest(models.Model):
    """One after-sales request (售后): money back alone (仅退款) or goods back, then money (退货退款),
    for the whole order or part of it. Requested by the buyer (status page), the merchant's tools
    (API), a platform, a person in admin or the system (money owed after a cancellation or a second
    payment). An order has at most one open request at a time.

    ``requested -> awaiting_return -> refunding -> refunded``, or ``requested -> refunding`` (no
    goods to wait for); ``rejected`` and ``withdrawn`` end a request that was not approved;
    ``failed``: the provider refused the refund (a person decides: send again or settle by hand)."""

    class Kind(models.TextChoices):
        REFUND = "refund", _("Refund only")
        RETURN = "return", _("Return and refund")

    class Source(models.TextChoices):
        BUYER = "buyer", _("Buyer (status page)")
        API = "api", _("API")
        PLATFORM = "platform", _("Platform")
        MERCHANT = "merchant", _("Merchant (admin)")
        SYSTEM = "system", _("System (refund owed)")

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Awaiting decision")
        AWAITING_RETURN = "awaiting_return", _("Awaiting returned goods")
        REFUNDING = "refunding", _("Refunding")
        REFUNDED = "refunded", _("Refunded")
        REJECTED = "rejected", _("Rejected")
        WITHDRAWN = "withdrawn", _("Withdrawn")
        FAILED = "failed", _("Refund failed")

    OPEN = (Status.REQUESTED, Status.AWAITING_RETURN, Status.REFUNDING)
    OWED = (Status.REFUNDING, Status.REFUNDED, Status.FAILED)  # committed: added to the order's refund due

    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="refund_requests", verbose_name=_("merchant")
    )
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, related_name="refund_requests", verbose_name=_("order")
    )
    public_id = models.CharField(_("refund number"), max_length=24, unique=True, default=new_refund_public_id)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.REQUESTED)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    reason = models.CharField(_("reason"), max_length=300, blank=True, default="")
    decision_note = models.CharField(_("decision note"), max_length=300, blank=True, default="")
    idempotency_key = models.CharField(_("idempotency key"), max_length=100, null=True, blank=True)
    # The payment it refunds (our own payments; a platform's order is refunded by the platform).
    transaction_id = models.CharField(_("payment transaction"), max_length=100, blank=True, default="")
    # The number the provider knows the refund by (its idempotency key): the refund number, and a
    # new one each time a refund the provider failed is sent again ("RF…-2", "RF…-3").
    refund_no = models.CharField(_("provider refund number"), max_length=40, blank=True, default="", db_index=True)
    provider_refund_id = models.CharField(_("provider refund id"), max_length=100, blank=True, default="")
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    last_error = models.CharField(pgettext_lazy("fulfilment", "error"), max_length=300, blank=True, default="")
    requested_by = models.CharField(_("requested by"), max_length=150, blank=True, default="")
    decided_by = models.CharField(_("decided by"), max_length=150, blank=True, default="")
    requested_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    received_at = models.DateTimeField(_("goods received at"), null=True, blank=True)
    refunded_at = models.DateTimeField(_("refunded at"), null=True, blank=True)
    # A platform's request (source "platform"): "<platform>:<its id>", its own word for the last
    # step, when that step happened there, and our name for it (``protocol.aftersales.Phase``).
    platform_refund_id = models.CharField(_("platform refund id"), max_length=80, blank=True, default="")
    platform_status = models.CharField(_("platform status"), max_length=40, blank=True, default="")
    platform_event_at = models.DateTimeField(_("platform step at"), null=True, blank=True)
    platform_phase = models.CharField(_("platform step"), max_length=20, blank=True, default="")
    # A platform's request whose amount the order's refund_due holds (it recorded the platform's
    # payment); our own requests are in refund_due once owed (``OWED``).
    in_refund_due = models.BooleanField(_("in the order's refund due"), default=False)

    class Meta:
        verbose_name = _("refund request")
        verbose_name_plural = _("refund requests")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(  # a platform's requests are the platform's: one per sub-order
                fields=["order"],
                condition=Q(status__in=["requested", "awaiting_return", "refunding"]) & ~Q(source="platform"),
                name="one_open_refund_per_order",
            ),
            models.UniqueConstraint(
                fields=["merchant", "platform_refund_id"],
                condition=~Q(platform_refund_id=""),
                name="refund_platform_id_unique",
            ),
            models.UniqueConstraint(
                fields=["merchant", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="refund_idempotency_key_unique",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
        ]
        indexes = [
            models.Index(fields=["merchant", "status", "id"]),
            models.Index(fields=["status", "next_attempt_at"]),
        ]

    def __str__(self) -> str:
        return self.public_id


class RefundLine(models.Model):
    """Units of one order line the buyer sends back (a return), restocked on receipt."""

    merchant_path = "refund__merchant"

    refund = models.ForeignKey(RefundRequest, on_delete=models.CASCADE, related_name="lines", verbose_name=_("refund"))
    order_line = models.ForeignKey(
        "orders.OrderLine", on_delete=models.PROTECT, related_name="+", verbose_name=_("order line")
    )
    quantity = models.PositiveIntegerField(_("quantity"))

    class Meta:
        verbose_name = _("returned line")
        verbose_name_plural = _("returned lines")
        constraints = [
            models.UniqueConstraint(fields=["refund", "order_line"], name="one_refund_line_per_order_line"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="refund_line_quantity_positive"),
        ]


class RefundNotice(models.Model):
    """A refund callback from the payment provider as it arrived, stored before anything reads it;
    ``outcome`` says what became of it."""

    class Outcome(models.TextChoices):
        RECEIVED = "received", _("Received")
        APPLIED = "applied", _("Applied")
        ALREADY = "already", _("Already applied")
        UNKNOWN = "unknown", _("No such refund")
        REFUSED = "refused", _("Refused (bad signature or format)")

    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("merchant")
    )
    body = models.TextField(_("body"))
    timestamp = models.CharField(_("timestamp"), max_length=40, blank=True, default="")
    signature = models.CharField(_("signature"), max_length=200, blank=True, default="")
    refund_no = models.CharField(_("refund number"), max_length=64, blank=True, default="")
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome.choices, default=Outcome.RECEIVED)
    error = models.CharField(pgettext_lazy("fulfilment", "error"), max_length=300, blank=True, default="")
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("refund notice")
        verbose_name_plural = _("refund notices")
        ordering = ["-id"]
