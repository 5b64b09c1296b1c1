"""Accepted orders placed from the event loop (``fastpath.OrderFastPath``), on PostgreSQL.

When the loop's Redis round trip (``eventloop.decide``) held units for a new order and judged it
(or no risk guard is installed), what is left is the thread path's database step and its answer.
On PostgreSQL with batching that step is a queue put and a wait for the batcher thread, so the
loop does it itself: the order goes straight to its listing's batcher (``batcher.await_placed``),
the batcher wakes the loop once with the order's row, and the loop answers from the row
(``order_representation`` of the instances built from it, as the thread path answers). No worker
thread takes part; the order's after-commit pushes and receivers (``notify.order_changed_on_commit``)
run in the worker pool, a tick's orders in one job (``Effects``).

Everything unusual goes back to the thread path, which decides it exactly as before:

- the database refused the order (``lc_refuse:<step>``: a limit, the window, the stock, the
  merchant's first ledger event) or its key's order exists (a duplicate): nothing of it was
  written, so the thread path runs with the same ``Decided`` (same hold id, the gate's answer, the
  guard's verdict) and places it again: the refusal's answer, the drift count, the idempotent
  replay and the releases are its own, as before;
- the order failed otherwise, or its batch failed as a whole (a lost connection, a lock or
  statement timeout): the hold goes back and 503, as the thread path answers such a failure;
- the batch took the order and gave no answer in time (``BatchOutcomeUnknown``): 503, the hold
  stays (the reconciler frees it if the order never commits), as on the thread path;
- no batch took it in time (``BatchTimeout``: nothing placed): the hold goes back and 503;
- it could not even be queued: the thread path places it.

The placement runs as a task of its own (``fastpath``): if the request goes away, the batch's
deadlines, the hold's release, the thread path's answer to a refusal and the order's effects all
still happen (nothing accepted is lost, no hold is orphaned by a client that hung up).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor, Future
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, close_old_connections

from apps.orders import events as notify
from apps.orders import hooks
from apps.orders.api.serializers import order_representation
from apps.orders.errors import Unavailable

from . import batcher
from .engines import NewOrder
from .engines.postgres import order_from_row, place_params
from .eventloop import Parsed
from .gate import scripts as gate
from .pgcall import refused_step
from .service import NO_VERDICT, NOT_SAVED, UNCONFIRMED, Decided, release_hold, signals_of

log = logging.getLogger(__name__)
Answer = tuple[int, dict[str, Any]]


def on_postgres() -> bool:
    return "postgresql" in settings.DATABASES["default"]["ENGINE"]


def can_place(decided: Decided | None) -> bool:
    """Whether the loop places this attempt itself: PostgreSQL with batching, a fresh hold the gate
    took for it (not a replay, not a key seen before), and the guard's verdict known (or no guard)."""
    return (
        decided is not None
        and decided.info is not None
        and decided.first is not None
        and decided.first.status == gate.OK
        and not decided.first.replay
        and (decided.verdict is not None or hooks.registry.guard is None)
        and settings.ORDER_BATCHING
        and on_postgres()
    )


class Effects:
    """After-commit effects of orders the loop placed, run in the worker pool: the orders answered
    in one tick of the loop go in one job, so a batch of orders costs one thread hand-over."""

    def __init__(self, pool: Executor) -> None:
        self.pool = pool
        self._due: list[tuple[Any, int, int]] = []
        self._scheduled: asyncio.AbstractEventLoop | None = None

    def add(self, order: Any, listing_id: int, seq: int) -> None:
        """Queue an order's effects (on the loop's thread); they go to the pool at the end of
        this tick of the loop."""
        loop = asyncio.get_running_loop()
        if self._scheduled is not loop:  # (a loop that stopped before its flush ran schedules nothing)
            loop.call_soon(self._flush)
            self._scheduled = loop
        self._due.append((order, listing_id, seq))

    def _flush(self) -> None:
        self._scheduled = None
        due, self._due = self._due, []
        if not due:
            return
        try:
            future = self.pool.submit(run_effects, due)
        except RuntimeError:  # the pool is shut down: the process is stopping
            log.error("accepted orders' effects dropped: the worker pool is shut down", extra={"orders": len(due)})
            return
        future.add_done_callback(_logged)


def run_effects(due: list[tuple[Any, int, int]]) -> None:
    """In a worker thread: each order's pushes and ``order_changed`` receivers, as the thread path
    runs them after its commit. One order's failure does not stop the others'."""
    close_old_connections()
    try:
        for order, listing_id, seq in due:
            try:
                notify.order_changed_on_commit(order, listing_id=listing_id, seq=seq, created=True)
            except Exception:
                log.exception("an accepted order's effects failed", extra={"order": order.public_id})
    finally:
        close_old_connections()


def _logged(future: Future) -> None:
    exc = None if future.cancelled() else future.exception()
    if exc is not None:
        log.error("accepted orders' effects failed", exc_info=exc)


async def place(parsed: Parsed, decided: Decided, *, base_url: str, effects: Effects, pool: Executor) -> Answer | None:
    """Place the order through its listing's batcher and answer it (201); None when the thread
    path must decide: the order was never queued, or its batch refused it (see the module
    docstring). Raises ``Unavailable`` for an order no batch took in time (its hold given back),
    one whose batch failed as a whole (its hold given back) or did not answer (its hold kept).
    The caller runs it as a task of its own (``fastpath``): it finishes even if the request
    goes away, so deadlines, releases and effects never depend on the client."""
    info, req = decided.info, parsed.req
    assert info is not None and info.merchant_id == parsed.principal.merchant_id
    loop = asyncio.get_running_loop()
    try:
        verdict = decided.verdict if decided.verdict is not None else NO_VERDICT
        new = NewOrder(
            decided.public_id,
            parsed.key,
            req.fingerprint(),
            "api",
            f"token:{parsed.principal.token_id}",
            pay_window_seconds=verdict.pay_window_seconds,
            signals=signals_of(req, verdict),
        )
        future = batcher.batcher_for(info.id).submit(place_params(info, req, new))
    except Exception:
        log.exception("an accepted order could not be queued on the loop; a worker thread places it")
        return None  # nothing was queued: the thread path places it with the same hold
    try:
        row = await batcher.await_placed(future)
    except batcher.BatchOutcomeUnknown:
        log.warning("order batch gave no answer", extra={"listing": info.id, "order": decided.public_id})
        raise Unavailable(UNCONFIRMED) from None
    except DatabaseError as exc:
        if isinstance(exc, IntegrityError) or (
            isinstance(exc, batcher.BatchedOrderFailed) and refused_step(exc) is not None
        ):
            # The database refused this order (or its key's order exists): nothing of it was
            # written; the thread path places it again and answers as it always has.
            return None
        # Any other failure of the order, its batch failing as a whole, or no batch in time.
        await loop.run_in_executor(pool, release_hold, info.id, decided.public_id)
        log.warning("order transaction failed", extra={"listing": info.id}, exc_info=True)
        raise Unavailable(NOT_SAVED) from exc
    except Exception:  # a defect: the hold goes back (as on the thread path), the caller answers 500
        await loop.run_in_executor(pool, release_hold, info.id, decided.public_id)
        raise
    order, seq = order_from_row(row, info)
    effects.add(order, info.id, seq)  # before the answer is rendered: a committed order's effects run
    return 201, order_representation(order, base_url=base_url, assessed=False)
