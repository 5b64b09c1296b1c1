"""The HTTP side every local simulator of an outside service shares (the sales platforms of
``apps.platforms.simulator``, the carriers of ``apps.fulfilment.simulator``): a threaded server
started in process on any port, the record of the API calls it received, fault injection, and a
JSON control API under ``/_sim/``:

- ``GET /_sim/health``; ``GET /_sim/calls[?kind=...]``; ``DELETE /_sim/calls``
- ``POST /_sim/fault {"mode": "timeout"|"error", "seconds": 5, "hang": 30, "methods": [...]}``;
  ``DELETE /_sim/fault``

A subclass serves the service's API (:meth:`SimServer.api`), names the method a request calls (for
fault filters) and the service's error envelope, and may add control paths (:meth:`SimServer.control`).
A service that also calls back (a carrier's tracking pushes) builds on :class:`PushingSimServer`: a
queue of pushes delivered in order with retries, and background runs it waits for.
Standard library and httpx only (a project requirement): a simulator runs where the project runs,
with nothing more to install.
"""

from __future__ import annotations

import itertools
import json
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self, TypedDict
from urllib.parse import parse_qsl, urlsplit

import httpx

FaultMode = Literal["timeout", "error", "reject"]


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
    """One API call received: ``kind`` is the simulator's own grouping (stock, ship, waybill...)."""

    seq: int
    at: float
    kind: str
    api_method: str
    params: dict[str, Any]
    accepted: bool
    error: str | None = None


class SimServer(ABC):
    """``start()`` binds ``host:port`` (port 0 = any free port) and serves in daemon threads;
    ``stop()`` ends everything it started."""

    service = ""  # names the threads and the health answer

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.lock = threading.RLock()
        self._calls: list[Call] = []
        self._seq = itertools.count(1)
        self.fault: Fault | None = None
        self.stopping = threading.Event()
        self.host = host
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._threads: list[threading.Thread] = []
        self._inflight = 0  # requests being answered (a keep-alive connection waiting is not one)
        self._idle = threading.Condition()

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        self.spawn(self._server.serve_forever, name=f"{self.service}-sim-http", args=(0.05,))
        return self

    def stop(self) -> None:
        """Stop serving. A request being answered finishes first (a call held by the timeout
        fault ends at once and is recorded), so ``calls()`` is complete when this returns."""
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._idle:
            self._idle.wait_for(lambda: self._inflight == 0, timeout=10)
        for thread in self._threads:
            thread.join(timeout=10)

    def _answering(self, delta: int) -> None:
        with self._idle:
            self._inflight += delta
            self._idle.notify_all()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def spawn(self, target: Any, *, name: str, args: tuple[Any, ...] = ()) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

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
        service's error envelope; ``reject`` answers the service's own refusal of the call
        (:meth:`reject_reply`: a carrier that will not take the parcel)."""
        if mode not in ("timeout", "error", "reject") or seconds <= 0 or hang < 0:
            raise ValueError("mode must be timeout, error or reject, seconds > 0, hang >= 0")
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
        if fault.mode == "reject":
            self.record("fault", api_method, {}, accepted=False, error="reject")
            return self.reject_reply(api_method)
        self.record("fault", api_method, {}, accepted=False, error="error")
        return Reply(500, self.error_body(f"simulated {self.service} error"))

    def reject_reply(self, api_method: str) -> Reply:
        """The service's refusal of a call, for the ``reject`` fault (a subclass answers in its format)."""
        return Reply(400, self.error_body(f"simulated {self.service} refusal"))

    # --- what each simulator provides ---------------------------------------------------------

    @abstractmethod
    def api(self, request: ApiRequest) -> Reply:
        """Serve one API call of the service (signature check included)."""

    @abstractmethod
    def api_method_of(self, request: ApiRequest) -> str:
        """The API method a request names (for fault filters)."""

    @abstractmethod
    def error_body(self, message: str) -> bytes:
        """The service's error envelope for a server-side failure."""

    def health(self) -> dict[str, Any]:
        return {"service": self.service, "ok": True}

    def control(self, request: ApiRequest) -> Reply | None:
        """A control path of the subclass's own under ``/_sim/`` (None: not one)."""
        return None

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
            return Reply.of(self.health())
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
        reply = self.control(request)
        return reply if reply is not None else Reply.of({"error": "unknown control path"}, 404)


class PushOptions(TypedDict, total=False):
    """The constructor options of a :class:`PushingSimServer`, passed through by its subclasses."""

    host: str
    port: int
    push_retries: int
    push_backoff: float
    push_timeout: float


@dataclass(frozen=True)
class Push:
    """One outbound push: where it goes, the bytes and their content type, and what each attempt's
    record shows (``params``; the attempt number and the answer's HTTP status are added)."""

    url: str
    body: bytes
    content_type: str
    params: dict[str, Any]


class PushingSimServer(SimServer):
    """A simulator that also pushes to a receiver. Pushes go out one at a time in the order queued
    (:meth:`enqueue`), each sent again up to ``push_retries`` times, :meth:`push_delay` apart, while
    :meth:`push_acknowledged` says no; ``push_timeout`` bounds each request. Every attempt is a call
    of kind ``push`` (api method :attr:`push_method`). :meth:`run_steps` runs a sequence (a tracking
    run) in the background; :meth:`wait_pushes` waits for both to finish."""

    push_method = "push"  # the api_method of the recorded attempts

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        push_retries: int = 3,
        push_backoff: float = 0.2,
        push_timeout: float = 5.0,
    ) -> None:
        if push_retries < 0 or push_backoff < 0 or push_timeout <= 0:
            raise ValueError("push_retries and push_backoff must be >= 0, push_timeout > 0")
        super().__init__(host=host, port=port)
        self.push_retries = push_retries
        self.push_backoff = push_backoff
        self.push_timeout = push_timeout
        self._pushes: queue.Queue[Push | None] = queue.Queue()
        self._push_idle = threading.Condition()
        self._pending = 0  # pushes queued or being delivered
        self._runs = 0  # run_steps threads still going

    def start(self) -> Self:
        super().start()
        self.spawn(self._deliver_pushes, name=f"{self.service}-sim-pusher")
        return self

    def stop(self) -> None:
        """Stop serving and pushing; pushes still queued are dropped."""
        self.stopping.set()
        self._pushes.put(None)
        super().stop()

    # --- what each pushing simulator provides -------------------------------------------------

    @abstractmethod
    def push_acknowledged(self, response: httpx.Response) -> tuple[bool, str | None]:
        """Whether the receiver's answer acknowledges the push, and if not, the error to record."""

    def push_headers(self, push: Push) -> Mapping[str, str]:
        """Headers of one attempt besides ``Content-Type`` (none by default). Called at each attempt,
        so a signature over a timestamp is fresh on a retry sent minutes later."""
        return {}

    def push_delay(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2, 3, ...): ``push_backoff`` × the attempts so far."""
        return self.push_backoff * (attempt - 1)

    # --- pushes and runs ----------------------------------------------------------------------

    def enqueue(self, url: str, body: bytes, *, content_type: str, params: Mapping[str, Any]) -> None:
        """Queue a push behind those already queued (call it under :attr:`lock` to keep their order)."""
        self._count(pushes=1)
        self._pushes.put(Push(url, body, content_type, dict(params)))

    def run_steps(self, name: str, steps: Sequence[Callable[[], object]], interval: float) -> threading.Thread:
        """Call ``steps`` in order in a background thread named after ``name``, ``interval`` seconds
        apart, until the server stops; :meth:`wait_pushes` waits for the run too. Returns the thread."""
        self._count(runs=1)

        def run() -> None:
            try:
                for index, step in enumerate(steps):
                    if self.stopping.wait(interval if index else 0):
                        return
                    step()
            finally:
                self._count(runs=-1)

        return self.spawn(run, name=f"{self.service}-sim-{name}")

    def wait_pushes(self, timeout: float) -> None:
        """Return once every background run has ended and every queued push is delivered or given
        up; TimeoutError after ``timeout`` seconds."""
        with self._push_idle:
            if not self._push_idle.wait_for(lambda: self._pending == 0 and self._runs == 0, timeout):
                raise TimeoutError(
                    f"{self.service} simulator: {self._pending} pushes, {self._runs} tracking runs still pending"
                )

    def _count(self, *, pushes: int = 0, runs: int = 0) -> None:
        with self._push_idle:
            self._pending += pushes
            self._runs += runs
            self._push_idle.notify_all()

    def _deliver_pushes(self) -> None:
        with httpx.Client(timeout=self.push_timeout) as client:
            while (push := self._pushes.get()) is not None:
                try:
                    self._deliver(client, push)
                finally:
                    self._count(pushes=-1)

    def _deliver(self, client: httpx.Client, push: Push) -> None:
        for attempt in range(1, self.push_retries + 2):
            if attempt > 1 and self.stopping.wait(self.push_delay(attempt)):
                return
            if self.stopping.is_set():
                return
            status: int | None = None
            error: str | None
            try:
                headers = {"Content-Type": push.content_type, **self.push_headers(push)}
                response = client.post(push.url, content=push.body, headers=headers)
            except httpx.HTTPError as exc:
                accepted, error = False, f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                accepted, error = self.push_acknowledged(response)
            params = push.params | {"attempt": attempt, "http_status": status}
            self.record("push", self.push_method, params, accepted=accepted, error=error)
            if accepted:
                return


def _handler_for(sim: SimServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

        def _serve(self) -> None:
            sim._answering(+1)
            try:
                self._answer()
            finally:
                sim._answering(-1)

        def _answer(self) -> None:
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
