"""Kdniao protocol: docs/carriers.md section 2's check value, the signed request forms, answer parsing
by result code, and the tracking push (signature, decoding once, state tables, event order, answer).
Pure functions: no database, no network."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote_plus

import pytest

from apps.fulfilment.carriers import kdniao
from apps.fulfilment.carriers.base import (
    BadMessage,
    BadSignature,
    CarrierError,
    CarrierRejected,
    CarrierUnavailable,
    Credentials,
    Party,
    TrackState,
    WaybillRequest,
)

# docs/carriers.md section 2, check value.
CHECK_DATA = '{"ShipperCode":"YTO","LogisticCode":"YT9693083639795"}'
CHECK_KEY = "TEST-APPKEY"
CHECK_HEX = "7f8fcad1b605f8a562b2d70f8bf1ef92"
CHECK_SIGN = "N2Y4ZmNhZDFiNjA1ZjhhNTYyYjJkNzBmOGJmMWVmOTI="
CHECK_WIRE = "N2Y4ZmNhZDFiNjA1ZjhhNTYyYjJkNzBmOGJmMWVmOTI%3D"
WRONG_RAW_DIGEST_SIGN = "f4/K0bYF+KVistcPi/Hvkg=="

CREDS = Credentials(
    carrier="kdniao", app_id="1234567", app_key=CHECK_KEY, partner_id="CUST01", partner_key="PWD01", month_code="MC01"
)
SENDER = Party(
    name="张三", mobile="13800000001", province="浙江省", city="杭州市", district="余杭区", detail="文一西路1号"
)
RECEIVER = Party(
    name="李四", mobile="13900000002", province="广东省", city="深圳市", district="福田区", detail="深南大道2号"
)


def waybill_request(**changes: Any) -> WaybillRequest:
    values: dict[str, Any] = {
        "order_code": "LC-000042",
        "express": "ZTO",
        "sender": SENDER,
        "receiver": RECEIVER,
        "items": (("T恤 白色 L", 2), ("帽子", 1)),
        "weight_kg": Decimal("1.25"),
        "pay_type": "monthly",
        "callback_url": None,
    }
    values.update(changes)
    return WaybillRequest(**values)


def answer(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


def push_form(payload: dict[str, Any], *, app_key: str = CHECK_KEY) -> dict[str, str]:
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return {"RequestType": "101", "RequestData": text, "DataSign": kdniao.data_sign(text, app_key)}


def push_item(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "EBusinessID": "1234567",
        "ShipperCode": "ZTO",
        "LogisticCode": "75312345678901",
        "OrderCode": "LC-000042",
        "Success": True,
        "Reason": "",
        "State": "2",
        "StateEx": "201",
        "Location": "深圳市",
        "CallBack": "",
        "Traces": [
            {
                "AcceptTime": "2024-05-01 20:15:00",
                "AcceptStation": "【杭州市】已揽收",
                "Location": "杭州市",
                "Action": "1",
            },
            {
                "AcceptTime": "2024-05-02 09:30:00",
                "AcceptStation": "【深圳市】到达深圳",
                "Location": "深圳市",
                "Action": "201",
            },
        ],
    }
    item.update(changes)
    return item


# --- signing -----------------------------------------------------------------------------------


def test_check_value_hex_base64_and_wire_form() -> None:
    assert hashlib.md5((CHECK_DATA + CHECK_KEY).encode()).hexdigest() == CHECK_HEX
    assert kdniao.data_sign(CHECK_DATA, CHECK_KEY) == CHECK_SIGN
    assert base64.b64decode(CHECK_SIGN).decode() == CHECK_HEX
    assert kdniao.encode_form({"DataSign": CHECK_SIGN}) == f"DataSign={CHECK_WIRE}".encode()
    assert kdniao.decode_form(f"DataSign={CHECK_WIRE}".encode()) == {"DataSign": CHECK_SIGN}
    assert kdniao.verify_sign(CHECK_DATA, CHECK_SIGN, CHECK_KEY)


def test_raw_digest_variant_is_not_produced_and_does_not_verify() -> None:
    raw_variant = base64.b64encode(hashlib.md5((CHECK_DATA + CHECK_KEY).encode()).digest()).decode()
    assert raw_variant == WRONG_RAW_DIGEST_SIGN  # the pitfall, recomputed
    assert kdniao.data_sign(CHECK_DATA, CHECK_KEY) != WRONG_RAW_DIGEST_SIGN
    assert not kdniao.verify_sign(CHECK_DATA, WRONG_RAW_DIGEST_SIGN, CHECK_KEY)


@pytest.mark.parametrize(
    "given",
    [
        "",
        CHECK_WIRE,  # still form-encoded: verify_sign takes the value decoded once
        CHECK_SIGN.rstrip("="),
        CHECK_SIGN.lower(),
        "N2Y4ZmNhZDFiNjA1ZjhhNTYyYjJkNzBmOGJmMWVmOTI=\n",
        "签名",
    ],
)
def test_verify_sign_refuses_anything_but_the_exact_value(given: str) -> None:
    assert not kdniao.verify_sign(CHECK_DATA, given, CHECK_KEY)


def test_verify_sign_covers_data_and_key() -> None:
    assert not kdniao.verify_sign(CHECK_DATA.replace("YTO", "ZTO"), CHECK_SIGN, CHECK_KEY)
    assert not kdniao.verify_sign(CHECK_DATA, CHECK_SIGN, "OTHER-APPKEY")


def test_a_correct_sign_never_holds_plus_or_slash() -> None:
    """Base64 of hex digits uses no ``+`` or ``/``: a ``+`` in a DataSign means the raw-digest recipe."""
    for n in range(500):
        sign = kdniao.data_sign(f'{{"n":{n},"t":"已签收+代收"}}', CHECK_KEY)
        assert "+" not in sign and "/" not in sign and sign.endswith("=") and len(sign) == 44


def test_a_plus_in_a_sign_survives_form_decoding_once_and_not_twice() -> None:
    wire = kdniao.encode_form({"DataSign": WRONG_RAW_DIGEST_SIGN})
    assert b"%2B" in wire and b"%2F" in wire
    once = kdniao.decode_form(wire)["DataSign"]
    assert once == WRONG_RAW_DIGEST_SIGN
    assert unquote_plus(once) == "f4/K0bYF KVistcPi/Hvkg=="  # the bububa double unescape


# --- request forms -------------------------------------------------------------------------------


def test_build_eorder_form_is_signed_and_maps_every_field() -> None:
    path, form = kdniao.build_eorder(CREDS, waybill_request(), template_size="130")
    assert path == "/api/EOrderService"
    assert set(form) == {"RequestType", "EBusinessID", "RequestData", "DataSign", "DataType"}
    assert (form["RequestType"], form["EBusinessID"], form["DataType"]) == ("1007", "1234567", "2")
    assert kdniao.verify_sign(form["RequestData"], form["DataSign"], CHECK_KEY)
    assert form["RequestData"] == json.dumps(json.loads(form["RequestData"]), separators=(",", ":"), ensure_ascii=False)
    data = json.loads(form["RequestData"])
    assert data == {
        "OrderCode": "LC-000042",
        "ShipperCode": "ZTO",
        "CustomerName": "CUST01",
        "CustomerPwd": "PWD01",
        "MonthCode": "MC01",
        "PayType": 3,
        "ExpType": 1,
        "Sender": {
            "Name": "张三",
            "Mobile": "13800000001",
            "ProvinceName": "浙江省",
            "CityName": "杭州市",
            "ExpAreaName": "余杭区",
            "Address": "文一西路1号",
        },
        "Receiver": {
            "Name": "李四",
            "Mobile": "13900000002",
            "ProvinceName": "广东省",
            "CityName": "深圳市",
            "ExpAreaName": "福田区",
            "Address": "深南大道2号",
        },
        "Commodity": [{"GoodsName": "T恤 白色 L", "Goodsquantity": 2}, {"GoodsName": "帽子", "Goodsquantity": 1}],
        "Quantity": 1,
        "Weight": 1.25,
        "IsReturnPrintTemplate": 1,
        "TemplateSize": "130",
        "IsSubscribe": "0",
    }


def test_eorder_form_round_trips_the_wire_once() -> None:
    _, form = kdniao.build_eorder(CREDS, waybill_request(items=(("A+B 100% 棉", 1),)))
    wire = kdniao.encode_form(form)
    assert b"%2B" in wire and b"%25" in wire and b"DataSign=" in wire and wire.count(b"%3D") >= 1
    assert kdniao.decode_form(wire) == form


@pytest.mark.parametrize(("pay_type", "code"), [("shipper", 1), ("consignee", 2), ("monthly", 3)])
def test_eorder_pay_types(pay_type: str, code: int) -> None:
    _, form = kdniao.build_eorder(CREDS, waybill_request(pay_type=pay_type))
    assert json.loads(form["RequestData"])["PayType"] == code


def test_eorder_optional_fields() -> None:
    bare = Credentials(carrier="kdniao", app_id="1234567", app_key=CHECK_KEY)
    _, form = kdniao.build_eorder(
        bare, waybill_request(weight_kg=None, callback_url="https://example.test/hooks/kdniao", express="SF")
    )
    data = json.loads(form["RequestData"])
    assert "CustomerName" not in data and "CustomerPwd" not in data and "MonthCode" not in data
    assert "Weight" not in data and "TemplateSize" not in data
    assert data["IsSubscribe"] == "1" and data["ShipperCode"] == "SF"


@pytest.mark.parametrize(
    ("credentials", "request_changes"),
    [
        (Credentials(carrier="kuaidi100", app_id="c", app_key="k"), {}),
        (CREDS, {"express": "DHL"}),
        (CREDS, {"items": ()}),
        (CREDS, {"items": (("x", 0),)}),
    ],
)
def test_build_eorder_refuses_what_it_cannot_send(credentials: Credentials, request_changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        kdniao.build_eorder(credentials, waybill_request(**request_changes))


def test_build_subscribe() -> None:
    path, form = kdniao.build_subscribe(
        CREDS,
        express="SF",
        waybill_no="SF1234567890",
        order_code="LC-000042",
        callback_url="https://example.test/hooks/kdniao",
        phone="+86 139-0000-0002",
    )
    assert path == "/api/dist" and form["RequestType"] == "1008"
    assert kdniao.verify_sign(form["RequestData"], form["DataSign"], CHECK_KEY)
    assert json.loads(form["RequestData"]) == {
        "ShipperCode": "SF",
        "LogisticCode": "SF1234567890",
        "OrderCode": "LC-000042",
        "Callback": "https://example.test/hooks/kdniao",
        "CustomerName": "0002",
    }
    _, form = kdniao.build_subscribe(CREDS, express="ZTO", waybill_no="753", phone="13900000002")
    assert json.loads(form["RequestData"]) == {"ShipperCode": "ZTO", "LogisticCode": "753"}


def test_build_query() -> None:
    path, form = kdniao.build_query(CREDS, express="YTO", waybill_no="YT9693083639795")
    assert path == "/Ebusiness/EbusinessOrderHandle.aspx" and form["RequestType"] == "1002"
    assert form["RequestData"] == CHECK_DATA and form["DataSign"] == CHECK_SIGN
    _, form = kdniao.build_query(CREDS, express="SF", waybill_no="SF1", phone="13800000001")
    assert json.loads(form["RequestData"])["CustomerName"] == "0001"


def test_build_cancel() -> None:
    path, form = kdniao.build_cancel(CREDS, express="ZTO", order_code="LC-000042", waybill_no="753")
    assert path == "/api/EOrderService" and form["RequestType"] == "1147"
    assert kdniao.verify_sign(form["RequestData"], form["DataSign"], CHECK_KEY)
    assert json.loads(form["RequestData"]) == {
        "ShipperCode": "ZTO",
        "OrderCode": "LC-000042",
        "ExpNo": "753",
        "CustomerName": "CUST01",
        "CustomerPwd": "PWD01",
    }


@pytest.mark.parametrize(
    ("base_url", "path", "url"),
    [
        (kdniao.PRODUCTION_BASE_URL, "/api/dist", "https://api.kdniao.com/api/dist"),
        (kdniao.SANDBOX_URL, "/api/EOrderService", kdniao.SANDBOX_URL),
        ("http://127.0.0.1:8099/", "/api/EOrderService", "http://127.0.0.1:8099/api/EOrderService"),
    ],
)
def test_request_url(base_url: str, path: str, url: str) -> None:
    assert kdniao.request_url(base_url, path) == url


# --- answers -------------------------------------------------------------------------------------

EORDER_OK: dict[str, Any] = {
    "EBusinessID": "1234567",
    "Success": True,
    "ResultCode": "100",
    "Reason": "成功",
    "UniquerRequestNumber": "5e66486b-8fbc-4131-b875-9b13d2ad1354",
    "Order": {
        "OrderCode": "LC-000042",
        "ShipperCode": "ZTO",
        "LogisticCode": "75312345678901",
        "MarkDestination": "300-A1 02",
        "OriginCode": "571000",
        "DestinatioCode": "518000",
        "SortingCode": "A1",
        "PackageName": "深圳转运中心",
    },
    "PrintTemplate": "<html><body>label</body></html>",
}


def test_parse_eorder_success() -> None:
    waybill = kdniao.parse_eorder_answer(200, answer(EORDER_OK), waybill_request())
    assert (waybill.carrier, waybill.express, waybill.order_code) == ("kdniao", "ZTO", "LC-000042")
    assert waybill.waybill_no == "75312345678901"
    assert (waybill.routing_code, waybill.origin_code, waybill.dest_code) == ("300-A1 02", "571000", "518000")
    assert waybill.label == "<html><body>label</body></html>"
    assert "PrintTemplate" not in waybill.raw and waybill.raw["Order"]["SortingCode"] == "A1"


def test_parse_eorder_success_tolerates_a_bom_and_a_string_success() -> None:
    body = b"\xef\xbb\xbf" + answer({**EORDER_OK, "Success": "true"})
    assert kdniao.parse_eorder_answer(200, body, waybill_request()).waybill_no == "75312345678901"


@pytest.mark.parametrize(
    "failure",
    [
        {"ResultCode": "106", "Reason": "该订单号已下单成功"},
        {"ResultCode": "105", "Reason": "订单编号重复"},
        {"ResultCode": "102", "Reason": "OrderCode已存在，请勿重复下单"},
        {"Reason": "Duplicate OrderCode"},
    ],
)
def test_parse_eorder_duplicate_order_code(failure: dict[str, Any]) -> None:
    body = answer({"EBusinessID": "1234567", "Success": False, **failure})
    with pytest.raises(CarrierRejected) as caught:
        kdniao.parse_eorder_answer(200, body, waybill_request())
    assert caught.value.code == kdniao.DUPLICATE_ORDER_CODE and not caught.value.retryable


@pytest.mark.parametrize(
    ("status", "body", "error", "code", "retryable"),
    [
        (200, answer({"Success": False, "ResultCode": "101", "Reason": "缺少必要参数"}), CarrierRejected, "101", False),
        (200, answer({"Success": False, "ResultCode": "102", "Reason": "校验问题"}), CarrierRejected, "102", False),
        (200, answer({"Success": False, "ResultCode": "103", "Reason": "格式问题"}), CarrierRejected, "103", False),
        (200, answer({"Success": False, "ResultCode": "104", "Reason": "用户问题"}), CarrierRejected, "104", False),
        (200, answer({"Success": False, "ResultCode": "105", "Reason": "其他错误"}), CarrierUnavailable, "105", True),
        (200, answer({"Success": False, "ResultCode": "199", "Reason": "?"}), CarrierRejected, "199", False),
        (200, answer({"Success": False, "Reason": "?"}), CarrierRejected, "carrier_rejected", False),
        (200, answer({**EORDER_OK, "ResultCode": "101"}), CarrierRejected, "101", False),
        (200, answer({**EORDER_OK, "Order": {"OrderCode": "LC-000042"}}), CarrierUnavailable, "bad_answer", True),
        (500, b"Internal Server Error", CarrierUnavailable, "http_500", True),
        (502, answer(EORDER_OK), CarrierUnavailable, "http_502", True),
        (404, b"", CarrierUnavailable, "http_404", True),
        (200, b"<html>busy</html>", CarrierUnavailable, "bad_answer", True),
        (200, b"\xff\xfe", CarrierUnavailable, "bad_answer", True),
        (200, b"[]", CarrierUnavailable, "bad_answer", True),
    ],
)
def test_parse_eorder_failures(status: int, body: bytes, error: type[CarrierError], code: str, retryable: bool) -> None:
    with pytest.raises(error) as caught:
        kdniao.parse_eorder_answer(status, body, waybill_request())
    assert type(caught.value) is error
    assert (caught.value.code, caught.value.retryable) == (code, retryable)


def test_parse_subscribe_answer() -> None:
    ok = {"EBusinessID": "1234567", "UpdateTime": "2024-05-01 10:00:00", "Success": True, "Reason": ""}
    kdniao.parse_subscribe_answer(200, answer(ok))  # no exception
    with pytest.raises(CarrierRejected) as rejected:
        kdniao.parse_subscribe_answer(200, answer({**ok, "Success": False, "Reason": "快递公司编码错误"}))
    assert not rejected.value.retryable and "快递公司编码错误" in rejected.value.message
    with pytest.raises(CarrierUnavailable) as busy:
        kdniao.parse_subscribe_answer(200, answer({**ok, "Success": False, "ResultCode": "105"}))
    assert busy.value.retryable
    with pytest.raises(CarrierUnavailable):
        kdniao.parse_subscribe_answer(503, b"")


def test_parse_cancel_answer() -> None:
    kdniao.parse_cancel_answer(200, answer({"Success": True, "ResultCode": "100"}))  # no exception
    with pytest.raises(CarrierRejected) as caught:
        kdniao.parse_cancel_answer(200, answer({"Success": False, "ResultCode": "102", "Reason": "已揽收不可取消"}))
    assert caught.value.code == "102"


def test_parse_query_answer() -> None:
    body = answer({"EBusinessID": "1234567", **push_item(State="3", StateEx="301")})
    tracking = kdniao.parse_query_answer(200, body)
    assert (tracking.waybill_no, tracking.express, tracking.state, tracking.final) == (
        "75312345678901",
        "ZTO",
        "delivered",
        True,
    )
    assert [event.code for event in tracking.events] == ["1", "201"]


def test_parse_query_answer_without_trace_and_refusals() -> None:
    nothing = {"ShipperCode": "ZTO", "LogisticCode": "753", "Success": False, "Reason": "暂无轨迹信息", "State": "0"}
    tracking = kdniao.parse_query_answer(200, answer(nothing))
    assert (tracking.state, tracking.events, tracking.raw["Reason"]) == ("none", (), "暂无轨迹信息")
    with pytest.raises(CarrierRejected):
        kdniao.parse_query_answer(200, answer({"Success": False, "Reason": "用户验证失败"}))
    with pytest.raises(CarrierUnavailable) as limited:
        kdniao.parse_query_answer(200, answer({"Success": False, "ResultCode": "405", "Reason": "超出查询次数限制"}))
    assert limited.value.retryable
    with pytest.raises(CarrierUnavailable):
        kdniao.parse_query_answer(200, answer({"Success": True, "State": "2"}))  # no LogisticCode


# --- push --------------------------------------------------------------------------------------


def test_good_push_with_two_items() -> None:
    second = push_item(
        ShipperCode="YTO",
        LogisticCode="YT9693083639795",
        OrderCode="",
        State="3",
        StateEx="311",
        Traces=[  # newest first: put back in order
            {"AcceptTime": "2024-05-03 18:00:00", "AcceptStation": "已签收，驿站代收", "Location": "", "Action": "311"},
            {"AcceptTime": "2024-05-03 08:00:00", "AcceptStation": "派件中", "Location": "深圳市", "Action": "202"},
        ],
    )
    payload = {"EBusinessID": "1234567", "PushTime": "2024-05-03 18:01:00", "Count": "2", "Data": [push_item(), second]}
    first_tracking, second_tracking = kdniao.parse_push(push_form(payload), CHECK_KEY)

    assert first_tracking.carrier == "kdniao"
    assert (first_tracking.waybill_no, first_tracking.express, first_tracking.order_code) == (
        "75312345678901",
        "ZTO",
        "LC-000042",
    )
    assert (first_tracking.state, first_tracking.carrier_state, first_tracking.final) == ("in_transit", "201", False)
    assert [event.at for event in first_tracking.events] == [
        datetime(2024, 5, 1, 12, 15, tzinfo=UTC),
        datetime(2024, 5, 2, 1, 30, tzinfo=UTC),
    ]
    assert first_tracking.events[0].text == "【杭州市】已揽收" and first_tracking.events[0].location == "杭州市"
    assert first_tracking.raw["StateEx"] == "201"

    assert (second_tracking.express, second_tracking.order_code) == ("YTO", None)
    assert (second_tracking.state, second_tracking.final) == ("delivered", True)
    assert [event.code for event in second_tracking.events] == ["202", "311"]
    assert second_tracking.events[0].at == datetime(2024, 5, 3, 0, 0, tzinfo=UTC)


# Every documented State and StateEx: (State, StateEx, canonical state, final).
STATE_TABLE: list[tuple[str, str, TrackState, bool]] = [
    ("0", "", "none", False),
    ("1", "", "collected", False),
    ("2", "", "in_transit", False),
    ("3", "", "delivered", True),
    ("4", "", "problem", False),
    ("0", "0", "none", False),
    ("0", "10", "none", False),
    ("1", "1", "collected", False),
    ("2", "2", "in_transit", False),
    ("2", "201", "in_transit", False),
    ("2", "202", "delivering", False),
    ("2", "211", "delivering", False),
    ("3", "3", "delivered", True),
    ("3", "301", "delivered", True),
    ("3", "302", "delivered", True),
    ("3", "304", "delivered", True),
    ("3", "311", "delivered", True),
    ("4", "4", "problem", False),
    ("4", "401", "problem", False),
    ("4", "402", "problem", False),
    ("4", "403", "problem", False),
    ("4", "404", "returned", False),
    ("4", "405", "problem", False),
    ("4", "406", "returned", True),
    ("4", "407", "returned", False),
    ("4", "412", "problem", False),
    ("4", "413", "problem", False),
    ("2", "999", "in_transit", False),  # an unknown StateEx falls back to State
    ("", "", "none", False),
    ("7", "", "none", False),
]


@pytest.mark.parametrize(("state", "state_ex", "canonical", "final"), STATE_TABLE)
def test_push_state_table(state: str, state_ex: str, canonical: TrackState, final: bool) -> None:
    item = push_item(State=state, StateEx=state_ex)
    if not state_ex:
        del item["StateEx"]
    (tracking,) = kdniao.parse_push(push_form({"Data": [item]}), CHECK_KEY)
    assert (tracking.state, tracking.final, tracking.carrier_state) == (canonical, final, state_ex or state)


def test_state_table_covers_every_mapped_value() -> None:
    listed = {state_ex for _, state_ex, _, _ in STATE_TABLE if state_ex}
    assert set(kdniao.STATES_EX) <= listed
    assert set(kdniao.STATES) <= {state for state, _, _, _ in STATE_TABLE}


def test_push_with_a_wrong_or_missing_sign() -> None:
    form = push_form({"Data": [push_item()]})
    with pytest.raises(BadSignature):
        kdniao.parse_push(form, "OTHER-APPKEY")
    with pytest.raises(BadSignature):
        kdniao.parse_push({**form, "DataSign": WRONG_RAW_DIGEST_SIGN}, CHECK_KEY)
    with pytest.raises(BadSignature):
        kdniao.parse_push({**form, "DataSign": form["DataSign"].replace("=", "%3D")}, CHECK_KEY)
    with pytest.raises(BadSignature):
        kdniao.parse_push({k: v for k, v in form.items() if k != "DataSign"}, CHECK_KEY)
    with pytest.raises(BadSignature):
        kdniao.parse_push({**form, "RequestData": form["RequestData"].replace('"2"', '"3"')}, CHECK_KEY)


def test_push_plus_and_percent_survive_form_decoding_once() -> None:
    item = push_item(
        Traces=[{"AcceptTime": "2024-05-03 18:00:00", "AcceptStation": "已签收+代收 100% 满意", "Action": "304"}]
    )
    form = push_form({"Data": [item]})
    wire = kdniao.encode_form(form)
    (tracking,) = kdniao.parse_push(kdniao.decode_form(wire), CHECK_KEY)
    assert tracking.events[0].text == "已签收+代收 100% 满意"
    twice = {key: unquote_plus(value) for key, value in kdniao.decode_form(wire).items()}
    with pytest.raises(BadSignature):
        kdniao.parse_push(twice, CHECK_KEY)


@pytest.mark.parametrize(
    "form",
    [
        {**push_form({"Data": []}), "RequestType": "102"},
        {k: v for k, v in push_form({"Data": []}).items() if k != "RequestType"},
        {"RequestType": "101", "RequestData": "", "DataSign": kdniao.data_sign("", CHECK_KEY)},
        {"RequestType": "101", "RequestData": '{"Data":[', "DataSign": kdniao.data_sign('{"Data":[', CHECK_KEY)},
        {"RequestType": "101", "RequestData": "[1]", "DataSign": kdniao.data_sign("[1]", CHECK_KEY)},
        push_form({"Data": {"LogisticCode": "753"}}),
        push_form({"Data": ["753"]}),
        push_form({"Data": [push_item(LogisticCode="")]}),
        push_form({"Data": [push_item(Traces="none")]}),
        push_form({"Data": [push_item(Traces=["x"])]}),
    ],
)
def test_malformed_push(form: dict[str, str]) -> None:
    with pytest.raises(BadMessage):
        kdniao.parse_push(form, CHECK_KEY)


def test_push_without_data_or_traces() -> None:
    assert kdniao.parse_push(push_form({"EBusinessID": "1234567", "Count": "0"}), CHECK_KEY) == []
    (tracking,) = kdniao.parse_push(push_form({"Data": [push_item(State="0", StateEx="", Traces=None)]}), CHECK_KEY)
    assert (tracking.state, tracking.events) == ("none", ())


def test_push_events_without_readable_times_keep_their_order() -> None:
    traces = [
        {"AcceptTime": "2024-05-01 08:00:00", "AcceptStation": "a"},
        {"AcceptTime": "", "AcceptStation": "b"},
        {"AcceptTime": "2024-05-02 08:00:00", "AcceptStation": "c"},
    ]
    (tracking,) = kdniao.parse_push(push_form({"Data": [push_item(Traces=traces)]}), CHECK_KEY)
    assert [event.text for event in tracking.events] == ["a", "b", "c"]
    (reverse,) = kdniao.parse_push(push_form({"Data": [push_item(Traces=traces[::-1])]}), CHECK_KEY)
    assert [event.text for event in reverse.events] == ["a", "b", "c"]


def test_push_answer_shape() -> None:
    body = kdniao.push_answer("1234567", True, now=datetime(2024, 5, 1, 16, 30, 5, tzinfo=UTC))
    assert body == b'{"EBusinessID":"1234567","UpdateTime":"2024-05-02 00:30:05","Success":true,"Reason":""}'
    failed = json.loads(kdniao.push_answer("1234567", False, "签名错误"))
    assert list(failed) == ["EBusinessID", "UpdateTime", "Success", "Reason"]
    assert (failed["Success"], failed["Reason"]) == (False, "签名错误")
    assert datetime.strptime(failed["UpdateTime"], "%Y-%m-%d %H:%M:%S")
    with pytest.raises(ValueError):
        kdniao.push_answer("1234567", True, now=datetime(2024, 5, 1, 16, 30))
