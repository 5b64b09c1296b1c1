"""Laptop / demo settings: the embedded default."""

from .base import *  # noqa: F403
from .base import DEV_LEDGER_KEY, DEV_PAYMENT_WEBHOOK_SECRET, DEV_SECRET_KEY, env_bool

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = SECRET_KEY or DEV_SECRET_KEY  # noqa: F405
PAYMENT_WEBHOOK_SECRET = PAYMENT_WEBHOOK_SECRET or DEV_PAYMENT_WEBHOOK_SECRET  # noqa: F405
LEDGER_KEY = LEDGER_KEY or DEV_LEDGER_KEY  # noqa: F405
PAYMENT_SANDBOX = env_bool("PAYMENT_SANDBOX", True)
