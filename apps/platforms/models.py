"""Sales platforms, the configuration side: a merchant's connected shops (credentials encrypted at
rest), explicit SKU mappings, and how each platform draws on a listing's quota."""

from __future__ import annotations

import secrets

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.catalog.models import SKU, Listing
from apps.catalog.models import Platform as CatalogPlatform
from apps.core.encryption import EncryptedTextField
from apps.merchants.models import Merchant


class ShopPlatform(models.TextChoices):
    """The sales platforms a shop can be on (the catalog's channels without the storefront)."""

    DOUYIN = CatalogPlatform.DOUYIN.value, CatalogPlatform.DOUYIN.label
    KUAISHOU = CatalogPlatform.KUAISHOU.value, CatalogPlatform.KUAISHOU.label
    TAOBAO = CatalogPlatform.TAOBAO.value, CatalogPlatform.TAOBAO.label


PRODUCTION_GATEWAYS: dict[str, str] = {
    ShopPlatform.DOUYIN: "https://openapi-fxg.jinritemai.com",
    ShopPlatform.KUAISHOU: "https://openapi.kwaixiaodian.com",
    ShopPlatform.TAOBAO: "https://gw.api.taobao.com/router/rest",
}
"""The gateway a shop with no ``api_base_url`` calls (PLATFORMS.md)."""

PUSHED_PLATFORMS = frozenset({ShopPlatform.DOUYIN, ShopPlatform.KUAISHOU})
"""Platforms that push messages to us (a push URL is registered with them); Taobao is pulled (TMC)."""

PUSH_TOKEN_BYTES = 24


def new_push_token() -> str:
    """The unguessable part of a shop's push URL (32 url-safe characters)."""
    return secrets.token_urlsafe(PUSH_TOKEN_BYTES)


class PlatformShop(models.Model):
    """A merchant's shop on a sales platform, with the app credentials to call the platform's API.

    A platform's shop id belongs to one shop on that platform: two merchants (or one merchant
    twice) cannot both connect the same enabled shop, whose pushes and orders would otherwise go
    to both. A disabled row may remain beside the enabled one (a shop moved to a new account)."""

    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="platform_shops", verbose_name=_("merchant")
    )
    platform = models.CharField(_("platform"), max_length=16, choices=ShopPlatform.choices)
    shop_id = models.CharField(_("shop id"), max_length=64, help_text=_("The shop's id on the platform."))
    name = models.CharField(_("name"), max_length=200, blank=True, default="")
    app_key = models.CharField(_("app key"), max_length=128)
    app_secret = EncryptedTextField(_("app secret"), blank=True, default="")
    access_token = EncryptedTextField(
        _("access token"), blank=True, default="", help_text=_("The shop's authorised token (Taobao: session).")
    )
    msg_secret = EncryptedTextField(
        _("message secret"),
        blank=True,
        default="",
        help_text=_("Kuaishou: the AES key (base64) that decrypts pushed messages."),
    )
    api_base_url = models.URLField(
        _("API base URL"),
        max_length=300,
        blank=True,
        default="",
        help_text=_("Empty: the platform's production gateway. Set it for a sandbox or a local simulator."),
    )
    push_token = models.CharField(
        _("push token"), max_length=64, unique=True, default=new_push_token, editable=False
    )  # in the push URL's path: a push reaches exactly this shop, whatever its body claims
    enabled = models.BooleanField(_("enabled"), default=True)
    last_message_at = models.DateTimeField(_("last message at"), null=True, blank=True, editable=False)
    last_pull_at = models.DateTimeField(_("last pull at"), null=True, blank=True, editable=False)
    last_error = models.CharField(_("last error"), max_length=500, blank=True, default="", editable=False)
    last_error_at = models.DateTimeField(_("last error at"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("platform shop")
        verbose_name_plural = _("platform shops")
        ordering = ["platform", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "platform", "shop_id"], name="platform_shop_once_per_merchant"),
            models.UniqueConstraint(
                fields=["platform", "shop_id"], condition=Q(enabled=True), name="platform_shop_enabled_once"
            ),
        ]
        indexes = [models.Index(fields=["merchant", "platform"])]

    def __str__(self) -> str:
        return f"{self.get_platform_display()} {self.name or self.shop_id}"

    @property
    def gateway(self) -> str:
        """Where the shop's API calls go: its own base URL, else the platform's production gateway."""
        return self.api_base_url or PRODUCTION_GATEWAYS[self.platform]

    @property
    def is_pushed(self) -> bool:
        return self.platform in PUSHED_PLATFORMS


class PlatformSkuMapping(models.Model):
    """A platform SKU sold as one of our SKUs, overriding the default match by merchant SKU code."""

    merchant_path = "shop__merchant"

    shop = models.ForeignKey(
        PlatformShop, on_delete=models.CASCADE, related_name="sku_mappings", verbose_name=_("platform shop")
    )
    platform_sku_id = models.CharField(_("platform SKU id"), max_length=64)
    platform_item_id = models.CharField(_("platform item id"), max_length=64, blank=True, default="")
    sku = models.ForeignKey(SKU, on_delete=models.CASCADE, related_name="platform_mappings", verbose_name=_("SKU"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("SKU mapping")
        verbose_name_plural = _("SKU mappings")
        ordering = ["shop", "platform_sku_id"]
        constraints = [
            models.UniqueConstraint(fields=["shop", "platform_sku_id"], name="platform_sku_mapping_once"),
        ]

    def __str__(self) -> str:
        return f"{self.platform_sku_id} → {self.sku_id}"


class ChannelMode(models.TextChoices):
    SHARED = "shared", _("Shared (draws on the listing's quota)")
    ALLOCATED = "allocated", _("Allocated (its own units)")


class ListingChannelAllocation(models.Model):
    """How one platform draws on a listing: from the quota every channel shares, or from a number
    of units set aside for it (allocated units of all platforms never exceed the quota). A
    platform with no row shares the quota."""

    merchant_path = "listing__merchant"

    listing = models.ForeignKey(
        Listing, on_delete=models.CASCADE, related_name="channel_allocations", verbose_name=_("listing")
    )
    platform = models.CharField(_("platform"), max_length=16, choices=ShopPlatform.choices)
    mode = models.CharField(_("mode"), max_length=16, choices=ChannelMode.choices, default=ChannelMode.SHARED)
    units = models.PositiveIntegerField(
        _("units"), default=0, validators=[MinValueValidator(0)], help_text=_("Allocated mode: units set aside.")
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("channel allocation")
        verbose_name_plural = _("channel allocations")
        ordering = ["listing", "platform"]
        constraints = [
            models.UniqueConstraint(fields=["listing", "platform"], name="listing_channel_once"),
            models.CheckConstraint(condition=Q(mode="allocated") | Q(units=0), name="listing_channel_shared_no_units"),
        ]

    def __str__(self) -> str:
        return f"{self.get_platform_display()}: {self.get_mode_display()}"


class InboxMessage(models.Model):
    """Every message a platform sent us (a push, or a TMC message pulled), stored raw before it is
    processed and before it is answered. Processing is idempotent on ``(shop, message_id)``; a
    message whose signature or encryption failed is kept as ``rejected`` and never processed."""

    class State(models.TextChoices):
        PENDING = "pending", pgettext_lazy("platform message", "Pending")
        PROCESSED = "processed", pgettext_lazy("platform message", "Processed")
        IGNORED = "ignored", _("Ignored (nothing to do)")
        FAILED = "failed", _("Failed (will be retried)")
        REJECTED = "rejected", _("Rejected (bad signature or body)")

    merchant_path = "shop__merchant"

    shop = models.ForeignKey(
        PlatformShop, on_delete=models.CASCADE, related_name="inbox", null=True, blank=True, verbose_name=_("shop")
    )
    platform = models.CharField(_("platform"), max_length=16, choices=ShopPlatform.choices)
    message_id = models.CharField(_("message id"), max_length=128, blank=True, default="")
    kind = models.CharField(_("kind"), max_length=32, blank=True, default="")
    topic = models.CharField(_("topic"), max_length=128, blank=True, default="")
    external_order_id = models.CharField(_("platform order id"), max_length=64, blank=True, default="")
    headers = models.JSONField(_("headers"), default=dict, blank=True)
    body = models.TextField(_("raw body"))
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True, default="")
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("platform message")
        verbose_name_plural = _("platform messages")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "message_id"],
                condition=~Q(message_id="") & ~Q(state="rejected"),
                name="platform_inbox_message_once",
            ),
        ]
        indexes = [models.Index(fields=["state", "id"]), models.Index(fields=["shop", "external_order_id"])]

    def __str__(self) -> str:
        return f"{self.platform} {self.message_id or self.pk}"


class PlatformOrder(models.Model):
    """A platform's order as we know it, and the order it became (one per ``(shop, external_id)``).

    ``exception`` is set when the order needs a person: a line no SKU maps to (no order yet), or
    stock that could not cover what the platform had already sold (``oversold``: the order exists,
    the short lines hold no stock). ``event_at`` is the platform's time of the newest state applied,
    so an older message arriving late changes nothing."""

    class Problem(models.TextChoices):
        NONE = "", _("None")
        UNMAPPED = "unmapped_sku", _("A line maps to no SKU")
        OVERSOLD = "oversold", _("Oversold: stock could not cover it")
        FAILED = "failed", _("Could not be imported")

    merchant_path = "shop__merchant"

    shop = models.ForeignKey(PlatformShop, on_delete=models.PROTECT, related_name="orders", verbose_name=_("shop"))
    platform = models.CharField(_("platform"), max_length=16, choices=ShopPlatform.choices)
    external_id = models.CharField(_("platform order id"), max_length=64)
    order = models.OneToOneField(
        "orders.Order",
        on_delete=models.PROTECT,
        related_name="platform_order",
        null=True,
        blank=True,
        verbose_name=_("order"),
    )
    status = models.CharField(_("platform status (canonical)"), max_length=20, blank=True, default="")
    platform_status = models.CharField(_("platform status"), max_length=40, blank=True, default="")
    event_at = models.DateTimeField(_("newest event"), null=True, blank=True)
    detail = models.JSONField(_("order detail"), default=dict, blank=True)
    oversold_units = models.PositiveIntegerField(_("oversold units"), default=0)
    exception = models.CharField(_("exception"), max_length=20, choices=Problem.choices, blank=True, default="")
    exception_detail = models.JSONField(_("exception detail"), default=dict, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    ship_state = models.CharField(_("shipment sync"), max_length=16, blank=True, default="")
    ship_attempts = models.PositiveIntegerField(_("shipment sync attempts"), default=0)
    ship_error = models.CharField(_("shipment sync error"), max_length=500, blank=True, default="")
    ship_pushed_at = models.DateTimeField(_("shipment pushed at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("platform order")
        verbose_name_plural = _("platform orders")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["shop", "external_id"], name="platform_order_once"),
        ]
        indexes = [models.Index(fields=["exception", "resolved_at"])]

    def __str__(self) -> str:
        return f"{self.platform} {self.external_id}"


# --- stock and shipment sync out (apps/platforms/stock_sync.py, ship_sync.py) --------------------


class PlatformSkuLink(models.Model):
    """One platform SKU that sells one of our SKUs in a shop, and the state of pushing that SKU's
    stock to it. Learnt from the shop's explicit mappings (``source=mapping``) and from the lines
    of imported orders (``source=order``, :func:`apps.platforms.stock_sync.sku_link_seen`); a
    mapping overrides what orders taught.

    ``pushed_value`` is the count the platform acknowledged last (for Kuaishou, whose updates are
    incremental, the base of the next difference; None: not known yet). ``generation`` moves each
    time the SKU is marked changed, so a push that read an older figure leaves ``pending`` set.
    ``uncertain``: an incremental call's outcome is unknown (the answer was lost); nothing more is
    sent until someone states the platform's count (never a double-applied difference)."""

    class Source(models.TextChoices):
        MAPPING = "mapping", _("SKU mapping")
        ORDER = "order", _("Learnt from an order")

    merchant_path = "shop__merchant"

    shop = models.ForeignKey(
        PlatformShop, on_delete=models.CASCADE, related_name="sku_links", verbose_name=_("platform shop")
    )
    sku = models.ForeignKey(SKU, on_delete=models.CASCADE, related_name="platform_links", verbose_name=_("SKU"))
    platform_sku_id = models.CharField(_("platform SKU id"), max_length=64)
    platform_item_id = models.CharField(_("platform item id"), max_length=64, blank=True, default="")
    merchant_sku_code = models.CharField(_("merchant SKU code"), max_length=64, blank=True, default="")
    source = models.CharField(_("source"), max_length=16, choices=Source.choices, default=Source.ORDER)
    pending = models.BooleanField(_("push pending"), default=True)
    generation = models.PositiveBigIntegerField(default=0, editable=False)
    desired_value = models.IntegerField(_("value to push"), null=True, blank=True)
    pushed_value = models.IntegerField(_("last pushed value"), null=True, blank=True)
    pushed_at = models.DateTimeField(_("last pushed at"), null=True, blank=True)
    uncertain = models.BooleanField(_("outcome unknown"), default=False)
    attempts = models.PositiveIntegerField(_("failed attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.CharField(_("last error"), max_length=500, blank=True, default="")
    last_error_at = models.DateTimeField(_("last error at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("stock sync")
        verbose_name_plural = _("stock syncs")
        ordering = ["shop", "sku", "platform_sku_id"]
        constraints = [
            models.UniqueConstraint(fields=["shop", "platform_sku_id"], name="platform_sku_link_once"),
        ]
        indexes = [models.Index(fields=["sku", "shop"]), models.Index(fields=["pending", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.shop_id}:{self.platform_sku_id} → {self.sku_id}"
