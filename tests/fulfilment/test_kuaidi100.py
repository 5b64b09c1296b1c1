"""Kuaidi100 protocol (docs/carriers.md section 1): the three check values, the e-waybill form and its
answers, the subscription, the real-time query and the tracking push. No database, no network."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from apps.fulfilment.carriers import kuaidi100
from apps.fulfilment.carriers.base import (
    BadMessage,
    BadSignature,
    CarrierError,
    CarrierRejected,
    CarrierUnavailable,
    Credentials,
    Party,
    WaybillRequest,
)

QUERY_PARAM = '{"com":"yuantong","num":"YT9693083639795"}'
QUERY_SIGN = "DAD5DC3D1096BC0DA7640D54F8A7C40F"
PUSH_PARAM = (
    '{"status":"shutdown","message":"","lastResult":{"state":"3","ischeck":"1","com":"yuantong",'
    '"nu":"YT9693083639795","data":[]}}'
)
PUSH_SIGN = "E38658746255F3FE846CEE5333C60A64"
LABEL_PARAM = '{"kuaidicom":"zhongtong","partnerId":"P1"}'
LABEL_SIGN = "E9EA1D52A69FE72756D70AA94B4266F7"

CREDS = Credentials(
    carrier="kuaidi100",
    app_id="TESTCUSTOMER",
    app_key="TESTKEY",
    app_secret="TESTSECRET",
    push_salt="TESTSALT",
    partner_id="P1",
    partner_key="PK1",
)
SENDER = Party(
    name="张三", mobile="13800000000", province="浙江省", city="杭州市", district="西湖区", detail="文三路1号"
)
RECEIVER = Party(
    name="李四", mobile="13900000000", province="广东省", city="深圳市", district="南山区", detail="科技园2栋"
)


def _request(**overrides: Any) -> WaybillRequest:
    fields: dict[str, Any] = {
        "order_code": "PKG-0001",
        "express": "ZTO",
        "sender": SENDER,
        "receiver": RECEIVER,
        "items": (("T恤", 2), ("帽子", 1)),
        "weight_kg": Decimal("1.25"),
        "pay_type": "monthly",
        "callback_url": "https://example.com/hooks/kuaidi100?parcel=PKG-0001",
    }
    fields.update(overrides)
    return WaybillRequest(**fields)


def _body(answer: dict[str, Any]) -> bytes:
    return json.dumps(answer, ensure_ascii=False).encode()


# --- check values --------------------------------------------------------------------------------


def test_query_sign_check_value() -> None:
    assert kuaidi100.sign_query(QUERY_PARAM, "TESTKEY", "TESTCUSTOMER") == QUERY_SIGN


def test_push_sign_check_value() -> None:
    assert kuaidi100.sign_push(PUSH_PARAM, "TESTSALT") == PUSH_SIGN


def test_label_sign_check_value() -> None:
    assert kuaidi100.sign_label(LABEL_PARAM, "1700000000000", "TESTKEY", "TESTSECRET") == LABEL_SIGN


def test_built_query_reproduces_the_check_value() -> None:
    form = kuaidi100.build_query(CREDS, express="YTO", waybill_no="YT9693083639795")
    assert form == {"customer": "TESTCUSTOMER", "sign": QUERY_SIGN, "param": QUERY_PARAM}


def test_query_phone_is_sent_only_when_given() -> None:
    form = kuaidi100.build_query(CREDS, express="SF", waybill_no="SF1", phone="1234")
    assert json.loads(form["param"]) == {"com": "shunfeng", "num": "SF1", "phone": "1234"}
    assert form["sign"] == kuaidi100.sign_query(form["param"], "TESTKEY", "TESTCUSTOMER")


# --- e-waybill -----------------------------------------------------------------------------------


def test_label_form_sign_verifies_and_param_round_trips() -> None:
    req = _request()
    form = kuaidi100.build_label_order(CREDS, req, t_ms=1700000000000, temp_id="TPL1")
    assert set(form) == {"method", "key", "t", "sign", "param"}
    assert form["method"] == "order"
    assert form["key"] == "TESTKEY"
    assert form["t"] == "1700000000000"
    expected = hashlib.md5((form["param"] + form["t"] + "TESTKEY" + "TESTSECRET").encode()).hexdigest().upper()
    assert form["sign"] == expected == kuaidi100.sign_label(form["param"], form["t"], "TESTKEY", "TESTSECRET")
    assert ", " not in form["param"] and ": " not in form["param"]  # compact JSON
    assert "张三" in form["param"]  # UTF-8, not \\u escapes
    assert json.loads(form["param"]) == {
        "kuaidicom": "zhongtong",
        "partnerId": "P1",
        "partnerKey": "PK1",
        "recMan": {"name": "李四", "mobile": "13900000000", "printAddr": "广东省深圳市南山区科技园2栋"},
        "sendMan": {"name": "张三", "mobile": "13800000000", "printAddr": "浙江省杭州市西湖区文三路1号"},
        "cargo": "T恤×2,帽子",
        "count": 3,
        "weight": 1.25,
        "payType": "MONTHLY",
        "orderId": "PKG-0001",
        "printType": "IMAGE",
        "tempId": "TPL1",
        "needSubscribe": True,
        "pollCallBackUrl": "https://example.com/hooks/kuaidi100?parcel=PKG-0001",
        "salt": "TESTSALT",
    }


@pytest.mark.parametrize(
    ("ours", "theirs"), [("shipper", "SHIPPER"), ("consignee", "CONSIGNEE"), ("monthly", "MONTHLY")]
)
def test_label_pay_types(ours: str, theirs: str) -> None:
    form = kuaidi100.build_label_order(CREDS, _request(pay_type=ours), t_ms=1)
    assert json.loads(form["param"])["payType"] == theirs


def test_label_optional_fields_are_left_out_and_account_extras_sent() -> None:
    creds = Credentials(carrier="kuaidi100", app_id="C", app_key="K", app_secret="S")
    req = _request(callback_url=None, weight_kg=None)
    param = json.loads(
        kuaidi100.build_label_order(creds, req, t_ms=1, print_type="NON", reorder=True, net="douyin", code="E1")[
            "param"
        ]
    )
    assert "partnerId" not in param and "partnerKey" not in param and "weight" not in param
    assert "needSubscribe" not in param and "pollCallBackUrl" not in param and "salt" not in param
    assert "tempId" not in param
    assert param["net"] == "douyin" and param["code"] == "E1"
    assert param["printType"] == "NON"
    assert param["reorder"] is True


def test_label_auto_subscribe_without_salt_sends_no_salt() -> None:
    creds = Credentials(carrier="kuaidi100", app_id="C", app_key="K", app_secret="S")
    param = json.loads(kuaidi100.build_label_order(creds, _request(), t_ms=1)["param"])
    assert param["needSubscribe"] is True and "salt" not in param


def test_label_unknown_express_or_print_type_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        kuaidi100.build_label_order(CREDS, _request(express="NOPE"), t_ms=1)
    with pytest.raises(ValueError):
        kuaidi100.build_label_order(CREDS, _request(), t_ms=1, print_type="PDF")


def test_label_success_answer() -> None:
    answer = {
        "code": 200,
        "message": "success",
        "time": 120,
        "data": {
            "kuaidinum": "75000000000001",
            "childNum": "",
            "label": "https://api.kuaidi100.com/label/getImage/abc",
            "taskId": "T1",
            "bulkpen": "300-A01",
            "orgCode": "571",
            "destCode": "755",
        },
    }
    waybill = kuaidi100.parse_label_answer(200, _body(answer), _request())
    assert waybill.carrier == "kuaidi100"
    assert waybill.express == "ZTO"
    assert waybill.order_code == "PKG-0001"
    assert waybill.waybill_no == "75000000000001"
    assert waybill.routing_code == "300-A01"
    assert waybill.origin_code == "571"
    assert waybill.dest_code == "755"
    assert waybill.label == "https://api.kuaidi100.com/label/getImage/abc"
    assert waybill.raw == answer


def test_label_success_code_may_be_a_string() -> None:
    body = _body({"code": "200", "data": {"kuaidinum": "X1"}})
    assert kuaidi100.parse_label_answer(200, body, _request()).waybill_no == "X1"


@pytest.mark.parametrize(
    ("status", "body", "error", "code", "retryable"),
    [
        (200, _body({"code": 30001, "message": "参数错误"}), CarrierRejected, "30001", False),
        (200, _body({"code": 30002, "message": "验证签名失败"}), CarrierRejected, "30002", False),
        (200, _body({"code": 30004, "message": "单量不足"}), CarrierRejected, "30004", False),
        (200, _body({"code": 500, "message": "服务器错误"}), CarrierUnavailable, "500", True),
        (200, _body({"code": "502", "message": "繁忙"}), CarrierUnavailable, "502", True),
        (200, _body({"code": 200, "data": {}}), CarrierUnavailable, "no_waybill_no", True),
        (502, b"<html>Bad Gateway</html>", CarrierUnavailable, "http_502", True),
        (404, b"", CarrierUnavailable, "http_404", True),
        (200, b"<html>maintenance</html>", CarrierUnavailable, "bad_answer", True),
        (200, b"[]", CarrierUnavailable, "bad_answer", True),
    ],
)
def test_label_error_answers(status: int, body: bytes, error: type[CarrierError], code: str, retryable: bool) -> None:
    with pytest.raises(error) as caught:
        kuaidi100.parse_label_answer(status, body, _request())
    assert type(caught.value) is error
    assert caught.value.code == code
    assert caught.value.retryable is retryable


# --- subscription --------------------------------------------------------------------------------


def test_subscribe_form() -> None:
    form = kuaidi100.build_subscribe(
        CREDS, express="SF", waybill_no="SF100", phone="5678", callback_url="https://example.com/k", salt="TESTSALT"
    )
    assert set(form) == {"schema", "param"}
    assert form["schema"] == "json"
    assert json.loads(form["param"]) == {
        "company": "shunfeng",
        "number": "SF100",
        "key": "TESTKEY",
        "parameters": {"callbackurl": "https://example.com/k", "salt": "TESTSALT", "phone": "5678"},
    }


@pytest.mark.parametrize("salt", ["", None])
def test_subscribe_without_salt_leaves_it_out(salt: str | None) -> None:
    form = kuaidi100.build_subscribe(
        CREDS, express="YTO", waybill_no="YT1", phone="", callback_url="https://example.com/k", salt=salt
    )
    assert json.loads(form["param"])["parameters"] == {"callbackurl": "https://example.com/k"}


@pytest.mark.parametrize("code", ["200", "501"])
def test_subscribe_success_and_already_subscribed(code: str) -> None:
    body = _body({"result": code == "200", "returnCode": code, "message": "提交成功" if code == "200" else "重复订阅"})
    assert kuaidi100.parse_subscribe_answer(200, body) is None


@pytest.mark.parametrize(
    ("status", "body", "error", "code", "retryable"),
    [
        (200, _body({"result": False, "returnCode": "600", "message": "key错"}), CarrierRejected, "600", False),
        (200, _body({"result": False, "returnCode": "700", "message": "数据错误"}), CarrierRejected, "700", False),
        (200, _body({"result": False, "returnCode": "701", "message": "拒绝订阅"}), CarrierRejected, "701", False),
        (200, _body({"result": False, "returnCode": "500", "message": "服务器错误"}), CarrierUnavailable, "500", True),
        (200, _body({"result": False, "returnCode": "502", "message": "繁忙"}), CarrierUnavailable, "502", True),
        (503, b"", CarrierUnavailable, "http_503", True),
        (200, b"not json", CarrierUnavailable, "bad_answer", True),
    ],
)
def test_subscribe_errors(status: int, body: bytes, error: type[CarrierError], code: str, retryable: bool) -> None:
    with pytest.raises(error) as caught:
        kuaidi100.parse_subscribe_answer(status, body)
    assert type(caught.value) is error
    assert caught.value.code == code
    assert caught.value.retryable is retryable


# --- tracking push -------------------------------------------------------------------------------


def _push_param(state: str = "5", status: str = "polling", data: list[dict[str, Any]] | None = None) -> str:
    message = {
        "status": status,
        "message": "",
        "autoCheck": "0",
        "comOld": "",
        "comNew": "",
        "lastResult": {
            "message": "ok",
            "state": state,
            "status": "200",
            "condition": "F00",
            "ischeck": "1" if state == "3" else "0",
            "com": "yuantong",
            "nu": "YT9693083639795",
            "data": data if data is not None else [],
        },
    }
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


TRACE = [  # newest first, as Kuaidi100 sends it
    {
        "time": "2024-03-02 09:30:00",
        "ftime": "2024-03-02 09:30:00",
        "context": "派件中",
        "location": "深圳",
        "statusCode": "5",
    },
    {
        "time": "2024-03-01 20:00:00",
        "ftime": "2024-03-01 20:00:00",
        "context": "运输中",
        "location": "杭州",
        "statusCode": "0",
    },
    {
        "time": "2024-03-01 08:15:00",
        "ftime": "2024-03-01 08:15:00",
        "context": "已揽收",
        "location": "杭州",
        "statusCode": "1",
    },
]


def test_check_value_push_parses() -> None:
    tracking = kuaidi100.parse_push({"param": PUSH_PARAM, "sign": PUSH_SIGN}, "TESTSALT")
    assert tracking.carrier == "kuaidi100"
    assert tracking.waybill_no == "YT9693083639795"
    assert tracking.express == "YTO"
    assert tracking.state == "delivered"
    assert tracking.carrier_state == "3"
    assert tracking.final is True
    assert tracking.events == ()
    assert tracking.raw == json.loads(PUSH_PARAM)
    assert tracking.order_code is None


def test_push_events_oldest_first_in_utc() -> None:
    param = _push_param(state="5", data=TRACE)
    tracking = kuaidi100.parse_push({"param": param, "sign": kuaidi100.sign_push(param, "TESTSALT")}, "TESTSALT")
    assert tracking.state == "delivering"
    assert tracking.final is False
    assert [event.text for event in tracking.events] == ["已揽收", "运输中", "派件中"]
    assert [event.at for event in tracking.events] == [
        datetime(2024, 3, 1, 0, 15, tzinfo=UTC),
        datetime(2024, 3, 1, 12, 0, tzinfo=UTC),
        datetime(2024, 3, 2, 1, 30, tzinfo=UTC),
    ]
    assert all(event.at is not None and event.at.tzinfo is UTC for event in tracking.events)
    assert [event.location for event in tracking.events] == ["杭州", "杭州", "深圳"]
    assert [event.code for event in tracking.events] == ["1", "0", "5"]


def test_push_events_in_ascending_order_also_come_out_oldest_first() -> None:
    param = _push_param(data=list(reversed(TRACE)))
    tracking = kuaidi100.parse_push({"param": param, "sign": kuaidi100.sign_push(param, "TESTSALT")}, "TESTSALT")
    assert [event.text for event in tracking.events] == ["已揽收", "运输中", "派件中"]


def test_push_sign_in_lowercase_is_accepted() -> None:
    tracking = kuaidi100.parse_push({"param": PUSH_PARAM, "sign": PUSH_SIGN.lower()}, "TESTSALT")
    assert tracking.state == "delivered"


@pytest.mark.parametrize(
    "form",
    [
        {"param": PUSH_PARAM, "sign": PUSH_SIGN[:-1] + "0"},
        {"param": PUSH_PARAM, "sign": ""},
        {"param": PUSH_PARAM},
        {"param": PUSH_PARAM.replace('"state":"3"', '"state":"0"'), "sign": PUSH_SIGN},
        {"param": PUSH_PARAM, "sign": "签名"},
        {"sign": PUSH_SIGN},
    ],
)
def test_push_bad_or_missing_sign_raises(form: dict[str, str]) -> None:
    with pytest.raises(BadSignature) as caught:
        kuaidi100.parse_push(form, "TESTSALT")
    assert caught.value.code == "bad_signature"
    assert caught.value.retryable is False


def test_push_with_another_salt_is_refused() -> None:
    with pytest.raises(BadSignature):
        kuaidi100.parse_push({"param": PUSH_PARAM, "sign": PUSH_SIGN}, "OTHERSALT")


@pytest.mark.parametrize("salt", ["", None])
def test_push_without_salt_is_not_checked(salt: str | None) -> None:
    assert kuaidi100.parse_push({"param": PUSH_PARAM}, salt).final is True
    assert kuaidi100.parse_push({"param": PUSH_PARAM, "sign": "whatever"}, salt).final is True


@pytest.mark.parametrize(
    "param",
    [
        "{not json",
        "",
        "[]",
        '{"status":"polling"}',
        '{"status":"polling","lastResult":"x"}',
        '{"status":"polling","lastResult":{"state":"0","com":"yuantong","data":[]}}',
        '{"status":"polling","lastResult":{"state":"0","nu":"Y1","data":"x"}}',
        '{"status":"polling","lastResult":{"state":"0","nu":"Y1","data":["x"]}}',
    ],
)
def test_malformed_push_raises_bad_message(param: str) -> None:
    with pytest.raises(BadMessage):
        kuaidi100.parse_push({"param": param, "sign": kuaidi100.sign_push(param, "TESTSALT")}, "TESTSALT")


STATE_TABLE = [
    ("0", "in_transit"),
    ("1", "collected"),
    ("2", "problem"),
    ("3", "delivered"),
    ("4", "returned"),
    ("5", "delivering"),
    ("6", "returned"),
    ("7", "in_transit"),
    ("8", "in_transit"),
    ("10", "in_transit"),
    ("11", "in_transit"),
    ("12", "in_transit"),
    ("13", "in_transit"),
    ("14", "returned"),
    # advanced (resultv2=4)
    ("101", "none"),
    ("102", "none"),
    ("103", "collected"),
    ("1001", "in_transit"),
    ("1002", "in_transit"),
    ("1003", "in_transit"),
    ("501", "delivering"),
    ("301", "delivered"),
    ("302", "delivered"),
    ("303", "delivered"),
    ("304", "delivered"),
    ("401", "problem"),
    # by family: an unconfirmed 2xx sub-code, and other families
    ("201", "problem"),
    ("601", "returned"),
    ("801", "in_transit"),
    ("1401", "returned"),
    # blank and unknown
    ("", "none"),
    ("99", "problem"),
    ("abc", "problem"),
]


@pytest.mark.parametrize(("state", "canonical"), STATE_TABLE)
def test_state_table(state: str, canonical: str) -> None:
    assert kuaidi100.map_state(state) == canonical
    param = _push_param(state=state)
    tracking = kuaidi100.parse_push({"param": param, "sign": kuaidi100.sign_push(param, "TESTSALT")}, "TESTSALT")
    assert tracking.state == canonical
    assert tracking.carrier_state == state
    assert tracking.final is (canonical == "delivered")


def test_every_basic_state_is_in_the_table() -> None:
    assert set(kuaidi100.STATES) == {"0", "1", "2", "3", "4", "5", "6", "7", "8", "10", "11", "12", "13", "14"}
    assert {state for state, _ in STATE_TABLE} >= set(kuaidi100.STATES) | set(kuaidi100.ADVANCED_STATES)


def test_shutdown_push_is_final_even_when_not_signed() -> None:
    param = _push_param(state="4", status="shutdown")
    tracking = kuaidi100.parse_push({"param": param, "sign": kuaidi100.sign_push(param, "TESTSALT")}, "TESTSALT")
    assert tracking.state == "returned"
    assert tracking.final is True
    assert kuaidi100.should_resubscribe(tracking) is False


def test_abort_push_asks_for_a_resubscription() -> None:
    param = _push_param(state="0", status="abort")
    tracking = kuaidi100.parse_push({"param": param, "sign": kuaidi100.sign_push(param, "TESTSALT")}, "TESTSALT")
    assert tracking.final is False
    assert kuaidi100.should_resubscribe(tracking) is True


def test_simulator_sequence_1_0_5_3_then_shutdown() -> None:
    states = []
    for state, status in [("1", "polling"), ("0", "polling"), ("5", "polling"), ("3", "polling"), ("3", "shutdown")]:
        param = _push_param(state=state, status=status)
        tracking = kuaidi100.parse_push({"param": param, "sign": kuaidi100.sign_push(param, "TESTSALT")}, "TESTSALT")
        states.append((tracking.state, tracking.final))
    assert states == [
        ("collected", False),
        ("in_transit", False),
        ("delivering", False),
        ("delivered", True),
        ("delivered", True),
    ]


def test_push_answer_bytes() -> None:
    assert kuaidi100.push_answer(True) == '{"result":true,"returnCode":"200","message":"成功"}'.encode()
    failure = json.loads(kuaidi100.push_answer(False))
    assert failure["result"] is False
    assert failure["returnCode"] == "500"


# --- real-time query -----------------------------------------------------------------------------


def test_query_success_answer() -> None:
    answer = {
        "message": "ok",
        "nu": "YT9693083639795",
        "ischeck": "0",
        "com": "yuantong",
        "status": "200",
        "state": "0",
        "condition": "F00",
        "data": TRACE,
    }
    tracking = kuaidi100.parse_query_answer(200, _body(answer))
    assert tracking.waybill_no == "YT9693083639795"
    assert tracking.express == "YTO"
    assert tracking.state == "in_transit"
    assert tracking.final is False
    assert [event.text for event in tracking.events] == ["已揽收", "运输中", "派件中"]
    assert tracking.events[0].at == datetime(2024, 3, 1, 0, 15, tzinfo=UTC)
    assert tracking.raw == answer


def test_query_signed_answer_is_final() -> None:
    body = _body({"message": "ok", "nu": "SF1", "com": "shunfeng", "status": "200", "state": "3", "data": []})
    tracking = kuaidi100.parse_query_answer(200, body)
    assert (tracking.express, tracking.state, tracking.final) == ("SF", "delivered", True)


@pytest.mark.parametrize(
    ("status", "code", "error", "retryable"),
    [
        (200, "400", CarrierRejected, False),
        (200, "408", CarrierRejected, False),
        (200, "500", CarrierRejected, True),
        (200, "501", CarrierUnavailable, True),
        (200, "502", CarrierUnavailable, True),
        (200, "503", CarrierRejected, False),
        (200, "601", CarrierRejected, False),
    ],
)
def test_query_error_answers(status: int, code: str, error: type[CarrierError], retryable: bool) -> None:
    body = _body({"result": False, "returnCode": code, "message": "x"})
    with pytest.raises(error) as caught:
        kuaidi100.parse_query_answer(status, body)
    assert type(caught.value) is error
    assert caught.value.code == code
    assert caught.value.retryable is retryable


@pytest.mark.parametrize(("status", "body"), [(500, b""), (200, b"oops")])
def test_query_transport_failures_are_retryable(status: int, body: bytes) -> None:
    with pytest.raises(CarrierUnavailable) as caught:
        kuaidi100.parse_query_answer(status, body)
    assert caught.value.retryable is True
