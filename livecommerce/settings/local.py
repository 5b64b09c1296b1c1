"""Laptop / demo settings: the embedded default.

Redis and the database: ``REDIS_URL`` / ``DATABASE_URL`` from the environment when set. Otherwise
those of the ``./run`` running from this checkout (``var/run.json``, see livecommerce/runtime.py),
so ``python manage.py reconcile_stock`` in a second terminal acts on the running system's embedded
Valkey and database. With no ./run running, the database is the default SQLite file (what ./run
will use: ``migrate``, ``createmerchant``... work) and there is no Redis: commands that need it
stop with a message saying how to point them (never a silent ``127.0.0.1:6379``).
"""

import os

from livecommerce import runtime

from .base import *  # noqa: F403
from .base import (
    DEV_LEDGER_KEY,
    DEV_PAYMENT_API_SECRET,
    DEV_PAYMENT_WEBHOOK_SECRET,
    DEV_SECRET_KEY,
    LOGGING,
    Q_CLUSTER,
    VAR_DIR,
    _database_settings,
    _redis_settings,
    env_bool,
    fernet_key_from,
)

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = SECRET_KEY or DEV_SECRET_KEY  # noqa: F405
PAYMENT_WEBHOOK_SECRET = PAYMENT_WEBHOOK_SECRET or DEV_PAYMENT_WEBHOOK_SECRET  # noqa: F405
LEDGER_KEY = LEDGER_KEY or DEV_LEDGER_KEY  # noqa: F405
# Stored secrets (platform shops, webhook endpoints) are encrypted with a key derived from
# SECRET_KEY unless LC_SECRETS_KEYS is set: changing SECRET_KEY then needs rotate_secrets first.
SECRETS_ENCRYPTION_KEYS = SECRETS_ENCRYPTION_KEYS or [fernet_key_from(SECRET_KEY)]  # noqa: F405
PAYMENT_SANDBOX = env_bool("PAYMENT_SANDBOX", True)
# Refunds go to `manage.py payment_simulator` (its defaults are these; ./run starts it with the
# demo) unless told otherwise.
PAYMENT_PROVIDER_URL = PAYMENT_PROVIDER_URL or runtime.LOCAL_PAYMENT_PROVIDER_URL  # noqa: F405
PAYMENT_APP_ID = PAYMENT_APP_ID or "lc-demo-app"  # noqa: F405
PAYMENT_API_SECRET = PAYMENT_API_SECRET or DEV_PAYMENT_API_SECRET  # noqa: F405
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", DEBUG)

# ./run's own children get both URLs in their environment and never need the file.
RUNNING_SYSTEM = None
if not (os.environ.get("REDIS_URL") and os.environ.get("DATABASE_URL")):
    RUNNING_SYSTEM = runtime.read_live(VAR_DIR)
    if RUNNING_SYSTEM is not None and RUNNING_SYSTEM.get("settings") != runtime.LOCAL_SETTINGS:
        RUNNING_SYSTEM = None  # a ./run on other settings (other secrets): point commands at it by hand
if not os.environ.get("DATABASE_URL") and RUNNING_SYSTEM:
    DATABASE_URL = RUNNING_SYSTEM["database_url"]
    DATABASES = {"default": _database_settings(DATABASE_URL)}
    IS_SQLITE = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
if not os.environ.get("REDIS_URL"):
    REDIS_URL = RUNNING_SYSTEM["redis_url"] if RUNNING_SYSTEM else ""
    CACHES, CHANNEL_LAYERS = _redis_settings(REDIS_URL)
    Q_CLUSTER = {**Q_CLUSTER, "redis": REDIS_URL}
    if not REDIS_URL:
        # The login throttle's counters are then in this process only; no login happens in a
        # management command, so django-axes' warning about that cache would only be noise.
        SILENCED_SYSTEM_CHECKS = ["axes.W001"]

# ./run's daphne writes an access log line for every request with its status: Django's own
# "Not Found: /x" / "Conflict: /api/..." warnings would say the same again. Errors (5xx) still log.
# httpx logs every request at INFO: with the demo's platform simulators that is a line per push,
# order detail and stock call, in the same terminal (failures are logged by apps.platforms).
LOGGING = {
    **LOGGING,
    "loggers": {**LOGGING["loggers"], "django.request": {"level": "ERROR"}, "httpx": {"level": "WARNING"}},
}
