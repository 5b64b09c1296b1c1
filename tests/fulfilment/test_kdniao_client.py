"""The Kdniao client against the Kdniao simulator over real sockets: a waybill end to end (the
simulator's own DataSign check included), the duplicate OrderCode, a wrong AppKey, subscribe,
query, cancel, tracking pushes to a small receiver that verifies them with the protocol module
(retry, order, a wrong AppKey), and the transport failures (timeout, 5xx, nothing listening).
No database, no live server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from apps.fulfilment.carriers import kdniao
from apps.fulfilment.carriers.base import (
    BadSignature,
    CarrierRejected,
    CarrierTimeout,
    CarrierUnavailable,
    Credentials,
    Party,
    Tracking,
    WaybillRequest,
)
from apps.fulfilment.clients.kdniao import KdniaoClient
from apps.fulfilment.simulator.kdniao import KdniaoSimulator

EBUSINESS_ID = "1234567"
APP_KEY = "kdn-app-key-0001"
CREDS = Credentials(carrier="kdniao", app_id=EBUSINESS_ID, app_key=APP_KEY)
SENDER = Party(name="张三", mobile="13800000001", province="浙江省", city="杭州市", district="余杭区",
               detail="文一西路1号")  # fmt: skip
RECEIVER = Party(name="李四", mobile="13900005678", province="广东省", city="深圳市", district="福田区",
                 detail="深南大道2号")  # fmt: skip


def waybill_request(order_code: str = "LC-0001", **changes: Any) -> WaybillRequest:
    values: dict[str, Any] = {"order_code": order_code, "express": "ZTO", "sender": SENDER, "receiver": RECEIVER,
                              "items": (("T恤 白色 L", 2),), "weight_kg": Decimal("0.8")}  # fmt: skip
    return WaybillRequest(**(values | changes))


@pytest.fixture
def sim() -> Iterator[KdniaoSimulator]:
    with KdniaoSimulator(ebusiness_id=EBUSINESS_ID, app_key=APP_KEY) as server:
        yield server


@pytest.fixture
def client(sim: KdniaoSimulator) -> Iterator[KdniaoClient]:
    with KdniaoClient(CREDS, base_url=sim.base_url, timeout=2.0) as kdn:
        yield kdn


class PushReceiver:
    """Our side of the 101 push, as small as it gets: each form is checked with
    ``kdniao.parse_push`` and answered with ``kdniao.push_answer``; the first ``fail_first``
    good pushes are answered with a failure."""

    def __init__(self, app_key: str, fail_first: int = 0) -> None:
        self.app_key = app_key
        self.fail_first = fail_first
        self.received: list[Tracking] = []
        self.errors: list[Exception] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    trackings = kdniao.parse_push(kdniao.decode_form(body), receiver.app_key)
                except BadSignature as exc:
                    with receiver.lock:
                        receiver.errors.append(exc)
                    answer = kdniao.push_answer(EBUSINESS_ID, False, exc.message)
                else:
                    with receiver.lock:
                        refuse = receiver.fail_first > 0
                        receiver.fail_first -= refuse
                        if not refuse:
                            receiver.received.extend(trackings)
                    answer = kdniao.push_answer(EBUSINESS_ID, not refuse, "busy" if refuse else "")
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/kdniao/push"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def make_receiver() -> Iterator[Callable[..., PushReceiver]]:
    receivers: list[PushReceiver] = []

    def make(app_key: str = APP_KEY, fail_first: int = 0) -> PushReceiver:
        receivers.append(PushReceiver(app_key, fail_first))
        return receivers[-1]

    yield make
    for receiver in receivers:
        receiver.close()


# --- waybills -----------------------------------------------------------------------------------


def test_waybill_end_to_end(sim: KdniaoSimulator, client: KdniaoClient) -> None:
    waybill = client.create_waybill(waybill_request())
    assert (waybill.carrier, waybill.express, waybill.order_code) == ("kdniao", "ZTO", "LC-0001")
    assert waybill.waybill_no == "75310000000001"
    assert waybill.routing_code == "广东-深圳"  # 大头笔 from the receiver's province and city
    assert waybill.origin_code.isdigit() and waybill.dest_code.isdigit() and waybill.origin_code != waybill.dest_code
    assert waybill.label.startswith("<html") and "75310000000001" in waybill.label and "广东-深圳" in waybill.label
    assert waybill.raw["Order"]["PackageName"] == "深圳转运中心" and "PrintTemplate" not in waybill.raw

    (call,) = sim.calls("waybill")
    assert (call.api_method, call.accepted, call.error) == ("1007", True, None)  # DataSign verified by the simulator
    assert call.params["OrderCode"] == "LC-0001" and call.params["Receiver"]["CityName"] == "深圳市"
    assert call.params["Commodity"] == [{"GoodsName": "T恤 白色 L", "Goodsquantity": 2}]
    assert sim.waybills[waybill.waybill_no].subscribed is False  # no callback_url: IsSubscribe 0

    # Numbers run per express company; a callback_url subscribes the waybill at once.
    assert client.create_waybill(waybill_request("LC-0002", express="SF")).waybill_no == "SF1400000000001"
    second = client.create_waybill(waybill_request("LC-0003", callback_url="https://shop.example/kdn"))
    assert second.waybill_no == "75310000000002" and sim.waybills[second.waybill_no].subscribed is True

    # The simulator's check is its own: one character off in DataSign is refused.
    _path, form = kdniao.build_eorder(CREDS, waybill_request("LC-0004"))
    form["DataSign"] = form["DataSign"][:-2] + ("A=" if form["DataSign"][-2] != "A" else "B=")
    answer = httpx.post(sim.base_url + "/api/EOrderService", data=form).json()
    assert (answer["Success"], answer["ResultCode"], answer["Reason"]) == (False, "102", "验证数据签名失败")
    assert [c.error for c in sim.calls("waybill")] == [None, None, None, "bad_sign"]


def test_the_simulator_accepts_the_docs_check_value() -> None:
    # docs/carriers.md section 2: this RequestData signed with TEST-APPKEY.
    with KdniaoSimulator(ebusiness_id=EBUSINESS_ID, app_key="TEST-APPKEY") as server:
        form = {"RequestType": "1002", "EBusinessID": EBUSINESS_ID, "DataType": "2",
                "RequestData": '{"ShipperCode":"YTO","LogisticCode":"YT9693083639795"}',
                "DataSign": "N2Y4ZmNhZDFiNjA1ZjhhNTYyYjJkNzBmOGJmMWVmOTI="}  # fmt: skip
        sent = httpx.post(server.base_url + "/Ebusiness/EbusinessOrderHandle.aspx", data=form)
        assert sent.json()["Reason"] == "暂无轨迹信息"
        assert [(c.kind, c.accepted) for c in server.calls()] == [("query", True)]


def test_the_same_order_code_twice_is_one_waybill(sim: KdniaoSimulator, client: KdniaoClient) -> None:
    first = client.create_waybill(waybill_request("LC-0100"))
    with pytest.raises(CarrierRejected) as refused:
        client.create_waybill(waybill_request("LC-0100"))
    # Documented handling: Kdniao refuses the reuse and has no lookup by OrderCode, so the client
    # re-raises; the caller keeps the first number. No second number is drawn.
    assert refused.value.code == kdniao.DUPLICATE_ORDER_CODE and not refused.value.retryable
    assert [(c.accepted, c.error) for c in sim.calls("waybill")] == [(True, None), (False, "duplicate")]
    assert list(httpx.get(sim.base_url + "/_sim/waybills").json()) == [first.waybill_no]
    assert client.create_waybill(waybill_request("LC-0101")).waybill_no == "75310000000002"


def test_a_wrong_app_key_is_refused_and_allocates_nothing(sim: KdniaoSimulator) -> None:
    wrong = Credentials(carrier="kdniao", app_id=EBUSINESS_ID, app_key="not-the-key")
    with KdniaoClient(wrong, base_url=sim.base_url, timeout=2.0) as bad:
        with pytest.raises(CarrierRejected) as refused:
            bad.create_waybill(waybill_request())
        with pytest.raises(CarrierRejected):
            bad.query(express="ZTO", waybill_no="75310000000001")
    assert (refused.value.code, refused.value.retryable) == ("102", False)
    assert "验证数据签名失败" in refused.value.message
    assert sim.waybills == {}
    assert [(c.kind, c.accepted, c.error) for c in sim.calls()] == [
        ("waybill", False, "bad_sign"),
        ("query", False, "bad_sign"),
    ]
    with pytest.raises(ValueError, match="not kdniao"):
        KdniaoClient(Credentials(carrier="kuaidi100", app_id="c", app_key="k"))


# --- subscribe, query, cancel ---------------------------------------------------------------------


def test_subscribe_and_query(sim: KdniaoSimulator, client: KdniaoClient) -> None:
    waybill = client.create_waybill(waybill_request("LC-0200"))
    before = client.query(express="ZTO", waybill_no=waybill.waybill_no)
    assert (before.state, before.final, before.events, before.raw["Reason"]) == ("none", False, (), "暂无轨迹信息")

    client.subscribe(express="ZTO", waybill_no=waybill.waybill_no, order_code="LC-0200",
                     callback_url="https://shop.example/kdn?parcel=200")  # fmt: skip
    assert sim.waybills[waybill.waybill_no].subscribed is True
    assert sim.waybills[waybill.waybill_no].callback == "https://shop.example/kdn?parcel=200"

    sim.advance(waybill.waybill_no, "1", "1", station="【杭州市】已揽收", location="杭州市")
    collected = client.query(express="ZTO", waybill_no=waybill.waybill_no)
    assert (collected.state, collected.carrier_state, collected.order_code) == ("collected", "1", "LC-0200")
    assert [(e.text, e.location) for e in collected.events] == [("【杭州市】已揽收", "杭州市")]
    assert collected.events[0].at is not None
    sim.advance(waybill.waybill_no, "2", "202")
    delivering = client.query(express="ZTO", waybill_no=waybill.waybill_no)
    assert (delivering.state, len(delivering.events), delivering.events[-1].text) == ("delivering", 2, "快递员正在派件")

    # Any number can be subscribed; SF needs the phone's last four digits.
    with pytest.raises(CarrierRejected) as no_phone:
        client.subscribe(express="SF", waybill_no="SF1234567890123")
    assert no_phone.value.code == "101"
    client.subscribe(express="SF", waybill_no="SF1234567890123", phone=RECEIVER.mobile)
    assert sim.waybills["SF1234567890123"].subscribed is True
    assert [c.accepted for c in sim.calls("subscribe")] == [True, False, True]
    assert [c.accepted for c in sim.calls("query")] == [True, True, True]


def test_cancel(sim: KdniaoSimulator, client: KdniaoClient) -> None:
    fresh = client.create_waybill(waybill_request("LC-0300"))
    client.cancel(express="ZTO", order_code="LC-0300", waybill_no=fresh.waybill_no)
    assert sim.waybills[fresh.waybill_no].cancelled is True
    collected = client.create_waybill(waybill_request("LC-0301"))
    sim.advance(collected.waybill_no, "1", "1")
    with pytest.raises(CarrierRejected) as refused:
        client.cancel(express="ZTO", order_code="LC-0301", waybill_no=collected.waybill_no)
    assert "已揽收" in refused.value.message
    assert [(c.accepted, c.error) for c in sim.calls("cancel")] == [(True, None), (False, "collected")]


# --- pushes ---------------------------------------------------------------------------------------


def test_pushes_are_retried_and_arrive_in_order(make_receiver: Callable[..., PushReceiver]) -> None:
    receiver = make_receiver(fail_first=1)
    server = KdniaoSimulator(ebusiness_id=EBUSINESS_ID, app_key=APP_KEY, push_url=receiver.url, push_backoff=0.05)
    with server, KdniaoClient(CREDS, base_url=server.base_url) as kdn:
        waybill = kdn.create_waybill(waybill_request("LC-0400", callback_url="https://shop.example/kdn"))
        started = httpx.post(server.base_url + "/_sim/track", json={"waybill_no": waybill.waybill_no})
        assert started.status_code == 202
        server.wait_pushes(5)
        attempts = [(c.params["State"], c.params["attempt"], c.accepted) for c in server.calls("push")]
        assert attempts == [("1", 1, False), ("1", 2, True), ("2", 1, True), ("2", 1, True), ("3", 1, True)]
        assert "busy" in (server.calls("push")[0].error or "")

    assert [t.raw["State"] for t in receiver.received] == ["1", "2", "2", "3"]
    assert [t.carrier_state for t in receiver.received] == ["10", "201", "202", "301"]
    # StateEx 10 (待揽件) refines State 1: canonical "none" until the parcel is scanned in.
    assert [t.state for t in receiver.received] == ["none", "in_transit", "delivering", "delivered"]
    assert [t.final for t in receiver.received] == [False, False, False, True]
    assert [len(t.events) for t in receiver.received] == [1, 2, 3, 4]  # each push is the full snapshot
    assert {(t.waybill_no, t.order_code, t.express) for t in receiver.received} == {
        (waybill.waybill_no, "LC-0400", "ZTO")
    }


def test_a_receiver_with_another_app_key_gets_bad_signatures(make_receiver: Callable[..., PushReceiver]) -> None:
    receiver = make_receiver(app_key="another-key")
    server = KdniaoSimulator(
        ebusiness_id=EBUSINESS_ID, app_key=APP_KEY, push_url=receiver.url, push_retries=1, push_backoff=0.01
    )
    with server, KdniaoClient(CREDS, base_url=server.base_url) as kdn:
        kdn.subscribe(express="YTO", waybill_no="YT9693083639795")
        advance = server.base_url + "/_sim/advance"
        pushed = httpx.post(advance, json={"waybill_no": "YT9693083639795", "state": "2", "location": "上海市"})
        assert pushed.json()["Location"] == "上海市"
        assert httpx.post(advance, json={"waybill_no": "nope", "state": "2"}).status_code == 400
        server.wait_pushes(5)
        assert [(c.params["attempt"], c.accepted) for c in server.calls("push")] == [(1, False), (2, False)]
    assert receiver.received == [] and len(receiver.errors) == 2
    assert all(isinstance(error, BadSignature) for error in receiver.errors)


# --- transport failures ---------------------------------------------------------------------------


def test_a_timeout_fault_is_a_timeout_with_an_unknown_outcome(sim: KdniaoSimulator) -> None:
    sim.set_fault("timeout", 5, hang=2)
    with KdniaoClient(CREDS, base_url=sim.base_url, timeout=0.5) as impatient:
        started = time.monotonic()
        with pytest.raises(CarrierTimeout) as timed_out:
            impatient.create_waybill(waybill_request("LC-0500"))
        assert time.monotonic() - started < 1.5
        assert timed_out.value.outcome_unknown and timed_out.value.retryable
        assert sim.waybills == {}  # held, not applied
        sim.clear_fault()
        assert impatient.create_waybill(waybill_request("LC-0500")).waybill_no == "75310000000001"


def test_an_error_fault_is_retryable(sim: KdniaoSimulator, client: KdniaoClient) -> None:
    sim.set_fault("error", 5)
    with pytest.raises(CarrierUnavailable) as failed:
        client.create_waybill(waybill_request("LC-0600"))
    assert (failed.value.retryable, failed.value.outcome_unknown, failed.value.http_status) == (True, False, 500)
    envelope = httpx.post(sim.base_url + "/api/dist", data={"RequestType": "1008"})
    assert envelope.status_code == 500
    assert (envelope.json()["Success"], envelope.json()["ResultCode"]) == (False, "105")
    assert [c.error for c in sim.calls("fault")] == ["error", "error"] and sim.waybills == {}


def test_a_stopped_simulator_is_unavailable_and_nothing_was_sent() -> None:
    server = KdniaoSimulator(ebusiness_id=EBUSINESS_ID, app_key=APP_KEY).start()
    base_url = server.base_url
    server.stop()
    with KdniaoClient(CREDS, base_url=base_url, timeout=1.0) as kdn:
        with pytest.raises(CarrierUnavailable) as failed:
            kdn.create_waybill(waybill_request())
    assert type(failed.value) is CarrierUnavailable
    assert (failed.value.retryable, failed.value.outcome_unknown, failed.value.code) == (True, False, "transport")


def test_request_urls() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"EBusinessID": EBUSINESS_ID, "Success": True, "Reason": ""})

    with KdniaoClient(CREDS, transport=httpx.MockTransport(answer)) as production:
        production.subscribe(express="ZTO", waybill_no="1")
    with KdniaoClient(CREDS, base_url=kdniao.SANDBOX_URL, transport=httpx.MockTransport(answer)) as sandbox:
        sandbox.subscribe(express="ZTO", waybill_no="1")
    assert seen == ["https://api.kdniao.com/api/dist", kdniao.SANDBOX_URL]
