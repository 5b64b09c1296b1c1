"""The part the three platform simulators share, on the HTTP server, call record and fault
injection of ``apps.core.simserver``: the in-memory order store, live-show traffic and the
platform control paths under ``/_sim/`` (besides the server's health, calls and fault):

- ``GET /_sim/health`` names the platform and shop; ``GET /_sim/calls[?kind=stock|ship|detail|tmc]``
- ``POST /_sim/fault {"mode": "timeout"|"error", "seconds": 5, "hang": 30, "methods": [...]}``;
  ``DELETE /_sim/fault``
- ``POST /_sim/show {"skus": [{"code","sku_id","item_id","price_fen"}], "orders", "seed",
  "pay_share", "cancel_share", "duplicate_share", "shuffle", "interval", ...}`` -> the plan summary;
  ``GET /_sim/shows/<id>`` -> progress
- ``GET /_sim/orders``, ``GET /_sim/orders/<id>``, ``GET /_sim/stock``, ``GET /_sim/deliveries``
- ``POST /_sim/aftersales {"order_id", "phase", "kind": "refund"|"return", "amount_fen", "refund_id",
  "line_id"}``: a buyer's after-sales request (售后) takes a step on the platform (without
  ``refund_id``: a new request), and the platform's message for it is sent -> the request
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from abc import abstractmethod
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from apps.core.simserver import ApiRequest, Reply, SimServer

from .traffic import (
    AFTERSALE_PHASES,
    ShowEvent,
    ShowPlan,
    ShowSpec,
    SimAfterSale,
    SimOrder,
    SimSku,
    apply_event,
    plan_show,
)


@dataclass
class ShowRun:
    show_id: int
    plan: ShowPlan
    emitted: int = 0
    done: threading.Event = field(default_factory=threading.Event)


class PlatformSimulator(SimServer):
    """One platform's simulator for one shop. ``start()`` binds ``host:port`` (port 0 = any free
    port) and serves in daemon threads; ``stop()`` ends everything it started."""

    platform = ""

    def __init__(
        self,
        *,
        app_key: str,
        app_secret: str,
        access_token: str,
        shop_id: str,
        host: str = "127.0.0.1",
        port: int = 0,
        push_url: str | None = None,
        timestamp_tolerance: float | None = 600.0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.service = self.platform
        self.app_key = app_key
        self.app_secret = app_secret
        self.access_token = access_token
        self.shop_id = shop_id
        self.push_url = push_url
        self.timestamp_tolerance = timestamp_tolerance
        self.orders: dict[str, SimOrder] = {}
        self.stock: dict[str, int] = {}
        self.skus: dict[str, SimSku] = {}
        self._show_ids = itertools.count(1)
        self.shows: dict[int, ShowRun] = {}

    def set_platform_stock(self, key: str, value: int) -> None:
        """What the platform shows for a SKU (key: merchant code, else platform SKU id) before we
        push anything; Kuaishou's incremental updates start from it."""
        with self.lock:
            self.stock[key] = value

    # --- shows --------------------------------------------------------------------------------

    def _plan(self, spec: ShowSpec) -> ShowPlan:
        if not spec.start:
            spec.start = time.time()
        return plan_show(
            spec,
            order_id=self.new_order_id,
            line_id=self.new_line_id,
            message_id=self.new_message_id,
            single_line=self.single_line_orders,
        )

    def seed_orders(self, spec: ShowSpec) -> ShowPlan:
        """Put a show's orders in the store in their final state, sending nothing (for API tests
        and the demo's history)."""
        plan = self._plan(spec)
        with self.lock:
            for event in plan.events:
                order = self.orders.setdefault(event.order_id, plan.orders[event.order_id])
                apply_event(order, event)
                self.register_skus(order)
        return plan

    def add_skus(self, skus: list[SimSku]) -> None:
        with self.lock:
            for sku in skus:
                self.skus.setdefault(sku.sku_id, sku)

    def register_skus(self, order: SimOrder) -> None:
        """Remember the order's SKUs so stock calls by platform SKU id resolve to merchant codes."""
        for line in order.lines:
            self.skus.setdefault(line.sku.sku_id, line.sku)

    def run_show(self, spec: ShowSpec) -> ShowRun:
        """Plan a show and emit its events in the background, in delivery order, ``spec.interval``
        seconds apart. Returns at once; ``run.done`` is set when every event has been handed to the
        delivery (push queue or TMC queue)."""
        plan = self._plan(spec)
        with self.lock:
            run = ShowRun(next(self._show_ids), plan)
            self.shows[run.show_id] = run
        self.spawn(self._emit_show, name=f"{self.platform}-sim-show-{run.show_id}", args=(run, spec.interval))
        return run

    def run_traffic(self, spec: ShowSpec, every: float, rounds: int | None = None) -> threading.Thread:
        """A steady stream of shows (the demo's): ``spec`` again every ``every`` seconds, from now
        until the simulator stops or after ``rounds`` rounds (None: no end), each round with the
        next seed (so new orders and buyers) and its own start time. Returns the background thread."""
        spec.validate()
        if every <= 0:
            raise ValueError("every must be > 0 seconds")
        if rounds is not None and rounds < 1:
            raise ValueError("rounds must be 1 or more")

        def emit() -> None:
            for n in itertools.count() if rounds is None else range(rounds):
                self.run_show(replace(spec, seed=spec.seed + n, start=0.0))
                if self.stopping.wait(every):
                    return

        return self.spawn(emit, name=f"{self.platform}-sim-traffic")

    def wait_show(self, run: ShowRun, timeout: float = 60.0) -> None:
        """Wait until the show's events are emitted and every push delivery has finished."""
        if not run.done.wait(timeout):
            raise TimeoutError("show still emitting")
        self.wait_idle(max(0.0, timeout))

    def wait_idle(self, timeout: float) -> None:  # noqa: B027 - overridden by push platforms
        """Wait for pending push deliveries (none for a pulled platform)."""

    def _emit_show(self, run: ShowRun, interval: float) -> None:
        for event in run.plan.events:
            if self.stopping.is_set():
                return
            with self.lock:
                order = self.orders.setdefault(event.order_id, run.plan.orders[event.order_id])
                apply_event(order, event)
                self.register_skus(order)
            self.emit(event, order)
            run.emitted += 1
            if interval:
                self.stopping.wait(interval)
        run.done.set()

    # --- after-sales ----------------------------------------------------------------------------

    def aftersale(
        self,
        order_id: str,
        phase: str,
        *,
        kind: str | None = None,
        amount_fen: int | None = None,
        refund_id: str | None = None,
        line_id: str | None = None,
        at: float | None = None,
        send: bool = True,
    ) -> SimAfterSale:
        """A step of an after-sales request on the platform: without ``refund_id`` the buyer asks
        (a new request of the paid or shipped order, for ``line_id``'s sub-order or the whole
        order), else the request moves on. ``succeeded`` pays the buyer back; once the order's
        whole total is paid back the order is ``refunded`` in its detail. The platform's message
        for the step is sent unless ``send`` is false (a message the platform lost). Raises
        ValueError for a step this simulator does not know or an order it cannot refund."""
        if phase not in AFTERSALE_PHASES:
            raise ValueError(f"unknown after-sales step {phase!r}")
        if kind not in (None, "refund", "return"):
            raise ValueError("kind must be 'refund' or 'return'")
        if amount_fen is not None and (
            isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen <= 0
        ):
            raise ValueError("amount_fen must be a positive integer")
        now = at if at is not None else time.time()
        with self.lock:
            sim_order = self.orders.get(str(order_id))
            if sim_order is None:
                raise ValueError(f"no order {order_id}")
            sale = sim_order.aftersales.get(str(refund_id)) if refund_id else None
            if sale is None:
                if sim_order.status not in ("paid", "shipped"):
                    raise ValueError(f"order {order_id} is {sim_order.status}: nothing to refund")
                line = next((ln for ln in sim_order.lines if ln.line_id == line_id), None) if line_id else None
                if line_id and line is None:
                    raise ValueError(f"order {order_id} has no sub-order {line_id}")
                sale = SimAfterSale(
                    refund_id=str(refund_id or self.new_refund_id()),
                    order_id=sim_order.order_id,
                    kind="return" if kind == "return" or phase in ("return_agreed", "goods_returned") else "refund",
                    phase=phase,
                    amount_fen=amount_fen or (line.amount_fen if line else sim_order.total_fen),
                    line_id=line_id,
                    created_at=now,
                    updated_at=now,
                )
                sim_order.aftersales[sale.refund_id] = sale
            elif sale.phase == "succeeded":
                raise ValueError(f"refund {sale.refund_id} is paid already")
            if kind is not None:
                sale.kind = "return" if kind == "return" else "refund"
            if amount_fen is not None:
                sale.amount_fen = amount_fen
            sale.phase, sale.updated_at = phase, now
            sale.message_id = self.new_message_id(random.Random())
            paid = sum(s.amount_fen for s in sim_order.aftersales.values() if s.phase == "succeeded")
            if phase == "succeeded" and paid >= sim_order.total_fen:
                sim_order.status = "refunded"
            sim_order.updated_at = max(sim_order.updated_at, now)
            snapshot = replace(sale)
        if send:
            self.emit_aftersale(snapshot, sim_order)
        return snapshot

    def new_refund_id(self) -> str:
        return str(random.randint(10**17, 10**18 - 1))  # noqa: S311 - simulated ids

    @abstractmethod
    def emit_aftersale(self, sale: SimAfterSale, order: SimOrder) -> None:
        """Send the platform's message for an after-sales step (each platform's own shape)."""

    # --- what each platform provides ---------------------------------------------------------

    single_line_orders = False

    @abstractmethod
    def new_order_id(self, rng: random.Random) -> str: ...

    def new_line_id(self, order_id: str, index: int) -> str:
        return str(int(order_id) + index + 1)

    @abstractmethod
    def new_message_id(self, rng: random.Random) -> str: ...

    @abstractmethod
    def emit(self, event: ShowEvent, order: SimOrder) -> None:
        """Hand one event to the platform's delivery (a push, or the TMC queue)."""

    def extra_state(self) -> dict[str, Any]:
        return {}

    # --- control paths ------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return {"platform": self.platform, "shop_id": self.shop_id, "ok": True}

    def control(self, request: ApiRequest) -> Reply | None:
        path, verb = request.path.rstrip("/"), request.method
        if path == "/_sim/show" and verb == "POST":
            run = self.run_show(ShowSpec.from_dict(request.json()))
            return Reply.of({"show_id": run.show_id, **run.plan.summary()}, 201)
        if path.startswith("/_sim/shows/"):
            run = self.shows[int(path.rsplit("/", 1)[1])]
            return Reply.of({"show_id": run.show_id, "emitted": run.emitted, "done": run.done.is_set()})
        if path == "/_sim/orders":
            with self.lock:
                return Reply.of({oid: o.status for oid, o in self.orders.items()})
        if path.startswith("/_sim/orders/"):
            with self.lock:
                order = self.orders.get(path.rsplit("/", 1)[1])
                return Reply.of(asdict(order)) if order else Reply.of({"error": "no such order"}, 404)
        if path == "/_sim/aftersales" and verb == "POST":
            try:
                body = request.json()
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object")
                sale = self.aftersale(
                    str(body.get("order_id", "")), str(body.get("phase", "")), kind=body.get("kind"),
                    amount_fen=body.get("amount_fen"), refund_id=body.get("refund_id"), line_id=body.get("line_id"),
                )  # fmt: skip
            except ValueError as exc:
                return Reply.of({"error": str(exc)}, 400)
            return Reply.of(asdict(sale), 201)
        if path == "/_sim/stock":
            with self.lock:
                return Reply.of(dict(self.stock))
        if path == "/_sim/deliveries" or path == "/_sim/state":
            return Reply.of(self.extra_state())
        return None
