"""Orders in the merchant back office.

The order list: status tabs with counts (``?tab=<key>``, keys in ``backoffice.ORDER_TABS``), a
search by order number, buyer name or id, phone written any way and address, filters (status,
flag, created date range, show, listing, channel), amounts in ¥, and CSV / XLSX export of exactly
the list shown (all pages), as a job with a progress bar when it is large.

The order page is a page, not a form: status badge, postal address, lines, the ledger in words,
payments, notes and flag, and only the actions valid now, each posted to its own URL and run
through the transition service. Nothing on it pretends to save the order's fields."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.core.files.storage import storages
from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KT
from django.db.models.functions import Concat
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
    QueryDict,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone, translation
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.catalog.admin import run_each, yuan
from apps.catalog.models import Listing
from apps.core.errors import ApplicationError
from apps.core.phone import compact_phone, normalize_cn_mobile
from apps.merchants import roles
from apps.merchants.admin_scoping import (
    MerchantScopedAdmin,
    is_superuser,
    scope_queryset,
    user_merchant_ids,
)

from . import exports, hooks
from .backoffice import ORDER_TABS, TABS_BY_KEY, tab_counts
from .hooks import order_risk
from .models import Buyer, ExportJob, FlagColour, Order, OrderEvent, OrderStatus, Payment
from .order_page import (
    ACTIONS,
    ACTIONS_BY_KEY,
    action_valid,
    address_block,
    channel_label,
    line_rows,
    timeline,
)
from .services.notes import order_flag_set, order_note_add
from .services.transitions import order_cancel, order_transition

EXPORT_FORMATS = ("csv", "xlsx")


def export_sync_max_rows() -> int:
    return int(settings.EXPORT_SYNC_MAX_ROWS)


# --- list filters ---------------------------------------------------------------------------------
class TabFilter(admin.SimpleListFilter):
    """The status tabs (rendered above the list as .lc-tabs, not in the sidebar)."""

    title = gettext_lazy("tab")
    parameter_name = "tab"
    template = "admin/orders/filter_hidden.html"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(t.key, t.label) for t in ORDER_TABS if t.key != "all"]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        tab = TABS_BY_KEY.get(self.value() or "all")
        if tab is None:
            raise IncorrectLookupParameters(f"unknown tab {self.value()!r}")
        return queryset.filter(status__in=tab.statuses) if tab.statuses else queryset


class FlagFilter(admin.SimpleListFilter):
    title = gettext_lazy("flag")
    parameter_name = "flag"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("none", FlagColour.NONE.label), *((c.value, c.label) for c in FlagColour if c.value)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        if value == "none":
            return queryset.filter(Q(flag__isnull=True) | Q(flag__colour=""))
        if value not in FlagColour.values:
            raise IncorrectLookupParameters(f"unknown flag {value!r}")
        return queryset.filter(flag__colour=value)


class ChannelFilter(admin.SimpleListFilter):
    title = gettext_lazy("channel")
    parameter_name = "channel"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        used = model_admin.get_queryset(request).order_by().values_list("channel", flat=True).distinct()
        return [(c, channel_label(c)) for c in sorted(set(used))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(channel=self.value()) if self.value() else queryset


class ListingFilter(admin.SimpleListFilter):
    """Listings of this merchant that have orders, named by SKU and show (one query)."""

    title = gettext_lazy("listing")
    parameter_name = "listing"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        ids = model_admin.get_queryset(request).order_by().values("listing_id").distinct()
        listings = (
            scope_queryset(Listing.objects.all(), request)
            .filter(pk__in=ids)
            .select_related("sku", "sku__product", "session")
            .order_by("-id")[:200]
        )
        return [(str(li.pk), f"{li.sku.product.name} · {li.sku.code} @ {li.session.title}") for li in listings]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            raise IncorrectLookupParameters(f"listing must be an id, not {value!r}")
        return queryset.filter(listing_id=int(value))


class CreatedRangeFilter(admin.ListFilter):
    """Created from / to (dates in the shop's time zone, both days included), two date inputs."""

    title = gettext_lazy("placed at")
    template = "admin/orders/filter_date_range.html"
    params = ("created_from", "created_to")

    def __init__(self, request: HttpRequest, params: dict, model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        self.values: dict[str, date | None] = {}
        self.raw: dict[str, str] = {}
        for name in self.params:
            value = params.pop(name, None)
            if isinstance(value, list):
                value = value[-1] if value else None
            self.raw[name] = value or ""
            try:
                self.values[name] = date.fromisoformat(value) if value else None
            except ValueError:
                raise IncorrectLookupParameters(f"{name}: not a date (YYYY-MM-DD)") from None

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str | None]:
        return list(self.params)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        start, end = self.values.get("created_from"), self.values.get("created_to")
        tz = timezone.get_current_timezone()
        if start:
            queryset = queryset.filter(created_at__gte=datetime.combine(start, time.min, tzinfo=tz))
        if end:
            queryset = queryset.filter(created_at__lt=datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz))
        return queryset

    def choices(self, changelist: Any) -> Iterator[dict[str, Any]]:
        keep = [
            (k, v)
            for k, values in changelist.params.items()
            if k not in self.params and k not in ("p", "e")
            for v in (values if isinstance(values, list) else [values])
        ]
        if changelist.query:
            keep.append(("q", changelist.query))
        yield from [
            {
                "hidden": keep,
                "created_from": self.raw["created_from"],
                "created_to": self.raw["created_to"],
                "clear": changelist.get_query_string(remove=list(self.params)),
                "selected": any(self.raw.values()),
            }
        ]


# --- the list with its tab counts -------------------------------------------------------------------
class OrderChangeList(ChangeList):
    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # Counts for every tab over the list as searched and filtered, the tab aside: one query.
        untabbed = self.get_queryset(request, exclude_parameters=["tab"])
        self.tab_counts = tab_counts(untabbed.order_by())
        active = self.params.get("tab") or "all"
        active = active[-1] if isinstance(active, list) else active
        self.tabs = [
            {
                "key": t.key,
                "label": t.label,
                "count": self.tab_counts.get(t.key, 0),
                "active": t.key == active,
                "url": self.get_query_string(
                    {} if t.key == "all" else {"tab": t.key}, remove=["p", "e", *(["tab"] if t.key == "all" else [])]
                ),
            }
            for t in ORDER_TABS
        ]
        self.export_query = self.get_query_string(remove=["p", "e"])


@admin.register(Order)
class OrderAdmin(MerchantScopedAdmin):
    role_area = roles.ORDERS
    list_display = [
        "flag_dot",
        "public_id",
        "created_cell",
        "status_badge",
        "buyer_cell",
        "total_yuan",
        "source_cell",
        "risk_cell",
    ]
    list_display_links = ["public_id"]
    list_filter = [
        TabFilter,
        "status",
        FlagFilter,
        CreatedRangeFilter,
        ("session", admin.RelatedOnlyFieldListFilter),
        ListingFilter,
        ChannelFilter,
    ]
    search_fields = ["public_id"]  # the search box; the search itself is get_search_results
    search_help_text = gettext_lazy("Order no., buyer name or id, phone (written any way) or address.")
    list_select_related = ["buyer", "session", "flag"]
    list_per_page = 50
    own_actions = ["cancel_orders", "confirm_orders"]

    @property
    def actions(self) -> list[Any]:  # type: ignore[override]  # Django reads it per request
        """Its own actions and those the apps above register (``hooks.registry.order_admin_actions``)."""
        return [*self.own_actions, *hooks.registry.order_admin_actions]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # orders come from buyers (storefront, API, platforms)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the ledger keeps every order

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # No field of an order is edited here: status moves through the actions (the transition
        # service); the changelist keeps its bulk actions (they ask for change permission).
        return False if obj is not None else super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Order, form: Any, change: bool) -> None:
        """Orders change only through ``order_transition`` (the actions)."""

    def _allowed(self, request: HttpRequest, what: str, order: Order | None = None) -> bool:
        """The staff role's ``has_<what>_permission`` (for ``order``'s merchant: a login may hold
        different roles in two merchants); an unknown ``what`` is refused."""
        check = getattr(self, f"has_{what}_permission", None)
        return bool(check(request, order)) if check is not None else False

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return OrderChangeList

    def get_list_select_related(self, request: HttpRequest) -> list[str]:
        return [*self.list_select_related, *hooks.registry.read_prefetch]  # the risk column's row

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        # The list gets the whole width (the columns fit 1366 px); the header and breadcrumbs lead on.
        context = {"title": _("Order list"), "is_nav_sidebar_enabled": False}
        return super().changelist_view(request, {**context, **(extra_context or {})})

    # --- columns ---------------------------------------------------------------------------------
    @admin.display(description=gettext_lazy("flag"), ordering="flag__colour")
    def flag_dot(self, obj: Order) -> str:
        flag = getattr(obj, "flag", None)
        colour = flag.colour if flag is not None else ""
        if not colour:
            return mark_safe('<span class="lc-flag-none"></span>')  # noqa: S308 - a constant; not Django's "-"
        return format_html(
            '<span class="lc-flag lc-flag--{}" title="{}" aria-label="{}"></span>',
            colour,
            flag.get_colour_display(),  # type: ignore[union-attr]  # colour set: the flag exists
            flag.get_colour_display(),  # type: ignore[union-attr]  # colour set: the flag exists
        )

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_badge(self, obj: Order) -> str:
        return format_html('<span class="lc-badge lc-badge--{}">{}</span>', obj.status, obj.get_status_display())

    @admin.display(description=gettext_lazy("risk"))
    def risk_cell(self, obj: Order) -> str:
        """Risk control's verdict: its decision and score, "…" while it is being assessed."""
        risk = order_risk(obj)
        if risk is None:
            return format_html('<span class="lc-muted" title="{}">…</span>', _("Not assessed yet"))
        labels = {"allow": _("Allow"), "review": _("Review"), "block": _("Block")}
        score = "" if risk["score"] is None else f" {risk['score']:.0f}"
        return format_html(
            '<span class="lc-badge lc-badge--{}" title="{}">{}{}</span>',
            risk["decision"],
            "; ".join(risk["reasons"]),
            labels.get(risk["decision"], risk["decision"]),
            score,
        )

    # --- roles (apps/merchants/roles.py): the order actions' capabilities ---------------------
    def has_cancel_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_role_permission(request, "cancel", obj)

    def has_confirm_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_role_permission(request, "confirm", obj)

    def has_note_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_role_permission(request, "note", obj)

    @admin.display(description=gettext_lazy("buyer"), ordering="buyer__name")
    def buyer_cell(self, obj: Order) -> str:
        phone = obj.buyer.phone or (obj.shipping_address or {}).get("phone", "")
        return format_html(
            '{}<br><span class="lc-muted lc-small lc-mono lc-buyer-phone">{}</span>',
            obj.buyer.name or obj.buyer.external_id,
            phone,
        )

    @admin.display(description=gettext_lazy("total"), ordering="total")
    def total_yuan(self, obj: Order) -> str:
        return format_html('<span class="lc-money">{}</span>', yuan(obj.total))

    @admin.display(description=gettext_lazy("placed at"), ordering="created_at")
    def created_cell(self, obj: Order) -> str:
        return timezone.localtime(obj.created_at).strftime("%Y-%m-%d %H:%M")

    @admin.display(description=gettext_lazy("channel / show"), ordering="channel")
    def source_cell(self, obj: Order) -> str:
        return format_html(
            '{}<br><span class="lc-muted lc-small">{}</span>',
            channel_label(obj.channel),
            obj.session.title if obj.session else "—",
        )

    # --- search ----------------------------------------------------------------------------------
    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Order], search_term: str
    ) -> tuple[QuerySet[Order], bool]:
        """Order number (exact or prefix); a phone written any way (``+86 139 1111 0000``,
        ``139-1111-0000``, ``8613911110000``: the buyer's or the recipient's, stored normalised),
        or its last digits; otherwise every word must match the buyer's name or id, the
        recipient, or the address (province, city, district and street read as one text)."""
        text = search_term.strip()
        if not text:
            return queryset, False
        mobile = normalize_cn_mobile(text)
        if mobile:
            return queryset.filter(Q(buyer__phone=mobile) | Q(shipping_address__phone=mobile)), False
        queryset = queryset.alias(
            _ship_phone=KT("shipping_address__phone"),
            _addr=Concat(
                KT("shipping_address__province"),
                KT("shipping_address__city"),
                KT("shipping_address__district"),
                KT("shipping_address__detail"),
            ),
        )
        for word in text.split():
            digits = compact_phone(word)
            match = (
                Q(public_id__startswith=word)
                | Q(buyer__external_id=word)
                | Q(buyer__name__icontains=word)
                | Q(shipping_address__name__icontains=word)
                | Q(_addr__icontains=word)
            )
            if digits.isascii() and digits.isdigit() and len(digits) >= 4:
                match |= Q(buyer__phone__contains=digits) | Q(_ship_phone__contains=digits)
            queryset = queryset.filter(match)
        return queryset, False

    # --- bulk actions (the list) -----------------------------------------------------------------
    @admin.action(description=gettext_lazy("Cancel selected orders (paid ones become refunds)"), permissions=["cancel"])
    def cancel_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        actor = f"staff:{request.user.pk}"
        run_each(request, queryset, lambda o: order_cancel(order=o, actor=actor, reason="cancelled in admin"))

    @admin.action(description=gettext_lazy("Confirm selected paid orders"), permissions=["confirm"])
    def confirm_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        actor = f"staff:{request.user.pk}"
        run_each(
            request,
            queryset,
            lambda o: order_transition(
                order=o,
                to=OrderStatus.CONFIRMED,
                actor=actor,
                reason="confirmed in admin",
                allowed_from=(OrderStatus.PAID,),  # a held order is decided in risk review
            ),
        )

    # --- URLs ------------------------------------------------------------------------------------
    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("export/<str:fmt>/", wrap(self.export_view), name="orders_order_export"),
            path("exports/<int:job_id>/", wrap(self.export_job_view), name="orders_order_export_job"),
            path(
                "exports/<int:job_id>/progress/", wrap(self.export_progress_view), name="orders_order_export_progress"
            ),
            path(
                "exports/<int:job_id>/download/", wrap(self.export_download_view), name="orders_order_export_download"
            ),
            path("<path:object_id>/act/<str:action>/", wrap(self.action_view), name="orders_order_act"),
            path("<path:object_id>/note/", wrap(self.note_view), name="orders_order_note"),
            path("<path:object_id>/flag/", wrap(self.flag_view), name="orders_order_flag"),
            *super().get_urls(),
        ]

    def _order_or_404(self, request: HttpRequest, object_id: str) -> Order:
        order = self.get_object(request, unquote(object_id))
        if order is None or not self.has_view_or_change_permission(request, order):
            raise Http404(_("No such order."))
        return order

    def _back(self, order: Order) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:orders_order_change", args=[order.pk]))

    # --- the order page --------------------------------------------------------------------------
    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        order = self._order_or_404(request, object_id)  # another merchant's order: 404, whatever the method
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET"])  # the page saves nothing: actions have their own URLs
        order = (
            Order.objects.select_related("buyer", "session", "listing", "flag")
            .prefetch_related("lines__sku__product")
            .get(pk=order.pk)
        )
        events = list(OrderEvent.objects.filter(order=order).order_by("seq"))
        can_note = self._allowed(request, "note", order)
        actions = [a for a in ACTIONS if action_valid(a.key, order.status) and self._allowed(request, a.key, order)]
        flag = getattr(order, "flag", None)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Order %(no)s") % {"no": order.public_id},
            "subtitle": None,
            "opts": self.model._meta,
            "app_label": self.model._meta.app_label,
            "original": order,
            "order": order,
            "status_label": order.get_status_display(),
            "total": yuan(order.total),
            "refund_due": yuan(order.refund_due) if order.refund_due else "",
            "channel": channel_label(order.channel),
            "address": address_block(order),
            "lines": [
                {**row, "unit_price": yuan(row["unit_price"]), "line_total": yuan(row["line_total"])}
                for row in line_rows(order)
            ],
            "timeline": timeline(events),
            "payments": list(order.payments.order_by("received_at")),
            "notes": list(order.notes.select_related("author")),
            "flag": flag.colour if flag is not None else "",
            "flag_choices": FlagColour.choices,
            "actions": actions,
            "can_note": can_note,
            "panels": [panel(request, order) for panel in hooks.registry.order_page_panels],
            "has_view_permission": True,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/orders/order/order_page.html", {**context, **(extra_context or {})})

    def _post_only(self, request: HttpRequest) -> HttpResponse | None:
        return None if request.method == "POST" else HttpResponseNotAllowed(["POST"])

    def action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        if (refused := self._post_only(request)) is not None:
            return refused
        order = self._order_or_404(request, object_id)
        spec = ACTIONS_BY_KEY.get(action)
        if spec is None:
            raise Http404(_("No such action."))
        if not self._allowed(request, action, order):
            raise PermissionDenied
        if not action_valid(action, order.status):
            messages.error(
                request,
                _("%(action)s is not possible: the order is %(status)s.")
                % {"action": spec.label, "status": order.get_status_display()},
            )
            return self._back(order)
        actor = f"staff:{request.user.pk}"
        try:
            if action == "confirm":
                order_transition(
                    order=order,
                    to=OrderStatus.CONFIRMED,
                    actor=actor,
                    reason="confirmed in admin",
                    allowed_from=(OrderStatus.PAID,),  # held meanwhile: the risk review decides
                )
            else:
                order_cancel(order=order, actor=actor, reason="cancelled in admin")
        except ApplicationError as exc:
            messages.error(request, _("%(action)s failed: %(why)s") % {"action": spec.label, "why": exc.message})
            return self._back(order)
        order.refresh_from_db()
        messages.success(request, _("Done: the order is now %(status)s.") % {"status": order.get_status_display()})
        return self._back(order)

    def note_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if (refused := self._post_only(request)) is not None:
            return refused
        order = self._order_or_404(request, object_id)
        if not self._allowed(request, "note", order):
            raise PermissionDenied
        try:
            order_note_add(order=order, author=request.user, text=request.POST.get("text", ""))
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Note added."))
        return self._back(order)

    def flag_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if (refused := self._post_only(request)) is not None:
            return refused
        order = self._order_or_404(request, object_id)
        if not self._allowed(request, "note", order):
            raise PermissionDenied
        try:
            order_flag_set(order=order, user=request.user, colour=request.POST.get("colour", ""))
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Flag saved."))
        return self._back(order)

    # --- exports ---------------------------------------------------------------------------------
    def export_view(self, request: HttpRequest, fmt: str) -> HttpResponse:
        """The list as filtered, searched and tabbed (every page): a file now when small, else a
        job and its progress page."""
        if fmt not in EXPORT_FORMATS:
            raise Http404(_("No such export format."))
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        try:
            cl = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            messages.error(request, _("The list's filters are not valid; nothing was exported."))
            return HttpResponseRedirect(reverse("admin:orders_order_changelist"))
        orders = cl.queryset
        if orders.count() <= export_sync_max_rows():
            content = exports.WRITERS[fmt](exports.export_rows(orders))
            response = HttpResponse(content, content_type=exports.CONTENT_TYPES[fmt])
            response["Content-Disposition"] = f'attachment; filename="{exports.export_filename(fmt)}"'
            return response
        ids = user_merchant_ids(request)
        job = ExportJob.objects.create(
            merchant_id=None if is_superuser(request) or not ids else ids[0],
            user=request.user,  # type: ignore[misc]  # admin_view lets only logged-in staff in
            format=fmt,
            filters=request.GET.urlencode(),
            language=translation.get_language() or settings.LANGUAGE_CODE,
        )
        from django_q.tasks import async_task

        transaction.on_commit(lambda: async_task("apps.orders.tasks.export_orders", job.pk))
        return HttpResponseRedirect(reverse("admin:orders_order_export_job", args=[job.pk]))

    def _job_or_404(self, request: HttpRequest, job_id: int) -> ExportJob:
        """A job only for the user who asked for it, while they still belong to its merchant."""
        jobs = ExportJob.objects.filter(pk=job_id, user_id=request.user.pk or 0)
        if not is_superuser(request):
            jobs = jobs.filter(merchant_id__in=user_merchant_ids(request))
        job = jobs.first()
        if job is None:
            raise Http404(_("No such export."))
        return job

    def _job_state(self, job: ExportJob) -> dict[str, Any]:
        percent = 100 if job.status == ExportJob.Status.DONE else 0
        if job.rows_total and job.status != ExportJob.Status.DONE:
            percent = int(job.rows_done * 100 / job.rows_total)
        return {
            "id": job.pk,
            "status": job.status,
            "status_label": job.get_status_display(),
            "rows_done": job.rows_done,
            "rows_total": job.rows_total,
            "percent": percent,
            "download_url": (
                reverse("admin:orders_order_export_download", args=[job.pk])
                if job.status == ExportJob.Status.DONE
                else ""
            ),
        }

    def export_job_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        job = self._job_or_404(request, job_id)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Export of orders"),
            "subtitle": None,
            "opts": self.model._meta,
            "app_label": self.model._meta.app_label,
            "job": job,
            "state": self._job_state(job),
            "progress_url": reverse("admin:orders_order_export_progress", args=[job.pk]),
            "list_url": reverse("admin:orders_order_changelist") + (f"?{job.filters}" if job.filters else ""),
        }
        return TemplateResponse(request, "admin/orders/order/export_job.html", context)

    def export_progress_view(self, request: HttpRequest, job_id: int) -> JsonResponse:
        response = JsonResponse(self._job_state(self._job_or_404(request, job_id)))
        response["Cache-Control"] = "no-store"
        return response

    def export_download_view(self, request: HttpRequest, job_id: int) -> FileResponse:
        job = self._job_or_404(request, job_id)
        if job.status != ExportJob.Status.DONE or not job.file:
            raise Http404(_("This export is not ready."))
        return FileResponse(
            storages["exports"].open(job.file, "rb"),
            as_attachment=True,
            filename=f"orders-export-{job.pk}.{job.format}",
            content_type=exports.CONTENT_TYPES[job.format],
        )


def export_job_orders(job: ExportJob) -> QuerySet[Order]:
    """The list a job was asked for, rebuilt the way the list builds it: the same admin, the
    same query string, the user who asked (so the same merchant scope and filters)."""
    request = HttpRequest()
    request.method = "GET"
    request.GET = QueryDict(job.filters)
    request.user = job.user
    model_admin = admin.site._registry[Order]
    with translation.override(job.language):
        return model_admin.get_changelist_instance(request).queryset


@admin.register(Payment)
class PaymentAdmin(MerchantScopedAdmin):
    role_area = roles.PAYMENTS
    list_display = ["transaction_id", "order", "amount_yuan", "outcome", "paid_at", "received_at"]
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

    @admin.display(description=gettext_lazy("amount"), ordering="amount")
    def amount_yuan(self, obj: Payment) -> str:
        return yuan(obj.amount)


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
