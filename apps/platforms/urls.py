from django.urls import path

from . import views

app_name = "platforms"

urlpatterns = [
    path("hooks/platforms/<str:platform>/<str:push_token>", views.platform_push, name="push"),
]
