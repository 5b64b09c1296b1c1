"""Settings shared by every environment. Hosts and secrets come from the environment."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONCE, NONE, SELF

from livecommerce import runtime

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = runtime.var_dir()  # var/, or LC_VAR_DIR
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [x.strip() for x in os.environ.get(name, default).split(",") if x.strip()]


SECRET_KEY = os.environ.get("SECRET_KEY", "")
# Secrets written in this repository for the laptop and test settings. Anyone can read them, so
# anyone could forge sessions, status links and payment notifications with them: production.py
# refuses to start with any of them.
DEV_SECRET_KEY = "dev-only-insecure-key-livecommerce-do-not-use-in-production"
TEST_SECRET_KEY = "test-secret-key-livecommerce-0123456789-abcdefghijklmnopqrstuvwxyz"
DEV_PAYMENT_WEBHOOK_SECRET = "sandbox-payment-secret"
TEST_PAYMENT_WEBHOOK_SECRET = "test-payment-secret"
DEV_PAYMENT_API_SECRET = "sandbox-refund-secret"
TEST_PAYMENT_API_SECRET = "test-refund-secret"
DEV_LEDGER_KEY = "dev-only-ledger-key-livecommerce-do-not-use-in-production"
TEST_LEDGER_KEY = "test-ledger-key-livecommerce-0123456789-abcdefghijklmnopqrstuvwxyz"
PUBLISHED_SECRETS = frozenset(
    {
        DEV_SECRET_KEY,
        TEST_SECRET_KEY,
        DEV_PAYMENT_WEBHOOK_SECRET,
        TEST_PAYMENT_WEBHOOK_SECRET,
        DEV_PAYMENT_API_SECRET,
        TEST_PAYMENT_API_SECRET,
        DEV_LEDGER_KEY,
        TEST_LEDGER_KEY,
    }
)


def fernet_key_from(secret: str) -> str:
    """A Fernet key derived from ``secret``: the laptop and test default of
    ``SECRETS_ENCRYPTION_KEYS`` (from SECRET_KEY). Production takes real keys (LC_SECRETS_KEYS)."""
    return base64.urlsafe_b64encode(
        hashlib.sha256(b"livecommerce secrets at rest:" + secret.encode()).digest()
    ).decode()


# Encryption at rest of stored secrets (apps/core/encryption.py): Fernet keys, comma-separated in
# LC_SECRETS_KEYS. The first encrypts, every one decrypts; rotation in docs/operations.md.
# local.py and test.py fall back to a key derived from SECRET_KEY; production.py requires them.
SECRETS_ENCRYPTION_KEYS = env_list("LC_SECRETS_KEYS")
PUBLISHED_SECRETS_KEYS = frozenset(fernet_key_from(k) for k in (DEV_SECRET_KEY, TEST_SECRET_KEY))
DEBUG = env_bool("DEBUG")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_q",
    "csp",
    "axes",
    "apps.core",
    "apps.merchants",
    "apps.catalog",
    "apps.inventory",
    "apps.orders",
    "apps.fraud",
    "apps.platforms",
    "apps.fulfilment",
    "apps.reports",
    "apps.webhooks",
    "apps.notifications",
]

MIDDLEWARE = [
    "apps.core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "apps.core.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "apps.core.api_policy.ApiPolicyMiddleware",  # /api: English unless asked, JSON errors, no trailing slash
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.core.middleware.DatabaseUnavailableMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "livecommerce.urls"
ASGI_APPLICATION = "livecommerce.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ]
        },
    }
]

_threads_holding_connections = (
    int(os.environ.get("ORDER_FASTPATH_THREADS", "16"))
    + int(os.environ.get("ORDER_BATCHERS", "4"))
    + int(os.environ.get("ORDER_SIDE_EFFECT_THREADS", "2"))
)


# --- Database: DATABASE_URL, default SQLite (WAL, immediate transactions) ---------------------
def _database_settings(url: str) -> dict[str, Any]:
    """``DATABASES["default"]`` for ``url`` (local.py calls it again for the running system's URL)."""
    _db: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60"))))
    if _db["ENGINE"] == "django.db.backends.sqlite3":
        _db["CONN_MAX_AGE"] = 0
        _db["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000",
        }
    else:
        # Under ASGI every request runs its sync code on a fresh thread, so per-thread persistent
        # connections would pile up; psycopg's pool hands connections back at the end of a request.
        _db["CONN_MAX_AGE"] = 0
        # Sized for every thread of a worker that can hold a connection at once: the order fast
        # path's threads, the order batchers, Django's own sync thread and a few for the rest. A
        # checkout waits DB_POOL_TIMEOUT at most, then the request answers 503 with Retry-After (never
        # 500); each checkout is checked first, so connections a database restart killed are
        # replaced instead of answering errors for minutes.
        _db.setdefault("OPTIONS", {})["pool"] = {
            "min_size": int(os.environ.get("DB_POOL_MIN", "2")),
            "max_size": int(os.environ.get("DB_POOL_MAX", "0")) or _threads_holding_connections + 6,
            "timeout": float(os.environ.get("DB_POOL_TIMEOUT", "5")),
        }
        _db["CONN_HEALTH_CHECKS"] = env_bool("DB_HEALTH_CHECKS", True)  # with a pool: checked at checkout
        # No statement waits for a row lock longer than this (a forgotten admin transaction must not
        # stall an order batcher, and with it every listing it serves, for ever): the waiting
        # statement fails, and the request answers 503. Below ORDER_BATCH_TIMEOUT. 0 turns it off.
        _db["OPTIONS"]["options"] = f"-c lock_timeout={int(os.environ.get('DB_LOCK_TIMEOUT_MS', '10000'))}"
        # Django's cursors bind client-side and never prepare; this only lets the order placement
        # statement be prepared on purpose (``apps/orders/placement/pgcall.py::run_prepared``). Django's default (None)
        # would turn server-side prepared statements off altogether.
        _db["OPTIONS"]["prepare_threshold"] = 5
    return _db


DATABASE_URL = os.environ.get("DATABASE_URL") or runtime.default_database_url(VAR_DIR)
DATABASES = {"default": _database_settings(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
IS_SQLITE = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
# A read replica (optional): the reports' rollups are read from it (apps/core/db_router.py).
DATABASE_REPLICA_URL = os.environ.get("DATABASE_REPLICA_URL", "")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = _database_settings(DATABASE_REPLICA_URL)
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
READ_REPLICA_DB = "replica" if DATABASE_REPLICA_URL else None
DATABASE_ROUTERS = ["apps.core.db_router.ReadReplicaRouter"]

# --- Redis: REDIS_URL (the launcher starts an embedded Valkey and sets it) -------------------
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_CLUSTER = env_bool("REDIS_CLUSTER")


def _redis_settings(url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``CACHES`` and ``CHANNEL_LAYERS`` on the Redis at ``url``.

    An empty ``url`` (the laptop settings when no ./run is running and REDIS_URL is unset) gives a
    cache and a channel layer in this process: the embedded Valkey starts empty with every ./run,
    so nothing a command could cache or publish there would outlive it. Code that needs the Redis
    itself (the gate, the task queue) fails with ``apps.core.redis.RedisNotConfigured`` instead.
    """
    if not url:
        return (
            {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "KEY_PREFIX": "lc:cache"}},
            {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
        )
    caches = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "lc:cache",
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
        }
    }
    # redis-py 8 sets a 5 s socket timeout that kills idle channel-layer readers (channels_redis#422).
    layers = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [{"address": url, "socket_timeout": None, "max_connections": 2000}],
                "prefix": "lc:asgi",
            },
        }
    }
    return caches, layers


CACHES, CHANNEL_LAYERS = _redis_settings(REDIS_URL)

Q_CLUSTER = {
    "name": "livecommerce",
    "workers": int(os.environ.get("Q_WORKERS", "2")),
    "timeout": 120,
    "retry": 180,
    "max_attempts": 3,
    "catch_up": False,
    "redis": REDIS_URL,
    "label": "Tasks",
    "ack_failures": True,
    # A daemonic worker may not start processes: a big shipping batch draws its labels in
    # LABEL_PROCESSES processes (apps.fulfilment.documents.render_labels).
    "daemonize_workers": False,
}

# --- Auth, i18n, static ---------------------------------------------------------------------
# django-axes throttles password logins (the admin login form, which the dashboard uses too): 5
# failures for one username from one IP lock that pair out for 15 minutes, even with the right
# password, while the same username from another IP and other users stay unaffected. Its backend
# must come first and needs the request; API tokens (apps.merchants.authentication) never call
# ``authenticate()`` and are not throttled by it.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Counters live in Redis (the default cache): short-lived, shared by every web process, and no
# tables or admin pages to scope per merchant (so its admin is off).
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_ENABLE_ADMIN = False
# The ASGI servers run with proxy headers, so REMOTE_ADDR is already the client seen by the load
# balancer; X-Forwarded-For only as far as TRUSTED_PROXY_COUNT says (a client could pick its own
# IP per attempt).
AXES_CLIENT_IP_CALLABLE = "apps.core.middleware.client_ip"
# Proxies of our own in front of the ASGI server that append to X-Forwarded-For and that the
# server does not already trust (FORWARDED_ALLOW_IPS): with N, the N-th address from the right is
# the client's (apps.core.client_ip). 0 (the default): X-Forwarded-For is ignored.
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/admin/login/"
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
SERVE_STATIC = env_bool("SERVE_STATIC", True)
# Uploaded pictures (product and SKU images) go through Django's storage API: local files under
# MEDIA_ROOT by default; a deployment may point STORAGES["default"] at object storage instead.
# ./run serves them itself (SERVE_MEDIA), as it serves static files; production leaves /media/
# to the web server or the storage's own URLs.
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT") or VAR_DIR / "media")
SERVE_MEDIA = env_bool("SERVE_MEDIA", True)
# Order exports (CSV/XLSX of buyers' names, phones and addresses) are private: a storage of their
# own outside MEDIA_ROOT with no URL, read back only by the download view, which checks who asks.
EXPORTS_ROOT = Path(os.environ.get("EXPORTS_ROOT") or VAR_DIR / "exports")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "exports": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(EXPORTS_ROOT), "file_permissions_mode": 0o600},
    },
}

# --- Content-Security-Policy (django-csp) --------------------------------------------------
# Our pages load scripts and styles from static/ only. The storefront's server-rendered stock bars
# are one <style> with the response's nonce (django-csp adds it only where a template asks for
# it). Websockets (live updates) connect to the page's own host.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],  # product pictures come from MEDIA_URL on this host
        "font-src": [SELF],
        "connect-src": [SELF, "ws:", "wss:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# Third-party pages with inline <style> blocks get style-src 'unsafe-inline' (scripts stay
# 'self'): the Django admin (admin/change_list.html) and Swagger UI (drf-spectacular's template).
CSP_INLINE_STYLE_PATHS = ("/admin/", "/api/docs/")

# --- REST API --------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.merchants.authentication.MerchantTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["apps.merchants.authentication.IsMerchantToken"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.exception_handler.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "livecommerce API",
    "DESCRIPTION": (
        "Real-time order management for livestream commerce (直播带货): flash-sale orders, live shows, "
        "listings and stock for streamer tools and ERPs.\n\n"
        "**Auth**: `Authorization: Bearer <token>` (or `Token <token>`); in Swagger UI's Authorize "
        "dialog paste the token alone.\n\n"
        "**Errors**: every error is `{code, message, extra}` with a 4xx (or 503) status. Match on `code`; "
        "each endpoint lists exactly the codes it can answer, with an example body for each. The "
        "reference of every code is `docs/api.md`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "apps.orders.models.OrderStatus",
        "SessionStatusEnum": "apps.catalog.models.LiveSession.Status",
    },
    # The documented error responses of every endpoint, from apps.core.error_codes.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.core.openapi.error_responses_hook",
    ],
}

# --- Domain settings -------------------------------------------------------------------------
PAYMENT_WEBHOOK_SECRET = os.environ.get("PAYMENT_WEBHOOK_SECRET", "")
PAYMENT_MAX_SKEW_SECONDS = 300
# The demo "pay" button on the buyer status page (signs a notification with the secret above).
PAYMENT_SANDBOX = env_bool("PAYMENT_SANDBOX", False)
# The provider's refund API (apps/fulfilment/payments, docs/payment-provider.md): our calls are
# signed with PAYMENT_API_SECRET, its refund callbacks with PAYMENT_WEBHOOK_SECRET (above). Empty:
# refunds are not sent (they wait; ProviderNotConfigured). PAYMENT_PROVIDER_TIMEOUT: seconds per call.
PAYMENT_PROVIDER_URL = os.environ.get("PAYMENT_PROVIDER_URL", "")
PAYMENT_APP_ID = os.environ.get("PAYMENT_APP_ID", "")
PAYMENT_API_SECRET = os.environ.get("PAYMENT_API_SECRET", "")
PAYMENT_PROVIDER_TIMEOUT = float(os.environ.get("PAYMENT_PROVIDER_TIMEOUT", "5"))
# The order ledger (apps/orders/services/ledger.py). LEDGER_KEY keys every event's content digest
# and signs the checkpoints; it is never written to the database, so whoever can write the
# database cannot recompute the chain. Rotating it makes every existing chain fail verification.
LEDGER_KEY = os.environ.get("LEDGER_KEY", "")
# Signed checkpoints of each merchant's chain, one append-only JSON-lines file per merchant. In
# production point it at storage the database admins cannot rewrite (a WORM / object-lock bucket
# mount, a `chattr +a` directory on another host): a checkpoint is only evidence while nobody who
# can write the database can also rewrite it.
LEDGER_CHECKPOINT_DIR = Path(os.environ.get("LEDGER_CHECKPOINT_DIR", "") or VAR_DIR / "ledger-checkpoints")
# The risk model the after-commit scorer loads (manage.py train_fraud_model writes it, with a
# versioned copy beside it). When this file is missing or refused, the default trained model
# shipped in apps/fraud/default_model/ is used; with neither, the hot-path rules alone decide.
FRAUD_MODEL_PATH = Path(os.environ.get("FRAUD_MODEL_PATH", "") or VAR_DIR / "fraud" / "model.joblib")
ORDER_STATUS_LINK_MAX_AGE = int(os.environ.get("ORDER_STATUS_LINK_MAX_AGE", str(30 * 86400)))
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "")
TOKEN_CACHE_SECONDS = 30
# A valid token is also kept in each process this long (revocation reaches other processes within it).
TOKEN_LOCAL_CACHE_SECONDS = float(os.environ.get("TOKEN_LOCAL_CACHE_SECONDS", "1"))
ORDER_FASTPATH_THREADS = int(os.environ.get("ORDER_FASTPATH_THREADS", "16"))
# Order refusals (sold out, over the limit, closed, risk block, bad input) answered on the event
# loop with no worker thread and no database (``apps/orders/placement/eventloop.py``); off: every
# order request goes to a worker thread.
ORDER_EVENT_LOOP = env_bool("ORDER_EVENT_LOOP", True)
# What those refusals do besides the answer (a risk block's record, a closed listing's count, a
# cache read again before it goes stale) runs in a pool of its own, so a bot flood's writes never
# queue ahead of accepted orders; past ORDER_SIDE_EFFECT_BACKLOG waiting, new ones are dropped
# (logged): the answers stand, a blocked attempt goes unrecorded.
ORDER_SIDE_EFFECT_THREADS = int(os.environ.get("ORDER_SIDE_EFFECT_THREADS", "2"))
ORDER_SIDE_EFFECT_BACKLOG = int(os.environ.get("ORDER_SIDE_EFFECT_BACKLOG", "10000"))
# PostgreSQL: orders waiting at the same moment are placed together, one call and one commit per
# batch (``apps/orders/placement/batcher.py``); at most this many per batch.
ORDER_BATCHING = os.environ.get("ORDER_BATCHING", "1") == "1"
# Risk control's hot-path rules (apps/fraud/hotpath.py): one Redis script before the stock gate.
# Off only to measure what they cost (bench/flash_sale --risk off); the scorer runs either way.
FRAUD_RULES = os.environ.get("FRAUD_RULES", "1") == "1"
# Each committed order asks for a scoring burst (apps/fraud/scoring.kick); tests score explicitly.
FRAUD_SCORE_ON_COMMIT = os.environ.get("FRAUD_SCORE_ON_COMMIT", "1") == "1"
# At most this many orders per batch. lc_place_orders v3 writes the hot rows once per batch, so a
# larger batch is cheaper per order (32 against 16: +7-15% orders/s on the flash-sale benchmark);
# v2, which wrote them per order, had been 1.6-3x dearer per order past 16 (docs/performance.md).
# At most 64: each order of a batch is a subtransaction, and PostgreSQL caches 64 of them per
# backend; past that every other session's visibility checks slow down.
ORDER_BATCH_MAX = max(1, min(64, int(os.environ.get("ORDER_BATCH_MAX", "32"))))
ORDER_BATCHERS = int(os.environ.get("ORDER_BATCHERS", "4"))  # batch threads per process (listings spread over them)
# A batcher keeps its database connection this long after its last batch, then hands it back to the
# pool: during a sale the next batch comes within milliseconds, and a checkout per batch cost a
# pool round trip and a health-check query each time. 0: hand it back after every batch that
# leaves the queue empty.
ORDER_BATCHER_IDLE_SECONDS = max(0.0, float(os.environ.get("ORDER_BATCHER_IDLE_SECONDS", "1")))
ORDER_BATCH_TIMEOUT = float(os.environ.get("ORDER_BATCH_TIMEOUT", "30"))  # then an order not yet in a batch is dropped
# An order a batch has already taken is waited for this much longer (its answer is the truth).
ORDER_BATCH_TRUTH_TIMEOUT = float(os.environ.get("ORDER_BATCH_TRUTH_TIMEOUT", "30"))

# Outbound webhooks (apps/webhooks). Private, loopback and plain-http targets are refused unless
# allowed (local.py and the tests allow them: a receiver on 127.0.0.1); see apps/webhooks/targets.py.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "10"))
WEBHOOK_RETRY_WINDOW_SECONDS = int(os.environ.get("WEBHOOK_RETRY_WINDOW_SECONDS", str(24 * 3600)))
# ``stock.low`` is sent when a SKU's available units (on hand - reserved) fall to this or below.
WEBHOOK_STOCK_LOW_THRESHOLD = int(os.environ.get("WEBHOOK_STOCK_LOW_THRESHOLD", "10"))

# Sales platforms, sync out (apps/platforms/stock_sync.py, ship_sync.py). PLATFORM_API_TIMEOUT:
# seconds per platform API call (intake and shipments). PLATFORM_SYNC tunes the stock drain:
# tick (s between passes: at most one call per link per tick), min_interval (s between two pushes
# of one link), linger (s a drain stays for retries falling due), timeout (s per stock call),
# backoff_base / backoff_max (s, exponential), drain_seconds (one task's run), threads (shops
# pushed at once), lease_ms, claim_seconds, sweep_drain_seconds. Missing keys take the defaults.
PLATFORM_API_TIMEOUT = float(os.environ.get("PLATFORM_API_TIMEOUT", "10"))
PLATFORM_SYNC: dict[str, float] = {"tick": 0.25, "min_interval": 0.25, "linger": 5.0, "timeout": 5.0}
# Carrier -> platform company code, merged over ship_sync.DEFAULT_CARRIER_CODES, per platform:
# {"kuaishou": {"SF": "4", ...}, "douyin": {"SF": "shunfeng"}, "taobao": {...}}. Keys are our
# carrier keys (SF, ZTO, YTO, STO, YUNDA, EMS, JD, or any other carrier text upper-cased).
PLATFORM_CARRIER_CODES: dict[str, dict[str, str]] = {}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "apps.core.logging.RequestIdFilter"},
        # Buyers' status-link tokens (``?t=``) never reach a log line (apps/core/logging.py).
        "redact_tokens": {"()": "apps.core.logging.RedactTokenFilter"},
    },
    "formatters": {"json": {"()": "apps.core.logging.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_id", "redact_tokens"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own default config gives "django" a plain-text console handler (under DEBUG) as
        # well as propagating to ours: every warning ("Not Found: /x") printed twice. One handler.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "django-q": {"level": "WARNING"},
    },
}

# --- Back office ----------------------------------------------------------------------------------
# A SKU whose available stock (on hand − reserved) is at or below this is "low" on the home page
# (and in the stock-low webhook event).
LOW_STOCK_THRESHOLD = int(os.environ.get("LOW_STOCK_THRESHOLD", "10"))
# An order-list export of at most this many orders downloads at once; a larger one runs as a
# django-q2 job (ExportJob) with a progress page, its file saved through Django's storage API.
EXPORT_SYNC_MAX_ROWS = int(os.environ.get("EXPORT_SYNC_MAX_ROWS", "2000"))

# --- Fulfilment -----------------------------------------------------------------------------------
# Shipping labels: a batch with LABEL_PARALLEL_FROM parcels or more draws them in LABEL_PROCESSES
# worker processes (1: always in the batch's own process).
LABEL_PROCESSES = int(os.environ.get("LABEL_PROCESSES", "2"))
LABEL_PARALLEL_FROM = int(os.environ.get("LABEL_PARALLEL_FROM", "1000"))

# Sales platforms (apps/platforms): inbox processing is kicked after each stored message (a worker
# task; the minute schedule catches up).
PLATFORM_PROCESS_ON_COMMIT = os.environ.get("PLATFORM_PROCESS_ON_COMMIT", "1") == "1"
# A marked stock change queues a drain task (apps/platforms/stock_sync.queue_drain).
PLATFORM_STOCK_DRAIN_QUEUE = os.environ.get("PLATFORM_STOCK_DRAIN_QUEUE", "1") == "1"
