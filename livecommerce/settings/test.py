"""Test settings: same engines as local (or DATABASE_URL / REDIS_URL), fast hashing."""

import os
from pathlib import Path


def _worker_redis_url(url: str, worker: str) -> str:
    """The Redis URL of one parallel test worker (pytest-xdist ``gwN``): the same server, its own
    database number (the first worker keeps the URL's). Each worker flushes its database before
    every test; sharing one would wipe the other's keys mid-test."""
    from urllib.parse import parse_qsl, urlencode, urlsplit

    n = int(worker.removeprefix("gw") or 0)
    base, _, query_text = url.partition("?")
    query = dict(parse_qsl(query_text))
    if url.startswith("unix:") or "db" in query:
        query["db"] = str(int(query.get("db", "0")) + n)
        return f"{base}?{urlencode(query)}"
    parts = urlsplit(base)
    db = int(parts.path.strip("/") or 0) + n
    return f"{parts.scheme}://{parts.netloc}/{db}" + (f"?{query_text}" if query_text else "")


# Parallel workers (./test runs pytest-xdist, one process per core): each its own Redis database,
# uploads and exports folders, once per process tree. The controller process imported these
# settings first and set the folders in the environment; a worker inherits them (and the servers
# it starts inherit its own, with the marker, and rewrite nothing again).
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER and os.environ.get("LC_TEST_WORKER") != _WORKER:
    os.environ["REDIS_URL"] = _worker_redis_url(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0", _WORKER)
    for _folder in ("MEDIA_ROOT", "LC_TEST_EXPORTS_ROOT"):
        if os.environ.get(_folder):
            os.environ[_folder] = f"{os.environ[_folder]}-{_WORKER}"
    os.environ["LC_TEST_WORKER"] = _WORKER

from .base import *  # noqa: E402, F403
from .base import (  # noqa: E402
    CHANNEL_LAYERS,
    DATABASES,
    IS_SQLITE,
    TEST_LEDGER_KEY,
    TEST_PAYMENT_API_SECRET,
    TEST_PAYMENT_WEBHOOK_SECRET,
    TEST_SECRET_KEY,
    VAR_DIR,
    fernet_key_from,
)

DEBUG = False
SECRET_KEY = TEST_SECRET_KEY
PAYMENT_WEBHOOK_SECRET = TEST_PAYMENT_WEBHOOK_SECRET
# A test that sends refunds starts a simulator and points PAYMENT_PROVIDER_URL at it.
PAYMENT_APP_ID = "lc-test-app"
PAYMENT_API_SECRET = TEST_PAYMENT_API_SECRET
LEDGER_KEY = TEST_LEDGER_KEY
SECRETS_ENCRYPTION_KEYS = SECRETS_ENCRYPTION_KEYS or [fernet_key_from(TEST_SECRET_KEY)]  # noqa: F405
# Pictures uploaded by the tests go to a folder of this test process, shared (through the
# environment) with the servers it starts; removed when the run ends (tests/conftest.py).
MEDIA_ROOT = Path(os.environ.setdefault("MEDIA_ROOT", str(VAR_DIR / f"test-media-{os.getpid()}")))
# Exports: this run's own private folder beside it (never under MEDIA_ROOT, which is served), shared
# through the environment with the servers and workers it starts, like MEDIA_ROOT.
STORAGES["exports"]["OPTIONS"]["location"] = os.environ.setdefault(  # type: ignore[index]  # noqa: F405 - a dict of dicts from base
    "LC_TEST_EXPORTS_ROOT", str(VAR_DIR / f"test-exports-{os.getpid()}")
)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if IS_SQLITE:
    # A file, not :memory:, so threads in transactional tests share one database.
    # One file per test process, so parallel runs on one machine do not share a database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
else:
    # Concurrency tests run 32+ threads in one process: one pooled connection each.
    DATABASES["default"]["OPTIONS"]["pool"]["max_size"] = 40
# A second alias for the read-replica router's tests: a mirror of the test database (the same
# database through another connection). Nothing reads from it unless READ_REPLICA_DB names it.
DATABASES.setdefault("replica", {**DATABASES["default"], "TEST": {"MIRROR": "default"}})
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
# Tasks run inline in tests; a test that starts a real worker sets LC_Q_SYNC=0 for it.
Q_CLUSTER = {**Q_CLUSTER, "sync": os.environ.get("LC_Q_SYNC", "1") == "1"}  # noqa: F405
TOKEN_CACHE_SECONDS = 30
PAYMENT_SANDBOX = True
WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the tests' receiver listens on 127.0.0.1 over http
# Tests score orders when they choose (apps.fraud.scoring.score_pending): an inline task per
# committed order would score before the test looks at an order not assessed yet.
FRAUD_SCORE_ON_COMMIT = os.environ.get("FRAUD_SCORE_ON_COMMIT", "0") == "1"
# Platform inbox processing is run explicitly by tests (processing.process_pending).
PLATFORM_PROCESS_ON_COMMIT = os.environ.get("PLATFORM_PROCESS_ON_COMMIT", "0") == "1"
# Stock drains run when a test asks (stock_drain): with synchronous tasks a queued drain would run
# inside the request that marked it, calling platforms (the tenancy world's shops point at the
# real gateways, unreachable here) for up to its whole budget.
PLATFORM_STOCK_DRAIN_QUEUE = os.environ.get("PLATFORM_STOCK_DRAIN_QUEUE", "0") == "1"
if _WORKER and "CONFIG" in CHANNEL_LAYERS["default"]:
    # Pub/sub channels are one namespace per Redis server, whatever the database: each worker
    # (and the servers it starts, which inherit PYTEST_XDIST_WORKER) publishes under its own prefix.
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"lc:asgi:{_WORKER}"
# A batcher hands its connection back to the pool as soon as its queue is empty (as before the
# idle linger): a connection kept past a test's end would hold the test database open when it is
# dropped. tests/orders/test_batcher_connection.py turns the linger on and tests it.
ORDER_BATCHER_IDLE_SECONDS = 0.0
