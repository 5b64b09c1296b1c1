"""Carrier accounts (add, read, change, remove) of the token's merchant. Another merchant's
account is a 404.

Secrets are write-only: no answer carries them (reads say ``has_app_key`` and so on)."""

from __future__ import annotations

from typing import Any

from django.core.files.storage import storages
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import NotFound
from apps.fulfilment import selectors, services, shipping
from apps.fulfilment.models import CarrierAccount, ShipBatch
from apps.merchants import roles
from apps.merchants.viewsets import MerchantScopedViewSet

from .serializers import (
    CarrierAccountInputSerializer,
    CarrierAccountPatchSerializer,
    CarrierAccountSerializer,
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
