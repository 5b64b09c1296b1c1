"""A platform's after-sales (售后) message in our terms: which request, of which order, and what
happened to it (``AfterSale``). The three platforms say it differently:

- **Douyin** pushes tags 200–208 (RefundCreated ... RefundModified): the tag is the step; ``data``
  carries ``aftersale_id``, ``aftersale_type`` (0 return, 1 refund after shipping, 2 refund of the
  whole order before shipping: jinritemai-go ``message/refund``), ``s_id`` (the sub-order), ``p_id``,
  ``refund_amount`` (fen, freight included) and a time.
- **Kuaishou** pushes ``kwaishop_aftersales_addRefund`` / ``updateRefund``; ``info`` carries
  ``orderId, refundId, handlingWay, status, createTime`` (PLATFORMS.md). The refund status runs
  10 ... 60 (success), 70 (closed); the steps between and the ``handlingWay`` values are
  **unconfirmed** in our sources: the tables below are our reading (1 return and refund, 10 refund
  only), kept in one place to change. The amount, where sent, is ``refundFee`` in fen (unconfirmed).
- **Taobao** TMC topics ``taobao_refund_*``; the content carries ``refund_id, tid, oid,
  refund_fee`` (yuan) and ``modified``, and may carry the refund's ``status`` (WAIT_SELLER_AGREE,
  WAIT_BUYER_RETURN_GOODS, WAIT_SELLER_CONFIRM_GOODS, SELLER_REFUSE_BUYER, CLOSED, SUCCESS: the
  Refund object's documented values) and ``has_good_return``; when it does, they are more precise
  than the topic. ``taobao_refund_RefundSellerRefuseAgreement`` is a TMC topic not in our sources.

The steps (``Phase``): ``requested`` (asked, or asked again), ``modified`` (the buyer changed the
amount or reason), ``agreed`` (the merchant agreed: money alone is now paid by the platform),
``return_agreed`` (agreed: the buyer sends the goods back), ``goods_returned`` (the buyer sent them),
``refused``, ``succeeded`` (the platform paid the buyer back), ``closed`` (withdrawn or closed
without money). Pure Python, like the rest of ``protocol``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Literal

from .base import (
    MalformedPayload,
    Platform,
    PushEvent,
    fen_to_cny,
    from_epoch_ms,
    from_gmt8_string,
    from_unix_seconds,
    id_str,
    optional_time,
    yuan_to_cny,
)

Phase = Literal["requested", "modified", "agreed", "return_agreed", "goods_returned", "refused", "succeeded", "closed"]
PHASES: Final[tuple[Phase, ...]] = (
    "requested",
    "modified",
    "agreed",
    "return_agreed",
    "goods_returned",
    "refused",
    "succeeded",
    "closed",
)
Kind = Literal["refund", "return"]


@dataclass(frozen=True, kw_only=True)
class AfterSale:
    """One after-sales step. ``refund_id`` is the platform's id of the request (stable across its
    messages); ``kind`` None when the message does not say; ``amount`` the money asked or paid
    (None when not carried); ``line_id`` the sub-order it is about (None: the order);
    ``platform_status`` the platform's own word for the step (tag, status or topic)."""

    platform: Platform
    refund_id: str
    order_id: str
    phase: Phase
    kind: Kind | None
    amount: Decimal | None
    occurred_at: datetime | None
    platform_status: str
    line_id: str | None = None
    reason: str = ""


DOUYIN_PHASES: Final[dict[str, Phase]] = {
    "200": "requested",
    "201": "agreed",
    "202": "return_agreed",
    "203": "goods_returned",
    "204": "refused",
    "205": "refused",
    "206": "succeeded",
    "207": "closed",
    "208": "modified",
}
DOUYIN_KINDS: Final[dict[int, Kind]] = {0: "return", 1: "refund", 2: "refund"}
DOUYIN_EXCHANGE: Final = 3  # 换货: goods for goods, no money back (the platform's own flow)

KUAISHOU_PHASES: Final[dict[int, Phase]] = {
    10: "requested",
    11: "refused",
    20: "requested",
    30: "agreed",
    40: "goods_returned",
    50: "agreed",
    60: "succeeded",
    70: "closed",
}
KUAISHOU_KINDS: Final[dict[int, Kind]] = {1: "return", 10: "refund"}
KUAISHOU_EXCHANGE: Final = 3

TAOBAO_TOPIC_PHASES: Final[dict[str, Phase]] = {
    "taobao_refund_RefundCreated": "requested",
    "taobao_refund_RefundSellerAgreeAgreement": "agreed",
    "taobao_refund_RefundSellerRefuseAgreement": "refused",
    "taobao_refund_RefundBuyerReturnGoods": "goods_returned",
    "taobao_refund_RefundSuccess": "succeeded",
    "taobao_refund_RefundClosed": "closed",
}
TAOBAO_STATUS_PHASES: Final[dict[str, Phase]] = {
    "WAIT_SELLER_AGREE": "requested",
    "WAIT_BUYER_RETURN_GOODS": "return_agreed",
    "WAIT_SELLER_CONFIRM_GOODS": "goods_returned",
    "SELLER_REFUSE_BUYER": "refused",
    "CLOSED": "closed",
    "SUCCESS": "succeeded",
}


def aftersale_of(event: PushEvent) -> AfterSale | None:
    """The after-sales step a refund message tells, or None for any other message (and for an
    exchange, 换货: goods for goods, no money back; its order's detail still applies). Raises
    :class:`MalformedPayload` for a refund message without its request or order id."""
    if event.kind != "refund":
        return None
    reader = {"douyin": _douyin, "kuaishou": _kuaishou, "taobao": _taobao}[event.platform]
    return reader(event)


def _douyin(event: PushEvent) -> AfterSale | None:
    data = event.data
    if data.get("aftersale_type") == DOUYIN_EXCHANGE:
        return None
    tag = str(event.raw.get("tag", ""))
    refund_id = _required(data, "aftersale_id", event)
    order_id = _required(data, "p_id", event) if data.get("p_id") is not None else _required(data, "s_id", event)
    line = data.get("s_id")
    kind = DOUYIN_KINDS.get(data["aftersale_type"]) if isinstance(data.get("aftersale_type"), int) else None
    amount = data.get("refund_amount")
    when = next((data[k] for k in ("success_time", "update_time", "apply_time") if data.get(k)), None)
    return AfterSale(
        platform="douyin",
        refund_id=refund_id,
        order_id=order_id,
        phase=DOUYIN_PHASES.get(tag, "modified"),
        kind="return" if tag in ("202", "203", "205") else kind,
        amount=fen_to_cny(amount) if amount is not None else None,
        occurred_at=optional_time(when, from_unix_seconds) or event.occurred_at,
        platform_status=f"{tag}/{data.get('aftersale_status', '')}",
        line_id=id_str(line, "s_id") if line is not None and str(line) != order_id else None,
        reason=str(data.get("reason_code") or ""),
    )


def _kuaishou(event: PushEvent) -> AfterSale | None:
    info = event.data
    if info.get("handlingWay") == KUAISHOU_EXCHANGE:
        return None
    refund_id = _required(info, "refundId", event)
    order_id = _required(info, "orderId", event) if info.get("orderId") is not None else (event.order_id or "")
    if not order_id:
        raise MalformedPayload(f"{event.platform} message {event.message_id}: no orderId")
    status = info.get("status")
    if event.topic.endswith("addRefund") and status in (None, 10):
        phase: Phase = "requested"
    elif isinstance(status, int) and status in KUAISHOU_PHASES:
        phase = KUAISHOU_PHASES[status]
    else:
        raise MalformedPayload(f"kuaishou message {event.message_id}: unknown refund status {status!r}")
    way = info.get("handlingWay")
    kind = KUAISHOU_KINDS.get(way) if isinstance(way, int) else None
    if phase == "agreed" and kind == "return" and status == 30:
        phase = "return_agreed"
    fee = info.get("refundFee")
    when = info.get("updateTime") or info.get("createTime")
    return AfterSale(
        platform="kuaishou",
        refund_id=refund_id,
        order_id=order_id,
        phase=phase,
        kind=kind,
        amount=fen_to_cny(fee) if fee is not None else None,
        occurred_at=optional_time(when, from_epoch_ms) or event.occurred_at,
        platform_status=str(status if status is not None else "10"),
        reason=str(info.get("refundReason") or "")[:200],
    )


def _taobao(event: PushEvent) -> AfterSale | None:
    data = event.data
    refund_id = _required(data, "refund_id", event)
    order_id = _required(data, "tid", event)
    status = data.get("status")
    phase = TAOBAO_STATUS_PHASES.get(status) if isinstance(status, str) else None
    if phase is None:
        phase = TAOBAO_TOPIC_PHASES.get(event.topic, "modified")
    if phase == "requested" and event.topic == "taobao_refund_RefundSellerAgreeAgreement":
        phase = "agreed"  # a stale status in an agreement message: the topic is the newer word
    goods = data.get("has_good_return")
    kind: Kind | None
    if goods in (True, "true"):
        kind = "return"
    elif goods in (False, "false"):
        kind = "refund"
    else:
        kind = "return" if phase in ("return_agreed", "goods_returned") else None
    oid = data.get("oid")
    fee = data.get("refund_fee")
    return AfterSale(
        platform="taobao",
        refund_id=refund_id,
        order_id=order_id,
        phase=phase,
        kind=kind,
        amount=yuan_to_cny(fee) if fee is not None else None,
        occurred_at=optional_time(data.get("modified"), from_gmt8_string) or event.occurred_at,
        platform_status=str(status or event.topic.rsplit("_", 1)[-1])[:40],
        line_id=id_str(oid, "oid") if oid is not None and str(oid) != order_id else None,
        reason=str(data.get("reason") or "")[:200],
    )


def _required(data: dict[str, Any], key: str, event: PushEvent) -> str:
    value = data.get(key)
    if value is None:
        raise MalformedPayload(f"{event.platform} refund message {event.message_id}: no {key}")
    return id_str(value, key)
