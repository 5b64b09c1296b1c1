"""Admin classes that keep each merchant's staff inside their own merchant.

Every ModelAdmin of a tenant model subclasses :class:`MerchantScopedAdmin`: changelists, change
views by URL, search, autocomplete, bulk actions and foreign-key choices only ever see the
staff member's merchant(s); new objects get that merchant. Superusers see everything.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from .models import Merchant


def user_merchant_ids(request: HttpRequest) -> list[int]:
    cached = getattr(request, "_lc_merchant_ids", None)
    if cached is None:
        user = request.user
        if not getattr(user, "is_authenticated", False):
            cached = []
        else:
            cached = list(
                user.memberships.filter(merchant__is_active=True).values_list("merchant_id", flat=True)  # type: ignore[union-attr]  # an authenticated User here, not AnonymousUser
            )
        request._lc_merchant_ids = cached  # type: ignore[attr-defined]  # a per-request cache kept on the request
    return cached


def is_superuser(request: HttpRequest) -> bool:
    return bool(getattr(request.user, "is_superuser", False))


def scope_queryset(qs: models.QuerySet, request: HttpRequest) -> models.QuerySet:
    """Limit any queryset of a tenant model (or of Merchant) to the user's merchants."""
    if is_superuser(request):
        return qs
    ids = user_merchant_ids(request)
    model = qs.model
    if model is Merchant:
        return qs.filter(pk__in=ids)
    path = getattr(model, "merchant_path", "merchant")
    try:
        model._meta.get_field(path.split("__")[0])
    except Exception:  # noqa: BLE001 - a model with no tenant: nothing is visible to staff
        return qs.none()
    return qs.filter(**{f"{path}__in": ids})


class _ScopedFormfields:
    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]  # a mixin: the ModelAdmin it joins has it
        if field is not None and hasattr(field, "queryset"):
            field.queryset = scope_queryset(field.queryset, request)
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]  # a mixin: the ModelAdmin it joins has it
        if field is not None and hasattr(field, "queryset"):
            field.queryset = scope_queryset(field.queryset, request)
        return field


class MerchantScopedAdmin(_ScopedFormfields, admin.ModelAdmin):
    """Base for every tenant ModelAdmin."""

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return scope_queryset(super().get_queryset(request), request)

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        exclude = list(super().get_exclude(request, obj) or [])
        if self._hides_merchant(request):
            exclude.append("merchant")
        return exclude

    def _hides_merchant(self, request: HttpRequest) -> bool:
        return not is_superuser(request) and len(user_merchant_ids(request)) == 1 and self._has_merchant_field()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_fields(request, obj))
        return [f for f in fields if f != "merchant"] if self._hides_merchant(request) else fields

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = list(super().get_list_filter(request))
        if is_superuser(request) and self._has_merchant_field():
            filters.insert(0, "merchant")
        return filters

    def _has_merchant_field(self) -> bool:
        return any(f.name == "merchant" for f in self.model._meta.get_fields())

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        self.assign_merchant(request, obj)
        super().save_model(request, obj, form, change)

    def assign_merchant(self, request: HttpRequest, obj: Any) -> None:
        if self._has_merchant_field() and getattr(obj, "merchant_id", None) is None:
            ids = user_merchant_ids(request)
            if ids:
                obj.merchant_id = ids[0]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        admin_self = self

        class ScopedForm(form):  # type: ignore[misc, valid-type]  # a form class chosen at run time
            """Give the instance its merchant before model validation runs."""

            def _post_clean(self) -> None:
                admin_self.assign_merchant(request, self.instance)
                super()._post_clean()

        ScopedForm.__name__ = form.__name__
        return ScopedForm

    def save_formset(self, request, form, formset, change):
        instances = formset.save(commit=False)
        for obj in instances:
            if self._has_merchant_field_on(obj) and getattr(obj, "merchant_id", None) is None:
                obj.merchant_id = form.instance.merchant_id
            obj.save()
        for obj in formset.deleted_objects:
            obj.delete()
        formset.save_m2m()

    @staticmethod
    def _has_merchant_field_on(obj: Any) -> bool:
        return any(f.name == "merchant" for f in obj._meta.get_fields())


class MerchantScopedInline(_ScopedFormfields):
    """Mixin for inlines: rows and choices limited to the user's merchants."""

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return scope_queryset(super().get_queryset(request), request)  # type: ignore[misc]  # a mixin: the ModelAdmin it joins has it

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        exclude = list(super().get_exclude(request, obj) or [])  # type: ignore[misc]  # a mixin: the ModelAdmin it joins has it
        if any(f.name == "merchant" for f in self.model._meta.get_fields()):  # type: ignore[attr-defined]  # a mixin: the ModelAdmin it joins has model
            exclude.append("merchant")
        return exclude
