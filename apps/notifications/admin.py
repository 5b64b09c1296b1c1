"""SMS notifications in the merchant admin: the account (its AccessKey secret write-only), a
template per event, the buyers who opted out, and the outbox (read-only, with filters)."""

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
from .models import SmsAccount, SmsMessage, SmsOptOut, SmsStatus, SmsTemplate

STATUS_COLOURS: dict[str, str] = {
    SmsStatus.QUEUED.value: "#b7791f",
    SmsStatus.SENT.value: "#2f855a",
    SmsStatus.FAILED.value: "#9b2c2c",
    SmsStatus.SKIPPED.value: "#4a5568",
}


class _ServiceValidated:
    """Run the service's rules on the form's instance (its merchant is set by then) and show a
    refusal on the field it names."""

    validate: Any = None

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # ModelForm._post_clean is Django API the stubs omit
        form: Any = self
        if form.errors or form.instance.merchant_id is None:
            return
        try:
            type(self).validate(form.instance)
        except ApplicationError as exc:
            add_application_error(form, exc)


class SmsAccountForm(_ServiceValidated, WriteOnlySecretsForm):
    validate = staticmethod(services.sms_account_validate)
    secret_fields = ("access_key_secret",)
    secret_hints = {"access_key_secret": _("The AccessKey secret of a RAM user allowed to send SMS. Required.")}
    access_key_secret = secret_field(_("AccessKey secret"))
    api_base_url = forms.URLField(
        label=_("API base URL"),
        required=False,
        max_length=300,
        assume_scheme="https",
        help_text=_("Empty: the provider's production gateway. Set it for a sandbox or a local simulator."),
    )

    class Meta:
        model = SmsAccount
        fields = ["provider", "access_key_id", "access_key_secret", "sign_name", "api_base_url", "enabled"]

    def _get_validation_exclusions(self) -> set[str]:
        # one account per merchant is the service's rule (a field error), not a unique-error page
        return {*super()._get_validation_exclusions(), "merchant"}  # type: ignore[misc]  # Django API the stubs omit


class SmsTemplateForm(_ServiceValidated, forms.ModelForm):
    validate = staticmethod(services.sms_template_validate)

    class Meta:
        model = SmsTemplate
        fields = ["event", "template_code", "enabled"]


class SmsOptOutForm(_ServiceValidated, forms.ModelForm):
    validate = staticmethod(services.sms_opt_out_validate)

    class Meta:
        model = SmsOptOut
        fields = ["phone", "note"]


class _SettingsAdmin(MerchantScopedAdmin):
    """Saves and deletes go through the services (they drop the cached "SMS enabled" answer)."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:  # a race the form could not foresee: the save rolled back
            messages.error(request, gettext("Not saved: %(reason)s") % {"reason": exc.message})
            return HttpResponseRedirect(request.get_full_path())

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.sms_settings_delete(obj=obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            services.sms_settings_delete(obj=obj)


@admin.register(SmsAccount)
class SmsAccountAdmin(_SettingsAdmin):
    role_area = roles.INTEGRATIONS  # an AccessKey secret: the owner's
    form = SmsAccountForm
    list_display = ["__str__", "provider", "access_key_id", "sign_name", "enabled", "updated_at"]
    list_filter = ["provider", "enabled"]
    search_fields = ["access_key_id", "sign_name"]

    def save_model(self, request: HttpRequest, obj: SmsAccount, form: Any, change: bool) -> None:
        self.assign_merchant(request, obj)
        services.sms_account_save(account=obj)


@admin.register(SmsTemplate)
class SmsTemplateAdmin(_SettingsAdmin):
    role_area = roles.INTEGRATIONS
    form = SmsTemplateForm
    list_display = ["event", "template_code", "enabled", "updated_at"]
    list_filter = ["event", "enabled"]
    search_fields = ["template_code"]

    def save_model(self, request: HttpRequest, obj: SmsTemplate, form: Any, change: bool) -> None:
        self.assign_merchant(request, obj)
        services.sms_template_save(template=obj)


@admin.register(SmsOptOut)
class SmsOptOutAdmin(MerchantScopedAdmin):
    role_area = roles.BUYERS  # a buyer's wish, beside the buyer records
    form = SmsOptOutForm
    list_display = ["phone", "note", "created_at"]
    search_fields = ["phone", "note"]
    list_filter = ["created_at"]


@admin.register(SmsMessage)
class SmsMessageAdmin(MerchantScopedAdmin):
    role_area = roles.ORDERS  # what a buyer was told about their order
    list_display = ["id", "order", "event", "phone", "status_badge", "attempts", "sent_at", "next_attempt_at"]
    list_filter = ["status", "event", "error_code", "created_at"]
    search_fields = ["phone", "order__public_id", "biz_id"]
    list_select_related = ["order"]
    readonly_fields = (
        "order",
        "event",
        "phone",
        "template_code",
        "params",
        "status",
        "attempts",
        "next_attempt_at",
        "biz_id",
        "error_code",
        "error",
        "created_at",
        "sent_at",
        "updated_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # messages come from order changes

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the outbox is the record of what buyers were sent

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: SmsMessage) -> str:
        return format_html(
            '<b style="color:{}">{}</b>', STATUS_COLOURS.get(obj.status, "#333"), obj.get_status_display()
        )
