"""Production ASGI serving: N uvicorn worker processes, each with its OWN listening socket on the
same port (``SO_REUSEPORT``), so the kernel spreads new connections evenly over the workers.

    python -m livecommerce.serve --workers 2 --host 0.0.0.0 --port 8000

Why not ``uvicorn --workers N``: its workers share one socket, and whichever process wakes first
accepts, so under a burst of new connections (a flash sale opening) one worker can end up with
twice the connections of another, and its buyers wait twice as long (measured in
``bench/flash_sale``: a 165/90 split of 256 connections). With one socket per worker the kernel
hashes each connection to a socket.

The parent only supervises: it restarts a worker that dies and stops all of them on SIGTERM or
SIGINT (each child also dies with the parent). Linux (SO_REUSEPORT load balancing) only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

APP = "livecommerce.asgi:application"


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--app", default=APP)
    p.add_argument("--log-level", default="warning")
    p.add_argument("--access-log", action="store_true")
    p.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)  # the supervisor's pid
    return p.parse_args(argv)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def log_config() -> dict:
    """uvicorn's own logging config with buyers' status-link tokens redacted: its access log
    (``uvicorn.access``) and its websocket lines (``uvicorn.error``: ``"WebSocket /ws/orders/1/?t=…"
    [accepted]``) carry the path with the query string."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": "apps.core.logging.RedactTokenFilter"}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_tokens")
    return config


class CorkedTransport:
    """A transport whose writes within one turn of the event loop leave as one ``send``.

    uvicorn writes a response's head and its body separately, so every answer cost two system
    calls and two TCP segments (measured on the flash-sale hot path: about 5% of the event loop's
    time in ``send``). Here a small write is queued and the queue goes out once, right after the
    code that wrote it yields to the loop. Past ``MAX_QUEUED`` bytes (a file download's chunks,
    written without yielding) the queue goes out at once, so the real transport's write-buffer
    flow control sees the bytes as they come. ``writelines`` queues like ``write``; ``close`` and
    ``write_eof`` send what is queued first, ``abort`` drops it; ``get_write_buffer_size`` counts
    it. Everything else is the real transport's.
    """

    MAX_QUEUED = 64 * 1024
    __slots__ = ("_transport", "_queued", "_size", "_loop")

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._queued: list[bytes] = []
        self._size = 0
        self._loop = loop

    def write(self, data: bytes) -> None:
        if self._size + len(data) > self.MAX_QUEUED:
            self.flush()
            self._transport.write(data)
            return
        if not self._queued:
            self._loop.call_soon(self.flush)
        self._queued.append(bytes(data))
        self._size += len(data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        queued, self._queued, self._size = self._queued, [], 0
        if queued and not self._transport.is_closing():
            self._transport.write(queued[0] if len(queued) == 1 else b"".join(queued))

    def get_write_buffer_size(self) -> int:
        return int(self._transport.get_write_buffer_size()) + self._size

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._queued, self._size = [], 0
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def corked_protocol() -> type:
    """uvicorn's httptools protocol on a ``CorkedTransport`` (a websocket upgraded from it writes
    through the same transport, so its frames keep their order)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class CorkedHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(CorkedTransport(transport, self.loop))  # type: ignore[arg-type]

    return CorkedHttpToolsProtocol


def _child(args: argparse.Namespace, parent: int) -> None:
    try:  # die with the supervisor (Linux), set before anything slow
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    if os.getppid() != parent:  # the supervisor died before the line above took effect
        return
    import uvicorn

    sock = _listen(args.host, args.port)
    config = uvicorn.Config(
        args.app,
        loop="uvloop",
        http=corked_protocol(),
        lifespan="off",
        log_level=args.log_level,
        log_config=log_config(),
        access_log=args.access_log,
        proxy_headers=True,
    )
    uvicorn.Server(config).run(sockets=[sock])


def _spawn(args: argparse.Namespace) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "livecommerce.serve", "--child", str(os.getpid()), "--host", args.host]
    cmd += ["--port", str(args.port)]
    cmd += ["--app", args.app, "--log-level", args.log_level] + (["--access-log"] if args.access_log else [])
    return subprocess.Popen(cmd)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if args.child:
        _child(args, args.child)
        return 0
    _listen(args.host, args.port).close()  # fail early (port taken, bad address)
    children = [_spawn(args) for _ in range(max(1, args.workers))]
    stopping = False
    code = 0

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for c in children:
            if c.poll() is None:
                c.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    restarts: list[float] = []
    while not stopping:
        time.sleep(0.5)
        for i, c in enumerate(children):
            if c.poll() is not None and not stopping:
                restarts = [t for t in restarts if t > time.time() - 60] + [time.time()]
                if len(restarts) > 10:  # crash loop (bad settings, port lost): give up loudly
                    print("workers keep dying; stopping", file=sys.stderr, flush=True)
                    stop(signal.SIGTERM, None)
                    code = 1
                    break
                print(f"worker {c.pid} exited with {c.returncode}; restarting", file=sys.stderr, flush=True)
                children[i] = _spawn(args)
    deadline = time.time() + 15
    for c in children:
        try:
            c.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            c.kill()
    return code


if __name__ == "__main__":
    sys.exit(main())
