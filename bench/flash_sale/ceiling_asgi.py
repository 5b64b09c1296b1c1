"""The refusal ceiling of ``bench.flash_sale.wire``: the least an ASGI app can do to answer a
flash-sale order with "sold out", served exactly as production serves the real one.

    python -m livecommerce.serve --workers 2 --app bench.flash_sale.ceiling_asgi:app

For ``POST`` on any path: read the whole body, parse the JSON, make ONE ``redis.asyncio`` script
call (``EVALSHA``, hiredis when installed) on a listing-like hash — ``left`` is read and the answer
is ``sold_out`` when nothing is left — and answer 409 with a body shaped like the real sold-out
answer. ``GET /healthz`` answers 200 (the bench waits on it). No Django, no token check, no
validation: what the machine can do for such an answer, the figure the real path is held against.
Redis is ``REDIS_URL``; the hash is ``ceiling_key(listing)``.
"""

from __future__ import annotations

import json
import os
from typing import Any

# KEYS[1]: the listing's hash. Returns the units left (0 when sold out or absent).
SCRIPT = """
local left = tonumber(redis.call('HGET', KEYS[1], 'left') or '0')
if left <= 0 then return 0 end
return left
"""

POOL_SIZE = 128  # Redis connections per worker
_script: Any = None


def ceiling_key(listing: int) -> str:
    return f"lc:bench:ceiling:{{listing:{listing}}}"


def _gate() -> Any:
    """The script bound to this worker's client, made on first use (inside the worker's loop)."""
    global _script
    if _script is None:
        import redis.asyncio as aioredis

        url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        # A waiting pool: past POOL_SIZE requests in flight, a request waits for a connection
        # (redis-py's default pool raises "Too many connections" instead).
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=POOL_SIZE, timeout=10)
        client = aioredis.Redis(connection_pool=pool)
        _script = client.register_script(SCRIPT)
    return _script


async def _answer(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["method"] == "GET":
        await _answer(send, 200 if scope["path"] == "/healthz" else 404, b'{"status":"ok"}')
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    try:
        listing = int(json.loads(b"".join(chunks))["listing"])
    except (ValueError, KeyError, TypeError):
        await _answer(send, 400, b'{"code":"invalid","message":"bad body","extra":{}}')
        return
    left = int(await _gate()(keys=[ceiling_key(listing)]))
    if left <= 0:
        body = {"code": "sold_out", "message": "sold out", "extra": {"listing": listing, "left": 0}}
        await _answer(send, 409, json.dumps(body).encode())
    else:
        await _answer(send, 200, json.dumps({"listing": listing, "left": left}).encode())
