from rest_framework.routers import SimpleRouter

from .views import ListingViewSet, ProductViewSet, SessionViewSet, SKUViewSet

router = SimpleRouter(trailing_slash=False)
router.register("products", ProductViewSet, basename="product")
router.register("skus", SKUViewSet, basename="sku")
router.register("sessions", SessionViewSet, basename="session")
router.register("listings", ListingViewSet, basename="listing")
urlpatterns = router.urls
