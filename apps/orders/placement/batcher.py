"""Places the orders a process receives together, on PostgreSQL.

A batcher thread takes whatever orders for ONE listing are waiting (up to ``ORDER_BATCH_MAX``)
and places them with one call of ``lc_place_orders`` and one commit. Each order still succeeds
or is refused on its own.

Under a flash sale this turns a line of transactions queueing for the same hot rows (each paying
its own round trip, executor start, lock hand-over and commit) into a few large commits. With
one order waiting, the batch is that order, so nothing is ever delayed to fill a batch. A batch
never mixes listings: two batches then take their hot rows (listing, stock, the merchant's
ledger head) in the same order and cannot deadlock on them. Listings are spread over
``ORDER_BATCHERS`` threads so one listing's lock waits do not hold up another's orders.

An order whose caller stopped waiting (``ORDER_BATCH_TIMEOUT``) is cancelled: a batch that has
not taken it yet skips it, so it is never placed behind the caller's back. Once a batch has
taken it, the caller waits for the batch's answer instead (the truth), up to
``ORDER_BATCH_TRUTH_TIMEOUT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import select
import threading
from collections import deque
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Any

import psycopg
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection

from .pgcall import BATCH_SQL, REFUSED, run_prepared

log = logging.getLogger(__name__)


_RELEASE: dict[str, Any] = {}  # queued by ``Batcher.release``: not an order


def readable(fd: int) -> bool:
    """Whether ``fd`` has something to read now (``poll``: any descriptor number, where ``select``
    refuses those past 1023, which a worker holding many websockets reaches)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class BatchedOrderFailed(DatabaseError):
    """A batched order that ``lc_place_orders`` refused or failed; its message is the reason."""


class BatchTimeout(DatabaseError):
    """The caller stopped waiting and the order was taken out of the queue: nothing was placed."""


class BatchOutcomeUnknown(DatabaseError):
    """A batch took the order and gave no answer in time: it may still commit."""


class Batcher:
    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: queue.Queue[tuple[dict[str, Any], Future]] = queue.Queue()
        self._pending: deque[tuple[dict[str, Any], Future]] = deque()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0
        self.orders = 0
        self.largest = 0
        self.skipped = 0
        self._releases: list[Future] = []  # release() requests met while busy (the thread's own)

    def submit(self, params: dict[str, Any]) -> Future:
        """Queue an order; its future gets the order's row, as ``lc_place_order`` returns it, or
        the error the single call would raise. A caller that gives up on it must ``cancel`` it:
        a batch that has not taken it yet then never will (``place``, ``await_placed``)."""
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                    self._thread.start()
        future: Future = Future()
        self._queue.put((params, future))
        return future

    def place(self, params: dict[str, Any]) -> tuple:
        """The order's row, as ``lc_place_order`` returns it; raises like the single call would,
        or ``BatchTimeout`` (nothing placed) / ``BatchOutcomeUnknown``."""
        future = self.submit(params)
        try:
            return future.result(timeout=settings.ORDER_BATCH_TIMEOUT)
        except FuturesTimeout:
            if future.cancel():  # not taken by a batch yet: it never will be
                raise BatchTimeout("the order batch did not answer in time; nothing was placed") from None
        try:  # a batch has it: its answer is the truth
            return future.result(timeout=settings.ORDER_BATCH_TRUTH_TIMEOUT)
        except (FuturesTimeout, CancelledError):
            raise BatchOutcomeUnknown("the order batch did not answer; the order may still be placed") from None

    def _next_batch(self) -> list[tuple[dict[str, Any], Future]]:
        while True:
            if not self._pending:
                self._pending.append(self._wait_for_order())
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item[0] is _RELEASE:  # busy: settled after this batch
                    self._releases.append(item[1])
                    continue
                self._pending.append(item)
            listing = self._pending[0][0]["listing"]
            batch: list[tuple[dict[str, Any], Future]] = []
            rest: deque[tuple[dict[str, Any], Future]] = deque()
            for item in self._pending:
                if item[0]["listing"] == listing and len(batch) < settings.ORDER_BATCH_MAX:
                    if item[1].set_running_or_notify_cancel():
                        batch.append(item)
                    else:  # its caller gave up before we got to it
                        self.skipped += 1
                else:
                    rest.append(item)
            self._pending = rest
            if batch:
                return batch

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            self._drop_if_closed_by_server()
            try:
                rows = self._execute([params for params, _ in batch])
                self.batches += 1
                self.orders += len(batch)
                self.largest = max(self.largest, len(batch))
                for (_, future), row in zip(batch, rows, strict=True):
                    refused = row[1]
                    if refused is None:
                        future.set_result(row[2:])
                    elif refused == REFUSED + "duplicate":
                        future.set_exception(IntegrityError("duplicate Idempotency-Key or public id"))
                    else:
                        future.set_exception(BatchedOrderFailed(refused))
            except Exception as exc:  # noqa: BLE001 - every order not yet answered gets the error
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                self._close_connection()  # a broken connection must not serve the next batch
            if self._releases:
                self._let_go()

    def _wait_for_order(self) -> tuple[dict[str, Any], Future]:
        """The next order. The connection is kept for ``ORDER_BATCHER_IDLE_SECONDS`` (during a
        sale the next batch comes within milliseconds: no pool checkout and health check per
        batch); past that, or when ``release`` asks, it goes back to the pool before the wait goes
        on, so an idle batcher never sits on a connection that may have died meanwhile (the next
        checkout checks it)."""
        idle = settings.ORDER_BATCHER_IDLE_SECONDS
        try:
            item = self._queue.get(timeout=idle) if idle > 0 else self._queue.get_nowait()
        except queue.Empty:
            item = None
        while item is None or item[0] is _RELEASE:
            if item is not None:
                self._releases.append(item[1])
            self._let_go()
            item = self._queue.get()
        return item

    def _let_go(self) -> None:
        """Hand the connection back to the pool and settle the releases asked for."""
        self._close_connection()
        releases, self._releases = self._releases, []
        for future in releases:
            if future.set_running_or_notify_cancel():
                future.set_result(None)

    def release(self) -> Future:
        """Ask the thread to hand its connection back to the pool: now if it is waiting for
        orders, else after its current batch (a test database about to be dropped); the future is
        done once it has."""
        future: Future = Future()
        if self._thread is None or not self._thread.is_alive():
            future.set_result(None)
        else:
            self._queue.put((_RELEASE, future))
        return future

    @classmethod
    def _drop_if_closed_by_server(cls) -> None:
        """A connection kept between batches that the server has closed meanwhile (a restart, a
        terminated backend) has something to read: its last words, or the end of the stream. It
        goes back to the pool, whose checkout checks it, instead of failing the batch. One
        non-blocking ``poll``, no round trip (a healthy idle connection has nothing to read:
        psycopg reads every reply up to ReadyForQuery, and nothing here LISTENs)."""
        conn = connection.connection
        if conn is None:
            return
        try:
            fd = conn.fileno()
        except (OSError, psycopg.Error):  # already closed
            fd = -1
        if fd < 0 or readable(fd):
            cls._close_connection()

    @staticmethod
    def _close_connection() -> None:
        try:
            connection.close()
        except Exception:  # noqa: BLE001 - the next batch opens a fresh one
            log.warning("closing the batcher's connection failed", exc_info=True)

    @staticmethod
    def _execute(orders: list[dict[str, Any]]) -> list[tuple]:
        items = [{**o, "now": o["now"].isoformat()} for o in orders]
        rows = run_prepared(BATCH_SQL, [json.dumps(items, ensure_ascii=False)])
        if len(rows) != len(orders):
            raise DatabaseError(f"lc_place_orders answered {len(rows)} rows for {len(orders)} orders")
        return rows


async def await_placed(future: Future) -> tuple:
    """``Batcher.place`` for a caller on an event loop: the order's row, awaited without blocking
    the loop, with the same deadlines (``ORDER_BATCH_TIMEOUT``: not taken yet, then cancelled and
    ``BatchTimeout``; taken: its answer awaited up to ``ORDER_BATCH_TRUTH_TIMEOUT``, else
    ``BatchOutcomeUnknown``). The batcher thread wakes the loop once, when the answer is there."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(_: Future) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            loop.call_soon_threadsafe(_settle, waiter)

    future.add_done_callback(wake)
    try:
        await asyncio.wait_for(asyncio.shield(waiter), settings.ORDER_BATCH_TIMEOUT)
    except TimeoutError:
        if future.cancel():  # not taken by a batch yet: it never will be
            raise BatchTimeout("the order batch did not answer in time; nothing was placed") from None
        try:  # a batch has it: its answer is the truth
            await asyncio.wait_for(asyncio.shield(waiter), settings.ORDER_BATCH_TRUTH_TIMEOUT)
        except TimeoutError:
            raise BatchOutcomeUnknown("the order batch did not answer; the order may still be placed") from None
    return future.result()


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


_batchers: list[Batcher] = []
_batchers_lock = threading.Lock()


def batchers() -> list[Batcher]:
    """This process's batchers (``ORDER_BATCHERS`` of them), made on first use."""
    if not _batchers:
        with _batchers_lock:
            if not _batchers:
                _batchers.extend(Batcher(f"lc-order-batcher-{i}") for i in range(max(1, settings.ORDER_BATCHERS)))
    return _batchers


def release_connections(timeout: float = 10.0) -> None:
    """Every started batcher hands its database connection back to the pool (waits for each)."""
    with _batchers_lock:
        started = list(_batchers)
    for future in [b.release() for b in started]:
        future.result(timeout=timeout)


def batcher_for(listing_id: int) -> Batcher:
    pool = batchers()
    return pool[listing_id % len(pool)]
