"""Kuaishou 快手小店 (open.kwaixiaodian.com): API signing, push decryption and parsing, order
mapping, and the API client. Formats and sources: ``PLATFORMS.md`` section 3.

Unconfirmed (kept configurable):
- money unit: integers taken as fen;
- ``open.item.sku.stock.update`` is incremental, and which ``changeType`` adds stock: we take
  1 = increase, 2 = decrease (``CHANGE_TYPE_INCREASE`` / ``CHANGE_TYPE_DECREASE``, overridable per
  client);
- ``open.seller.order.goods.deliver``'s optional parameters (we send only the three documented);
- the retry policy for unanswered pushes (up to 3 retries per zsmhub's comment).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, Final, Literal

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .base import (
    KUAISHOU_EVENTS,
    KUAISHOU_ORDER_STATUS,
    CanonicalLine,
    CanonicalOrder,
    Credentials,
    MalformedPayload,
    PlatformRejected,
    PushEvent,
    StockTarget,
    UndecryptableBody,
    fen_to_cny,
    from_epoch_ms,
    id_str,
    map_status,
    optional_time,
)
from .transport import PlatformHttpClient

SignMethod = Literal["MD5", "HMAC_SHA256"]

PRODUCTION_BASE_URL: Final = "https://openapi.kwaixiaodian.com"
API_VERSION: Final = "1"
CHANGE_TYPE_INCREASE: Final = 1  # unconfirmed
CHANGE_TYPE_DECREASE: Final = 2  # unconfirmed
# Transient envelope codes. Unconfirmed; none is documented, so only HTTP/transport errors retry.
RETRYABLE_CODES: Final[frozenset[str]] = frozenset()

PUSH_ACK: Final[dict[str, Any]] = {"result": 1}
ZERO_IV: Final = bytes(16)


# --- outbound signing ----------------------------------------------------------------------------


def sign_string(params: Mapping[str, str], sign_secret: str) -> str:
    """``k=v`` of every parameter but ``sign``, keys sorted, joined by ``&``, then
    ``&signSecret=<secret>``."""
    pairs = "&".join(f"{key}={params[key]}" for key in sorted(params) if key != "sign")
    return f"{pairs}&signSecret={sign_secret}"


def sign(params: Mapping[str, str], sign_secret: str, sign_method: SignMethod) -> str:
    """MD5 lowercase hex, or base64 of HMAC-SHA256 keyed with the sign secret."""
    text = sign_string(params, sign_secret).encode()
    if sign_method == "MD5":
        return hashlib.md5(text).hexdigest()  # noqa: S324 - the platform's recipe
    if sign_method == "HMAC_SHA256":
        return base64.b64encode(hmac.new(sign_secret.encode(), text, hashlib.sha256).digest()).decode()
    raise ValueError(f"unknown sign method {sign_method!r}")


def param_json(param: Mapping[str, Any]) -> str:
    return json.dumps(param, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def signed_params(
    credentials: Credentials, method: str, param: Mapping[str, Any], *, timestamp_ms: int, sign_method: SignMethod
) -> dict[str, str]:
    """All parameters of one call (``appkey, method, version, param, access_token, timestamp,
    signMethod, sign``); ``app_secret`` is the app's signSecret."""
    params = {
        "appkey": credentials.app_key,
        "method": method,
        "version": API_VERSION,
        "param": param_json(param),
        "access_token": credentials.access_token,
        "timestamp": str(timestamp_ms),
        "signMethod": sign_method,
    }
    params["sign"] = sign(params, credentials.app_secret, sign_method)
    return params


def method_path(method: str) -> str:
    return "/" + method.replace(".", "/")


# --- inbound pushes ------------------------------------------------------------------------------


def decrypt_body(body: bytes | str, msg_secret: str) -> bytes:
    """base64 ciphertext -> plaintext: AES-CBC, key = base64decode(msgSecret), 16 zero bytes IV,
    PKCS#7 padding. Any failure raises :class:`UndecryptableBody`."""
    try:
        key = base64.b64decode(msg_secret, validate=True)
        cipher_text = base64.b64decode(body.strip() if isinstance(body, bytes) else body.strip().encode())
    except (binascii.Error, ValueError):
        raise UndecryptableBody("body or msgSecret is not base64") from None
    if len(key) not in (16, 24, 32):
        raise UndecryptableBody("msgSecret is not an AES key")
    if not cipher_text or len(cipher_text) % 16:
        raise UndecryptableBody("ciphertext is not a whole number of AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(ZERO_IV)).decryptor()
    padded = decryptor.update(cipher_text) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise UndecryptableBody("bad padding (wrong key?)") from None


def decrypt_push(body: bytes | str, msg_secret: str) -> PushEvent:
    """Decrypt and parse one push. A body that does not decrypt to a JSON object raises
    :class:`UndecryptableBody`; a decrypted message of the wrong shape :class:`MalformedPayload`."""
    plain = decrypt_body(body, msg_secret)
    try:
        message = json.loads(plain.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise UndecryptableBody("plaintext is not UTF-8 JSON (wrong key?)") from None
    if not isinstance(message, dict):
        raise UndecryptableBody("plaintext is not a JSON object")
    return event_from_message(message)


def event_from_message(message: dict[str, Any]) -> PushEvent:
    """A decrypted message as a :class:`PushEvent`; ``test: true`` is a heartbeat."""
    message_id = message.get("msgId") or message.get("eventId")
    if not message_id:
        raise MalformedPayload("message without msgId")
    topic = str(message.get("event") or "")
    raw_info = message.get("info")
    try:
        info = json.loads(raw_info) if isinstance(raw_info, str) and raw_info else (raw_info or {})
    except ValueError:
        raise MalformedPayload(f"message {message_id}: info is not JSON") from None
    if not isinstance(info, dict):
        raise MalformedPayload(f"message {message_id}: info is not an object")
    test = message.get("test") is True
    kind = "heartbeat" if test else KUAISHOU_EVENTS.get(topic, "other")
    order_id = info.get("oid", info.get("orderId", message.get("bizId")))
    shop = info.get("sellerId", message.get("userId"))
    when = info.get("updateTime") or info.get("createTime") or message.get("updateTime") or message.get("createTime")
    status = info.get("status")
    return PushEvent(
        platform="kuaishou",
        message_id=str(message_id),
        kind=kind,
        topic=topic,
        order_id=id_str(order_id, "oid") if order_id is not None and not test else None,
        shop_id=str(shop) if shop is not None else None,
        occurred_at=optional_time(when, from_epoch_ms),
        raw=message,
        data=info,
        status=str(status) if status is not None else None,
        test=test,
    )


def push_ack_body() -> bytes:
    return json.dumps(PUSH_ACK, separators=(",", ":")).encode()


def push_failure_body(message: str) -> bytes:
    """Anything but ``result: 1`` makes the platform retry."""
    return json.dumps({"result": 0, "error_msg": message}, separators=(",", ":"), ensure_ascii=False).encode()


# --- order mapping -------------------------------------------------------------------------------


def order_from_detail(data: Mapping[str, Any], *, shop_id: str) -> CanonicalOrder:
    """Map ``open.order.detail``'s ``data`` (one item per order). ``totalFee`` is the goods total
    without freight; ``total`` = totalFee + expressFee (whether discountFee is already deducted is
    unconfirmed; it stays in ``raw``)."""
    base = data.get("orderBaseInfo")
    item = data.get("orderItemInfo")
    if not isinstance(base, dict) or not isinstance(item, dict):
        raise MalformedPayload("order detail without orderBaseInfo/orderItemInfo")
    oid = id_str(base.get("oid"), "oid")
    quantity = item.get("num")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise MalformedPayload(f"orderItemInfo.num {quantity!r}")
    goods = fen_to_cny(base.get("totalFee"))
    freight = fen_to_cny(base.get("expressFee", 0))
    line = CanonicalLine(
        line_id=oid,
        platform_sku_id=id_str(item.get("skuId"), "skuId"),
        platform_item_id=id_str(item.get("itemId"), "itemId"),
        merchant_sku_code=item.get("skuNick") or item.get("goodsCode") or None,
        quantity=quantity,
        unit_price=fen_to_cny(item.get("price")),
        amount=goods,
    )
    status_value = base.get("status")
    address = data.get("orderAddress")
    return CanonicalOrder(
        platform="kuaishou",
        shop_id=shop_id,
        order_id=oid,
        status=map_status(KUAISHOU_ORDER_STATUS, status_value, platform="kuaishou"),
        platform_status=str(status_value),
        buyer_id=str(base.get("buyerOpenId") or ""),
        lines=(line,),
        total=goods + freight,
        freight=freight,
        receiver=dict(address) if isinstance(address, dict) else {},
        created_at=from_epoch_ms(base.get("createTime")),
        paid_at=optional_time(base.get("payTime"), from_epoch_ms),
        updated_at=optional_time(base.get("updateTime"), from_epoch_ms),
        raw=dict(data),
    )


# --- client --------------------------------------------------------------------------------------


def check_envelope(body: Mapping[str, Any]) -> Any:
    """``data`` of a success envelope (``result == 1``); otherwise :class:`PlatformRejected`."""
    result = body.get("result")
    if result == 1:
        return body.get("data")
    code = str(body.get("code") or result)
    raise PlatformRejected(
        f"kuaishou: {body.get('error_msg') or body.get('msg') or ''} {body.get('sub_msg') or ''}".strip(),
        code=code,
        sub_code=str(body.get("sub_code") or "") or None,
        retryable=code in RETRYABLE_CODES,
    )


class KuaishouClient(PlatformHttpClient):
    """快手小店 open API. Reads are GET with query parameters, writes POST forms (as the SDK)."""

    platform = "kuaishou"
    production_base_url = PRODUCTION_BASE_URL

    def __init__(
        self,
        credentials: Credentials,
        *,
        sign_method: SignMethod = "HMAC_SHA256",
        change_type_increase: int = CHANGE_TYPE_INCREASE,
        change_type_decrease: int = CHANGE_TYPE_DECREASE,
        **kwargs: Any,
    ) -> None:
        super().__init__(credentials, **kwargs)
        self.sign_method: SignMethod = sign_method
        self.change_type_increase = change_type_increase
        self.change_type_decrease = change_type_decrease

    def call(self, method: str, param: Mapping[str, Any], *, http_method: Literal["GET", "POST"] = "POST") -> Any:
        params = signed_params(
            self.credentials, method, param, timestamp_ms=int(self.clock() * 1000), sign_method=self.sign_method
        )
        url = self.base_url + method_path(method)
        if http_method == "GET":
            answer = self._request("GET", url, params=params)
        else:
            answer = self._request("POST", url, data=params)
        return check_envelope(answer)

    def order_detail(self, order_id: str) -> CanonicalOrder:
        data = self.call("open.order.detail", {"oid": int(order_id)}, http_method="GET")
        if not isinstance(data, dict):
            raise MalformedPayload("open.order.detail without data")
        return order_from_detail(data, shop_id=self.credentials.shop_id)

    def update_stock(self, *, item_id: str, sku_id: str, change: int) -> Any:
        """``open.item.sku.stock.update``: add ``change`` units (negative removes). Incremental:
        a retried call after an unanswered one may apply twice; the platform documents no
        idempotency key."""
        if change == 0:
            raise ValueError("change must not be 0")
        change_type = self.change_type_increase if change > 0 else self.change_type_decrease
        param = {
            "kwaiItemId": int(item_id),
            "skuId": int(sku_id),
            "skuChangeStock": abs(change),
            "changeType": change_type,
        }
        return self.call("open.item.sku.stock.update", param)

    def set_stock(
        self, target: StockTarget, quantity: int, *, idempotency_key: str, last_known: int | None = None
    ) -> bool:
        """Bring the platform's count from ``last_known`` (what we last set there) to ``quantity``
        with one incremental call; no call when they are equal. ``idempotency_key`` is not sent
        (none is documented). Returns whether a call was made."""
        if last_known is None:
            raise ValueError("kuaishou stock updates are incremental: last_known is required")
        if not target.platform_sku_id:
            raise ValueError("kuaishou stock updates need the platform SKU id")
        if quantity == last_known:
            return False
        self.update_stock(item_id=target.platform_item_id, sku_id=target.platform_sku_id, change=quantity - last_known)
        return True

    def ship(self, order_id: str, company_code: str, waybill: str) -> Any:
        """``open.seller.order.goods.deliver``; ``company_code`` is Kuaishou's integer express code."""
        if not company_code.isdigit():
            raise ValueError("kuaishou express codes are integers")
        param = {"orderId": int(order_id), "expressNo": waybill, "expressCode": int(company_code)}
        return self.call("open.seller.order.goods.deliver", param)
