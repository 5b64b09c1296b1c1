from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from . import roles


class Merchant(models.Model):
    slug = models.SlugField(_("slug"), max_length=64, unique=True, help_text=_("Used in storefront links."))
    name = models.CharField(_("name"), max_length=200)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("merchant")
        verbose_name_plural = _("merchants")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    """A staff member's (or an API token's) role in one merchant; what each may do is in
    :mod:`apps.merchants.roles`."""

    OWNER = roles.OWNER, roles.ROLE_LABELS[roles.OWNER]
    OPERATOR = roles.OPERATOR, roles.ROLE_LABELS[roles.OPERATOR]
    CUSTOMER_SERVICE = roles.CUSTOMER_SERVICE, roles.ROLE_LABELS[roles.CUSTOMER_SERVICE]
    ANALYST = roles.ANALYST, roles.ROLE_LABELS[roles.ANALYST]


class Membership(models.Model):
    Role = Role

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("login")
    )
    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("merchant")
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.OPERATOR)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("staff member")
        verbose_name_plural = _("staff")
        constraints = [
            models.UniqueConstraint(fields=["user", "merchant"], name="uniq_membership"),
            models.CheckConstraint(condition=models.Q(role__in=roles.ROLES), name="membership_role_known"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.merchant} ({self.get_role_display()})"


class ApiToken(models.Model):
    """A streamer-tool token. Only its SHA-256 is stored; the token is shown once."""

    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, related_name="api_tokens", verbose_name=_("merchant")
    )
    name = models.CharField(_("name"), max_length=100)
    # Fixed when the token is made (a new role is a new token): the auth caches never go stale.
    role = models.CharField(
        _("role"),
        max_length=16,
        choices=Role.choices,
        default=Role.OPERATOR,
        help_text=_("What the token may do. Operator: orders, shows, products and stock. Analyst: read only."),
    )
    prefix = models.CharField(_("prefix"), max_length=12, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=models.Q(role__in=roles.ROLES), name="api_token_role_known")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
