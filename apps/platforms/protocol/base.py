"""Types shared by the three platform protocols: credentials, the canonical order and push event,
the typed errors, the status and event mapping tables, and exact money and time conversions.

Pure Python: no Django, no settings, no database. Money is ``Decimal`` CNY with two places, built
from fen integers or yuan strings, never from floats. Times are aware UTC datetimes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, Literal

Platform = Literal["douyin", "kuaishou", "taobao"]
PLATFORMS: Final[tuple[Platform, ...]] = ("douyin", "kuaishou", "taobao")

OrderStatus = Literal["pending_payment", "paid", "shipped", "delivered", "completed", "cancelled", "refunded"]
ORDER_STATUSES: Final[tuple[OrderStatus, ...]] = (
    "pending_payment",
    "paid",
    "shipped",
    "delivered",
    "completed",
    "cancelled",
    "refunded",
)

EventKind = Literal[
    "created",
    "paid",
    "cancelled",
    "shipped",
    "delivered",
    "completed",
    "refund",
    "address_changed",
    "verification",
    "heartbeat",
    "other",
]


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """One connected shop's keys. ``app_secret`` signs API calls (for Kuaishou it is the app's
    *signSecret*); ``msg_secret`` is Kuaishou's push decryption key (base64). Secrets stay out of
    ``repr``."""

    app_key: str
    app_secret: str = field(repr=False)
    access_token: str = field(repr=False)
    shop_id: str
    msg_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True)
class CanonicalLine:
    line_id: str
    platform_sku_id: str
    platform_item_id: str
    merchant_sku_code: str | None
    quantity: int
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class CanonicalOrder:
    """A platform order in our terms. ``total`` is what the buyer pays, freight included;
    ``platform_status`` the platform's own status value; ``receiver`` exactly as the platform gave
    it (masked or encrypted values untouched); ``raw`` the platform's order object."""

    platform: Platform
    shop_id: str
    order_id: str
    status: OrderStatus
    platform_status: str
    buyer_id: str
    lines: tuple[CanonicalLine, ...]
    total: Decimal
    freight: Decimal
    receiver: dict[str, Any]
    created_at: datetime
    paid_at: datetime | None
    updated_at: datetime | None
    raw: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class PushEvent:
    """One inbound message. ``message_id`` is the platform's id (idempotency key together with the
    platform); ``topic`` the platform's own event name or tag; ``status`` and ``amount`` what the
    message itself carries (None when it carries none); ``data`` the decoded message body;
    ``raw`` the message as received (for Douyin one array element, for Kuaishou the decrypted
    plaintext, for Taobao the TMC message)."""

    platform: Platform
    message_id: str
    kind: EventKind
    topic: str
    order_id: str | None
    shop_id: str | None
    occurred_at: datetime | None
    raw: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    status: str | None = None
    amount: Decimal | None = None
    test: bool = False


@dataclass(frozen=True, kw_only=True)
class StockTarget:
    """Where a SKU's stock lives on a platform: its item (product) id, SKU id and merchant code."""

    platform_item_id: str
    platform_sku_id: str | None = None
    merchant_sku_code: str | None = None


# --- errors -----------------------------------------------------------------------------------


class PlatformError(Exception):
    """A platform call or message failed. ``code`` is the platform's code (or ours for transport
    failures), ``retryable`` whether the same call may succeed later."""

    default_code = "platform_error"
    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retryable: bool | None = None,
        sub_code: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code
        self.retryable = self.default_retryable if retryable is None else retryable
        self.sub_code = sub_code
        self.http_status = http_status

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, retryable={self.retryable}, message={self.message!r})"


class SignatureInvalid(PlatformError):
    default_code = "signature_invalid"


class UndecryptableBody(PlatformError):
    default_code = "undecryptable_body"


class MalformedPayload(PlatformError):
    """A message or response that is not in the documented shape."""

    default_code = "malformed_payload"


class PlatformTimeout(PlatformError):
    default_code = "timeout"
    default_retryable = True


class PlatformUnavailable(PlatformError):
    """Transport failure, a 5xx, or a platform code meaning 'busy, try again'."""

    default_code = "unavailable"
    default_retryable = True


class PlatformRejected(PlatformError):
    """The platform answered with an error envelope; retryable only for codes known to be transient."""

    default_code = "rejected"


# --- status and event tables (PLATFORMS.md) ------------------------------------------------------

# Douyin ``order_status`` / ``main_status``. 101 (partly shipped) and Taobao SELLER_CONSIGNED_PART
# stay "paid": part of the order still waits for shipment. 103 (partly paid) is still unpaid.
DOUYIN_ORDER_STATUS: Final[dict[int, OrderStatus]] = {
    1: "pending_payment",
    103: "pending_payment",
    105: "paid",
    2: "paid",
    101: "paid",
    3: "shipped",
    4: "cancelled",
    5: "completed",
    21: "refunded",
    22: "refunded",
    39: "refunded",
}
KUAISHOU_ORDER_STATUS: Final[dict[int, OrderStatus]] = {
    10: "pending_payment",
    30: "paid",
    40: "shipped",
    50: "delivered",
    70: "completed",
    80: "cancelled",
}
TAOBAO_TRADE_STATUS: Final[dict[str, OrderStatus]] = {
    "TRADE_NO_CREATE_PAY": "pending_payment",
    "WAIT_BUYER_PAY": "pending_payment",
    "PAY_PENDING": "pending_payment",
    "WAIT_SELLER_SEND_GOODS": "paid",
    "PAID_FORBID_CONSIGN": "paid",
    "SELLER_CONSIGNED_PART": "paid",
    "WAIT_BUYER_CONFIRM_GOODS": "shipped",
    "TRADE_BUYER_SIGNED": "delivered",
    "TRADE_FINISHED": "completed",
    "TRADE_CLOSED": "refunded",
    "TRADE_CLOSED_BY_TAOBAO": "cancelled",
}

DOUYIN_TAGS: Final[dict[str, tuple[str, EventKind]]] = {
    "0": ("verification", "verification"),
    "100": ("doudian_trade_TradeCreate", "created"),
    "101": ("doudian_trade_TradePaid", "paid"),
    "102": ("doudian_trade_TradeSellerShip", "shipped"),
    "103": ("doudian_trade_TradeSuccess", "completed"),
    "104": ("doudian_trade_TradeLogisticsChanged", "other"),
    "105": ("doudian_trade_TradeAddressChanged", "address_changed"),
    "106": ("doudian_trade_TradeCanceled", "cancelled"),
    "108": ("doudian_trade_TradePartlySellerShip", "other"),
    "110": ("doudian_trade_TradePending", "paid"),
    "200": ("doudian_refund_RefundCreated", "refund"),
    "201": ("doudian_refund_RefundAgreed", "refund"),
    "202": ("doudian_refund_ReturnApplyAgreed", "refund"),
    "203": ("doudian_refund_BuyerReturnGoods", "refund"),
    "204": ("doudian_refund_RefundRefused", "refund"),
    "205": ("doudian_refund_ReturnApplyRefused", "refund"),
    "206": ("doudian_refund_RefundSuccess", "refund"),
    "207": ("doudian_refund_RefundClosed", "refund"),
    "208": ("doudian_refund_RefundModified", "refund"),
}
KUAISHOU_EVENTS: Final[dict[str, EventKind]] = {
    "kwaishop_order_addOrder": "created",
    "kwaishop_order_paySuccess": "paid",
    "kwaishop_order_delivering": "shipped",
    "kwaishop_order_deliverySuccess": "delivered",
    "kwaishop_order_orderSuccess": "completed",
    "kwaishop_order_orderFail": "cancelled",
    "kwaishop_order_totalFeeChange": "other",
    "kwaishop_order_addressChange": "address_changed",
    "kwaishop_aftersales_addRefund": "refund",
    "kwaishop_aftersales_updateRefund": "refund",
}
TAOBAO_TOPICS: Final[dict[str, EventKind]] = {
    "taobao_trade_TradeCreate": "created",
    "taobao_trade_TradeBuyerPay": "paid",
    "taobao_trade_TradeClose": "cancelled",
    "taobao_trade_TradeSellerShip": "shipped",
    "taobao_trade_TradePartlySellerShip": "other",
    "taobao_trade_TradeSuccess": "completed",
    "taobao_trade_TradeChanged": "other",
    "taobao_trade_TradeLogisticsAddressChanged": "address_changed",
    "taobao_refund_RefundCreated": "refund",
    "taobao_refund_RefundSuccess": "refund",
    "taobao_refund_RefundClosed": "refund",
    "taobao_refund_RefundSellerAgreeAgreement": "refund",
    "taobao_refund_RefundBuyerReturnGoods": "refund",
    "taobao_refund_RefundSellerRefuseAgreement": "refund",  # a TMC topic not in our sources
}


def map_status(table: dict[Any, OrderStatus], value: Any, *, platform: str) -> OrderStatus:
    """Look a platform status up; an unknown one is a malformed payload, never a guess."""
    try:
        return table[value]
    except (KeyError, TypeError):
        raise MalformedPayload(f"unknown {platform} order status {value!r}") from None


# --- money -------------------------------------------------------------------------------------

CENT: Final = Decimal("0.01")
_YUAN = re.compile(r"-?(0|[1-9]\d*)(\.\d{1,2})?")


def fen_to_cny(value: object) -> Decimal:
    """An integer amount of fen as CNY (``9900 -> Decimal("99.00")``). Floats, bools and strings
    are refused: a platform that sends fen sends integers."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedPayload(f"fen amount must be an integer, got {value!r}")
    return (Decimal(value) / 100).quantize(CENT)


def yuan_to_cny(value: object) -> Decimal:
    """A yuan string with at most two decimals as CNY (``"200.07"``). Floats and other shapes
    (exponents, spaces, three decimals) are refused."""
    if not isinstance(value, str) or not _YUAN.fullmatch(value):
        raise MalformedPayload(f"yuan amount must be a string like '12.30', got {value!r}")
    return Decimal(value).quantize(CENT)


def cny_to_fen(value: Decimal) -> int:
    """Exact CNY to fen; a value with fractions of a fen is refused."""
    fen = value * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"{value} is not a whole number of fen")
    return int(fen)


def cny_to_yuan(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def unit_price(amount: Decimal, quantity: int) -> Decimal:
    """A line's unit price from its amount, rounded half-up to the fen."""
    if quantity <= 0:
        raise MalformedPayload(f"line quantity must be positive, got {quantity}")
    return (amount / quantity).quantize(CENT, rounding=ROUND_HALF_UP)


# --- time --------------------------------------------------------------------------------------

GMT8: Final = timezone(timedelta(hours=8), "GMT+8")
GMT8_FORMAT: Final = "%Y-%m-%d %H:%M:%S"


def from_unix_seconds(value: object) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedPayload(f"unix seconds must be a non-negative integer, got {value!r}")
    return datetime.fromtimestamp(value, UTC)


def from_epoch_ms(value: object) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedPayload(f"epoch milliseconds must be a non-negative integer, got {value!r}")
    return datetime.fromtimestamp(value // 1000, UTC) + timedelta(milliseconds=value % 1000)


def from_gmt8_string(value: object) -> datetime:
    """``"2024-05-01 20:00:00"`` in China time (GMT+8) as UTC."""
    if not isinstance(value, str):
        raise MalformedPayload(f"time must be a 'yyyy-MM-dd HH:mm:ss' string, got {value!r}")
    try:
        local = datetime.strptime(value, GMT8_FORMAT)
    except ValueError:
        raise MalformedPayload(f"time must be 'yyyy-MM-dd HH:mm:ss', got {value!r}") from None
    return local.replace(tzinfo=GMT8).astimezone(UTC)


def to_gmt8_string(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.astimezone(GMT8).strftime(GMT8_FORMAT)


def optional_time(value: object, convert: Any) -> datetime | None:
    """A time field that platforms leave 0, empty or absent while the event has not happened."""
    if value is None or value == 0 or value == "":
        return None
    result: datetime = convert(value)
    return result


def id_str(value: object, what: str) -> str:
    """A platform id (int or str) as a non-empty string; floats would lose digits and are refused."""
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise MalformedPayload(f"{what} must be an integer or a string, got {value!r}")
    return str(value)
