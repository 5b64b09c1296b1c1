"""A small asyncio HTTP/1.1 keep-alive load generator (no dependencies): C connections pull
requests from one queue; every answer is timed. Enough for a few thousand requests/s from one
core, so the server, not the client, is what is measured."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class Result:
    started: float
    finished: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    codes: Counter = field(default_factory=Counter)
    first_by_code: dict = field(default_factory=dict)
    last_by_code: dict = field(default_factory=dict)
    latencies_by_code: dict = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.finished - self.started

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000

    def median_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else 0.0

    def code_pct(self, code: str, p: float) -> float:
        xs = sorted(self.latencies_by_code.get(code, []))
        return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000 if xs else 0.0


def build(method: str, path: str, host: str, body: bytes | None, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    for k, v in headers.items():
        lines.append(f"{k}: {v}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        k = k.strip().lower()
        if k == b"content-length":
            length = int(v.strip())
        elif k == b"transfer-encoding" and b"chunked" in v.lower():
            chunked = True
    if chunked:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size + 2)
        return status, body
    return status, await reader.readexactly(length) if length else b""


def _record(res: Result, status: int, body: bytes, t_from: float, t1: float, classify: bool) -> None:
    res.latencies.append(t1 - t_from)
    res.statuses[status] += 1
    if classify:
        try:
            data = json.loads(body)
            code = data.get("code") or data.get("status") or str(status)
        except ValueError:
            code = str(status)
        res.codes[code] += 1
        res.first_by_code.setdefault(code, t1)
        res.last_by_code[code] = t1
        res.latencies_by_code.setdefault(code, []).append(t1 - t_from)


async def run(
    host: str,
    port: int,
    requests: Iterable[bytes],
    concurrency: int,
    *,
    duration: float | None = None,
    classify: bool = True,
) -> Result:
    """Closed loop: ``concurrency`` connections, each sending its next request as soon as the
    previous one is answered (the server's saturation throughput; latency includes its queue)."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for r in requests:
        queue.put_nowait(r)
    res = Result(started=time.perf_counter(), finished=0.0)
    deadline = res.started + duration if duration else None

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while not queue.empty():
                if deadline and time.perf_counter() > deadline:
                    return
                req = queue.get_nowait()
                t0 = time.perf_counter()
                writer.write(req)
                status, body = await _read_response(reader)
                _record(res, status, body, t0, time.perf_counter(), classify)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    res.finished = time.perf_counter()
    return res


async def run_paced(
    host: str,
    port: int,
    requests: list[bytes],
    rate: float,
    connections: int = 64,
    *,
    classify: bool = True,
    offset: float = 0.0,
) -> Result:
    """Open loop: request ``i`` is due at ``start + offset + i / rate`` whatever the answers
    before it, on whichever of ``connections`` keep-alive connections is free. A latency runs
    from when the request was due, so a request that waits for a free connection counts its wait
    (no coordinated omission). Below the server's saturation this measures what one answer costs.
    ``offset`` (seconds) staggers two such runs gathered side by side."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
    res = Result(started=time.perf_counter(), finished=0.0)
    start = res.started + 0.2 + offset  # every connection is open by then
    for i, r in enumerate(requests):
        queue.put_nowait((start + i / rate, r))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while not queue.empty():
                due, req = queue.get_nowait()
                wait = due - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(req)
                status, body = await _read_response(reader)
                _record(res, status, body, due, time.perf_counter(), classify)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    res.finished = time.perf_counter()
    res.started = start
    return res
