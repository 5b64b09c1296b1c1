"""SMS notifications to buyers: a merchant's SMS account (Aliyun, its AccessKey secret encrypted
at rest), the template for each event, the buyers who said no, and the outbox of messages with
every send's outcome."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.core.encryption import EncryptedTextField
from apps.merchants.models import Merchant
from apps.orders.models import Order

from .clients.aliyun import AliyunSmsClient
from .providers.aliyun import AccessKey


class Provider(models.TextChoices):
    ALIYUN = "aliyun", _("Aliyun SMS")


class SmsEvent(models.TextChoices):
    """What a buyer is told about (the order status of the same name)."""

    PAID = "paid", _("Order paid")
    SHIPPED = "shipped", _("Order shipped")
    DELIVERED = "delivered", _("Order delivered")


class SmsAccount(models.Model):
    """A merchant's SMS account: at most one. The AccessKey secret is encrypted at rest and never
    shown; the sign name (短信签名) is the approved one messages are signed with."""

    merchant = models.OneToOneField(
        Merchant, on_delete=models.CASCADE, related_name="sms_account", verbose_name=_("merchant")
    )
    provider = models.CharField(_("provider"), max_length=16, choices=Provider.choices, default=Provider.ALIYUN)
    access_key_id = models.CharField(_("AccessKey ID"), max_length=64)
    access_key_secret = EncryptedTextField(_("AccessKey secret"), blank=True, default="")
    sign_name = models.CharField(
        _("sign name"), max_length=32, help_text=_("The approved SMS signature, without the brackets.")
    )
    api_base_url = models.URLField(
        _("API base URL"),
        max_length=300,
        blank=True,
        default="",
        help_text=_("Empty: the provider's production gateway. Set it for a sandbox or a local simulator."),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("SMS account")
        verbose_name_plural = _("SMS accounts")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.sign_name}"

    def client(self, **options: object) -> AliyunSmsClient:
        """The provider's HTTP client for this account (decrypted secret: keep it in memory).
        ``options`` go to the client (``timeout``, ``clock``, ``transport``). Close it."""
        key = AccessKey(self.access_key_id, self.access_key_secret)
        return AliyunSmsClient(key, base_url=self.api_base_url or None, **options)  # type: ignore[arg-type]  # options are the client's keyword arguments


class SmsTemplate(models.Model):
    """The approved template (模板 CODE) sent for one event. Its variables are named in
    ``docs/notifications.md``: ``order_no``, ``url``, and for ``shipped`` ``carrier`` and
    ``waybill_no``."""

    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, related_name="sms_templates", verbose_name=_("merchant")
    )
    event = models.CharField(_("event"), max_length=16, choices=SmsEvent.choices)
    template_code = models.CharField(_("template code"), max_length=64, help_text=_("For example SMS_123456789."))
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("SMS template")
        verbose_name_plural = _("SMS templates")
        ordering = ["merchant", "event"]
        constraints = [models.UniqueConstraint(fields=["merchant", "event"], name="sms_template_one_per_event")]

    def __str__(self) -> str:
        return f"{self.get_event_display()} {self.template_code}"


class SmsOptOut(models.Model):
    """A buyer's phone that gets no SMS from this merchant (checked before every send)."""

    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, related_name="sms_opt_outs", verbose_name=_("merchant")
    )
    phone = models.CharField(_("phone"), max_length=32)
    note = models.CharField(_("note"), max_length=200, blank=True, default="")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("SMS opt-out")
        verbose_name_plural = _("SMS opt-outs")
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["merchant", "phone"], name="sms_opt_out_once")]

    def __str__(self) -> str:
        return self.phone


class SmsStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")  # not sent yet; next_attempt_at says when
    SENT = "sent", _("Sent")  # the provider accepted it (biz_id)
    FAILED = "failed", _("Failed")  # refused for good, or still failing at the end of the retry window
    SKIPPED = "skipped", _("Skipped")  # not sent on purpose: opted out, account disabled, daily limit


class SmsMessage(models.Model):
    """One SMS to a buyer about one event of one order: at most one per (order, event), however
    often the change is announced."""

    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, related_name="sms_messages", verbose_name=_("merchant")
    )
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="sms_messages", verbose_name=_("order"))
    event = models.CharField(_("event"), max_length=16, choices=SmsEvent.choices)
    phone = models.CharField(_("phone"), max_length=32)
    template_code = models.CharField(_("template code"), max_length=64)
    params = models.JSONField(_("template parameters"), default=dict)
    status = models.CharField(_("status"), max_length=16, choices=SmsStatus.choices, default=SmsStatus.QUEUED)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    # Due for the next attempt (also a lease: a claimed message is pushed past it).
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    biz_id = models.CharField(_("provider message id"), max_length=64, blank=True, default="")
    error_code = models.CharField(_("error code"), max_length=64, blank=True, default="")
    error = models.CharField(_("error"), max_length=500, blank=True, default="")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("SMS message")
        verbose_name_plural = _("SMS messages")
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["order", "event"], name="sms_message_once_per_event")]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="sms_message_due", condition=Q(status="queued")),
            models.Index(fields=["merchant", "phone", "sent_at"], name="sms_message_phone_sent"),
            models.Index(fields=["merchant", "sent_at"], name="sms_message_merchant_sent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()} → {self.phone}"

    @property
    def out_id(self) -> str:
        """The ``OutId`` sent with it: our id, echoed in Aliyun's receipts and logs."""
        return f"lc-sms-{self.pk}"
