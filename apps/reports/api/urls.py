from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import ForecastApi, SessionReportViewSet, SlotAnalysisApi, SuggestionsApi

router = SimpleRouter(trailing_slash=False)
router.register("reports/sessions", SessionReportViewSet, basename="session-report")
urlpatterns = [
    path("reports/slots", SlotAnalysisApi.as_view(), name="report-slots"),
    path("reports/forecast", ForecastApi.as_view(), name="report-forecast"),
    path("reports/suggestions", SuggestionsApi.as_view(), name="report-suggestions"),
    *router.urls,
]
