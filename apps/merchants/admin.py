from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from apps.core.errors import ApplicationError

from . import roles, services
from .admin_scoping import MerchantScopedAdmin, is_superuser, user_merchant_ids
from .models import ApiToken, Membership, Merchant


@admin.register(Merchant)
class MerchantAdmin(MerchantScopedAdmin):
    role_area = roles.MERCHANT
    list_display = ["name", "slug", "is_active", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ("name",)}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_superuser(request)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return is_superuser(request)

    def get_readonly_fields(self, request: HttpRequest, obj: Merchant | None = None) -> list[str]:
        # The slug is in storefront links and activation is the operator's call.
        readonly = list(super().get_readonly_fields(request, obj))
        return readonly if is_superuser(request) else [*readonly, "slug", "is_active"]

    def get_prepopulated_fields(self, request: HttpRequest, obj: Merchant | None = None) -> dict:
        return super().get_prepopulated_fields(request, obj) if is_superuser(request) else {}

    def save_model(self, request: HttpRequest, obj: Merchant, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data:
            services.api_tokens_forget(merchant=obj)  # a deactivated merchant's tokens stop at once


class MemberAddForm(forms.ModelForm):
    """An owner adds a staff member: a new login with a role in the merchant."""

    username = forms.CharField(label=_("username"), max_length=150)
    password = forms.CharField(label=_("password"), widget=forms.PasswordInput, strip=False)

    class Meta:
        model = Membership
        fields = ["merchant", "role"]

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        if get_user_model().objects.filter(username=username).exists():
            raise ValidationError(_("This username is taken; pick another."), code="username_taken")
        return username

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        password_validation.validate_password(password, get_user_model()(username=self.data.get("username", "")))
        return password


class MemberRoleForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["role"]

    def clean_role(self) -> str:
        role = self.cleaned_data["role"]
        try:
            services.ensure_not_last_owner(membership=self.instance, new_role=role)
        except ApplicationError as exc:
            raise ValidationError(exc.message, code=exc.code) from exc
        return role


@admin.register(Membership)
class MembershipAdmin(MerchantScopedAdmin):
    """Who may use a merchant's back office, with which role. An owner manages their merchant's
    staff (adds new logins, changes roles, removes members) but not their own membership, and a
    merchant always keeps an owner. Superusers may also attach an existing login."""

    role_area = roles.MEMBERS
    list_display = ["user", "merchant", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username"]
    list_select_related = ["user", "merchant"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            kwargs["form"] = MemberRoleForm
        elif not is_superuser(request):
            kwargs["form"] = MemberAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Membership | None = None) -> Any:
        if obj is not None:
            return ["user", "merchant", "role", "created_at"]
        if is_superuser(request):
            return ["user", "merchant", "role"]
        return [
            f
            for f in ["merchant", "username", "password", "role"]
            if f != "merchant" or not self._hides_merchant(request)
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None) -> list[str]:
        return ["user", "merchant", "created_at"] if obj is not None else []

    def _own(self, request: HttpRequest, obj: Any) -> bool:
        return obj is not None and obj.user_id == request.user.pk

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and (is_superuser(request) or not self._own(request, obj))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not super().has_delete_permission(request, obj):
            return False
        if obj is None:
            return True
        if not is_superuser(request) and self._own(request, obj):
            return False
        try:
            services.ensure_not_last_owner(membership=obj, new_role=None)
        except ApplicationError:
            return False
        return True

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        if change:
            services.member_role_set(membership=obj, role=form.cleaned_data["role"])
            return
        if is_superuser(request):
            super().save_model(request, obj, form, change)
            return
        self.assign_merchant(request, obj)
        d = form.cleaned_data
        created = services.member_add(
            merchant=obj.merchant, username=d["username"], password=d["password"], role=d["role"]
        )
        obj.pk, obj.user_id, obj.created_at = created.pk, created.user_id, created.created_at

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        services.member_remove(membership=obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for membership in queryset:
            try:
                services.member_remove(membership=membership)
            except ApplicationError as exc:
                messages.error(request, f"{membership}: {exc.message}")


@admin.register(ApiToken)
class ApiTokenAdmin(MerchantScopedAdmin):
    role_area = roles.TOKENS
    list_display = ["name", "role", "prefix", "merchant", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["role", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    fields = ["merchant", "name", "role", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke_tokens"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> list[str]:
        ro = list(super().get_readonly_fields(request, obj))
        return ro + ["merchant", "name", "role"] if obj else ro  # a new role is a new token

    def save_model(self, request: HttpRequest, obj: ApiToken, form, change: bool) -> None:
        if change:
            return super().save_model(request, obj, form, change)
        self.assign_merchant(request, obj)
        allowed = user_merchant_ids(request, roles.TOKENS, "add")
        if obj.merchant_id is None or (not is_superuser(request) and obj.merchant_id not in allowed):
            messages.error(request, _("Pick one of your merchants."))
            return None
        token, raw = services.api_token_create(merchant=obj.merchant, name=obj.name, role=obj.role)
        obj.pk = token.pk
        obj.prefix, obj.key_hash, obj.created_at = token.prefix, token.key_hash, token.created_at
        messages.warning(
            request,
            _("New token for '%(name)s': %(token)s — copy it now, it is not shown again.")
            % {"name": token.name, "token": raw},
        )
        return None

    @admin.action(description=_("Revoke selected tokens"), permissions=["change"])
    def revoke_tokens(self, request: HttpRequest, queryset) -> None:
        n = 0
        for token in queryset:
            if token.revoked_at is None:
                services.api_token_revoke(token=token)
                n += 1
        messages.success(request, _("Revoked %(n)d token(s).") % {"n": n})

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return super().has_change_permission(request, obj) and obj is None
