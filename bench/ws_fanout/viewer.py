"""A minimal websocket client for many bench subscribers in one process.

Real viewers are separate phones; here a thousand share one Python process and the server's two
cores, so the client must cost as little as possible or it, not the server, is what gets measured.
This one is a bare asyncio Protocol: the opening handshake, unmasked server frames parsed in place,
a timestamp per text frame taken the moment its bytes arrive, pongs for the server's pings.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import time
from collections.abc import Callable


def _masked(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + mask + body  # payload < 126


class ViewerProtocol(asyncio.Protocol):
    def __init__(self, host: str, path: str, on_text: Callable[[float, bytes], None]) -> None:
        self.host, self.path, self.on_text = host, path, on_text
        self.buf = b""
        self.upgraded = False
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buf = self.buf + data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            if b" 101 " not in buf[: buf.find(b"\r\n")]:
                self.transport.close()  # type: ignore[union-attr]
                return
            self.upgraded, buf = True, buf[end + 4 :]
        pos = 0
        while len(buf) - pos >= 2:
            opcode, n = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            head = 2
            if n == 126:
                if len(buf) - pos < 4:
                    break
                n, head = struct.unpack_from("!H", buf, pos + 2)[0], 4
            elif n == 127:
                if len(buf) - pos < 10:
                    break
                n, head = struct.unpack_from("!Q", buf, pos + 2)[0], 10
            if len(buf) - pos < head + n:
                break
            payload = buf[pos + head : pos + head + n]
            pos += head + n
            if opcode == 1:
                self.on_text(now, payload)
            elif opcode == 9:
                self.transport.write(_masked(0xA, payload))  # type: ignore[union-attr]
            elif opcode == 8:
                self.transport.close()  # type: ignore[union-attr]
        self.buf = buf[pos:]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    async def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_masked(0x8, struct.pack("!H", 1000)))
            self.transport.close()
        await self.closed


class Viewer:
    """One storefront viewer: subscribes to a listing and timestamps every show event."""

    def __init__(self, port: int, path: str, sink: dict[int, list[float]]) -> None:
        self.port, self.path, self.sink = port, path, sink
        self.ready = asyncio.Event()
        self.proto: ViewerProtocol | None = None

    def _on_text(self, now: float, payload: bytes) -> None:
        if b'"show.event"' in payload:
            msg = json.loads(payload)
            self.sink.setdefault(msg["version"], []).append(now - msg["sent_at"])
        elif b'"listing.snapshot"' in payload:
            self.ready.set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        _, self.proto = await loop.create_connection(
            lambda: ViewerProtocol(f"127.0.0.1:{self.port}", self.path, self._on_text), "127.0.0.1", self.port
        )
        await asyncio.wait_for(self.ready.wait(), 30)

    async def stop(self) -> None:
        if self.proto is not None:
            await asyncio.wait_for(self.proto.close(), 10)


async def _hold(port: int, path: str, n: int, seconds: float) -> None:
    viewers = [Viewer(port, path, {}) for _ in range(n)]
    for i in range(0, n, 100):
        await asyncio.gather(*(v.start() for v in viewers[i : i + 100]))
    print("ready", flush=True)
    await asyncio.sleep(seconds)
    await asyncio.gather(*(v.stop() for v in viewers))


def main() -> None:
    """``python -m bench.ws_fanout.viewer PORT PATH N SECONDS``: an audience in its own process,
    so the buyer whose delay is measured does not share a process with a thousand viewers."""
    import sys

    port, path, n, seconds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    asyncio.run(_hold(port, path, n, seconds))


if __name__ == "__main__":
    main()
