"""Risk control (风控) in the merchant back office.

- Risk rules: every rule of ``rules.CATALOGUE`` with what it catches and what it counts, edited in
  the list (threshold, action, mode: on / dry run / off). Opening the list gives each of the user's
  merchants a row for every catalogue rule (``rules.ensure_rules``); no rule is added or deleted
  here. A saved change drops the cached rules once committed (``rules.forget``), so it reaches the
  hot path within ``rules.LOCAL_TTL`` seconds.
- Risk policy: the short payment window, the model's mode and the review score.
- Risk assessments, opened on the review queue (风控审核): flagged orders still waiting for a
  decision (``review.reviewable``), with tabs for the reviewed ones, blocked attempts (which have
  no order) and everything; approve or reject the selected orders. Each assessment has a
  read-only page: the order, its score and reasons, the rules' hits and dry-run hits, the buyers
  linked to it in the show and what they share, and Approve / Reject buttons.

Every decision goes through ``review`` (the order state machine: a ledger event, a training
label) and needs "change" in the RISK area for the assessment's merchant (roles.py).
``order_risk_panel`` renders the same verdict as a panel of the order page.
"""

from __future__ import annotations

import functools
import operator
from collections import Counter, defaultdict
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext

from apps.catalog.admin import yuan
from apps.merchants import roles
from apps.merchants.admin_scoping import MerchantScopedAdmin, is_superuser, role_allows, user_merchant_ids
from apps.orders import hooks
from apps.orders.models import Order, OrderStatus
from apps.orders.order_page import address_block, channel_label, line_rows

from . import review, rules
from .models import Decision, ReviewOutcome, RiskAssessment, RiskPolicy, RiskRule
from .reasons import render_reason
from .selectors import LINKED_LIMIT, STRONG, link_counts, linked_buyers

# What each rule's counter counts (rules.CATALOGUE names it by its metric).
METRIC_LABELS = {
    "early": gettext_lazy("Attempts before the listing opened (buyer or device)"),
    "ua_script": gettext_lazy("Whether the client is a script"),
    "ua_headless": gettext_lazy("Whether the client is a headless browser"),
    "ua_inconsistent": gettext_lazy("Whether the user agent contradicts itself"),
    "dev.l": gettext_lazy("Attempts per device on one listing"),
    "phone.l": gettext_lazy("Attempts per phone on one listing"),
    "addr.l": gettext_lazy("Attempts per address on one listing"),
    "ip.l": gettext_lazy("Attempts per IP on one listing"),
    "ip24.l": gettext_lazy("Attempts per IP /24 on one listing"),
    "dev.b": gettext_lazy("Buyers per device in the show"),
    "phone.b": gettext_lazy("Buyers per phone in the show"),
    "addr.b": gettext_lazy("Buyers per address in the show"),
    "drop.b": gettext_lazy("Buyers per flat (however written) in the show"),
    "hoard": gettext_lazy("Whether a new account ordered the maximum quantity"),
}
# Counters that are 0 or 1 (a property of the request): their rule fires above 0, always.
FLAG_METRICS = frozenset({"ua_script", "ua_headless", "ua_inconsistent", "hoard"})
SHARE_LABELS = {
    "phone": gettext_lazy("phone"),
    "address": gettext_lazy("address"),
    "drop_point": gettext_lazy("drop point"),
    "device": gettext_lazy("device"),
    "ip": gettext_lazy("IP"),
}
THRESHOLD_MAX = 100_000
VERDICTS = {"approve": True, "reject": False}
STATUS_LABELS = dict(OrderStatus.choices)


def rule_label(code: str) -> str:
    spec = rules.CATALOGUE.get(code)
    return str(spec.label) if spec is not None else code


def _badge(kind: str, label: Any) -> str:
    return format_html('<span class="lc-badge lc-badge--{}">{}</span>', kind, label)


def _when(value: Any) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def _reasons(a: RiskAssessment) -> list[str]:
    return [render_reason(str(r.get("code", "")), r.get("params") or {}) for r in a.reasons or []]


class _Named:
    """An object as a page names it: its primary key and a label."""

    def __init__(self, pk: Any, label: str) -> None:
        self.pk = pk
        self.label = label

    def __str__(self) -> str:
        return self.label


def _forget_after_commit(merchant_id: int) -> None:
    """Drop the merchant's cached rules once the change is committed: dropped any earlier, a
    process could cache the old rows again before the commit (for the shared cache's 300 s)."""
    transaction.on_commit(lambda: rules.forget(merchant_id))


# --- risk rules ----------------------------------------------------------------------------------
class RiskRuleForm(forms.ModelForm):
    """A rule's threshold, action and mode (the list's editable cells and the rule's page)."""

    class Meta:
        model = RiskRule
        fields = ["threshold", "action", "mode"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        threshold = self.fields.get("threshold")
        if threshold is None:
            return
        threshold.widget.attrs.update({"min": 0, "max": THRESHOLD_MAX, "class": "lc-threshold"})
        spec = rules.CATALOGUE.get(self.instance.code)
        if spec is not None and spec.metric in FLAG_METRICS:
            threshold.disabled = True  # a yes/no counter: "above 0" is the only threshold that means anything

    def clean_threshold(self) -> int:
        value = self.cleaned_data["threshold"]
        if value > THRESHOLD_MAX:
            raise forms.ValidationError(
                _("At most %(max)d: a rule that high would never fire."), params={"max": THRESHOLD_MAX}
            )
        return value


@admin.register(RiskRule)
class RiskRuleAdmin(MerchantScopedAdmin):
    role_area = roles.RISK
    form = RiskRuleForm
    list_display = ["rule_cell", "metric_cell", "threshold", "action", "mode", "updated_at"]
    list_display_links = None  # a rule is edited in the list
    list_editable = ["threshold", "action", "mode"]
    list_filter = ["mode", "action"]
    list_per_page = 100
    fields = ["rule_cell", "metric_cell", "threshold", "action", "mode"]
    readonly_fields = ["rule_cell", "metric_cell"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the catalogue's rules only: every merchant has a row for each

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a rule is switched off, not deleted (a deleted row would come back at its default)

    def get_list_display(self, request: HttpRequest) -> Any:
        shown = list(super().get_list_display(request))
        return ["merchant", *shown] if is_superuser(request) else shown

    def get_ordering(self, request: HttpRequest) -> Any:
        position = Case(
            *[When(code=code, then=Value(i)) for i, code in enumerate(rules.CATALOGUE)],
            default=Value(len(rules.CATALOGUE)),
            output_field=IntegerField(),
        )
        return ["merchant_id", position.asc(), "code"]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        for merchant_id in user_merchant_ids(request, self.role_area, "view"):
            rules.ensure_rules(merchant_id)  # idempotent: rows only for catalogue rules not there yet
        context = {"title": _("Risk rules"), "is_nav_sidebar_enabled": False}
        return super().changelist_view(request, {**context, **(extra_context or {})})

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> Any:
        return super().get_changelist_form(request, form=RiskRuleForm, **kwargs)

    def get_changelist_formset(self, request: HttpRequest, **kwargs: Any) -> Any:
        formset = super().get_changelist_formset(request, **kwargs)
        admin_self = self

        class RoleCheckedFormSet(formset):  # type: ignore[misc, valid-type]  # a formset class made at run time
            """A login with two merchants may hold "change" in one only: a row of the other is
            refused, and then nothing of the list is saved."""

            def clean(self) -> None:
                super().clean()
                for form in self.forms:
                    if form.has_changed() and not admin_self.has_change_permission(request, form.instance):
                        raise forms.ValidationError(
                            _("Your role may not change the rules of %(merchant)s."),
                            params={"merchant": form.instance.merchant},
                        )

        return RoleCheckedFormSet

    def save_model(self, request: HttpRequest, obj: RiskRule, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        _forget_after_commit(obj.merchant_id)

    def render_change_form(self, request: HttpRequest, context: dict, *args: Any, **kwargs: Any) -> HttpResponse:
        obj = context.get("original")
        if obj is not None:
            context["subtitle"] = rule_label(obj.code)
        return super().render_change_form(request, context, *args, **kwargs)

    @admin.display(description=gettext_lazy("what it catches"), ordering="code")
    def rule_cell(self, obj: RiskRule) -> str:
        return rule_label(obj.code)

    @admin.display(description=gettext_lazy("what it counts"))
    def metric_cell(self, obj: RiskRule) -> str:
        spec = rules.CATALOGUE.get(obj.code)
        if spec is None:
            return "—"
        return str(METRIC_LABELS.get(spec.metric, spec.metric))


# --- risk policy ---------------------------------------------------------------------------------
class RiskPolicyForm(forms.ModelForm):
    class Meta:
        model = RiskPolicy
        fields = ["short_window_seconds", "model_mode", "review_score"]

    def clean_short_window_seconds(self) -> int:
        value = self.cleaned_data["short_window_seconds"]
        if not 30 <= value <= 3600:
            raise forms.ValidationError(
                _("Between %(low)d and %(high)d seconds: a buyer must have time to pay."),
                params={"low": 30, "high": 3600},
            )
        return value

    def clean_review_score(self) -> float | None:
        value = self.cleaned_data["review_score"]
        if value is not None and not 0 <= value <= 100:
            raise forms.ValidationError(_("A score is between 0 and 100."))
        return value


@admin.register(RiskPolicy)
class RiskPolicyAdmin(MerchantScopedAdmin):
    role_area = roles.RISK
    form = RiskPolicyForm
    list_display = ["merchant_cell", "window_cell", "model_mode", "review_score_cell", "updated_at"]
    fields = ["short_window_seconds", "model_mode", "review_score"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # one per merchant, made with it

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        for merchant_id in user_merchant_ids(request, self.role_area, "view"):
            rules.ensure_rules(merchant_id)
        return super().changelist_view(request, {"title": _("Risk policy"), **(extra_context or {})})

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("merchant")

    def save_model(self, request: HttpRequest, obj: RiskPolicy, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        _forget_after_commit(obj.merchant_id)

    def render_change_form(self, request: HttpRequest, context: dict, *args: Any, **kwargs: Any) -> HttpResponse:
        obj = context.get("original")
        if obj is not None:
            context["subtitle"] = obj.merchant.name
        return super().render_change_form(request, context, *args, **kwargs)

    @admin.display(description=gettext_lazy("merchant"), ordering="merchant__name")
    def merchant_cell(self, obj: RiskPolicy) -> str:
        return obj.merchant.name

    @admin.display(description=gettext_lazy("short payment window"), ordering="short_window_seconds")
    def window_cell(self, obj: RiskPolicy) -> str:
        return _("%(seconds)d s") % {"seconds": obj.short_window_seconds}

    @admin.display(description=gettext_lazy("review score"), ordering="review_score")
    def review_score_cell(self, obj: RiskPolicy) -> str:
        return _("the model's own") if obj.review_score is None else f"{obj.review_score:g}"


# --- risk assessments and the review queue ------------------------------------------------------
TABS: tuple[tuple[str, Any], ...] = (
    ("queue", gettext_lazy("To review")),
    ("reviewed", gettext_lazy("Reviewed")),
    ("blocked", gettext_lazy("Blocked attempts")),
    ("all", gettext_lazy("All")),
)
TAB_KEYS = {key for key, _label in TABS}


def queue_of(queryset: QuerySet[RiskAssessment], merchant_ids: list[int] | None) -> QuerySet[RiskAssessment]:
    """``queryset`` limited to the review queue (``review.reviewable``) of ``merchant_ids``
    (None: of every merchant it holds)."""
    if merchant_ids is None:
        merchant_ids = list(queryset.order_by().values_list("merchant_id", flat=True).distinct())
    if not merchant_ids:
        return queryset.none()
    queue = functools.reduce(operator.or_, (review.reviewable(m) for m in merchant_ids))
    return queryset.filter(pk__in=queue.values("pk"))


def tab_filter(queryset: QuerySet[RiskAssessment], tab: str, merchant_ids: list[int] | None) -> QuerySet:
    if tab == "queue":
        return queue_of(queryset, merchant_ids)
    if tab == "reviewed":
        return queryset.exclude(review_outcome=ReviewOutcome.NONE)
    if tab == "blocked":
        return queryset.filter(decision=Decision.BLOCK)
    return queryset


def _scope_ids(request: HttpRequest) -> list[int] | None:
    return None if is_superuser(request) else user_merchant_ids(request, roles.RISK, "view")


class TabFilter(admin.SimpleListFilter):
    """The tabs above the list (not in the sidebar); no tab is the review queue."""

    title = gettext_lazy("tab")
    parameter_name = "tab"
    template = "admin/fraud/filter_hidden.html"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return list(TABS)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        tab = self.value() or "queue"
        if tab not in TAB_KEYS:
            raise IncorrectLookupParameters(f"unknown tab {tab!r}")
        if request.method == "POST" and request.POST.get("action"):
            # An action acts on the rows selected, in or out of the queue by now (another
            # reviewer may have decided one since the page was drawn): each is decided or
            # reported on its own, never dropped without a word.
            return queryset
        return tab_filter(queryset, tab, _scope_ids(request))


class ReviewOutcomeFilter(admin.SimpleListFilter):
    title = gettext_lazy("review")
    parameter_name = "outcome"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("none", ReviewOutcome.NONE.label), *((o.value, o.label) for o in ReviewOutcome if o.value)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        if value == "none":
            return queryset.filter(review_outcome=ReviewOutcome.NONE)
        if value not in ReviewOutcome.values:
            raise IncorrectLookupParameters(f"unknown review outcome {value!r}")
        return queryset.filter(review_outcome=value)


class AssessmentChangeList(ChangeList):
    """The tabs with their counts (over the list as searched and filtered, the tab aside), and
    each row's linked buyers (two queries for the page)."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        active = self.params.get("tab") or "queue"
        active = active[-1] if isinstance(active, list) else active
        untabbed = self.get_queryset(request, exclude_parameters=["tab"]).order_by()
        ids = _scope_ids(request)
        self.tabs = [
            {
                "key": key,
                "label": label,
                "count": tab_filter(untabbed, key, ids).count(),
                "active": key == active,
                "url": self.get_query_string({"tab": key}, remove=["p", "e"]),
            }
            for key, label in TABS
        ]
        self.active_tab = active
        counts = link_counts(list(self.result_list))
        for obj in self.result_list:
            obj.links = counts[obj.pk]


@admin.register(RiskAssessment)
class RiskAssessmentAdmin(MerchantScopedAdmin):
    role_area = roles.RISK
    list_display = [
        "order_cell",
        "buyer_cell",
        "score_cell",
        "reasons_cell",
        "decision_cell",
        "status_cell",
        "linked_cell",
        "open_cell",
    ]
    list_display_links = ["open_cell"]
    list_filter = [TabFilter, "decision", ReviewOutcomeFilter, ("session", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["^public_id", "=buyer_external_id"]
    search_help_text = gettext_lazy("Order no. or buyer id.")
    list_select_related = ["order", "order__buyer", "session", "reviewed_by"]
    list_per_page = 50
    actions = ["approve_selected", "reject_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # risk control writes them

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # evidence, and the model's training labels

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # No field is edited: an assessment's page is read-only, its decisions have their own URL;
        # the list keeps its actions (they ask for "change").
        return False if obj is not None else super().has_change_permission(request, obj)

    def may_decide(self, request: HttpRequest, obj: RiskAssessment) -> bool:
        return role_allows(request, self.role_area, "change", obj)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return AssessmentChangeList

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        tab = request.GET.get("tab") or "queue"
        title = _("Review queue") if tab == "queue" else _("Risk assessments")
        context = {"title": title, "is_nav_sidebar_enabled": False}
        return super().changelist_view(request, {**context, **(extra_context or {})})

    # --- columns ---------------------------------------------------------------------------------
    def action_checkbox(self, obj: RiskAssessment) -> SafeString:
        """The row's checkbox, named by its order number for screen readers (the model's own name
        carries its decision code)."""
        return super().action_checkbox(_Named(obj.pk, obj.public_id))

    @admin.display(description=gettext_lazy("order no."), ordering="public_id")
    def order_cell(self, obj: RiskAssessment) -> str:
        when = timezone.localtime(obj.created_at).strftime("%m-%d %H:%M:%S")
        if obj.order_id is None:
            return format_html(
                '<span class="lc-mono">{}</span><br><span class="lc-muted lc-small">{}</span>', obj.public_id, when
            )
        return format_html(
            '<a class="lc-mono" href="{}">{}</a><br><span class="lc-muted lc-small">{}</span>',
            reverse("admin:orders_order_change", args=[obj.order_id]),
            obj.public_id,
            when,
        )

    @admin.display(description=gettext_lazy("buyer"), ordering="buyer_external_id")
    def buyer_cell(self, obj: RiskAssessment) -> str:
        name = obj.order.buyer.name if obj.order is not None else ""
        return format_html(
            '{}<br><span class="lc-muted lc-small lc-mono">{}</span>',
            name or obj.buyer_external_id,
            obj.buyer_external_id,
        )

    @admin.display(description=gettext_lazy("score"), ordering="score")
    def score_cell(self, obj: RiskAssessment) -> str:
        return format_html('<span class="lc-score">{}</span>', _score(obj.score))

    @admin.display(description=gettext_lazy("reasons"))
    def reasons_cell(self, obj: RiskAssessment) -> str:
        texts = _reasons(obj)
        if not texts:
            return format_html('<span class="lc-muted">{}</span>', "—")
        more = len(texts) - 3
        items = format_html_join("", "<li>{}</li>", ((t,) for t in texts[:3]))
        if more > 0:
            items += format_html('<li class="lc-muted">{}</li>', _("and %(n)d more") % {"n": more})
        return format_html('<ul class="lc-reasons">{}</ul>', items)

    @admin.display(description=gettext_lazy("decision"), ordering="decision")
    def decision_cell(self, obj: RiskAssessment) -> str:
        badge = _badge(obj.decision, obj.get_decision_display())
        if not obj.review_outcome:
            return badge
        who = obj.reviewed_by.get_username() if obj.reviewed_by is not None else ""
        return format_html(
            '{}<br><span class="lc-small lc-outcome lc-outcome--{}">{}</span>'
            ' <span class="lc-muted lc-small">{}</span>',
            badge,
            obj.review_outcome,
            obj.get_review_outcome_display(),
            who,
        )

    @admin.display(description=gettext_lazy("order status"), ordering="order__status")
    def status_cell(self, obj: RiskAssessment) -> str:
        if obj.order is None:
            return format_html('<span class="lc-muted lc-small">{}</span>', _("no order (refused)"))
        return _badge(obj.order.status, obj.order.get_status_display())

    @admin.display(description=gettext_lazy("linked buyers"))
    def linked_cell(self, obj: RiskAssessment) -> str:
        links = getattr(obj, "links", None)
        if links is None or not (links.buyers or links.by_kind):
            return format_html('<span class="lc-muted">{}</span>', "0")
        detail = " · ".join(f"{SHARE_LABELS[k]} {n}" for k, n in links.by_kind.items())
        return format_html(
            '<strong class="lc-linked{}">{}</strong><br><span class="lc-muted lc-small">{}</span>',
            " is-alert" if links.buyers else "",
            links.buyers,
            detail,
        )

    @admin.display(description="")
    def open_cell(self, obj: RiskAssessment) -> str:
        waiting = obj.decision == Decision.REVIEW and not obj.review_outcome and obj.order_id is not None
        return str(pgettext("open an assessment", "Review") if waiting else pgettext("open an assessment", "Details"))

    # --- bulk decisions --------------------------------------------------------------------------
    @admin.action(description=gettext_lazy("Approve selected orders"), permissions=["change"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[RiskAssessment]) -> None:
        self._decide(request, queryset, approve=True)

    @admin.action(description=gettext_lazy("Reject selected orders (paid ones become refunds)"), permissions=["change"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[RiskAssessment]) -> None:
        self._decide(request, queryset, approve=False)

    def _decide(self, request: HttpRequest, queryset: QuerySet[RiskAssessment], *, approve: bool) -> None:
        """Each order decided on its own, merchant by merchant (``queryset`` holds only the
        merchants where the role may decide: MerchantScopedAdmin limits every action)."""
        by_merchant: dict[int, list[int]] = defaultdict(list)
        no_order = 0
        for pk, merchant_id, order_id in queryset.order_by("pk").values_list("pk", "merchant_id", "order_id"):
            if order_id is None:
                no_order += 1
            else:
                by_merchant[merchant_id].append(pk)
        results: list[review.ReviewResult] = []
        for merchant_id, ids in by_merchant.items():
            results += review.review_bulk(
                assessment_ids=ids, merchant_id=merchant_id, approve=approve, user=request.user
            )
        report_results(request, results, no_order=no_order)

    # --- URLs ------------------------------------------------------------------------------------
    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/decide/<str:verdict>/", wrap(self.decide_view), name="fraud_riskassessment_decide"),
            *super().get_urls(),
        ]

    def _assessment_or_404(self, request: HttpRequest, object_id: str) -> RiskAssessment:
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_view_permission(request, obj):
            raise Http404(_("No such risk assessment."))
        return obj

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        obj = self._assessment_or_404(request, object_id)  # another merchant's: 404, whatever the method
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET"])  # decisions have their own URL
        context = {
            **self.admin_site.each_context(request),
            **review_page_context(request, obj, may_decide=self.may_decide(request, obj)),
            "opts": self.model._meta,
            "app_label": self.model._meta.app_label,
            "original": obj,
            "has_view_permission": True,
            "subtitle": None,
            "is_nav_sidebar_enabled": False,  # the linked buyers' table needs the width
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request, "admin/fraud/riskassessment/review_page.html", {**context, **(extra_context or {})}
        )

    def decide_view(self, request: HttpRequest, object_id: str, verdict: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = self._assessment_or_404(request, object_id)
        if verdict not in VERDICTS:
            raise Http404(_("No such decision."))
        if not self.may_decide(request, obj):
            raise PermissionDenied
        back = request.POST.get("next") or ""
        if not url_has_allowed_host_and_scheme(
            back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            back = ""
        back = back or reverse("admin:fraud_riskassessment_change", args=[obj.pk])
        if obj.order_id is None:
            messages.error(request, _("A blocked attempt has no order to approve or reject."))
            return HttpResponseRedirect(back)
        result = review.review_decide(
            assessment_id=obj.pk, merchant_id=obj.merchant_id, approve=VERDICTS[verdict], user=request.user
        )
        report_results(request, [result])
        return HttpResponseRedirect(back)


def report_results(request: HttpRequest, results: list[review.ReviewResult], *, no_order: int = 0) -> None:
    """One message per kind of outcome, with counts (one order: its number and new status)."""
    outcomes = Counter(r.outcome for r in results)
    if len(results) == 1 and not no_order:
        r = results[0]
        status = STATUS_LABELS.get(r.status, r.status)
        texts = {
            "approved": (messages.SUCCESS, _("Order %(no)s approved: it is now %(status)s.")),
            "rejected": (messages.SUCCESS, _("Order %(no)s rejected: it is now %(status)s.")),
            "already_reviewed": (messages.WARNING, _("Order %(no)s was reviewed already; it is %(status)s.")),
            "not_reviewable": (messages.ERROR, _("Order %(no)s cannot be reviewed: it is %(status)s.")),
        }
        level, text = texts[r.outcome]
        messages.add_message(request, level, text % {"no": r.public_id, "status": status})
        return
    if outcomes["approved"]:
        n = outcomes["approved"]
        messages.success(request, ngettext("%(n)d order approved.", "%(n)d orders approved.", n) % {"n": n})
    if outcomes["rejected"]:
        n = outcomes["rejected"]
        messages.success(
            request,
            ngettext(
                "%(n)d order rejected (a paid one is owed a refund).",
                "%(n)d orders rejected (paid ones are owed a refund).",
                n,
            )
            % {"n": n},
        )
    if outcomes["already_reviewed"]:
        n = outcomes["already_reviewed"]
        messages.warning(
            request,
            ngettext(
                "%(n)d order was reviewed already and is left as it was.",
                "%(n)d orders were reviewed already and are left as they were.",
                n,
            )
            % {"n": n},
        )
    stuck = outcomes["not_reviewable"] + no_order
    if stuck:
        messages.error(
            request,
            ngettext(
                "%(n)d could not be reviewed: no order, or an order past review (shipped, cancelled...).",
                "%(n)d could not be reviewed: no order, or orders past review (shipped, cancelled...).",
                stuck,
            )
            % {"n": stuck},
        )


# --- the assessment's page, and its panel on the order page -----------------------------------
def _rule_rows(pairs: Any) -> list[dict[str, Any]]:
    out = []
    for pair in pairs or []:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            continue
        code, value = pair
        spec = rules.CATALOGUE.get(str(code))
        counted = spec is not None and spec.metric not in FLAG_METRICS
        out.append({"label": rule_label(str(code)), "value": value if counted else "", "code": code})
    return out


def waits_for_review(a: RiskAssessment, order: Order | None) -> bool:
    """Whether the assessment is in the review queue (``review.reviewable``'s test, for one row
    already read): flagged, not reviewed, its order held or not paid yet."""
    return (
        order is not None
        and a.decision == Decision.REVIEW
        and not a.review_outcome
        and order.status in (OrderStatus.ON_HOLD, OrderStatus.PENDING_PAYMENT, OrderStatus.PAID)
    )


def review_page_context(request: HttpRequest, a: RiskAssessment, *, may_decide: bool) -> dict[str, Any]:
    """What the assessment's page shows (see the module docstring)."""
    order: Order | None = None
    if a.order_id is not None:
        order = (
            Order.objects.select_related("buyer", "session").prefetch_related("lines__sku__product").get(pk=a.order_id)
        )
    facts = a.facts or {}
    stored = facts.get("rules") or {}
    linked, linked_total = linked_buyers(a)
    rows: list[dict[str, Any]] = [
        {
            "assessment": other.assessment,
            "buyer": (other.assessment.order.buyer.name if other.assessment.order is not None else "")
            or other.assessment.buyer_external_id,
            "shares": [{"kind": k, "label": SHARE_LABELS[k], "strong": k in STRONG} for k in other.shares],
            "strong": any(k in STRONG for k in other.shares),
        }
        for other in linked
    ]
    reviewable = waits_for_review(a, order)
    return {
        "title": _("Risk review of %(no)s") % {"no": a.public_id},
        "a": a,
        "order": order,
        "status_label": order.get_status_display() if order is not None else "",
        "total": yuan(order.total) if order is not None else "",
        "refund_due": yuan(order.refund_due) if order is not None and order.refund_due else "",
        "channel": channel_label(order.channel) if order is not None else "",
        "address": address_block(order) if order is not None else {},
        "lines": (
            [
                {**row, "unit_price": yuan(row["unit_price"]), "line_total": yuan(row["line_total"])}
                for row in line_rows(order)
            ]
            if order is not None
            else []
        ),
        "score": _score(a.score),
        "reasons": _reasons(a),
        "hits": _rule_rows(stored.get("hits")),
        "dry": _rule_rows(stored.get("dry")),
        "rules_unavailable": bool(stored.get("unavailable")),
        "pay_window_seconds": stored.get("pay_window_seconds"),
        "model_flagged": facts.get("model_flagged"),
        "linked": rows,
        "linked_total": linked_total,
        "linked_strong": len({r["assessment"].buyer_external_id for r in rows if r["strong"]}),
        "linked_more": max(0, linked_total - len(rows)),
        "linked_limit": LINKED_LIMIT,
        "keys": [
            (SHARE_LABELS["phone"], a.phone_key),
            (SHARE_LABELS["address"], a.address_key),
            (SHARE_LABELS["drop_point"], a.drop_point),
            (SHARE_LABELS["device"], a.device_id),
            (SHARE_LABELS["ip"], a.ip),
        ],
        "may_decide": may_decide and reviewable,
        "reviewable": reviewable,
        "reviewed_at": _when(a.reviewed_at),
    }


def order_risk_panel(request: HttpRequest, order: Any) -> str:
    """The order page's risk panel: score, decision, reasons, the review (and Approve / Reject when
    the order waits for one and the role may decide), a link to the assessment's page. Empty for a
    role that may not see risk control."""
    if not role_allows(request, roles.RISK, "view", order):
        return ""
    a = RiskAssessment.objects.filter(order_id=order.pk).select_related("reviewed_by").first()
    reviewable = a is not None and waits_for_review(a, order)
    context = {
        "a": a,
        "order": order,
        "score": _score(a.score) if a is not None else "",
        "reasons": _reasons(a) if a is not None else [],
        "may_decide": reviewable and a is not None and role_allows(request, roles.RISK, "change", a),
        "next": reverse("admin:orders_order_change", args=[order.pk]),
    }
    return render_to_string("admin/fraud/order_risk_panel.html", context, request=request)


if order_risk_panel not in hooks.registry.order_page_panels:  # the verdict on the admin's order page
    hooks.registry.order_page_panels.append(order_risk_panel)
