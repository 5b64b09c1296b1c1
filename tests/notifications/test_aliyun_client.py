"""``AliyunSmsClient`` against ``AliyunSmsSimulator`` over real sockets (the simulator verifies the
client's signature): a message end to end, each refusal as its typed error, the fault controls
(refusal on command, timeout, 5xx), a refused connection, and ``manage.py sms_simulator``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from django.conf import settings

from apps.notifications.clients.aliyun import AliyunSmsClient
from apps.notifications.providers import aliyun
from apps.notifications.providers.aliyun import AccessKey, SmsRateLimited, SmsRejected, SmsTimeout, SmsUnavailable
from apps.notifications.simulator import DEMO_ACCOUNT, AliyunSmsSimulator

from ..servers import free_port, stop, wait_for_http

KEY_ID, SECRET, SIGN = "LTAI-sim", "sim-secret", "直播好物"
TEMPLATES = {"SMS_PAID": "您的订单${order_no}已付款", "SMS_PLAIN": "感谢惠顾"}


@pytest.fixture
def sim() -> Iterator[AliyunSmsSimulator]:
    with AliyunSmsSimulator(
        access_key_id=KEY_ID, access_key_secret=SECRET, sign_names=[SIGN], templates=TEMPLATES, per_phone_per_day=3
    ) as server:
        yield server


def client(sim: AliyunSmsSimulator, secret: str = SECRET, key_id: str = KEY_ID, **kw) -> AliyunSmsClient:  # type: ignore[no-untyped-def]
    return AliyunSmsClient(AccessKey(key_id, secret), base_url=sim.base_url, timeout=kw.pop("timeout", 2.0), **kw)


def send(c: AliyunSmsClient, **kw):  # type: ignore[no-untyped-def]
    fields = {
        "phone": "13800000000",
        "sign_name": SIGN,
        "template_code": "SMS_PAID",
        "template_params": {"order_no": "o123"},
        "out_id": "lc-sms-1",
    } | kw
    return c.send_sms(**fields)


def test_a_message_goes_through_and_is_recorded_as_the_buyer_reads_it(sim: AliyunSmsSimulator) -> None:
    with client(sim) as c:
        result = send(c)
    assert result.biz_id and result.request_id
    [message] = sim.messages()
    assert (message.phone, message.template_code, message.out_id, message.biz_id) == (
        "13800000000",
        "SMS_PAID",
        "lc-sms-1",
        result.biz_id,
    )
    assert message.text == "【直播好物】您的订单o123已付款"
    listed = httpx.get(f"{sim.base_url}/_sim/messages", params={"phone": "13800000000"}).json()
    assert [m["biz_id"] for m in listed] == [result.biz_id]
    assert httpx.get(f"{sim.base_url}/_sim/messages", params={"phone": "13900000000"}).json() == []


@pytest.mark.parametrize(
    ("client_kw", "send_kw", "code"),
    [
        ({"secret": "wrong"}, {}, "SignatureDoesNotMatch"),
        ({"key_id": "LTAI-unknown"}, {}, "InvalidAccessKeyId.NotFound"),
        ({}, {"phone": "12345"}, "isv.MOBILE_NUMBER_ILLEGAL"),
        ({}, {"sign_name": "别人的签名"}, "isv.SMS_SIGNATURE_ILLEGAL"),
        ({}, {"template_code": "SMS_NOPE"}, "isv.SMS_TEMPLATE_ILLEGAL"),
        ({}, {"template_params": {"other": "x"}}, "isv.TEMPLATE_MISSING_PARAMETERS"),
    ],
)
def test_refusals_are_permanent_typed_errors_and_nothing_is_sent(
    sim: AliyunSmsSimulator, client_kw: dict, send_kw: dict, code: str
) -> None:
    with client(sim, **client_kw) as c, pytest.raises(SmsRejected) as caught:
        send(c, **send_kw)
    assert caught.value.code == code and not caught.value.retryable
    assert sim.messages() == []


def test_every_attempt_is_signed_with_a_new_nonce_so_a_retry_is_never_refused_as_a_replay(
    sim: AliyunSmsSimulator,
) -> None:
    with client(sim) as c:
        send(c)
        send(c)
    assert len(sim.messages()) == 2
    form = aliyun.build_send_sms(
        AccessKey(KEY_ID, SECRET),
        phone="13800000000",
        sign_name=SIGN,
        template_code="SMS_PLAIN",
        at=__import__("time").time(),
        nonce="same",
    )
    first = httpx.post(sim.base_url + "/", data=form)
    again = httpx.post(sim.base_url + "/", data=form)
    assert first.json()["Code"] == "OK"
    assert again.status_code == 400 and again.json()["Code"] == "SignatureNonceUsed"


def test_flow_control_on_command_and_by_its_daily_limit_is_rate_limited_and_retryable(sim: AliyunSmsSimulator) -> None:
    httpx.post(f"{sim.base_url}/_sim/refuse", json={"code": "isv.BUSINESS_LIMIT_CONTROL", "count": 1})
    with client(sim) as c:
        with pytest.raises(SmsRateLimited) as caught:
            send(c)
        assert caught.value.retryable
        for _ in range(3):
            send(c)
        with pytest.raises(SmsRateLimited):
            send(c)  # the simulator's per-phone daily limit (3 here)
        send(c, phone="13900000000")  # another phone is not held
    assert len(sim.messages("13800000000")) == 3


def test_timeout_and_server_errors_are_retryable_and_a_timeout_may_have_been_sent(sim: AliyunSmsSimulator) -> None:
    sim.set_fault("timeout", 5, hang=2)
    with client(sim, timeout=0.3) as c, pytest.raises(SmsTimeout) as timed_out:
        send(c)
    assert timed_out.value.retryable and timed_out.value.outcome_unknown
    sim.clear_fault()
    httpx.post(f"{sim.base_url}/_sim/fault", json={"mode": "error", "seconds": 5})
    with client(sim) as c, pytest.raises(SmsUnavailable) as failed:
        send(c)
    assert failed.value.retryable and failed.value.http_status == 500 and not failed.value.outcome_unknown
    httpx.delete(f"{sim.base_url}/_sim/fault")
    with client(sim) as c:
        send(c)
    assert len(sim.messages()) == 1


def test_a_refused_connection_is_unavailable_not_sent() -> None:
    port = free_port()
    with AliyunSmsClient(AccessKey(KEY_ID, SECRET), base_url=f"http://127.0.0.1:{port}", timeout=1.0) as c:
        with pytest.raises(SmsUnavailable) as caught:
            send(c)
    assert caught.value.retryable and not caught.value.outcome_unknown


def test_sms_simulator_command_serves_the_demo_account_until_terminated() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "sms_simulator", "--port", str(port)],
        cwd=settings.BASE_DIR, start_new_session=True, stdout=subprocess.PIPE,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base_url}/_sim/health", proc, timeout=30)
        assert httpx.get(f"{base_url}/_sim/health", timeout=5).json()["service"] == "aliyun-sms"
        key = AccessKey(DEMO_ACCOUNT["access_key_id"], DEMO_ACCOUNT["access_key_secret"])
        with AliyunSmsClient(key, base_url=base_url, timeout=5) as c:
            c.send_sms(
                phone="13800000000",
                sign_name=DEMO_ACCOUNT["sign_names"][0],
                template_code="SMS_LC_DELIVERED",
                template_params={"order_no": "o1", "url": "https://shop.example.com/o/o1/"},
            )
        [message] = httpx.get(f"{base_url}/_sim/messages", timeout=5).json()
        assert message["text"].startswith("【直播好物】您的订单o1已签收")
    finally:
        stop(proc)
    assert proc.returncode is not None
