"""One place for Redis: the client (standalone or cluster) and Lua script loading.

The gate's key names live with the gate (``apps.orders.placement.gate.keys``).
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from redis.cluster import RedisCluster
from redis.commands.core import Script

_lock = threading.Lock()
_clients: dict[str, Any] = {}


def get_client() -> Any:
    """A shared, thread-safe client for ``settings.REDIS_URL`` (a cluster client if REDIS_CLUSTER)."""
    url = settings.REDIS_URL
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
        if len(keys) not in self.numkeys:
            raise ValueError(f"{self.path.name} takes {' or '.join(map(str, self.numkeys))} keys, got {len(keys)}")
        client = client or get_client()
        script = self._scripts.get(id(client))
        if script is None:
            script = client.register_script(_script_source(str(self.path)))
            self._scripts[id(client)] = script
        # redis-py's Script handles NOSCRIPT by loading the source and retrying.
        return script(keys=keys, args=args, client=client)


def is_redis_error(exc: BaseException) -> bool:
    return isinstance(exc, redis.RedisError | OSError)
