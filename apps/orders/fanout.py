"""Process-local fan-out for groups with big audiences (a listing's stock: every storefront viewer).

Channels delivers a group message to each consumer separately: a queue per consumer, a decode per
consumer, a task switch and a JSON encode per consumer, and every consumer becomes runnable at
once, so anything else the process has to do (a buyer's own order update) waits behind the whole
fan-out. Here one reader per group and process receives the message once, encodes it once and
writes it to the local subscribers in chunks, yielding to the event loop between chunks.

A subscriber is *pending* from ``subscribe`` until ``ready``: pushes meanwhile are kept and sent
after its snapshot, so the snapshot still comes first and nothing published in between is lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import Any

from channels.layers import get_channel_layer

log = logging.getLogger(__name__)
CHUNK = 50  # sends between yields: a few ms of work at most


class _Feed:
    def __init__(self, group: str) -> None:
        self.group = group
        self.subscribers: dict[Any, list[str] | None] = {}  # consumer -> pending texts, or None when ready
        self.channel = ""
        self.task: asyncio.Task | None = None
        self.started = asyncio.Event()

    async def start(self) -> None:
        layer = get_channel_layer()
        self.channel = await layer.new_channel(prefix="fanout.")
        await layer.group_add(self.group, self.channel)
        self.task = asyncio.ensure_future(self._run(layer))
        self.started.set()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()  # the layer unsubscribes the channel on cancel
        await get_channel_layer().group_discard(self.group, self.channel)

    async def _run(self, layer: Any) -> None:
        while True:
            message = await layer.receive(self.channel)
            try:
                text = json.dumps(message["payload"], ensure_ascii=False, separators=(",", ":"))
            except (KeyError, TypeError, ValueError):
                log.warning("fan-out message without a JSON payload", extra={"group": self.group})
                continue
            for i, (consumer, pending) in enumerate(list(self.subscribers.items())):
                if pending is not None:
                    pending.append(text)
                    continue
                try:
                    await consumer.send(text_data=text)
                except Exception:  # noqa: BLE001 - a socket closing under us: its disconnect unsubscribes it
                    log.debug("fan-out send failed", exc_info=True)
                if i % CHUNK == CHUNK - 1:
                    await asyncio.sleep(0)


_feeds: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Feed]] = weakref.WeakKeyDictionary()


def _loop_feeds() -> dict[str, _Feed]:
    loop = asyncio.get_running_loop()
    feeds = _feeds.get(loop)
    if feeds is None:
        feeds = _feeds[loop] = {}
    return feeds


async def subscribe(group: str, consumer: Any) -> None:
    """Join ``group`` as pending; call ``ready`` once the consumer has sent its snapshot."""
    feeds = _loop_feeds()
    feed = feeds.get(group)
    if feed is None:
        feed = feeds[group] = _Feed(group)
        feed.subscribers[consumer] = []
        try:
            await feed.start()
        except BaseException:
            feeds.pop(group, None)
            raise
    else:
        feed.subscribers[consumer] = []
        await asyncio.wait_for(feed.started.wait(), 10)


async def ready(group: str, consumer: Any) -> None:
    """Send what arrived while the snapshot was read, then receive pushes as they come."""
    feed = _loop_feeds().get(group)
    if feed is None:
        return
    pending = feed.subscribers.get(consumer)
    while pending:  # in order; pushes arriving meanwhile join the same list
        await consumer.send(text_data=pending.pop(0))
    if consumer in feed.subscribers:
        feed.subscribers[consumer] = None


async def unsubscribe(group: str, consumer: Any) -> None:
    feeds = _loop_feeds()
    feed = feeds.get(group)
    if feed is None:
        return
    feed.subscribers.pop(consumer, None)
    if not feed.subscribers:
        del feeds[group]
        await feed.stop()
