from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import OrderViewSet, PaymentNotifyApi

router = SimpleRouter(trailing_slash=False)
router.register("orders", OrderViewSet, basename="order")
urlpatterns = [path("payments/notify", PaymentNotifyApi.as_view(), name="payment-notify"), *router.urls]
