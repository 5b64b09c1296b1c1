"""After-sales in the merchant admin (售后): the refund requests, awaiting a decision by default, with
the steps that move them (approve, reject with a note the buyer sees, goods received, send again),
in bulk; and the provider's refund callbacks as they came (read-only)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.core.errors import ApplicationError
from apps.merchants import roles
from apps.merchants.admin_scoping import MerchantScopedAdmin, MerchantScopedInline
from apps.orders import hooks

from . import refunds
from .models import RefundLine, RefundNotice, RefundRequest

R = RefundRequest.Status


class RefundLineInline(MerchantScopedInline, admin.TabularInline):
    model = RefundLine
    extra = 0
    fields = ["order_line", "quantity"]
    readonly_fields = ["order_line", "quantity"]
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class StatusFilter(admin.SimpleListFilter):
    """Open requests (awaiting a decision, the goods or the money) by default."""

    title = _("status")
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("open", _("Open")), *R.choices, ("all", _("All"))]

    def choices(self, changelist: Any) -> Any:
        value = self.value() or "open"
        for lookup, title in self.lookup_choices:
            yield {
                "selected": value == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[RefundRequest]) -> QuerySet[RefundRequest]:
        value = self.value() or "open"
        if value == "open":
            return queryset.filter(status__in=RefundRequest.OPEN)
        if value == "all":
            return queryset
        return queryset.filter(status=value)


class RejectForm(forms.Form):
    note = forms.CharField(
        label=_("Why (the buyer sees it)"), max_length=300, widget=forms.Textarea(attrs={"rows": 3, "cols": 60})
    )


@admin.register(RefundRequest)
class RefundRequestAdmin(MerchantScopedAdmin):
    """The after-sales queue: what buyers asked back, and where each request is."""

    role_area = roles.ORDERS
    list_display = ["public_id", "order", "kind", "status", "amount", "reason", "requested_at"]
    list_filter = [StatusFilter, "kind", "source"]
    search_fields = ["public_id", "order__public_id", "reason"]
    list_select_related = ["order"]
    inlines = [RefundLineInline]
    readonly_fields = [
        "public_id",
        "order",
        "kind",
        "source",
        "status",
        "amount",
        "reason",
        "decision_note",
        "transaction_id",
        "provider_refund_id",
        "attempts",
        "next_attempt_at",
        "last_error",
        "requested_by",
        "requested_at",
        "decided_by",
        "decided_at",
        "received_at",
        "refunded_at",
        "platform_refund_id",
        "platform_status",
        "platform_phase",
        "platform_event_at",
    ]
    exclude = ["merchant", "idempotency_key"]
    actions = ["approve", "reject", "receive", "send_again"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_cancel_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_role_permission(request, "cancel", obj)

    def _each(
        self, request: HttpRequest, queryset: QuerySet[RefundRequest], step: Any, done: str, **kwargs: Any
    ) -> None:
        ok, refused = 0, []
        for refund in queryset.order_by("pk"):
            try:
                step(refund=refund, actor=f"staff:{request.user.pk}", **kwargs)
                ok += 1
            except ApplicationError as exc:
                refused.append(f"{refund.public_id}: {exc.message}")
        if ok:
            messages.success(request, done % {"n": ok})
        for line in refused[:10]:
            messages.warning(request, line)
        if len(refused) > 10:
            messages.warning(request, gettext("%(n)d more not changed.") % {"n": len(refused) - 10})

    @admin.action(description=_("Approve selected requests"), permissions=["cancel"])
    def approve(self, request: HttpRequest, queryset: QuerySet[RefundRequest]) -> None:
        self._each(request, queryset, refunds.refund_approve, gettext("%(n)d approved."))

    @admin.action(description=_("Reject selected requests…"), permissions=["cancel"])
    def reject(self, request: HttpRequest, queryset: QuerySet[RefundRequest]) -> HttpResponse | None:
        if "apply" in request.POST:
            form = RejectForm(request.POST)
            if form.is_valid():
                self._each(
                    request, queryset, refunds.refund_reject, gettext("%(n)d rejected."), note=form.cleaned_data["note"]
                )
                return None
        else:
            form = RejectForm()
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Reject refund requests"),
            "opts": self.model._meta,
            "refunds": queryset,
            "form": form,
            "action": "reject",
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        }
        return TemplateResponse(request, "admin/fulfilment/refundrequest/reject.html", context)

    @admin.action(description=_("Returned goods received: restock and refund"), permissions=["cancel"])
    def receive(self, request: HttpRequest, queryset: QuerySet[RefundRequest]) -> None:
        self._each(request, queryset, refunds.refund_receive, gettext("%(n)d received and restocked."))

    @admin.action(description=_("Send failed refunds again"), permissions=["cancel"])
    def send_again(self, request: HttpRequest, queryset: QuerySet[RefundRequest]) -> None:
        self._each(request, queryset, refunds.refund_retry, gettext("%(n)d sent again."))


@admin.register(RefundNotice)
class RefundNoticeAdmin(MerchantScopedAdmin):
    """The payment provider's refund callbacks as they came (read-only)."""

    role_area = roles.PAYMENTS
    list_display = ["received_at", "refund_no", "outcome", "error"]
    list_filter = ["outcome"]
    search_fields = ["refund_no"]
    readonly_fields = ["refund_no", "body", "timestamp", "signature", "received_at", "outcome", "error", "processed_at"]
    exclude = ["merchant"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def order_refunds_panel(request: HttpRequest, order: Any) -> str:
    """The order page's after-sales panel: what the order owes and paid back, and its requests.
    Empty for an order without any."""
    rows = list(RefundRequest.objects.filter(order_id=order.pk).order_by("-id")[:20])
    if not rows:
        return ""
    return render_to_string(
        "admin/fulfilment/order_refunds_panel.html", {"order": order, "refunds": rows}, request=request
    )


if order_refunds_panel not in hooks.registry.order_page_panels:
    hooks.registry.order_page_panels.append(order_refunds_panel)
