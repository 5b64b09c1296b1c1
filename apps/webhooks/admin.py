"""Webhooks in the merchant admin: endpoints (events as checkboxes, the secret shown once after
adding) and the delivery log (read-only: request, responses, attempts, next attempt; replay)."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.core.errors import ApplicationError
from apps.merchants import roles
from apps.merchants.admin_scoping import MerchantScopedAdmin, MerchantScopedInline

from . import subscriptions
from .event_types import EventType
from .models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from .targets import check_url

STATUS_COLOURS: dict[str, str] = {
    DeliveryStatus.PENDING.value: "#b7791f",
    DeliveryStatus.FAILED.value: "#c05621",
    DeliveryStatus.SUCCEEDED.value: "#2f855a",
    DeliveryStatus.ABANDONED.value: "#9b2c2c",
}


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(
        label=_("events"), choices=EventType.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "events", "is_active"]

    def clean_url(self) -> str:
        try:
            return check_url(self.cleaned_data.get("url", ""))
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from None

    def clean_events(self) -> list[str]:
        return sorted(set(self.cleaned_data.get("events") or []))


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(MerchantScopedAdmin):
    role_area = roles.INTEGRATIONS  # signing secrets and where the merchant's data goes: the owner's
    form = WebhookEndpointForm
    list_display = ["url", "description", "event_list", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["url", "description"]

    @admin.display(description=_("events"))
    def event_list(self, obj: WebhookEndpoint) -> str:
        labels = dict(EventType.choices)
        return ", ".join(str(labels.get(e, e)) for e in obj.events or [])

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        merchant_id = obj.merchant_id
        transaction.on_commit(lambda: subscriptions.invalidate(merchant_id))
        if not change:
            messages.warning(
                request,
                _("Signing secret for %(url)s: %(secret)s — copy it now: it is not shown again.")
                % {"url": obj.url, "secret": obj.secret},
            )

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        merchant_id = obj.merchant_id
        super().delete_model(request, obj)
        transaction.on_commit(lambda: subscriptions.invalidate(merchant_id))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        merchant_ids = set(queryset.values_list("merchant_id", flat=True))
        super().delete_queryset(request, queryset)
        for merchant_id in merchant_ids:
            subscriptions.invalidate(merchant_id)


class WebhookAttemptInline(MerchantScopedInline, admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("number", "created_at", "trigger", "succeeded", "response_status", "error", "duration_ms")
    readonly_fields = fields
    ordering = ["number"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(MerchantScopedAdmin):
    role_area = roles.INTEGRATIONS
    list_display = [
        "id",
        "event_type",
        "endpoint",
        "status_badge",
        "attempts",
        "response_status",
        "last_attempt_at",
        "next_attempt_at",
    ]
    list_filter = ["status", "event__type", ("endpoint", admin.RelatedOnlyFieldListFilter), "created_at"]
    search_fields = ["event__public_id", "endpoint__url"]
    list_select_related = ["event", "endpoint"]
    readonly_fields = (
        "event_id_display",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "first_attempt_at",
        "last_attempt_at",
        "next_attempt_at",
        "response_status",
        "response_excerpt",
        "error",
        "duration_ms",
        "request_body",
        "created_at",
    )
    fields = readonly_fields
    inlines = [WebhookAttemptInline]
    actions = ["replay_deliveries"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # deliveries come from events

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the log is kept (deleting the endpoint removes it)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # a log: the page is a view with no Save; the replay action stays
        return False if obj is not None else super().has_change_permission(request, obj)

    @admin.display(description=_("event"))
    def event_id_display(self, obj: WebhookDelivery) -> str:
        return obj.event.public_id

    @admin.display(description=_("event type"), ordering="event__type")
    def event_type(self, obj: WebhookDelivery) -> str:
        return str(obj.event.get_type_display())

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: WebhookDelivery) -> str:
        return format_html(
            '<b style="color:{}">{}</b>', STATUS_COLOURS.get(obj.status, "#333"), obj.get_status_display()
        )

    @admin.display(description=_("request body"))
    def request_body(self, obj: WebhookDelivery) -> str:
        text = json.dumps(obj.event.payload, ensure_ascii=False, indent=2)
        return format_html('<pre style="white-space:pre-wrap;max-width:60rem">{}</pre>', text)

    @admin.display(description=_("response body"))
    def response_excerpt(self, obj: WebhookDelivery) -> str:
        return format_html('<pre style="white-space:pre-wrap;max-width:60rem">{}</pre>', obj.response_body or "—")

    @admin.action(description=_("Replay selected deliveries (send again now)"), permissions=["change"])
    def replay_deliveries(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        from django_q.tasks import async_task

        ids = list(queryset.values_list("pk", flat=True))
        for pk in ids:
            async_task("apps.webhooks.tasks.replay", pk, q_options={"task_name": f"webhook replay {pk}"})
        messages.success(
            request,
            ngettext(
                "%(count)d delivery queued to be sent again.", "%(count)d deliveries queued to be sent again.", len(ids)
            )
            % {"count": len(ids)},
        )
