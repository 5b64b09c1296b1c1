"""Production settings plus the baseline route, served the way docs/operations.md recommends."""

from livecommerce.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.flash_sale.urls"
SECURE_SSL_REDIRECT = False
LOGGING = {**LOGGING, "root": {**LOGGING["root"], "level": "WARNING"}}  # noqa: F405
