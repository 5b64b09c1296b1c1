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

Failures: a connection that closes, a protocol error, or a reply later than ``timeout`` (each
connection's own watchdog, armed from the moment it connects, so AUTH and SELECT are covered too)
fails every question in flight with ``redis.ConnectionError`` / ``redis.TimeoutError`` (the
caller's ``is_redis_error``: a worker thread decides, the database alone when Redis is gone), and
the next question opens a new connection. A question is never left waiting on a connection that
has gone: asking a closed one raises, and a write that finds it closing fails it. A script's own
error comes back as a ``redis.ResponseError`` instance in its place, as ``run_together`` returns
it; so does a reply that is not UTF-8 (the stream stays aligned). The watchdog runs on the loop:
a loop stalled for longer than ``timeout`` may fail a healthy connection, which then reconnects.
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
    """The connection: what was asked, in order, and the futures waiting for the replies. Its
    watchdog fails it when the oldest question is older than ``timeout``."""

    def __init__(self, timeout: float) -> None:
        self.reader = hiredis.Reader(encoding="utf-8", replyError=redis.ResponseError)
        # Per question, in order: [asked at, its future, how many replies, the replies so far].
        self.waiting: deque[tuple[float, asyncio.Future[list[Any]], int, list[Any]]] = deque()
        self.transport: asyncio.Transport | None = None
        self.outbox: list[bytes] = []
        self.timeout = timeout
        self.closed = False
        self._watchdog: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass
        self._arm()

    def _arm(self) -> None:
        self._watchdog = asyncio.get_running_loop().call_later(self.timeout / 4, self._watch)

    def _watch(self) -> None:
        """Every ``timeout / 4``: a question older than ``timeout`` fails the connection."""
        if self.closed:
            return
        if self.waiting and self.waiting[0][0] < time.monotonic() - self.timeout:
            self.fail(redis.TimeoutError(f"redis did not answer within {self.timeout:g} s"))
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        reader, waiting = self.reader, self.waiting
        reader.feed(data)
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                self.fail(redis.ConnectionError(f"redis protocol error: {exc}"))
                return
            except UnicodeDecodeError as exc:  # the reply was read whole: only it is lost
                reply = redis.ResponseError(f"a reply that is not UTF-8: {exc}")
            if reply is False:
                return
            if not waiting:  # a reply nobody asked for: the stream cannot be trusted
                self.fail(redis.ConnectionError("redis sent a reply nobody asked for"))
                return
            _sent, future, n, replies = waiting[0]
            replies.append(reply)
            if len(replies) == n:
                waiting.popleft()
                if not future.done():  # its asker may have gone (cancelled); the replies are spent
                    future.set_result(replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(redis.ConnectionError(f"redis connection lost: {exc}" if exc else "redis connection closed"))

    def fail(self, exc: Exception) -> None:
        """Drop the connection (nothing more is written to it) and fail everything in flight."""
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self.transport is not None:
            self.transport.abort()
        self.outbox = []
        while self.waiting:
            future = self.waiting.popleft()[1]
            if not future.done():
                future.set_exception(exc)

    @property
    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def ask(self, packed: bytes, n: int) -> asyncio.Future[list[Any]]:
        """Queue ``packed`` (``n`` commands) for this loop iteration's one write; one future for
        their ``n`` replies, in order. The requests a loop iteration serves share the write (one
        syscall for all). Raises ``redis.ConnectionError`` when the connection has gone."""
        if not self.usable:
            raise redis.ConnectionError("redis connection closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self.waiting.append((time.monotonic(), future, n, []))
        if not self.outbox:
            loop.call_soon(self.flush)
        self.outbox.append(packed)
        return future

    def flush(self) -> None:
        out, self.outbox = self.outbox, []
        if not out or self.closed:
            return
        if self.transport is None or self.transport.is_closing():
            self.fail(redis.ConnectionError("redis connection closed before the write"))
            return
        self.transport.writelines(out)


def tls_context(options: dict[str, Any]) -> ssl_module.SSLContext:
    """The TLS context a ``rediss://`` URL asks for, with redis-py's query options:
    ``ssl_cert_reqs`` (none / optional / required), ``ssl_ca_certs``, ``ssl_certfile`` +
    ``ssl_keyfile``, ``ssl_check_hostname``."""
    context = ssl_module.create_default_context(cafile=options.get("ssl_ca_certs"))
    if options.get("ssl_certfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
    reqs = options.get("ssl_cert_reqs")
    if isinstance(reqs, str):
        reqs = {"none": ssl_module.CERT_NONE, "optional": ssl_module.CERT_OPTIONAL}.get(
            reqs.lower(), ssl_module.CERT_REQUIRED
        )
    if options.get("ssl_check_hostname") is False or reqs == ssl_module.CERT_NONE:
        context.check_hostname = False
    if reqs is not None:
        context.verify_mode = reqs
    return context


class PipelinedRedis:
    """A client of one Redis (``url``, as ``REDIS_URL``: ``redis://``, ``rediss://``, ``unix://``)
    for one event loop: one connection, pipelined; opened on first use and again after a failure."""

    def __init__(self, url: str, *, connect_timeout: float = 2.0, timeout: float = 5.0) -> None:
        self.options = parse_url(url)
        self.connect_timeout, self.timeout = connect_timeout, timeout
        self._wire: _Wire | None = None
        self._opening: asyncio.Future[_Wire] | None = None

    # --- the connection ----------------------------------------------------------------------
    async def _connection(self) -> _Wire:
        wire = self._wire
        if wire is not None and wire.usable:
            return wire
        opening = self._opening
        if opening is None:  # one opening for all the requests that find no connection
            opening = self._opening = asyncio.ensure_future(self._open())
            opening.add_done_callback(self._opened)
        try:
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            if opening.cancelled():  # the client was closed meanwhile, not this request
                raise redis.ConnectionError("redis client closed") from None
            raise

    def _opened(self, opening: asyncio.Future[_Wire]) -> None:
        if self._opening is opening:
            self._opening = None

    async def _open(self) -> _Wire:
        loop = asyncio.get_running_loop()
        o = self.options

        def wire() -> _Wire:
            return _Wire(self.timeout)

        try:
            if o.get("connection_class") is UnixDomainSocketConnection:
                connect = loop.create_unix_connection(wire, o["path"])
            else:
                context = tls_context(o) if o.get("connection_class") is SSLConnection else None
                connect = loop.create_connection(wire, o.get("host", "localhost"), o.get("port", 6379), ssl=context)
            _transport, new = await asyncio.wait_for(connect, self.connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise redis.ConnectionError(f"cannot connect to redis: {exc}") from exc
        try:
            hello: list[Command] = []
            if o.get("password"):
                hello.append(("AUTH", o["username"], o["password"]) if o.get("username") else ("AUTH", o["password"]))
            if o.get("db"):
                hello.append(("SELECT", o["db"]))
            if hello:  # the connection's watchdog bounds the wait
                for reply in await self._send(new, hello):
                    if isinstance(reply, BaseException):
                        raise redis.ConnectionError(f"redis refused the connection: {reply}")
        except BaseException as exc:
            new.fail(exc if isinstance(exc, redis.RedisError) else redis.ConnectionError("redis connection abandoned"))
            raise
        self._wire = new
        return new

    async def _send(self, wire: _Wire, commands: Sequence[Command]) -> list[Any]:
        if not commands:
            return []
        pack: Callable[[tuple[Any, ...]], bytes] = hiredis.pack_command  # (its stub says a 1-tuple)
        packed = pack(tuple(commands[0])) if len(commands) == 1 else b"".join([pack(tuple(c)) for c in commands])
        return await wire.ask(packed, len(commands))

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
        if self._opening is not None:
            self._opening.cancel()
            self._opening = None
        if self._wire is not None:
            self._wire.fail(redis.ConnectionError("redis client closed"))
            self._wire = None
