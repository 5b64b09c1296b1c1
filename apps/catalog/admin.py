from __future__ import annotations

import copy
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from apps.core.errors import ApplicationError
from apps.merchants import roles
from apps.merchants.admin_scoping import MerchantScopedAdmin, MerchantScopedInline

from . import hooks, services
from .errors import InvalidInput, ListingStateError
from .models import SKU, Listing, LiveSession, Platform, Product, ProductImage, with_pool_figures


def yuan(value: Any) -> str:
    return f"¥{value:,.2f}" if value is not None else "—"


THUMB = 40  # px: a list row's picture
PREVIEW = 120  # px: a picture on a change form


def thumbnail(url: str, alt: str = "", size: int = THUMB) -> str:
    """An <img> of a stored picture (``lc-thumb``: cropped square, ``catalog/admin.css``), or "—"."""
    if not url:
        return "—"
    return format_html(
        '<img src="{}" alt="{}" width="{}" height="{}" class="lc-thumb" loading="lazy">', url, alt, size, size
    )


class CatalogMedia:
    """The catalog pages' own small stylesheet (thumbnails, checkbox rows); the admin theme is
    the project's."""

    css = {"all": ["catalog/admin.css"]}


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
        messages.success(request, ngettext("%(count)d updated.", "%(count)d updated.", done) % {"count": done})


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
            messages.error(request, gettext("Not saved: %(reason)s") % {"reason": exc.message})
            return HttpResponseRedirect(request.get_full_path())

    def save_formset(self, request, form, formset, change):
        # Inlines here are read-only: nothing is written around the services.
        formset.save(commit=False)  # writes nothing; tells the change log what was asked
        if formset.new_objects or formset.changed_objects or formset.deleted_objects:
            raise ApplicationError(gettext("rows cannot be edited here; open them on their own page"), code="read_only")


class SKUInline(MerchantScopedInline, admin.TabularInline):
    model = SKU
    extra = 0
    fields = ("picture", "code", "name", "variant", "price_yuan")
    readonly_fields = ("picture", "code", "name", "variant", "price_yuan")  # edited on the SKU page
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # SKUs are created with their stock on the SKU page

    def get_queryset(self, request: HttpRequest) -> QuerySet[SKU]:
        return super().get_queryset(request).select_related("product").prefetch_related("product__images")

    @admin.display(description=_("picture"))
    def picture(self, obj: SKU) -> str:
        return thumbnail(obj.image_url, str(obj))

    @admin.display(description=pgettext_lazy("variant", "colour / size"))
    def variant(self, obj: SKU) -> str:
        return obj.variant or "—"

    @admin.display(description=_("price"))
    def price_yuan(self, obj: SKU) -> str:
        return yuan(obj.price)


class ProductImageInline(MerchantScopedInline, admin.TabularInline):
    """Pictures are added, replaced, reordered and deleted here, each through the catalog services."""

    model = ProductImage
    extra = 1
    fields = ("preview", "image", "alt", "position")
    readonly_fields = ("preview",)

    @admin.display(description=_("preview"))
    def preview(self, obj: ProductImage) -> str:
        return thumbnail(obj.image.url, obj.alt, PREVIEW) if obj.pk and obj.image else "—"


class CategoryFilter(admin.SimpleListFilter):
    """The categories the merchant's products use (one query over its own products), and none."""

    title = _("category")
    parameter_name = "category"
    NONE = "-"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        used = set(model_admin.get_queryset(request).order_by().values_list("category", flat=True).distinct())
        choices: list[tuple[str, Any]] = [(c, c) for c in sorted(used) if c]
        if "" in used:
            choices.append((self.NONE, _("No category")))
        return choices

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(category="" if value == self.NONE else value)


@admin.register(Product)
class ProductAdmin(ServiceAdmin):
    role_area = roles.CATALOG
    list_display = ["picture", "name", "category", "is_active", "sku_count", "created_at"]
    list_display_links = ["picture", "name"]
    list_filter = ["is_active", CategoryFilter]
    search_fields = ["name", "description", "category", "skus__code"]
    inlines = [ProductImageInline, SKUInline]
    Media = CatalogMedia

    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        qs = super().get_queryset(request).annotate(n_skus=Count("skus", distinct=True))
        # A GROUP BY drops the model's default ordering: keep it (autocomplete pages by it).
        return qs.order_by(*(Product._meta.ordering or ["-pk"])).prefetch_related("images")

    @admin.display(description=_("picture"))
    def picture(self, obj: Product) -> str:
        main = obj.main_image
        return thumbnail(main.image.url if main else "", obj.name)

    @admin.display(description=_("SKUs"), ordering="n_skus")
    def sku_count(self, obj: Product) -> int:
        return obj.n_skus  # type: ignore[attr-defined]  # annotated in get_queryset

    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        self.assign_merchant(request, obj)
        fields = ("name", "description", "category", "is_active")
        data = {f: form.cleaned_data[f] for f in fields if f in form.cleaned_data}
        if change:
            services.product_update(product=Product.objects.get(pk=obj.pk), data=data)
        else:
            obj.pk = services.product_create(merchant=obj.merchant, **data).pk

    def save_formset(self, request, form, formset, change):
        if formset.model is not ProductImage:
            return super().save_formset(request, form, formset, change)  # SKUs: read-only here
        formset.save(commit=False)  # writes nothing; sorts the rows into new, changed and deleted
        product = Product.objects.get(pk=form.instance.pk)
        for picture in formset.deleted_objects:
            services.product_image_delete(picture=picture)
        changed = {id(obj): fields for obj, fields in formset.changed_objects}
        for row in formset.forms:
            obj = row.instance
            if obj in formset.new_objects:
                created = services.product_image_add(
                    product=product,
                    image=row.cleaned_data["image"],
                    alt=row.cleaned_data.get("alt") or "",
                    position=row.cleaned_data.get("position"),
                )
                obj.pk, obj.image = created.pk, created.image
            elif id(obj) in changed:
                services.product_image_update(
                    picture=ProductImage.objects.get(pk=obj.pk),
                    data={f: row.cleaned_data[f] for f in changed[id(obj)] if f in row.cleaned_data},
                )


class SKUForm(forms.ModelForm):
    on_hand = forms.IntegerField(
        label=_("on hand"),
        min_value=0,
        max_value=10_000_000,
        initial=0,
        help_text=_("Units in the warehouse (changes are stock movements)"),
    )

    class Meta:
        model = SKU
        fields = ["product", "code", "name", "color", "size", "price", "image"]
        help_texts = {
            "name": _("What tells this SKU apart, e.g. 2019 spring harvest."),
            "color": _("Optional; colour and size together are unique within the product."),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["on_hand"].initial = self.instance.stock.on_hand

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # ModelForm._post_clean is Django API the stubs omit
        sku = self.instance
        if sku.merchant_id is None:
            return
        fields = ("product", "code", "price", "on_hand", "color", "size")
        data: dict[str, Any] = {f: self.cleaned_data[f] for f in fields if f in self.cleaned_data}
        if "image" in self.changed_data and "image" in self.cleaned_data:
            data["image"] = self.cleaned_data["image"]
        try:
            services.sku_check(merchant_id=sku.merchant_id, sku_id=sku.pk, data=data)
        except ApplicationError as exc:
            add_service_error(self, exc)
            return
        for f in ("color", "size"):  # as the service normalised them
            if f in data:
                self.cleaned_data[f] = data[f]


@admin.register(SKU)
class SKUAdmin(ServiceAdmin):
    role_area = roles.CATALOG
    form = SKUForm
    list_display = ["picture", "code", "product", "variant", "price_yuan", "on_hand", "reserved", "available"]
    list_display_links = ["picture", "code"]
    search_fields = ["code", "name", "color", "size", "product__name"]
    list_filter = [("product", admin.RelatedOnlyFieldListFilter)]
    autocomplete_fields = ["product"]
    list_select_related = ["product", "stock"]
    readonly_fields = ["preview"]
    Media = CatalogMedia

    def get_queryset(self, request: HttpRequest) -> QuerySet[SKU]:
        return super().get_queryset(request).prefetch_related("product__images")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["product", "code", "name", "color", "size", "price", "on_hand", "image", "preview"]

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
            color=form.cleaned_data.get("color") or "",
            size=form.cleaned_data.get("size") or "",
            image=form.cleaned_data.get("image") or None,
        )
        obj.pk = sku.pk

    @admin.display(description=_("picture"))
    def picture(self, obj: SKU) -> str:
        return thumbnail(obj.image_url, str(obj))

    @admin.display(description=_("shown as"))
    def preview(self, obj: SKU) -> str:
        """The picture buyers and the order page see: the SKU's own, else the product's."""
        return thumbnail(obj.image_url, str(obj), PREVIEW) if obj.pk else "—"

    @admin.display(description=_("variant"), ordering="name")
    def variant(self, obj: SKU) -> str:
        return " · ".join(v for v in (obj.name, obj.variant) if v) or "—"

    @admin.display(description=_("price"), ordering="price")
    def price_yuan(self, obj: SKU) -> str:
        return yuan(obj.price)

    @admin.display(description=_("on hand"))
    def on_hand(self, obj: SKU) -> int:
        return obj.stock.on_hand

    @admin.display(description=_("reserved"))
    def reserved(self, obj: SKU) -> int:
        return obj.stock.reserved

    @admin.display(description=_("available"))
    def available(self, obj: SKU) -> int:
        return obj.stock.available


MAX_WINDOW_MINUTES = 7 * 24 * 60  # the API's bound: 7 days


def minutes(seconds: int) -> Decimal:
    """Seconds as the minutes a form shows (two decimals at most, no trailing zeros: 15, 1.5)."""
    value = (Decimal(seconds) / 60).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


class ListingFigures:
    """A listing's figures with its platforms' channel pools (the rows come from
    ``with_pool_figures``, so a list costs no query per row)."""

    @admin.display(description=_("quota"))
    def quota_total(self, obj: Listing) -> int:
        return obj.quota_total

    @admin.display(description=_("sold"))
    def sold_total(self, obj: Listing) -> int:
        return obj.sold_total

    @admin.display(description=_("left"))
    def left(self, obj: Listing) -> int:
        return obj.available_total


class ListingForm(forms.ModelForm):
    payment_window_minutes = forms.DecimalField(
        label=_("payment window (minutes)"),
        min_value=Decimal("0.5"),
        max_value=MAX_WINDOW_MINUTES,
        max_digits=7,
        decimal_places=2,
        initial=15,
        help_text=_(
            "How long a buyer has to pay; then the order is cancelled and its units go back on sale. "
            "At least 0.5 (30 seconds), e.g. 15."
        ),
    )

    class Meta:
        model = Listing
        fields = ["session", "sku", "price", "quota", "per_buyer_limit", "opens_at", "closes_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pools_quota = 0
        if self.instance.pk:
            self.fields["payment_window_minutes"].initial = minutes(self.instance.payment_window_seconds)
            # The whole quota, platforms' channel pools included (listing_update takes it so).
            self.pools_quota = services.pools_quota(list(Listing.objects.filter(parent_id=self.instance.pk)))
            self.initial["quota"] = self.instance.quota + self.pools_quota

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        value = data.get("payment_window_minutes")
        if value is not None:
            if self.instance.pk and "payment_window_minutes" not in self.changed_data:
                seconds = self.instance.payment_window_seconds  # shown rounded, kept exact
            else:
                seconds = int((value * 60).to_integral_value(rounding=ROUND_HALF_UP))
            self.instance.payment_window_seconds = seconds
        return data

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # ModelForm._post_clean is Django API the stubs omit
        listing = self.instance
        if self.errors or listing.merchant_id is None:
            return
        try:
            if listing.pk and listing.status == Listing.Status.CLOSED:
                raise ListingStateError(gettext("a closed listing cannot be changed"))
            shared = copy.copy(listing)  # the form's quota is the whole; the row's is the shared part
            shared.quota = listing.quota - self.pools_quota
            if shared.quota < 0:
                raise InvalidInput(
                    gettext("quota cannot go below the %(least)d units sold or allocated to platforms")
                    % {"least": listing.sold + self.pools_quota},
                    extra={"field": "quota"},
                )
            services.listing_validate(shared, pools_quota=self.pools_quota)
        except ApplicationError as exc:
            if exc.extra.get("field") == "payment_window_seconds":
                exc.extra["field"] = "payment_window_minutes"
            add_service_error(self, exc)


class ListingInline(ListingFigures, MerchantScopedInline, admin.TabularInline):
    model = Listing
    extra = 0
    fields = ["sku", "price_yuan", "quota_total", "sold_total", "per_buyer_limit", "status"]
    readonly_fields = ["sku", "price_yuan", "quota_total", "sold_total", "per_buyer_limit", "status"]
    show_change_link = True
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Listing]:
        return with_pool_figures(super().get_queryset(request).filter(parent__isnull=True))

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("flash price"))
    def price_yuan(self, obj: Listing) -> str:
        return yuan(obj.price)


def platform_names(values: Any) -> str:
    labels = dict(Platform.choices)
    return "、".join(str(labels.get(v, v)) for v in values or []) or "—"


class LiveSessionForm(forms.ModelForm):
    platforms = forms.MultipleChoiceField(
        label=_("platforms"),
        choices=Platform.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("Where the show streams and sells."),
    )

    class Meta:
        model = LiveSession
        fields = ["title", "streamer", "platforms", "scheduled_at"]

    def clean_platforms(self) -> list[str]:
        chosen = set(self.cleaned_data.get("platforms") or [])
        return [p for p in Platform.values if p in chosen]  # one order, whatever the browser sent

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # ModelForm._post_clean is Django API the stubs omit
        if self.instance.pk and self.instance.status == LiveSession.Status.ENDED:
            self.add_error(None, ValidationError(gettext("an ended show cannot be changed"), code="session_ended"))


@admin.register(LiveSession)
class LiveSessionAdmin(ServiceAdmin):
    role_area = roles.SHOWS
    form = LiveSessionForm
    list_display = ["title", "streamer", "status_badge", "platform_list", "scheduled_at", "started_at", "gmv"]
    list_filter = ["status", "scheduled_at", "generated"]
    search_fields = ["title", "streamer"]
    date_hierarchy = "scheduled_at"
    readonly_fields = ["status", "started_at", "ended_at"]
    inlines = [ListingInline]
    actions = ["start_shows", "end_shows"]
    Media = CatalogMedia

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = ["title", "streamer", "platforms", "scheduled_at", "status", "started_at", "ended_at"]
        if obj is not None and not self.has_change_permission(request, obj):
            fields[fields.index("platforms")] = "platform_list"  # read-only: names, not a JSON list
        return fields

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: LiveSession) -> str:
        colour = {"live": "#d33", "scheduled": "#777", "ended": "#333"}[obj.status]
        return format_html('<b style="color:{}">{}</b>', colour, obj.get_status_display())

    @admin.display(description=_("platforms"))
    def platform_list(self, obj: LiveSession) -> str:
        return platform_names(obj.platforms)

    @admin.display(description=_("GMV"))
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

    @admin.action(description=_("Start selected shows"), permissions=["change"])
    def start_shows(self, request: HttpRequest, queryset: QuerySet[LiveSession]) -> None:
        run_each(request, queryset, lambda s: services.session_start(session=s))

    @admin.action(description=_("End selected shows (closes their listings)"), permissions=["change"])
    def end_shows(self, request: HttpRequest, queryset: QuerySet[LiveSession]) -> None:
        run_each(request, queryset, lambda s: services.session_end(session=s))


@admin.register(Listing)
class ListingAdmin(ListingFigures, ServiceAdmin):
    role_area = roles.SHOWS
    form = ListingForm
    list_display = [
        "picture",
        "sku",
        "session",
        "price_yuan",
        "quota_total",
        "sold_total",
        "left",
        "per_buyer_limit",
        "live_status",
    ]
    list_display_links = ["picture", "sku"]
    list_filter = ["status", ("session", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["sku__code", "sku__name", "sku__product__name", "session__title"]
    autocomplete_fields = ["sku", "session"]
    list_select_related = ["sku", "sku__product", "session"]
    actions = ["open_listings", "close_listings"]
    Media = CatalogMedia

    def get_queryset(self, request: HttpRequest) -> QuerySet[Listing]:
        # A platform's channel pool is part of its listing (its figures), not a listing to edit.
        qs = super().get_queryset(request).filter(parent__isnull=True)
        return with_pool_figures(qs).prefetch_related("sku__product__images")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [
            "session",
            "sku",
            "price",
            "quota",
            "per_buyer_limit",
            "payment_window_minutes",
            "opens_at",
            "closes_at",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # listing_update never moves a listing to another SKU or show: do not offer it.
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "session", "sku"] if obj else readonly

    @admin.display(description=_("payment window (minutes)"))
    def payment_window_minutes(self, obj: Listing) -> Decimal:
        """The read-only form of the field (a closed listing)."""
        return minutes(obj.payment_window_seconds)

    @admin.display(description=_("picture"))
    def picture(self, obj: Listing) -> str:
        return thumbnail(obj.sku.image_url, str(obj.sku))

    @admin.display(description=_("flash price"), ordering="price")
    def price_yuan(self, obj: Listing) -> str:
        return yuan(obj.price)

    @admin.display(description=_("status"))
    def live_status(self, obj: Listing) -> str:
        return str(Listing.Status(obj.effective_status()).label)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.status == Listing.Status.CLOSED:
            return False  # a closed listing cannot change: shown read-only, no Save button
        return super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Listing, form: Any, change: bool) -> None:
        self.assign_merchant(request, obj)
        if change:
            names = {"payment_window_minutes": "payment_window_seconds"}
            fields = [names.get(f, f) for f in form.changed_data]
            services.listing_update(listing=obj, data={f: getattr(obj, f) for f in fields})
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

    @admin.action(description=_("Open selected listings now"), permissions=["change"])
    def open_listings(self, request: HttpRequest, queryset: QuerySet[Listing]) -> None:
        run_each(request, queryset, lambda x: services.listing_open(listing=x))

    @admin.action(description=_("Close selected listings"), permissions=["change"])
    def close_listings(self, request: HttpRequest, queryset: QuerySet[Listing]) -> None:
        run_each(request, queryset, lambda x: services.listing_close(listing=x))
