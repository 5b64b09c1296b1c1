"""Outbound webhooks: a merchant's endpoints, the events that happened, and each event's delivery
to each endpoint with every attempt logged."""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.core.encryption import EncryptedTextField
from apps.merchants.models import Merchant

from .event_types import EventType

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


class WebhookEndpoint(models.Model):
    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, related_name="webhook_endpoints", verbose_name=_("merchant")
    )
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True, default="")
    events = models.JSONField(_("events"), default=list, help_text=_("The event types sent to this endpoint."))
    # Kept to sign deliveries, encrypted at rest (apps/core/encryption.py); shown once (the create or
    # rotate answer, the admin's message after adding).
    secret = EncryptedTextField(_("signing secret"), default=new_secret, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["-id"]
        indexes = [models.Index(fields=["merchant", "is_active"])]

    def __str__(self) -> str:
        return self.description or self.url


class WebhookEvent(models.Model):
    """Something that happened, as it was at that moment (``payload`` is what every endpoint gets)."""

    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, related_name="webhook_events", verbose_name=_("merchant")
    )
    public_id = models.CharField(_("event id"), max_length=40, unique=True, default=new_event_id, editable=False)
    type = models.CharField(_("type"), max_length=40, choices=EventType.choices)
    # The change it reports (e.g. "order:o123:v3"): one event per change however often it is announced.
    source_key = models.CharField(_("source"), max_length=120)
    payload = models.JSONField(_("payload"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "type", "source_key"], name="webhook_event_once_per_change")
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")  # not tried yet
    FAILED = "failed", _("Failed, will retry")  # the last attempt failed; next_attempt_at says when
    SUCCEEDED = "succeeded", _("Succeeded")
    ABANDONED = "abandoned", _("Abandoned")  # still failing a day after the first attempt


class WebhookDelivery(models.Model):
    merchant_path = "endpoint__merchant"

    event = models.ForeignKey(
        WebhookEvent, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("event")
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("endpoint")
    )
    status = models.CharField(
        _("status"), max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    # Due for the next automatic attempt (also a lease: a claimed delivery is pushed past it).
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    first_attempt_at = models.DateTimeField(_("first attempt at"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    response_status = models.PositiveIntegerField(_("response status"), null=True, blank=True)
    response_body = models.TextField(_("response body"), blank=True, default="")
    error = models.CharField(_("error"), max_length=500, blank=True, default="")
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once")]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due",
                condition=Q(status__in=["pending", "failed"]),
            )
        ]

    def __str__(self) -> str:
        return f"{self.event.type} → {self.endpoint}"


class AttemptTrigger(models.TextChoices):
    AUTOMATIC = "automatic", _("Automatic")
    REPLAY = "replay", _("Replay")


class WebhookAttempt(models.Model):
    """One HTTP request of a delivery and what came back."""

    merchant_path = "delivery__endpoint__merchant"

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log", verbose_name=_("delivery")
    )
    number = models.PositiveIntegerField(_("attempt"))
    trigger = models.CharField(_("trigger"), max_length=16, choices=AttemptTrigger.choices)
    url = models.URLField(_("URL"), max_length=500)
    succeeded = models.BooleanField(_("succeeded"))
    response_status = models.PositiveIntegerField(_("response status"), null=True, blank=True)
    response_body = models.TextField(_("response body"), blank=True, default="")
    error = models.CharField(_("error"), max_length=500, blank=True, default="")
    duration_ms = models.PositiveIntegerField(_("duration (ms)"))
    created_at = models.DateTimeField(_("sent at"))

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_number")]

    def __str__(self) -> str:
        return f"#{self.number} {self.response_status or self.error}"


class AlertState(models.Model):
    """Whether a level event (stock low, listing sold out) is currently on for its object, so it is
    sent when the condition starts, not on every change while it lasts."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", verbose_name=_("merchant"))
    key = models.CharField(_("key"), max_length=80)  # "stock.low:sku:5", "listing.sold_out:listing:7"
    active = models.BooleanField(_("active"), default=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("alert state")
        verbose_name_plural = _("alert states")
        constraints = [models.UniqueConstraint(fields=["merchant", "key"], name="webhook_alert_state_once")]

    def __str__(self) -> str:
        return self.key
