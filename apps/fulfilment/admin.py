"""Carrier accounts in the merchant admin: secrets write-only (password inputs that never show the
stored value and keep it when left blank), the ship-from party, the tracking push URL to copy."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.files.storage import storages
from django.db.models import Count, Q, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from apps.core.admin_forms import WriteOnlySecretsForm, add_application_error, secret_field
from apps.core.errors import ApplicationError
from apps.merchants import roles
from apps.merchants.admin_scoping import (
    MerchantScopedAdmin,
    MerchantScopedInline,
    is_superuser,
    role_allows,
    user_merchant_ids,
)
from apps.merchants.models import Merchant
from apps.orders import hooks
from apps.orders.models import Order

from . import exception_queue, selectors, services, shipping
from .models import (
    CarrierAccount,
    CarrierPush,
    ExceptionKind,
    FulfilmentException,
    FulfilmentSettings,
    Parcel,
    ShipBatch,
    ShipBatchItem,
    TrackingEvent,
)
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


# --- shipping: batches, parcels, the exception queue, tracking pushes, settings ----------------


ITEM_COUNTS = {
    "items_open": Count(
        "items", filter=Q(items__result__in=(ShipBatchItem.Result.PENDING, ShipBatchItem.Result.RETRY))
    ),
    "items_shipped": Count("items", filter=Q(items__result=ShipBatchItem.Result.SHIPPED)),
    "items_failed": Count("items", filter=Q(items__result=ShipBatchItem.Result.FAILED)),
}
"""A batch's item outcomes, annotated on the admin's batch queryset (the list reads them with its
rows: no query per row)."""


def _batch_state(batch: ShipBatch) -> dict[str, Any]:
    """The batch's progress, from the counts annotated on it (``ITEM_COUNTS``)."""
    done = batch.total - batch.items_open  # type: ignore[attr-defined]  # annotated (ITEM_COUNTS)
    finished = batch.status in (ShipBatch.Status.DONE, ShipBatch.Status.FAILED)
    return {
        "id": batch.pk,
        "status": batch.status,
        "status_label": str(batch.get_status_display()),
        "done": done,
        "total": batch.total,
        "shipped": batch.items_shipped,  # type: ignore[attr-defined]  # annotated (ITEM_COUNTS)
        "failed": batch.items_failed,  # type: ignore[attr-defined]  # annotated (ITEM_COUNTS)
        "percent": 100 if finished else (int(done * 100 / batch.total) if batch.total else 0),
        "finished": finished,
    }


@admin.register(ShipBatch)
class ShipBatchAdmin(MerchantScopedAdmin):
    """Batches: a progress bar while one runs, then per-order results and the documents."""

    role_area = roles.ORDERS
    list_display = ["__str__", "status", "progress_cell", "total", "shipped", "failed", "account", "created_at"]
    list_filter = ["status"]
    list_select_related = ["account"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ShipBatch]:
        return super().get_queryset(request).annotate(**ITEM_COUNTS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a batch is made by the order list's action or the API

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("progress"))
    def progress_cell(self, obj: ShipBatch) -> str:
        state = _batch_state(obj)
        return format_html(
            '<progress class="lc-progress" max="100" value="{}">{}%</progress>', state["percent"], state["percent"]
        )

    def _batch_or_404(self, request: HttpRequest, batch_id: int) -> ShipBatch:
        batch = self.get_queryset(request).select_related("account", "merchant").filter(pk=batch_id).first()
        if batch is None:
            raise Http404(gettext("No such batch."))
        return batch

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("<int:batch_id>/progress/", wrap(self.progress_view), name="fulfilment_shipbatch_progress"),
            path("<int:batch_id>/download/<str:file>/", wrap(self.download_view), name="fulfilment_shipbatch_download"),
            *super().get_urls(),
        ]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        if not str(object_id).isdigit():
            raise Http404(gettext("No such batch."))
        batch = self._batch_or_404(request, int(object_id))
        items = list(selectors.batch_items(batch)[:1000])
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Shipping batch #%(id)s") % {"id": batch.pk},
            "subtitle": None,
            "opts": self.model._meta,
            "app_label": self.model._meta.app_label,
            "batch": batch,
            "state": _batch_state(batch),
            "items": items,
            "more": batch.total > len(items),
            "progress_url": reverse("admin:fulfilment_shipbatch_progress", args=[batch.pk]),
            "downloads": [
                (reverse("admin:fulfilment_shipbatch_download", args=[batch.pk, key]), label)
                for key, field, label in BATCH_FILES
                if getattr(batch, field)
            ],
            "list_url": reverse("admin:fulfilment_shipbatch_changelist"),
        }
        return TemplateResponse(request, "admin/fulfilment/shipbatch/batch.html", context)

    def progress_view(self, request: HttpRequest, batch_id: int) -> JsonResponse:
        response = JsonResponse(_batch_state(self._batch_or_404(request, batch_id)))
        response["Cache-Control"] = "no-store"
        return response

    def download_view(self, request: HttpRequest, batch_id: int, file: str) -> FileResponse:
        batch = self._batch_or_404(request, batch_id)
        found = {key: field for key, field, _label in BATCH_FILES}.get(file)
        name = getattr(batch, found) if found else ""
        if not name:
            raise Http404(gettext("This file is not ready."))
        return FileResponse(
            storages["exports"].open(name, "rb"), as_attachment=True, filename=f"batch-{batch.pk}-{file}"
        )


BATCH_FILES = (
    ("labels.pdf", "labels_file", _("Labels (PDF)")),
    ("picking.xlsx", "picking_xlsx", _("Picking list (XLSX)")),
    ("picking.csv", "picking_csv", _("Picking list (CSV)")),
)


def ship_orders(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
    """The order list's action: one batch of the selected confirmed orders, then its progress page."""
    merchants = set(queryset.values_list("merchant_id", flat=True).distinct())
    if len(merchants) != 1:
        messages.error(request, gettext("Select orders of one merchant to ship them together."))
        return None
    try:
        batch = shipping.batch_create(
            merchant_id=merchants.pop(),
            actor=f"staff:{request.user.pk}",
            orders=list(queryset.values_list("public_id", flat=True)),
        )
    except ApplicationError as exc:
        orders = exc.extra.get("orders")
        detail = f" ({', '.join(orders[:10])})" if orders else ""
        messages.error(request, f"{exc.message}{detail}")
        return None
    return HttpResponseRedirect(reverse("admin:fulfilment_shipbatch_change", args=[batch.pk]))


ship_orders.short_description = _("Ship selected confirmed orders (waybills, labels, picking list)")  # type: ignore[attr-defined]
ship_orders.allowed_permissions = ("confirm",)  # type: ignore[attr-defined]


class TrackingEventInline(MerchantScopedInline, admin.TabularInline):
    model = TrackingEvent
    extra = 0
    can_delete = False
    fields = ["at", "text", "location", "code"]
    readonly_fields = ["at", "text", "location", "code"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Parcel)
class ParcelAdmin(MerchantScopedAdmin):
    role_area = roles.ORDERS
    list_display = ["code", "waybill_no", "express", "status", "track_state", "last_event_at", "shipped_at"]
    list_filter = ["status", "express", "channel"]
    search_fields = ["code", "waybill_no"]
    inlines = [TrackingEventInline]
    readonly_fields = [
        "code",
        "account",
        "express",
        "channel",
        "waybill_no",
        "routing_code",
        "dest_code",
        "status",
        "track_state",
        "last_event_at",
        "shipped_at",
        "delivered_at",
        "subscribed",
        "receiver",
        "orders_cell",
    ]
    exclude = ["address_key"]

    @admin.display(description=_("orders"))
    def orders_cell(self, obj: Parcel) -> str:
        return ", ".join(obj.members.values_list("order__public_id", flat=True))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OpenFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return [("resolved", _("Resolved")), ("all", _("All"))]

    def choices(self, changelist: Any) -> Any:
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": _("Open"),
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "all":
            return queryset
        return queryset.filter(resolved_at__isnull=self.value() != "resolved")


class MerchantFilter(admin.SimpleListFilter):
    """The queue of one of the merchants the login sees (``?merchant=<id>``: the dashboards' counts
    link to it), shown when it sees more than one; never lists another merchant."""

    title = _("merchant")
    parameter_name = "merchant"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        merchants = Merchant.objects.order_by("name", "pk")
        if not is_superuser(request):
            merchants = merchants.filter(pk__in=user_merchant_ids(request, roles.ORDERS, "view"))
        return [(str(pk), name) for pk, name in merchants.values_list("pk", "name")]

    def has_output(self) -> bool:
        return len(self.lookup_choices) > 1

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(merchant_id=int(value)) if str(value).isdigit() else queryset.none()


@admin.register(FulfilmentException)
class FulfilmentExceptionAdmin(MerchantScopedAdmin):
    """The exception queue (异常订单): open by default, by kind, with the actions that resolve it:
    ship again (bad address, stock short, carrier), approve / reject held orders (risk control's
    review), cancel here (a platform's conflict), mark resolved."""

    role_area = roles.ORDERS
    list_display = ["order", "kind", "detail", "order_status", "opened_at", "resolved_at", "resolved_by"]
    list_filter = [OpenFilter, "kind"]
    search_fields = ["order__public_id", "detail"]
    list_select_related = ["order"]
    readonly_fields = ["order", "parcel", "kind", "detail", "opened_at", "resolved_at", "resolved_by", "resolution"]
    actions = ["ship_again", "approve_held", "reject_held", "cancel_here", "mark_resolved"]

    def get_list_filter(self, request: HttpRequest) -> Any:
        # Our merchant filter (the login's merchants only) instead of the superuser's plain one.
        return [MerchantFilter, *(f for f in super().get_list_filter(request) if f != "merchant")]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if hooks.registry.risk_review is None:  # no risk control installed: nothing to review with
            actions.pop("approve_held", None)
            actions.pop("reject_held", None)
        return actions

    @admin.display(description=_("order status"))
    def order_status(self, obj: FulfilmentException) -> str:
        return str(obj.order.get_status_display())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=_("Ship these orders again (a new batch of the confirmed ones)"), permissions=["confirm"])
    def ship_again(self, request: HttpRequest, queryset: QuerySet[FulfilmentException]) -> HttpResponse | None:
        open_ones = queryset.filter(resolved_at__isnull=True, order__status="confirmed")
        orders = Order.objects.filter(pk__in=open_ones.values("order_id"))
        response = ship_orders(self, request, orders)
        if response is not None:
            shipping.exception_resolve(
                exceptions=open_ones, actor=f"staff:{request.user.pk}", resolution=gettext("shipped again")
            )
        return response

    @admin.action(description=_("Approve the held orders (risk review)"), permissions=["review"])
    def approve_held(self, request: HttpRequest, queryset: QuerySet[FulfilmentException]) -> None:
        self._review(request, queryset, approve=True)

    @admin.action(
        description=_("Reject the held orders (risk review; paid ones are owed a refund)"), permissions=["review"]
    )
    def reject_held(self, request: HttpRequest, queryset: QuerySet[FulfilmentException]) -> None:
        self._review(request, queryset, approve=False)

    # Risk control decides held orders: the capability is risk "change", not the queue's own.
    approve_held.role = reject_held.role = (roles.RISK, "change")  # type: ignore[attr-defined]

    def _review(self, request: HttpRequest, queryset: QuerySet[FulfilmentException], *, approve: bool) -> None:
        report = exception_queue.risk_holds_review(exceptions=queryset, approve=approve, user=request.user)
        if report.done:
            n = len(report.done)
            text = (
                ngettext(
                    "%(n)d held order approved: it is confirmed.", "%(n)d held orders approved: they are confirmed.", n
                )
                if approve
                else ngettext(
                    "%(n)d held order rejected: it is cancelled and owed a refund.",
                    "%(n)d held orders rejected: they are cancelled and owed a refund.",
                    n,
                )
            )
            messages.success(request, text % {"n": n})
        _report_refused(request, report.refused)
        _report_skipped(request, report.skipped, ExceptionKind.RISK_HOLD.label)

    @admin.action(description=_("Cancel here (refund): the platform cancelled these orders"), permissions=["cancel"])
    def cancel_here(self, request: HttpRequest, queryset: QuerySet[FulfilmentException]) -> None:
        report = exception_queue.platform_conflicts_cancel(exceptions=queryset, actor=f"staff:{request.user.pk}")
        if report.done:
            n = len(report.done)
            messages.success(
                request,
                ngettext(
                    "%(n)d order cancelled here (a paid one is owed a refund).",
                    "%(n)d orders cancelled here (paid ones are owed a refund).",
                    n,
                )
                % {"n": n},
            )
        _report_refused(request, report.refused)
        _report_skipped(request, report.skipped, ExceptionKind.PLATFORM_CONFLICT.label)

    @admin.action(description=_("Mark as resolved"), permissions=["change"])
    def mark_resolved(self, request: HttpRequest, queryset: QuerySet[FulfilmentException]) -> None:
        n = shipping.exception_resolve(
            exceptions=queryset, actor=f"staff:{request.user.pk}", resolution=gettext("resolved by hand")
        )
        messages.success(request, gettext("%(n)d resolved.") % {"n": n})

    def has_confirm_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_role_permission(request, "confirm", obj)

    def has_cancel_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_role_permission(request, "cancel", obj)

    def has_review_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return role_allows(request, roles.RISK, "change", obj)


def _report_refused(request: HttpRequest, refused: list[tuple[str, str]]) -> None:
    """The orders an action could not move (their status says why), by number: they stay in the queue."""
    if not refused:
        return
    labels = dict(Order._meta.get_field("status").flatchoices)
    listed = ", ".join(f"{public_id} ({labels.get(status, status)})" for public_id, status in refused[:10])
    more = len(refused) - 10
    messages.error(
        request,
        ngettext(
            "%(n)d order could not be changed here and stays in the queue: %(orders)s",
            "%(n)d orders could not be changed here and stay in the queue: %(orders)s",
            len(refused),
        )
        % {"n": len(refused), "orders": listed + (f" … (+{more})" if more > 0 else "")},
    )


def _report_skipped(request: HttpRequest, skipped: int, kind_label: Any) -> None:
    if skipped:
        messages.warning(
            request,
            ngettext(
                "%(n)d selected row is not an open “%(kind)s” exception and was left alone.",
                "%(n)d selected rows are not open “%(kind)s” exceptions and were left alone.",
                skipped,
            )
            % {"n": skipped, "kind": kind_label},
        )


@admin.register(CarrierPush)
class CarrierPushAdmin(MerchantScopedAdmin):
    """Tracking pushes as they came (read-only)."""

    role_area = roles.INTEGRATIONS
    list_display = ["received_at", "account", "outcome", "waybills", "error"]
    list_filter = ["outcome"]
    search_fields = ["waybills"]
    readonly_fields = ["account", "content_type", "body", "received_at", "outcome", "waybills", "error", "processed_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(FulfilmentSettings)
class FulfilmentSettingsAdmin(MerchantScopedAdmin):
    """The merchant's automation settings (made with the defaults when first used)."""

    role_area = roles.ORDERS
    list_display = [
        "merchant",
        "auto_confirm",
        "confirm_after_minutes",
        "merge_within_hours",
        "stale_after_days",
        "complete_after_days",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


from . import admin_refunds  # noqa: E402,F401 - after-sales admin (registers its models)
