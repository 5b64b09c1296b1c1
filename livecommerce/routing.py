"""Websocket routes (consumers live in each app's consumers.py)."""

from apps.orders.routing import websocket_urlpatterns as order_ws

websocket_urlpatterns = [*order_ws]
