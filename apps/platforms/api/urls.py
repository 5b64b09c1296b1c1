from django.urls import re_path
from rest_framework.routers import SimpleRouter

from .views import ListingChannelsViewSet, PlatformShopViewSet

router = SimpleRouter(trailing_slash=False)
router.register("platform-shops", PlatformShopViewSet, basename="platform-shop")
urlpatterns = [
    *router.urls,
    re_path(
        r"^listings/(?P<pk>[0-9]{1,18})/channels$",
        ListingChannelsViewSet.as_view({"get": "channels", "put": "set_channels"}),
        name="listing-channels",
    ),
]
