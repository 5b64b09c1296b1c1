"""Kdniao 快递鸟 simulator: the API of ``apps.fulfilment.carriers.kdniao`` served on one port (the
protocol's ``PATHS``), the DataSign checked on every call (written here from the carrier's side,
independently of the protocol module), waybill numbers drawn per express company, and signed
tracking pushes (RequestType 101) to the push URL Kdniao's console would hold.

- 1007 e-waybill (kind ``waybill``): the next number of the ShipperCode's series, the 大头笔
  (``MarkDestination``) from the receiver's province and city, origin/destination codes, a small
  HTML ``PrintTemplate``; a reused OrderCode is refused (docs/carriers.md section 7) and draws no
  number, also after a cancel (unconfirmed); ``IsSubscribe`` "1" (Kdniao's default) subscribes the
  waybill.
- 1008 subscribe (``subscribe``): any waybill number, ``Callback`` kept and echoed in pushes as
  ``CallBack``. 1002 query (``query``): the current trace, or ``State`` 0 "暂无轨迹信息".
  1147 cancel (``cancel``): an e-waybill not collected yet.
- :meth:`KdniaoSimulator.advance` appends a trace; a subscribed waybill's full snapshot is then
  pushed. Pushes go out one at a time in order, each sent again (``push_retries`` times, backoff
  ``push_backoff`` doubling) while the answer is not ``Success: true``; every attempt is recorded
  (kind ``push``). Kdniao's own retry policy is unconfirmed.

Control paths (besides the server's health, calls and fault): ``POST /_sim/advance {"waybill_no",
"state", "state_ex", "station", "location"}`` -> the pushed item; ``POST /_sim/track {"waybill_no",
"states": [["1","10"], ...], "interval"}``; ``GET /_sim/waybills``.

Result codes: only 100–105 are documented (docs/carriers.md section 2). The signature failure's
Reason is the one users report (menduo/kdniao_python issue 3), the duplicate's (106) the one the
protocol module recalls; the other texts, and the codes given to them, are illustrative.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import threading
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Final, Unpack
from urllib.parse import urlencode

import httpx

from apps.core.simserver import ApiRequest, PushingSimServer, PushOptions, Reply
from apps.fulfilment.carriers.base import BEIJING
from apps.fulfilment.carriers.kdniao import (
    PATHS,
    REQUEST_CANCEL,
    REQUEST_EORDER,
    REQUEST_PUSH,
    REQUEST_QUERY,
    REQUEST_SUBSCRIBE,
)

KINDS: Final[dict[str, str]] = {
    REQUEST_EORDER: "waybill",
    REQUEST_SUBSCRIBE: "subscribe",
    REQUEST_QUERY: "query",
    REQUEST_CANCEL: "cancel",
}

# Waybill numbers per ShipperCode: prefix and zero-padded serial width (the shapes of real numbers).
NUMBERING: Final[dict[str, tuple[str, int]]] = {
    "SF": ("SF14", 11),
    "ZTO": ("7531", 10),
    "YTO": ("YT96", 11),
    "STO": ("7730", 9),
    "YD": ("4312", 9),
    "JD": ("JDVA", 11),
    "EMS": ("1100", 9),
}

# (ResultCode, Reason) by refusal; the slug is the recorded call's ``error``.
REFUSALS: Final[dict[str, tuple[str, str]]] = {
    "missing": ("101", "缺少必要参数"),
    "request_type": ("101", "该地址不支持此RequestType"),
    "phone": ("101", "顺丰单号需传CustomerName(手机号后四位)"),
    "bad_sign": ("102", "验证数据签名失败"),
    "shipper": ("102", "快递公司编码错误"),
    "not_found": ("102", "单号不存在"),
    "collected": ("102", "已揽收，不能取消"),
    "cancelled": ("102", "单号已取消"),
    "format": ("103", "RequestData格式错误"),
    "user": ("104", "EBusinessID不存在"),
    "duplicate": ("106", "该订单号已下单成功"),
}
NO_TRACE: Final = "暂无轨迹信息"
FORM_TYPE: Final = "application/x-www-form-urlencoded; charset=utf-8"

STATES: Final = frozenset({"0", "1", "2", "3", "4"})
DEFAULT_TRACK: Final[tuple[tuple[str, str], ...]] = (("1", "10"), ("2", "201"), ("2", "202"), ("3", "301"))
# AcceptStation of a trace when advance() is given none: by StateEx, else by State.
STATION_TEXT: Final[dict[str, str]] = {
    "10": "快递员已接单，待揽件",
    "201": "快件已到达派件城市",
    "202": "快递员正在派件",
    "211": "快件已放入快递柜或驿站",
    "301": "已签收",
    "302": "派件异常后已签收",
    "304": "已代收",
    "311": "已从快递柜或驿站取件签收",
    "401": "发货无信息",
    "402": "超时未签收",
    "403": "超时未更新",
    "404": "收件人拒收，快件退回",
    "405": "派件异常",
    "406": "退货已签收",
    "412": "快递柜或驿站超时未取",
    "413": "单号已拦截",
}
STATE_TEXT: Final[dict[str, str]] = {"0": "暂无轨迹", "1": "已揽收", "2": "运输中", "3": "已签收", "4": "问题件"}


def _sign(request_data: str, app_key: str) -> str:
    """DataSign as Kdniao computes it: base64 of the lowercase hex MD5 of RequestData + AppKey."""
    hex_digest = hashlib.md5((request_data + app_key).encode("utf-8")).hexdigest()  # noqa: S324 - the carrier's recipe
    return base64.b64encode(hex_digest.encode("ascii")).decode("ascii")


def _now_text() -> str:
    return datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _short(name: str) -> str:
    """An administrative name without its suffix (广东省 -> 广东, 深圳市 -> 深圳)."""
    for suffix in ("特别行政区", "自治区", "省", "市"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _area_code(province: str, city: str) -> str:
    """A stable six-digit network code for a city (the simulator's own, not a real table)."""
    return str(100000 + zlib.crc32(f"{province}{city}".encode()) % 900000)


def _print_template(waybill: SimWaybill, sender: dict[str, Any], receiver: dict[str, Any]) -> str:
    def party(who: dict[str, Any]) -> str:
        parts = ("Name", "Mobile", "ProvinceName", "CityName", "ExpAreaName", "Address")
        return html.escape(" ".join(_text(who.get(key)) for key in parts if _text(who.get(key))))

    no = html.escape(waybill.waybill_no)
    return (
        f'<html><head><meta charset="utf-8"><title>{no}</title></head><body>'
        f'<div class="label" style="width:100mm"><h1>{html.escape(waybill.mark_destination)}</h1>'
        f'<p class="waybill">{html.escape(waybill.shipper_code)} {no}</p>'
        f"<p>收：{party(receiver)}</p><p>寄：{party(sender)}</p></div></body></html>"
    )


@dataclass
class SimWaybill:
    """A waybill the simulator knows: issued by 1007, or only tracked (1008 of any number)."""

    waybill_no: str
    shipper_code: str
    order_code: str = ""
    mark_destination: str = ""
    origin_code: str = ""
    dest_code: str = ""
    subscribed: bool = False
    callback: str = ""
    cancelled: bool = False
    state: str = "0"
    state_ex: str = ""
    location: str = ""
    traces: list[dict[str, str]] = field(default_factory=list)

    def item(self) -> dict[str, Any]:
        """The trace as a push's ``Data[]`` item (and a 1002 answer's body): the full snapshot."""
        item: dict[str, Any] = {"ShipperCode": self.shipper_code, "LogisticCode": self.waybill_no}
        if self.order_code:
            item["OrderCode"] = self.order_code
        item |= {"Success": True, "Reason": "", "State": self.state}
        if self.state_ex:
            item["StateEx"] = self.state_ex
        item |= {"Location": self.location, "CallBack": self.callback, "Traces": [dict(t) for t in self.traces]}
        return item

    def summary(self) -> dict[str, Any]:
        return {
            "shipper_code": self.shipper_code,
            "order_code": self.order_code,
            "mark_destination": self.mark_destination,
            "subscribed": self.subscribed,
            "cancelled": self.cancelled,
            "state": self.state,
            "state_ex": self.state_ex,
            "traces": len(self.traces),
        }


class KdniaoSimulator(PushingSimServer):
    """Kdniao for one merchant account (``ebusiness_id`` / ``app_key``). ``push_url`` is where
    tracking pushes go (None: none are sent); ``push_retries`` further attempts follow a push not
    acknowledged, ``push_backoff`` seconds after the first, doubling; ``push_timeout`` bounds each."""

    service = "kdniao"
    push_method = REQUEST_PUSH

    def __init__(
        self,
        *,
        ebusiness_id: str,
        app_key: str,
        push_url: str | None = None,
        **options: Unpack[PushOptions],
    ) -> None:
        super().__init__(**options)
        self.ebusiness_id = ebusiness_id
        self.app_key = app_key
        self.push_url = push_url
        self.waybills: dict[str, SimWaybill] = {}
        self._orders: dict[str, str] = {}  # OrderCode -> waybill number
        self._serials: dict[str, int] = {}

    def health(self) -> dict[str, Any]:
        return {"service": self.service, "ebusiness_id": self.ebusiness_id, "ok": True}

    # --- tracking -------------------------------------------------------------------------------

    def advance(
        self, waybill_no: str, state: str, state_ex: str = "", station: str = "", location: str = ""
    ) -> dict[str, Any]:
        """Append a trace (now, Beijing time) and set the waybill's ``State``/``StateEx``; a
        subscribed waybill's full snapshot is then pushed (with a push URL). Returns the snapshot
        item. KeyError for an unknown waybill, ValueError for a cancelled one or an unknown State."""
        if state not in STATES:
            raise ValueError(f"State must be one of {sorted(STATES)}")
        with self.lock:
            waybill = self.waybills[waybill_no]
            if waybill.cancelled:
                raise ValueError(f"waybill {waybill_no} is cancelled")
            waybill.traces.append(
                {
                    "AcceptTime": _now_text(),
                    "AcceptStation": station or STATION_TEXT.get(state_ex) or STATE_TEXT[state],
                    "Location": location,
                    "Action": state_ex or state,
                }
            )
            waybill.state, waybill.state_ex = state, state_ex
            if location:
                waybill.location = location
            item = waybill.item()
            if self.push_url and waybill.subscribed:
                params = {"waybill_no": waybill_no, "State": state, "StateEx": state_ex}
                self.enqueue(self.push_url, self.push_body([item]), content_type=FORM_TYPE, params=params)
        return item

    def run_tracking(
        self, waybill_no: str, states: Sequence[tuple[str, str]] = DEFAULT_TRACK, interval: float = 0.0
    ) -> threading.Thread:
        """:meth:`advance` through ``states`` ((State, StateEx) pairs) in a background thread,
        ``interval`` seconds apart; :meth:`wait_pushes` also waits for it. Returns the thread."""
        steps = [(str(state), str(state_ex)) for state, state_ex in states]
        if any(state not in STATES for state, _ in steps) or interval < 0:
            raise ValueError(f"each State must be one of {sorted(STATES)}, interval >= 0")
        with self.lock:
            if waybill_no not in self.waybills:
                raise KeyError(f"unknown waybill {waybill_no}")
        calls = [partial(self.advance, waybill_no, state, state_ex) for state, state_ex in steps]
        return self.run_steps(f"track-{waybill_no}", calls, interval)

    def push_body(self, items: list[dict[str, Any]]) -> bytes:
        """A 101 push as sent: ``RequestData`` = {EBusinessID, PushTime, Count, Data}, its DataSign
        with the AppKey, form-encoded once."""
        payload = {"EBusinessID": self.ebusiness_id, "PushTime": _now_text(), "Count": str(len(items)), "Data": items}
        request_data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        form = {"RequestData": request_data, "RequestType": REQUEST_PUSH, "DataSign": _sign(request_data, self.app_key)}
        return urlencode(form).encode("ascii")

    def push_delay(self, attempt: int) -> float:
        """``push_backoff`` before the second attempt, doubling after each."""
        return self.push_backoff * 2 ** (attempt - 2)

    def push_acknowledged(self, response: httpx.Response) -> tuple[bool, str | None]:
        """Whether a push answer is ``{"Success": true, ...}`` with HTTP 200, and why not."""
        status = response.status_code
        try:
            answer = json.loads(response.content.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError):
            answer = None
        if not isinstance(answer, dict):
            return False, f"HTTP {status}: not a JSON object"
        success = answer.get("Success")
        if status == 200 and (success is True or _text(success).lower() == "true"):
            return True, None
        return False, f"HTTP {status}: {_text(answer.get('Reason')) or 'Success is not true'}"

    # --- API ------------------------------------------------------------------------------------

    @staticmethod
    def _form(request: ApiRequest) -> dict[str, str]:
        try:
            return request.form
        except UnicodeDecodeError:
            return {}

    def api_method_of(self, request: ApiRequest) -> str:
        return self._form(request).get("RequestType", "")

    def error_body(self, message: str) -> bytes:
        return Reply.of(self._failure("105", message)).body

    def reject_reply(self, api_method: str) -> Reply:
        """Kdniao's refusal of a parcel it cannot carry (the ``reject`` fault): ResultCode 102, a refusal."""
        return Reply.of(self._failure("102", "收件地址超出派送范围"))

    def _failure(self, code: str, reason: str) -> dict[str, Any]:
        return {"EBusinessID": self.ebusiness_id, "UpdateTime": _now_text(), "Success": False, "ResultCode": code,
                "Reason": reason}  # fmt: skip

    def _refusal(self, slug: str) -> tuple[dict[str, Any], str]:
        code, reason = REFUSALS[slug]
        return self._failure(code, reason), slug

    def api(self, request: ApiRequest) -> Reply:
        form = self._form(request)
        request_type = form.get("RequestType", "")
        kind = KINDS.get(request_type, "other")
        served = {t for t, path in PATHS.items() if path == request.path}
        if not served or request.method != "POST":
            status = 405 if served else 404
            self.record(kind, request_type, {"path": request.path}, accepted=False, error=f"http_{status}")
            return Reply(status, self.error_body(f"{request.method} {request.path}: not served"))
        try:
            data = json.loads(form.get("RequestData", ""))
        except ValueError:
            data = None
        params = data if isinstance(data, dict) else {"RequestData": form.get("RequestData", "")}
        answer, error = self._check(form, request_type, served, data)
        if answer is None and isinstance(data, dict):  # passed the checks, so data is an object
            handler = {REQUEST_EORDER: self._eorder, REQUEST_SUBSCRIBE: self._subscribe,
                       REQUEST_QUERY: self._query, REQUEST_CANCEL: self._cancel}[request_type]  # fmt: skip
            answer, error = handler(data)
        if answer is None:  # unreachable: _check refuses a RequestData that is not an object
            answer, error = self._refusal("format")
        self.record(kind, request_type, params, accepted=error is None, error=error)
        return Reply.of(answer)

    def _check(
        self, form: dict[str, str], request_type: str, served: set[str], data: Any
    ) -> tuple[dict[str, Any] | None, str | None]:
        """The gateway's checks, in order: fields, RequestType, account, DataSign, format."""
        if any(not form.get(name) for name in ("RequestType", "EBusinessID", "RequestData", "DataSign")):
            return self._refusal("missing")
        if request_type not in served:
            return self._refusal("request_type")
        if form["EBusinessID"] != self.ebusiness_id:
            return self._refusal("user")
        expected = _sign(form["RequestData"], self.app_key)
        if not hmac.compare_digest(expected.encode(), form["DataSign"].encode()):
            return self._refusal("bad_sign")
        if form.get("DataType", "2") != "2" or not isinstance(data, dict):
            return self._refusal("format")
        return None, None

    def _waybill_refusal(self, data: dict[str, Any], number_field: str) -> tuple[dict[str, Any], str] | None:
        """Missing ShipperCode or number, an unknown ShipperCode, SF without the phone's last four."""
        shipper = _text(data.get("ShipperCode"))
        if not shipper or not _text(data.get(number_field)):
            return self._refusal("missing")
        if shipper not in NUMBERING:
            return self._refusal("shipper")
        if shipper == "SF" and number_field == "LogisticCode":
            tail = _text(data.get("CustomerName"))
            if len(tail) != 4 or not tail.isdigit():
                return self._refusal("phone")
        return None

    def _eorder(self, data: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        refused = self._waybill_refusal(data, "OrderCode")
        if refused:
            return refused
        sender, receiver = data.get("Sender"), data.get("Receiver")
        required = ("Name", "Mobile", "ProvinceName", "CityName", "Address")
        if not isinstance(sender, dict) or not isinstance(receiver, dict) or not data.get("Commodity"):
            return self._refusal("missing")
        if any(not _text(party.get(name)) for party in (sender, receiver) for name in required):
            return self._refusal("missing")
        order_code, shipper = _text(data["OrderCode"]), _text(data["ShipperCode"])
        province, city = _text(receiver["ProvinceName"]), _text(receiver["CityName"])
        with self.lock:
            if order_code in self._orders:
                return self._refusal("duplicate")
            serial = self._serials.get(shipper, 0) + 1
            self._serials[shipper] = serial
            prefix, width = NUMBERING[shipper]
            mark = _short(city) if _short(province) == _short(city) else f"{_short(province)}-{_short(city)}"
            waybill = SimWaybill(
                waybill_no=f"{prefix}{serial:0{width}d}",
                shipper_code=shipper,
                order_code=order_code,
                mark_destination=mark,
                origin_code=_area_code(_text(sender["ProvinceName"]), _text(sender["CityName"])),
                dest_code=_area_code(province, city),
                subscribed=_text(data.get("IsSubscribe", "1")) == "1",
            )
            self.waybills[waybill.waybill_no] = waybill
            self._orders[order_code] = waybill.waybill_no
        answer: dict[str, Any] = {
            "EBusinessID": self.ebusiness_id,
            "UniquerRequestNumber": str(uuid.uuid5(uuid.NAMESPACE_URL, f"kdniao-sim:{self.ebusiness_id}:{order_code}")),
            "Order": {
                "OrderCode": order_code,
                "ShipperCode": shipper,
                "LogisticCode": waybill.waybill_no,
                "MarkDestination": waybill.mark_destination,
                "OriginCode": waybill.origin_code,
                "DestinatioCode": waybill.dest_code,  # sic: Kdniao's spelling
                "SortingCode": waybill.dest_code[-3:],
                "PackageName": f"{_short(city)}转运中心",
            },
            "Success": True,
            "ResultCode": "100",
            "Reason": "成功",
            "SubCount": 0,
        }
        if _text(data.get("IsReturnPrintTemplate")) == "1":
            answer["PrintTemplate"] = _print_template(waybill, sender, receiver)
        return answer, None

    def _subscribe(self, data: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        refused = self._waybill_refusal(data, "LogisticCode")
        if refused:
            return refused
        shipper, number = _text(data["ShipperCode"]), _text(data["LogisticCode"])
        with self.lock:
            waybill = self.waybills.setdefault(
                number, SimWaybill(waybill_no=number, shipper_code=shipper, order_code=_text(data.get("OrderCode")))
            )
            if waybill.shipper_code != shipper:
                return self._refusal("shipper")
            if waybill.cancelled:
                return self._refusal("cancelled")
            waybill.subscribed = True
            if _text(data.get("Callback")):
                waybill.callback = _text(data["Callback"])
        return {"EBusinessID": self.ebusiness_id, "UpdateTime": _now_text(), "Success": True, "Reason": ""}, None

    def _query(self, data: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        refused = self._waybill_refusal(data, "LogisticCode")
        if refused:
            return refused
        shipper, number = _text(data["ShipperCode"]), _text(data["LogisticCode"])
        with self.lock:
            waybill = self.waybills.get(number)
            if waybill is not None and waybill.shipper_code == shipper and waybill.traces:
                return {"EBusinessID": self.ebusiness_id, **waybill.item()}, None
        nothing = {"EBusinessID": self.ebusiness_id, "ShipperCode": shipper, "LogisticCode": number, "Success": False,
                   "Reason": NO_TRACE, "State": "0", "Traces": []}  # fmt: skip
        return nothing, None

    def _cancel(self, data: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        refused = self._waybill_refusal(data, "ExpNo")
        if refused:
            return refused
        if not _text(data.get("OrderCode")):
            return self._refusal("missing")
        with self.lock:
            waybill = self.waybills.get(_text(data["ExpNo"]))
            if (
                waybill is None
                or waybill.shipper_code != _text(data["ShipperCode"])
                or waybill.order_code != _text(data["OrderCode"])
            ):
                return self._refusal("not_found")
            if waybill.cancelled:
                return self._refusal("cancelled")
            if waybill.traces:
                return self._refusal("collected")
            waybill.cancelled, waybill.subscribed = True, False
        done = {"EBusinessID": self.ebusiness_id, "UpdateTime": _now_text(), "Success": True, "ResultCode": "100",
                "Reason": "成功"}  # fmt: skip
        return done, None

    # --- control --------------------------------------------------------------------------------

    def control(self, request: ApiRequest) -> Reply | None:
        path, verb = request.path.rstrip("/"), request.method
        if path == "/_sim/advance" and verb == "POST":
            body = request.json()
            fields = {name: str(body.get(name, "")) for name in ("state_ex", "station", "location")}
            return Reply.of(self.advance(str(body["waybill_no"]), str(body["state"]), **fields))
        if path == "/_sim/track" and verb == "POST":
            body = request.json()
            states = body.get("states")
            steps = DEFAULT_TRACK if states is None else [(str(s[0]), str(s[1]) if len(s) > 1 else "") for s in states]
            self.run_tracking(str(body["waybill_no"]), steps, interval=float(body.get("interval", 0.0)))
            return Reply.of({"ok": True, "steps": len(steps)}, 202)
        if path == "/_sim/waybills" and verb == "GET":
            with self.lock:
                return Reply.of({number: waybill.summary() for number, waybill in self.waybills.items()})
        return None
