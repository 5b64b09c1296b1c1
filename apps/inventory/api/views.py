from __future__ import annotations

from typing import cast

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import ErrorSerializer, JSONParser, error_responses
from apps.inventory.sync import stock_sync
from apps.merchants import roles
from apps.merchants.authentication import TokenPrincipal

from .serializers import StockSyncRequestSerializer, StockSyncResponseSerializer

REPLAY_HEADER = "Idempotent-Replayed"

_REQUEST_EXAMPLE = {
    "sync_id": "erp-2026-12-01T10:00:00Z-0042",
    "reason": "WMS stocktake, warehouse HZ-1",
    "items": [
        {"sku": "TEA-LJ-250G", "on_hand": 480},
        {"sku": "TEA-LJ-500G", "on_hand": 3},
        {"sku": "CUP-GLASS-01", "delta": -12},
        {"sku": "GIFT-BOX-XL", "on_hand": 50},
    ],
}


def _result(sku: str, status: str, on_hand: int | None, reserved: int | None, before: int | None, **rest: object):
    available = None if on_hand is None or reserved is None else on_hand - reserved
    requested = rest.pop("requested", on_hand)
    return {
        "sku": sku,
        "status": status,
        "on_hand": on_hand,
        "reserved": reserved,
        "available": available,
        "previous_on_hand": before,
        "requested_on_hand": requested,
        "code": rest.get("code"),
        "message": rest.get("message"),
    }


_RESPONSE_EXAMPLE = {
    "sync_id": "erp-2026-12-01T10:00:00Z-0042",
    "created_at": "2026-12-01T10:00:01.204118+00:00",
    "summary": {"applied": 2, "unchanged": 0, "conflict": 1, "error": 1},
    "results": [
        _result("TEA-LJ-250G", "applied", 480, 37, 400),
        _result(
            "TEA-LJ-500G",
            "conflict",
            20,
            8,
            20,
            requested=3,
            code="insufficient_stock",
            message="on hand cannot go below the 8 units live orders hold",
        ),
        _result("CUP-GLASS-01", "applied", 188, 0, 200),
        _result(
            "GIFT-BOX-XL",
            "error",
            None,
            None,
            None,
            requested=None,
            code="unknown_sku",
            message="no SKU with this code",
        ),
    ],
}


class StockSyncApi(APIView):
    """Stock from the merchant's ERP/WMS: many SKUs by code, absolute counts or deltas, once per
    ``sync_id``. A malformed body is a 400 that changes nothing; otherwise each SKU is applied, left
    unchanged, refused as a conflict (below what live orders hold: never clamped) or refused as an
    error (unknown code, out of range), and the answer is 200 with one result per item. The gate and
    the listings' subscribers follow at once; platform pushes follow every changed SKU."""

    parser_classes = [JSONParser]
    role_area = roles.STOCK  # a POST: "add" in stock (owner, operator)

    @extend_schema(
        operation_id="stock_sync",
        tags=["stock"],
        request=StockSyncRequestSerializer,
        responses={
            200: OpenApiResponse(
                StockSyncResponseSerializer,
                description="One result per item, in order. A replay (same sync_id and body) answers the "
                f"stored response with the header `{REPLAY_HEADER}: true` and changes nothing.",
            ),
            **error_responses(400, 401, 422),
            503: OpenApiResponse(ErrorSerializer, description="Database busy: nothing changed; retry the same body"),
        },
        examples=[
            OpenApiExample("A stocktake from the WMS", value=_REQUEST_EXAMPLE, request_only=True),
            OpenApiExample("Per-SKU results", value=_RESPONSE_EXAMPLE, response_only=True, status_codes=["200"]),
            OpenApiExample(
                "A bad item",
                value={
                    "code": "invalid",
                    "message": "items: 2: Give exactly one of on_hand and delta.",
                    "extra": {
                        "fields": {"items": {"2": {"non_field_errors": ["Give exactly one of on_hand and delta."]}}}
                    },
                },
                response_only=True,
                status_codes=["400"],
            ),
            OpenApiExample(
                "sync_id reused with another body",
                value={
                    "code": "idempotency_key_reused",
                    "message": "this sync_id was used with a different request body",
                    "extra": {"sync_id": "erp-2026-12-01T10:00:00Z-0042"},
                },
                response_only=True,
                status_codes=["422"],
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        s = StockSyncRequestSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        principal = cast(TokenPrincipal, request.auth)  # MerchantTokenAuthentication sets it
        outcome = stock_sync(merchant_id=principal.merchant_id, request=s.to_request())
        response = Response(outcome.response)
        if outcome.replayed:
            response[REPLAY_HEADER] = "true"
        return response
