"""Risk control's records: the merchant's rules and policy, and one assessment per order (or per
blocked attempt, which has no order)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.catalog.models import Listing, LiveSession
from apps.merchants.models import Merchant
from apps.orders.models import Order

from .catalogue import CATALOGUE


class RuleMode(models.TextChoices):
    ON = "on", _("On")
    DRY_RUN = "dry_run", _("Dry run (record only)")
    OFF = "off", _("Off")


class RuleAction(models.TextChoices):
    BLOCK = "block", _("Block the order")
    REVIEW = "review", _("Allow, then hold for review")
    SHORT_WINDOW = "short_window", _("Allow with a short payment window")


class Decision(models.TextChoices):
    ALLOW = "allow", _("Allow")
    REVIEW = "review", _("Review")
    BLOCK = "block", _("Block")


class ReviewOutcome(models.TextChoices):
    NONE = "", _("Not reviewed")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")


class RiskRule(models.Model):
    """One hot-path rule of one merchant: a counter (``rules.CATALOGUE``) over a threshold, and what
    to do then. In dry run the rule's hits are recorded on the order but change nothing."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", verbose_name=_("merchant"))
    code = models.CharField(_("rule"), max_length=40)
    mode = models.CharField(_("mode"), max_length=10, choices=RuleMode.choices, default=RuleMode.ON)
    threshold = models.PositiveIntegerField(_("threshold"), help_text=_("The rule fires when the count is above this."))
    action = models.CharField(_("action"), max_length=20, choices=RuleAction.choices)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("risk rule")
        verbose_name_plural = _("risk rules")
        ordering = ["merchant_id", "code"]
        constraints = [models.UniqueConstraint(fields=["merchant", "code"], name="uniq_risk_rule_per_merchant")]

    def __str__(self) -> str:
        spec = CATALOGUE.get(self.code)
        return str(spec.label) if spec is not None else self.code


class RiskPolicy(models.Model):
    """A merchant's risk settings beyond the rules."""

    merchant = models.OneToOneField(
        Merchant, on_delete=models.CASCADE, primary_key=True, related_name="+", verbose_name=_("merchant")
    )
    short_window_seconds = models.PositiveIntegerField(
        _("short payment window (seconds)"),
        default=120,
        help_text=_("The payment window of an order a rule marks as a likely stock-locker."),
    )
    model_mode = models.CharField(
        _("risk model"),
        max_length=10,
        choices=RuleMode.choices,
        default=RuleMode.ON,
        help_text=_("Whether the scoring model's verdict holds orders for review (dry run: recorded only)."),
    )
    review_score = models.FloatField(
        _("review score"),
        null=True,
        blank=True,
        help_text=_("Orders scoring at or above this (0-100) are held for review; empty: the model's own threshold."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("risk policy")
        verbose_name_plural = _("risk policies")

    def __str__(self) -> str:
        return str(self.merchant_id)


class RiskAssessment(models.Model):
    """Risk control's verdict on one order, or on one blocked attempt (no order: nothing was
    placed). The keys (phone, address, device, IP) are the normalised ones the links between buyers
    of one show are found by; ``facts`` and ``features`` are what the verdict was made from (and
    what a review outcome trains the model on)."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", verbose_name=_("merchant"))
    order = models.OneToOneField(
        Order,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="risk_assessment",
        verbose_name=_("order"),
    )
    session = models.ForeignKey(
        LiveSession, on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("show")
    )
    listing = models.ForeignKey(
        Listing, on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("listing")
    )
    public_id = models.CharField(_("order no."), max_length=32)
    buyer_external_id = models.CharField(_("buyer id"), max_length=100)
    phone_key = models.CharField(_("phone"), max_length=16, blank=True, default="")
    address_key = models.CharField(_("address"), max_length=300, blank=True, default="")
    drop_point = models.CharField(_("drop point"), max_length=300, blank=True, default="")
    device_id = models.CharField(_("device"), max_length=128, blank=True, default="")
    ip = models.CharField(_("IP"), max_length=45, blank=True, default="")
    ip24 = models.CharField(_("IP network"), max_length=50, blank=True, default="")
    registered_at = models.DateTimeField(_("account created"), null=True, blank=True)
    decision = models.CharField(_("decision"), max_length=10, choices=Decision.choices)
    score = models.FloatField(_("score"), null=True, blank=True)
    reasons = models.JSONField(_("reasons"), default=list, blank=True)  # [{"code", "params"}]
    facts = models.JSONField(_("facts"), default=dict, blank=True)
    features = models.JSONField(_("features"), default=dict, blank=True)
    model_version = models.CharField(_("model"), max_length=64, blank=True, default="")
    review_outcome = models.CharField(
        _("review"), max_length=10, choices=ReviewOutcome.choices, blank=True, default=ReviewOutcome.NONE
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reviewed by"),
    )
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("risk assessment")
        verbose_name_plural = _("risk assessments")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["session", "phone_key"]),
            models.Index(fields=["session", "address_key"]),
            models.Index(fields=["session", "drop_point"]),
            models.Index(fields=["session", "device_id"]),
            models.Index(fields=["session", "ip"]),
            models.Index(fields=["session", "ip24"]),
            models.Index(fields=["merchant", "decision"]),
            models.Index(fields=["public_id"]),
        ]

    def __str__(self) -> str:
        return self.public_id
