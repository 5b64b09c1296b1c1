"""The event loop's pipelined Redis connection (``apps/core/redis_wire.py``), against the real Redis
of the run (``REDIS_URL``) and a private Valkey/Redis server with a password on a unix socket:
every reply reaches its own asker, a script's error stays in its place, a lost or silent
connection fails what is in flight as a Redis error and the next question opens a new one."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import uvloop
from django.conf import settings

from apps.core.redis import get_client, is_redis_error
from apps.core.redis_wire import PipelinedRedis
from livecommerce.launcher import find_redis_server

Runner = Callable[[Coroutine[Any, Any, Any]], Any]

# Production serves from uvloop (its transports are no asyncio.Transport subclasses); tests and
# daphne from asyncio's own loop: both.
RUNNERS = pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])


@RUNNERS
def test_every_reply_reaches_its_own_asker_among_hundreds_in_flight(run: Runner) -> None:
    async def go() -> None:
        client = PipelinedRedis(settings.REDIS_URL)
        try:

            async def ask(i: int) -> list[Any]:
                if i % 3 == 0:  # several commands in one question
                    return await client.execute([("ECHO", f"a{i}"), ("ECHO", f"b{i}")])
                return await client.execute([("ECHO", f"a{i}")])

            got = await asyncio.gather(*(ask(i) for i in range(600)))
            assert got == [[f"a{i}", f"b{i}"] if i % 3 == 0 else [f"a{i}"] for i in range(600)]
        finally:
            await client.aclose()

    run(go())


@RUNNERS
def test_a_scripts_error_comes_back_in_its_place(run: Runner) -> None:
    async def go() -> list[Any]:
        client = PipelinedRedis(settings.REDIS_URL)
        try:
            return await client.execute(
                [("ECHO", "before"), ("EVAL", "return redis.error_reply('boom')", 0), ("ECHO", "after")]
            )
        finally:
            await client.aclose()

    before, error, after = run(go())
    assert (before, after) == ("before", "after")
    assert isinstance(error, redis.ResponseError) and "boom" in str(error)


def test_the_database_of_the_url_is_used() -> None:
    key = f"lc:test:wire:{secrets.token_hex(4)}"

    async def go() -> None:
        client = PipelinedRedis(settings.REDIS_URL)
        try:
            assert await client.execute([("SET", key, "here", "PX", 60_000)]) == ["OK"]
        finally:
            await client.aclose()

    uvloop.run(go())
    assert get_client().get(key) in ("here", b"here")  # the project's client: the URL's database


@RUNNERS
def test_a_connection_killed_mid_question_fails_it_as_a_redis_error_and_the_next_reconnects(run: Runner) -> None:
    key = f"lc:test:wire:empty:{secrets.token_hex(4)}"

    async def go() -> None:
        client = PipelinedRedis(settings.REDIS_URL)
        try:
            (first_id,) = await client.execute([("CLIENT", "ID")])
            waiting = asyncio.ensure_future(client.execute([("BLPOP", key, 10)]))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            assert get_client().client_kill_filter(_id=first_id) == 1
            with pytest.raises(redis.ConnectionError) as lost:
                await asyncio.wait_for(waiting, 5)
            assert is_redis_error(lost.value)
            (second_id,) = await client.execute([("CLIENT", "ID")])
            assert second_id != first_id
        finally:
            await client.aclose()

    run(go())


def test_a_reply_later_than_the_timeout_fails_what_is_in_flight_and_the_next_reconnects() -> None:
    key = f"lc:test:wire:empty:{secrets.token_hex(4)}"

    async def go() -> None:
        client = PipelinedRedis(settings.REDIS_URL, timeout=0.4)
        try:
            (first_id,) = await client.execute([("CLIENT", "ID")])
            started = time.monotonic()
            stuck = asyncio.ensure_future(client.execute([("BLPOP", key, 5)]))
            behind = asyncio.ensure_future(client.execute([("ECHO", "behind")]))  # queued behind it
            for future in (stuck, behind):
                with pytest.raises(redis.TimeoutError):
                    await asyncio.wait_for(future, 5)
            assert time.monotonic() - started < 2  # well before Redis's own 5 s
            (second_id,) = await client.execute([("CLIENT", "ID")])
            assert second_id != first_id
        finally:
            await client.aclose()

    uvloop.run(go())


def test_no_server_is_a_redis_connection_error() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def go() -> None:
        client = PipelinedRedis(f"redis://127.0.0.1:{port}/0", connect_timeout=1)
        with pytest.raises(redis.ConnectionError):
            await client.execute([("PING",)])
        await client.aclose()

    uvloop.run(go())


@pytest.fixture(scope="module")
def private_server() -> Iterator[str]:
    """A Valkey/Redis server of this module's own on a unix socket, with a password."""
    with tempfile.TemporaryDirectory(prefix="lc-wire-") as tmp:
        sock = Path(tmp) / "r.sock"
        proc = subprocess.Popen(
            [
                find_redis_server(),
                *("--port", "0", "--unixsocket", str(sock), "--requirepass", "s3cret"),
                *("--save", "", "--appendonly", "no", "--dir", tmp),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                if sock.exists():
                    break
                time.sleep(0.05)
            assert sock.exists(), "the private server did not start"
            yield str(sock)
        finally:
            proc.terminate()
            proc.wait(10)


def test_a_unix_socket_with_a_password_and_a_database(private_server: str) -> None:
    async def go(url: str) -> list[Any]:
        client = PipelinedRedis(url)
        try:
            return await client.execute([("SET", "k", "v"), ("CLIENT", "INFO")])
        finally:
            await client.aclose()

    ok, info = uvloop.run(go(f"unix://{private_server}?db=3&password=s3cret"))
    assert ok == "OK" and " db=3 " in f" {info} ", info
    with pytest.raises(redis.ConnectionError, match="refused"):
        uvloop.run(go(f"unix://{private_server}?db=3&password=wrong"))


def _fake_server(handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]):  # type: ignore[no-untyped-def]
    return asyncio.start_server(handle, "127.0.0.1", 0)


@RUNNERS
def test_a_server_that_refuses_and_closes_at_once_fails_every_question_none_hangs(run: Runner) -> None:
    """Redis at maxclients (or a proxy with no backend) accepts, writes an error and closes:
    every question fails as a Redis error, in time, none is left waiting on the dead connection."""

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"-ERR max number of clients reached\r\n")
        await writer.drain()
        writer.close()

    async def go() -> list[str]:
        server = await _fake_server(refuse)
        port = server.sockets[0].getsockname()[1]
        client = PipelinedRedis(f"redis://127.0.0.1:{port}/0", timeout=0.5)
        try:
            outcomes = []
            for _round in range(3):
                got = await asyncio.wait_for(
                    asyncio.gather(*(client.execute([("PING",)]) for _ in range(10)), return_exceptions=True), 3
                )
                outcomes += [type(g).__name__ for g in got]
            return outcomes
        finally:
            await client.aclose()
            server.close()

    outcomes = run(go())
    assert set(outcomes) <= {"ConnectionError", "ResponseError"} and len(outcomes) == 30, outcomes


@pytest.mark.parametrize("path", ["/1", "/0?password=pw"], ids=["select", "auth"])
def test_a_silent_server_during_auth_or_select_times_out_and_the_client_recovers(path: str) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)  # reads, never answers
        await asyncio.sleep(30)

    async def go() -> tuple[list[str], float]:
        server = await _fake_server(silent)
        port = server.sockets[0].getsockname()[1]
        client = PipelinedRedis(f"redis://127.0.0.1:{port}{path}", timeout=0.4)
        started = time.monotonic()
        try:
            got = await asyncio.wait_for(
                asyncio.gather(*(client.execute([("PING",)]) for _ in range(5)), return_exceptions=True), 5
            )
            assert client._opening is None  # noqa: SLF001 - a stuck opening would hold every later request
            return [type(g).__name__ for g in got], time.monotonic() - started
        finally:
            await client.aclose()
            server.close()

    names, took = uvloop.run(go())
    assert names == ["TimeoutError"] * 5 and took < 2, (names, took)


def test_a_reply_that_is_not_utf8_fails_only_itself() -> None:
    async def odd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(b"$2\r\n\xff\xfe\r\n+OK\r\n")  # two replies: bad bytes, then a good one
        await writer.drain()
        await asyncio.sleep(5)

    async def go() -> list[Any]:
        server = await _fake_server(odd)
        port = server.sockets[0].getsockname()[1]
        client = PipelinedRedis(f"redis://127.0.0.1:{port}/0")
        try:
            return await asyncio.wait_for(client.execute([("GET", "x"), ("PING",)]), 5)
        finally:
            await client.aclose()
            server.close()

    bad, good = uvloop.run(go())
    assert isinstance(bad, redis.ResponseError) and good == "OK"


def test_rediss_options_shape_the_tls_context() -> None:
    import ssl

    from redis.connection import parse_url

    from apps.core.redis_wire import tls_context

    strict = tls_context(parse_url("rediss://h:6380/0"))
    assert strict.verify_mode == ssl.CERT_REQUIRED and strict.check_hostname
    loose = tls_context(parse_url("rediss://h:6380/0?ssl_cert_reqs=none"))
    assert loose.verify_mode == ssl.CERT_NONE and not loose.check_hostname
    no_host = tls_context(parse_url("rediss://h:6380/0?ssl_check_hostname=false"))
    assert no_host.verify_mode == ssl.CERT_REQUIRED and not no_host.check_hostname
