"""Show traffic from the simulators to a tiny local receiver (an http.server in the test) that
uses our protocol layer: Douyin signed arrays (verification push, duplicates, out-of-order),
Kuaishou encrypted pushes with heartbeats and retries until ``{"result":1}``, Taobao TMC
consume / confirm with redelivery of unconfirmed messages."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from apps.platforms.protocol import douyin, kuaishou, taobao
from apps.platforms.protocol.base import Credentials, PlatformError, PushEvent
from apps.platforms.simulator import DouyinSimulator, KuaishouSimulator, ShowSpec, SimSku, TaobaoSimulator
from apps.platforms.simulator.traffic import plan_show

MSG_SECRET = "a3NfbXNnX3NlY3JldF8xNg=="
SKUS = [SimSku("TEE-RED-M", "1750000000001", "3600000000001", 9900), SimSku("MUG-01", "1750000000002",
        "3600000000002", 3550)]  # fmt: skip


@dataclass
class Receiver:
    """Answers each POST with ``handle(headers, body) -> (status, body)`` and keeps what it got."""

    handle: Callable[[dict[str, str], bytes], tuple[int, bytes]]
    events: list[PushEvent] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    posts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Callable[[Callable[[Receiver, dict[str, str], bytes], tuple[int, bytes]]], Receiver]]:
    servers: list[ThreadingHTTPServer] = []

    def start(handle: Callable[[Receiver, dict[str, str], bytes], tuple[int, bytes]]) -> Receiver:
        rec = Receiver(handle=lambda h, b: handle(rec, h, b))

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with rec.lock:
                    rec.posts += 1
                status, answer = rec.handle({k: v for k, v in self.headers.items()}, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        rec.url = f"http://127.0.0.1:{server.server_address[1]}/push"
        return rec

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_show_plan_has_duplicates_and_out_of_order_events_and_is_deterministic() -> None:
    def make(spec: ShowSpec) -> list[tuple[str, str, str, bool, bool]]:
        plan = plan_show(spec, order_id=lambda r: str(r.randint(10**9, 10**10)), line_id=lambda o, i: f"{o}{i}",
                         message_id=lambda r: str(r.random()))  # fmt: skip
        return [(e.kind, e.order_id, e.message_id, e.duplicate, e.early) for e in plan.events]

    spec = dict(skus=SKUS, orders=200, seed=3, pay_share=0.7, cancel_share=0.2, duplicate_share=0.1, shuffle=0.2)
    events = make(ShowSpec(**spec))  # type: ignore[arg-type]
    assert events == make(ShowSpec(**spec))  # type: ignore[arg-type]
    assert 10 < sum(e[3] for e in events) < 70 and 10 < sum(e[4] for e in events) < 60
    seen: set[str] = set()
    for kind, order_id, _mid, _duplicate, early in events:
        if early:  # a paid/cancelled message delivered before its order's creation
            assert kind != "created" and order_id not in seen
        if kind == "created":
            seen.add(order_id)
    with pytest.raises(ValueError, match="pay_share"):
        ShowSpec(skus=SKUS, pay_share=0.9, cancel_share=0.2).validate()


def test_douyin_show_pushes_signed_arrays_with_duplicates_and_out_of_order(receiver) -> None:  # type: ignore[no-untyped-def]
    creds = Credentials(app_key="7001", app_secret="dy-secret", access_token="t", shop_id="1234567")

    def handle(rec: Receiver, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        try:
            douyin.verify_push(headers, body, creds)
            events = douyin.parse_push(body)
        except PlatformError as exc:
            rec.refused.append(exc.code)
            return 200, douyin.push_failure_body(exc.message)
        with rec.lock:
            rec.events.extend(events)
        return 200, douyin.push_ack_body()

    rec = receiver(handle)
    with DouyinSimulator(app_key="7001", app_secret="dy-secret", access_token="t", shop_id="1234567",
                         push_url=rec.url, push_workers=2) as sim:  # fmt: skip
        sim.send_verification()
        run = sim.run_show(ShowSpec(skus=SKUS, orders=60, seed=11, duplicate_share=0.1, shuffle=0.2))
        sim.wait_show(run, timeout=30)
        state = sim.extra_state()
    plan = run.plan
    assert rec.refused == []
    assert state["failed"] == 0 and state["delivered"] == len(plan.events) + 1
    assert any(e.kind == "verification" for e in rec.events)
    got = [(e.message_id, e.kind, e.order_id) for e in rec.events if e.kind != "verification"]
    expected = [(e.message_id, e.kind, e.order_id) for e in plan.events]
    assert sorted(got) == sorted(expected)  # every message, duplicates included, arrived exactly as planned
    assert len({m for m, _, _ in got}) < len(got)  # redelivered duplicates share a message id
    assert {e.kind for e in rec.events} >= {"created", "paid", "cancelled"}
    assert any(e.early for e in plan.events)
    assert all(e.shop_id == "1234567" for e in rec.events if e.kind != "verification")


def test_douyin_push_with_another_secret_is_refused_and_retried(receiver) -> None:  # type: ignore[no-untyped-def]
    creds = Credentials(app_key="7001", app_secret="ours", access_token="t", shop_id="1")

    def handle(rec: Receiver, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        try:
            douyin.verify_push(headers, body, creds)
        except PlatformError as exc:
            rec.refused.append(exc.code)
            return 200, douyin.push_failure_body(exc.message)
        return 200, douyin.push_ack_body()

    rec = receiver(handle)
    with DouyinSimulator(app_key="7001", app_secret="theirs", access_token="t", shop_id="1", push_url=rec.url,
                         push_retries=2, push_retry_delay=0.01) as sim:  # fmt: skip
        run = sim.run_show(ShowSpec(skus=SKUS, orders=1, seed=1, pay_share=0, cancel_share=0, duplicate_share=0))
        sim.wait_show(run, timeout=10)
        state = sim.extra_state()
    assert rec.refused == ["signature_invalid"] * 3
    assert state["failed"] == 1 and state["log"][0]["attempts"] == 3


def test_kuaishou_show_encrypted_pushes_heartbeats_and_retries(receiver) -> None:  # type: ignore[no-untyped-def]
    failures_left = {"count": 2}

    def handle(rec: Receiver, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        try:
            event = kuaishou.decrypt_push(body, MSG_SECRET)
        except PlatformError as exc:
            rec.refused.append(exc.code)
            return 200, kuaishou.push_failure_body(exc.message)
        with rec.lock:
            if event.kind != "heartbeat" and failures_left["count"]:
                failures_left["count"] -= 1  # the first two order messages are "not stored": answer failure
                return 500, b"busy"
            rec.events.append(event)
        return 200, kuaishou.push_ack_body()

    rec = receiver(handle)
    with KuaishouSimulator(app_key="ks1", app_secret="s", access_token="t", shop_id="2161524184",
                           msg_secret=MSG_SECRET, push_url=rec.url, heartbeat_interval=0.05,
                           push_retry_delay=0.01) as sim:  # fmt: skip
        run = sim.run_show(ShowSpec(skus=SKUS, orders=40, seed=5, duplicate_share=0.1, shuffle=0.2))
        sim.wait_show(run, timeout=30)
        time.sleep(0.15)
        sim.wait_idle(5)
        state = sim.extra_state()
    orders = [e for e in rec.events if e.kind != "heartbeat"]
    assert rec.refused == []
    assert sorted((e.message_id, e.kind, e.order_id) for e in orders) == sorted(
        (e.message_id, e.kind, e.order_id) for e in run.plan.events
    )
    assert any(e.kind == "heartbeat" and e.test for e in rec.events)
    assert state["failed"] == 0
    assert max(entry["attempts"] for entry in state["log"]) >= 2  # answered failure, then retried


def test_kuaishou_gives_up_after_three_retries(receiver) -> None:  # type: ignore[no-untyped-def]
    rec = receiver(lambda rec, h, b: (200, b'{"result":0}'))
    with KuaishouSimulator(app_key="ks1", app_secret="s", access_token="t", shop_id="1", msg_secret=MSG_SECRET,
                           push_url=rec.url, push_retry_delay=0.01) as sim:  # fmt: skip
        sim.send_heartbeat()
        sim.wait_idle(10)
        state = sim.extra_state()
    assert rec.posts == 4 and state["log"][0]["attempts"] == 4 and state["failed"] == 1


def test_kuaishou_push_with_another_key_is_undecryptable(receiver) -> None:  # type: ignore[no-untyped-def]
    other_key = "b3RoZXJfa2V5XzE2Ynl0ZQ=="

    def handle(rec: Receiver, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        try:
            kuaishou.decrypt_push(body, MSG_SECRET)
        except PlatformError as exc:
            rec.refused.append(exc.code)
            return 200, kuaishou.push_failure_body(exc.message)
        return 200, kuaishou.push_ack_body()

    rec = receiver(handle)
    with KuaishouSimulator(app_key="ks1", app_secret="s", access_token="t", shop_id="1", msg_secret=other_key,
                           push_url=rec.url, push_retries=0) as sim:  # fmt: skip
        sim.send_heartbeat()
        sim.wait_idle(10)
    assert rec.refused == ["undecryptable_body"]


def test_taobao_show_through_tmc_consume_and_confirm_with_redelivery() -> None:
    creds = Credentials(app_key="1234", app_secret="tb", access_token="sess", shop_id="旗舰店")
    with TaobaoSimulator(app_key="1234", app_secret="tb", access_token="sess", shop_id="旗舰店",
                         redelivery_after=0.3) as sim:  # fmt: skip
        run = sim.run_show(ShowSpec(skus=SKUS, orders=30, seed=9, duplicate_share=0.1, shuffle=0.2))
        sim.wait_show(run, timeout=10)
        with taobao.TaobaoClient(creds, base_url=sim.base_url + "/router/rest") as client:
            first = client.tmc_consume("default", 10)
            assert len(first) == 10
            client.tmc_confirm([str(m["id"]) for m in first[:6]])  # four stay unconfirmed
            received = list(first[:6])
            while batch := client.tmc_consume("default", 200):
                received.extend(batch)
                client.tmc_confirm([str(m["id"]) for m in batch])
            assert client.tmc_consume("default", 10) == []  # the unconfirmed four are not due yet
            time.sleep(0.35)
            again = client.tmc_consume("default", 10)
            client.tmc_confirm([str(m["id"]) for m in again])
            received.extend(again)
            time.sleep(0.35)
            assert client.tmc_consume("default", 10) == []
        assert [m["id"] for m in again] == [m["id"] for m in first[6:]]
        events = [taobao.parse_tmc_message(m) for m in received]
        state = sim.extra_state()
    assert sorted((e.message_id, e.kind, e.order_id) for e in events) == sorted(
        (e.message_id, e.kind, e.order_id) for e in run.plan.events
    )
    assert state["unconfirmed"] == 0 and state["redeliveries"] == 4
    assert all(e.shop_id == "旗舰店" for e in events)


def test_show_over_the_control_api(receiver) -> None:  # type: ignore[no-untyped-def]
    rec = receiver(lambda rec, h, b: (200, douyin.push_ack_body()))
    with DouyinSimulator(app_key="7001", app_secret="s", access_token="t", shop_id="1", push_url=rec.url) as sim:
        skus = [{"code": s.code, "sku_id": s.sku_id, "item_id": s.item_id, "price_fen": s.price_fen} for s in SKUS]
        answer = httpx.post(f"{sim.base_url}/_sim/show", json={"skus": skus, "orders": 5, "seed": 2}).json()
        assert answer["show_id"] == 1 and len(answer["orders"]) == 5
        deadline = time.monotonic() + 10
        while not httpx.get(f"{sim.base_url}/_sim/shows/1").json()["done"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        sim.wait_idle(10)
        assert rec.posts == answer["events"]
        statuses = httpx.get(f"{sim.base_url}/_sim/orders").json()
        assert statuses == answer["final_status"]


def test_traffic_rounds_stop_after_their_count_each_with_a_new_seed() -> None:
    with TaobaoSimulator(app_key="1234", app_secret="tb", access_token="sess", shop_id="旗舰店") as sim:
        with pytest.raises(ValueError, match="rounds"):
            sim.run_traffic(ShowSpec(skus=SKUS, orders=2, seed=5), every=0.01, rounds=0)
        thread = sim.run_traffic(ShowSpec(skus=SKUS, orders=2, seed=5, interval=0.0), every=0.01, rounds=3)
        thread.join(timeout=10)
        assert not thread.is_alive()  # it ended by itself, the simulator still running
        time.sleep(0.05)
        assert len(sim.shows) == 3
        order_ids = {e.order_id for run in sim.shows.values() for e in run.plan.events}
    assert len(order_ids) == 6  # three rounds of two orders, none repeated
