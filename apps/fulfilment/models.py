"""Fulfilment, the configuration side: a merchant's accounts with the carrier aggregators
(Kuaidi100, Kdniao), their secrets encrypted at rest, the ship-from address, and the client each
account calls the carrier with."""

from __future__ import annotations

import secrets
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

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
