"""Aliyun SMS 阿里云短信 (Dysmsapi, API version 2017-05-25): building and signing a ``SendSms``
request and reading its answer. Pure protocol: no Django, no settings, no network. A client does
``form = build_send_sms(...)``, POSTs ``form`` form-encoded to ``ENDPOINT`` (or a sandbox /
simulator base URL) and hands the HTTP status and body bytes to :func:`parse_send_answer`.

Signature (RPC style, SignatureVersion 1.0, SignatureMethod HMAC-SHA1), as the SMS service's
"HTTP协议及签名" page and Aliyun's Python SDK core (``aliyunsdkcore/auth/composer/
rpc_signature_composer.py``) compute it:

1. every request parameter except ``Signature`` (common and operation parameters, query and
   body alike), sorted by name (byte order);
2. each name and value percent-encoded as UTF-8 per RFC 3986 — unreserved ``A-Z a-z 0-9 - _ . ~``
   kept, everything else ``%XX`` in upper case; so a space is ``%20`` (not ``+``), ``*`` is
   ``%2A`` and ``~`` stays ``~`` (the SDK gets there from ``urlencode`` by replacing ``+``,
   ``*`` and ``%7E``);
3. ``name=value`` pairs joined with ``&``: the canonicalized query string;
4. ``StringToSign = HTTPMethod + "&" + percentEncode("/") + "&" + percentEncode(canonicalized)``;
5. ``Signature = base64(HMAC-SHA1(key = AccessKeySecret + "&", StringToSign))``.

Check values (tests/notifications/test_aliyun_protocol.py): the SMS documentation's own example
(AccessKeyId ``testId``, secret ``testSecret``, SendSms to ``15300000001`` with SignName
``阿里云短信测试专用``, Nonce ``45e25e9b-0a6f-4070-8c85-2956eda1b466``, Timestamp
``2017-07-12T02:42:19Z``, Format XML) signs as ``zJDF+Lrzhj/ThnlvIToysFRq6t4=``; the RPC
signature page's DescribeRegions example (``testid`` / ``testsecret``) as
``OLeaidS1JvxuMvnyHOwuJ+uX5qY=``.

Answers are JSON (``Format=JSON``): ``{"Code": "OK", "Message": "OK", "BizId": "...",
"RequestId": "..."}`` on success, ``{"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": ...}``
otherwise. Business refusals (``isv.*``) come with HTTP 200; gateway refusals
(``SignatureDoesNotMatch``, ``InvalidAccessKeyId.NotFound``, ``InvalidTimeStamp.Expired``...)
with a 4xx. ``OutId`` is passed through for tracing only: Aliyun does not deduplicate on it, so
a retry after a timeout may deliver a second message (``SmsTimeout.outcome_unknown``).

Unconfirmed (documented-safe behaviour chosen): which ``isp.*`` codes are transient is not
listed; ``isp.SYSTEM_ERROR`` and ``ServiceUnavailable``/``Throttling*`` are retried, every other
unknown code is a permanent refusal, never retried blindly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

ENDPOINT: Final = "https://dysmsapi.aliyuncs.com/"
API_VERSION: Final = "2017-05-25"
REGION_ID: Final = "cn-hangzhou"
SIGNATURE_METHOD: Final = "HMAC-SHA1"
SIGNATURE_VERSION: Final = "1.0"
OK: Final = "OK"

# Aliyun's codes and what we do about them.
RATE_LIMITED: Final = frozenset({"isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL"})
"""业务限流 (per phone: the default for notifications is 50 a day per sign and template; the
console can lower it): try again later."""
TRANSIENT: Final = frozenset(
    {"isp.SYSTEM_ERROR", "ServiceUnavailable", "Throttling", "Throttling.User", "Throttling.Api", "InternalError"}
)
PERMANENT: Final[dict[str, str]] = {
    "isv.MOBILE_NUMBER_ILLEGAL": "invalid phone number",
    "isv.MOBILE_COUNT_OVER_LIMIT": "too many phone numbers",
    "isv.TEMPLATE_MISSING_PARAMETERS": "template parameters missing",
    "isv.TEMPLATE_PARAMS_ILLEGAL": "template parameters illegal",
    "isv.PARAM_LENGTH_LIMIT": "a template parameter is too long",
    "isv.INVALID_JSON_PARAM": "TemplateParam is not JSON",
    "isv.SMS_TEMPLATE_ILLEGAL": "template not approved or not found",
    "isv.SMS_SIGNATURE_ILLEGAL": "sign name not approved or not found",
    "isv.SMS_SIGN_ILLEGAL": "sign name not approved or not found",
    "isv.AMOUNT_NOT_ENOUGH": "account balance too low",
    "isv.OUT_OF_SERVICE": "account suspended",
    "isv.ACCOUNT_NOT_EXISTS": "account does not exist",
    "isv.ACCOUNT_ABNORMAL": "account abnormal",
    "isv.BLACK_KEY_CONTROL_LIMIT": "blocked word in the message",
    "isv.DENY_IP_RANGE": "source IP refused",
    "isv.INVALID_PARAMETERS": "invalid parameters",
    "isp.RAM_PERMISSION_DENY": "the RAM user may not send SMS",
    "InvalidAccessKeyId.NotFound": "unknown AccessKeyId",
    "InvalidAccessKeyId.Inactive": "AccessKeyId disabled",
    "SignatureDoesNotMatch": "signature does not match (wrong AccessKeySecret)",
    "IncompleteSignature": "signature incomplete",
    "InvalidTimeStamp.Expired": "timestamp out of range (clock skew)",
    "SignatureNonceUsed": "signature nonce used before",
    "MissingParameter": "a required parameter is missing",
    "InvalidParameter": "invalid parameter",
    "Forbidden.RAM": "the RAM user may not send SMS",
}


# --- errors ---------------------------------------------------------------------------------------


class SmsError(Exception):
    """A SendSms call failed. ``code`` is Aliyun's code (or ours for transport failures);
    ``retryable`` whether the same message may go through later; ``outcome_unknown`` whether it
    may have been sent although no answer said so (a timeout after the request went out)."""

    default_code = "sms_error"
    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retryable: bool | None = None,
        outcome_unknown: bool = False,
        http_status: int | None = None,
        request_id: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.retryable = self.default_retryable if retryable is None else retryable
        self.outcome_unknown = outcome_unknown
        self.http_status = http_status
        self.request_id = request_id


class SmsRejected(SmsError):
    """Aliyun answered and refused for good (number, template, sign, credentials, balance)."""

    default_code = "sms_rejected"


class SmsRateLimited(SmsError):
    """业务限流: Aliyun's flow control for this number; the same message may go through later."""

    default_code = "isv.BUSINESS_LIMIT_CONTROL"
    default_retryable = True


class SmsUnavailable(SmsError):
    """Aliyun could not be reached or answered a server error (5xx, isp.SYSTEM_ERROR)."""

    default_code = "sms_unavailable"
    default_retryable = True


class SmsTimeout(SmsUnavailable):
    default_code = "sms_timeout"


# --- signing ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessKey:
    """An AccessKey pair (the secret stays out of ``repr``)."""

    access_key_id: str
    access_key_secret: str = field(repr=False)


def percent_encode(value: str) -> str:
    """RFC 3986 percent-encoding of UTF-8 with only ``A-Z a-z 0-9 - _ . ~`` left as they are
    (Aliyun's "POP" encoding: space ``%20``, ``*`` ``%2A``, ``~`` kept)."""
    return quote(value, safe="~")


def canonicalized_query(params: Mapping[str, str]) -> str:
    """Every parameter but ``Signature``, sorted by name, encoded, joined with ``&``."""
    pairs = sorted((k, v) for k, v in params.items() if k != "Signature")
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in pairs)


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonicalized_query(params))}"


def sign(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    """The ``Signature`` of a request with these parameters (base64 of HMAC-SHA1)."""
    digest = hmac.new(
        (access_key_secret + "&").encode(), string_to_sign(method, params).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


def verify(method: str, params: Mapping[str, str], access_key_secret: str) -> bool:
    """Whether ``params["Signature"]`` is this request's signature (constant-time compare)."""
    given = params.get("Signature", "")
    return bool(given) and hmac.compare_digest(sign(method, params, access_key_secret).encode(), given.encode())


def timestamp(at: float) -> str:
    """ISO 8601 in UTC, to the second, as Aliyun wants it (``2017-07-12T02:42:19Z``)."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def template_param_json(params: Mapping[str, Any]) -> str:
    """``TemplateParam``: compact JSON, non-ASCII kept, every value a string (Aliyun's variables
    are strings; a number is refused by some templates)."""
    return json.dumps({k: str(v) for k, v in params.items()}, ensure_ascii=False, separators=(",", ":"))


def build_send_sms(
    key: AccessKey,
    *,
    phone: str,
    sign_name: str,
    template_code: str,
    template_params: Mapping[str, Any] | None = None,
    out_id: str = "",
    at: float,
    nonce: str | None = None,
    method: str = "POST",
) -> dict[str, str]:
    """The signed parameters of one ``SendSms`` (``Signature`` included), ``Format=JSON``.
    ``nonce`` defaults to a new UUID: Aliyun refuses a nonce it has seen (``SignatureNonceUsed``),
    so every attempt, retries included, is signed anew."""
    params = {
        "AccessKeyId": key.access_key_id,
        "Action": "SendSms",
        "Format": "JSON",
        "RegionId": REGION_ID,
        "SignatureMethod": SIGNATURE_METHOD,
        "SignatureNonce": nonce or str(uuid.uuid4()),
        "SignatureVersion": SIGNATURE_VERSION,
        "Timestamp": timestamp(at),
        "Version": API_VERSION,
        "PhoneNumbers": phone,
        "SignName": sign_name,
        "TemplateCode": template_code,
    }
    if template_params:
        params["TemplateParam"] = template_param_json(template_params)
    if out_id:
        params["OutId"] = out_id
    params["Signature"] = sign(method, params, key.access_key_secret)
    return params


# --- answers ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    biz_id: str
    request_id: str
    raw: dict[str, Any]


def error_for(code: str, message: str, *, http_status: int | None = None, request_id: str = "") -> SmsError:
    """The typed error of an Aliyun code."""
    text = f"{code}: {message}" if message else code
    if code in RATE_LIMITED:
        return SmsRateLimited(text, code=code, http_status=http_status, request_id=request_id)
    if code in TRANSIENT or code.startswith("Throttling"):
        return SmsUnavailable(text, code=code, http_status=http_status, request_id=request_id)
    return SmsRejected(text, code=code, http_status=http_status, request_id=request_id)


def parse_send_answer(status: int, body: bytes) -> SendResult:
    """The answer to ``SendSms``: :class:`SendResult` for ``Code == "OK"``, else the typed error.
    A 5xx (whatever its body) is :class:`SmsUnavailable`; a body that is not Aliyun's JSON is
    retryable after a 5xx and a refusal otherwise."""
    try:
        data = json.loads(body.decode("utf-8")) if body else {}
    except (UnicodeDecodeError, ValueError):
        data = None
    if not isinstance(data, dict):
        if status >= 500:
            raise SmsUnavailable(f"HTTP {status} from the SMS gateway", code=f"http_{status}", http_status=status)
        raise SmsRejected(f"HTTP {status}: not an SMS gateway answer", code="bad_answer", http_status=status)
    code = str(data.get("Code") or "")
    message = str(data.get("Message") or "")
    request_id = str(data.get("RequestId") or "")
    if status >= 500:
        raise SmsUnavailable(
            f"HTTP {status}: {code or 'server error'}", code=code or f"http_{status}", http_status=status,
            request_id=request_id,
        )  # fmt: skip
    if code == OK and status < 300:
        return SendResult(biz_id=str(data.get("BizId") or ""), request_id=request_id, raw=data)
    raise error_for(code or f"http_{status}", message, http_status=status, request_id=request_id)
