"""Kuaidi100 快递100 (api.kuaidi100.com, poll.kuaidi100.com): request building and signing for the
e-waybill v2 ``label/order``, the tracking subscription (``/poll``) and the real-time query
(``poll/query.do``); answer parsing; inbound tracking push verification and parsing. Formats,
field names, codes, state tables and check values: ``docs/carriers.md`` section 1 (and the
simulator checklist, section 7).

Pure protocol: a client does ``form = build_x(...)``, POSTs ``form`` form-encoded (UTF-8, encoded
once) to ``URL_X`` and hands the HTTP status and body bytes to ``parse_x_answer``. Every
``param`` is a compact JSON string and each signature covers exactly that string.

Unconfirmed (documented-safe behaviour chosen):
- the e-waybill error codes: 30001 参数错误 / 30002 验证签名失败 / 30004 单量不足 come from the
  复打 doc and are assumed for ``order``; which codes are transient is not documented, so only
  5xx-like codes (``500``-``599``) are treated as retryable, every other code as a refusal;
- ``reorder``'s JSON type (sent as a boolean, and only when true: false is the default and gives
  the first result for the same ``orderId`` within 48 h);
- the query error codes (400/408/500/501/502/503/601) come from unattributed copies, not an
  official page; 500 查询无结果 is a refusal that may succeed later (``retryable``);
- the subscription codes other than 200 (500/501/502/600/700/701) are unattributed; 501 重复订阅
  is taken as success (already polling);
- the case of the push ``sign``: compared case-insensitively;
- the advanced (``resultv2=4``) 2xx sub-codes: mapped by their first digit (2 疑难 -> problem);
- ``Credentials`` has no field for the label account's ``net``/``code``/``partnerSecret``: they
  are keyword arguments of :func:`build_label_order`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from .base import (
    BadMessage,
    BadSignature,
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

URL_QUERY: Final = "https://poll.kuaidi100.com/poll/query.do"
URL_SUBSCRIBE: Final = "https://poll.kuaidi100.com/poll"
URL_LABEL_ORDER: Final = "https://api.kuaidi100.com/label/order"

LABEL_OK: Final = "200"
SUBSCRIBE_OK: Final = "200"
SUBSCRIBE_ALREADY: Final = "501"  # 重复订阅: the number is already being polled

# Transient codes of each API (the rest are refusals). See the module docstring for what is unconfirmed.
QUERY_RETRYABLE: Final = frozenset({"501", "502"})  # 服务器错误, 繁忙
QUERY_NO_RESULT: Final = "500"  # 查询无结果: nothing yet, may succeed later
QUERY_REFUSED: Final = frozenset({"400", "408", "503", "601"})  # 公司不对, 手机号错, 验证签名失败, key过期
SUBSCRIBE_RETRYABLE: Final = frozenset({"500", "502"})

PAY_TYPES: Final[dict[str, str]] = {"shipper": "SHIPPER", "consignee": "CONSIGNEE", "monthly": "MONTHLY"}
PRINT_TYPES: Final = frozenset({"NON", "IMAGE", "HTML", "CLOUD"})

# ``lastResult.state`` / ``state`` -> canonical state (QueryTrackResp.java; docs/carriers.md section 1).
STATES: Final[dict[str, TrackState]] = {
    "0": "in_transit",  # 在途
    "1": "collected",  # 揽收
    "2": "problem",  # 疑难
    "3": "delivered",  # 签收
    "4": "returned",  # 退签
    "5": "delivering",  # 派件
    "6": "returned",  # 退回
    "7": "in_transit",  # 转投
    "8": "in_transit",  # 清关
    "10": "in_transit",  # 待清关
    "11": "in_transit",  # 清关中
    "12": "in_transit",  # 已清关
    "13": "in_transit",  # 清关异常
    "14": "returned",  # 拒签
}

# Advanced states (``resultv2=4``) whose documented meaning differs from their family's; the others
# map by their family (the first digit of a 3-digit code, the first two of a 4-digit one).
ADVANCED_STATES: Final[dict[str, TrackState]] = {
    "101": "none",  # 已下单: not collected yet
    "102": "none",  # 待揽收
    "103": "collected",  # 已揽收
    "1001": "in_transit",  # 到达派件城市
    "1002": "in_transit",  # 干线
    "1003": "in_transit",  # 转递
    "501": "delivering",  # 投柜/驿站 (awaiting pickup)
    "301": "delivered",  # 本人签收
    "302": "delivered",  # 异常后签收
    "303": "delivered",  # 代签
    "304": "delivered",  # 投柜/站签收
    "401": "problem",  # 已销单: the waybill was cancelled, not a return; a person looks at it
}

# Push ``status``: ``shutdown`` = signed, no more pushes; ``abort`` = gave up (3 days without a
# record or 60 days without change), resubscribe after 30 min.
PUSH_FINAL_STATUS: Final = "shutdown"
PUSH_ABORT_STATUS: Final = "abort"

PUSH_OK: Final[dict[str, Any]] = {"result": True, "returnCode": "200", "message": "成功"}
PUSH_RETRY: Final[dict[str, Any]] = {"result": False, "returnCode": "500", "message": "失败"}


# --- signing -------------------------------------------------------------------------------------


def _md5_upper(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest().upper()  # noqa: S324 - the carrier's recipe


def param_json(param: Mapping[str, Any]) -> str:
    """A ``param`` as sent: compact, keys in insertion order, non-ASCII kept as UTF-8."""
    return json.dumps(param, separators=(",", ":"), ensure_ascii=False)


def sign_query(param: str, key: str, customer: str) -> str:
    """Query signature: ``UPPER(md5(param + key + customer))``."""
    return _md5_upper(param + key + customer)


def sign_label(param: str, t: str, key: str, secret: str) -> str:
    """E-waybill v2 signature: ``UPPER(md5(param + t + key + secret))``, ``t`` in milliseconds."""
    return _md5_upper(param + t + key + secret)


def sign_push(param: str, salt: str) -> str:
    """Push signature: ``md5(param + salt)``, uppercase hex here (compare case-insensitively)."""
    return _md5_upper(param + salt)


def verify_push_sign(param: str, sign: str | None, salt: str | None) -> None:
    """Raise :class:`BadSignature` unless ``sign`` is ``md5(param + salt)`` (any case, compared in
    constant time). With no salt (None or empty) nothing is checked: Kuaidi100 sends no sign for a
    null salt and a meaningless one for an empty salt, so such pushes are unauthenticated."""
    if not salt:
        return
    given = (sign or "").strip().upper()
    if not given:
        raise BadSignature("kuaidi100 push without a sign")
    if not hmac.compare_digest(sign_push(param, salt).encode(), given.encode()):
        raise BadSignature("kuaidi100 push sign does not match param")


# --- e-waybill v2 (label/order) ------------------------------------------------------------------


def _man(party: Party) -> dict[str, str]:
    return {"name": party.name, "mobile": party.mobile, "printAddr": party.full_address}


def _cargo(items: tuple[tuple[str, int], ...]) -> str:
    return ",".join(name if quantity == 1 else f"{name}×{quantity}" for name, quantity in items)


def label_order_param(
    creds: Credentials,
    req: WaybillRequest,
    *,
    print_type: str = "IMAGE",
    temp_id: str = "",
    reorder: bool = False,
    net: str = "",
    code: str = "",
    partner_secret: str = "",
) -> dict[str, Any]:
    """The ``param`` object of ``method=order``. Account fields are sent only where set; the
    auto-subscription (``needSubscribe``, ``pollCallBackUrl``, and ``salt`` = the credentials'
    push salt where set) only when ``req.callback_url`` is. ``count`` is the total quantity and
    ``cargo`` the goods names (``name×qty``)."""
    if print_type not in PRINT_TYPES:
        raise ValueError(f"unknown print type {print_type!r}")
    param: dict[str, Any] = {"kuaidicom": express_code(req.express, "kuaidi100")}
    account = {
        "partnerId": creds.partner_id,
        "partnerKey": creds.partner_key,
        "partnerSecret": partner_secret,
        "net": net,
        "code": code,
    }
    param.update({name: value for name, value in account.items() if value})
    param["recMan"] = _man(req.receiver)
    param["sendMan"] = _man(req.sender)
    param["cargo"] = _cargo(req.items)
    param["count"] = sum(quantity for _, quantity in req.items)
    if req.weight_kg is not None:
        param["weight"] = float(req.weight_kg)
    param["payType"] = PAY_TYPES[req.pay_type]
    param["orderId"] = req.order_code
    param["printType"] = print_type
    if temp_id:
        param["tempId"] = temp_id
    if reorder:
        param["reorder"] = True  # unconfirmed type; false (the default) is left out
    if req.callback_url:
        param["needSubscribe"] = True
        param["pollCallBackUrl"] = req.callback_url
        if creds.push_salt:
            param["salt"] = creds.push_salt
    return param


def build_label_order(
    creds: Credentials,
    req: WaybillRequest,
    *,
    t_ms: int,
    print_type: str = "IMAGE",
    temp_id: str = "",
    reorder: bool = False,
    net: str = "",
    code: str = "",
    partner_secret: str = "",
) -> dict[str, str]:
    """The form of one e-waybill ``order`` call (POST to :data:`URL_LABEL_ORDER`): ``method``,
    ``key`` (``creds.app_key``), ``t`` (``t_ms``), ``sign`` (:func:`sign_label` with
    ``creds.app_secret``) and ``param`` (:func:`label_order_param`). ``reorder=False`` makes the
    same ``orderId`` return the first waybill (48 h), so a retry after a timeout is safe."""
    param = param_json(
        label_order_param(
            creds,
            req,
            print_type=print_type,
            temp_id=temp_id,
            reorder=reorder,
            net=net,
            code=code,
            partner_secret=partner_secret,
        )
    )
    t = str(t_ms)
    return {
        "method": "order",
        "key": creds.app_key,
        "t": t,
        "sign": sign_label(param, t, creds.app_key, creds.app_secret),
        "param": param,
    }


def _json_answer(api: str, status: int, body: bytes | str) -> dict[str, Any]:
    """The JSON object of a 2xx answer; :class:`CarrierUnavailable` (retryable) otherwise."""
    if not 200 <= status < 300:
        raise CarrierUnavailable(f"kuaidi100 {api}: HTTP {status}", code=f"http_{status}", http_status=status)
    try:
        answer = json.loads(body)
    except ValueError:
        raise CarrierUnavailable(
            f"kuaidi100 {api}: answer is not JSON", code="bad_answer", http_status=status
        ) from None
    if not isinstance(answer, dict):
        raise CarrierUnavailable(f"kuaidi100 {api}: answer is not an object", code="bad_answer", http_status=status)
    return answer


def _code(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _is_5xx(code: str) -> bool:
    return len(code) == 3 and code.startswith("5") and code.isdigit()


def parse_label_answer(status: int, body: bytes | str, req: WaybillRequest) -> Waybill:
    """A ``label/order`` answer as a :class:`Waybill`: ``code`` 200 -> ``data.kuaidinum`` (the
    waybill number), ``bulkpen`` (大头笔), ``orgCode``, ``destCode``, ``label``. Another code raises
    :class:`CarrierRejected` with that code, except 5xx-like codes (busy, server error:
    :class:`CarrierUnavailable`). A non-2xx status, a body that is not a JSON object, or a 200
    without a waybill number raise :class:`CarrierUnavailable` (a retry with the same ``orderId``
    returns the first result)."""
    answer = _json_answer("label/order", status, body)
    code = _code(answer.get("code"))
    message = f"kuaidi100 label/order {code}: {answer.get('message') or ''}".strip()
    if code != LABEL_OK:
        if _is_5xx(code):
            raise CarrierUnavailable(message, code=code, http_status=status)
        raise CarrierRejected(message, code=code or "no_code", http_status=status)
    data = answer.get("data")
    data = data if isinstance(data, dict) else {}
    waybill_no = _code(data.get("kuaidinum"))
    if not waybill_no:
        raise CarrierUnavailable(
            "kuaidi100 label/order: success without kuaidinum", code="no_waybill_no", outcome_unknown=True
        )
    return Waybill(
        carrier="kuaidi100",
        express=req.express,
        order_code=req.order_code,
        waybill_no=waybill_no,
        routing_code=_code(data.get("bulkpen")),
        origin_code=_code(data.get("orgCode")),
        dest_code=_code(data.get("destCode")),
        label=_code(data.get("label")),
        raw=answer,
    )


# --- subscription (/poll) ------------------------------------------------------------------------


def build_subscribe(
    creds: Credentials, *, express: str, waybill_no: str, phone: str, callback_url: str, salt: str | None
) -> dict[str, str]:
    """The form of a subscription (POST to :data:`URL_SUBSCRIBE`): ``schema=json`` and ``param``
    ``{company, number, key, parameters{callbackurl, salt, phone}}``; no sign (the key is inside
    ``param``). An empty ``salt`` is left out, and the pushes then come unsigned. ``phone`` (the
    receiver's or sender's, the last 4 digits suffice) is needed for SF and ZTO."""
    parameters: dict[str, str] = {"callbackurl": callback_url}
    if salt:
        parameters["salt"] = salt
    if phone:
        parameters["phone"] = phone
    param = {
        "company": express_code(express, "kuaidi100"),
        "number": waybill_no,
        "key": creds.app_key,
        "parameters": parameters,
    }
    return {"schema": "json", "param": param_json(param)}


def parse_subscribe_answer(status: int, body: bytes | str) -> None:
    """None when subscribed: ``returnCode`` 200, or 501 (重复订阅, already polling: idempotent).
    500/502 (and other 5xx-like codes) raise :class:`CarrierUnavailable`; 600 key错, 700 数据错误,
    701 拒绝订阅的快递公司 and any other code :class:`CarrierRejected`."""
    answer = _json_answer("poll", status, body)
    code = _code(answer.get("returnCode"))
    if code in (SUBSCRIBE_OK, SUBSCRIBE_ALREADY):
        return
    message = f"kuaidi100 poll {code}: {answer.get('message') or ''}".strip()
    if code in SUBSCRIBE_RETRYABLE or _is_5xx(code):
        raise CarrierUnavailable(message, code=code, http_status=status)
    raise CarrierRejected(message, code=code or "no_code", http_status=status)


# --- real-time query (poll/query.do) -------------------------------------------------------------


def build_query(creds: Credentials, *, express: str, waybill_no: str, phone: str = "") -> dict[str, str]:
    """The form of a real-time query (POST to :data:`URL_QUERY`): ``customer`` (``creds.app_id``),
    ``param`` ``{com, num[, phone]}`` and ``sign`` (:func:`sign_query` with ``creds.app_key``).
    ``phone`` is needed for SF and ZTO. Used to repair a missed push."""
    param: dict[str, str] = {"com": express_code(express, "kuaidi100"), "num": waybill_no}
    if phone:
        param["phone"] = phone
    text = param_json(param)
    return {"customer": creds.app_id, "sign": sign_query(text, creds.app_key, creds.app_id), "param": text}


def parse_query_answer(status: int, body: bytes | str) -> Tracking:
    """A query answer (``{message, nu, com, ischeck, status, state, data[]}``) as a
    :class:`Tracking` (``final`` when delivered). An error answer (``result`` false with a
    ``returnCode``) raises: 501 服务器错误 / 502 繁忙 (and other 5xx-like codes)
    :class:`CarrierUnavailable`; 500 查询无结果 a retryable :class:`CarrierRejected` (no trace yet);
    400 公司不对, 408 手机号错, 503 验证签名失败, 601 key过期 and others :class:`CarrierRejected`."""
    answer = _json_answer("query", status, body)
    if answer.get("result") is False or ("returnCode" in answer and not answer.get("nu")):
        code = _code(answer.get("returnCode"))
        message = f"kuaidi100 query {code}: {answer.get('message') or ''}".strip()
        if code == QUERY_NO_RESULT:
            raise CarrierRejected(message, code=code, retryable=True, http_status=status)
        if code in QUERY_RETRYABLE or (_is_5xx(code) and code not in QUERY_REFUSED):
            raise CarrierUnavailable(message, code=code, http_status=status)
        raise CarrierRejected(message, code=code or "no_code", http_status=status)
    try:
        return _tracking(answer, raw=answer, push_status="")
    except BadMessage as exc:
        raise CarrierUnavailable(f"kuaidi100 query: {exc.message}", code="bad_answer", http_status=status) from None


# --- tracking push -------------------------------------------------------------------------------


def map_state(value: Any) -> TrackState:
    """A Kuaidi100 state (basic or advanced) as a canonical one: :data:`STATES`, then
    :data:`ADVANCED_STATES`, then an advanced code's family (first digit of a 3-digit code, first
    two of a 4-digit one). Blank -> ``none``; a code no table knows -> ``problem`` (a person looks)."""
    state = _code(value)
    if not state:
        return "none"
    if state in STATES:
        return STATES[state]
    if state in ADVANCED_STATES:
        return ADVANCED_STATES[state]
    if state.isdigit() and len(state) in (3, 4):
        family = state[: len(state) - 2]
        if family in STATES:
            return STATES[family]
    return "problem"


_NO_TIME: Final = datetime.min.replace(tzinfo=UTC)  # sort key only: every event has a time when used


def _events(data: Any) -> tuple[TrackEvent, ...]:
    """``data[]`` (newest first as documented) oldest first; if every event has a time they are
    sorted by it (stable), so an ascending list comes out right too."""
    if data is None:
        return ()
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise BadMessage("kuaidi100 trace data is not a list of objects")
    events = [
        TrackEvent(
            at=beijing_time(_code(item.get("ftime")) or _code(item.get("time"))),
            text=_code(item.get("context")),
            location=_code(item.get("location")),
            code=_code(item.get("statusCode")),
        )
        for item in reversed(data)
    ]
    if all(event.at is not None for event in events):
        events.sort(key=lambda event: event.at or _NO_TIME)
    return tuple(events)


def _tracking(result: Mapping[str, Any], *, raw: dict[str, Any], push_status: str, com: str = "") -> Tracking:
    waybill_no = _code(result.get("nu"))
    if not waybill_no:
        raise BadMessage("kuaidi100 trace without nu")
    state = map_state(result.get("state"))
    return Tracking(
        carrier="kuaidi100",
        waybill_no=waybill_no,
        express=express_from(_code(result.get("com")) or com, "kuaidi100"),
        state=state,
        carrier_state=_code(result.get("state")),
        final=push_status == PUSH_FINAL_STATUS or state == "delivered",
        events=_events(result.get("data")),
        raw=raw,
    )


def parse_push(form: Mapping[str, str], salt: str | None) -> Tracking:
    """A tracking push (form fields ``param``, ``sign``) as a :class:`Tracking`. The sign is checked
    first (:func:`verify_push_sign`: :class:`BadSignature` if ``salt`` is set and it is missing or
    wrong); then ``param`` must be a JSON object with a ``lastResult`` object (else
    :class:`BadMessage`). ``final`` when ``status`` is ``shutdown`` or the state is delivered;
    ``raw`` is the whole ``param`` object. Every push carries the full trace."""
    param = form.get("param") or ""
    verify_push_sign(param, form.get("sign"), salt)
    try:
        message = json.loads(param)
    except ValueError:
        raise BadMessage("kuaidi100 push param is not JSON") from None
    if not isinstance(message, dict):
        raise BadMessage("kuaidi100 push param is not an object")
    result = message.get("lastResult")
    if not isinstance(result, dict):
        raise BadMessage("kuaidi100 push without lastResult")
    return _tracking(result, raw=message, push_status=_code(message.get("status")), com=_code(message.get("comNew")))


def should_resubscribe(tracking: Tracking) -> bool:
    """Whether the push said Kuaidi100 stopped polling without a result (``status=abort``: 3 days
    without a record or 60 days without change); resubscribe after 30 minutes."""
    return _code(tracking.raw.get("status")) == PUSH_ABORT_STATUS


def push_answer(ok: bool) -> bytes:
    """The reply to a push: ``{"result":true,"returnCode":"200","message":"成功"}``; on failure
    ``result`` false and ``returnCode`` 500, so Kuaidi100 pushes again (3 times, 35 min apart).
    Reply within 20 s."""
    return json.dumps(PUSH_OK if ok else PUSH_RETRY, separators=(",", ":"), ensure_ascii=False).encode()
