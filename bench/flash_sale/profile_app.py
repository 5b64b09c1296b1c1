"""The production ASGI app with the order path's steps timed in CPU (for ``profile_guard``).

Served by ``livecommerce.serve --app bench.flash_sale.profile_app:application``. Each step
below is wrapped where the code looks it up at call time, and its calls, thread CPU and wall
time are added up; every second the totals (and the process's CPU) go to ``$PROFILE_OUT`` as
JSON. Thread CPU is what the step cost the machine; wall time includes waiting for Redis and
for the GIL among the worker's threads.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from livecommerce.asgi import application  # noqa: F401  (sets Django up; served as is)

_totals: defaultdict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
_lock = threading.Lock()


def _timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        c0, w0 = time.thread_time(), time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            c1, w1 = time.thread_time(), time.perf_counter()
            with _lock:
                t = _totals[name]
                t[0] += 1
                t[1] += c1 - c0
                t[2] += w1 - w0

    return wrapper


def _install() -> None:
    from apps.fraud import hotpath
    from apps.orders import hooks
    from apps.orders.placement import fastpath, service
    from apps.orders.placement.gate import scripts as gate

    fastpath._handle = _timed("request handler (worker thread)", fastpath._handle)
    service.listing_info = _timed("listing_info", service.listing_info)
    gate.gate_reserve = _timed("stock gate alone (reserve.lua call)", gate.gate_reserve)
    service.run_together = _timed("guard + stock gate (check.lua, reserve.lua: one trip)", service.run_together)
    if hooks.registry.guard is not None:
        hooks.registry.guard = _timed("guard: its call prepared (attempt_dims inside)", hooks.registry.guard)
    hotpath.attempt_dims = _timed("guard: attempt_dims (normalisers)", hotpath.attempt_dims)
    hotpath.judge_attempt = _timed("guard: judging the counters", hotpath.judge_attempt)
    hotpath._client_metrics = _timed("guard: user agent, account age", hotpath._client_metrics)
    hotpath.merchant_rules = _timed("guard: merchant_rules", hotpath.merchant_rules)


def _dump(path: str) -> None:
    while True:
        time.sleep(1)
        with _lock:
            data: dict[str, Any] = {k: list(v) for k, v in _totals.items()}
        data["process_cpu_s"] = time.process_time()
        with open(path + ".tmp", "w") as f:
            json.dump(data, f)
        os.replace(path + ".tmp", path)


_install()
threading.Thread(target=_dump, args=(os.environ["PROFILE_OUT"],), daemon=True).start()
