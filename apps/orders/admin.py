"""Orders in the merchant admin: read-mostly; status changes go through the transition service."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from apps.catalog.admin import run_each, yuan
from apps.merchants import roles
from apps.merchants.admin_scoping import MerchantScopedAdmin, MerchantScopedInline

from .models import Buyer, Order, OrderEvent, OrderLine, OrderStatus, Payment
from .services.transitions import order_cancel, order_transition

STATUS_COLOURS = {
    "pending_payment": "#b7791f",
    "paid": "#2f855a",
    "confirmed": "#2b6cb0",
    "shipped": "#553c9a",
    "delivered": "#285e61",
    "completed": "#1a202c",
    "cancelled": "#9b2c2c",
    "on_hold": "#c05621",
    "refund_pending": "#c53030",
    "refunded": "#718096",
}


class ReadOnlyInline(MerchantScopedInline, admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = ("sku", "quantity", "unit_price", "line_total")
    readonly_fields = fields


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ("seq", "created_at", "from_status", "to_status", "actor", "reason")
    readonly_fields = fields
    ordering = ["seq"]


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = ("transaction_id", "amount", "paid_at", "outcome", "received_at")
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(MerchantScopedAdmin):
    role_area = roles.ORDERS
    list_display = ["public_id", "created_at", "status_badge", "buyer", "total_yuan", "channel", "session", "pay_by"]
    list_filter = ["status", "channel", ("session", admin.RelatedOnlyFieldListFilter), "created_at"]
    search_fields = ["public_id", "buyer__external_id", "buyer__name", "buyer__phone", "tracking_number"]
    date_hierarchy = "created_at"
    list_select_related = ["buyer", "session"]
    readonly_fields = (
        "public_id",
        "status",
        "buyer",
        "session",
        "listing",
        "channel",
        "total",
        "pay_by",
        "paid_at",
        "shipping_address",
        "cancel_reason",
        "refund_due",
        "carrier",
        "tracking_number",
        "version",
        "created_at",
    )
    fields = readonly_fields
    inlines = [OrderLineInline, PaymentInline, OrderEventInline]
    actions = ["cancel_orders", "confirm_orders"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # orders come from buyers (storefront, API, platforms)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the ledger keeps every order

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Every field is read-only and a save would write the whole row (status included) around
        # the transition service: the change page is a view with no Save; actions stay.
        return False if obj is not None else super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Order, form: Any, change: bool) -> None:
        """Orders change only through ``order_transition`` (the actions)."""

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Order) -> str:
        return format_html(
            '<b style="color:{}">{}</b>', STATUS_COLOURS.get(obj.status, "#333"), obj.get_status_display()
        )

    @admin.display(description="total", ordering="total")
    def total_yuan(self, obj: Order) -> str:
        return yuan(obj.total)

    # --- roles (apps/merchants/roles.py): the order actions' capabilities ---------------------
    def has_cancel_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_role_permission(request, "cancel", obj)

    def has_confirm_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_role_permission(request, "confirm", obj)

    def has_note_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_role_permission(request, "note", obj)

    @admin.action(description="Cancel selected orders (paid ones become refunds)", permissions=["cancel"])
    def cancel_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        actor = f"staff:{request.user.pk}"
        run_each(request, queryset, lambda o: order_cancel(order=o, actor=actor, reason="cancelled in admin"))

    @admin.action(description="Confirm selected paid orders", permissions=["confirm"])
    def confirm_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        actor = f"staff:{request.user.pk}"
        run_each(
            request,
            queryset,
            lambda o: order_transition(order=o, to=OrderStatus.CONFIRMED, actor=actor, reason="confirmed in admin"),
        )


@admin.register(Payment)
class PaymentAdmin(MerchantScopedAdmin):
    role_area = roles.PAYMENTS
    list_display = ["transaction_id", "order", "amount", "outcome", "paid_at", "received_at"]
    list_filter = ["outcome"]
    search_fields = ["transaction_id", "order__public_id"]
    list_select_related = ["order"]
    readonly_fields = ("transaction_id", "order", "amount", "paid_at", "outcome", "raw", "received_at")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Buyer)
class BuyerAdmin(MerchantScopedAdmin):
    role_area = roles.BUYERS
    list_display = ["external_id", "name", "phone", "created_at"]
    search_fields = ["external_id", "name", "phone"]
    readonly_fields = ["external_id", "created_at"]
    ordering = ["-created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
