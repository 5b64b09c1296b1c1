from django.urls import path

from livecommerce.urls import urlpatterns as app_urls

from .baseline import BaselineOrderApi

urlpatterns = [path("bench/baseline/orders", BaselineOrderApi.as_view()), *app_urls]
