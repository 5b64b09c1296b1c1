from __future__ import annotations

from datetime import datetime, time
from typing import Any, cast
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.catalog.models import SKU, LiveSession
from apps.core.api import ErrorSerializer, error_responses
from apps.core.errors import ApplicationError, NotFound
from apps.merchants import roles
from apps.merchants.authentication import TokenPrincipal
from apps.merchants.viewsets import MerchantScopedViewSet

from ..forecast import forecast, plan_of
from ..models import SessionReport
from ..rollups import mark_dirty
from ..slots import slot_analysis
from ..suggestions import suggestions
from .serializers import (
    ReportForecastQuerySerializer,
    ReportForecastSerializer,
    ReportSlotAnalysisSerializer,
    ReportSlotQuerySerializer,
    ReportSuggestionsQuerySerializer,
    ReportSuggestionsSerializer,
    SessionReportSerializer,
    SessionReportSummarySerializer,
)


def reports_of(*, merchant_id: int) -> QuerySet[SessionReport]:
    return SessionReport.objects.filter(merchant_id=merchant_id).select_related("session").order_by("-starts_at")


@extend_schema_view(
    list=extend_schema(
        operation_id="reports_sessions_list",
        tags=["reports"],
        description="Each show's headline figures (from the rollups), newest first.",
        responses={200: SessionReportSummarySerializer(many=True)},
    ),
    retrieve=extend_schema(
        operation_id="reports_sessions_retrieve",
        tags=["reports"],
        description="A show's post-show report: every figure of the report page, from the rollup (recomputed "
        "after its orders change, each minute while it is live; `computed_at` says when). Money is exact.",
        responses={
            200: SessionReportSerializer,
            404: OpenApiResponse(
                ErrorSerializer,
                description="No such show (`not_found`), or its report is not computed yet (`report_not_ready`: "
                "asked for now; try again in a minute).",
            ),
        },
    ),
)
class SessionReportViewSet(MerchantScopedViewSet):
    """Post-show reports for streamer tools and BI."""

    queryset = SessionReport.objects.none()
    role_area = roles.REPORTS
    selector = staticmethod(reports_of)
    lookup_field = "session_id"
    lookup_url_kwarg = "id"

    def get_serializer_class(self) -> Any:
        return SessionReportSerializer if self.action == "retrieve" else SessionReportSummarySerializer

    def get_object(self) -> SessionReport:
        session_id = int(self.kwargs["id"])
        report = reports_of(merchant_id=self.merchant_id).filter(session_id=session_id).first()
        if report is not None:
            return report
        if not LiveSession.objects.filter(pk=session_id, merchant_id=self.merchant_id).exists():
            raise NotFound(_("No show with this id."))
        mark_dirty(session_id)
        raise NotFound(_("This show's report is being computed; try again in a minute."), code="report_not_ready")


def _no_unknown(request: Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise ApplicationError(
            f"unknown query parameter {unknown[0]!r}",
            code="unknown_parameter",
            extra={"fields": {u: "Unknown parameter." for u in unknown}, "allowed": sorted(allowed)},
        )


class SlotAnalysisApi(APIView):
    """Time slots, streamers and categories across the merchant's shows (from the rollups)."""

    role_area = roles.REPORTS

    @extend_schema(
        operation_id="reports_slots",
        tags=["reports"],
        parameters=[ReportSlotQuerySerializer],
        responses={200: ReportSlotAnalysisSerializer, **error_responses(400, 401)},
        description="Which weekday × hour, streamer and category sell best: GMV per hour on air, conversion and "
        "the number of shows behind each figure. A slot with fewer than `min_shows` shows is never recommended.",
    )
    def get(self, request: Request) -> Response:
        params = ReportSlotQuerySerializer(data=request.query_params)
        _no_unknown(request, set(ReportSlotQuerySerializer().fields))
        params.is_valid(raise_exception=True)  # a 400 "invalid" naming the fields
        since = params.validated_data.get("since")
        principal = cast(TokenPrincipal, request.auth)
        result = slot_analysis(
            merchant_id=principal.merchant_id,
            since=datetime.combine(since, time.min, tzinfo=ZoneInfo(settings.TIME_ZONE)) if since else None,
            min_shows=params.validated_data["min_shows"],
        )
        return Response(ReportSlotAnalysisSerializer(result).data)


class ForecastApi(APIView):
    """Demand forecast for a planned show (apps.reports.forecast)."""

    role_area = roles.REPORTS

    @extend_schema(
        operation_id="reports_forecast",
        tags=["reports"],
        parameters=[ReportForecastQuerySerializer],
        responses={200: ReportForecastSerializer, **error_responses(400, 401)},
        description="For a planned show (its SKUs, streamer, start and length): the units each SKU is expected to "
        "sell with an 80 % interval, the quota to set and how much to restock (against stock on hand), learnt "
        "from the merchant's past shows. Its backtest against the same-SKU-last-show baseline is in docs/reports.md. "
        "Trains on every call (about a second for 200 shows).",
    )
    def get(self, request: Request) -> Response:
        allowed = set(ReportForecastQuerySerializer().fields)
        _no_unknown(request, allowed)
        data = {k: request.query_params.getlist(k) if k == "sku" else request.query_params.get(k)
                for k in allowed if k in request.query_params}  # fmt: skip
        params = ReportForecastQuerySerializer(data=data)
        params.is_valid(raise_exception=True)
        merchant_id = cast(TokenPrincipal, request.auth).merchant_id
        codes = list(dict.fromkeys(params.validated_data["sku"]))
        known = {
            sku.code: sku
            for sku in SKU.objects.filter(merchant_id=merchant_id, code__in=codes).select_related("product", "stock")
        }
        missing = [c for c in codes if c not in known]
        if missing:
            raise ApplicationError(
                _("No SKU with code %(code)s in this shop.") % {"code": missing[0]},
                code="invalid",
                extra={"fields": {"sku": f"Unknown: {', '.join(missing)}"}},
            )
        plan, on_hand = plan_of(
            skus=[known[c] for c in codes],
            streamer=params.validated_data["streamer"],
            starts_at=params.validated_data["starts_at"],
            hours=float(params.validated_data["hours"]),
        )
        return Response(ReportForecastSerializer(forecast(merchant_id=merchant_id, plan=plan, on_hand=on_hand)).data)


class SuggestionsApi(APIView):
    """Restock and featuring suggestions from the demand forecast (apps.reports.suggestions)."""

    role_area = roles.REPORTS

    @extend_schema(
        operation_id="reports_suggestions",
        tags=["reports"],
        parameters=[ReportSuggestionsQuerySerializer],
        responses={200: ReportSuggestionsSerializer, **error_responses(400, 401)},
        description="Which SKUs to restock before the next show and by how much (the forecast's quota less the "
        "stock on hand, only when positive), which SKUs to feature in which slot and with which streamer (among "
        "slots and streamers with at least `min_shows` shows, against the SKU's usual slot), each with the figures "
        "behind it; and how such suggestions did in the rolling-origin backtest (`backtest`: null while a job "
        "computes it after the shop's shows change; ask again in a minute).",
    )
    def get(self, request: Request) -> Response:
        _no_unknown(request, set(ReportSuggestionsQuerySerializer().fields))
        params = ReportSuggestionsQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        merchant_id = cast(TokenPrincipal, request.auth).merchant_id
        result = suggestions(
            merchant_id=merchant_id, min_shows=params.validated_data["min_shows"], top=params.validated_data["top"]
        )
        return Response(ReportSuggestionsSerializer(result).data)
