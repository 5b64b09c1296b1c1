"""Douyin 抖店 (op.jinritemai.com): API signing, push verification and parsing, order mapping, and
the API client. Formats and sources: ``PLATFORMS.md`` section 1.

Unconfirmed (kept configurable):
- the header that selects the HMAC push signature (``PUSH_SIGN_METHOD_HEADER``); without it both
  recipes are tried, each keyed with the app secret;
- the ``data.shop_order_detail`` wrapper of ``order.orderDetail`` (both wrapped and bare accepted);
- which envelope codes are transient (``RETRYABLE_CODES``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

from .base import (
    DOUYIN_ORDER_STATUS,
    DOUYIN_TAGS,
    CanonicalLine,
    CanonicalOrder,
    Credentials,
    MalformedPayload,
    PlatformRejected,
    PushEvent,
    SignatureInvalid,
    StockTarget,
    fen_to_cny,
    from_unix_seconds,
    id_str,
    map_status,
    optional_time,
    unit_price,
)
from .transport import PlatformHttpClient

SignMethod = Literal["md5", "hmac-sha256"]

PRODUCTION_BASE_URL: Final = "https://openapi-fxg.jinritemai.com"
SANDBOX_BASE_URL: Final = "https://openapi-sandbox.jinritemai.com"
API_VERSION: Final = "2"
SUCCESS_CODE: Final = 10000
# Transient envelope codes. Unconfirmed: 20000 is listed as "service unavailable" in SDK comments.
RETRYABLE_CODES: Final = frozenset({20000})

PUSH_APP_ID_HEADER: Final = "app-id"
PUSH_SIGN_HEADER: Final = "event-sign"
PUSH_SIGN_METHOD_HEADER: Final = "sign-method"  # unconfirmed: the header selecting the HMAC variant

PUSH_ACK: Final[dict[str, Any]] = {"code": 0, "msg": "success"}
PUSH_FAILURE_CODE: Final = 40041


# --- outbound signing ----------------------------------------------------------------------------


def param_json(params: Mapping[str, Any]) -> str:
    """The request body: keys sorted recursively, compact, non-ASCII kept as UTF-8 (as Go's
    ``json.Marshal`` of a map does). The signature covers exactly this string."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sign_string(*, app_key: str, app_secret: str, method: str, param_json: str, timestamp: str) -> str:
    return (
        f"{app_secret}app_key{app_key}method{method}param_json{param_json}"
        f"timestamp{timestamp}v{API_VERSION}{app_secret}"
    )


def sign(
    *, app_key: str, app_secret: str, method: str, param_json: str, timestamp: str, sign_method: SignMethod
) -> str:
    """``md5`` or ``hmac-sha256`` (key = app secret) of :func:`sign_string`, lowercase hex."""
    text = sign_string(
        app_key=app_key, app_secret=app_secret, method=method, param_json=param_json, timestamp=timestamp
    ).encode()
    if sign_method == "md5":
        return hashlib.md5(text).hexdigest()  # noqa: S324 - the platform's recipe
    if sign_method == "hmac-sha256":
        return hmac.new(app_secret.encode(), text, hashlib.sha256).hexdigest()
    raise ValueError(f"unknown sign method {sign_method!r}")


def method_path(method: str) -> str:
    """``order.orderDetail`` -> ``/order/orderDetail``."""
    return "/" + method.replace(".", "/")


def signed_request(
    credentials: Credentials, method: str, params: Mapping[str, Any], *, timestamp: int, sign_method: SignMethod
) -> tuple[str, dict[str, str], bytes]:
    """The path, query parameters and body of one API call."""
    body = param_json(params)
    ts = str(timestamp)
    query = {
        "app_key": credentials.app_key,
        "method": method,
        "access_token": credentials.access_token,
        "timestamp": ts,
        "v": API_VERSION,
        "sign_method": sign_method,
        "sign": sign(
            app_key=credentials.app_key,
            app_secret=credentials.app_secret,
            method=method,
            param_json=body,
            timestamp=ts,
            sign_method=sign_method,
        ),
    }
    return method_path(method), query, body.encode()


# --- inbound pushes ------------------------------------------------------------------------------


def push_signature(app_key: str, app_secret: str, raw_body: bytes, sign_method: SignMethod = "md5") -> str:
    """``md5_hex(app_key + body + app_secret)``, or the HMAC variant keyed with the app secret."""
    text = app_key.encode() + raw_body + app_secret.encode()
    if sign_method == "md5":
        return hashlib.md5(text).hexdigest()  # noqa: S324 - the platform's recipe
    return hmac.new(app_secret.encode(), text, hashlib.sha256).hexdigest()


def verify_push(
    headers: Mapping[str, str],
    raw_body: bytes,
    credentials: Credentials,
    *,
    sign_method: SignMethod | Literal["auto"] = "auto",
) -> None:
    """Check a push's ``event-sign`` over the exact body bytes; raise :class:`SignatureInvalid`.
    ``auto`` takes the method from the (unconfirmed) ``sign-method`` header when present, else
    accepts either recipe. An ``app-id`` header naming another app is refused too."""
    lower = {k.lower(): v for k, v in headers.items()}
    given = (lower.get(PUSH_SIGN_HEADER) or "").strip().lower()
    if not given:
        raise SignatureInvalid("no event-sign header")
    app_id = lower.get(PUSH_APP_ID_HEADER)
    if app_id is not None and app_id.strip() != credentials.app_key:
        raise SignatureInvalid("app-id header names another app")
    methods: Sequence[SignMethod]
    if sign_method != "auto":
        methods = (sign_method,)
    else:
        selector = (lower.get(PUSH_SIGN_METHOD_HEADER) or "").strip().lower().replace("_", "-")
        methods = ("hmac-sha256",) if selector.startswith("hmac") else ("md5",) if selector else ("md5", "hmac-sha256")
    for method in methods:
        expected = push_signature(credentials.app_key, credentials.app_secret, raw_body, method)
        if hmac.compare_digest(expected, given):
            return
    raise SignatureInvalid("event-sign does not match the body")


def _occurred_at(tag: str, data: Mapping[str, Any]) -> Any:
    for key in {"100": ("create_time",), "101": ("pay_time",), "106": ("cancel_time",), "206": ("success_time",)}.get(
        tag, ()
    ) + ("update_time", "apply_time", "success_time", "create_time"):
        if data.get(key):
            return optional_time(data[key], from_unix_seconds)
    return None


def parse_push(raw_body: bytes | str) -> list[PushEvent]:
    """A push body (a JSON array) as events, in array order. Each element's ``data`` is a JSON
    string; the verification push (tag ``"0"``) carries a plain timestamp string instead. The
    message id is ``msg_id`` (docs) or ``msgId`` (SKIT). Raises :class:`MalformedPayload`."""
    try:
        items = json.loads(raw_body)
    except ValueError:
        raise MalformedPayload("push body is not JSON") from None
    if not isinstance(items, list) or not items:
        raise MalformedPayload("push body is not a non-empty JSON array")
    return [_parse_item(item) for item in items]


def _parse_item(item: Any) -> PushEvent:
    if not isinstance(item, dict) or "tag" not in item:
        raise MalformedPayload("push element without a tag")
    tag = str(item["tag"])
    message_id = item.get("msg_id", item.get("msgId"))
    if message_id is None:
        raise MalformedPayload("push element without msg_id")
    topic, kind = DOUYIN_TAGS.get(tag, (f"tag_{tag}", "other"))
    if kind == "verification":
        return PushEvent(
            platform="douyin", message_id=str(message_id), kind=kind, topic=topic, order_id=None, shop_id=None,
            occurred_at=None, raw=item,
        )  # fmt: skip
    raw_data = item.get("data")
    try:
        data = json.loads(raw_data) if isinstance(raw_data, str) else raw_data
    except ValueError:
        raise MalformedPayload(f"push {message_id}: data is not a JSON string") from None
    if not isinstance(data, dict):
        raise MalformedPayload(f"push {message_id}: data is not an object")
    order_id = data.get("p_id", data.get("s_id"))
    status = data.get("aftersale_status") if kind == "refund" else data.get("order_status")
    amount_fen = data.get("refund_amount") if kind == "refund" else data.get("pay_amount")
    return PushEvent(
        platform="douyin",
        message_id=str(message_id),
        kind=kind,
        topic=topic,
        order_id=id_str(order_id, "p_id") if order_id is not None else None,
        shop_id=str(data["shop_id"]) if data.get("shop_id") is not None else None,
        occurred_at=_occurred_at(tag, data),
        raw=item,
        data=data,
        status=str(status) if status is not None else None,
        amount=fen_to_cny(amount_fen) if amount_fen is not None else None,
    )


def push_ack_body() -> bytes:
    """The exact answer that accepts a push (and the verification push)."""
    return json.dumps(PUSH_ACK, separators=(",", ":")).encode()


def push_failure_body(message: str) -> bytes:
    return json.dumps({"code": PUSH_FAILURE_CODE, "msg": message}, separators=(",", ":"), ensure_ascii=False).encode()


# --- order mapping -------------------------------------------------------------------------------

_RECEIVER_PREFIXES: Final = ("post_receiver", "post_tel", "post_addr", "encrypt_post", "mask_post", "encrypt_detail")


def unwrap_order_detail(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data.shop_order_detail`` (the inferred wrapper) or the bare order object."""
    inner = data.get("shop_order_detail", data)
    if not isinstance(inner, dict) or "order_id" not in inner:
        raise MalformedPayload("order detail without order_id")
    return inner


def order_from_detail(data: Mapping[str, Any], *, shop_id: str) -> CanonicalOrder:
    """Map ``order.orderDetail``'s ``data`` (wrapped or bare) to a :class:`CanonicalOrder`.
    Amounts are fen; a line's amount is ``sum_amount`` and its unit price ``goods_price`` (else
    amount / quantity)."""
    detail = unwrap_order_detail(data)
    lines = []
    for sku in detail.get("sku_order_list") or []:
        quantity = sku.get("item_num")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            raise MalformedPayload(f"sku order item_num {quantity!r}")
        amount = fen_to_cny(sku.get("sum_amount", sku.get("origin_amount")))
        price = fen_to_cny(sku["goods_price"]) if "goods_price" in sku else unit_price(amount, quantity)
        lines.append(
            CanonicalLine(
                line_id=id_str(sku.get("order_id"), "sku_order_list[].order_id"),
                platform_sku_id=id_str(sku.get("sku_id"), "sku_id"),
                platform_item_id=id_str(sku.get("product_id"), "product_id"),
                merchant_sku_code=(sku.get("code") or sku.get("out_sku_id") or None),
                quantity=quantity,
                unit_price=price,
                amount=amount,
            )
        )
    if not lines:
        raise MalformedPayload("order detail without sku_order_list")
    status_value = detail.get("order_status")
    pay_fen = detail.get("pay_amount")
    return CanonicalOrder(
        platform="douyin",
        shop_id=shop_id,
        order_id=id_str(detail["order_id"], "order_id"),
        status=map_status(DOUYIN_ORDER_STATUS, status_value, platform="douyin"),
        platform_status=str(status_value),
        buyer_id=str(detail.get("doudian_open_id") or detail.get("open_id") or ""),
        lines=tuple(lines),
        total=fen_to_cny(pay_fen if pay_fen is not None else detail.get("order_amount")),
        freight=fen_to_cny(detail.get("post_amount", 0)),
        receiver={k: v for k, v in detail.items() if k.startswith(_RECEIVER_PREFIXES)},
        created_at=from_unix_seconds(detail.get("create_time")),
        paid_at=optional_time(detail.get("pay_time"), from_unix_seconds),
        updated_at=optional_time(detail.get("update_time"), from_unix_seconds),
        raw=dict(detail),
    )


# --- client --------------------------------------------------------------------------------------


def check_envelope(body: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` of a success envelope (code 10000); otherwise a :class:`PlatformRejected`."""
    code = body.get("code")
    if code == SUCCESS_CODE:
        data = body.get("data")
        return data if isinstance(data, dict) else {}
    raise PlatformRejected(
        f"douyin: {body.get('msg') or ''} {body.get('sub_msg') or ''}".strip(),
        code=str(code),
        sub_code=str(body.get("sub_code") or "") or None,
        retryable=code in RETRYABLE_CODES,
    )


class DouyinClient(PlatformHttpClient):
    """抖店 open API. ``sign_method`` defaults to hmac-sha256 (the Go SDK's default); ``timestamp``
    is unix seconds."""

    platform = "douyin"
    production_base_url = PRODUCTION_BASE_URL

    def __init__(self, credentials: Credentials, *, sign_method: SignMethod = "hmac-sha256", **kwargs: Any) -> None:
        super().__init__(credentials, **kwargs)
        self.sign_method: SignMethod = sign_method

    def call(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        path, query, body = signed_request(
            self.credentials, method, params, timestamp=int(self.clock()), sign_method=self.sign_method
        )
        answer = self._request(
            "POST", self.base_url + path, params=query, content=body, headers={"Content-Type": "application/json"}
        )
        return check_envelope(answer)

    def order_detail(self, order_id: str) -> CanonicalOrder:
        data = self.call("order.orderDetail", {"shop_order_id": order_id})
        return order_from_detail(data, shop_id=self.credentials.shop_id)

    def update_stock(
        self,
        *,
        stock_num: int,
        idempotent_id: str,
        sku_id: str | None = None,
        code: str | None = None,
        product_id: str | None = None,
        incremental: bool = False,
        out_warehouse_id: str | None = None,
    ) -> dict[str, Any]:
        """``sku.syncStock``: by default a full overwrite of the SKU's stock (``incremental``
        false), identified by ``sku_id`` or merchant ``code``."""
        if stock_num < 0:
            raise ValueError("stock_num must be >= 0")
        if not sku_id and not code:
            raise ValueError("sku_id or code is required")
        params: dict[str, Any] = {"stock_num": stock_num, "incremental": incremental, "idempotent_id": idempotent_id}
        if sku_id:
            params["sku_id"] = int(sku_id)
        if code:
            params["code"] = code
        if product_id:
            params["product_id"] = int(product_id)
        if out_warehouse_id:
            params["out_warehouse_id"] = out_warehouse_id
        return self.call("sku.syncStock", params)

    def set_stock(
        self, target: StockTarget, quantity: int, *, idempotency_key: str, last_known: int | None = None
    ) -> bool:
        """Set the available count (full overwrite). ``last_known`` is unused here (see
        ``KuaishouClient.set_stock``). Returns True (a call was made)."""
        self.update_stock(
            stock_num=quantity,
            idempotent_id=idempotency_key,
            sku_id=target.platform_sku_id,
            code=target.merchant_sku_code,
            product_id=target.platform_item_id,
        )
        return True

    def ship(self, order_id: str, company_code: str, waybill: str) -> dict[str, Any]:
        """``order.logisticsAdd`` for the whole order."""
        return self.call(
            "order.logisticsAdd", {"order_id": order_id, "company_code": company_code, "logistics_code": waybill}
        )
