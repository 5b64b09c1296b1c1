from django.urls import path

from . import views

app_name = "fulfilment"

urlpatterns = [
    path("hooks/carriers/<str:carrier>/<str:push_token>", views.carrier_push, name="carrier-push"),
]
