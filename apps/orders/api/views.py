from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, UnsupportedMediaType
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.arrival import received_at
from apps.core.errors import ApplicationError
from apps.core.phone import normalize_phone
from apps.merchants import roles
from apps.merchants.authentication import TokenPrincipal
from apps.merchants.viewsets import BoundedDateTimeField, DateTimeFilter, MerchantScopedViewSet
from apps.orders import selectors
from apps.orders.models import Order, OrderStatus
from apps.orders.placement.handler import order_create_response
from apps.orders.placement.request import MAX_BODY, order_input_schema, parse_order_body, payload_too_large
from apps.orders.services import payments
from apps.orders.services.transitions import order_cancel

from . import examples
from .serializers import (
    OrderCancelSerializer,
    OrderSerializer,
    PaymentNotifySerializer,
    PaymentResultSerializer,
)

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Your id for this order attempt (1-100 printable ASCII characters). Retrying with the same key and "
        "body answers 200 with the same order; another body is a 422 `idempotency_key_reused`. Send one "
        "on every order: after a timeout or a 503, the retry learns the outcome instead of buying twice."
    ),
    examples=[OpenApiExample("Key", summary="One key per buyer and attempt", value=examples.IDEMPOTENCY_KEY)],
)


def _principal(request: Request) -> TokenPrincipal:
    return cast(TokenPrincipal, request.auth)  # MerchantTokenAuthentication sets it


CHANNELS = [(c, c) for c in ("storefront", "api", "douyin", "kuaishou", "taobao")]


class ChangesPagination(CursorPagination):
    """Ordered by the time of the last change, then id: a cursor stays valid while orders keep
    changing, and an order that changes again moves after it (it is seen again, never skipped)."""

    ordering = ("updated_at", "id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except NotFound:  # DRF answers a cursor it cannot read with 404; it is bad input
            raise ApplicationError(
                "cursor: not a cursor this endpoint gave out",
                code="invalid_cursor",
                extra={"fields": {"cursor": "Invalid."}},
            ) from None


class OrderFilter(filters.FilterSet):
    """Order lookup as a tool needs it: by status, show, listing, channel, buyer (id or phone,
    written any way), creation and update time, a free search, and an ordering."""

    status = filters.ChoiceFilter(choices=OrderStatus.choices)
    channel = filters.ChoiceFilter(choices=CHANNELS)
    buyer = filters.CharFilter(field_name="buyer__external_id", max_length=100, help_text="The buyer's external id.")
    buyer_phone = filters.CharFilter(
        method="filter_phone", max_length=64, help_text="The buyer's or the recipient's phone, written any way."
    )
    created_after = DateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = DateTimeFilter(field_name="created_at", lookup_expr="lt")
    updated_after = DateTimeFilter(field_name="updated_at", lookup_expr="gte")
    updated_before = DateTimeFilter(field_name="updated_at", lookup_expr="lt")
    search = filters.CharFilter(
        method="filter_search", max_length=100, help_text="Order id, buyer id, buyer name or phone."
    )
    ordering = filters.OrderingFilter(
        fields=(("created_at", "created_at"), ("updated_at", "updated_at"), ("total", "total"), ("id", "id"))
    )

    class Meta:
        model = Order
        fields = ["status", "session", "listing"]

    def filter_phone(self, queryset: QuerySet[Order], name: str, value: str) -> QuerySet[Order]:
        phone = normalize_phone(value)
        return queryset.filter(Q(buyer__phone=phone) | Q(shipping_address__phone=phone))

    def filter_search(self, queryset: QuerySet[Order], name: str, value: str) -> QuerySet[Order]:
        text = value.strip()
        if not text:
            return queryset
        phone = normalize_phone(text)
        return queryset.filter(
            Q(public_id=text)
            | Q(buyer__external_id=text)
            | Q(buyer__name__icontains=text)
            | Q(buyer__phone=phone)
            | Q(shipping_address__phone=phone)
        )


# Error responses: apps.core.error_codes.ENDPOINT_ERRORS (the schema hook documents them).
@extend_schema_view(
    list=extend_schema(responses={200: OrderSerializer}, examples=examples.ORDER_EXAMPLES),
    retrieve=extend_schema(responses={200: OrderSerializer}, examples=examples.ORDER_EXAMPLES),
)
class OrderViewSet(MerchantScopedViewSet):
    queryset = Order.objects.none()
    role_area = roles.ORDERS
    role_actions = {"cancel": (roles.ORDERS, "cancel")}
    selector = staticmethod(selectors.order_list)
    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    lookup_field = "public_id"
    lookup_url_kwarg = "id"
    lookup_value_regex = r"[0-9A-Za-z_-]{1,32}"

    def initialize_request(self, request: Any, *args: Any, **kwargs: Any) -> Request:
        # DRF asks for the parsers before it sets ``self.action``
        self._creating = getattr(self, "action_map", {}).get(request.method.lower()) == "create"
        return super().initialize_request(request, *args, **kwargs)

    def get_parsers(self) -> list[BaseParser]:
        if getattr(self, "_creating", False):
            return [OrderBodyParser()]
        return super().get_parsers()

    @extend_schema(
        request={"application/json": order_input_schema()},
        parameters=[IDEMPOTENCY_HEADER],
        responses={200: OrderSerializer, 201: OrderSerializer},
        examples=examples.ORDER_CREATE_EXAMPLES,
    )
    def create(self, request: Request) -> Response:
        """Place a flash-sale order (409 ``sold_out`` / ``over_buyer_limit`` / ``listing_closed``)."""
        try:
            data = request.data
        except RequestDataTooBig:  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE, if something read .body first
            raise payload_too_large() from None
        if isinstance(data, OrderBody):
            value = data.value
        else:  # DRF calls no parser for an empty body
            if request.content_type.split(";")[0].strip().lower() != "application/json":
                raise UnsupportedMediaType(request.content_type)
            value = parse_order_body(b"")
        code, body = order_create_response(
            merchant_id=self.merchant_id,
            token_id=_principal(request).token_id,
            data=value,
            idempotency_key=request.headers.get("Idempotency-Key"),
            base_url=settings.PUBLIC_BASE_URL or request.build_absolute_uri("/"),
            received_at=received_at(request),
        )
        return Response(body, status=code)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "updated_since",
                OpenApiTypes.DATETIME,
                description="Orders changed at or after this time (ISO 8601); the first call of a sync.",
            ),
            OpenApiParameter(
                "cursor", OpenApiTypes.STR, description="The `next` link's cursor: where the last page ended."
            ),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="Up to 500 (default 100)."),
        ],
        responses={
            200: inline_serializer(
                name="OrderChanges",
                fields={
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": OrderSerializer(many=True),
                },
            ),
        },
        examples=[
            OpenApiExample(
                "Changes",
                summary="A page of changes: follow `next` until it is null",
                value={"next": examples.CHANGES_NEXT, "previous": None, "results": [examples.PAID_ORDER]},
                response_only=True,
            )
        ],
        filters=False,
    )
    @action(detail=False, methods=["get"], pagination_class=ChangesPagination, filter_backends=[])
    def changes(self, request: Request) -> Response:
        """Incremental sync for ERPs and tools: every order changed since a time, oldest change
        first, page by page with a cursor (``next``, stable while orders keep changing: an order
        that changes again moves behind it, so none is skipped). When ``next`` is null the sync is
        done: start the next one with ``updated_since`` = the last order's ``updated_at``
        (inclusive: an order seen again is the same change, compare its ``version``)."""
        allowed = {"updated_since", "cursor", "page_size"}
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            raise ApplicationError(
                f"unknown query parameter {unknown[0]!r}",
                code="unknown_parameter",
                extra={"fields": {u: "Unknown parameter." for u in unknown}, "allowed": sorted(allowed)},
            )
        queryset = self.get_queryset()
        since = request.query_params.get("updated_since")
        if since is not None:
            field = BoundedDateTimeField()
            try:
                queryset = queryset.filter(updated_at__gte=field.clean(since))
            except DjangoValidationError as exc:
                raise ApplicationError(
                    "updated_since: " + "; ".join(exc.messages),
                    code="invalid",
                    extra={"fields": {"updated_since": exc.messages}},
                ) from None
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(OrderSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(
        request=OrderCancelSerializer,
        responses={200: OrderSerializer},
        examples=[
            OpenApiExample(
                "BuyerAsked",
                summary="The buyer asked on the live chat",
                value={"reason": "买家直播间申请取消"},
                request_only=True,
            ),
            OpenApiExample(
                "Cancelled",
                summary="Cancelled before payment",
                value={**examples.ORDER, "status": "cancelled", "cancel_reason": "买家直播间申请取消", "version": 2},
                response_only=True,
            ),
        ],
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, id: str) -> Response:
        order = self.get_object()
        s = OrderCancelSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        order_cancel(order=order, actor=f"token:{_principal(request).token_id}", reason=s.validated_data["reason"])
        fresh = selectors.order_for_merchant(merchant_id=self.merchant_id, public_id=order.public_id)
        return Response(OrderSerializer(fresh, context={"request": request}).data)


@dataclass(frozen=True)
class OrderBody:
    value: Any


class OrderBodyParser(BaseParser):
    """The order body read exactly as the ASGI fast path reads it (``parse_order_body``: 413
    ``payload_too_large`` over 64 KiB, 400 ``malformed_request`` for bad JSON), so the two entry
    points answer every body alike. Reads at most one byte past the limit."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            raw = stream.read(MAX_BODY + 1) if stream is not None else b""
        except RequestDataTooBig:
            raise payload_too_large() from None
        return OrderBody(parse_order_body(raw))


class RawBodyParser(BaseParser):
    """Keep the exact bytes: the signature covers the raw body."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read() if stream is not None else b""


PAYMENT_NOTIFY_DESCRIPTION = """The payment provider tells us an order was paid (an inbound webhook, no token).

**What it carries**: the order's public id (`order`, the `id` the order API answered), the
provider's `transaction_id`, the `amount` paid as a decimal string and `paid_at` (ISO 8601).

**Signature**: `X-Timestamp` is the unix time in seconds; `X-Signature` is the lowercase hex
HMAC-SHA256 of `"{X-Timestamp}.{raw body}"` keyed with `PAYMENT_WEBHOOK_SECRET`. It is verified
over the exact bytes received (sign exactly what you send), compared in constant time, and the
timestamp must be within 5 minutes of our clock: otherwise 401 `signature_invalid` /
`timestamp_stale` and nothing is recorded.

**Idempotency and retries**: payments are unique on `transaction_id`. A redelivered notification
gets the same outcome as the first delivery, with no second effect, so the provider can retry safely
until it gets a 2xx. A 4xx is an answer, not a fault: the same bytes get it again. A 503
`temporarily_unavailable` recorded nothing: retry after `Retry-After`.

**Outcomes**: a notification that verifies is always recorded with its raw body, whatever the
order's state: it pays an unpaid order (`outcome: applied`); for a
cancelled order, or one already paid by another transaction, it becomes a refund owed (`late`,
`duplicate_order`, answered 200); an amount that differs from the total is recorded, owed back and
answered 422 `amount_mismatch`. The same `transaction_id` for another order is a 409."""


class PaymentNotifyApi(APIView):
    """Inbound payment webhook (``PAYMENT_NOTIFY_DESCRIPTION``)."""

    authentication_classes: list = []
    permission_classes: list = []
    parser_classes = [RawBodyParser]

    @extend_schema(
        summary="Payment notification (inbound webhook from the payment provider)",
        description=PAYMENT_NOTIFY_DESCRIPTION,
        request={"application/json": PaymentNotifySerializer},
        parameters=[
            OpenApiParameter(
                "X-Timestamp",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="Unix time in seconds when the provider signed; within 5 minutes of now.",
                examples=[OpenApiExample("Timestamp", summary="Signing time", value=examples.PAYMENT_TIMESTAMP)],
            ),
            OpenApiParameter(
                "X-Signature",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description='Lowercase hex HMAC-SHA256 of "{X-Timestamp}.{raw body}" with `PAYMENT_WEBHOOK_SECRET`.',
                examples=[OpenApiExample("Signature", summary="64 hex digits", value=examples.PAYMENT_SIGNATURE)],
            ),
        ],
        responses={200: PaymentResultSerializer},
        examples=examples.PAYMENT_EXAMPLES,
        auth=[],
    )
    def post(self, request: Request) -> Response:
        body = request.data if isinstance(request.data, bytes) else json.dumps(request.data).encode()
        if len(body) > MAX_BODY:
            raise payload_too_large()
        payment = payments.payment_receive(
            body=body, timestamp=request.headers.get("X-Timestamp"), signature=request.headers.get("X-Signature")
        )
        return Response(
            {
                "transaction_id": payment.transaction_id,
                "order": payment.order.public_id,
                "outcome": payment.outcome,
                "order_status": payment.order.status,
            }
        )
