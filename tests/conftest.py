"""Shared fixtures. Tests run against the services the launcher gives them (./test): SQLite +
an embedded Valkey by default, PostgreSQL + Redis when DATABASE_URL / REDIS_URL are set."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from apps.core.redis import get_client

from .factories import MerchantFactory, make_token


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("LC_REQUIRE_REAL_SERVERS") == "1":
        if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
            raise pytest.UsageError("LC_REQUIRE_REAL_SERVERS=1 but DATABASE_URL is not PostgreSQL")


@pytest.fixture(scope="session", autouse=True)
def _redis_is_there() -> None:
    """No Redis is a failure, never a skip."""
    get_client().ping()


@pytest.fixture(autouse=True)
def _clean_redis() -> None:
    from apps.catalog import selectors
    from apps.core import events
    from apps.merchants import tokens
    from apps.notifications import enabled as sms_enabled
    from apps.orders import selectors as order_selectors
    from apps.webhooks import subscriptions

    client = get_client()
    client.flushdb()
    selectors._local.clear()  # rolled-back tests may reuse ids; production never does
    events._quiet_until.clear()
    order_selectors.forget_tallies()
    tokens.local_tokens.clear()
    subscriptions.clear_local()
    sms_enabled.clear_local()
    yield


@pytest.fixture(autouse=True)
def _ledger_checkpoint_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test signs its ledger checkpoints into its own directory (ids are reused between
    tests), and child processes it starts (``servers.child_env``) see the same one."""
    path = tmp_path_factory.mktemp("ledger-checkpoints")
    monkeypatch.setattr(settings, "LEDGER_CHECKPOINT_DIR", path)
    monkeypatch.setenv("LEDGER_CHECKPOINT_DIR", str(path))


@pytest.fixture
def merchant(db):  # type: ignore[no-untyped-def]
    return MerchantFactory(slug="acme", name="Acme")


@pytest.fixture
def other_merchant(db):  # type: ignore[no-untyped-def]
    return MerchantFactory(slug="rival", name="Rival")


@pytest.fixture
def token(merchant) -> str:  # type: ignore[no-untyped-def]
    return make_token(merchant)


@pytest.fixture
def api(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def other_api(other_merchant) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_token(other_merchant)}")
    return client


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if name and ".sqlite3" in str(name):  # parallel workers' end in "_gwN" (pytest-django)
        for suffix in ("", "-wal", "-shm"):
            try:
                os.remove(f"{name}{suffix}")
            except OSError:
                pass
    media = Path(settings.MEDIA_ROOT)
    if media.name.startswith("test-media-"):  # this run's own uploads folder (settings/test.py)
        shutil.rmtree(media, ignore_errors=True)
    exports = Path(settings.STORAGES["exports"]["OPTIONS"]["location"])
    if exports.name.startswith("test-exports-"):  # and its private exports folder
        shutil.rmtree(exports, ignore_errors=True)
