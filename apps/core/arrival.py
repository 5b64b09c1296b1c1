"""When a request reached this process, before it queued for a worker thread.

During a flash-sale burst an order request can wait seconds for a thread (and, on SQLite, for the
write lock) before its row is written, so ``Order.created_at`` says when the server got round to
it, not when the buyer pressed buy. Risk control times the buyer (milliseconds after the listing
opened, the spread of a linked cluster's orders), so the outermost ASGI app stamps each HTTP
request's arrival into its scope and the order keeps it (``OrderSignals.received_at``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

SCOPE_KEY = "lc.received_at"


class ArrivalStamp:
    """ASGI middleware: put ``time.time()`` of arrival into every HTTP scope (first stamp wins)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope.setdefault(SCOPE_KEY, time.time())
        await self.app(scope, receive, send)


def scope_received_at(scope: dict | None) -> datetime | None:
    """The arrival stamped into an ASGI scope, or None (not stamped: WSGI, the test client)."""
    stamp = scope.get(SCOPE_KEY) if isinstance(scope, dict) else None
    return datetime.fromtimestamp(stamp, UTC) if isinstance(stamp, float) else None


def received_at(request: Any) -> datetime | None:
    """A Django (or DRF) request's arrival, or None where no ASGI server stamped it."""
    return scope_received_at(getattr(request, "scope", None))
