"""Origin checking for websockets.

Browsers always send ``Origin`` on a websocket handshake, and only a browser attaches the admin
session cookie on its own, so a cross-site page hijacking a staff session is stopped by checking
the Origin against ALLOWED_HOSTS. Streamer tools (OBS plugins, bots) are not browsers: they send no
Origin and authenticate with an API token. A handshake without Origin is therefore let through with
its cookies removed: it can use only the credentials it carries itself (API token, status link).
"""

from __future__ import annotations

from typing import Any

from channels.security.websocket import OriginValidator
from django.conf import settings


class BrowserOriginValidator(OriginValidator):
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope.get("type") == "websocket":
            headers = scope.get("headers", [])
            if not any(name == b"origin" for name, _ in headers):
                scope = dict(scope, headers=[(n, v) for n, v in headers if n != b"cookie"])
        return await super().__call__(scope, receive, send)

    def valid_origin(self, parsed_origin: Any) -> bool:
        if parsed_origin is None:
            return True
        return self.validate_origin(parsed_origin)


def origin_checked(application: Any) -> BrowserOriginValidator:
    """Like channels' AllowedHostsOriginValidator, but origin-less (non-browser) clients pass
    without cookies."""
    allowed_hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = ["localhost", "127.0.0.1", "[::1]"]
    return BrowserOriginValidator(application, allowed_hosts)
