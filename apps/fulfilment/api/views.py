"""Carrier accounts (add, read, change, remove) of the token's merchant. Another merchant's
account is a 404.

Secrets are write-only: no answer carries them (reads say ``has_app_key`` and so on)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from apps.fulfilment import selectors, services
from apps.fulfilment.models import CarrierAccount
from apps.merchants import roles
from apps.merchants.viewsets import MerchantScopedViewSet

from .serializers import CarrierAccountInputSerializer, CarrierAccountPatchSerializer, CarrierAccountSerializer

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
