"""One pipelined Redis connection per event loop, for the order path's refusals (issue 15).

Every request a worker's event loop answers asks Redis one question (the gate's script, with risk
control's beside it). ``redis.asyncio`` spends most of that answer's CPU around the call: a pool
checkout under a lock, ``asyncio.wait_for`` per read, the retry wrapper, packing in Python (about
160 µs of a ~190 µs answer on this machine, ``docs/performance.md``). Here every request of the
loop shares ONE connection, as Redis's protocol allows: commands are packed by hiredis and written
at once, Redis answers in the order it was asked, and hiredis's reader hands each reply to the
future waiting for it. Many requests in flight cost Redis one read and one write for all of them.

What it does not do, on purpose: no RESP3, no pub/sub, no transactions — EVALSHA, SCRIPT LOAD and
the connection's own AUTH/SELECT only. ``apps.core.redis.get_async_client`` returns it;
``run_together_async`` calls :meth:`PipelinedRedis.run_scripts`.

Failures: a connection that closes, a protocol error, or a reply later than ``timeout`` fails
every question in flight with ``redis.ConnectionError`` / ``redis.TimeoutError`` (the caller's
``is_redis_error``: a worker thread decides, the database alone when Redis is gone) and the next
question opens a new connection. A script's own error comes back as a ``redis.ResponseError``
instance in its place, as ``run_together`` returns it.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
import redis
from redis.connection import SSLConnection, UnixDomainSocketConnection, parse_url

Command = Sequence[str | bytes | int | float]


class _Wire(asyncio.Protocol):
    """The connection: what was asked, in order, and the futures waiting for the replies."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader(encoding="utf-8", replyError=redis.ResponseError)
        self.waiting: deque[tuple[float, asyncio.Future[Any]]] = deque()
        self.transport: asyncio.Transport | None = None
        self.outbox: list[bytes] = []
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        reader, waiting = self.reader, self.waiting
        reader.feed(data)
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                self.fail(redis.ConnectionError(f"redis protocol error: {exc}"))
                return
            if reply is False:
                return
            if not waiting:  # a reply nobody asked for: the stream cannot be trusted
                self.fail(redis.ConnectionError("redis sent a reply nobody asked for"))
                return
            _sent, future = waiting.popleft()
            if not future.done():  # its asker may have gone (cancelled); the reply is spent
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(redis.ConnectionError(f"redis connection lost: {exc}" if exc else "redis connection closed"))

    def fail(self, exc: Exception) -> None:
        """Close the connection and fail everything in flight with ``exc``."""
        if self.transport is not None:
            self.transport.close()
        while self.waiting:
            _sent, future = self.waiting.popleft()
            if not future.done():
                future.set_exception(exc)
        if not self.closed.done():
            self.closed.set_result(None)

    @property
    def usable(self) -> bool:
        return not self.closed.done() and self.transport is not None and not self.transport.is_closing()

    def ask(self, packed: bytes, n: int) -> list[asyncio.Future[Any]]:
        """Queue ``packed`` (``n`` commands) for this loop iteration's one write; a future per
        reply. The requests a loop iteration serves share the write (one syscall for all)."""
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        futures = [loop.create_future() for _ in range(n)]
        self.waiting.extend([(now, f) for f in futures])
        if not self.outbox:
            loop.call_soon(self.flush)
        self.outbox.append(packed)
        return futures

    def flush(self) -> None:
        out, self.outbox = self.outbox, []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(out)


class PipelinedRedis:
    """A client of one Redis (``url``, as ``REDIS_URL``: ``redis://``, ``rediss://``, ``unix://``)
    for one event loop: one connection, pipelined; opened on first use and again after a failure."""

    def __init__(self, url: str, *, connect_timeout: float = 2.0, timeout: float = 5.0) -> None:
        self.options = parse_url(url)
        self.connect_timeout, self.timeout = connect_timeout, timeout
        self._wire: _Wire | None = None
        self._opening: asyncio.Future[_Wire] | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    # --- the connection ----------------------------------------------------------------------
    async def _connection(self) -> _Wire:
        wire = self._wire
        if wire is not None and wire.usable:
            return wire
        if self._opening is None:  # one opening for all the requests that find no connection
            self._opening = asyncio.ensure_future(self._open())
            self._opening.add_done_callback(self._opened)
        return await asyncio.shield(self._opening)

    def _opened(self, opening: asyncio.Future[_Wire]) -> None:
        self._opening = None
        if not opening.cancelled() and opening.exception() is None:
            self._arm_watchdog()

    async def _open(self) -> _Wire:
        loop = asyncio.get_running_loop()
        o = self.options
        try:
            if o.get("connection_class") is UnixDomainSocketConnection:
                connect = loop.create_unix_connection(_Wire, o["path"])
            else:
                context = None
                if o.get("connection_class") is SSLConnection:
                    context = ssl_module.create_default_context()
                connect = loop.create_connection(_Wire, o.get("host", "localhost"), o.get("port", 6379), ssl=context)
            _transport, wire = await asyncio.wait_for(connect, self.connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise redis.ConnectionError(f"cannot connect to redis: {exc}") from exc
        hello: list[Command] = []
        if o.get("password"):
            hello.append(("AUTH", o["username"], o["password"]) if o.get("username") else ("AUTH", o["password"]))
        if o.get("db"):
            hello.append(("SELECT", o["db"]))
        if hello:
            for reply in await self._send(wire, hello):
                if isinstance(reply, BaseException):
                    wire.fail(redis.ConnectionError(f"redis refused the connection: {reply}"))
                    raise redis.ConnectionError(f"redis refused the connection: {reply}")
        self._wire = wire
        return wire

    def _arm_watchdog(self) -> None:
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().call_later(self.timeout / 2, self._watch)

    def _watch(self) -> None:
        """Every ``timeout / 2``: a reply older than ``timeout`` fails the connection."""
        self._watchdog = None
        wire = self._wire
        if wire is None or not wire.usable:
            return
        if wire.waiting and wire.waiting[0][0] < time.monotonic() - self.timeout:
            wire.fail(redis.TimeoutError(f"redis did not answer within {self.timeout:g} s"))
            return
        self._arm_watchdog()

    async def _send(self, wire: _Wire, commands: Sequence[Command]) -> list[Any]:
        pack: Callable[[tuple[Any, ...]], bytes] = hiredis.pack_command  # (its stub says a 1-tuple)
        packed = pack(tuple(commands[0])) if len(commands) == 1 else b"".join([pack(tuple(c)) for c in commands])
        futures = wire.ask(packed, len(commands))
        return [await f for f in futures]  # replies come in order: the last awaits the longest

    # --- questions -----------------------------------------------------------------------------
    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """Send ``commands`` at once; each reply, or a ``redis.ResponseError`` instance in its
        place. Raises ``redis.ConnectionError`` / ``redis.TimeoutError`` for all of them."""
        return await self._send(await self._connection(), commands)

    async def run_scripts(self, calls: Sequence[tuple[Any, Sequence[Any], Sequence[Any]]]) -> list[Any]:
        """``apps.core.redis.run_together_async`` on this connection: each (``LuaScript``, keys,
        args) by SHA, in one write; a script Redis has forgotten is loaded and run again."""
        replies = await self.execute([("EVALSHA", s.sha, len(keys), *keys, *args) for s, keys, args in calls])
        for i, ((script, keys, args), reply) in enumerate(zip(calls, replies, strict=True)):
            if isinstance(reply, redis.ResponseError) and str(reply).startswith("NOSCRIPT"):
                _loaded, again = await self.execute(
                    [("SCRIPT", "LOAD", script.source), ("EVALSHA", script.sha, len(keys), *keys, *args)]
                )
                replies[i] = again
        return replies

    async def aclose(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._opening is not None:
            self._opening.cancel()
        if self._wire is not None:
            self._wire.fail(redis.ConnectionError("redis client closed"))
            self._wire = None
