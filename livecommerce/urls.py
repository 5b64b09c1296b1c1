from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.core import views as core_views

api_v1 = [
    path("", include("apps.catalog.api.urls")),
    path("", include("apps.inventory.api.urls")),
    path("", include("apps.orders.api.urls")),
    path("", include("apps.platforms.api.urls")),
    path("", include("apps.fulfilment.api.urls")),
    path("", include("apps.webhooks.api.urls")),
    path("", include("apps.reports.api.urls")),
]

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="schema"),
    path(
        "api/docs/",
        # The split view serves its start-up script as a file: no inline <script> under the CSP.
        SpectacularSwaggerSplitView.as_view(url_name="schema", authentication_classes=[], permission_classes=[]),
        name="api-docs",
    ),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("apps.orders.urls")),
    path("", include("apps.platforms.urls")),
    path("", include("apps.fulfilment.urls")),
    path("", include("apps.reports.urls")),
]

if settings.SERVE_MEDIA:
    # Uploaded pictures, served by the app itself in ./run and the tests (like static files);
    # production serves MEDIA_URL from the web server or the storage's own URLs.
    prefix = settings.MEDIA_URL.strip("/")
    urlpatterns.insert(0, re_path(rf"^{prefix}/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}))

# JSON errors on API paths, friendly pages elsewhere.
handler404 = "apps.core.views.not_found"
handler500 = "apps.core.views.server_error"
