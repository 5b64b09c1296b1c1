"""Base for merchant-scoped API resources: reads through selectors, writes through services."""

from __future__ import annotations

import functools
from typing import Any, cast

from django import forms
from django.db.models import QuerySet
from django_filters import filters
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import mixins, viewsets

from apps.core.api import JSONParser
from apps.core.datetimes import RANGE_MESSAGE, in_range
from apps.core.errors import ApplicationError
from apps.merchants.authentication import TokenPrincipal
from apps.merchants.models import Merchant

_ID_MIN, _ID_MAX = -(2**63), 2**63 - 1


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(filters.NumberFilter):
    """Filter on a related object's id. An unknown id, or another merchant's, matches nothing.

    django-filter's default for a foreign key validates the id against *every* row of the related
    table, which answers 400 for a missing id and 200 for another merchant's: an existence oracle.
    """

    field_class = forms.IntegerField

    def filter(self, qs: QuerySet, value: Any) -> QuerySet:
        if value is not None and not _ID_MIN <= value <= _ID_MAX:
            return qs.none()  # the database cannot hold such an id (and SQLite would overflow)
        return super().filter(qs, value)


@functools.cache
def _with_id_filters(filterset_class: type) -> type:
    swaps = {
        name: IdFilter(field_name=f.field_name, lookup_expr=f.lookup_expr, label=f.label)
        for name, f in getattr(filterset_class, "base_filters", {}).items()
        if isinstance(f, filters.ModelChoiceFilter)
    }
    return type(filterset_class.__name__, (filterset_class,), swaps) if swaps else filterset_class


PAGING_PARAMETERS = frozenset({"page", "page_size", "cursor"})


class BoundedDateTimeField(forms.DateTimeField):
    """A date-time filter value in the range the system takes in (``apps.core.datetimes``)."""

    def to_python(self, value: Any) -> Any:
        parsed = super().to_python(value)
        if parsed is not None and not in_range(parsed):
            raise forms.ValidationError(RANGE_MESSAGE, code="out_of_range")
        return parsed


@extend_schema_field(OpenApiTypes.DATETIME)
class DateTimeFilter(filters.IsoDateTimeFilter):
    field_class = BoundedDateTimeField


class MerchantFilterBackend(DjangoFilterBackend):
    """django-filter, with foreign-key filters by id (see :class:`IdFilter`). A list refuses a
    query parameter it does not know (400 ``unknown_parameter``) instead of ignoring it: a tool
    that misspells a filter must not get every row back as if it had filtered."""

    def get_filterset_class(self, view: Any, queryset: Any = None) -> Any:
        filterset_class = super().get_filterset_class(view, queryset)
        return _with_id_filters(filterset_class) if filterset_class is not None else None

    def filter_queryset(self, request: Any, queryset: Any, view: Any) -> Any:
        if getattr(view, "action", None) == "list":
            filterset_class = self.get_filterset_class(view, queryset)
            known = set(getattr(filterset_class, "base_filters", {})) | PAGING_PARAMETERS
            unknown = sorted(set(request.query_params) - known)
            if unknown:
                raise ApplicationError(
                    f"unknown query parameter {unknown[0]!r}",
                    code="unknown_parameter",
                    extra={"fields": {u: "Unknown parameter." for u in unknown}, "allowed": sorted(known)},
                )
        return super().filter_queryset(request, queryset, view)


class MerchantScopedViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """List and retrieve only the token's merchant's objects (another merchant's id is a 404).

    ``role_area`` (and ``role_actions`` for extra actions) say what a token's role needs here
    (``apps.merchants.authentication.required_capability``); a subclass must declare it."""

    selector: Any = None
    role_area: str | None = None
    role_actions: dict[str, tuple[str, str]] = {}
    lookup_value_regex = r"[0-9]{1,18}"
    filter_backends = [MerchantFilterBackend]
    parser_classes = [JSONParser]

    @property
    def merchant_id(self) -> int:
        principal = cast(TokenPrincipal, self.request.auth)  # set by MerchantTokenAuthentication
        return principal.merchant_id

    @property
    def merchant(self) -> Merchant:
        cached = getattr(self, "_merchant", None)
        if cached is None:
            cached = self._merchant = Merchant.objects.get(pk=self.merchant_id)
        return cached

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return super().get_queryset()  # the schema generator: the empty queryset the class declares
        selector: Any = type(self).selector  # a staticmethod of the subclass
        return selector(merchant_id=self.merchant_id)
