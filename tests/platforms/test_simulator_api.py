"""Our API clients against the simulators over real sockets: the check values of PLATFORMS.md
accepted by each simulator's own verifier (a one-character change refused), order details mapped,
stock and shipment calls recorded, and the client's error mapping (envelope errors, 5xx,
timeouts, transport failures, fault mode)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from apps.platforms.protocol import douyin, kuaishou, taobao
from apps.platforms.protocol.base import (
    Credentials,
    PlatformRejected,
    PlatformTimeout,
    PlatformUnavailable,
    StockTarget,
)
from apps.platforms.simulator import DouyinSimulator, KuaishouSimulator, ShowSpec, SimSku, TaobaoSimulator

MSG_SECRET = "a3NfbXNnX3NlY3JldF8xNg=="
SKUS = [SimSku("TEE-RED-M", "1750000000001", "3600000000001", 9900), SimSku("MUG-01", "1750000000002",
        "3600000000002", 3550)]  # fmt: skip
SPEC = {"orders": 20, "seed": 7, "pay_share": 0.7, "cancel_share": 0.2, "duplicate_share": 0, "shuffle": 0}


def _flip(text: str) -> str:
    return text[:-1] + ("A" if text[-1] != "A" else "B")


# --- check values, simulator side -------------------------------------------------------------------


def test_douyin_simulator_accepts_the_check_value_and_refuses_one_char_changes() -> None:
    with DouyinSimulator(app_key="app-key", app_secret="secret", access_token="tok", shop_id="1",
                         timestamp_tolerance=None) as sim:  # fmt: skip

        def send(sign: str, body: str = '{"a":1,"nested":{"a":1,"z":2},"z":2}') -> dict[str, object]:
            query = {"app_key": "app-key", "method": "order.searchList", "access_token": "tok",
                     "timestamp": "1700000000", "v": "2", "sign_method": "hmac-sha256", "sign": sign}  # fmt: skip
            return httpx.post(f"{sim.base_url}/order/searchList", params=query, content=body).json()

        good = "53e8b7af0b657637e8a8013bb6b2a2c41b5da7f0dff35d98de3e9ae3e9c0a442"
        assert send(good)["sub_code"] == "isv.method-invalid"  # signature passed; the method is not simulated
        assert send(_flip(good))["sub_code"] == "isv.sign-check-failure"
        assert send(good, body='{"a":1,"nested":{"a":1,"z":2},"z":3}')["sub_code"] == "isv.sign-check-failure"


def test_kuaishou_simulator_accepts_the_check_values_and_refuses_one_char_changes() -> None:
    with KuaishouSimulator(app_key="ks123", app_secret="sign-secret", access_token="token", shop_id="1",
                           msg_secret=MSG_SECRET, timestamp_tolerance=None) as sim:  # fmt: skip

        def send(method: str, sign: str, title: str = "短袖") -> dict[str, object]:
            params = {"access_token": "token", "appkey": "ks123", "method": "open.seller.order.list",
                      "param": json.dumps({"title": title}, ensure_ascii=False, separators=(",", ":")),
                      "signMethod": method, "timestamp": "1583271919000", "version": "1", "sign": sign}  # fmt: skip
            return httpx.get(f"{sim.base_url}/open/seller/order/list", params=params).json()

        for method, good in (("HMAC_SHA256", "ZpPrG0oB1g/T93FyyVD+VCzRey41yqxZoCqcGg7upYM="),
                             ("MD5", "6005da269b372ff10945e565ef37a4c6")):  # fmt: skip
            assert send(method, good)["error_msg"] == "未知 method"
            assert send(method, _flip(good))["result"] == 24
            assert send(method, good, title="长袖")["result"] == 24


def test_taobao_simulator_accepts_the_worked_example_and_refuses_one_char_changes() -> None:
    with TaobaoSimulator(app_key="test", app_secret="test", access_token="test", shop_id="shop",
                         timestamp_tolerance=None) as sim:  # fmt: skip

        def send(sign: str, fields: str = "nick") -> dict[str, object]:
            form = {"app_key": "test", "fields": fields, "format": "xml", "method": "taobao.user.seller.get",
                    "session": "test", "sign_method": "md5", "timestamp": "2013-05-06 13:52:03", "v": "2.0",
                    "sign": sign}  # fmt: skip
            return httpx.post(f"{sim.base_url}/router/rest", data=form).json()["error_response"]

        assert send("72CB4D809B375A54502C09360D879C64")["code"] == 22  # signed right; method not simulated
        assert send("72CB4D809B375A54502C09360D879C6A")["code"] == 25
        assert send("72CB4D809B375A54502C09360D879C64", fields="nicK")["code"] == 25


# --- client flows -------------------------------------------------------------------------------


@pytest.fixture
def dy() -> Iterator[tuple[DouyinSimulator, douyin.DouyinClient]]:
    creds = Credentials(app_key="7001", app_secret="dy-secret", access_token="dy-token", shop_id="1234567")
    with DouyinSimulator(app_key="7001", app_secret="dy-secret", access_token="dy-token", shop_id="1234567") as sim:
        with douyin.DouyinClient(creds, base_url=sim.base_url, timeout=2.0) as client:
            yield sim, client


@pytest.fixture
def ks() -> Iterator[tuple[KuaishouSimulator, kuaishou.KuaishouClient]]:
    creds = Credentials(app_key="ks1", app_secret="ks-sign", access_token="ks-token", shop_id="2161524184",
                        msg_secret=MSG_SECRET)  # fmt: skip
    with KuaishouSimulator(app_key="ks1", app_secret="ks-sign", access_token="ks-token", shop_id="2161524184",
                           msg_secret=MSG_SECRET) as sim:  # fmt: skip
        with kuaishou.KuaishouClient(creds, base_url=sim.base_url, timeout=2.0) as client:
            yield sim, client


@pytest.fixture
def tb() -> Iterator[tuple[TaobaoSimulator, taobao.TaobaoClient]]:
    creds = Credentials(app_key="12345678", app_secret="tb-secret", access_token="tb-session", shop_id="旗舰店")
    with TaobaoSimulator(app_key="12345678", app_secret="tb-secret", access_token="tb-session",
                         shop_id="旗舰店", redelivery_after=0.5) as sim:  # fmt: skip
        with taobao.TaobaoClient(creds, base_url=sim.base_url + "/router/rest", timeout=2.0) as client:
            yield sim, client


@pytest.mark.parametrize("sign_method", ["md5", "hmac-sha256"])
def test_douyin_client_order_detail_stock_and_ship(
    dy: tuple[DouyinSimulator, douyin.DouyinClient], sign_method: douyin.SignMethod
) -> None:
    sim, client = dy
    client.sign_method = sign_method
    plan = sim.seed_orders(ShowSpec(skus=SKUS, freight_fen=800, **SPEC))
    for order_id, final in plan.final_status.items():
        order = client.order_detail(order_id)
        sim_order = plan.orders[order_id]
        assert order.order_id == order_id and order.shop_id == "1234567"
        assert order.status == final
        assert order.total == Decimal(sim_order.total_fen) / 100 and order.freight == Decimal("8.00")
        assert [(ln.merchant_sku_code, ln.quantity) for ln in order.lines] == [
            (ln.sku.code, ln.quantity) for ln in sim_order.lines
        ]
        assert order.receiver["mask_post_tel"].count("*") == 4
    paid = next(oid for oid, st in plan.final_status.items() if st == "paid")
    unpaid = next(oid for oid, st in plan.final_status.items() if st != "paid")
    client.set_stock(StockTarget(platform_item_id="3600000000001", platform_sku_id="1750000000001"), 17,
                     idempotency_key="k1")  # fmt: skip
    client.update_stock(code="MUG-01", stock_num=0, idempotent_id="k2")
    client.update_stock(code="MUG-01", stock_num=5, idempotent_id="k2")  # same key: no second effect
    assert sim.stock == {"TEE-RED-M": 17, "MUG-01": 0}
    client.ship(paid, "zhongtong", "ZT7700000001")
    client.ship(paid, "zhongtong", "ZT7700000001")  # a retry is accepted
    assert client.order_detail(paid).status == "shipped"
    with pytest.raises(PlatformRejected) as refused:
        client.ship(unpaid, "zhongtong", "ZT7700000002")
    assert not refused.value.retryable and refused.value.code == "50002"
    assert [c.accepted for c in sim.calls("ship")] == [True, True, False]
    assert [c.params["stock_num"] for c in sim.calls("stock")] == [17, 0, 5]


def test_douyin_client_accepts_an_unwrapped_detail(dy: tuple[DouyinSimulator, douyin.DouyinClient]) -> None:
    sim, client = dy
    sim.wrap_detail = False
    plan = sim.seed_orders(ShowSpec(skus=SKUS, **SPEC))
    order_id = next(iter(plan.orders))
    assert client.order_detail(order_id).order_id == order_id


def test_kuaishou_client_order_detail_incremental_stock_and_ship(
    ks: tuple[KuaishouSimulator, kuaishou.KuaishouClient],
) -> None:
    sim, client = ks
    plan = sim.seed_orders(ShowSpec(skus=SKUS, **SPEC))
    for order_id, final in plan.final_status.items():
        order = client.order_detail(order_id)
        (line,) = order.lines
        (sim_line,) = plan.orders[order_id].lines
        assert order.status == final and line.merchant_sku_code == sim_line.sku.code
        assert line.amount == Decimal(sim_line.amount_fen) / 100 == order.total
        assert order.receiver["desensitiseMobile"].count("*") == 4
    target = StockTarget(platform_item_id="3600000000001", platform_sku_id="1750000000001")
    sim.set_platform_stock("TEE-RED-M", 10)
    assert client.set_stock(target, 25, idempotency_key="x", last_known=10) is True
    assert client.set_stock(target, 25, idempotency_key="x", last_known=25) is False  # nothing to change
    assert client.set_stock(target, 3, idempotency_key="x", last_known=25) is True
    assert sim.stock["TEE-RED-M"] == 3
    assert [(c.params["changeType"], c.params["skuChangeStock"]) for c in sim.calls("stock")] == [(1, 15), (2, 22)]
    with pytest.raises(PlatformRejected):
        client.update_stock(item_id="3600000000001", sku_id="1750000000001", change=-4)  # below zero
    paid = next(oid for oid, st in plan.final_status.items() if st == "paid")
    client.ship(paid, "7", "SF1400000001")
    assert client.order_detail(paid).status == "shipped"


def test_taobao_client_trade_stock_and_ship(tb: tuple[TaobaoSimulator, taobao.TaobaoClient]) -> None:
    sim, client = tb
    plan = sim.seed_orders(ShowSpec(skus=SKUS, freight_fen=600, **SPEC))
    for order_id, final in plan.final_status.items():
        order = client.order_detail(order_id)
        assert order.status == final and order.shop_id == "旗舰店"
        assert order.total == Decimal(plan.orders[order_id].total_fen) / 100
        assert order.freight == Decimal("6.00")
        assert {ln.merchant_sku_code for ln in order.lines} <= {"TEE-RED-M", "MUG-01"}
    client.set_stock(StockTarget(platform_item_id="3600000000002", platform_sku_id="1750000000002"), 8,
                     idempotency_key="k")  # fmt: skip
    assert sim.stock["MUG-01"] == 8
    assert sim.calls("stock")[0].params["type"] == "1"
    paid = next(oid for oid, st in plan.final_status.items() if st == "paid")
    client.ship(paid, "ZTO", "ZT7700000009")
    assert client.order_detail(paid).status == "shipped"


@pytest.mark.parametrize("sign_method", ["md5", "hmac", "hmac-sha256"])
def test_taobao_every_sign_method_is_accepted(
    tb: tuple[TaobaoSimulator, taobao.TaobaoClient], sign_method: taobao.SignMethod
) -> None:
    sim, client = tb
    client.sign_method = sign_method
    plan = sim.seed_orders(ShowSpec(skus=SKUS, **SPEC))
    assert client.order_detail(next(iter(plan.orders))).platform == "taobao"


# --- errors -------------------------------------------------------------------------------------


def test_bad_credentials_are_refused_with_the_platforms_envelope(
    dy: tuple[DouyinSimulator, douyin.DouyinClient],
    ks: tuple[KuaishouSimulator, kuaishou.KuaishouClient],
    tb: tuple[TaobaoSimulator, taobao.TaobaoClient],
) -> None:
    cases = [
        (douyin.DouyinClient, dy[0].base_url, "30002"),
        (kuaishou.KuaishouClient, ks[0].base_url, "24"),
        (taobao.TaobaoClient, tb[0].base_url + "/router/rest", "25"),
    ]
    for client_class, base_url, code in cases:
        creds = Credentials(app_key={"30002": "7001", "24": "ks1", "25": "12345678"}[code], app_secret="wrong",
                            access_token="x", shop_id="1")  # fmt: skip
        with client_class(creds, base_url=base_url, timeout=2.0) as client:  # type: ignore[operator]
            with pytest.raises(PlatformRejected) as refused:
                client.order_detail("1")
        assert refused.value.code == code and refused.value.retryable is False
    for sim in (dy[0], ks[0], tb[0]):
        assert [c.accepted for c in sim.calls("detail")] == [False]


def test_timestamp_outside_tolerance_is_refused(tb: tuple[TaobaoSimulator, taobao.TaobaoClient]) -> None:
    sim, client = tb
    client.clock = lambda: time.time() - 3600
    with pytest.raises(PlatformRejected) as refused:
        client.order_detail("1")
    assert refused.value.code == "31"


def test_unknown_order_is_rejected_not_retryable(tb: tuple[TaobaoSimulator, taobao.TaobaoClient]) -> None:
    with pytest.raises(PlatformRejected) as refused:
        tb[1].order_detail("999")
    assert (refused.value.code, refused.value.sub_code, refused.value.retryable) == ("15", "isv.trade-not-exist", False)


def test_fault_error_mode_is_a_retryable_5xx_then_recovers(dy: tuple[DouyinSimulator, douyin.DouyinClient]) -> None:
    sim, client = dy
    plan = sim.seed_orders(ShowSpec(skus=SKUS, **SPEC))
    order_id = next(iter(plan.orders))
    assert httpx.post(f"{sim.base_url}/_sim/fault", json={"mode": "error", "seconds": 0.6}).status_code == 200
    with pytest.raises(PlatformUnavailable) as failed:
        client.order_detail(order_id)
    assert failed.value.retryable and failed.value.http_status == 500
    time.sleep(0.7)
    assert client.order_detail(order_id).order_id == order_id
    assert [c.error for c in sim.calls("fault")] == ["error"]


def test_fault_timeout_mode_times_the_client_out_and_applies_nothing(
    ks: tuple[KuaishouSimulator, kuaishou.KuaishouClient],
) -> None:
    sim, client = ks
    client._http.timeout = httpx.Timeout(0.3)
    sim.set_platform_stock("TEE-RED-M", 5)
    sim.add_skus(SKUS)
    httpx.post(f"{sim.base_url}/_sim/fault",
               json={"mode": "timeout", "seconds": 1.0, "methods": ["open.item.sku.stock.update"]})  # fmt: skip
    started = time.monotonic()
    with pytest.raises(PlatformTimeout) as timed_out:
        client.update_stock(item_id="3600000000001", sku_id="1750000000001", change=2)
    assert timed_out.value.retryable and time.monotonic() - started < 1.0
    assert sim.stock["TEE-RED-M"] == 5
    httpx.delete(f"{sim.base_url}/_sim/fault")
    client.update_stock(item_id="3600000000001", sku_id="1750000000001", change=2)
    assert sim.stock["TEE-RED-M"] == 7


def test_transport_failure_and_non_json_are_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    creds = Credentials(app_key="a", app_secret="b", access_token="c", shop_id="1")
    with taobao.TaobaoClient(creds, base_url=f"http://127.0.0.1:{port}", timeout=1.0) as client:
        with pytest.raises(PlatformUnavailable) as failed:
            client.order_detail("1")
    assert failed.value.retryable and failed.value.code == "transport"

    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>gateway</html>")

    with douyin.DouyinClient(creds, transport=httpx.MockTransport(html)) as client:
        with pytest.raises(PlatformUnavailable) as bad:
            client.order_detail("1")
    assert bad.value.code == "bad_response"
    assert client.base_url == douyin.PRODUCTION_BASE_URL


def test_simulator_control_api(dy: tuple[DouyinSimulator, douyin.DouyinClient]) -> None:
    sim, _client = dy
    assert httpx.get(f"{sim.base_url}/_sim/health").json()["platform"] == "douyin"
    assert httpx.post(f"{sim.base_url}/_sim/fault", json={"mode": "explode", "seconds": 1}).status_code == 400
    assert httpx.post(f"{sim.base_url}/_sim/show", json={"skus": [], "orders": 1}).status_code == 400
    assert httpx.get(f"{sim.base_url}/_sim/orders/1").status_code == 404


def test_aftersales_control_path_and_the_detail_it_changes(tb: tuple[TaobaoSimulator, taobao.TaobaoClient]) -> None:
    """``POST /_sim/aftersales``: a step of a buyer's request, queued as the platform's message;
    paid back in full, the order's detail says so; bad steps and orders are 400s."""
    sim, client = tb
    plan = sim.seed_orders(ShowSpec(skus=SKUS, **SPEC))
    paid = next(oid for oid, st in plan.final_status.items() if st == "paid")
    url = f"{sim.base_url}/_sim/aftersales"
    asked = httpx.post(url, json={"order_id": paid, "phase": "requested", "kind": "refund"})
    assert asked.status_code == 201 and asked.json()["amount_fen"] == plan.orders[paid].total_fen
    refund_id = asked.json()["refund_id"]
    for bad in ({"order_id": paid, "phase": "teleported"}, {"order_id": "404", "phase": "requested"},
                {"order_id": paid, "phase": "requested", "amount_fen": -5}, {"order_id": paid, "phase": "requested",
                "kind": "swap"}, [1, 2]):  # fmt: skip
        r = httpx.post(url, json=bad)
        assert r.status_code == 400 and "error" in r.json(), bad
    assert client.order_detail(paid).status == "paid"
    assert httpx.post(url, json={"order_id": paid, "phase": "succeeded", "refund_id": refund_id}).status_code == 201
    assert client.order_detail(paid).status == "refunded"  # TRADE_CLOSED
    again = httpx.post(url, json={"order_id": paid, "phase": "closed", "refund_id": refund_id})
    assert again.status_code == 400  # paid back: final
    topics = [q.message["topic"] for q in sim.tmc]
    assert topics[-2:] == ["taobao_refund_RefundCreated", "taobao_refund_RefundSuccess"]
    content = json.loads(sim.tmc[-1].message["content"])
    assert content["refund_id"] == refund_id and content["status"] == "SUCCESS"
    assert content["refund_fee"] == f"{plan.orders[paid].total_fen / 100:.2f}"


def test_platform_simulator_command_serves_until_terminated() -> None:
    import subprocess
    import sys

    from django.conf import settings

    from tests.servers import free_port, stop

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "platform_simulator", "taobao", "--port", str(port), "--app-key", "k"],
        cwd=settings.BASE_DIR, start_new_session=True, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/_sim/health", timeout=1).json()
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert health == {"platform": "taobao", "shop_id": "livecommerce旗舰店", "ok": True}
        creds = Credentials(app_key="k", app_secret="sim-secret", access_token="sim-token", shop_id="x")
        with taobao.TaobaoClient(creds, base_url=f"http://127.0.0.1:{port}/router/rest") as client:
            assert client.tmc_consume() == []
    finally:
        stop(proc)
    assert proc.returncode is not None
