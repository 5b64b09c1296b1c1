"""``livecommerce.serve``: uvicorn workers with one SO_REUSEPORT socket each, supervised."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest
from django.conf import settings

from ..servers import child_env, free_port, stop, wait_for_http
from ..waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except OSError:
                continue
    return out


def _established_per_process(pids: list[int], port: int) -> dict[int, int]:
    """Established server-side connections on ``port`` held by each pid (via /proc)."""
    inodes: dict[str, int] = {}
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            local_port = int(parts[1].split(":")[1], 16)
            if local_port == port and parts[3] == "01":
                inodes[parts[9]] = 0
    counts = {}
    for pid in pids:
        n = 0
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                n += 1
        counts[pid] = n
    return counts


def _running(pids: list[int]) -> list[int]:
    """The processes of ``pids`` still running (a zombie has exited)."""
    running = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            running.append(pid)
    return running


def _healthz(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:  # noqa: S310
        return r.status


def test_workers_share_connections_restart_when_they_die_and_stop_together():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "livecommerce.serve", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)],
        cwd=settings.BASE_DIR,
        env=child_env(),
        start_new_session=True,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", proc)
        workers = _children(proc.pid)
        assert len(workers) == 2, workers
        # The kernel spreads new connections over the workers' own sockets.
        conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
        try:
            for c in conns:
                c.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            for c in conns:
                assert c.recv(64).startswith(b"HTTP/1.1 200")
            per_worker = _established_per_process(workers, port)
            assert sum(per_worker.values()) == 64, per_worker
            assert min(per_worker.values()) >= 16, per_worker
        finally:
            for c in conns:
                c.close()
        # A worker that dies is replaced; the service keeps answering.
        os.kill(workers[0], signal.SIGKILL)

        def replaced() -> list[int] | None:
            now = _children(proc.pid)
            return now if len(now) == 2 and workers[0] not in now else None

        now = wait_until(replaced, timeout=60, interval=0.2, what="a new worker in place of the killed one")
        wait_for_http(f"http://127.0.0.1:{port}/healthz", proc)
        assert _healthz(port) == 200
        # SIGTERM to the supervisor stops every worker.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        wait_until(lambda: not _running(now), timeout=30, what=f"the workers {now} to exit")
    finally:
        if proc.poll() is None:
            stop(proc)


class _Transport:
    """What the corked transport hands on: each write, and the calls made after it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close", b""))

    def abort(self) -> None:
        self.closing = True
        self.calls.append(("abort", b""))

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str) -> str:
        return f"extra:{name}"


def test_a_responses_writes_in_one_turn_of_the_loop_leave_as_one() -> None:
    import asyncio

    from livecommerce.serve import CorkedTransport

    async def scenario() -> list[tuple[str, bytes]]:
        real = _Transport()
        corked = CorkedTransport(real, asyncio.get_running_loop())
        corked.write(b"HTTP/1.1 409 Conflict\r\ncontent-length: 2\r\n\r\n")
        corked.write(b"{}")
        assert real.calls == []  # not yet: the code that wrote has not yielded
        await asyncio.sleep(0)
        corked.write(b"next")  # a later turn: its own write
        await asyncio.sleep(0)
        assert corked.get_extra_info("peername") == "extra:peername"  # the rest is the real one's
        return real.calls

    assert asyncio.run(scenario()) == [
        ("write", b"HTTP/1.1 409 Conflict\r\ncontent-length: 2\r\n\r\n{}"),
        ("write", b"next"),
    ]


def test_close_sends_what_is_queued_first_and_abort_drops_it() -> None:
    import asyncio

    from livecommerce.serve import CorkedTransport

    async def scenario() -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]:
        loop = asyncio.get_running_loop()
        closed, aborted = _Transport(), _Transport()
        a, b = CorkedTransport(closed, loop), CorkedTransport(aborted, loop)
        a.write(b"bye")
        a.close()
        b.write(b"lost")
        b.abort()
        await asyncio.sleep(0)  # the flushes scheduled by the writes find nothing, or a closed transport
        return closed.calls, aborted.calls

    closed, aborted = asyncio.run(scenario())
    assert closed == [("write", b"bye"), ("close", b"")]
    assert aborted == [("abort", b"")]


class _BufferedTransport(_Transport):
    def get_write_buffer_size(self) -> int:
        return 7

    def write_eof(self) -> None:
        self.calls.append(("eof", b""))


def test_a_large_write_goes_out_at_once_behind_what_was_queued() -> None:
    """A download's chunks are not held back for the turn: the real transport's flow control
    sees them as they are written."""
    import asyncio

    from livecommerce.serve import CorkedTransport

    async def scenario() -> tuple[list[tuple[str, bytes]], int]:
        real = _BufferedTransport()
        corked = CorkedTransport(real, asyncio.get_running_loop())
        corked.write(b"head")
        size = corked.get_write_buffer_size()  # the real buffer's and the queued bytes
        big = b"x" * (CorkedTransport.MAX_QUEUED + 1)
        corked.write(big)
        assert real.calls == [("write", b"head"), ("write", big)]  # at once, in order
        corked.writelines([b"a", b"b"])
        corked.write_eof()
        return real.calls, size

    calls, size = asyncio.run(scenario())
    assert size == 7 + 4
    assert calls[2:] == [("write", b"ab"), ("eof", b"")]


def test_a_real_server_on_the_corked_protocol_answers_whole_and_keeps_websocket_frames_in_order() -> None:
    """uvicorn with ``corked_protocol()``: a keep-alive connection gets two answers whole (one of
    them a streamed 200 KiB body) and a websocket upgraded from it gets its frames in order."""
    import asyncio

    import uvicorn
    import websockets

    from livecommerce.serve import corked_protocol

    big = bytes(range(256)) * 800  # 200 KiB

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            return
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            for i in range(50):
                await send({"type": "websocket.send", "text": f"frame {i}"})
            await send({"type": "websocket.close"})
            return
        body = big if scope["path"] == "/big" else b"small"
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]}
        )
        for i in range(0, len(body), 65536):
            await send({"type": "http.response.body", "body": body[i : i + 65536], "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def scenario() -> tuple[list[bytes], list[str]]:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, http=corked_protocol(), lifespan="off", log_level="error")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            bodies = []
            for path in ("/big", "/small"):
                writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                bodies.append(await reader.readexactly(length))
            writer.close()
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
                frames = [str(m) async for m in ws]
        finally:
            server.should_exit = True
            await task
        return bodies, frames

    bodies, frames = asyncio.run(scenario())
    assert bodies == [big, b"small"]
    assert frames == [f"frame {i}" for i in range(50)]
