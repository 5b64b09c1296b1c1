"""Pages: the merchant's reports."""

from django.urls import path

from . import views

urlpatterns = [
    path("reports/", views.report_index, name="reports"),
    path("reports/slots/", views.report_slots, name="report-slots-page"),
    path("reports/forecast/", views.report_forecast, name="report-forecast-page"),
    path("reports/sessions/<int:session_id>/", views.report_session, name="report-session"),
]
