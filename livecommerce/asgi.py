"""ASGI entry point: HTTP through Django, websockets through Channels."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "livecommerce.settings.local")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from apps.core.arrival import ArrivalStamp  # noqa: E402
from apps.core.websocket import origin_checked  # noqa: E402

from .routing import websocket_urlpatterns  # noqa: E402

http_app = django_asgi_app
if settings.SERVE_STATIC:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    http_app = ASGIStaticFilesHandler(django_asgi_app)

from apps.orders.placement.fastpath import OrderFastPath  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": ArrivalStamp(OrderFastPath(http_app)),
        "websocket": origin_checked(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# Everything loaded so far lives as long as the process: keep it out of the garbage collector's
# full passes, which otherwise stall a process holding thousands of websockets for 100+ ms.
gc.freeze()
