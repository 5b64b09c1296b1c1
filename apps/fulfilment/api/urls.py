from rest_framework.routers import SimpleRouter

from .views import CarrierAccountViewSet, RefundViewSet, ShipBatchViewSet

router = SimpleRouter(trailing_slash=False)
router.register("carrier-accounts", CarrierAccountViewSet, basename="carrier-account")
router.register("shipments/batches", ShipBatchViewSet, basename="ship-batch")
router.register("refunds", RefundViewSet, basename="refund")
urlpatterns = [*router.urls]
