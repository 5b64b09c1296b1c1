"""Push delivery as a platform does it: POST each message body to the registered push URL, retry
when the answer is not the platform's acknowledgement, log every attempt."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]
    message_ids: list[str]
    attempts: int = 0
    acked: bool = False
    last_status: int | None = None
    last_answer: str = ""
    error: str | None = None


@dataclass
class Pusher:
    """Worker threads delivering queued pushes in order of enqueueing (with ``workers`` > 1 two
    pushes may overtake each other, as on the real platform). ``acked(status, body)`` decides
    whether an answer acknowledges; otherwise the push is sent again up to ``retries`` more times,
    ``retry_delay`` seconds apart."""

    url: str
    acked: Callable[[int, bytes], bool]
    stopping: threading.Event
    spawn: Callable[..., threading.Thread]
    workers: int = 1
    retries: int = 3
    retry_delay: float = 0.2
    timeout: float = 5.0
    log: list[Delivery] = field(default_factory=list)
    _queue: queue.Queue[Delivery | None] = field(default_factory=queue.Queue)
    _pending: int = 0
    _idle: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> None:
        for index in range(self.workers):
            self.spawn(self._work, name=f"sim-pusher-{index}")

    def send(self, body: bytes, headers: Mapping[str, str], message_ids: list[str]) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(Delivery(body, dict(headers), message_ids))

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def stop(self) -> None:
        for _ in range(self.workers):
            self._queue.put(None)

    def summary(self) -> dict[str, Any]:
        with self._idle:
            return {
                "pending": self._pending,
                "delivered": sum(d.acked for d in self.log),
                "failed": sum(not d.acked for d in self.log),
                "attempts": sum(d.attempts for d in self.log),
                "log": [
                    {"message_ids": d.message_ids, "attempts": d.attempts, "acked": d.acked,
                     "last_status": d.last_status, "last_answer": d.last_answer[:200], "error": d.error}
                    for d in self.log[-500:]
                ],
            }  # fmt: skip

    def _work(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while not self.stopping.is_set():
                try:
                    delivery = self._queue.get(timeout=0.2)
                except queue.Empty:
                    continue
                if delivery is None:
                    return
                self._deliver(client, delivery)
                with self._idle:
                    self.log.append(delivery)
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, client: httpx.Client, delivery: Delivery) -> None:
        for attempt in range(1 + self.retries):
            if attempt and self.stopping.wait(self.retry_delay * attempt):
                return
            delivery.attempts += 1
            try:
                response = client.post(self.url, content=delivery.body, headers=delivery.headers)
            except httpx.HTTPError as exc:
                delivery.error = f"{type(exc).__name__}: {exc}"
                continue
            delivery.last_status = response.status_code
            delivery.last_answer = response.text
            delivery.error = None
            if self.acked(response.status_code, response.content):
                delivery.acked = True
                return
