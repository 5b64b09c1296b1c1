from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from apps.catalog.models import SKU
from apps.core.errors import ApplicationError
from apps.merchants import roles
from apps.merchants.admin_scoping import MerchantScopedAdmin, scope_queryset

from . import services
from .models import Stock, StockMovement


@admin.register(Stock)
class StockAdmin(MerchantScopedAdmin):
    role_area = roles.STOCK
    list_display = ["sku", "on_hand", "reserved", "available", "updated_at"]
    search_fields = ["sku__code", "sku__name", "sku__product__name"]
    list_select_related = ["sku", "sku__product"]
    readonly_fields = ["sku", "on_hand", "reserved", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # change stock through a stock movement (receive / adjust)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("available"))
    def available(self, obj: Stock) -> int:
        return obj.available


class StockAdjustForm(forms.ModelForm):
    kind = forms.ChoiceField(label=_("kind"), choices=[("receive", _("Receive goods")), ("adjust", _("Correction"))])
    on_hand_delta = forms.IntegerField(
        label=_("Change in units"),
        min_value=-services.MAX_DELTA,
        max_value=services.MAX_DELTA,
        help_text=_("Positive to add units, negative to remove (corrections only)."),
    )

    class Meta:
        model = StockMovement
        fields = ["sku", "kind", "on_hand_delta", "reason", "reference"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors:
            try:
                with _dry_run():
                    services.stock_adjust(
                        sku=data["sku"],
                        delta=data["on_hand_delta"],
                        reason=data.get("reason") or "",
                        kind=data["kind"],
                        reference=data.get("reference") or "",
                    )
            except ApplicationError as exc:
                raise ValidationError(exc.message, code=exc.code) from exc
        return data


@contextlib.contextmanager
def _dry_run() -> Iterator[None]:
    """Run a service in a transaction that is always rolled back (form validation).

    The rollback is requested on the way out: marked at the start, every query inside would fail.
    """
    with transaction.atomic():
        try:
            yield
        finally:
            transaction.set_rollback(True)


@admin.register(StockMovement)
class StockMovementAdmin(MerchantScopedAdmin):
    """Append-only: the add form receives goods or corrects stock through the stock service."""

    role_area = roles.STOCK
    form = StockAdjustForm
    list_display = ["created_at", "sku", "kind", "on_hand_delta", "reserved_delta", "reason", "reference"]
    list_filter = ["kind", "created_at"]
    search_fields = ["sku__code", "reason", "reference"]
    list_select_related = ["sku"]
    autocomplete_fields = ["sku"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["sku", "kind", "on_hand_delta", "reason", "reference"]
        return ["sku", "kind", "on_hand_delta", "reserved_delta", "reason", "reference", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.get_fields(request, obj) if obj else []

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "sku":
            kwargs["queryset"] = scope_queryset(SKU.objects.all(), request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: StockMovement, form: Any, change: bool) -> None:
        d = form.cleaned_data
        services.stock_adjust(
            sku=d["sku"], delta=d["on_hand_delta"], reason=d["reason"], kind=d["kind"], reference=d.get("reference", "")
        )
        obj.pk = StockMovement.objects.filter(sku=d["sku"]).order_by("-id").values_list("pk", flat=True).first()

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
