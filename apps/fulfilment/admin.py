"""Carrier accounts in the merchant admin: secrets write-only (password inputs that never show the
stored value and keep it when left blank), the ship-from party, the tracking push URL to copy."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.core.admin_forms import WriteOnlySecretsForm, add_application_error, secret_field
from apps.core.errors import ApplicationError
from apps.merchants import roles
from apps.merchants.admin_scoping import MerchantScopedAdmin

from . import services
from .models import CarrierAccount
from .selectors import account_push_url

SECRETS = services.SECRET_FIELDS
SENDER = [f"sender_{part}" for part in services.SENDER_FIELDS]
SECRET_LABELS = {
    "app_key": _("account key"),
    "app_secret": _("e-waybill secret"),
    "push_salt": _("push salt"),
    "partner_key": _("network account password"),
    "month_code": _("monthly settlement code"),
}
SECRET_HINTS = {
    "app_key": _("Kuaidi100: the key. Kdniao: the AppKey. Required."),
    "app_secret": _("Kuaidi100 only: the e-waybill secret. Required for Kuaidi100."),
    "push_salt": _("Kuaidi100 only: tracking pushes are signed with it. Left empty, one is generated."),
    "partner_key": _("The password of the express company's network account, where it needs one."),
    "month_code": _("Kdniao only: the monthly settlement code of the express company, where it needs one."),
}


class CarrierAccountForm(WriteOnlySecretsForm):
    secret_fields = SECRETS
    secret_hints = SECRET_HINTS
    app_key = secret_field(SECRET_LABELS["app_key"])
    app_secret = secret_field(SECRET_LABELS["app_secret"])
    push_salt = secret_field(SECRET_LABELS["push_salt"])
    partner_key = secret_field(SECRET_LABELS["partner_key"])
    month_code = secret_field(SECRET_LABELS["month_code"])
    api_base_url = forms.URLField(
        label=_("API base URL"),
        required=False,
        max_length=300,
        assume_scheme="https",
        help_text=_("Empty: the carrier's production gateway. Set it for a sandbox or a local simulator."),
    )

    class Meta:
        model = CarrierAccount
        fields = [
            "carrier",
            "name",
            "app_id",
            *SECRETS,
            "partner_id",
            "express",
            *SENDER,
            "api_base_url",
            "enabled",
            "is_default",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["carrier"].disabled = True  # an account keeps its carrier

    def _get_validation_exclusions(self) -> set[str]:
        # The one-default constraint is kept by the service (the previous default stops being
        # one), not refused by model validation.
        return {*super()._get_validation_exclusions(), "is_default"}  # type: ignore[misc]  # Django API the stubs omit

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # ModelForm._post_clean is Django API the stubs omit
        if self.errors or self.instance.merchant_id is None:
            return
        try:
            services.carrier_account_validate(self.instance)
        except ApplicationError as exc:
            field = str(exc.extra.get("field") or "").replace("sender.", "sender_")
            add_application_error(self, exc, field=field)


@admin.register(CarrierAccount)
class CarrierAccountAdmin(MerchantScopedAdmin):
    role_area = roles.INTEGRATIONS  # carrier secrets: the owner's
    form = CarrierAccountForm
    list_display = ["__str__", "carrier", "app_id", "express", "sender_name", "enabled", "is_default"]
    list_filter = ["carrier", "express", "enabled", "is_default"]
    search_fields = ["name", "app_id", "partner_id", "sender_name"]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        account = ["carrier", "name", "app_id", *SECRETS, "partner_id", "express", "api_base_url"]
        sets: list[tuple[Any, dict[str, Any]]] = [
            (None, {"fields": account}),
            (_("Sender"), {"fields": SENDER}),
            (_("Use"), {"fields": ["enabled", "is_default"]}),
        ]
        if obj is not None:
            sets.append((_("Tracking pushes"), {"fields": [self._push_url_field(request)]}))
        return sets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        return readonly if obj is None else [*readonly, self._push_url_field(request)]

    def _push_url_field(self, request: HttpRequest) -> Any:
        """The push URL as a read-only field of this request (absolute: it needs the request's
        host when PUBLIC_BASE_URL is not set). One object per request, so fieldsets and
        read-only fields name the same one."""
        cached = getattr(request, "_lc_carrier_push_url_field", None)
        if cached is not None:
            return cached

        @admin.display(description=_("push URL"))
        def push_url(obj: CarrierAccount) -> str:
            hint = gettext(
                "Kdniao: set this address as the push URL in the Kdniao console. Kuaidi100: every tracking "
                "subscription names it."
            )
            return format_html(
                '<input type="text" readonly value="{}" size="90" class="vTextField" aria-label="{}">'
                '<div class="help">{}</div>',
                account_push_url(obj, request),
                gettext("push URL"),
                hint,
            )

        request._lc_carrier_push_url_field = push_url  # type: ignore[attr-defined]  # a per-request cache kept on the request
        return push_url

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:  # a race the form could not foresee: the save rolled back
            messages.error(request, gettext("Not saved: %(reason)s") % {"reason": exc.message})
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request: HttpRequest, obj: CarrierAccount, form: Any, change: bool) -> None:
        self.assign_merchant(request, obj)
        services.carrier_account_save(account=obj)
