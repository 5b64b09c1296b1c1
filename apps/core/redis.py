"""One place for Redis: the client (standalone or cluster) and Lua script loading.

The gate's key names live with the gate (``apps.orders.placement.gate.keys``).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import weakref
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from .redis_wire import PipelinedRedis

_lock = threading.Lock()
_clients: dict[str, Any] = {}


class RedisNotConfigured(ImproperlyConfigured):
    """``REDIS_URL`` is empty: the laptop settings found no running ./run and no REDIS_URL."""

    def __init__(self) -> None:
        super().__init__(
            "No Redis to use: livecommerce is not running from this checkout "
            f"({settings.VAR_DIR / 'run.json'} is missing, or its ./run has stopped) and REDIS_URL is not "
            "set. Start it with ./run in another terminal (commands then use its embedded Valkey and "
            "database), or point the command at servers: REDIS_URL=redis://HOST:6379/0 "
            "DATABASE_URL=postgres://USER@HOST/DB python manage.py ..."
        )


class RedisUnreachable(ImproperlyConfigured):
    pass


def require_redis() -> None:
    """Fail fast, before any work, when there is no Redis to use or it does not answer (for
    management commands: the message says how to point them). Raises ``RedisNotConfigured`` or
    ``RedisUnreachable``."""
    client = get_client()
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        where = re.sub(r"//[^@/]*@", "//", settings.REDIS_URL)  # no password in the message
        raise RedisUnreachable(
            f"Redis at {where} does not answer ({exc}). Is ./run (or that server) still running? "
            "Set REDIS_URL to the Redis the system uses."
        ) from exc


def get_client() -> Any:
    """A shared, thread-safe client for ``settings.REDIS_URL`` (a cluster client if REDIS_CLUSTER).
    Raises ``RedisNotConfigured`` when ``REDIS_URL`` is empty (see livecommerce/settings/local.py)."""
    url = settings.REDIS_URL
    if not url:
        raise RedisNotConfigured()
    key = f"{url}|{settings.REDIS_CLUSTER}"
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                if settings.REDIS_CLUSTER:
                    client = RedisCluster.from_url(url, decode_responses=True)
                else:
                    client = redis.Redis.from_url(
                        url, decode_responses=True, health_check_interval=30, max_connections=512
                    )
                _clients[key] = client
    return client


def reset_clients() -> None:
    with _lock:
        for c in _clients.values():
            try:
                c.close()
            except Exception:  # noqa: BLE001 - best effort on shutdown
                pass
        _clients.clear()


_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, PipelinedRedis]] = (
    weakref.WeakKeyDictionary()
)


def get_async_client() -> PipelinedRedis | None:
    """This event loop's client for ``settings.REDIS_URL``: one pipelined connection shared by the
    loop's requests (``apps.core.redis_wire``), made on first use; None when there is none to make
    (no ``REDIS_URL``, or a cluster: the caller goes the sync way)."""
    url = settings.REDIS_URL
    if not url or settings.REDIS_CLUSTER:
        return None
    loop = asyncio.get_running_loop()
    per_loop = _async_clients.get(loop)
    if per_loop is None:
        per_loop = _async_clients[loop] = {}
    client = per_loop.get(url)
    if client is None:
        client = per_loop[url] = PipelinedRedis(url, connect_timeout=2, timeout=5)
    return client


async def close_async_client() -> None:
    """Close this event loop's clients (a loop that ends: tests, shutdown)."""
    per_loop = _async_clients.pop(asyncio.get_running_loop(), None) or {}
    for client in per_loop.values():
        await client.aclose()


@cache
def _script_source(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


class LuaScript:
    """A ``.lua`` file called by SHA (EVALSHA), re-loaded on NOSCRIPT (a restarted Redis)."""

    def __init__(self, path: Path, numkeys: int | tuple[int, ...]) -> None:
        self.path = path
        self.numkeys = (numkeys,) if isinstance(numkeys, int) else numkeys
        self._scripts: dict[int, Script] = {}

    def __call__(self, keys: list[str], args: list[Any], client: Any | None = None) -> Any:
        self.check_keys(keys)
        client = client or get_client()
        # redis-py's Script handles NOSCRIPT by loading the source and retrying.
        return self.script_for(client)(keys=keys, args=args, client=client)

    @property
    def source(self) -> str:
        return _script_source(str(self.path))

    @cached_property
    def sha(self) -> str:
        """The SHA1 Redis knows the script by (EVALSHA)."""
        return _script_sha(str(self.path))

    def check_keys(self, keys: list[str]) -> None:
        if len(keys) not in self.numkeys:
            raise ValueError(f"{self.path.name} takes {' or '.join(map(str, self.numkeys))} keys, got {len(keys)}")

    def script_for(self, client: Any) -> Script:
        script = self._scripts.get(id(client))
        if script is None:
            script = client.register_script(_script_source(str(self.path)))
            self._scripts[id(client)] = script
        return script


@cache
def _script_sha(path: str) -> str:
    return hashlib.sha1(_script_source(path).encode(), usedforsecurity=False).hexdigest()


ScriptCall = tuple[LuaScript, list[str], list[Any]]
"""A script, its keys and its arguments: one call of :func:`run_together`."""


def run_together(calls: list[ScriptCall], client: Any | None = None) -> list[Any]:
    """Run scripts in one round trip (a pipeline without MULTI: each script is atomic on its own,
    they run in order, and their keys may lie in different slots). Returns each call's reply, or
    the error it raised as an exception instance (a script's own error; a script Redis has
    forgotten, after a restart, is loaded and run again alone). A connection failure raises for
    all of them. Unlike redis-py's pipelined ``Script``, no ``SCRIPT EXISTS``
    round trip precedes the calls. On Redis Cluster the scripts run one after the other."""
    client = client or get_client()
    for script, keys, _args in calls:
        script.check_keys(keys)
    if isinstance(client, RedisCluster):
        # A cluster pipeline refuses EVALSHA, and keys in different slots are on different nodes
        # anyway: one call after the other, each reply or error kept as in the pipeline.
        out: list[Any] = []
        for script, keys, args in calls:
            try:
                out.append(script(keys, args, client=client))
            except redis.ResponseError as exc:
                out.append(exc)
        return out
    pipe = client.pipeline(transaction=False)
    for script, keys, args in calls:
        pipe.evalsha(script.script_for(client).sha, len(keys), *keys, *args)
    replies = pipe.execute(raise_on_error=False)
    out = []
    for (script, keys, args), reply in zip(calls, replies, strict=True):
        if isinstance(reply, NoScriptError):
            try:
                reply = script(keys, args, client=client)
            except redis.RedisError as exc:
                reply = exc
        out.append(reply)
    return out


async def run_together_async(calls: list[ScriptCall], client: PipelinedRedis) -> list[Any]:
    """:func:`run_together` on an event loop, through its pipelined client (``get_async_client``):
    the scripts by SHA in one write; a script Redis has forgotten is loaded and run again. Returns
    each call's reply or the error it raised; a connection failure raises for all of them."""
    for script, keys, _args in calls:
        script.check_keys(keys)
    return await client.run_scripts(calls)


def is_redis_error(exc: BaseException) -> bool:
    return isinstance(exc, redis.RedisError | OSError)
