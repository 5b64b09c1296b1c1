"""Kuaidi100 快递100 simulator: the three production APIs on one port, checked and answered from the
carrier's side, and tracking pushes to the subscribed callback URLs (``docs/carriers.md`` section 1
and the section 7 checklist). Signatures are those of ``carriers.kuaidi100`` (the check values there
pin them); everything else here is written from the service's documentation.

- ``POST /label/order``: e-waybill v2 ``method=order``. ``sign`` must be ``sign_label`` with our key
  and secret (else 30002 验证签名失败); a waybill number per express company (a prefix and a
  counter); the same ``orderId`` answers the first result unless ``reorder`` is true; 大头笔 from
  the receiver's address; ``label`` a URL of ``GET /_sim/labels/<waybill>`` (an HTML 76×130 label);
  ``needSubscribe`` + ``pollCallBackUrl`` subscribes the new number.
- ``POST /poll``: subscription. The key inside ``param`` must be ours (else 600); 501 重复订阅 for a
  number already being polled; 700/701 for bad data / an express company we do not serve.
- ``POST /poll/query.do``: ``sign`` must be ``sign_query`` with our key and customer (else 503);
  500 查询无结果 until the number has a trace; 408 for a wrong phone (SF, ZTO).

Tracking: :meth:`Kuaidi100Simulator.advance` appends one event and pushes the whole trace (newest
first) to the subscription, signed with its salt (``param`` + ``sign``); state 3 pushes
``shutdown`` and ends the subscription. Pushes go out one at a time in the order made, each retried
``push_retries`` times ``push_backoff`` × attempt seconds apart unless answered ``returnCode`` "200"
(the real service: 3 times, 35 min apart). Every attempt is a call of kind ``push``.

Control paths (besides ``SimServer``'s health, calls and fault): ``POST /_sim/advance {"waybill",
"state", "context", "location"}``, ``POST /_sim/track {"waybill", "states": [...], "interval"}``,
``GET /_sim/waybills``, ``GET /_sim/labels/<waybill>``.

Illustrative, not documented: the number prefixes, the origin/destination sorting codes (three
digits derived from the city), the answer ``time`` field and the refusal messages' wording.
"""

from __future__ import annotations

import hmac
import html
import itertools
import json
import re
import threading
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Final, Unpack
from urllib.parse import urlencode

import httpx

from apps.core.simserver import ApiRequest, PushingSimServer, PushOptions, Reply
from apps.fulfilment.carriers import kuaidi100
from apps.fulfilment.carriers.base import BEIJING

PATH_LABEL: Final = "/label/order"
PATH_SUBSCRIBE: Final = "/poll"
PATH_QUERY: Final = "/poll/query.do"
API_METHODS: Final[dict[str, str]] = {PATH_LABEL: "label/order", PATH_SUBSCRIBE: "poll", PATH_QUERY: "poll/query.do"}
KIND_OF: Final[dict[str, str]] = {"label/order": "waybill", "poll": "subscribe", "poll/query.do": "query"}

# Waybill number prefix per Kuaidi100 company code: the companies of base.EXPRESS, nothing else.
WAYBILL_PREFIX: Final[dict[str, str]] = {
    "shunfeng": "SF",
    "zhongtong": "78",
    "yuantong": "YT",
    "shentong": "77",
    "yunda": "43",
    "jd": "JDV",
    "ems": "11",
}
PHONE_CHECKED: Final = frozenset({"shunfeng", "zhongtong"})  # the companies whose query needs a phone

DEFAULT_CONTEXT: Final[dict[str, str]] = {
    "0": "快件运输中",
    "1": "快件已揽收",
    "2": "快件异常，请联系快递员",
    "3": "快件已签收",
    "4": "快件已退签",
    "5": "快件派送中",
    "6": "快件退回中",
}
SIGNED_STATE: Final = "3"

_REGION = re.compile(
    r"^(?P<province>.+?(?:省|自治区|特别行政区))?(?P<city>.+?(?:市|自治州|地区|盟))?(?P<district>.+?(?:区|县|旗|市))?"
)
_SUFFIXES: Final = ("特别行政区", "自治区", "自治州", "新区", "地区", "省", "市", "区", "县", "州", "盟", "旗")


def _short(name: str) -> str:
    """``浙江省`` -> ``浙江``, ``西湖区`` -> ``西湖``; kept whole where the rest would be one character."""
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


def region(address: str) -> tuple[str, str, str]:
    """Province, city and district (short names, blank where absent) at the start of a printed
    address such as ``浙江省杭州市西湖区文三路1号``; a municipality has no province."""
    match = _REGION.match(address or "")
    parts = match.group("province", "city", "district") if match else (None, None, None)
    province, city, district = (_short(part) if part else "" for part in parts)
    return province, city, district


def _sorting_code(city: str) -> str:
    return f"{zlib.crc32(city.encode()) % 900 + 100}" if city else ""


def _beijing(at: float) -> str:
    return datetime.fromtimestamp(at, BEIJING).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Subscription:
    callback_url: str
    salt: str
    active: bool = True


@dataclass
class TraceEvent:
    at: float
    state: str
    context: str
    location: str

    def item(self) -> dict[str, str]:
        """The event as a ``data[]`` item of a query answer or push."""
        when = _beijing(self.at)
        return {"time": when, "ftime": when, "context": self.context, "location": self.location,
                "statusCode": self.state}  # fmt: skip


@dataclass
class SimWaybill:
    """A number the simulator knows: allocated by ``label/order`` (``order_id`` and ``data`` set) or
    only subscribed. ``trace`` oldest first."""

    number: str
    com: str
    order_id: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    request: dict[str, Any] = field(default_factory=dict)
    origin: str = ""
    destination: str = ""
    subscription: Subscription | None = None
    trace: list[TraceEvent] = field(default_factory=list)

    def result(self) -> dict[str, Any]:
        """The trace in the query answer's shape (also a push's ``lastResult``), newest first."""
        state = self.trace[-1].state if self.trace else "0"
        return {
            "message": "ok",
            "nu": self.number,
            "com": self.com,
            "ischeck": "1" if state == SIGNED_STATE else "0",
            "status": "200",
            "state": state,
            "data": [event.item() for event in reversed(self.trace)],
        }

    def summary(self) -> dict[str, Any]:
        """What ``GET /_sim/waybills`` shows of the number (the salt only as whether pushes are signed)."""
        sub = self.subscription
        subscription = None
        if sub is not None:
            subscription = {"callbackurl": sub.callback_url, "signed": bool(sub.salt), "active": sub.active}
        trace = [event.item() for event in reversed(self.trace)]
        return {"order_id": self.order_id, "express": self.com, "subscription": subscription, "trace": trace}


class Kuaidi100Simulator(PushingSimServer):
    """Kuaidi100 for one account (``customer``, ``key``, the e-waybill ``secret``). ``salt`` signs
    the pushes of a subscription that names none (empty: such pushes go unsigned); a subscription's
    own salt wins. ``push_timeout`` bounds each push request."""

    service = "kuaidi100"

    def __init__(
        self,
        *,
        customer: str,
        key: str,
        secret: str,
        salt: str = "",
        **options: Unpack[PushOptions],
    ) -> None:
        super().__init__(**options)
        self.customer = customer
        self.key = key
        self.secret = secret
        self.salt = salt
        self.waybills: dict[str, SimWaybill] = {}
        self.orders: dict[str, str] = {}  # orderId -> waybill number (its latest, after a reorder)
        self._counters: dict[str, itertools.count[int]] = {}

    # --- SimServer ------------------------------------------------------------------------------

    def api_method_of(self, request: ApiRequest) -> str:
        path = request.path.rstrip("/") or "/"
        return API_METHODS.get(path, path.strip("/"))

    def error_body(self, message: str) -> bytes:
        """One envelope every API's client reads as transient (502: busy): the e-waybill API's
        ``code`` and the tracking APIs' ``result``/``returnCode`` side by side."""
        return Reply.of({"result": False, "returnCode": "502", "code": 502, "message": message, "data": None}).body

    def push_acknowledged(self, response: httpx.Response) -> tuple[bool, str | None]:
        """Acknowledged: HTTP 200 and the receiver's ``{"returnCode": "200", ...}``."""
        if response.status_code == 200 and _acknowledges(response.content):
            return True, None
        return False, f"HTTP {response.status_code}: {response.text[:200]}"

    def api(self, request: ApiRequest) -> Reply:
        method = self.api_method_of(request)
        handler = {"label/order": self._label_order, "poll": self._subscribe, "poll/query.do": self._query}.get(method)
        if handler is None or request.method != "POST":
            return Reply.of({"result": False, "returnCode": "404", "message": f"no such API: {request.path}"}, 404)
        form = request.form
        params = _json_object(form.get("param", ""))
        reply, error = handler(form, params)
        recorded = params if params is not None else {"_raw": form.get("param", "")}
        self.record(KIND_OF[method], method, recorded, accepted=error is None, error=error)
        return reply

    def control(self, request: ApiRequest) -> Reply | None:
        path, verb = request.path.rstrip("/"), request.method
        if path == "/_sim/advance" and verb == "POST":
            body = request.json()
            pushed = self.advance(
                str(body["waybill"]), str(body["state"]), str(body.get("context", "")), str(body.get("location", ""))
            )
            return Reply.of({"ok": True, "pushed": pushed})
        if path == "/_sim/track" and verb == "POST":
            body = request.json()
            states = [str(state) for state in body.get("states", ("1", "0", "5", "3"))]
            self.run_tracking(str(body["waybill"]), states, float(body.get("interval", 0.0)))
            return Reply.of({"ok": True}, 202)
        if path == "/_sim/waybills" and verb == "GET":
            with self.lock:
                return Reply.of({number: waybill.summary() for number, waybill in self.waybills.items()})
        if path.startswith("/_sim/labels/") and verb == "GET":
            return self._label_page(path.rsplit("/", 1)[1])
        return None

    # --- label/order ----------------------------------------------------------------------------

    def reject_reply(self, api_method: str) -> Reply:
        """Kuaidi100's refusal of a parcel it cannot carry (the ``reject`` fault): code 30005."""
        return self._label_answer(30005, "收件地址超出派送范围", None, time.monotonic())

    def _label_answer(self, code: int, message: str, data: dict[str, Any] | None, started: float) -> Reply:
        elapsed_ms = int((time.monotonic() - started) * 1000)
        return Reply.of({"code": code, "message": message, "time": elapsed_ms, "data": data})

    def _label_order(self, form: Mapping[str, str], param: dict[str, Any] | None) -> tuple[Reply, str | None]:
        started = time.monotonic()

        def refuse(code: int, message: str) -> tuple[Reply, str | None]:
            return self._label_answer(code, message, None, started), str(code)

        if any(not form.get(name) for name in ("method", "key", "t", "sign", "param")):
            return refuse(30001, "参数错误: method, key, t, sign, param 必填")
        expected = kuaidi100.sign_label(form["param"], form["t"], self.key, self.secret)
        if form["key"] != self.key or not hmac.compare_digest(expected, form["sign"].strip().upper()):
            return refuse(30002, "验证签名失败")
        if form["method"] != "order":
            return refuse(30001, f"参数错误: method {form['method']} 未模拟")
        if param is None:
            return refuse(30001, "参数错误: param 不是 JSON 对象")
        com, order_id = str(param.get("kuaidicom") or ""), str(param.get("orderId") or "")
        rec, send = param.get("recMan"), param.get("sendMan")
        if com not in WAYBILL_PREFIX:
            return refuse(30001, f"参数错误: 不支持的快递公司 {com}")
        if not isinstance(rec, dict) or not isinstance(send, dict) or not rec.get("printAddr"):
            return refuse(30001, "参数错误: recMan, sendMan 必填")
        with self.lock:
            known = self.waybills.get(self.orders.get(order_id, "")) if order_id else None
            if known is not None and param.get("reorder") is not True:
                return self._label_answer(200, "success", known.data, started), None
            waybill = self._allocate(com, order_id, param, rec, send)
            if param.get("needSubscribe") is True and param.get("pollCallBackUrl"):
                self._add_subscription(waybill, str(param["pollCallBackUrl"]), str(param.get("salt") or ""))
        return self._label_answer(200, "success", waybill.data, started), None

    def _allocate(
        self, com: str, order_id: str, param: dict[str, Any], rec: dict[str, Any], send: dict[str, Any]
    ) -> SimWaybill:
        """A new number for ``com`` (caller holds the lock): prefix + a per-company counter."""
        counter = self._counters.setdefault(com, itertools.count(1))
        number = f"{WAYBILL_PREFIX[com]}{next(counter):010d}"
        province, city, district = region(str(rec.get("printAddr") or ""))
        _, origin_city, _ = region(str(send.get("printAddr") or ""))
        data = {
            "kuaidinum": number,
            "childNum": "",
            "label": f"{self.base_url}/_sim/labels/{number}" if param.get("printType", "IMAGE") != "NON" else "",
            "taskId": f"T{zlib.crc32(number.encode()):08X}",
            "bulkpen": " ".join(part for part in (province, city, district) if part),
            "orgCode": _sorting_code(origin_city),
            "destCode": _sorting_code(city),
        }
        waybill = SimWaybill(number, com, order_id, data, param, origin_city, city or province)
        self.waybills[number] = waybill
        if order_id:
            self.orders[order_id] = number
        return waybill

    def _label_page(self, number: str) -> Reply:
        with self.lock:
            waybill = self.waybills.get(number)
            if waybill is None or not waybill.order_id:
                return Reply.of({"error": "no such waybill"}, 404)
            rec, send = waybill.request.get("recMan", {}), waybill.request.get("sendMan", {})
            lines = [
                waybill.data["bulkpen"],
                f"{waybill.com} {number}",
                f"收 {rec.get('name', '')} {rec.get('mobile', '')} {rec.get('printAddr', '')}",
                f"寄 {send.get('name', '')} {send.get('printAddr', '')}",
                f"{waybill.data['orgCode']} → {waybill.data['destCode']}",
            ]
        rows = "".join(f"<p>{html.escape(str(text))}</p>" for text in lines)
        page = (
            f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(number)}</title></head>'
            f'<body><div style="width:76mm;height:130mm;border:1px solid #000">{rows}</div></body></html>'
        )
        return Reply(200, page.encode(), "text/html; charset=utf-8")

    # --- /poll ----------------------------------------------------------------------------------

    def _subscribe(self, form: Mapping[str, str], param: dict[str, Any] | None) -> tuple[Reply, str | None]:
        def answer(code: str, message: str) -> tuple[Reply, str | None]:
            ok = code == kuaidi100.SUBSCRIBE_OK
            return Reply.of({"result": ok, "returnCode": code, "message": message}), None if ok else code

        if form.get("schema", "json") != "json" or param is None:
            return answer("700", "数据错误: param 不是 JSON 对象")
        if param.get("key") != self.key:
            return answer("600", "key错误")
        com, number = str(param.get("company") or ""), str(param.get("number") or "").strip()
        parameters = param.get("parameters")
        callback_url = str(parameters.get("callbackurl") or "") if isinstance(parameters, dict) else ""
        if com not in WAYBILL_PREFIX:
            return answer("701", "拒绝订阅的快递公司")
        if not number or not callback_url:
            return answer("700", "数据错误: number, parameters.callbackurl 必填")
        with self.lock:
            waybill = self.waybills.setdefault(number, SimWaybill(number, com))
            if waybill.subscription is not None and waybill.subscription.active:
                return answer("501", "重复订阅")
            salt = str(parameters.get("salt") or "") if isinstance(parameters, dict) else ""
            self._add_subscription(waybill, callback_url, salt)
        return answer("200", "提交成功")

    def _add_subscription(self, waybill: SimWaybill, callback_url: str, salt: str) -> None:
        """Subscribe (caller holds the lock) unless already polled; the simulator's salt if none."""
        if waybill.subscription is None or not waybill.subscription.active:
            waybill.subscription = Subscription(callback_url, salt or self.salt)

    # --- poll/query.do --------------------------------------------------------------------------

    def _query(self, form: Mapping[str, str], param: dict[str, Any] | None) -> tuple[Reply, str | None]:
        def refuse(code: str, message: str) -> tuple[Reply, str | None]:
            return Reply.of({"result": False, "returnCode": code, "message": message}), code

        expected = kuaidi100.sign_query(form.get("param", ""), self.key, self.customer)
        if form.get("customer") != self.customer or not hmac.compare_digest(
            expected, (form.get("sign") or "").strip().upper()
        ):
            return refuse("503", "验证签名失败")
        if param is None:
            return refuse("400", "找不到对应公司: param 不是 JSON 对象")
        com, number, phone = (str(param.get(name) or "").strip() for name in ("com", "num", "phone"))
        if com not in WAYBILL_PREFIX:
            return refuse("400", "找不到对应公司")
        with self.lock:
            waybill = self.waybills.get(number)
            if waybill is None or waybill.com != com or not waybill.trace:
                return refuse("500", "查询无结果，请隔段时间再查")
            mobile = str(waybill.request.get("recMan", {}).get("mobile") or "")
            if com in PHONE_CHECKED and phone and mobile and not mobile.endswith(phone[-4:]):
                return refuse("408", "您提交的手机号码后四位与运单不符")
            return Reply.of(waybill.result()), None

    # --- tracking -------------------------------------------------------------------------------

    def advance(self, waybill_no: str, state: str, context: str = "", location: str = "") -> bool:
        """Append one event in Kuaidi100 ``state`` to the number's trace and queue a push of the
        whole trace to its active subscription (``shutdown`` for state 3, which ends it). Each
        event is at least a second after the previous one, so the trace sorts by time. Returns
        whether a push was queued; KeyError for a number the simulator does not know."""
        if not state.isdigit():
            raise ValueError(f"kuaidi100 states are numeric, not {state!r}")
        with self.lock:
            waybill = self.waybills[waybill_no]
            at = max(time.time(), waybill.trace[-1].at + 1) if waybill.trace else time.time()
            place = location or {"1": waybill.origin, "5": waybill.destination, "3": waybill.destination}.get(state, "")
            text = context or DEFAULT_CONTEXT.get(state, f"快件状态 {state}")
            waybill.trace.append(TraceEvent(at, state, text, place))
            sub = waybill.subscription
            if sub is None or not sub.active:
                return False
            status = kuaidi100.PUSH_FINAL_STATUS if state == SIGNED_STATE else "polling"
            sub.active = status != kuaidi100.PUSH_FINAL_STATUS
            message = {"status": status, "message": "", "autoCheck": "0", "comOld": "", "comNew": "",
                       "lastResult": waybill.result()}  # fmt: skip
            param = kuaidi100.param_json(message)
            form = {"param": param, "sign": kuaidi100.sign_push(param, sub.salt)} if sub.salt else {"param": param}
            params = {"waybill": waybill_no, "state": state, "status": status, "url": sub.callback_url}
            body = urlencode(form).encode()
            self.enqueue(sub.callback_url, body, content_type="application/x-www-form-urlencoded", params=params)
        return True

    def run_tracking(
        self, waybill_no: str, states: Iterable[str] = ("1", "0", "5", "3"), interval: float = 0.0
    ) -> threading.Thread:
        """:meth:`advance` through ``states`` in a background thread, ``interval`` seconds apart
        (the checklist's 1 → 0 → 5 → 3 by default). :meth:`wait_pushes` waits for the run too."""
        steps = [str(state) for state in states]
        if interval < 0 or not all(step.isdigit() for step in steps):
            raise ValueError("states must be numeric and interval >= 0")
        with self.lock:
            if waybill_no not in self.waybills:
                raise KeyError(f"unknown waybill {waybill_no}")
        return self.run_steps(f"track-{waybill_no}", [partial(self.advance, waybill_no, s) for s in steps], interval)


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _acknowledges(body: bytes) -> bool:
    """Whether a push answer is the receiver's ``{"returnCode": "200", ...}``."""
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    return isinstance(answer, dict) and str(answer.get("returnCode")) == kuaidi100.PUSH_OK["returnCode"]
