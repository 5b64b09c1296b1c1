"""The stock sync in the admin (INTEGRATIONS area): a read-only list of each link's last pushed
value, time, last error and pending flag (a platform order's shipment push is on the platform
orders' list). The one thing to enter: a Kuaishou link's current platform count, when it is not
known (a new link, or an update whose answer was lost), so incremental updates start from the
truth."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from apps.merchants import roles
from apps.merchants.admin_scoping import MerchantScopedAdmin

from .models import PlatformSkuLink
from .stock_sync import INCREMENTAL, stock_count_confirm

LINK_FIELDS = [
    "shop", "sku", "platform_sku_id", "platform_item_id", "merchant_sku_code", "source", "pending",
    "desired_value", "pushed_value", "pushed_at", "uncertain", "attempts", "next_attempt_at", "last_error",
    "last_error_at", "updated_at",
]  # fmt: skip


def _short(text: str) -> str:
    return (text[:60] + "…") if len(text) > 60 else (text or "—")


class CountForm(forms.ModelForm):
    platform_count = forms.IntegerField(
        label=_("platform count now"),
        required=False,
        min_value=0,
        help_text=_(
            "Kuaishou updates are incremental: enter the stock the platform shows now for this SKU, and the "
            "next update starts from it."
        ),
    )

    class Meta:
        model = PlatformSkuLink
        fields: list[str] = []


@admin.register(PlatformSkuLink)
class PlatformSkuLinkAdmin(MerchantScopedAdmin):
    role_area = roles.INTEGRATIONS
    form = CountForm
    list_display = ["sku", "shop", "platform_sku_id", "pending", "desired_value", "pushed_value", "pushed_at",
                    "uncertain", "attempts", "error_short"]  # fmt: skip
    list_filter = ["shop__platform", "pending", "uncertain", "source"]
    search_fields = ["sku__code", "platform_sku_id", "platform_item_id", "merchant_sku_code"]
    list_select_related = ["sku", "shop"]
    readonly_fields = LINK_FIELDS

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and obj.shop.platform in INCREMENTAL:
            return [*LINK_FIELDS, "platform_count"]
        return LINK_FIELDS

    @admin.display(description=_("last error"))
    def error_short(self, obj: PlatformSkuLink) -> str:
        return _short(obj.last_error)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None or obj.shop.platform not in INCREMENTAL:
            return False
        return super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: PlatformSkuLink, form: Any, change: bool) -> None:
        count = form.cleaned_data.get("platform_count")
        if count is not None:
            stock_count_confirm(link=obj, platform_count=count)
