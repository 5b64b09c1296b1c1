from django.urls import path

from .views import StockSyncApi

urlpatterns = [path("stock/sync", StockSyncApi.as_view(), name="stock-sync")]
