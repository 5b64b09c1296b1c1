from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.utils.html import format_html

from apps.core.errors import ApplicationError
from apps.merchants import roles
from apps.merchants.admin_scoping import MerchantScopedAdmin, MerchantScopedInline

from . import hooks, services
from .errors import ListingStateError
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


def add_service_error(form: forms.BaseForm, exc: ApplicationError) -> None:
    """Show a service's refusal on the form field it names (or on the form)."""
    field = exc.extra.get("field")
    form.add_error(field if field in form.fields else None, ValidationError(exc.message, code=exc.code))


class ServiceAdmin(MerchantScopedAdmin):
    """A ModelAdmin whose saves go through the app's services. Forms run the services' checks
    (errors show on the form); a refusal the check could not foresee (a race, a stock bound)
    rolls the whole save back and comes back as an error message, never a 500."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:  # the admin's atomic block has rolled the save back
            messages.error(request, f"Not saved: {exc.message}")
            return HttpResponseRedirect(request.get_full_path())

    def save_formset(self, request, form, formset, change):
        # Inlines here are read-only: nothing is written around the services.
        formset.save(commit=False)  # writes nothing; tells the change log what was asked
        if formset.new_objects or formset.changed_objects or formset.deleted_objects:
            raise ApplicationError("rows cannot be edited here; open them on their own page", code="read_only")


class SKUInline(MerchantScopedInline, admin.TabularInline):
    model = SKU
    extra = 0
    fields = ("code", "name", "price")
    readonly_fields = ("code", "name", "price")  # edited on the SKU page, through sku_update
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # SKUs are created with their stock on the SKU page


@admin.register(Product)
class ProductAdmin(ServiceAdmin):
    role_area = roles.CATALOG
    list_display = ["name", "is_active", "sku_count", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "description", "skus__code"]
    inlines = [SKUInline]

    @admin.display(description="SKUs")
    def sku_count(self, obj: Product) -> int:
        return obj.skus.count()

    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        self.assign_merchant(request, obj)
        data = {f: form.cleaned_data[f] for f in ("name", "description", "is_active") if f in form.cleaned_data}
        if change:
            services.product_update(product=Product.objects.get(pk=obj.pk), data=data)
        else:
            obj.pk = services.product_create(merchant=obj.merchant, **data).pk


class SKUForm(forms.ModelForm):
    on_hand = forms.IntegerField(
        min_value=0, max_value=10_000_000, initial=0, help_text="Units in the warehouse (changes are stock movements)"
    )

    class Meta:
        model = SKU
        fields = ["product", "code", "name", "price"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["on_hand"].initial = self.instance.stock.on_hand

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # ModelForm._post_clean is Django API the stubs omit
        sku = self.instance
        if sku.merchant_id is None:
            return
        data: dict[str, Any] = {f: self.cleaned_data[f] for f in ("code", "price", "on_hand") if f in self.cleaned_data}
        try:
            services.sku_check(merchant_id=sku.merchant_id, sku_id=sku.pk, data=data)
        except ApplicationError as exc:
            add_service_error(self, exc)


@admin.register(SKU)
class SKUAdmin(ServiceAdmin):
    role_area = roles.CATALOG
    form = SKUForm
    list_display = ["code", "name", "product", "price_yuan", "on_hand", "reserved", "available"]
    search_fields = ["code", "name", "product__name"]
    list_filter = [("product", admin.RelatedOnlyFieldListFilter)]
    autocomplete_fields = ["product"]
    list_select_related = ["product", "stock"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["product", "code", "name", "price", "on_hand"]

    def save_model(self, request: HttpRequest, obj: SKU, form: Any, change: bool) -> None:
        self.assign_merchant(request, obj)
        if change:
            data = {f: form.cleaned_data[f] for f in form.changed_data if f in form.cleaned_data}
            services.sku_update(sku=SKU.objects.get(pk=obj.pk), data=data, reason="set on hand in admin")
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
        super()._post_clean()  # type: ignore[misc]  # ModelForm._post_clean is Django API the stubs omit
        listing = self.instance
        if self.errors or listing.merchant_id is None:
            return
        try:
            if listing.pk and listing.status == Listing.Status.CLOSED:
                raise ListingStateError("a closed listing cannot be changed")
            services.listing_validate(listing)
        except ApplicationError as exc:
            add_service_error(self, exc)


class ListingInline(MerchantScopedInline, admin.TabularInline):
    model = Listing
    extra = 0
    fields = ["sku", "price", "quota", "sold", "per_buyer_limit", "status"]
    readonly_fields = ["sku", "price", "quota", "sold", "per_buyer_limit", "status"]
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LiveSessionForm(forms.ModelForm):
    class Meta:
        model = LiveSession
        fields = ["title", "streamer", "platforms", "scheduled_at"]

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # ModelForm._post_clean is Django API the stubs omit
        if self.instance.pk and self.instance.status == LiveSession.Status.ENDED:
            self.add_error(None, ValidationError("an ended show cannot be changed", code="session_ended"))


@admin.register(LiveSession)
class LiveSessionAdmin(ServiceAdmin):
    role_area = roles.SHOWS
    form = LiveSessionForm
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

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.status == LiveSession.Status.ENDED:
            return False  # an ended show is a record: shown read-only, no Save button
        return super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: LiveSession, form: Any, change: bool) -> None:
        self.assign_merchant(request, obj)
        data = {
            f: form.cleaned_data[f]
            for f in ("title", "streamer", "platforms", "scheduled_at")
            if f in form.cleaned_data
        }
        if change:
            services.session_update(session=LiveSession.objects.get(pk=obj.pk), data=data)
        else:
            obj.pk = services.session_create(merchant=obj.merchant, **{"platforms": [], **data}).pk

    @admin.action(description="Start selected shows", permissions=["change"])
    def start_shows(self, request: HttpRequest, queryset: QuerySet[LiveSession]) -> None:
        run_each(request, queryset, lambda s: services.session_start(session=s))

    @admin.action(description="End selected shows (closes their listings)", permissions=["change"])
    def end_shows(self, request: HttpRequest, queryset: QuerySet[LiveSession]) -> None:
        run_each(request, queryset, lambda s: services.session_end(session=s))


@admin.register(Listing)
class ListingAdmin(ServiceAdmin):
    role_area = roles.SHOWS
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

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.status == Listing.Status.CLOSED:
            return False  # a closed listing cannot change: shown read-only, no Save button
        return super().has_change_permission(request, obj)

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

    @admin.action(description="Open selected listings now", permissions=["change"])
    def open_listings(self, request: HttpRequest, queryset: QuerySet[Listing]) -> None:
        run_each(request, queryset, lambda x: services.listing_open(listing=x))

    @admin.action(description="Close selected listings", permissions=["change"])
    def close_listings(self, request: HttpRequest, queryset: QuerySet[Listing]) -> None:
        run_each(request, queryset, lambda x: services.listing_close(listing=x))
