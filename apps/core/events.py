"""Publishing to websocket groups, after commit, off the request thread.

``publish`` hands a message to one background thread per process that owns a long-lived event
loop and the channel layer's connections, so a request never waits on a group send and no
event loop is created per message. Messages keep their order. ``flush`` waits until everything
queued so far was sent (tests, shutdown).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import Any

from django.db import transaction

log = logging.getLogger(__name__)


class _Publisher:
    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | threading.Event] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="lc-publisher", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        while True:
            # Everything queued so far goes out in one pass of the loop, in order.
            batch = [self._queue.get()]
            while len(batch) < 256:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            loop.run_until_complete(self._send(layer, batch))

    @staticmethod
    async def _send(layer: Any, batch: list[tuple[str, dict[str, Any]] | threading.Event]) -> None:
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

    def publish(self, group: str, message: dict[str, Any]) -> None:
        self._ensure()
        self._queue.put((group, message))

    def flush(self, timeout: float = 5.0) -> bool:
        self._ensure()
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)


_publisher = _Publisher()


def publish(group: str, payload: dict[str, Any]) -> None:
    """Send ``payload`` (JSON-safe, with ``type`` and ``version``) to every member of ``group``."""
    _publisher.publish(group, {"type": "broadcast", "payload": payload})


def publish_on_commit(group: str, payload: dict[str, Any]) -> None:
    transaction.on_commit(lambda: publish(group, payload))


def flush(timeout: float = 5.0) -> bool:
    return _publisher.flush(timeout)


# --- coalescing ------------------------------------------------------------------------------------
_pending: set[str] = set()
_pending_lock = threading.Lock()


def coalesced(key: str, delay_ms: int, push: Any, *args: Any) -> None:
    """Run ``push(*args)`` once ``delay_ms`` from now for any number of calls in that window.

    Within a process a pending timer absorbs further calls without asking Redis; across
    processes a short Redis token (SET NX PX) does. ``push`` reads the state when it runs, so the
    last value always arrives: a call after the timer took itself off the pending set (or after
    the Redis token expired) schedules the next push.
    """
    with _pending_lock:
        if key in _pending:
            return
        _pending.add(key)
    from .redis import get_client

    try:
        first = get_client().set(f"lc:push:{{{key}}}", "1", nx=True, px=delay_ms)
    except Exception:  # noqa: BLE001 - without Redis, push from this process
        first = True
    if not first:
        with _pending_lock:
            _pending.discard(key)
        return

    def fire() -> None:
        with _pending_lock:
            _pending.discard(key)
        push(*args)

    timer = threading.Timer(delay_ms / 1000, fire)
    timer.daemon = True
    timer.start()
