from rest_framework.routers import SimpleRouter

from .views import CarrierAccountViewSet

router = SimpleRouter(trailing_slash=False)
router.register("carrier-accounts", CarrierAccountViewSet, basename="carrier-account")
urlpatterns = [*router.urls]
