"""Taobao / Tmall TOP: API signing, TMC message parsing, order mapping, and the API client
(including TMC polling with ``taobao.tmc.messages.consume`` / ``confirm``). Formats and sources:
``PLATFORMS.md`` section 2.

Unconfirmed (kept configurable):
- that ``hmac-sha256`` signs the same concatenation as ``hmac`` (HMAC_MD5);
- the response envelope key (``<method without 'taobao.', dots as underscores>_response``); when it
  is absent, a single ``*_response`` key is accepted;
- list wrapping in JSON answers (``{"tmc_message": [...]}`` as TOP's XML-derived JSON, or a bare
  list): both accepted;
- receiver masking / OAID.
The shop id of a Taobao shop is the seller nick (a Trade carries no numeric shop id).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal

from .base import (
    TAOBAO_TOPICS,
    TAOBAO_TRADE_STATUS,
    CanonicalLine,
    CanonicalOrder,
    Credentials,
    MalformedPayload,
    PlatformRejected,
    PushEvent,
    StockTarget,
    from_gmt8_string,
    id_str,
    map_status,
    optional_time,
    to_gmt8_string,
    yuan_to_cny,
)
from .transport import PlatformHttpClient

SignMethod = Literal["md5", "hmac", "hmac-sha256"]

PRODUCTION_BASE_URL: Final = "https://gw.api.taobao.com/router/rest"
SANDBOX_BASE_URL: Final = "https://gw.api.tbsandbox.com/router/rest"
API_VERSION: Final = "2.0"
# TOP: 7 app call limited, 15 remote service error. Under 15 an ``isv.*`` sub code is a business refusal
# (not retryable) and an ``isp.*`` one the platform's own fault (retryable).
RETRYABLE_CODES: Final = frozenset({"7", "15"})
TRADE_FIELDS: Final = (
    "tid,tid_str,status,type,seller_nick,buyer_nick,buyer_open_uid,payment,total_fee,post_fee,discount_fee,"
    "created,pay_time,modified,consign_time,end_time,receiver_name,receiver_mobile,receiver_phone,receiver_state,"
    "receiver_city,receiver_district,receiver_town,receiver_address,receiver_zip,orders"
)
STOCK_FULL: Final = 1
STOCK_INCREMENT: Final = 2


# --- outbound signing ----------------------------------------------------------------------------


def sign_string(params: Mapping[str, str]) -> str:
    """Every parameter but ``sign`` with a non-empty value, keys sorted, ``key+value`` with no
    separators."""
    return "".join(f"{key}{params[key]}" for key in sorted(params) if key != "sign" and params[key] not in ("", None))


def sign(params: Mapping[str, str], secret: str, sign_method: SignMethod) -> str:
    """Uppercase hex: md5 = MD5(secret + s + secret); hmac = HMAC_MD5(secret, s); hmac-sha256 =
    HMAC_SHA256(secret, s) (that it uses the same ``s`` is unconfirmed)."""
    text = sign_string(params).encode()
    key = secret.encode()
    if sign_method == "md5":
        return hashlib.md5(key + text + key).hexdigest().upper()  # noqa: S324 - the platform's recipe
    if sign_method == "hmac":
        return hmac.new(key, text, hashlib.md5).hexdigest().upper()
    if sign_method == "hmac-sha256":
        return hmac.new(key, text, hashlib.sha256).hexdigest().upper()
    raise ValueError(f"unknown sign method {sign_method!r}")


def signed_params(
    credentials: Credentials,
    method: str,
    app_params: Mapping[str, Any],
    *,
    timestamp: datetime,
    sign_method: SignMethod = "md5",
) -> dict[str, str]:
    """Common and application parameters of one call, with ``sign``. None values are dropped;
    the rest become strings (ints as digits, bools as ``true``/``false``)."""
    params: dict[str, str] = {
        "method": method,
        "app_key": credentials.app_key,
        "session": credentials.access_token,
        "timestamp": to_gmt8_string(timestamp),
        "v": API_VERSION,
        "format": "json",
        "sign_method": sign_method,
    }
    for key, value in app_params.items():
        if value is None:
            continue
        params[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    params["sign"] = sign(params, credentials.app_secret, sign_method)
    return params


def response_key(method: str) -> str:
    """``taobao.trade.fullinfo.get`` -> ``trade_fullinfo_get_response``."""
    name = method.removeprefix("taobao.")
    return name.replace(".", "_") + "_response"


def unwrap_list(value: Any, inner: str) -> list[Any]:
    """``{"order": [...]}`` or ``[...]`` (or nothing) as a list."""
    if value is None:
        return []
    if isinstance(value, dict):
        value = value.get(inner, [])
    if not isinstance(value, list):
        raise MalformedPayload(f"expected a list of {inner}")
    return value


# --- TMC messages ----------------------------------------------------------------------------------


def parse_tmc_message(message: Mapping[str, Any]) -> PushEvent:
    """One TmcMessage ``{id, topic, pub_app_key, pub_time, user_id, user_nick, content}`` (content a
    JSON string) as a :class:`PushEvent`. Raises :class:`MalformedPayload`."""
    if not isinstance(message, Mapping) or message.get("id") in (None, ""):
        raise MalformedPayload("TMC message without id")
    topic = str(message.get("topic") or "")
    raw_content = message.get("content")
    try:
        data = json.loads(raw_content) if isinstance(raw_content, str) else (raw_content or {})
    except ValueError:
        raise MalformedPayload(f"TMC message {message['id']}: content is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedPayload(f"TMC message {message['id']}: content is not an object")
    tid = data.get("tid")
    payment = data.get("payment", data.get("refund_fee"))
    pub_time = message.get("pub_time")
    return PushEvent(
        platform="taobao",
        message_id=id_str(message["id"], "id"),
        kind=TAOBAO_TOPICS.get(topic, "other"),
        topic=topic,
        order_id=id_str(tid, "tid") if tid is not None else None,
        shop_id=str(message.get("user_nick") or data.get("seller_nick") or "") or None,
        occurred_at=optional_time(pub_time, from_gmt8_string),
        raw=dict(message),
        data=data,
        status=str(data["status"]) if data.get("status") is not None else None,
        amount=yuan_to_cny(payment) if payment is not None else None,
    )


# --- order mapping -------------------------------------------------------------------------------


def order_from_trade(trade: Mapping[str, Any], *, shop_id: str) -> CanonicalOrder:
    """Map a ``taobao.trade.fullinfo.get`` Trade with its ``orders`` (yuan strings, GMT+8 times).
    ``total`` is ``payment``; a line's amount is its ``total_fee``, its unit price ``price``."""
    tid = trade.get("tid_str") or trade.get("tid")
    lines = []
    for order in unwrap_list(trade.get("orders"), "order"):
        quantity = order.get("num")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            raise MalformedPayload(f"orders[].num {quantity!r}")
        lines.append(
            CanonicalLine(
                line_id=id_str(order.get("oid"), "oid"),
                platform_sku_id=str(order.get("sku_id") or ""),
                platform_item_id=id_str(order.get("num_iid"), "num_iid"),
                merchant_sku_code=order.get("outer_sku_id") or order.get("outer_iid") or None,
                quantity=quantity,
                unit_price=yuan_to_cny(order.get("price")),
                amount=yuan_to_cny(order.get("total_fee")),
            )
        )
    if not lines:
        raise MalformedPayload("trade without orders")
    status_value = trade.get("status")
    return CanonicalOrder(
        platform="taobao",
        shop_id=shop_id,
        order_id=id_str(tid, "tid"),
        status=map_status(TAOBAO_TRADE_STATUS, status_value, platform="taobao"),
        platform_status=str(status_value),
        buyer_id=str(trade.get("buyer_open_uid") or trade.get("buyer_nick") or ""),
        lines=tuple(lines),
        total=yuan_to_cny(trade.get("payment")),
        freight=yuan_to_cny(trade.get("post_fee", "0.00")),
        receiver={k: v for k, v in trade.items() if k.startswith("receiver_")},
        created_at=from_gmt8_string(trade.get("created")),
        paid_at=optional_time(trade.get("pay_time"), from_gmt8_string),
        updated_at=optional_time(trade.get("modified"), from_gmt8_string),
        raw=dict(trade),
    )


# --- client --------------------------------------------------------------------------------------


def is_retryable(code: str, sub_code: str | None) -> bool:
    if sub_code and sub_code.startswith("isp."):
        return True
    if sub_code and sub_code.startswith("isv."):
        return False
    return code in RETRYABLE_CODES


def check_envelope(method: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The ``*_response`` object, or :class:`PlatformRejected` for ``error_response``."""
    error = body.get("error_response")
    if isinstance(error, dict):
        code = str(error.get("code", ""))
        sub_code = str(error.get("sub_code") or "") or None
        raise PlatformRejected(
            f"taobao: {error.get('msg') or ''} {error.get('sub_msg') or ''}".strip(),
            code=code,
            sub_code=sub_code,
            retryable=is_retryable(code, sub_code),
        )
    key = response_key(method)
    found = body.get(key)
    if found is None:
        candidates = [v for k, v in body.items() if k.endswith("_response")]
        found = candidates[0] if len(candidates) == 1 else None
    if not isinstance(found, dict):
        raise MalformedPayload(f"taobao: no {key} in the answer")
    return found


class TaobaoClient(PlatformHttpClient):
    """TOP REST gateway: every call is a signed form POST to one URL."""

    platform = "taobao"
    production_base_url = PRODUCTION_BASE_URL

    def __init__(self, credentials: Credentials, *, sign_method: SignMethod = "md5", **kwargs: Any) -> None:
        super().__init__(credentials, **kwargs)
        self.sign_method: SignMethod = sign_method

    def call(self, method: str, app_params: Mapping[str, Any]) -> dict[str, Any]:
        params = signed_params(
            self.credentials,
            method,
            app_params,
            timestamp=datetime.fromtimestamp(self.clock(), UTC),
            sign_method=self.sign_method,
        )
        return check_envelope(method, self._request("POST", self.base_url, data=params))

    def order_detail(self, order_id: str) -> CanonicalOrder:
        answer = self.call("taobao.trade.fullinfo.get", {"tid": order_id, "fields": TRADE_FIELDS})
        trade = answer.get("trade")
        if not isinstance(trade, dict):
            raise MalformedPayload("taobao.trade.fullinfo.get without trade")
        return order_from_trade(trade, shop_id=self.credentials.shop_id)

    def update_stock(
        self,
        *,
        num_iid: str,
        quantity: int,
        sku_id: str | None = None,
        outer_id: str | None = None,
        type: int = STOCK_FULL,  # noqa: A002 - the platform's parameter name
    ) -> dict[str, Any]:
        """``taobao.item.quantity.update``; ``type`` 1 sets the full quantity (the default)."""
        if type == STOCK_FULL and quantity < 0:
            raise ValueError("quantity must be >= 0")
        return self.call(
            "taobao.item.quantity.update",
            {"num_iid": num_iid, "sku_id": sku_id, "outer_id": None if sku_id else outer_id, "quantity": quantity,
             "type": type},
        )  # fmt: skip

    def set_stock(
        self, target: StockTarget, quantity: int, *, idempotency_key: str, last_known: int | None = None
    ) -> bool:
        """Full overwrite (type=1); a full value is idempotent, so no key is needed."""
        self.update_stock(
            num_iid=target.platform_item_id,
            quantity=quantity,
            sku_id=target.platform_sku_id,
            outer_id=target.merchant_sku_code,
        )
        return True

    def ship(self, order_id: str, company_code: str, waybill: str) -> dict[str, Any]:
        """``taobao.logistics.offline.send`` for the whole trade."""
        return self.call(
            "taobao.logistics.offline.send", {"tid": order_id, "out_sid": waybill, "company_code": company_code}
        )

    def tmc_consume(self, group_name: str = "default", quantity: int = 100) -> list[dict[str, Any]]:
        """Pull up to ``quantity`` (10-200) TMC messages, raw (store them, then parse each with
        :func:`parse_tmc_message`, so one malformed message cannot block the rest). Each must be
        confirmed after it is stored, or the platform delivers it again."""
        if not 10 <= quantity <= 200:
            raise ValueError("quantity must be 10..200")
        answer = self.call("taobao.tmc.messages.consume", {"group_name": group_name, "quantity": quantity})
        messages = unwrap_list(answer.get("messages"), "tmc_message")
        if not all(isinstance(m, dict) for m in messages):
            raise MalformedPayload("TMC messages are not objects")
        return messages

    def tmc_confirm(self, message_ids: Sequence[str], group_name: str = "default") -> bool:
        """Confirm stored messages (at most 200 per call; more are sent in several calls)."""
        ok = True
        ids = list(message_ids)
        for start in range(0, len(ids), 200):
            answer = self.call(
                "taobao.tmc.messages.confirm",
                {"group_name": group_name, "s_message_ids": ",".join(ids[start : start + 200])},
            )
            ok = ok and answer.get("is_success", True) is not False
        return ok
