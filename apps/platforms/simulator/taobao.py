"""Taobao TOP simulator: the REST gateway (every call's signature checked, written from the
platform's side: md5, hmac = HMAC_MD5, and hmac-sha256 over the same string), trades in the
``taobao.trade.fullinfo.get`` shape, stock and shipment calls recorded, and the TMC queue served by
``taobao.tmc.messages.consume`` / ``confirm``: a consumed message that is not confirmed within
``redelivery_after`` seconds is delivered again.

Error codes are TOP's public ones: 25 invalid signature, 27 invalid session, 29 invalid app key,
31 invalid timestamp, 40 missing arguments, 41 invalid arguments, 15 remote service error
(with an ``isv.*`` sub code for a business refusal, ``isp.*`` for a platform failure).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from .core import ApiRequest, PlatformSimulator, Reply
from .traffic import ShowEvent, SimAfterSale, SimOrder

GMT8 = timezone(timedelta(hours=8))
TOPIC_OF = {"created": "taobao_trade_TradeCreate", "paid": "taobao_trade_TradeBuyerPay",
            "cancelled": "taobao_trade_TradeClose"}  # fmt: skip
TRADE_STATUS = {"pending_payment": "WAIT_BUYER_PAY", "paid": "WAIT_SELLER_SEND_GOODS",
                "cancelled": "TRADE_CLOSED_BY_TAOBAO", "shipped": "WAIT_BUYER_CONFIRM_GOODS",
                "refunded": "TRADE_CLOSED"}  # fmt: skip
# After-sales: the TMC topic of each step and the refund's status (the Refund object's values).
REFUND_TOPIC = {"requested": "RefundCreated", "modified": "RefundCreated",
                "agreed": "RefundSellerAgreeAgreement", "return_agreed": "RefundSellerAgreeAgreement",
                "goods_returned": "RefundBuyerReturnGoods", "refused": "RefundSellerRefuseAgreement",
                "succeeded": "RefundSuccess", "closed": "RefundClosed"}  # fmt: skip
REFUND_STATUS = {"requested": "WAIT_SELLER_AGREE", "modified": "WAIT_SELLER_AGREE", "agreed": "WAIT_SELLER_AGREE",
                 "return_agreed": "WAIT_BUYER_RETURN_GOODS", "goods_returned": "WAIT_SELLER_CONFIRM_GOODS",
                 "refused": "SELLER_REFUSE_BUYER", "succeeded": "SUCCESS", "closed": "CLOSED"}  # fmt: skip
KIND_OF = {"taobao.trade.fullinfo.get": "detail", "taobao.item.quantity.update": "stock",
           "taobao.logistics.offline.send": "ship", "taobao.tmc.messages.consume": "tmc",
           "taobao.tmc.messages.confirm": "tmc"}  # fmt: skip


def gmt8(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).astimezone(GMT8).strftime("%Y-%m-%d %H:%M:%S")


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


@dataclass
class Queued:
    message: dict[str, Any]
    delivered_at: float | None = None
    deliveries: int = 0
    confirmed: bool = False


class TaobaoSimulator(PlatformSimulator):
    platform = "taobao"

    def __init__(self, *, redelivery_after: float = 30.0, user_id: int = 141786152, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.redelivery_after = redelivery_after
        self.user_id = user_id
        self.tmc: list[Queued] = []
        self._tmc_ids = itertools.count(int(time.time() * 1000) * 1000)

    def new_order_id(self, rng: random.Random) -> str:
        return f"3{rng.randint(10**16, 10**17 - 1)}0"

    def new_message_id(self, rng: random.Random) -> str:
        return str(next(self._tmc_ids))

    # --- TMC --------------------------------------------------------------------------------------

    def emit(self, event: ShowEvent, order: SimOrder) -> None:
        status = {"created": "TradeCreate", "paid": "TradeBuyerPay", "cancelled": "TradeClose"}[event.kind]
        content = {"tid": int(order.order_id), "oid": int(order.order_id), "seller_nick": self.shop_id,
                   "buyer_nick": order.buyer.nick[0] + "***", "buyer_open_uid": "AAH" + order.buyer.open_id[:21],
                   "payment": yuan(order.total_fen), "status": status, "type": "guarantee_trade"}  # fmt: skip
        message = {"id": int(event.message_id), "topic": TOPIC_OF[event.kind], "pub_app_key": "12497914",
                   "pub_time": gmt8(event.at), "user_id": self.user_id, "user_nick": self.shop_id,
                   "content": json.dumps(content, separators=(",", ":"), ensure_ascii=False)}  # fmt: skip
        with self.lock:
            self.tmc.append(Queued(message))

    def emit_aftersale(self, sale: SimAfterSale, order: SimOrder) -> None:
        status = REFUND_STATUS[sale.phase]
        if sale.phase == "agreed":  # money alone agreed: the platform pays at once (no status between)
            status = "WAIT_SELLER_AGREE"
        content = {"refund_id": sale.refund_id, "tid": int(order.order_id), "oid": int(sale.line_id or order.order_id),
                   "refund_fee": yuan(sale.amount_fen), "refund_phase": "aftersale" if order.shipped_at else "onsale",
                   "has_good_return": sale.kind == "return", "status": status, "bill_type": "refund_bill",
                   "seller_nick": self.shop_id, "buyer_nick": order.buyer.nick[0] + "***",
                   "modified": gmt8(sale.updated_at)}  # fmt: skip
        message = {"id": int(sale.message_id), "topic": "taobao_refund_" + REFUND_TOPIC[sale.phase],
                   "pub_app_key": "12497914", "pub_time": gmt8(sale.updated_at), "user_id": self.user_id,
                   "user_nick": self.shop_id,
                   "content": json.dumps(content, separators=(",", ":"), ensure_ascii=False)}  # fmt: skip
        with self.lock:
            self.tmc.append(Queued(message))

    def extra_state(self) -> dict[str, Any]:
        with self.lock:
            return {
                "queued": len(self.tmc),
                "confirmed": sum(q.confirmed for q in self.tmc),
                "unconfirmed": sum(not q.confirmed for q in self.tmc),
                "redeliveries": sum(max(0, q.deliveries - 1) for q in self.tmc),
            }

    def _consume(self, params: dict[str, str]) -> Reply:
        try:
            quantity = int(params.get("quantity") or 100)
        except ValueError:
            return self._error(41, "Invalid Arguments", "isv.invalid-parameter:quantity")
        if not 10 <= quantity <= 200:
            return self._error(41, "Invalid Arguments", "isv.invalid-parameter:quantity")
        now = time.time()
        out: list[dict[str, Any]] = []
        with self.lock:
            for queued in self.tmc:
                if len(out) >= quantity:
                    break
                due = queued.delivered_at is None or now - queued.delivered_at >= self.redelivery_after
                if not queued.confirmed and due:
                    queued.delivered_at, queued.deliveries = now, queued.deliveries + 1
                    out.append(queued.message)
        return self._ok("taobao.tmc.messages.consume", {"messages": {"tmc_message": out}} if out else {})

    def _confirm(self, params: dict[str, str]) -> Reply:
        ids = [i for i in (params.get("s_message_ids") or "").split(",") if i]
        if not ids or len(ids) > 200:
            return self._error(41, "Invalid Arguments", "isv.invalid-parameter:s_message_ids")
        wanted = set(ids)
        with self.lock:
            for queued in self.tmc:
                if str(queued.message["id"]) in wanted:
                    queued.confirmed = True
        return self._ok("taobao.tmc.messages.confirm", {"is_success": True})

    # --- API --------------------------------------------------------------------------------------

    def api_method_of(self, request: ApiRequest) -> str:
        return {**request.query, **request.form}.get("method", "")

    def error_body(self, message: str) -> bytes:
        return self._error(15, "Remote service error", "isp.remote-service-unavailable", message).body

    def _error(self, code: int, msg: str, sub_code: str = "", sub_msg: str = "") -> Reply:
        body: dict[str, Any] = {"code": code, "msg": msg, "request_id": f"{random.getrandbits(40):x}"}  # noqa: S311
        if sub_code:
            body |= {"sub_code": sub_code, "sub_msg": sub_msg or sub_code}
        return Reply.of({"error_response": body})

    def _ok(self, method: str, payload: dict[str, Any]) -> Reply:
        key = method.removeprefix("taobao.").replace(".", "_") + "_response"
        return Reply.of({key: payload | {"request_id": f"{random.getrandbits(40):x}"}})  # noqa: S311

    def _verify(self, params: dict[str, str]) -> Reply | None:
        for key, code in (("method", 21), ("sign", 24), ("session", 26), ("app_key", 28), ("timestamp", 30)):
            if not params.get(key):
                return self._error(code, f"Missing {key}")
        if params["app_key"] != self.app_key:
            return self._error(29, "Invalid App Key")
        text = "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign" and params[k] != "")
        secret = self.app_secret.encode()
        method = params.get("sign_method") or "md5"
        if method == "md5":
            expected = hashlib.md5(secret + text.encode() + secret).hexdigest().upper()  # noqa: S324 - TOP recipe
        elif method == "hmac":
            expected = hmac.new(secret, text.encode(), hashlib.md5).hexdigest().upper()
        elif method == "hmac-sha256":
            expected = hmac.new(secret, text.encode(), hashlib.sha256).hexdigest().upper()
        else:
            return self._error(41, "Invalid Arguments", "isv.invalid-parameter:sign_method")
        if not hmac.compare_digest(expected, params["sign"]):
            return self._error(25, "Invalid signature")
        if params["session"] != self.access_token:
            return self._error(27, "Invalid session", "invalid-sessionkey")
        if self.timestamp_tolerance is not None:
            try:
                sent = datetime.strptime(params["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=GMT8)
            except ValueError:
                return self._error(31, "Invalid timestamp")
            if abs(time.time() - sent.timestamp()) > self.timestamp_tolerance:
                return self._error(31, "Invalid timestamp")
        return None

    def api(self, request: ApiRequest) -> Reply:
        params = {**request.query, **request.form}
        method = params.get("method", "")
        kind = KIND_OF.get(method, "other")
        common = ("app_key", "session", "timestamp", "v", "format", "sign_method", "sign")
        app_params = {k: v for k, v in params.items() if k not in common}
        refused = self._verify(params)
        if refused is not None:
            self.record(kind, method, app_params, accepted=False,
                        error=str(json.loads(refused.body)["error_response"]["code"]))  # fmt: skip
            return refused
        handler = {"taobao.trade.fullinfo.get": self._detail, "taobao.item.quantity.update": self._stock,
                   "taobao.logistics.offline.send": self._ship, "taobao.tmc.messages.consume": self._consume,
                   "taobao.tmc.messages.confirm": self._confirm}.get(method)  # fmt: skip
        reply = handler(params) if handler else self._error(22, "Invalid Method")
        error = json.loads(reply.body).get("error_response")
        self.record(kind, method, app_params, accepted=error is None, error=str(error["code"]) if error else None)
        return reply

    def _detail(self, params: dict[str, str]) -> Reply:
        if not params.get("tid") or not params.get("fields"):
            return self._error(40, "Missing Required Arguments", "isv.missing-parameter:tid,fields")
        with self.lock:
            order = self.orders.get(params["tid"])
            if order is None:
                return self._error(15, "Remote service error", "isv.trade-not-exist", "交易不存在")
            return self._ok("taobao.trade.fullinfo.get", {"trade": self.render_trade(order)})

    def render_trade(self, order: SimOrder) -> dict[str, Any]:
        b = order.buyer
        status = TRADE_STATUS[order.status]
        return {
            "tid": int(order.order_id), "tid_str": order.order_id, "status": status, "type": "fixed",
            "seller_nick": self.shop_id, "buyer_nick": b.nick[0] + "***", "buyer_open_uid": "AAH" + b.open_id[:21],
            "payment": yuan(order.total_fen), "total_fee": yuan(order.goods_fen), "post_fee": yuan(order.freight_fen),
            "discount_fee": "0.00", "created": gmt8(order.created_at),
            **({"pay_time": gmt8(order.paid_at)} if order.paid_at else {}),
            **({"consign_time": gmt8(order.shipped_at)} if order.shipped_at else {}),
            "modified": gmt8(order.updated_at),
            "receiver_name": b.masked_name, "receiver_mobile": f"*******{b.mobile[-4:]}", "receiver_phone": "",
            "receiver_state": b.province, "receiver_city": b.city, "receiver_district": b.district,
            "receiver_town": "", "receiver_address": f"{b.street}**号", "receiver_zip": "000000",
            "orders": {"order": [
                {"oid": int(line.line_id), "num_iid": int(line.sku.item_id), "sku_id": line.sku.sku_id,
                 "outer_sku_id": line.sku.code, "outer_iid": "", "title": f"直播间爆款 {line.sku.code}",
                 "num": line.quantity, "price": yuan(line.sku.price_fen), "total_fee": yuan(line.amount_fen),
                 "payment": yuan(line.amount_fen), "status": status, "refund_status": "NO_REFUND"}
                for line in order.lines
            ]},
        }  # fmt: skip

    def _stock(self, params: dict[str, str]) -> Reply:
        num_iid, quantity, stock_type = params.get("num_iid"), params.get("quantity", ""), params.get("type", "1")
        if not num_iid or not quantity.lstrip("-").isdigit() or stock_type not in ("1", "2"):
            return self._error(40, "Missing Required Arguments", "isv.missing-parameter:num_iid,quantity")
        sku_id, outer_id = params.get("sku_id"), params.get("outer_id")
        with self.lock:
            known = self.skus.get(sku_id or "")
            key = known.code if known else (outer_id if not sku_id and outer_id else sku_id or num_iid)
            value = int(quantity) if stock_type == "1" else self.stock.get(key, 0) + int(quantity)
            if value < 0:
                return self._error(15, "Remote service error", "isv.item-quantity-invalid", "库存不能为负")
            self.stock[key] = value
        return self._ok("taobao.item.quantity.update",
                        {"item": {"num_iid": int(num_iid), "num": value, "modified": gmt8(time.time())}})  # fmt: skip

    def _ship(self, params: dict[str, str]) -> Reply:
        tid, waybill, company = params.get("tid"), params.get("out_sid"), params.get("company_code")
        if not tid or not waybill or not company:
            return self._error(40, "Missing Required Arguments", "isv.missing-parameter:tid,out_sid,company_code")
        with self.lock:
            order = self.orders.get(tid)
            if order is None:
                return self._error(15, "Remote service error", "isv.trade-not-exist", "交易不存在")
            if order.status == "shipped" and order.waybill == (company, waybill):
                return self._ok("taobao.logistics.offline.send", {"shipping": {"is_success": True}})
            if order.status != "paid":
                return self._error(15, "Remote service error", "isv.logistics-trade-status-error", "交易状态不允许发货")
            order.status, order.shipped_at, order.waybill = "shipped", time.time(), (company, waybill)
            order.updated_at = order.shipped_at
        return self._ok("taobao.logistics.offline.send", {"shipping": {"is_success": True}})
