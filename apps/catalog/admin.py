from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from apps.core.errors import ApplicationError
from apps.merchants.admin_scoping import MerchantScopedAdmin, MerchantScopedInline

from . import hooks, services
from .models import SKU, Listing, LiveSession, Product


def yuan(value: Any) -> str:
    return f"¥{value:,.2f}" if value is not None else "—"


def run_each(request: HttpRequest, items: Any, fn: Any) -> None:
    """Run a service per selected object; report each business error instead of failing all."""
    done = 0
    for obj in items:
        try:
            fn(obj)
            done += 1
        except ApplicationError as exc:
            messages.error(request, f"{obj}: {exc.message}")
    if done:
        messages.success(request, f"{done} updated.")


class SKUInline(MerchantScopedInline, admin.TabularInline):
    model = SKU
    extra = 0
    fields = ["code", "name", "price"]
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # SKUs are created with their stock on the SKU page


@admin.register(Product)
class ProductAdmin(MerchantScopedAdmin):
    list_display = ["name", "is_active", "sku_count", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "description", "skus__code"]
    inlines = [SKUInline]

    @admin.display(description="SKUs")
    def sku_count(self, obj: Product) -> int:
        return obj.skus.count()


class SKUForm(forms.ModelForm):
    on_hand = forms.IntegerField(min_value=0, max_value=10_000_000, initial=0, help_text="Initial stock")

    class Meta:
        model = SKU
        fields = ["product", "code", "name", "price"]


@admin.register(SKU)
class SKUAdmin(MerchantScopedAdmin):
    list_display = ["code", "name", "product", "price_yuan", "on_hand", "reserved", "available"]
    search_fields = ["code", "name", "product__name"]
    list_filter = [("product", admin.RelatedOnlyFieldListFilter)]
    autocomplete_fields = ["product"]
    list_select_related = ["product", "stock"]

    def get_form(self, request, obj=None, change=False, **kwargs):  # type: ignore[no-untyped-def]
        if obj is None:
            kwargs["form"] = SKUForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = ["product", "code", "name", "price"]
        return fields + (["on_hand"] if obj is None else [])

    def save_model(self, request: HttpRequest, obj: SKU, form: Any, change: bool) -> None:
        self.assign_merchant(request, obj)
        if change:
            obj.save()
            return
        sku = services.sku_create(
            merchant=obj.merchant,
            product=obj.product,
            code=obj.code,
            name=obj.name,
            price=obj.price,
            on_hand=form.cleaned_data.get("on_hand") or 0,
        )
        obj.pk = sku.pk

    @admin.display(description="price")
    def price_yuan(self, obj: SKU) -> str:
        return yuan(obj.price)

    @admin.display(description="on hand")
    def on_hand(self, obj: SKU) -> int:
        return obj.stock.on_hand

    @admin.display(description="reserved")
    def reserved(self, obj: SKU) -> int:
        return obj.stock.reserved

    @admin.display(description="available")
    def available(self, obj: SKU) -> int:
        return obj.stock.available


class ListingForm(forms.ModelForm):
    class Meta:
        model = Listing
        fields = [
            "session",
            "sku",
            "price",
            "quota",
            "per_buyer_limit",
            "payment_window_seconds",
            "opens_at",
            "closes_at",
        ]

    def _post_clean(self) -> None:
        super()._post_clean()
        listing = self.instance
        if self.errors or listing.merchant_id is None:
            return
        try:
            services.listing_validate(listing)
        except ApplicationError as exc:
            field = exc.extra.get("field")
            self.add_error(field if field in self.fields else None, ValidationError(exc.message, code=exc.code))


class ListingInline(MerchantScopedInline, admin.TabularInline):
    model = Listing
    extra = 0
    fields = ["sku", "price", "quota", "sold", "per_buyer_limit", "status"]
    readonly_fields = ["sku", "price", "quota", "sold", "per_buyer_limit", "status"]
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LiveSession)
class LiveSessionAdmin(MerchantScopedAdmin):
    list_display = ["title", "streamer", "status_badge", "scheduled_at", "started_at", "ended_at", "gmv"]
    list_filter = ["status", "scheduled_at"]
    search_fields = ["title", "streamer"]
    date_hierarchy = "scheduled_at"
    readonly_fields = ["status", "started_at", "ended_at"]
    inlines = [ListingInline]
    actions = ["start_shows", "end_shows"]

    @admin.display(description="status")
    def status_badge(self, obj: LiveSession) -> str:
        colour = {"live": "#d33", "scheduled": "#777", "ended": "#333"}[obj.status]
        return format_html('<b style="color:{}">{}</b>', colour, obj.get_status_display())

    @admin.display(description="GMV")
    def gmv(self, obj: LiveSession) -> str:
        value = hooks.session_gmv(obj.pk)
        return "—" if value is None else yuan(value)

    @admin.action(description="Start selected shows")
    def start_shows(self, request: HttpRequest, queryset: QuerySet[LiveSession]) -> None:
        run_each(request, queryset, lambda s: services.session_start(session=s))

    @admin.action(description="End selected shows (closes their listings)")
    def end_shows(self, request: HttpRequest, queryset: QuerySet[LiveSession]) -> None:
        run_each(request, queryset, lambda s: services.session_end(session=s))


@admin.register(Listing)
class ListingAdmin(MerchantScopedAdmin):
    form = ListingForm
    list_display = ["sku", "session", "price_yuan", "quota", "sold", "left", "per_buyer_limit", "live_status"]
    list_filter = ["status", ("session", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["sku__code", "sku__name", "session__title"]
    autocomplete_fields = ["sku", "session"]
    list_select_related = ["sku", "session"]
    actions = ["open_listings", "close_listings"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # listing_update never moves a listing to another SKU or show: do not offer it.
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "session", "sku"] if obj else readonly

    @admin.display(description="price")
    def price_yuan(self, obj: Listing) -> str:
        return yuan(obj.price)

    @admin.display(description="left")
    def left(self, obj: Listing) -> int:
        return obj.available

    @admin.display(description="status")
    def live_status(self, obj: Listing) -> str:
        return obj.effective_status()

    def save_model(self, request: HttpRequest, obj: Listing, form: Any, change: bool) -> None:
        self.assign_merchant(request, obj)
        if change:
            services.listing_update(listing=obj, data={f: getattr(obj, f) for f in form.changed_data})
        else:
            created = services.listing_create(
                merchant=obj.merchant,
                session=obj.session,
                sku=obj.sku,
                price=obj.price,
                quota=obj.quota,
                per_buyer_limit=obj.per_buyer_limit,
                payment_window_seconds=obj.payment_window_seconds,
                opens_at=obj.opens_at,
                closes_at=obj.closes_at,
            )
            obj.pk = created.pk

    @admin.action(description="Open selected listings now")
    def open_listings(self, request: HttpRequest, queryset: QuerySet[Listing]) -> None:
        run_each(request, queryset, lambda x: services.listing_open(listing=x))

    @admin.action(description="Close selected listings")
    def close_listings(self, request: HttpRequest, queryset: QuerySet[Listing]) -> None:
        run_each(request, queryset, lambda x: services.listing_close(listing=x))
