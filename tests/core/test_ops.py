"""Operations: health and readiness endpoints, request ids in responses and JSON logs, and the
production settings passing Django's deployment checks."""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.test import Client, override_settings

from apps.catalog.api.views import ProductViewSet
from apps.core import redis as core_redis
from apps.core.logging import JsonFormatter, RequestIdFilter
from livecommerce.settings import base as base_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_readyz_answers_200_when_database_and_redis_are_reachable() -> None:
    r = Client().get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed on exit: nothing listens there


@pytest.fixture
def redis_gone() -> Iterator[None]:
    core_redis.reset_clients()
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{_dead_port()}/0"):
        yield
    core_redis.reset_clients()


@pytest.mark.django_db
def test_healthz_answers_200_without_database_or_redis(redis_gone, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    with django_assert_num_queries(0):
        r = Client().get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_answers_503_when_redis_is_unreachable(redis_gone) -> None:  # type: ignore[no-untyped-def]
    r = Client().get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("error: ")


@pytest.mark.django_db
def test_readyz_answers_503_when_the_database_is_unreachable(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def broken_cursor(*args: object, **kwargs: object) -> None:
        raise OSError("connection refused")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    r = Client().get("/readyz")
    monkeypatch.undo()
    assert r.status_code == 503
    assert r.json()["checks"] == {"database": "error: OSError", "redis": "ok"}


def test_request_id_from_the_proxy_is_echoed() -> None:
    r = Client().get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a9c21-0001")
    assert r["X-Request-ID"] == "lb-7f3a9c21-0001"


@pytest.mark.parametrize("incoming", [None, "short", "has spaces in it", "x" * 65, "semi;colon;header"])
def test_missing_or_unsafe_request_id_is_replaced_by_a_fresh_one(incoming: str | None) -> None:
    headers = {"HTTP_X_REQUEST_ID": incoming} if incoming is not None else {}
    first = Client().get("/healthz", **headers)["X-Request-ID"]
    second = Client().get("/healthz", **headers)["X-Request-ID"]
    assert first != incoming and len(first) == 32 and int(first, 16) >= 0
    assert first != second


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The production log handler (JSON formatter + request id filter) on django.request."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


@pytest.mark.django_db
def test_log_lines_are_json_and_carry_the_request_id(json_log: io.StringIO) -> None:
    r = Client().get("/api/v1/products", HTTP_X_REQUEST_ID="req-0123456789")
    assert r.status_code == 401
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert lines, "the 401 was not logged"
    line = lines[-1]
    assert line["request_id"] == "req-0123456789"
    assert line["level"] == "WARNING"
    assert line["logger"] == "django.request"
    assert "/api/v1/products" in line["msg"]
    assert line["ts"].endswith("+00:00")


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "livecommerce.settings.production",
    "ALLOWED_HOSTS": "shop.example.com",
}


def _production_secrets() -> dict[str, str]:
    return {
        "SECRET_KEY": secrets.token_urlsafe(64),
        "PAYMENT_WEBHOOK_SECRET": secrets.token_urlsafe(32),
        "LEDGER_KEY": secrets.token_urlsafe(48),
        "LC_SECRETS_KEYS": Fernet.generate_key().decode(),
    }


def test_production_settings_pass_check_deploy_with_no_warnings() -> None:
    r = _manage("check", "--deploy", "--fail-level", "WARNING", env={**PRODUCTION, **_production_secrets()})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "System check identified no issues" in r.stdout
    assert "WARNING" not in r.stderr


def test_production_settings_refuse_a_weak_secret_key() -> None:
    r = _manage("check", "--deploy", env={**PRODUCTION, **_production_secrets(), "SECRET_KEY": "short"})
    assert r.returncode != 0
    assert "SECRET_KEY must be set to 50+ random characters" in r.stderr


@pytest.mark.parametrize("published", [base_settings.DEV_SECRET_KEY, base_settings.TEST_SECRET_KEY])
def test_production_settings_refuse_a_secret_key_published_in_the_repository(published: str) -> None:
    r = _manage("check", "--deploy", env={**PRODUCTION, **_production_secrets(), "SECRET_KEY": published})
    assert r.returncode != 0
    assert "refusing to start with the production settings" in r.stderr
    assert "SECRET_KEY is the development/test key published in this repository" in r.stderr
    assert "set SECRET_KEY to a new secret" in r.stderr


@pytest.mark.parametrize("payment_secret", ["", base_settings.DEV_PAYMENT_WEBHOOK_SECRET])
def test_production_settings_refuse_an_empty_or_published_payment_webhook_secret(payment_secret: str) -> None:
    env = {**PRODUCTION, **_production_secrets(), "PAYMENT_WEBHOOK_SECRET": payment_secret}
    r = _manage("check", "--deploy", env=env)
    assert r.returncode != 0
    assert "PAYMENT_WEBHOOK_SECRET is" in r.stderr
    assert "set it to the secret your payment provider signs its notifications with" in r.stderr


def test_production_settings_refuse_to_load_for_the_asgi_server() -> None:
    """The web server imports the settings too: it fails at start-up, not at the first request."""
    env = {**os.environ, **PRODUCTION, **_production_secrets(), "SECRET_KEY": base_settings.DEV_SECRET_KEY}
    code = "import livecommerce.asgi"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "ImproperlyConfigured" in r.stderr and "SECRET_KEY is the development/test key" in r.stderr


@pytest.mark.django_db
def test_an_api_500_still_answers_the_error_shape(api, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def crash(**kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(ProductViewSet, "selector", staticmethod(crash))
    api.raise_request_exception = False
    r = api.get("/api/v1/products")
    assert r.status_code == 500
    assert r["Content-Type"] == "application/json"
    assert r.json() == {"code": "server_error", "message": "Internal server error.", "extra": {}}


def test_a_page_500_is_still_html() -> None:
    client = Client(raise_request_exception=False)
    with mock.patch("apps.core.views.JsonResponse", side_effect=RuntimeError("bug")):
        r = client.get("/healthz")
    assert r.status_code == 500
    assert r["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("refund_secret", [base_settings.DEV_PAYMENT_API_SECRET, base_settings.TEST_PAYMENT_API_SECRET])
def test_production_settings_refuse_a_published_refund_api_secret(refund_secret: str) -> None:
    r = _manage("check", "--deploy", env={**PRODUCTION, **_production_secrets(), "PAYMENT_API_SECRET": refund_secret})
    assert r.returncode != 0
    assert "PAYMENT_API_SECRET is the sandbox/test secret published in this repository" in r.stderr


@pytest.mark.parametrize("ledger_key", ["", "short", base_settings.DEV_LEDGER_KEY, base_settings.TEST_LEDGER_KEY])
def test_production_settings_refuse_a_missing_weak_or_published_ledger_key(ledger_key: str) -> None:
    r = _manage("check", "--deploy", env={**PRODUCTION, **_production_secrets(), "LEDGER_KEY": ledger_key})
    assert r.returncode != 0
    assert "refusing to start with the production settings" in r.stderr
    published = "LEDGER_KEY is the development/test ledger key published in this repository"
    weak = "LEDGER_KEY must be set to 32+ random characters"
    assert (published if ledger_key in base_settings.PUBLISHED_SECRETS else weak) in r.stderr


@pytest.mark.parametrize(
    "keys",
    ["", "not-a-fernet-key", base_settings.fernet_key_from(base_settings.DEV_SECRET_KEY)],
    ids=["missing", "malformed", "published"],
)
def test_production_settings_refuse_missing_malformed_or_published_secrets_encryption_keys(keys: str) -> None:
    r = _manage("check", "--deploy", env={**PRODUCTION, **_production_secrets(), "LC_SECRETS_KEYS": keys})
    assert r.returncode != 0
    assert "refusing to start with the production settings" in r.stderr
    expected = {
        "": "LC_SECRETS_KEYS is empty",
        "not-a-fernet-key": "LC_SECRETS_KEYS key 1 is not a Fernet key",
    }.get(keys, "LC_SECRETS_KEYS key 1 is the development/test key")
    assert expected in r.stderr
