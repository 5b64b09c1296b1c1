"""Pages: the merchant's reports."""

from django.urls import path

from . import export_views, views

urlpatterns = [
    path("reports/", views.report_index, name="reports"),
    path("reports/slots/", views.report_slots, name="report-slots-page"),
    path("reports/forecast/", views.report_forecast, name="report-forecast-page"),
    path("reports/sessions/<int:session_id>/", views.report_session, name="report-session"),
    path("reports/sessions/<int:session_id>/export/", export_views.session_export, name="report-session-export"),
    path("reports/slots/export/", export_views.slots_export, name="report-slots-export"),
    path("reports/exports/<int:job_id>/", export_views.export_job, name="report-export"),
    path("reports/exports/<int:job_id>/progress/", export_views.export_progress, name="report-export-progress"),
    path("reports/exports/<int:job_id>/download/", export_views.export_download, name="report-export-download"),
]
