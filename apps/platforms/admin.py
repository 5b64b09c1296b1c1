"""Platform shops in the merchant admin (secrets write-only, the push URL to copy, sync state
read-only, SKU mappings inline), and each listing's channel allocations as an inline of the
catalog's listing page."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.catalog.admin import ListingAdmin
from apps.catalog.models import Listing
from apps.core.admin_forms import WriteOnlySecretsForm, add_application_error, secret_field
from apps.core.errors import ApplicationError
from apps.merchants import roles
from apps.merchants.admin_scoping import MerchantScopedAdmin, MerchantScopedInline
from apps.orders import hooks

from . import processing, selectors, services
from .models import (
    ChannelMode,
    InboxMessage,
    ListingChannelAllocation,
    PlatformOrder,
    PlatformShop,
    PlatformSkuMapping,
)
from .selectors import shop_push_url

SECRETS = services.SECRET_FIELDS


class PlatformShopForm(WriteOnlySecretsForm):
    """Secrets are password inputs that never show the stored value; left blank, the stored
    value is kept."""

    secret_fields = SECRETS
    secret_hints = {
        "app_secret": _("Kuaishou: the sign secret. Required."),
        "access_token": _("The shop's authorised token (Taobao: session)."),
        "msg_secret": _("Kuaishou only: the key that decrypts pushed messages. Required for Kuaishou."),
    }
    app_secret = secret_field(_("app secret"))
    access_token = secret_field(_("access token"))
    msg_secret = secret_field(_("message secret"))
    api_base_url = forms.URLField(
        label=_("API base URL"),
        required=False,
        max_length=300,
        assume_scheme="https",
        help_text=_("Empty: the platform's production gateway. Set it for a sandbox or a local simulator."),
    )

    class Meta:
        model = PlatformShop
        fields = ["platform", "shop_id", "name", "app_key", *SECRETS, "api_base_url", "enabled"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["platform"].disabled = True  # a connected shop keeps its platform

    def _get_validation_exclusions(self) -> set[str]:
        # The shop's constraints are checked by ``shop_validate``, with a message that names the
        # shop (both constraints hold shop_id: excluding it skips them in model validation).
        return {*super()._get_validation_exclusions(), "shop_id"}  # type: ignore[misc]  # Django API the stubs omit

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # ModelForm._post_clean is Django API the stubs omit
        if self.errors or self.instance.merchant_id is None:
            return
        try:
            services.shop_validate(self.instance)
        except ApplicationError as exc:
            add_application_error(self, exc)


class SkuMappingForm(forms.ModelForm):
    class Meta:
        model = PlatformSkuMapping
        fields = ["platform_sku_id", "platform_item_id", "sku"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        sku, shop = data.get("sku"), self.instance.shop if self.instance.shop_id else None
        if sku is not None and shop is not None and sku.merchant_id != shop.merchant_id:
            self.add_error("sku", ValidationError(gettext("no such SKU"), code="invalid"))
        return data


class SkuMappingInline(MerchantScopedInline, admin.TabularInline):
    model = PlatformSkuMapping
    form = SkuMappingForm
    extra = 0
    fields = ["platform_sku_id", "platform_item_id", "sku"]
    autocomplete_fields = ["sku"]
    verbose_name = _("SKU mapping")
    verbose_name_plural = _(
        "SKU mappings (a platform SKU not listed here is matched by the merchant SKU code it carries)"
    )


@admin.register(PlatformShop)
class PlatformShopAdmin(MerchantScopedAdmin):
    role_area = roles.INTEGRATIONS  # app secrets: the owner's
    form = PlatformShopForm
    list_display = ["__str__", "platform", "shop_id", "enabled", "last_message_at", "last_pull_at", "error_short"]
    list_filter = ["platform", "enabled"]
    search_fields = ["shop_id", "name", "app_key"]
    inlines = [SkuMappingInline]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        connection = ["platform", "shop_id", "name", "app_key", *SECRETS, "api_base_url", "enabled"]
        sets: list[tuple[Any, dict[str, Any]]] = [(None, {"fields": connection})]
        if obj is not None:
            sets.append((_("Pushes"), {"fields": [self._push_url_field(request)]}))
            sets.append(
                (_("Sync state"), {"fields": ["last_message_at", "last_pull_at", "last_error", "last_error_at"]})
            )
        return sets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is None:
            return readonly
        return [
            *readonly,
            self._push_url_field(request),
            "last_message_at",
            "last_pull_at",
            "last_error",
            "last_error_at",
        ]

    def _push_url_field(self, request: HttpRequest) -> Any:
        """The push URL as a read-only field of this request (absolute: it needs the request's
        host when PUBLIC_BASE_URL is not set). One object per request, so fieldsets and
        read-only fields name the same one."""
        cached = getattr(request, "_lc_push_url_field", None)
        if cached is not None:
            return cached

        @admin.display(description=_("push URL"))
        def push_url(obj: PlatformShop) -> str:
            url = shop_push_url(obj, request)
            if url is None:
                return gettext("None: Taobao messages are pulled, there is nothing to register.")
            hint = gettext("Register this address with the platform as the message push address.")
            return format_html(
                '<input type="text" readonly value="{}" size="90" class="vTextField" aria-label="{}">'
                '<div class="help">{}</div>',
                url,
                gettext("push URL"),
                hint,
            )

        request._lc_push_url_field = push_url  # type: ignore[attr-defined]  # a per-request cache kept on the request
        return push_url

    @admin.display(description=_("last error"))
    def error_short(self, obj: PlatformShop) -> str:
        return (obj.last_error[:60] + "…") if len(obj.last_error) > 60 else (obj.last_error or "—")

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:  # a race the form could not foresee: the save rolled back
            messages.error(request, gettext("Not saved: %(reason)s") % {"reason": exc.message})
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request: HttpRequest, obj: PlatformShop, form: Any, change: bool) -> None:
        self.assign_merchant(request, obj)
        services.shop_save(shop=obj)


# --- the channels of a listing, on the catalog's listing page ---------------------------------------
class ChannelAllocationForm(forms.ModelForm):
    class Meta:
        model = ListingChannelAllocation
        fields = ["platform", "mode", "units"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("mode") == ChannelMode.SHARED and data.get("units"):
            self.add_error("units", ValidationError(gettext("a shared channel takes no units"), code="invalid"))
        return data


class ChannelAllocationFormSet(BaseInlineFormSet):
    """The rows together: each platform once, allocated units within the listing's quota (the
    quota as the listing form is about to save it). An allocated row shows the units its channel
    pool holds now (a stock shrink may have cut them since they were set)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            pools = selectors.open_pools(listing=self.instance)
            for form in self.forms:
                row = form.instance
                pool = pools.get(row.platform) if row.pk and row.mode == ChannelMode.ALLOCATED else None
                if pool is not None and pool.quota != row.units:
                    form.initial["units"] = pool.quota

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        rows = [
            {"platform": f.cleaned_data["platform"], "mode": f.cleaned_data["mode"], "units": f.cleaned_data["units"]}
            for f in self.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE") and f.cleaned_data.get("platform")
        ]
        try:
            services.allocations_check(quota=self.instance.quota or 0, allocations=rows)
        except ApplicationError as exc:
            raise ValidationError(exc.message, code=exc.code) from None
        self.channel_rows = rows


class ChannelAllocationInline(MerchantScopedInline, admin.TabularInline):
    model = ListingChannelAllocation
    form = ChannelAllocationForm
    formset = ChannelAllocationFormSet
    extra = 0
    max_num = 3
    fields = ["platform", "mode", "units"]
    verbose_name = _("platform channel")
    verbose_name_plural = _("platform channels (a platform not listed shares the quota)")


admin.site.unregister(Listing)


@admin.register(Listing)
class ListingWithChannelsAdmin(ListingAdmin):
    """The catalog's listing admin with the platforms' channel allocations inline (catalog cannot
    know platforms, so this app extends its page)."""

    inlines = [*ListingAdmin.inlines, ChannelAllocationInline]

    def save_formset(self, request, form, formset, change):
        if formset.model is not ListingChannelAllocation:
            return super().save_formset(request, form, formset, change)
        formset.save(commit=False)  # writes nothing; tells the change log what was asked
        if formset.new_objects or formset.changed_objects or formset.deleted_objects:
            services.allocations_set(listing=form.instance, allocations=formset.channel_rows)


# --- platform orders: the exception queue, and the inbox ------------------------------------------


@admin.register(PlatformOrder)
class PlatformOrderAdmin(MerchantScopedAdmin):
    """Every platform order, filtered to the exception queue by default use: a line no SKU maps
    to (no order yet: map it, then retry) or stock that could not cover it (oversold)."""

    role_area = roles.ORDERS
    list_display = [
        "external_id",
        "platform",
        "shop",
        "order_link",
        "status",
        "exception",
        "oversold_units",
        "ship_state",
        "updated_at",
    ]
    list_filter = ["exception", "ship_state", "platform", "status"]
    search_fields = ["external_id", "order__public_id"]
    list_select_related = ["shop", "order"]
    actions = ["retry"]
    readonly_fields = (
        "shop",
        "platform",
        "external_id",
        "order_link",
        "status",
        "platform_status",
        "event_at",
        "exception",
        "exception_detail",
        "oversold_units",
        "resolved_at",
        "ship_state",
        "ship_attempts",
        "ship_error",
        "ship_pushed_at",
        "detail",
        "created_at",
        "updated_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # platform orders come from the platforms

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # read-only: the platform's word; the one action is "retry"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        if not self.has_role_permission(request, "change"):
            actions.pop("retry", None)
        return actions

    @admin.display(description=_("order"))
    def order_link(self, obj: PlatformOrder) -> str:
        if obj.order is None:
            return "—"
        url = reverse("admin:orders_order_change", args=[obj.order_id])
        return format_html('<a href="{}">{}</a>', url, obj.order.public_id)

    @admin.action(description=_("Fetch again and import (after mapping a SKU, or a failure)"))
    def retry(self, request: HttpRequest, queryset: Any) -> None:
        done, failed = 0, 0
        for po in queryset:
            if not self.has_role_permission(request, "change", po):
                continue
            try:
                processing.platform_order_retry(po)
                done += 1
            except Exception as exc:  # noqa: BLE001 - each order reports for itself
                failed += 1
                messages.error(request, gettext("%(order)s: %(error)s") % {"order": po.external_id, "error": exc})
        if done:
            messages.success(request, gettext("%(n)d platform order(s) fetched and applied.") % {"n": done})


@admin.register(InboxMessage)
class InboxMessageAdmin(MerchantScopedAdmin):
    """Every message a platform sent, raw, with what became of it (read-only)."""

    role_area = roles.INTEGRATIONS
    list_display = ["received_at", "platform", "shop", "kind", "external_order_id", "state", "attempts", "error"]
    list_filter = ["state", "platform", "kind"]
    search_fields = ["message_id", "external_order_id"]
    list_select_related = ["shop"]
    readonly_fields = (
        "shop",
        "platform",
        "message_id",
        "kind",
        "topic",
        "external_order_id",
        "state",
        "attempts",
        "next_attempt_at",
        "error",
        "received_at",
        "processed_at",
        "headers",
        "body",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def order_platform_panel(request: HttpRequest, order: Any) -> str:
    """The order page's platform panel: which shop and platform order it is, its exception (short
    units), its shipment sync. Empty for orders of our own channels."""
    po = PlatformOrder.objects.filter(order_id=order.pk).select_related("shop").first()
    if po is None:
        return ""
    return render_to_string("admin/platforms/order_platform_panel.html", {"po": po}, request=request)


if order_platform_panel not in hooks.registry.order_page_panels:
    hooks.registry.order_page_panels.append(order_platform_panel)
