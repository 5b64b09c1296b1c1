"""Carrier accounts (add, read, change, remove) of the token's merchant. Another merchant's
account is a 404.

Secrets are write-only: no answer carries them (reads say ``has_app_key`` and so on)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.core.files.storage import storages
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import ApplicationError, NotFound
from apps.fulfilment import refunds, selectors, services, shipping
from apps.fulfilment.models import CarrierAccount, RefundRequest, ShipBatch
from apps.merchants import roles
from apps.merchants.viewsets import MerchantScopedViewSet
from apps.orders.models import Order

from .serializers import (
    CarrierAccountInputSerializer,
    CarrierAccountPatchSerializer,
    CarrierAccountSerializer,
    RefundDecisionSerializer,
    RefundInputSerializer,
    RefundSerializer,
    ShipBatchInputSerializer,
    ShipBatchSerializer,
)

# Error responses: apps.core.error_codes.ENDPOINT_ERRORS (the schema hook documents them).

SENDER = {
    "name": "杭州仓",
    "mobile": "13800000001",
    "province": "浙江省",
    "city": "杭州市",
    "district": "余杭区",
    "detail": "文一西路1号",
}
ACCOUNT = {
    "id": 4,
    "carrier": "kuaidi100",
    "name": "中通-杭州仓",
    "app_id": "C4E3F2A1B0D9",
    "has_app_key": True,
    "has_app_secret": True,
    "has_push_salt": True,
    "partner_id": "ZTO-HZ-0001",
    "has_partner_key": True,
    "has_month_code": False,
    "express": "ZTO",
    "sender": SENDER,
    "api_base_url": "",
    "push_url": "https://shop.example.com/hooks/carriers/kuaidi100/Vt3mQ9xK2pL7sN4wR8yB1cF6hJ0dG5aZ",
    "enabled": True,
    "is_default": True,
    "created_at": "2026-06-01T10:00:00.000000+08:00",
    "updated_at": "2026-06-18T20:04:12.118204+08:00",
}
ACCOUNT_INPUT = {
    "carrier": "kuaidi100",
    "name": "中通-杭州仓",
    "app_id": "C4E3F2A1B0D9",
    "app_key": "kuaidi100-authorisation-key",
    "app_secret": "kuaidi100-e-waybill-secret",
    "partner_id": "ZTO-HZ-0001",
    "partner_key": "zto-network-password",
    "express": "ZTO",
    "sender": SENDER,
    "is_default": True,
}
ACCOUNT_EXAMPLES = [
    OpenApiExample(
        "Kuaidi100", summary="A Kuaidi100 account (a push salt is generated)", value=ACCOUNT_INPUT, request_only=True
    ),  # fmt: skip
    OpenApiExample(
        "Kdniao",
        summary="A Kdniao account on the local simulator",
        value={
            "carrier": "kdniao",
            "name": "快递鸟-演示",
            "app_id": "1700001",
            "app_key": "lc-demo-appkey",
            "month_code": "7551234567",
            "express": "SF",
            "sender": SENDER,
            "api_base_url": "http://127.0.0.1:9300",
        },
        request_only=True,
    ),
    OpenApiExample("Added", summary="An account as read", value=ACCOUNT, response_only=True),
]
ACCOUNT_ERRORS = (
    "400 `invalid` (a field, named in `extra.field` or `extra.fields`: a required secret missing for the carrier, "
    "a field the carrier does not use, an unknown express company, a sender part missing or a phone that is not "
    "one, a disabled default), `invalid_url` (api_base_url not http(s))."
)


@extend_schema_view(
    list=extend_schema(
        description="The merchant's carrier accounts (secrets are never shown).",
        examples=[OpenApiExample("Account", value=ACCOUNT, response_only=True)],
    ),
    retrieve=extend_schema(
        description="One carrier account with its tracking push URL.",
        examples=[OpenApiExample("Account", value=ACCOUNT, response_only=True)],
    ),
)
class CarrierAccountViewSet(MerchantScopedViewSet):
    """Accounts with Kuaidi100 and Kdniao that waybills are drawn on and tracking comes from."""

    queryset = CarrierAccount.objects.none()
    role_area = roles.INTEGRATIONS  # carrier secrets: the owner's, reads included
    selector = staticmethod(selectors.account_list)
    serializer_class = CarrierAccountSerializer

    def _read(self, account: CarrierAccount, http_status: int = status.HTTP_200_OK) -> Response:
        return Response(CarrierAccountSerializer(account, context={"request": self.request}).data, status=http_status)

    @extend_schema(
        request=CarrierAccountInputSerializer,
        responses={201: CarrierAccountSerializer},
        examples=ACCOUNT_EXAMPLES,
        description="Add a carrier account. Kuaidi100 needs `app_key` and `app_secret` (a `push_salt` is "
        "generated when none is sent); Kdniao needs `app_key` and takes no `app_secret` or `push_salt`. "
        "`is_default` makes it the merchant's default account. " + ACCOUNT_ERRORS,
    )
    def create(self, request: Request) -> Response:
        s = CarrierAccountInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        account = services.carrier_account_create(merchant=self.merchant, **s.validated_data)
        return self._read(account, status.HTTP_201_CREATED)

    @extend_schema(
        request=CarrierAccountPatchSerializer,
        responses={200: CarrierAccountSerializer},
        examples=[
            OpenApiExample("MakeDefault", value={"is_default": True}, request_only=True),
            OpenApiExample("NewKey", value={"app_key": "a-new-key"}, request_only=True),
            OpenApiExample("Changed", value=ACCOUNT, response_only=True),
        ],
        description="Change the fields sent (a secret left out is kept; the carrier does not change; `sender` "
        "may be sent in part). Disabling the default account leaves the merchant with no default. " + ACCOUNT_ERRORS,
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        account = self.get_object()
        s = CarrierAccountPatchSerializer(data=request.data, partial=True)
        s.is_valid(raise_exception=True)
        return self._read(services.carrier_account_update(account=account, data=dict(s.validated_data)))

    @extend_schema(responses={204: None}, description="Remove a carrier account.")
    def destroy(self, request: Request, pk: str) -> Response:
        services.carrier_account_delete(account=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


BATCH = {
    "id": 12,
    "status": "done",
    "account": 4,
    "selection": {"session": 31, "status": "confirmed"},
    "total": 3,
    "shipped": 2,
    "failed": 1,
    "progress": 1.0,
    "attempts": 1,
    "error": "",
    "created_by": "token:ops",
    "created_at": "2026-06-18T22:10:00.000000+08:00",
    "finished_at": "2026-06-18T22:10:04.512000+08:00",
    "downloads": {
        "labels": "https://shop.example.com/api/v1/shipments/batches/12/labels",
        "picking_xlsx": "https://shop.example.com/api/v1/shipments/batches/12/picking.xlsx",
        "picking_csv": "https://shop.example.com/api/v1/shipments/batches/12/picking.csv",
    },
    "items": [
        {"order": "LC8F3K2M9Q", "result": "shipped", "parcel": "P2606180A1B2C3D4E", "waybill_no": "ZT7700012345",
         "code": "", "message": ""},
        {"order": "LC8F3K2M9R", "result": "shipped", "parcel": "P2606180A1B2C3D4E", "waybill_no": "ZT7700012345",
         "code": "", "message": ""},
        {"order": "LC8F3K2M9S", "result": "failed", "parcel": None, "waybill_no": None, "code": "bad_address",
         "message": "missing: district"},
    ],
}  # fmt: skip

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOWNLOADS = {
    "labels": ("labels_file", "application/pdf", "labels.pdf"),
    "picking.xlsx": ("picking_xlsx", XLSX, "picking.xlsx"),
    "picking.csv": ("picking_csv", "text/csv; charset=utf-8", "picking.csv"),
}


@extend_schema_view(
    list=extend_schema(
        description="The merchant's shipping batches, newest first (without their per-order results).",
    ),
    retrieve=extend_schema(
        description="One batch: its progress, per-order results (order, parcel, waybill, outcome) and the "
        "label and picking-list downloads once it is done.",
        examples=[OpenApiExample("Done", value=BATCH, response_only=True)],
    ),
)
class ShipBatchViewSet(MerchantScopedViewSet):
    """Batch shipping (批量发货): waybills, labels, picking list and `shipped` for many orders at once."""

    queryset = ShipBatch.objects.none()
    role_area = roles.ORDERS
    role_actions = {"download": (roles.ORDERS, "export")}
    selector = staticmethod(selectors.batch_list)
    serializer_class = ShipBatchSerializer

    def _context(self, batches: list[ShipBatch], *, items: bool) -> dict[str, Any]:
        context: dict[str, Any] = {"request": self.request, "open_items": selectors.batch_open_items(batches)}
        if items and batches:
            context["items"] = selectors.batch_items(batches[0])
        return context

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        batches = list(page if page is not None else self.get_queryset())
        data = ShipBatchSerializer(batches, many=True, context=self._context(batches, items=False)).data
        for row in data:
            row.pop("items", None)
        return self.get_paginated_response(data) if page is not None else Response(data)

    def retrieve(self, request: Request, pk: str) -> Response:
        batch = self.get_object()
        return Response(ShipBatchSerializer(batch, context=self._context([batch], items=True)).data)

    @extend_schema(
        request=ShipBatchInputSerializer,
        responses={202: ShipBatchSerializer},
        examples=[
            OpenApiExample("Orders", value={"orders": ["LC8F3K2M9Q", "LC8F3K2M9R"]}, request_only=True),
            OpenApiExample("Show", value={"session": 31, "status": "confirmed"}, request_only=True),
            OpenApiExample(
                "Queued",
                value={
                    **BATCH,
                    "status": "queued",
                    "shipped": 0,
                    "failed": 0,
                    "progress": 0.0,
                    "attempts": 0,
                    "finished_at": None,
                    "downloads": {"labels": None, "picking_xlsx": None, "picking_csv": None},
                    "items": [],
                },
                response_only=True,
            ),  # fmt: skip
        ],
        description='Ship orders in one action: `{orders: [...]}` or `{session: id, status: "confirmed"}`. '
        "Answers 202 with the batch; it runs in the worker (follow it with GET). Orders of one buyer to one "
        "address merge into one parcel; each parcel gets a waybill from the carrier account, each order goes "
        "to `shipped`; then labels (PDF) and a picking list (XLSX, CSV) can be downloaded. An order that "
        "cannot ship fails alone into the exception queue. Each order's `items[].code` says why it did not "
        "ship: `bad_address`, `stock_short` (a line holds no stock), `carrier_rejected`, `not_confirmed` (it "
        "changed meanwhile), or, while the batch waits to retry, the carrier's error code.",
    )
    def create(self, request: Request) -> Response:
        s = ShipBatchInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        data = s.validated_data
        principal = request.auth
        batch = shipping.batch_create(
            merchant_id=self.merchant_id,
            actor=f"token:{getattr(principal, 'name', '') or getattr(principal, 'token_id', '')}",
            orders=data.get("orders"),
            session_id=data.get("session"),
            status=data["status"],
            account_id=data.get("account"),
        )
        batch.refresh_from_db()
        return Response(
            ShipBatchSerializer(batch, context=self._context([batch], items=False)).data,
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(
        operation_id="shipments_batches_download",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
        description="A done batch's file: `labels` (PDF, 76×130 mm thermal labels), `picking.xlsx` or "
        "`picking.csv`. 404 `not_ready` until the batch is done.",
    )
    @action(detail=True, methods=["get"], url_path=r"(?P<file>labels|picking\.xlsx|picking\.csv)")
    def download(self, request: Request, pk: str, file: str) -> FileResponse:
        batch = self.get_object()
        field, content_type, filename = DOWNLOADS[file]
        name = getattr(batch, field)
        if not name:
            raise NotFound("The batch has no such file yet.", code="not_ready")
        response = FileResponse(storages["exports"].open(name, "rb"), content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="batch-{batch.pk}-{filename}"'
        return response


# --- after-sales ---------------------------------------------------------------------------------

REFUND = {
    "id": "RF3C9A0E1B77D24F10",
    "order": "LC8F3K2M9Q",
    "kind": "return",
    "source": "api",
    "status": "awaiting_return",
    "amount": "59.00",
    "reason": "尺码不合适",
    "lines": [{"sku": "TEE-WHITE-L", "quantity": 1}],
    "decision_note": "",
    "provider_refund_id": "",
    "last_error": "",
    "requested_at": "2026-06-20T10:00:00.000000+08:00",
    "decided_at": "2026-06-20T10:05:00.000000+08:00",
    "received_at": None,
    "refunded_at": None,
    "platform": None,
}  # fmt: skip


class RefundFilter(django_filters.FilterSet):
    order = django_filters.CharFilter(field_name="order__public_id", help_text="An order's id.")
    status = django_filters.ChoiceFilter(choices=RefundRequest.Status.choices)
    kind = django_filters.ChoiceFilter(choices=RefundRequest.Kind.choices)

    class Meta:
        model = RefundRequest
        fields = ["order", "status", "kind"]


@extend_schema_view(
    list=extend_schema(
        description="The merchant's refund requests (售后), newest first; filter by order, status, kind."
    ),
    retrieve=extend_schema(
        description="One refund request.", examples=[OpenApiExample("Awaiting goods", value=REFUND, response_only=True)]
    ),
)
class RefundViewSet(MerchantScopedViewSet):
    """After-sales: refund requests, their decisions, returned goods, and the money back."""

    queryset = RefundRequest.objects.none()
    role_area = roles.ORDERS
    role_actions = {action: (roles.ORDERS, "cancel") for action in ("approve", "reject", "receive", "withdraw")}
    selector = staticmethod(refunds.refunds_of)
    serializer_class = RefundSerializer
    filterset_class = RefundFilter
    lookup_field = "public_id"
    lookup_url_kwarg = "id"
    lookup_value_regex = r"[0-9A-Za-z_-]{1,32}"

    def get_object(self) -> RefundRequest:
        return refunds.refund_get(merchant_id=self.merchant_id, public_id=self.kwargs["id"])

    def _actor(self) -> str:
        principal = self.request.auth
        return f"token:{getattr(principal, 'name', '') or getattr(principal, 'token_id', '')}"

    @extend_schema(
        request=RefundInputSerializer,
        responses={201: RefundSerializer, 200: RefundSerializer},
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=False,
                description="Your id for this request (1-100 printable ASCII characters): the same key again answers "
                "200 with the request it made.",
            )
        ],
        examples=[
            OpenApiExample(
                "Return one unit",
                value={
                    "order": "LC8F3K2M9Q",
                    "kind": "return",
                    "lines": [{"sku": "TEE-WHITE-L", "quantity": 1}],
                    "reason": "尺码不合适",
                },
                request_only=True,
            ),  # fmt: skip
            OpenApiExample(
                "Part of the money",
                value={"order": "LC8F3K2M9Q", "kind": "refund", "amount": "10.00", "reason": "价保"},
                request_only=True,
            ),  # fmt: skip
        ],
        description="Ask for money back on an order, for the buyer: `refund` (money alone, any time after payment) "
        "or `return` (goods back, then money; once shipped). A refund of an unshipped order is approved at once "
        "when the merchant's fulfilment settings say so (a whole one takes the order to `refund_pending` and its "
        "units back on sale); everything else waits for `approve`. One request per order at a time. A platform's "
        "order is refunded on its platform (409 `refund_on_platform`).",
    )
    def create(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key")
        if key is not None and not (1 <= len(key) <= 100 and key.isascii() and key.isprintable()):
            raise ApplicationError(
                "Idempotency-Key must be 1-100 printable ASCII characters", code="invalid_idempotency_key"
            )
        s = RefundInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        data = s.validated_data
        order = Order.objects.filter(merchant_id=self.merchant_id, public_id=data["order"]).first()
        if order is None:
            raise NotFound("No order with this id.", extra={"field": "order"})
        refund, created = refunds.refund_request(
            order=order,
            kind=data["kind"],
            source=RefundRequest.Source.API,
            actor=self._actor(),
            amount=data.get("amount"),
            lines=[refunds.LineAsk(sku=line["sku"], quantity=line["quantity"]) for line in data.get("lines", [])],
            reason=data.get("reason", ""),
            idempotency_key=key,
        )
        return Response(self._read(refund), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def _read(self, refund: RefundRequest) -> dict[str, Any]:
        return dict(RefundSerializer(refunds.refund_get(merchant_id=self.merchant_id, public_id=refund.public_id)).data)

    def _step(self, step: Any, **kwargs: Any) -> Response:
        refund = step(refund=self.get_object(), actor=self._actor(), **kwargs)
        return Response(self._read(refund))

    @extend_schema(request=RefundDecisionSerializer, responses={200: RefundSerializer},
                   description="Agree: a return now waits for the goods; a refund alone is owed and sent to the "
                   "payment provider.")  # fmt: skip
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, id: str) -> Response:
        s = RefundDecisionSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        return self._step(refunds.refund_approve, note=s.validated_data["note"])

    @extend_schema(request=RefundDecisionSerializer, responses={200: RefundSerializer},
                   description="Refuse a request (or a return whose goods never came); `note` says why.")  # fmt: skip
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, id: str) -> Response:
        s = RefundDecisionSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        return self._step(refunds.refund_reject, note=s.validated_data["note"])

    @extend_schema(
        request=None,
        responses={200: RefundSerializer},
        description="The returned goods arrived: restocked now, and the money is owed and sent.",
    )
    @action(detail=True, methods=["post"])
    def receive(self, request: Request, id: str) -> Response:
        return self._step(refunds.refund_receive)

    @extend_schema(request=None, responses={200: RefundSerializer},
                   description="The buyer takes the request back (before the money is owed).")  # fmt: skip
    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, id: str) -> Response:
        return self._step(refunds.refund_withdraw)
