from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.catalog import selectors, services, window
from apps.catalog.models import SKU, Listing, LiveSession, Product
from apps.merchants import roles
from apps.merchants.viewsets import MerchantScopedViewSet

from .serializers import (
    ListingSerializer,
    ListingUpdateSerializer,
    ProductSerializer,
    SessionSerializer,
    SKUSerializer,
    SKUUpdateSerializer,
    StockAdjustSerializer,
)

# Error responses: apps.core.error_codes.ENDPOINT_ERRORS (the schema hook documents them).

LISTING = {
    "id": 42,
    "session": 7,
    "sku": 15,
    "sku_code": "LIP-RED-01",
    "sku_name": "正红色 #999",
    "product_name": "丝绒哑光口红",
    "price": "89.00",
    "quota": 300,
    "sold": 212,
    "available": 88,
    "available_total": 88,
    "per_buyer_limit": 2,
    "payment_window_seconds": 900,
    "opens_at": "2026-06-18T20:00:00+08:00",
    "closes_at": "2026-06-18T20:10:00+08:00",
    "status": "open",
    "version": 5,
    "created_at": "2026-06-18T19:42:10.118204+08:00",
}
LISTING_EXAMPLES = [OpenApiExample("OnAir", summary="A listing on air", value=LISTING, response_only=True)]


@extend_schema_view(
    list=extend_schema(responses={200: ProductSerializer}),
    retrieve=extend_schema(responses={200: ProductSerializer}),
)
class ProductViewSet(MerchantScopedViewSet):
    queryset = Product.objects.none()
    role_area = roles.CATALOG
    selector = staticmethod(selectors.product_list)
    serializer_class = ProductSerializer

    @extend_schema(responses={201: ProductSerializer})
    def create(self, request: Request) -> Response:
        s = ProductSerializer(data=request.data, context={"request": request})
        s.is_valid(raise_exception=True)
        product = services.product_create(merchant=self.merchant, **s.validated_data)
        return Response(ProductSerializer(product).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: ProductSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        product = self.get_object()
        s = ProductSerializer(product, data=request.data, partial=True, context={"request": request})
        s.is_valid(raise_exception=True)
        product = services.product_update(product=product, data=s.validated_data)
        return Response(ProductSerializer(product).data)


class SKUFilter(filters.FilterSet):
    class Meta:
        model = SKU
        fields = ["product", "code"]


@extend_schema_view(
    list=extend_schema(responses={200: SKUSerializer}),
    retrieve=extend_schema(responses={200: SKUSerializer}),
)
class SKUViewSet(MerchantScopedViewSet):
    queryset = SKU.objects.none()
    role_area = roles.CATALOG
    role_actions = {"stock": (roles.STOCK, "change")}
    selector = staticmethod(selectors.sku_list)
    serializer_class = SKUSerializer
    filterset_class = SKUFilter

    @extend_schema(responses={201: SKUSerializer})
    def create(self, request: Request) -> Response:
        s = SKUSerializer(data=request.data, context={"request": request})
        s.is_valid(raise_exception=True)
        d = s.validated_data
        sku = services.sku_create(
            merchant=self.merchant,
            product=d["product"],
            code=d["code"],
            name=d.get("name", ""),
            price=d["price"],
            on_hand=d["stock"]["on_hand"],
            color=d.get("color", ""),
            size=d.get("size", ""),
        )
        body = SKUSerializer(self.get_queryset().get(pk=sku.pk), context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=SKUUpdateSerializer, responses={200: SKUSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        sku = self.get_object()
        s = SKUUpdateSerializer(sku, data=request.data, partial=True, context={"request": request})
        s.is_valid(raise_exception=True)
        data = dict(s.validated_data)
        if "stock" in data:
            data["on_hand"] = data.pop("stock")["on_hand"]
        services.sku_update(sku=sku, data=data)
        return Response(SKUSerializer(self.get_queryset().get(pk=sku.pk), context={"request": request}).data)

    @extend_schema(request=StockAdjustSerializer, responses={200: SKUSerializer})
    @action(detail=True, methods=["post"])
    def stock(self, request: Request, pk: str) -> Response:
        """Receive goods or correct stock: ``{delta, reason}``; the gate follows at once."""
        sku = self.get_object()
        s = StockAdjustSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        services.sku_stock_adjust(sku=sku, **s.validated_data)
        return Response(SKUSerializer(self.get_queryset().get(pk=sku.pk), context={"request": request}).data)


class SessionFilter(filters.FilterSet):
    class Meta:
        model = LiveSession
        fields = ["status"]


@extend_schema_view(
    list=extend_schema(responses={200: SessionSerializer}),
    retrieve=extend_schema(responses={200: SessionSerializer}),
)
class SessionViewSet(MerchantScopedViewSet):
    queryset = LiveSession.objects.none()
    role_area = roles.SHOWS
    selector = staticmethod(selectors.session_list)
    serializer_class = SessionSerializer
    filterset_class = SessionFilter

    @extend_schema(responses={201: SessionSerializer})
    def create(self, request: Request) -> Response:
        s = SessionSerializer(data=request.data, context={"request": request})
        s.is_valid(raise_exception=True)
        d = s.validated_data
        session = services.session_create(
            merchant=self.merchant,
            title=d["title"],
            streamer=d["streamer"],
            platforms=d["platforms"],
            scheduled_at=d.get("scheduled_at"),
        )
        return Response(SessionSerializer(session).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: SessionSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        session = self.get_object()
        s = SessionSerializer(session, data=request.data, partial=True, context={"request": request})
        s.is_valid(raise_exception=True)
        return Response(SessionSerializer(services.session_update(session=session, data=s.validated_data)).data)

    @extend_schema(request=None, responses={200: SessionSerializer})
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str) -> Response:
        return Response(SessionSerializer(services.session_start(session=self.get_object())).data)

    @extend_schema(request=None, responses={200: SessionSerializer})
    @action(detail=True, methods=["post"])
    def end(self, request: Request, pk: str) -> Response:
        return Response(SessionSerializer(services.session_end(session=self.get_object())).data)


def listing_status_q(status: str, now: datetime) -> Q:
    """The rows whose ``Listing.effective_status(now)`` is ``status`` (what the reads show)."""
    return window.status_q(status, now)


class ListingFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Listing.Status.choices, method="filter_status")

    class Meta:
        model = Listing
        fields = ["status", "session", "sku"]

    def filter_status(self, queryset: QuerySet[Listing], name: str, value: str) -> QuerySet[Listing]:
        return queryset.filter(listing_status_q(value, timezone.now()))


@extend_schema_view(
    list=extend_schema(responses={200: ListingSerializer}, examples=LISTING_EXAMPLES),
    retrieve=extend_schema(responses={200: ListingSerializer}, examples=LISTING_EXAMPLES),
)
class ListingViewSet(MerchantScopedViewSet):
    queryset = Listing.objects.none()
    role_area = roles.SHOWS
    selector = staticmethod(selectors.listing_list)
    serializer_class = ListingSerializer
    filterset_class = ListingFilter

    @extend_schema(responses={201: ListingSerializer})
    def create(self, request: Request) -> Response:
        s = ListingSerializer(data=request.data, context={"request": request})
        s.is_valid(raise_exception=True)
        listing = services.listing_create(merchant=self.merchant, **s.validated_data)
        return Response(ListingSerializer(listing).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ListingUpdateSerializer, responses={200: ListingSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        listing = self.get_object()
        s = ListingUpdateSerializer(listing, data=request.data, partial=True, context={"request": request})
        s.is_valid(raise_exception=True)
        return Response(ListingSerializer(services.listing_update(listing=listing, data=s.validated_data)).data)

    @extend_schema(request=None, responses={200: ListingSerializer})
    @action(detail=True, methods=["post"])
    def open(self, request: Request, pk: str) -> Response:
        return Response(ListingSerializer(services.listing_open(listing=self.get_object())).data)

    @extend_schema(request=None, responses={200: ListingSerializer})
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str) -> Response:
        return Response(ListingSerializer(services.listing_close(listing=self.get_object())).data)
