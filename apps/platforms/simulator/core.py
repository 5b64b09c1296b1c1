"""The part the three simulators share: a threaded HTTP server started in-process on any port,
the in-memory order store, the record of our API calls, fault injection, live-show traffic and the
JSON control API under ``/_sim/``:

- ``GET /_sim/health``; ``GET /_sim/calls[?kind=stock|ship|detail|tmc]``; ``DELETE /_sim/calls``
- ``POST /_sim/fault {"mode": "timeout"|"error", "seconds": 5, "hang": 30, "methods": [...]}``;
  ``DELETE /_sim/fault``
- ``POST /_sim/show {"skus": [{"code","sku_id","item_id","price_fen"}], "orders", "seed",
  "pay_share", "cancel_share", "duplicate_share", "shuffle", "interval", ...}`` -> the plan summary;
  ``GET /_sim/shows/<id>`` -> progress
- ``GET /_sim/orders``, ``GET /_sim/orders/<id>``, ``GET /_sim/stock``, ``GET /_sim/deliveries``
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, urlsplit

from .traffic import ShowEvent, ShowPlan, ShowSpec, SimOrder, SimSku, apply_event, plan_show

FaultMode = Literal["timeout", "error"]


@dataclass
class ApiRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lowercase names
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        if "application/x-www-form-urlencoded" in self.headers.get("content-type", ""):
            return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))
        return {}

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"

    @classmethod
    def of(cls, payload: Any, status: int = 200) -> Reply:
        return cls(status, json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())


@dataclass
class Fault:
    mode: FaultMode
    until: float
    hang: float
    methods: frozenset[str] | None

    def applies(self, api_method: str, now: float) -> bool:
        return now < self.until and (self.methods is None or api_method in self.methods)


@dataclass
class Call:
    """One API call we received: ``kind`` is detail / stock / ship / tmc / other."""

    seq: int
    at: float
    kind: str
    api_method: str
    params: dict[str, Any]
    accepted: bool
    error: str | None = None


@dataclass
class ShowRun:
    show_id: int
    plan: ShowPlan
    emitted: int = 0
    done: threading.Event = field(default_factory=threading.Event)


class PlatformSimulator(ABC):
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
        self.app_key = app_key
        self.app_secret = app_secret
        self.access_token = access_token
        self.shop_id = shop_id
        self.push_url = push_url
        self.timestamp_tolerance = timestamp_tolerance
        self.lock = threading.RLock()
        self.orders: dict[str, SimOrder] = {}
        self.stock: dict[str, int] = {}
        self.skus: dict[str, SimSku] = {}
        self._calls: list[Call] = []
        self._seq = itertools.count(1)
        self._show_ids = itertools.count(1)
        self.shows: dict[int, ShowRun] = {}
        self.fault: Fault | None = None
        self.stopping = threading.Event()
        self.host = host
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._threads: list[threading.Thread] = []

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        self.spawn(self._server.serve_forever, name=f"{self.platform}-sim-http", args=(0.05,))
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def spawn(self, target: Any, *, name: str, args: tuple[Any, ...] = ()) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def set_platform_stock(self, key: str, value: int) -> None:
        """What the platform shows for a SKU (key: merchant code, else platform SKU id) before we
        push anything; Kuaishou's incremental updates start from it."""
        with self.lock:
            self.stock[key] = value

    # --- calls and faults ---------------------------------------------------------------------

    def record(
        self, kind: str, api_method: str, params: Mapping[str, Any], *, accepted: bool, error: str | None = None
    ) -> None:
        with self.lock:
            self._calls.append(Call(next(self._seq), time.time(), kind, api_method, dict(params), accepted, error))

    def calls(self, kind: str | None = None) -> list[Call]:
        with self.lock:
            return [c for c in self._calls if kind is None or c.kind == kind]

    def clear_calls(self) -> None:
        with self.lock:
            self._calls.clear()

    def set_fault(
        self, mode: FaultMode, seconds: float, *, hang: float = 30.0, methods: list[str] | None = None
    ) -> None:
        """For ``seconds``: ``timeout`` holds each API call ``hang`` seconds (capped at the window's
        end) and then answers 504 without applying it; ``error`` answers HTTP 500 with the
        platform's error envelope."""
        if mode not in ("timeout", "error") or seconds <= 0 or hang < 0:
            raise ValueError("mode must be timeout or error, seconds > 0, hang >= 0")
        with self.lock:
            self.fault = Fault(mode, time.time() + seconds, hang, frozenset(methods) if methods else None)

    def clear_fault(self) -> None:
        with self.lock:
            self.fault = None

    def _fault_reply(self, api_method: str) -> Reply | None:
        with self.lock:
            fault = self.fault
        now = time.time()
        if fault is None or not fault.applies(api_method, now):
            return None
        if fault.mode == "timeout":
            self.stopping.wait(min(fault.hang, max(0.0, fault.until - now)))
            self.record("fault", api_method, {}, accepted=False, error="timeout")
            return Reply.of({"fault": "timeout"}, 504)
        self.record("fault", api_method, {}, accepted=False, error="error")
        return Reply(500, self.error_body("simulated platform error"))

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

    @abstractmethod
    def api(self, request: ApiRequest) -> Reply:
        """Serve one platform API call (signature check included)."""

    @abstractmethod
    def api_method_of(self, request: ApiRequest) -> str:
        """The API method a request names (for fault filters)."""

    @abstractmethod
    def error_body(self, message: str) -> bytes:
        """The platform's error envelope for a server-side failure."""

    def extra_state(self) -> dict[str, Any]:
        return {}

    # --- dispatch -----------------------------------------------------------------------------

    def handle(self, request: ApiRequest) -> Reply:
        if request.path.startswith("/_sim/"):
            try:
                return self._control(request)
            except (ValueError, KeyError, TypeError) as exc:
                return Reply.of({"error": str(exc)}, 400)
        faulted = self._fault_reply(self.api_method_of(request))
        return faulted or self.api(request)

    def _control(self, request: ApiRequest) -> Reply:
        path, verb = request.path.rstrip("/"), request.method
        if path == "/_sim/health":
            return Reply.of({"platform": self.platform, "shop_id": self.shop_id, "ok": True})
        if path == "/_sim/calls" and verb == "GET":
            return Reply.of([asdict(c) for c in self.calls(request.query.get("kind"))])
        if path == "/_sim/calls" and verb == "DELETE":
            self.clear_calls()
            return Reply.of({"ok": True})
        if path == "/_sim/fault" and verb == "POST":
            body = request.json()
            self.set_fault(body["mode"], float(body["seconds"]), hang=float(body.get("hang", 30)),
                           methods=body.get("methods"))  # fmt: skip
            return Reply.of({"ok": True})
        if path == "/_sim/fault" and verb == "DELETE":
            self.clear_fault()
            return Reply.of({"ok": True})
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
        if path == "/_sim/stock":
            with self.lock:
                return Reply.of(dict(self.stock))
        if path == "/_sim/deliveries" or path == "/_sim/state":
            return Reply.of(self.extra_state())
        return Reply.of({"error": "unknown control path"}, 404)


def _handler_for(sim: PlatformSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = ApiRequest(
                method=self.command,
                path=parts.path,
                query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            try:
                reply = sim.handle(request)
            except Exception as exc:  # noqa: BLE001 - a simulator bug answers 500, visibly
                reply = Reply(500, sim.error_body(f"simulator error: {type(exc).__name__}: {exc}"))
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):  # the caller gave up (its timeout)
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    return Handler
