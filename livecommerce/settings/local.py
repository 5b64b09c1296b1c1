"""Laptop / demo settings: the embedded default."""

from .base import *  # noqa: F403
from .base import env_bool

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = SECRET_KEY or "dev-only-insecure-key-livecommerce-do-not-use-in-production"  # noqa: F405
PAYMENT_WEBHOOK_SECRET = PAYMENT_WEBHOOK_SECRET or "sandbox-payment-secret"  # noqa: F405
PAYMENT_SANDBOX = env_bool("PAYMENT_SANDBOX", True)
