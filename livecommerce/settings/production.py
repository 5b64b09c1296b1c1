"""Production: PostgreSQL (DATABASE_URL), Redis (REDIS_URL), everything else from the env."""

import os

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import (
    LEDGER_KEY,
    PAYMENT_API_SECRET,
    PAYMENT_WEBHOOK_SECRET,
    PUBLISHED_SECRETS,
    PUBLISHED_SECRETS_KEYS,
    SECRETS_ENCRYPTION_KEYS,
    env_bool,
)

DEBUG = False
SECRET_KEY = os.environ.get("SECRET_KEY", "")


def _secrets_keys_problems(keys: list[str]) -> list[str]:
    """What is wrong with LC_SECRETS_KEYS (the keys stored secrets are encrypted with)."""
    from cryptography.fernet import Fernet

    new_key = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
    if not keys:
        return [
            "LC_SECRETS_KEYS is empty (platform shop and webhook secrets are encrypted at rest with it): set it "
            f"to a Fernet key, e.g. from {new_key}; keep it out of the database and its backups"
        ]
    problems = []
    for position, key in enumerate(keys, 1):
        if key in PUBLISHED_SECRETS_KEYS:
            problems.append(
                f"LC_SECRETS_KEYS key {position} is the development/test key derived from a SECRET_KEY published in "
                f"this repository: generate a new one ({new_key}), put it first and run manage.py rotate_secrets"
            )
            continue
        try:
            Fernet(key)
        except (ValueError, TypeError):
            problems.append(
                f"LC_SECRETS_KEYS key {position} is not a Fernet key (32 bytes, url-safe base64), e.g. from {new_key}"
            )
    return problems


def _secret_problems(secret_key: str, payment_secret: str, ledger_key: str, refund_secret: str) -> list[str]:
    """What is wrong with the secrets for production. Checked when the settings load, so the
    web server, the worker and ``manage.py check --deploy`` all refuse to start, not only the
    deployment checklist."""
    new_key = "python -c 'import secrets; print(secrets.token_urlsafe(64))'"
    problems = []
    if secret_key in PUBLISHED_SECRETS:
        problems.append(
            "SECRET_KEY is the development/test key published in this repository (anyone could forge "
            f"sessions and buyers' status links): set SECRET_KEY to a new secret, e.g. from {new_key}"
        )
    elif len(secret_key) < 50:
        problems.append(f"SECRET_KEY must be set to 50+ random characters in production, e.g. from {new_key}")
    if not payment_secret:
        problems.append(
            "PAYMENT_WEBHOOK_SECRET is empty (payment notifications could not be verified): set it to the "
            "secret your payment provider signs its notifications with"
        )
    elif payment_secret in PUBLISHED_SECRETS:
        problems.append(
            "PAYMENT_WEBHOOK_SECRET is the sandbox/test secret published in this repository (anyone could mark "
            "orders paid): set it to the secret your payment provider signs its notifications with"
        )
    if refund_secret in PUBLISHED_SECRETS:
        problems.append(
            "PAYMENT_API_SECRET is the sandbox/test secret published in this repository (anyone could sign "
            "refund calls as this shop): set it to the API secret your payment provider issued, or leave it "
            "empty while refunds are not sent"
        )
    new_ledger_key = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
    if ledger_key in PUBLISHED_SECRETS:
        problems.append(
            "LEDGER_KEY is the development/test ledger key published in this repository (anyone with database "
            "access could rewrite the order ledger undetected): set LEDGER_KEY to a new secret, e.g. from "
            f"{new_ledger_key}"
        )
    elif len(ledger_key) < 32:
        problems.append(
            "LEDGER_KEY must be set to 32+ random characters in production (it keys the order ledger and signs its "
            f"checkpoints; keep it out of the database and its backups), e.g. from {new_ledger_key}"
        )
    return problems


if _problems := [
    *_secret_problems(SECRET_KEY, PAYMENT_WEBHOOK_SECRET, LEDGER_KEY, PAYMENT_API_SECRET),
    *_secrets_keys_problems(SECRETS_ENCRYPTION_KEYS),
]:
    raise ImproperlyConfigured("refusing to start with the production settings:\n  - " + "\n  - ".join(_problems))
SERVE_STATIC = env_bool("SERVE_STATIC", False)
SERVE_MEDIA = env_bool("SERVE_MEDIA", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
