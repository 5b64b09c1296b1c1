"""Admin classes that keep each merchant's staff inside their own merchant, and inside their role.

Every ModelAdmin of a tenant model subclasses :class:`MerchantScopedAdmin`: changelists, change
views by URL, search, autocomplete, bulk actions and foreign-key choices only ever see the
staff member's merchant(s); new objects get that merchant. Superusers see everything.

Roles (:mod:`apps.merchants.roles`): each admin declares its ``role_area``; view / add / change /
delete, the module on the index and every action ask the member's role *in the merchant of the
object* (a login may own merchant A and be an analyst of B). An action declares
``allowed_permissions`` (Django's: ``("cancel",)`` asks ``has_cancel_permission``); one that
declares none needs ``change``; one that acts for another area names its capability there as
``role = (area, verb)``. The action runs only on the selected rows of merchants where the
role allows it. Django's model permissions play no part for merchant staff.
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from . import roles
from .models import Merchant


def user_roles(request: HttpRequest) -> dict[int, str]:
    """The user's role in each of their (active) merchants: ``{merchant_id: role}``."""
    cached = getattr(request, "_lc_merchant_roles", None)
    if cached is None:
        user = request.user
        if not getattr(user, "is_authenticated", False):
            cached = {}
        else:
            cached = dict(
                user.memberships.filter(merchant__is_active=True)  # type: ignore[union-attr]  # an authenticated User here, not AnonymousUser
                .order_by("merchant_id")
                .values_list("merchant_id", "role")
            )
        request._lc_merchant_roles = cached  # type: ignore[attr-defined]  # a per-request cache kept on the request
    return cached


def user_merchant_ids(request: HttpRequest, area: str | None = None, verb: str = "view") -> list[int]:
    """The user's merchants; with ``area``, only those where their role may ``verb`` there."""
    merchant_roles = user_roles(request)
    if area is None:
        return list(merchant_roles)
    return [m for m, role in merchant_roles.items() if roles.can(role, area, verb)]


def merchant_id_of(obj: Any) -> int | None:
    """The merchant an object belongs to, following its model's ``merchant_path``."""
    if isinstance(obj, Merchant):
        return obj.pk
    path = getattr(type(obj), "merchant_path", "merchant").split("__")
    for name in path[:-1]:
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return getattr(obj, f"{path[-1]}_id", None)


def role_allows(request: HttpRequest, area: str | None, verb: str, obj: Any = None) -> bool:
    """May the user ``verb`` in ``area`` — for ``obj``'s merchant, or (no object) in any of theirs?"""
    if is_superuser(request):
        return True
    if obj is None:
        return bool(user_merchant_ids(request, area, verb))
    return roles.can(user_roles(request).get(merchant_id_of(obj) or 0), area, verb)


def is_superuser(request: HttpRequest) -> bool:
    return bool(getattr(request.user, "is_superuser", False))


def role_scope(request: HttpRequest, area: str, verb: str = "view") -> list[int] | None:
    """What a staff page of ``area`` may show for ``verb``: None for a superuser (every merchant),
    else the merchants where the login's role allows it (an empty list: none)."""
    return None if is_superuser(request) else user_merchant_ids(request, area, verb)


_ANY_AREA = object()


def scope_queryset(
    qs: models.QuerySet, request: HttpRequest, area: Any = _ANY_AREA, verbs: tuple[str, ...] = ("view",)
) -> models.QuerySet:
    """Limit any queryset of a tenant model (or of Merchant) to the user's merchants — with
    ``area``, to those where their role may do one of ``verbs`` there (``area=None``: none)."""
    if is_superuser(request):
        return qs
    if area is _ANY_AREA:
        ids = user_merchant_ids(request)
    else:
        ids = sorted({m for verb in verbs for m in user_merchant_ids(request, area, verb)})
    model = qs.model
    if model is Merchant:
        return qs.filter(pk__in=ids)
    path = getattr(model, "merchant_path", "merchant")
    try:
        model._meta.get_field(path.split("__")[0])
    except Exception:  # noqa: BLE001 - a model with no tenant: nothing is visible to staff
        return qs.none()
    return qs.filter(**{f"{path}__in": ids})


def _merchant_filter(model: type[models.Model], ids: list[int]) -> dict[str, Any]:
    path = "pk" if model is Merchant else getattr(model, "merchant_path", "merchant")
    return {f"{path}__in": ids}


class _ScopedFormfields:
    """Foreign-key and many-to-many choices: objects of the merchants where the user may write
    in this admin's area (a new or changed object may only point inside its own merchant)."""

    def _role_area(self) -> str | None:
        return getattr(self, "role_area", None)

    def _scope_choices(self, field: Any, request: HttpRequest) -> Any:
        if field is not None and hasattr(field, "queryset"):
            field.queryset = scope_queryset(field.queryset, request, self._role_area(), ("add", "change"))
        return field

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]  # a mixin: the ModelAdmin it joins has it
        return self._scope_choices(field, request)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]  # a mixin: the ModelAdmin it joins has it
        return self._scope_choices(field, request)


class MerchantScopedAdmin(_ScopedFormfields, admin.ModelAdmin):
    """Base for every tenant ModelAdmin. ``role_area`` names its area in :mod:`apps.merchants.roles`;
    an admin that declares none is for superusers only."""

    role_area: str | None = None

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return scope_queryset(super().get_queryset(request), request, self.role_area)

    # --- what the user's role allows (per merchant of the object) ---------------------------------
    def has_role_permission(self, request: HttpRequest, verb: str, obj: Any = None) -> bool:
        """May the user ``verb`` in this admin's area: on ``obj``'s merchant, or in any of theirs."""
        return role_allows(request, self.role_area, verb, obj)

    def has_module_permission(self, request: HttpRequest) -> bool:
        if is_superuser(request):
            return super().has_module_permission(request)
        return self.has_role_permission(request, "view")

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if is_superuser(request):
            return super().has_view_permission(request, obj)
        return self.has_role_permission(request, "view", obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        if is_superuser(request):
            return super().has_add_permission(request)
        return self.has_role_permission(request, "add")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if is_superuser(request):
            return super().has_change_permission(request, obj)
        return self.has_role_permission(request, "change", obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if is_superuser(request):
            return super().has_delete_permission(request, obj)
        return self.has_role_permission(request, "delete", obj)

    def has_export_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_role_permission(request, "export", obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        """Only the actions the role allows somewhere; each runs on the selected rows of the
        merchants where the role allows it (a forged POST of another action is "no action")."""
        actions: dict[str, Any] = dict(super().get_actions(request))
        if is_superuser(request):
            return actions
        merchant_roles = user_roles(request)
        allowed: dict[str, Any] = {}
        for name, (func, action_name, description) in actions.items():
            # Django's names ("change", "delete", "view") and ours ("cancel", ...) are role verbs;
            # an action that names none is a write: it needs "change". An action that does what
            # another area decides names that capability as ``role = (area, verb)`` (the
            # exception queue's risk review: risk "change").
            area, verbs = self.role_area, tuple(getattr(func, "allowed_permissions", ()) or ("change",))
            if getattr(func, "role", None) is not None:
                area, verb = func.role
                verbs = (verb,)
            ids = [m for m, role in merchant_roles.items() if all(roles.can(role, area, v) for v in verbs)]
            if ids:
                allowed[name] = (self._limited_action(func, ids), action_name, description)
        return allowed

    def _limited_action(self, func: Any, ids: list[int]) -> Any:
        where = _merchant_filter(self.model, ids)

        @functools.wraps(func)
        def limited(modeladmin: Any, request: HttpRequest, queryset: models.QuerySet) -> Any:
            return func(modeladmin, request, queryset.filter(**where))

        return limited

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
        """A new object with no merchant chosen gets the user's first merchant where they may add here."""
        if self._has_merchant_field() and getattr(obj, "merchant_id", None) is None:
            ids = user_merchant_ids(request, self.role_area, "add")
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
    """Mixin for inlines: rows and choices limited to the user's merchants, permissions by role.

    The inline's area is its ``role_area``, else that of its model's admin, else its parent's.
    ``obj`` in the permission methods is the parent object (the same merchant)."""

    role_area: str | None = None

    def _role_area(self) -> str | None:
        if self.role_area:
            return self.role_area
        registry = self.admin_site._registry  # type: ignore[attr-defined]  # a mixin: the InlineModelAdmin it joins has admin_site
        for model in (self.model, self.parent_model):  # type: ignore[attr-defined]  # as above
            area = getattr(registry.get(model), "role_area", None)
            if area:
                return area
        return None

    def _allows(self, request: HttpRequest, verb: str, obj: Any) -> bool:
        return role_allows(request, self._role_area(), verb, obj)

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return scope_queryset(super().get_queryset(request), request, self._role_area())  # type: ignore[misc]  # a mixin: the ModelAdmin it joins has it

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if is_superuser(request):
            return super().has_view_permission(request, obj)  # type: ignore[misc]  # a mixin: the InlineModelAdmin it joins has it
        return self._allows(request, "view", obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if is_superuser(request):
            return super().has_add_permission(request, obj)  # type: ignore[misc]  # a mixin: the InlineModelAdmin it joins has it
        return self._allows(request, "add", obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if is_superuser(request):
            return super().has_change_permission(request, obj)  # type: ignore[misc]  # a mixin: the InlineModelAdmin it joins has it
        return self._allows(request, "change", obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if is_superuser(request):
            return super().has_delete_permission(request, obj)  # type: ignore[misc]  # a mixin: the InlineModelAdmin it joins has it
        return self._allows(request, "delete", obj)

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        exclude = list(super().get_exclude(request, obj) or [])  # type: ignore[misc]  # a mixin: the ModelAdmin it joins has it
        if any(f.name == "merchant" for f in self.model._meta.get_fields()):  # type: ignore[attr-defined]  # a mixin: the ModelAdmin it joins has model
            exclude.append("merchant")
        return exclude
