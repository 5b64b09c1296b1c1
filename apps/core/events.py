"""Publishing to websocket groups, after commit, off the request thread.

``publish`` hands a message to one background thread per process, so a request never waits on a
group send. The thread sends whatever is queued as one batch (one Redis pipeline with the
pub/sub layer), in order. ``run_script_soon`` hands it a Lua script call the same way (the
platform stock sync's mark of each order): the calls queued meanwhile go to Redis in one round
trip, the same call queued twice runs once. ``flush`` waits until everything queued so far was
sent (tests, shutdown, a stock drain).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings

from .redis import LuaScript, get_client, run_together

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Script:
    """A script call for the publisher thread, and what to do with its reply there."""

    script: LuaScript
    keys: tuple[str, ...]
    args: tuple[Any, ...]
    then: Callable[[Any], None] | None


class _Publisher:
    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | threading.Event | _Script] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._at_exit = False

    def _ensure(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="lc-publisher", daemon=True)
                    self._thread.start()
                    if not self._at_exit:  # what is queued (stock marks too) leaves before the process
                        atexit.register(self.flush, 2.0)
                        self._at_exit = True

    def _run(self) -> None:
        send = _sender()
        while True:
            # Everything queued so far goes out together, in order.
            batch = [self._queue.get()]
            while len(batch) < 256:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            scripts = [item for item in batch if isinstance(item, _Script)]
            if scripts:
                _run_scripts(scripts)
                batch = [item for item in batch if not isinstance(item, _Script)]
            send(batch)

    def publish(self, group: str, message: dict[str, Any]) -> None:
        self._ensure()
        self._queue.put((group, message))

    def run_script(self, call: _Script) -> None:
        self._ensure()
        self._queue.put(call)

    def flush(self, timeout: float = 5.0) -> bool:
        if self._thread is None:  # nothing was ever queued in this process (a drain's worker)
            return True
        if threading.current_thread() is self._thread:  # asked from a follow-up: it would wait on itself
            return False
        self._ensure()
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)


Batch = list[tuple[str, dict[str, Any]] | threading.Event]  # what _sender sends (scripts run before)


def _run_scripts(calls: list[_Script]) -> None:
    """The script calls of one batch in one round trip (each distinct call once), then each
    reply to its ``then``; a failure is logged (their callers' sweeps repair what is lost)."""
    unique = list(dict.fromkeys(calls))  # frozen dataclasses: equal calls are one
    try:
        replies = run_together([(c.script, list(c.keys), list(c.args)) for c in unique], get_client())
    except Exception:  # noqa: BLE001 - Redis may vanish: the callers' sweeps catch up
        log.warning("deferred redis scripts failed", extra={"calls": len(unique)}, exc_info=True)
        return
    for call, reply in zip(unique, replies, strict=True):
        if isinstance(reply, BaseException):
            log.warning("a deferred redis script failed: %s", reply, extra={"script": call.script.path.name})
            continue
        if call.then is not None:
            try:
                call.then(reply)
            except Exception:  # noqa: BLE001 - one caller's follow-up, not the batch
                log.warning("a deferred redis script's follow-up failed", exc_info=True)


def _sender() -> Any:
    """How a batch goes out. With channels_redis's pub/sub layer on one Redis (our setup) the
    batch is one pipeline of PUBLISH commands from a plain Redis client, exactly what the
    layer's ``group_send`` would publish (its serializer, its group channel name) at a fraction of
    the cost of one asyncio round trip per message. Any other layer gets ``group_send``."""
    from channels.layers import get_channel_layer
    from channels_redis.pubsub import RedisPubSubChannelLayer

    layer = get_channel_layer()
    layers: dict[str, dict[str, Any]] = settings.CHANNEL_LAYERS
    config: dict[str, Any] = layers.get("default", {}).get("CONFIG", {})
    hosts = config.get("hosts") or []
    host = hosts[0] if len(hosts) == 1 else None
    address = host.get("address") if isinstance(host, dict) else host
    if isinstance(layer, RedisPubSubChannelLayer) and isinstance(address, str):
        prefix = config.get("prefix", "asgi")
        client = redis.Redis.from_url(address, health_check_interval=30)

        def publish_batch(batch: Batch) -> None:
            try:
                pipe = client.pipeline(transaction=False)
                for item in batch:
                    if not isinstance(item, threading.Event):
                        group, message = item
                        try:
                            data = layer.serialize(message)
                        except Exception:  # noqa: BLE001 - drop this message, not the batch
                            log.warning("websocket message not serializable", extra={"group": group}, exc_info=True)
                            continue
                        pipe.publish(group_channel(prefix, group), data)
                pipe.execute()
            except Exception:  # noqa: BLE001 - a lost push is recovered by the client's snapshot
                log.warning("websocket publish failed", extra={"messages": len(batch)}, exc_info=True)
            finally:
                for item in batch:
                    if isinstance(item, threading.Event):
                        item.set()

        return publish_batch

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    async def group_send_all(batch: Batch) -> None:
        for item in batch:
            if isinstance(item, threading.Event):
                item.set()
                continue
            group, message = item
            try:
                if layer is not None:
                    await layer.group_send(group, message)
            except Exception:  # noqa: BLE001 - a lost push is recovered by the client's snapshot
                log.warning("websocket publish failed", extra={"group": group}, exc_info=True)

    return lambda batch: loop.run_until_complete(group_send_all(batch))


def group_channel(prefix: str, group: str) -> str:
    """The Redis channel channels_redis's pub/sub layer uses for a group
    (``RedisPubSubLoopLayer._get_group_channel_name``); ``tests/realtime`` holds us to it."""
    return f"{prefix}__group__{group}"


_publisher = _Publisher()


def publish(group: str, payload: dict[str, Any]) -> None:
    """Send ``payload`` (JSON-safe, with ``type`` and ``version``) to every member of ``group``."""
    _publisher.publish(group, {"type": "broadcast", "payload": payload})


def run_script_soon(
    script: LuaScript, keys: list[str], args: list[Any], then: Callable[[Any], None] | None = None
) -> None:
    """Run ``script`` in the publisher thread, in one round trip with the other calls queued
    meanwhile; ``then(reply)`` runs there after it (never raises; a failure is logged). For
    effects a later sweep repairs if this process dies first: nothing waits for it."""
    _publisher.run_script(_Script(script, tuple(keys), tuple(args), then))


def flush(timeout: float = 5.0) -> bool:
    return _publisher.flush(timeout)


# --- coalescing ------------------------------------------------------------------------------------
PUSH_THREAD_PREFIX = "lc-push:"
_pending: set[str] = set()
_quiet_until: dict[str, float] = {}  # key -> monotonic time until which another process's push covers a call
_pending_lock = threading.Lock()


def coalesced(key: str, delay_ms: int, push: Any, *args: Any) -> None:
    """Run ``push(*args)`` once ``delay_ms`` from now for any number of calls in that window.

    Within a process a pending timer absorbs further calls without asking Redis; across
    processes a short Redis token (SET NX PX) does. ``push`` reads the state when it runs, so the
    last value always arrives: a call after the timer took itself off the pending set (or after
    the Redis token expired) schedules the next push.

    A call that finds another process's token learns how long it lives (PTTL, same round trip)
    and absorbs this process's further calls until then without asking Redis again: that
    process's timer started after its token, so its push runs after the token expires and reads
    every change made before. (Asking Redis on every call while another process held the token
    cost a round trip per order in a flash sale.)
    """
    now = time.monotonic()
    with _pending_lock:
        if key in _pending or _quiet_until.get(key, 0.0) > now:
            return
        _pending.add(key)
    token = f"lc:push:{{{key}}}"
    try:
        pipe = get_client().pipeline(transaction=False)
        pipe.set(token, "1", nx=True, px=delay_ms)
        pipe.pttl(token)
        first, ttl_ms = pipe.execute()
    except Exception:  # noqa: BLE001 - without Redis, push from this process
        first, ttl_ms = True, 0
    if not first:
        with _pending_lock:
            _pending.discard(key)
            if ttl_ms > 2:  # -2: no TTL; -1 cannot be (the token is set with PX)
                # From ``now``, before the question: the token expires no earlier than this.
                # Less 2 ms for PTTL's rounding.
                if len(_quiet_until) > 1000:  # one per listing or show seen: drop the past ones
                    for k in [k for k, t in _quiet_until.items() if t <= now]:
                        del _quiet_until[k]
                _quiet_until[key] = now + (ttl_ms - 2) / 1000
        return

    def fire() -> None:
        with _pending_lock:
            _pending.discard(key)
        push(*args)

    timer = threading.Timer(delay_ms / 1000, fire)
    timer.name = f"{PUSH_THREAD_PREFIX}{key}"  # told apart in a thread dump (and by tests)
    timer.daemon = True
    timer.start()
