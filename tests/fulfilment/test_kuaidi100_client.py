"""``Kuaidi100Client`` against ``Kuaidi100Simulator`` over real sockets: a waybill end to end (the
simulator verifies the client's sign), idempotency by order code, a wrong secret refused, the
subscription and the query, tracking pushes to a receiver that verifies them (a refused push
retried, the states in order, the last one final; a wrong salt refused), and the transport
errors (timeout, 5xx, refused connection). No database."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from apps.fulfilment.carriers import kuaidi100
from apps.fulfilment.carriers.base import (
    BadSignature,
    CarrierError,
    CarrierRejected,
    CarrierTimeout,
    CarrierUnavailable,
    Credentials,
    Party,
    Tracking,
    WaybillRequest,
)
from apps.fulfilment.carriers.transport import CarrierClient
from apps.fulfilment.clients.kuaidi100 import Kuaidi100Client
from apps.fulfilment.simulator.kuaidi100 import Kuaidi100Simulator

CUSTOMER, KEY, SECRET, SALT = "SIMCUSTOMER", "sim-key", "sim-secret", "sim-salt"
SENDER = Party(
    name="张三", mobile="13800000000", province="浙江省", city="杭州市", district="西湖区", detail="文三路1号"
)
RECEIVER = Party(
    name="李四", mobile="13900001234", province="广东省", city="深圳市", district="南山区", detail="科技园2栋"
)


def _creds(**overrides: str) -> Credentials:
    fields = {"app_id": CUSTOMER, "app_key": KEY, "app_secret": SECRET, "push_salt": SALT} | overrides
    return Credentials(carrier="kuaidi100", **fields)


def _request(order_code: str = "PKG-0001", **overrides: Any) -> WaybillRequest:
    fields: dict[str, Any] = {
        "order_code": order_code,
        "express": "ZTO",
        "sender": SENDER,
        "receiver": RECEIVER,
        "items": (("T恤", 2),),
        "weight_kg": Decimal("0.8"),
    }
    return WaybillRequest(**(fields | overrides))


@pytest.fixture
def sim() -> Iterator[Kuaidi100Simulator]:
    with Kuaidi100Simulator(customer=CUSTOMER, key=KEY, secret=SECRET, salt=SALT, push_backoff=0.05) as server:
        yield server


@pytest.fixture
def client(sim: Kuaidi100Simulator) -> Iterator[Kuaidi100Client]:
    with Kuaidi100Client(_creds(), base_url=sim.base_url, timeout=2.0) as carrier:
        yield carrier


@dataclass
class Receiver:
    """Our side of the pushes: verifies each with ``parse_push(form, salt)`` and answers
    ``push_answer``; refuses the first ``fail_first`` pushes (and any that do not verify)."""

    salt: str
    fail_first: int = 0
    received: list[Tracking] = field(default_factory=list)
    errors: list[CarrierError] = field(default_factory=list)
    answered: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, form: dict[str, str]) -> bytes:
        with self.lock:
            self.answered += 1
            try:
                tracking = kuaidi100.parse_push(form, self.salt)
            except CarrierError as exc:
                self.errors.append(exc)
                return kuaidi100.push_answer(False)
            if self.answered <= self.fail_first:
                return kuaidi100.push_answer(False)
            self.received.append(tracking)
            return kuaidi100.push_answer(True)


@pytest.fixture
def receiver_url() -> Iterator[Callable[[Receiver], str]]:
    """A factory: ``receiver_url(receiver)`` serves ``receiver`` on a free port and returns its URL."""
    servers: list[ThreadingHTTPServer] = []

    def serve(receiver: Receiver) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = receiver.handle(dict(parse_qsl(body.decode(), keep_blank_values=True)))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/hooks/kuaidi100"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


# --- waybills -------------------------------------------------------------------------------------


def test_a_waybill_end_to_end(sim: Kuaidi100Simulator, client: Kuaidi100Client) -> None:
    carrier: CarrierClient = client
    waybill = carrier.create_waybill(_request())
    assert waybill.carrier == "kuaidi100" and waybill.express == "ZTO" and waybill.order_code == "PKG-0001"
    assert waybill.waybill_no == "780000000001"
    assert waybill.routing_code == "广东 深圳 南山"
    assert len(waybill.origin_code) == 3 and len(waybill.dest_code) == 3
    assert waybill.label == f"{sim.base_url}/_sim/labels/{waybill.waybill_no}"
    page = httpx.get(waybill.label)
    assert page.headers["content-type"].startswith("text/html") and waybill.waybill_no in page.text
    (call,) = sim.calls("waybill")
    assert call.accepted and call.api_method == "label/order"  # the simulator verified sign_label
    assert call.params["orderId"] == "PKG-0001" and call.params["kuaidicom"] == "zhongtong"
    assert sim.waybills[waybill.waybill_no].subscription is None  # no callback_url: no auto-subscription


def test_the_same_order_code_twice_is_one_waybill(sim: Kuaidi100Simulator, client: Kuaidi100Client) -> None:
    first = client.create_waybill(_request("PKG-7"))
    again = client.create_waybill(_request("PKG-7"))
    other = client.create_waybill(_request("PKG-8"))
    assert again.waybill_no == first.waybill_no != other.waybill_no
    assert set(sim.waybills) == {first.waybill_no, other.waybill_no}
    # reorder=true (not something the client sends) is what asks for a new number
    form = kuaidi100.build_label_order(_creds(), _request("PKG-7"), t_ms=1700000000000, reorder=True)
    answer = httpx.post(f"{sim.base_url}/label/order", data=form).json()
    assert answer["code"] == 200 and answer["data"]["kuaidinum"] not in (first.waybill_no, other.waybill_no)


def test_a_wrong_secret_is_refused_and_allocates_nothing(sim: Kuaidi100Simulator) -> None:
    with Kuaidi100Client(_creds(app_secret="wrong"), base_url=sim.base_url, timeout=2.0) as client:
        with pytest.raises(CarrierRejected) as refused:
            client.create_waybill(_request())
    assert refused.value.code == "30002" and not refused.value.retryable
    assert "验证签名失败" in refused.value.message
    assert sim.waybills == {}
    assert [(c.accepted, c.error) for c in sim.calls("waybill")] == [(False, "30002")]


# --- subscription and query -----------------------------------------------------------------------


def test_subscribing_twice_succeeds_both_times(sim: Kuaidi100Simulator, client: Kuaidi100Client) -> None:
    waybill = client.create_waybill(_request())
    for _ in range(2):
        client.subscribe(express="ZTO", waybill_no=waybill.waybill_no, callback_url="http://127.0.0.1:9/hook")
    assert [(c.accepted, c.error) for c in sim.calls("subscribe")] == [(True, None), (False, "501")]
    subscription = sim.waybills[waybill.waybill_no].subscription
    assert subscription is not None and subscription.salt == SALT and subscription.active
    with Kuaidi100Client(_creds(app_key="wrong"), base_url=sim.base_url, timeout=2.0) as stranger:
        with pytest.raises(CarrierRejected) as refused:
            stranger.subscribe(express="ZTO", waybill_no=waybill.waybill_no, callback_url="http://127.0.0.1:9/hook")
    assert refused.value.code == "600"


def test_query_refuses_until_there_is_a_trace(sim: Kuaidi100Simulator, client: Kuaidi100Client) -> None:
    waybill = client.create_waybill(_request())
    with pytest.raises(CarrierRejected) as nothing_yet:
        client.query(express="ZTO", waybill_no=waybill.waybill_no)
    assert nothing_yet.value.code == "500" and nothing_yet.value.retryable  # 查询无结果
    sim.advance(waybill.waybill_no, "1")
    sim.advance(waybill.waybill_no, "0", "快件已到达【深圳转运中心】", "深圳")
    tracking = client.query(express="ZTO", waybill_no=waybill.waybill_no, phone="1234")
    assert (tracking.waybill_no, tracking.express, tracking.state, tracking.final) == (
        waybill.waybill_no,
        "ZTO",
        "in_transit",
        False,
    )
    assert [(e.code, e.location) for e in tracking.events] == [("1", "杭州"), ("0", "深圳")]
    assert tracking.events[0].at is not None and tracking.events[1].at is not None
    assert tracking.events[0].at < tracking.events[1].at
    with pytest.raises(CarrierRejected) as wrong_phone:
        client.query(express="ZTO", waybill_no=waybill.waybill_no, phone="9999")
    assert wrong_phone.value.code == "408"
    with Kuaidi100Client(_creds(app_key="wrong"), base_url=sim.base_url, timeout=2.0) as stranger:
        with pytest.raises(CarrierRejected) as bad_sign:
            stranger.query(express="ZTO", waybill_no=waybill.waybill_no)
    assert bad_sign.value.code == "503"
    assert [c.error for c in sim.calls("query")] == ["500", None, "408", "503"]


# --- pushes ---------------------------------------------------------------------------------------


def test_tracking_pushes_arrive_in_order_after_a_retry_and_end_final(
    sim: Kuaidi100Simulator, client: Kuaidi100Client, receiver_url: Callable[[Receiver], str]
) -> None:
    receiver = Receiver(SALT, fail_first=1)
    waybill = client.create_waybill(_request(callback_url=receiver_url(receiver)))  # auto-subscribed
    sim.run_tracking(waybill.waybill_no)
    sim.wait_pushes(5)
    assert [t.carrier_state for t in receiver.received] == ["1", "0", "5", "3"]
    assert [len(t.events) for t in receiver.received] == [1, 2, 3, 4]  # each push carries the whole trace
    assert [t.final for t in receiver.received] == [False, False, False, True]
    last = receiver.received[-1]
    assert last.raw["status"] == "shutdown" and last.state == "delivered" and last.waybill_no == waybill.waybill_no
    assert [(c.params["state"], c.params["attempt"], c.accepted) for c in sim.calls("push")] == [
        ("1", 1, False),
        ("1", 2, True),
        ("0", 1, True),
        ("5", 1, True),
        ("3", 1, True),
    ]
    assert receiver.errors == []
    assert sim.advance(waybill.waybill_no, "3") is False  # shutdown ended the subscription


def test_a_receiver_with_the_wrong_salt_gets_bad_signature(
    sim: Kuaidi100Simulator, client: Kuaidi100Client, receiver_url: Callable[[Receiver], str]
) -> None:
    sim.push_retries = 1
    receiver = Receiver("not-the-salt")
    waybill = client.create_waybill(_request())
    client.subscribe(express="ZTO", waybill_no=waybill.waybill_no, callback_url=receiver_url(receiver))
    assert sim.advance(waybill.waybill_no, "1") is True
    sim.wait_pushes(5)
    assert receiver.received == [] and len(receiver.errors) == 2
    assert all(isinstance(error, BadSignature) for error in receiver.errors)
    assert [c.accepted for c in sim.calls("push")] == [False, False]  # retried once, then given up


def test_control_paths(
    sim: Kuaidi100Simulator, client: Kuaidi100Client, receiver_url: Callable[[Receiver], str]
) -> None:
    receiver = Receiver(SALT)
    url = receiver_url(receiver)
    number = client.create_waybill(_request(callback_url=url)).waybill_no
    answer = httpx.post(f"{sim.base_url}/_sim/advance", json={"waybill": number, "state": "1", "context": "揽收"})
    assert answer.json() == {"ok": True, "pushed": True}
    assert httpx.post(f"{sim.base_url}/_sim/track", json={"waybill": number, "states": ["5", "3"]}).status_code == 202
    sim.wait_pushes(5)
    assert [t.carrier_state for t in receiver.received] == ["1", "5", "3"]
    listed = httpx.get(f"{sim.base_url}/_sim/waybills").json()[number]
    assert listed["order_id"] == "PKG-0001" and listed["express"] == "zhongtong"
    assert listed["subscription"] == {"callbackurl": url, "signed": True, "active": False}
    assert [item["context"] for item in listed["trace"]] == ["快件已签收", "快件派送中", "揽收"]
    assert httpx.post(f"{sim.base_url}/_sim/advance", json={"waybill": "NOPE", "state": "1"}).status_code == 400


# --- transport errors -----------------------------------------------------------------------------


def test_a_hung_call_times_out_with_the_outcome_unknown(sim: Kuaidi100Simulator) -> None:
    sim.set_fault("timeout", 5, hang=2)
    with Kuaidi100Client(_creds(), base_url=sim.base_url, timeout=0.5) as client:
        with pytest.raises(CarrierTimeout) as timed_out:
            client.create_waybill(_request())
    assert timed_out.value.outcome_unknown and timed_out.value.retryable


def test_a_server_error_is_retryable(sim: Kuaidi100Simulator, client: Kuaidi100Client) -> None:
    sim.set_fault("error", 5)
    with pytest.raises(CarrierUnavailable) as failed:
        client.create_waybill(_request())
    assert failed.value.retryable and failed.value.http_status == 500 and not failed.value.outcome_unknown
    sim.clear_fault()
    assert client.create_waybill(_request()).waybill_no
    assert [c.error for c in sim.calls("fault")] == ["error"]


def test_a_refused_connection_is_unavailable_and_not_applied() -> None:
    sim = Kuaidi100Simulator(customer=CUSTOMER, key=KEY, secret=SECRET).start()
    sim.stop()
    with Kuaidi100Client(_creds(), base_url=sim.base_url, timeout=1.0) as client:
        with pytest.raises(CarrierUnavailable) as refused:
            client.create_waybill(_request())
    assert refused.value.retryable and not refused.value.outcome_unknown
    assert not isinstance(refused.value, CarrierTimeout)
