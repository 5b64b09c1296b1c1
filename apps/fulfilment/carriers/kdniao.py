"""Kdniao 快递鸟 (api.kdniao.com): request building and signing, answer parsing, and the tracking
push (RequestType 101): verification, parsing and its answer. Formats, codes, state tables and
check values: ``docs/carriers.md`` section 2 (and section 7 for the simulator).

Pure protocol: no Django, no settings, no network. A client does ``path, form = build_x(...)``,
POSTs ``form`` form-encoded exactly once (:func:`encode_form`) to ``request_url(base_url, path)``
and reads the answer with ``parse_x_answer(status, body)``.

Every call is a form ``RequestType, EBusinessID, RequestData, DataSign, DataType=2`` where
``RequestData`` is a compact JSON string and ``DataSign = base64(md5_hex(RequestData + AppKey))``:
base64 of the 32-character lowercase hex string, not of the raw digest. Both directions sign the
exact ``RequestData`` string as sent; form decoding happens once (the bububa SDK unescapes the
already decoded values a second time, which corrupts a ``+`` or ``%`` in ``RequestData``).

Unconfirmed (the documented-safe choice is taken and said where it is made):
- production over ``https``: the SDKs write ``http://api.kdniao.com``; docs/carriers.md names only the host;
- the sandbox is one gateway URL for every RequestType (misu99, bububa); the official .NET
  e-waybill demo uses another test host, ``testapi.kdniao.com:8081/api/EOrderService``;
- 1147 cancel: path ``/api/EOrderService`` and fields ``ShipperCode, OrderCode, ExpNo`` (misu99 only);
- the wording of the duplicate-OrderCode refusal (:data:`DUPLICATE_REASON`) and result code 106;
- ``IsReturnPrintTemplate`` spelling (misu99 serialises ``isReturnPrintTemplate``);
- ``CustomerName`` = the phone's last four digits for SF in 1002 (SDK comments) and in 1008;
- 1008 has no per-request push URL (it is set in Kdniao's console); ``callback_url`` travels in
  ``Callback``, the pass-through value echoed in each push's ``CallBack``; its length limit is unknown;
- StateEx 407 (misu99 only) and 1002's code 405 = query limit exceeded (bububa only);
- the push's charset (UTF-8 assumed) and its retry policy when our answer is not a success.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

from .base import (
    BEIJING,
    BadMessage,
    BadSignature,
    CarrierError,
    CarrierRejected,
    CarrierUnavailable,
    Credentials,
    Party,
    TrackEvent,
    Tracking,
    TrackState,
    Waybill,
    WaybillRequest,
    beijing_time,
    express_code,
    express_from,
)

PRODUCTION_BASE_URL: Final = "https://api.kdniao.com"
# One gateway for every RequestType (the form's RequestType routes): used as is, no path appended.
SANDBOX_URL: Final = "http://sandboxapi.kdniao.com:8080/kdniaosandbox/gateway/exterfaceInvoke.json"

REQUEST_EORDER: Final = "1007"
REQUEST_CANCEL: Final = "1147"
REQUEST_QUERY: Final = "1002"
REQUEST_SUBSCRIBE: Final = "1008"
REQUEST_PUSH: Final = "101"  # Kdniao -> us

PATHS: Final[dict[str, str]] = {
    REQUEST_EORDER: "/api/EOrderService",
    REQUEST_CANCEL: "/api/EOrderService",  # unconfirmed: misu99 sdk/api_order_cancel.go
    REQUEST_QUERY: "/Ebusiness/EbusinessOrderHandle.aspx",
    REQUEST_SUBSCRIBE: "/api/dist",
}
DATA_TYPE_JSON: Final = "2"

PAY_TYPES: Final[dict[str, int]] = {"shipper": 1, "consignee": 2, "monthly": 3}  # 4 = third party, unused

SUCCESS_CODE: Final = "100"
# 105 其他错误, Kdniao's catch-all, is treated as transient. Every other failure is a refusal the same
# call would meet again: 101 缺少必要参数, 102 校验问题, 103 格式问题, 104 用户问题, and unknown codes.
RETRYABLE_CODES: Final = frozenset({"105"})
# 1002 only (bububa config/const.go, unconfirmed): 405 超出查询次数限制.
QUERY_RETRYABLE_CODES: Final = RETRYABLE_CODES | {"405"}

DUPLICATE_ORDER_CODE: Final = "duplicate_order_code"
# Kdniao refuses an OrderCode it has seen (docs/carriers.md section 7). Neither the result code nor the
# Reason text is in our sources: 106 "该订单号已下单成功" is recalled from the API page (unconfirmed),
# so a Reason naming the order (订单 / OrderCode) together with 重复 / 已存在 / 已下单 / duplicate
# counts too.
DUPLICATE_CODES: Final = frozenset({"106"})
DUPLICATE_REASON: Final = re.compile(
    r"(订单|OrderCode|order\s*code).*(重复|已存在|已经存在|已下单|duplicat|exist)"
    r"|(重复|duplicat).*(订单|OrderCode|order\s*code)",
    re.IGNORECASE,
)

# State, the normal status (docs/carriers.md section 2).
STATES: Final[dict[str, TrackState]] = {
    "0": "none",  # 无轨迹
    "1": "collected",  # 已揽收
    "2": "in_transit",  # 在途中
    "3": "delivered",  # 签收
    "4": "problem",  # 问题件
}
# StateEx, the value-added status; it refines State where present and known.
STATES_EX: Final[dict[str, TrackState]] = {
    "0": "none",
    "1": "collected",
    "2": "in_transit",
    "3": "delivered",
    "4": "problem",
    "10": "none",  # 待揽件: ordered, not collected yet
    "201": "in_transit",  # 到达派件城市: at the destination city, not out for delivery
    "202": "delivering",  # 派件中
    "211": "delivering",  # 已放入快递柜或驿站: waiting for the receiver at a locker or station
    "301": "delivered",  # 正常签收
    "302": "delivered",  # 派件异常后最终签收
    "304": "delivered",  # 代收签收
    "311": "delivered",  # 快递柜或驿站签收
    "401": "problem",  # 发货无信息
    "402": "problem",  # 超时未签收
    "403": "problem",  # 超时未更新
    "404": "returned",  # 拒收(退件): refused, on its way back
    "405": "problem",  # 派件异常
    "406": "returned",  # 退货签收: the return was signed for
    "407": "returned",  # 退货未签收 (misu99 only, unconfirmed)
    "412": "problem",  # 快递柜或驿站超时未取
    "413": "problem",  # 单号已拦截
}
# Nothing more will happen to the parcel: signed for, or its return signed for. 404 (refused) is
# not final: the return leg is still tracked (407, then 406).
FINAL_STATES: Final = frozenset({"3"})
FINAL_STATES_EX: Final = frozenset({"301", "302", "304", "311", "406"})


# --- signing ---------------------------------------------------------------------------------


def _signature(request_data: str, app_key: str) -> str:
    hex_digest = hashlib.md5((request_data + app_key).encode()).hexdigest()  # noqa: S324 - the carrier's recipe
    return base64.b64encode(hex_digest.encode("ascii")).decode("ascii")


def data_sign(request_data: str, app_key: str) -> str:
    """``base64(md5_hex(RequestData + AppKey))`` over UTF-8: base64 of the 32-character lowercase
    hex string, not of the raw digest. Its alphabet never yields ``+`` or ``/``, and the value
    always ends in one ``=`` (``%3D`` on the wire)."""
    return _signature(request_data, app_key)


def verify_sign(request_data: str, data_sign: str, app_key: str) -> bool:
    """Whether ``data_sign`` signs ``request_data``, compared in constant time. Both are the form
    values as decoded once (what a form parser gives); nothing is unescaped again here."""
    if not data_sign:
        return False
    return hmac.compare_digest(_signature(request_data, app_key).encode(), data_sign.encode())


def request_data_json(data: Mapping[str, Any]) -> str:
    """``RequestData``: compact JSON in the given key order, non-ASCII kept (UTF-8 on the wire).
    The signature covers exactly this string."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def signed_form(credentials: Credentials, request_type: str, data: Mapping[str, Any]) -> dict[str, str]:
    """The five form fields of one call, values not yet form-encoded."""
    if credentials.carrier != "kdniao":
        raise ValueError(f"credentials are for {credentials.carrier}, not kdniao")
    text = request_data_json(data)
    return {
        "RequestType": request_type,
        "EBusinessID": credentials.app_id,
        "RequestData": text,
        "DataSign": data_sign(text, credentials.app_key),
        "DataType": DATA_TYPE_JSON,
    }


def encode_form(form: Mapping[str, str]) -> bytes:
    """The request body, ``application/x-www-form-urlencoded`` UTF-8, each value encoded once
    (``=`` -> ``%3D``, ``+`` -> ``%2B``, a space -> ``+``)."""
    return urlencode(form).encode("ascii")


def decode_form(body: bytes) -> dict[str, str]:
    """A form body decoded once (UTF-8), as a form parser does; the last value of a repeated field."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadMessage("form body is not UTF-8") from None
    return dict(parse_qsl(text, keep_blank_values=True))


def request_url(base_url: str, path: str) -> str:
    """Where to POST: the sandbox gateway as is, any other base (production, a simulator) + path."""
    base = base_url.rstrip("/")
    return base if base == SANDBOX_URL else base + path


# --- answers ---------------------------------------------------------------------------------


def _answer(status: int, body: bytes) -> dict[str, Any]:
    """The JSON object of a 2xx answer; anything else is a :class:`CarrierUnavailable`."""
    if not 200 <= status < 300:
        raise CarrierUnavailable(f"kdniao: HTTP {status}", code=f"http_{status}", http_status=status)
    try:
        answer = json.loads(body.decode("utf-8-sig"))  # .NET services may send a BOM
    except (UnicodeDecodeError, ValueError):
        raise CarrierUnavailable("kdniao: answer is not JSON", code="bad_answer", http_status=status) from None
    if not isinstance(answer, dict):
        raise CarrierUnavailable("kdniao: answer is not a JSON object", code="bad_answer", http_status=status)
    return answer


def _true(value: Any) -> bool:
    """``Success`` as JSON ``true`` or, as some answers write it, the string ``"true"``."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _get(data: Mapping[str, Any], *names: str) -> Any:
    """The first of ``names`` present (the sources spell a trace's ``Location`` both ways)."""
    for name in names:
        if name in data:
            return data[name]
    return None


def _refusal(answer: Mapping[str, Any], status: int, retryable_codes: frozenset[str]) -> CarrierError:
    code = _text(answer.get("ResultCode"))
    reason = _text(answer.get("Reason"))
    message = f"kdniao: {code or 'failed'} {reason}".strip()
    if code in retryable_codes:
        return CarrierUnavailable(message, code=code, http_status=status)
    return CarrierRejected(message, code=code or None, http_status=status)


def _duplicate(answer: Mapping[str, Any]) -> bool:
    return _text(answer.get("ResultCode")) in DUPLICATE_CODES or bool(
        DUPLICATE_REASON.search(_text(answer.get("Reason")))
    )


# --- 1007 e-waybill ----------------------------------------------------------------------------


def _party(party: Party) -> dict[str, str]:
    return {
        "Name": party.name,
        "Mobile": party.mobile,
        "ProvinceName": party.province,
        "CityName": party.city,
        "ExpAreaName": party.district,
        "Address": party.detail,
    }


def eorder_data(credentials: Credentials, request: WaybillRequest, *, template_size: str = "") -> dict[str, Any]:
    """1007's ``RequestData`` object. The express company's network account (``CustomerName``,
    ``CustomerPwd``, ``MonthCode``) is sent where the credentials carry it; ``IsSubscribe`` is
    ``"1"`` only with a ``callback_url`` (Kdniao's default is 1). One parcel per request."""
    if not request.items:
        raise ValueError("a waybill request needs at least one item")
    if any(quantity <= 0 for _, quantity in request.items):
        raise ValueError("item quantities must be positive")
    data: dict[str, Any] = {
        "OrderCode": request.order_code,
        "ShipperCode": express_code(request.express, "kdniao"),
    }
    if credentials.partner_id:
        data["CustomerName"] = credentials.partner_id
    if credentials.partner_key:
        data["CustomerPwd"] = credentials.partner_key
    if credentials.month_code:
        data["MonthCode"] = credentials.month_code
    data.update(
        {
            "PayType": PAY_TYPES[request.pay_type],
            "ExpType": 1,
            "Sender": _party(request.sender),
            "Receiver": _party(request.receiver),
            "Commodity": [{"GoodsName": name, "Goodsquantity": quantity} for name, quantity in request.items],
            "Quantity": 1,
        }
    )
    if request.weight_kg is not None:
        data["Weight"] = float(request.weight_kg)
    data["IsReturnPrintTemplate"] = 1
    if template_size:
        data["TemplateSize"] = template_size
    data["IsSubscribe"] = "1" if request.callback_url else "0"
    return data


def build_eorder(
    credentials: Credentials, request: WaybillRequest, *, template_size: str = ""
) -> tuple[str, dict[str, str]]:
    """The path and form of a 1007 e-waybill call (see :func:`eorder_data`). ``template_size`` is
    the label template's size where not the account's default (e.g. ``"130"``)."""
    data = eorder_data(credentials, request, template_size=template_size)
    return PATHS[REQUEST_EORDER], signed_form(credentials, REQUEST_EORDER, data)


def parse_eorder_answer(status: int, body: bytes, request: WaybillRequest) -> Waybill:
    """A 1007 answer as a :class:`Waybill`: ``Success`` true and ``ResultCode`` 100, the number in
    ``Order.LogisticCode``; ``raw`` is the answer without ``PrintTemplate`` (that is ``label``).

    Raises :class:`CarrierRejected` with code ``duplicate_order_code`` when Kdniao refuses a reused
    OrderCode (the waybill may exist: query it rather than retry), with the result code for
    101–104 and other refusals; :class:`CarrierUnavailable` (retryable) for 105, non-2xx and an
    unreadable answer."""
    answer = _answer(status, body)
    if _true(answer.get("Success")) and _text(answer.get("ResultCode")) == SUCCESS_CODE:
        order = answer.get("Order")
        waybill_no = _text(order.get("LogisticCode")) if isinstance(order, dict) else ""
        if not isinstance(order, dict) or not waybill_no:
            raise CarrierUnavailable(
                "kdniao: success without Order.LogisticCode", code="bad_answer", http_status=status
            )
        return Waybill(
            carrier="kdniao",
            express=request.express,
            order_code=request.order_code,
            waybill_no=waybill_no,
            routing_code=_text(order.get("MarkDestination")),
            origin_code=_text(order.get("OriginCode")),
            dest_code=_text(order.get("DestinatioCode")),  # sic: Kdniao's spelling
            label=_text(answer.get("PrintTemplate")),
            raw={k: v for k, v in answer.items() if k != "PrintTemplate"},
        )
    if _duplicate(answer):
        raise CarrierRejected(
            f"kdniao: OrderCode {request.order_code} was used before: {_text(answer.get('Reason'))}",
            code=DUPLICATE_ORDER_CODE,
            http_status=status,
        )
    raise _refusal(answer, status, RETRYABLE_CODES)


# --- 1147 cancel -------------------------------------------------------------------------------


def build_cancel(
    credentials: Credentials, *, express: str, order_code: str, waybill_no: str
) -> tuple[str, dict[str, str]]:
    """The path and form of a 1147 cancel of an e-waybill (fields and path from misu99 only:
    unconfirmed). The network account is sent where the credentials carry it."""
    data: dict[str, Any] = {
        "ShipperCode": express_code(express, "kdniao"),
        "OrderCode": order_code,
        "ExpNo": waybill_no,
    }
    if credentials.partner_id:
        data["CustomerName"] = credentials.partner_id
    if credentials.partner_key:
        data["CustomerPwd"] = credentials.partner_key
    return PATHS[REQUEST_CANCEL], signed_form(credentials, REQUEST_CANCEL, data)


def parse_cancel_answer(status: int, body: bytes) -> None:
    """``Success`` true -> None; otherwise raise as :func:`parse_eorder_answer` does."""
    answer = _answer(status, body)
    if not _true(answer.get("Success")):
        raise _refusal(answer, status, RETRYABLE_CODES)


# --- 1008 subscribe and 1002 query ---------------------------------------------------------------


def _phone_tail(express: str, phone: str) -> dict[str, str]:
    """``CustomerName`` = the sender's or receiver's phone's last four digits, sent for SF only
    (for other companies it must be left out)."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    return {"CustomerName": digits[-4:]} if express == "SF" and digits else {}


def build_subscribe(
    credentials: Credentials,
    *,
    express: str,
    waybill_no: str,
    order_code: str = "",
    callback_url: str = "",
    phone: str = "",
) -> tuple[str, dict[str, str]]:
    """The path and form of a 1008 tracking subscription. Kdniao pushes (101) to the address set in
    its console; ``callback_url``, when given, is sent as ``Callback``, the pass-through value each
    push echoes in ``CallBack`` (unconfirmed). ``phone`` is needed for SF (:func:`_phone_tail`)."""
    data: dict[str, Any] = {"ShipperCode": express_code(express, "kdniao"), "LogisticCode": waybill_no}
    if order_code:
        data["OrderCode"] = order_code
    if callback_url:
        data["Callback"] = callback_url
    data.update(_phone_tail(express, phone))
    return PATHS[REQUEST_SUBSCRIBE], signed_form(credentials, REQUEST_SUBSCRIBE, data)


def parse_subscribe_answer(status: int, body: bytes) -> None:
    """``{EBusinessID, UpdateTime, Success, Reason}``: ``Success`` true -> None; otherwise
    :class:`CarrierRejected` (:class:`CarrierUnavailable` for 105, non-2xx, unreadable)."""
    answer = _answer(status, body)
    if not _true(answer.get("Success")):
        raise _refusal(answer, status, RETRYABLE_CODES)


def build_query(
    credentials: Credentials, *, express: str, waybill_no: str, phone: str = ""
) -> tuple[str, dict[str, str]]:
    """The path and form of a 1002 instant query. ``phone`` is needed for SF (:func:`_phone_tail`)."""
    data: dict[str, Any] = {"ShipperCode": express_code(express, "kdniao"), "LogisticCode": waybill_no}
    data.update(_phone_tail(express, phone))
    return PATHS[REQUEST_QUERY], signed_form(credentials, REQUEST_QUERY, data)


def parse_query_answer(status: int, body: bytes) -> Tracking:
    """A 1002 answer (one trace, the fields of a push's ``Data[]`` item) as a :class:`Tracking`.
    ``Success`` false with a ``State`` is still a trace (e.g. "no trace yet": state ``none``, the
    reason in ``raw``); ``Success`` false without one is a refusal (405, the query limit, is
    retryable)."""
    answer = _answer(status, body)
    if not _true(answer.get("Success")) and "State" not in answer:
        raise _refusal(answer, status, QUERY_RETRYABLE_CODES)
    try:
        return tracking_from_item(answer)
    except BadMessage as exc:
        raise CarrierUnavailable(f"kdniao: {exc.message}", code="bad_answer", http_status=status) from None


# --- tracking ----------------------------------------------------------------------------------


def map_state(state: str, state_ex: str = "") -> TrackState:
    """The canonical state: ``StateEx`` where the table knows it, else ``State``, else ``none``."""
    return STATES_EX.get(state_ex) or STATES.get(state) or "none"


def is_final(state: str, state_ex: str = "") -> bool:
    """Signed for (State 3 or a 3xx StateEx), or the return signed for (StateEx 406)."""
    return state in FINAL_STATES or state_ex in FINAL_STATES_EX


def _events(traces: Any) -> tuple[TrackEvent, ...]:
    """``Traces[]`` oldest first. Kdniao sends them ascending by default; a descending list is
    reversed, and a list with every time readable is sorted (stable for equal times)."""
    if traces is None:
        return ()
    if not isinstance(traces, list):
        raise BadMessage("Traces is not a list")
    events = []
    for trace in traces:
        if not isinstance(trace, dict):
            raise BadMessage("a Traces item is not an object")
        events.append(
            TrackEvent(
                at=beijing_time(_text(trace.get("AcceptTime"))),
                text=_text(trace.get("AcceptStation")),
                location=_text(_get(trace, "Location", "location")),
                code=_text(trace.get("Action")),
            )
        )
    times = [event.at for event in events]
    if all(at is not None for at in times):
        return tuple(sorted(events, key=lambda event: event.at or datetime.min.replace(tzinfo=UTC)))
    known = [at for at in times if at is not None]
    if len(known) >= 2 and known[0] > known[-1]:
        events.reverse()
    return tuple(events)


def tracking_from_item(item: Mapping[str, Any]) -> Tracking:
    """One push ``Data[]`` item (or a 1002 answer) as a :class:`Tracking`. ``carrier_state`` is
    ``StateEx`` when given, else ``State``; ``raw`` keeps both."""
    waybill_no = _text(item.get("LogisticCode"))
    if not waybill_no:
        raise BadMessage("trace without LogisticCode")
    state = _text(item.get("State"))
    state_ex = _text(item.get("StateEx"))
    return Tracking(
        carrier="kdniao",
        waybill_no=waybill_no,
        express=express_from(_text(item.get("ShipperCode")), "kdniao"),
        state=map_state(state, state_ex),
        carrier_state=state_ex or state,
        final=is_final(state, state_ex),
        events=_events(item.get("Traces")),
        raw=dict(item),
        order_code=_text(item.get("OrderCode")) or None,
    )


# --- 101 push ----------------------------------------------------------------------------------


def parse_push(form: Mapping[str, str], app_key: str) -> list[Tracking]:
    """A tracking push, its form decoded once (``RequestType=101``, ``RequestData``, ``DataSign``),
    as one :class:`Tracking` per ``Data[]`` item, in order. Every push is a full snapshot.

    Raises :class:`BadMessage` for another RequestType, a missing or unreadable ``RequestData``;
    :class:`BadSignature` when ``DataSign`` (over the exact ``RequestData`` string, with our
    AppKey) is missing or wrong. The signature is checked before the JSON is read."""
    request_type = _text(form.get("RequestType"))
    if request_type != REQUEST_PUSH:
        raise BadMessage(f"RequestType {request_type or '(none)'} is not a tracking push ({REQUEST_PUSH})")
    request_data = form.get("RequestData")
    if not request_data:
        raise BadMessage("push without RequestData")
    if not verify_sign(request_data, form.get("DataSign") or "", app_key):
        raise BadSignature("DataSign does not match RequestData")
    try:
        payload = json.loads(request_data)
    except ValueError:
        raise BadMessage("RequestData is not JSON") from None
    if not isinstance(payload, dict):
        raise BadMessage("RequestData is not a JSON object")
    items = payload.get("Data")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise BadMessage("RequestData.Data is not a list")
    trackings = []
    for item in items:
        if not isinstance(item, dict):
            raise BadMessage("a Data item is not an object")
        trackings.append(tracking_from_item(item))
    return trackings


def push_answer(ebusiness_id: str, ok: bool, reason: str = "", now: datetime | None = None) -> bytes:
    """The JSON answer to a push: ``{"EBusinessID","UpdateTime","Success","Reason"}``, the time in
    Beijing time ``yyyy-MM-dd HH:mm:ss``. ``Success`` false asks Kdniao to push again (its retry
    policy is unconfirmed). ``now`` must be aware (default: the current time)."""
    moment = datetime.now(UTC) if now is None else now
    if moment.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    answer = {
        "EBusinessID": ebusiness_id,
        "UpdateTime": moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
        "Success": ok,
        "Reason": reason,
    }
    return json.dumps(answer, separators=(",", ":"), ensure_ascii=False).encode()
