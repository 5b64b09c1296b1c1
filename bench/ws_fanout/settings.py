"""Production settings for the websocket fan-out bench (no TLS redirect on loopback)."""

from livecommerce.settings.production import *  # noqa: F403

SECURE_SSL_REDIRECT = False
LOGGING = {**LOGGING, "root": {**LOGGING["root"], "level": "WARNING"}}  # noqa: F405
