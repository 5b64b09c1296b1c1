"""Aliyun SMS 阿里云短信 simulator: ``SendSms`` checked and answered from Aliyun's side, on
``apps.core.simserver`` (a free port, the calls it received, faults, a control API under
``/_sim/``). Signatures are :mod:`apps.notifications.providers.aliyun`'s (its check values pin
them); the rest is written from the service's documentation.

``POST /`` (or ``GET /?...``), parameters in the query and/or the form body, in this order:

- ``Action`` must be ``SendSms`` (else 404 ``InvalidAction.NotFound``);
- ``AccessKeyId`` must be the simulator's (404 ``InvalidAccessKeyId.NotFound``), the signature
  HMAC-SHA1 over every parameter with its secret (400 ``SignatureDoesNotMatch``), the
  ``Timestamp`` within 15 minutes (400 ``InvalidTimeStamp.Expired``), the ``SignatureNonce``
  new (400 ``SignatureNonceUsed``);
- a refusal queued with ``POST /_sim/refuse`` answers next (HTTP 200, its code);
- every ``PhoneNumbers`` entry a mainland mobile (``isv.MOBILE_NUMBER_ILLEGAL``); ``SignName`` one
  the simulator knows (``isv.SMS_SIGNATURE_ILLEGAL``); ``TemplateCode`` one it knows
  (``isv.SMS_TEMPLATE_ILLEGAL``); ``TemplateParam`` JSON (``isv.INVALID_JSON_PARAM``) holding every
  ``${var}`` of the template's text (``isv.TEMPLATE_MISSING_PARAMETERS``);
- flow control as Aliyun's default for notifications: ``per_phone_per_day`` messages per phone,
  sign and template in 24 hours (``isv.BUSINESS_LIMIT_CONTROL`` "触发天级流控");
- then ``{"Code": "OK", "Message": "OK", "BizId": ..., "RequestId": ...}`` and the message is
  recorded, its text rendered from the template.

Control paths (besides ``SimServer``'s health, calls and fault): ``GET /_sim/messages[?phone=]``,
``DELETE /_sim/messages``, ``POST /_sim/refuse {"code", "count", "message"}`` (the next ``count``
sends answer ``code``), ``DELETE /_sim/refuse``, ``POST /_sim/templates {"code", "text"}``,
``POST /_sim/signs {"name"}``.

Illustrative, not documented: the BizId and RequestId shapes and the refusal messages' wording.
"""

from __future__ import annotations

import calendar
import itertools
import json
import re
import secrets
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from apps.core.simserver import ApiRequest, Reply, SimServer
from apps.notifications.providers import aliyun

TIMESTAMP_SKEW: Final = 15 * 60
_MOBILE = re.compile(r"^(?:\+?86)?1[3-9][0-9]{9}$")
_VAR = re.compile(r"\$\{([A-Za-z0-9_]+)\}")

DEMO_ACCOUNT: Final[dict[str, Any]] = {
    "access_key_id": "LTAI5tLcDemoSmsKey",
    "access_key_secret": "lc-demo-sms-secret",
    "sign_names": ["直播好物"],
    "templates": {
        "SMS_LC_PAID": "您的订单${order_no}已付款，我们正在备货。查看：${url}",
        "SMS_LC_SHIPPED": "您的订单${order_no}已发货，${carrier}运单号${waybill_no}。查看：${url}",
        "SMS_LC_DELIVERED": "您的订单${order_no}已签收，感谢惠顾。查看：${url}",
    },
}
"""The account a simulator started without credentials knows (``manage.py sms_simulator``)."""


@dataclass
class SimMessage:
    biz_id: str
    at: float
    phone: str
    sign_name: str
    template_code: str
    params: dict[str, Any]
    text: str
    out_id: str
    request_id: str = field(default="")


@dataclass
class Refusal:
    code: str
    message: str
    left: int


def _template_text(templates: Mapping[str, str] | Iterable[str]) -> dict[str, str]:
    if isinstance(templates, Mapping):
        return dict(templates)
    return {code: "" for code in templates}


class AliyunSmsSimulator(SimServer):
    service = "aliyun-sms"

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        sign_names: Iterable[str] = (),
        templates: Mapping[str, str] | Iterable[str] = (),
        per_phone_per_day: int = 50,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.sign_names = set(sign_names)
        self.templates = _template_text(templates)
        self.per_phone_per_day = per_phone_per_day
        self._messages: list[SimMessage] = []
        self._nonces: deque[str] = deque(maxlen=100_000)
        self._nonce_set: set[str] = set()
        self._refusals: deque[Refusal] = deque()
        self._biz = itertools.count(int(time.time()) % 1_000_000 * 1000)

    # --- what tests and the control API use -----------------------------------------------------

    def messages(self, phone: str | None = None) -> list[SimMessage]:
        with self.lock:
            return [m for m in self._messages if phone is None or m.phone == phone]

    def clear_messages(self) -> None:
        with self.lock:
            self._messages.clear()

    def refuse(self, code: str, *, count: int = 1, message: str = "") -> None:
        """The next ``count`` sends that pass the signature check answer ``code``."""
        if count < 1 or not code:
            raise ValueError("code must be set and count >= 1")
        with self.lock:
            self._refusals.append(Refusal(code, message or f"simulated {code}", count))

    def clear_refusals(self) -> None:
        with self.lock:
            self._refusals.clear()

    # --- SimServer --------------------------------------------------------------------------------

    def api_method_of(self, request: ApiRequest) -> str:
        return self._params(request).get("Action", "")

    def error_body(self, message: str) -> bytes:
        return Reply.of({"Code": "InternalError", "Message": message, "RequestId": str(uuid.uuid4()).upper()}).body

    def health(self) -> dict[str, Any]:
        return {"service": self.service, "ok": True, "access_key_id": self.access_key_id}

    @staticmethod
    def _params(request: ApiRequest) -> dict[str, str]:
        return {**request.query, **request.form}

    def api(self, request: ApiRequest) -> Reply:
        params = self._params(request)
        request_id = str(uuid.uuid4()).upper()
        record = {k: v for k, v in params.items() if k not in ("Signature", "AccessKeyId")}

        def answer(code: str, message: str, status: int = 200, **more: Any) -> Reply:
            accepted = code == aliyun.OK
            self.record("send" if params.get("Action") == "SendSms" else "other", params.get("Action", ""), record,
                        accepted=accepted, error=None if accepted else code)  # fmt: skip
            body: dict[str, Any] = {"Code": code, "Message": message, "RequestId": request_id, **more}
            if status != 200:
                body["HostId"] = "dysmsapi.aliyuncs.com"
            return Reply.of(body, status)

        if params.get("Action") != "SendSms":
            return answer("InvalidAction.NotFound", "Specified api is not found, please check your url.", 404)
        if not params.get("AccessKeyId") or not params.get("Signature"):
            return answer("MissingParameter", "AccessKeyId and Signature are required.", 400)
        if params["AccessKeyId"] != self.access_key_id:
            return answer("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        if (params.get("SignatureMethod"), params.get("SignatureVersion")) != ("HMAC-SHA1", "1.0"):
            return answer("InvalidParameter", "SignatureMethod must be HMAC-SHA1 and SignatureVersion 1.0.", 400)
        if not aliyun.verify(request.method, params, self.access_key_secret):
            return answer(
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation. server string to sign is:"
                + aliyun.string_to_sign(request.method, params),
                400,
            )
        try:
            sent_at = calendar.timegm(time.strptime(params.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            return answer("InvalidTimeStamp.Format", "Specified time stamp is not valid.", 400)
        if abs(time.time() - sent_at) > TIMESTAMP_SKEW:
            return answer("InvalidTimeStamp.Expired", "Specified time stamp or date header is expired.", 400)
        nonce = params.get("SignatureNonce", "")
        with self.lock:
            if not nonce or nonce in self._nonce_set:
                return answer("SignatureNonceUsed", "Specified signature nonce was used already.", 400)
            if len(self._nonces) == self._nonces.maxlen:
                self._nonce_set.discard(self._nonces[0])
            self._nonces.append(nonce)
            self._nonce_set.add(nonce)
            refusal = self._refusals[0] if self._refusals else None
            if refusal is not None:
                refusal.left -= 1
                if refusal.left <= 0:
                    self._refusals.popleft()
        if refusal is not None:
            return answer(refusal.code, refusal.message)
        return self._send(params, answer, request_id)

    def _send(self, params: dict[str, str], answer: Any, request_id: str) -> Reply:
        phones = [p.strip() for p in params.get("PhoneNumbers", "").split(",") if p.strip()]
        if not phones or not all(_MOBILE.match(p) for p in phones):
            return answer("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        sign_name, code = params.get("SignName", ""), params.get("TemplateCode", "")
        if sign_name not in self.sign_names:
            return answer("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        if code not in self.templates:
            return answer("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        try:
            values = json.loads(params["TemplateParam"]) if params.get("TemplateParam") else {}
        except ValueError:
            return answer("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if not isinstance(values, dict):
            return answer("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        text = self.templates[code]
        missing = [name for name in _VAR.findall(text) if name not in values]
        if missing:
            return answer("isv.TEMPLATE_MISSING_PARAMETERS", f"模板缺少变量: {', '.join(missing)}")
        now = time.time()
        with self.lock:
            for phone in phones:
                recent = [
                    m for m in self._messages
                    if m.phone == phone and m.sign_name == sign_name and m.template_code == code and now - m.at < 86400
                ]  # fmt: skip
                if self.per_phone_per_day and len(recent) >= self.per_phone_per_day:
                    return answer("isv.BUSINESS_LIMIT_CONTROL", f"触发天级流控Permits:{self.per_phone_per_day}")
            biz_id = f"{next(self._biz)}^{secrets.randbelow(10**9)}"
            rendered = _VAR.sub(lambda m: str(values.get(m.group(1), "")), text)
            for phone in phones:
                self._messages.append(
                    SimMessage(
                        biz_id,
                        now,
                        phone,
                        sign_name,
                        code,
                        values,
                        f"【{sign_name}】{rendered}",
                        params.get("OutId", ""),
                        request_id,
                    )  # fmt: skip
                )
        return answer(aliyun.OK, "OK", BizId=biz_id)

    def control(self, request: ApiRequest) -> Reply | None:
        path, verb = request.path.rstrip("/"), request.method
        if path == "/_sim/messages" and verb == "GET":
            return Reply.of([asdict(m) for m in self.messages(request.query.get("phone"))])
        if path == "/_sim/messages" and verb == "DELETE":
            self.clear_messages()
            return Reply.of({"ok": True})
        if path == "/_sim/refuse" and verb == "POST":
            body = request.json()
            self.refuse(str(body["code"]), count=int(body.get("count", 1)), message=str(body.get("message", "")))
            return Reply.of({"ok": True})
        if path == "/_sim/refuse" and verb == "DELETE":
            self.clear_refusals()
            return Reply.of({"ok": True})
        if path == "/_sim/templates" and verb == "POST":
            body = request.json()
            with self.lock:
                self.templates[str(body["code"])] = str(body.get("text", ""))
            return Reply.of({"ok": True})
        if path == "/_sim/signs" and verb == "POST":
            with self.lock:
                self.sign_names.add(str(request.json()["name"]))
            return Reply.of({"ok": True})
        return None


def make_simulator(**kwargs: Any) -> AliyunSmsSimulator:
    """A (not yet started) simulator with the demo account, overridden by ``kwargs``."""
    return AliyunSmsSimulator(**{**DEMO_ACCOUNT, **{k: v for k, v in kwargs.items() if v is not None}})
