"""Websocket routes of the orders app (see consumers.py for who may join what)."""

from django.urls import path, re_path

from . import consumers

websocket_urlpatterns = [
    re_path(r"^ws/orders/(?P<public_id>[0-9A-Za-z_-]{1,32})/$", consumers.OrderConsumer.as_asgi()),
    re_path(r"^ws/listings/(?P<listing_id>[0-9]{1,18})/$", consumers.ListingConsumer.as_asgi()),
    re_path(r"^ws/sessions/(?P<session_id>[0-9]{1,18})/$", consumers.SessionConsumer.as_asgi()),
    path("ws/merchant/", consumers.MerchantConsumer.as_asgi()),
]
