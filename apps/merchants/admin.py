from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest

from . import services
from .admin_scoping import MerchantScopedAdmin, is_superuser, user_merchant_ids
from .models import ApiToken, Membership, Merchant


@admin.register(Merchant)
class MerchantAdmin(MerchantScopedAdmin):
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


@admin.register(Membership)
class MembershipAdmin(MerchantScopedAdmin):
    list_display = ["user", "merchant", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username"]

    # Who may use a merchant's admin is decided by superusers (and createmerchant --staff) only.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_superuser(request)

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return is_superuser(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_superuser(request)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return is_superuser(request)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return is_superuser(request)


@admin.register(ApiToken)
class ApiTokenAdmin(MerchantScopedAdmin):
    list_display = ["name", "prefix", "merchant", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    fields = ["merchant", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke_tokens"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> list[str]:
        ro = list(super().get_readonly_fields(request, obj))
        return ro + ["merchant", "name"] if obj else ro

    def save_model(self, request: HttpRequest, obj: ApiToken, form, change: bool) -> None:
        if change:
            return super().save_model(request, obj, form, change)
        self.assign_merchant(request, obj)
        if obj.merchant_id is None or (not is_superuser(request) and obj.merchant_id not in user_merchant_ids(request)):
            messages.error(request, "Pick one of your merchants.")
            return None
        token, raw = services.api_token_create(merchant=obj.merchant, name=obj.name)
        obj.pk = token.pk
        obj.prefix, obj.key_hash, obj.created_at = token.prefix, token.key_hash, token.created_at
        messages.warning(request, f"New token for '{token.name}': {raw} — copy it now, it is not shown again.")
        return None

    @admin.action(description="Revoke selected tokens")
    def revoke_tokens(self, request: HttpRequest, queryset) -> None:
        n = 0
        for token in queryset:
            if token.revoked_at is None:
                services.api_token_revoke(token=token)
                n += 1
        messages.success(request, f"Revoked {n} token(s).")

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return super().has_change_permission(request, obj) and obj is None
