"""Pages: buyer status page, live storefront, merchant live dashboard."""

from django.urls import path, re_path

from . import views

PUBLIC_ID = r"(?P<public_id>[0-9A-Za-z_-]{1,32})"

urlpatterns = [
    path("", views.home, name="home"),
    re_path(rf"^o/{PUBLIC_ID}/$", views.order_status, name="order-status"),
    re_path(rf"^o/{PUBLIC_ID}/proof\.json$", views.order_ledger_proof, name="order-ledger-proof"),
    re_path(rf"^o/{PUBLIC_ID}/cancel/$", views.order_cancel_view, name="order-cancel"),
    re_path(rf"^o/{PUBLIC_ID}/pay/$", views.order_pay_sandbox, name="order-pay-sandbox"),
    path("live/<slug:slug>/", views.storefront, name="storefront"),
    path("live/<slug:slug>/<int:session_id>/", views.storefront, name="storefront-session"),
    path("dashboard/", views.dashboard_index, name="dashboard"),
    path("dashboard/sessions/<int:session_id>/", views.dashboard_session, name="dashboard-session"),
]
