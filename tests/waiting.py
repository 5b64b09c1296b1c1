"""Waiting for something to happen: poll a condition until a deadline, never sleep and hope.

A busy machine (CI, two cores, a neighbour's build) makes every "this takes at most N ms"
wrong sooner or later. Tests wait for the condition they need, with a deadline generous enough
to be reached only when something is really broken, and the failure says what was last seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEADLINE = 30.0  # seconds: long enough for a loaded machine, short enough to fail a stuck test


def _timed_out(timeout: float, what: str | None, predicate: Callable[..., object], last: object) -> AssertionError:
    what = what or getattr(predicate, "__qualname__", repr(predicate))
    return AssertionError(f"timed out after {timeout:g}s waiting for {what}; last: {last!r}")


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float = DEADLINE,
    interval: float = 0.05,
    what: str | None = None,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``predicate`` until it returns something truthy and return that.

    Raises AssertionError after ``timeout`` seconds with the last value it returned (or the last
    exception of a type in ``ignore``, which count as "not yet"). The predicate is called once
    more at the deadline, so a slow machine that stalled this thread still gets its last look.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = predicate()
        except ignore as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what, predicate, last)
        time.sleep(interval)
