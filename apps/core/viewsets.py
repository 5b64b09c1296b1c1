"""Base for merchant-scoped API resources: reads through selectors, writes through services."""

from __future__ import annotations

from typing import Any

from rest_framework import mixins, viewsets

from apps.merchants.models import Merchant


class MerchantScopedViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """List and retrieve only the token's merchant's objects (another merchant's id is a 404)."""

    selector: Any = None
    lookup_value_regex = r"[0-9]{1,18}"

    @property
    def merchant_id(self) -> int:
        return self.request.auth.merchant_id

    @property
    def merchant(self) -> Merchant:
        cached = getattr(self, "_merchant", None)
        if cached is None:
            cached = self._merchant = Merchant.objects.get(pk=self.merchant_id)
        return cached

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return type(self).selector(merchant_id=self.merchant_id)
