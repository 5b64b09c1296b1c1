"""Kuaishou 快手小店 simulator: the open API (signature checked on every call, written from the
platform's side), one-item orders in the ``open.order.detail`` shape, incremental stock and
shipment calls recorded, and AES-encrypted pushes plus heartbeats POSTed to a push URL, retried
up to 3 times unless answered ``{"result":1}``.

Error results in its envelopes are illustrative: 24 bad signature, 25 bad access token, 26 bad app
key, 40 bad parameters, 50 business refusal, 500 service unavailable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .core import ApiRequest, PlatformSimulator, Reply
from .delivery import Pusher
from .traffic import ShowEvent, SimAfterSale, SimOrder

EVENT_OF = {"created": "kwaishop_order_addOrder", "paid": "kwaishop_order_paySuccess",
            "cancelled": "kwaishop_order_orderFail"}  # fmt: skip
STATUS_OF = {"pending_payment": 10, "paid": 30, "cancelled": 80, "shipped": 40, "refunded": 80}
# After-sales: the refund status of each step and ``handlingWay`` (our reading; unconfirmed, see
# ``protocol.aftersales``).
REFUND_STATUS = {"requested": 10, "modified": 10, "refused": 11, "agreed": 50, "return_agreed": 30,
                 "goods_returned": 40, "succeeded": 60, "closed": 70}  # fmt: skip
HANDLING_WAY = {"return": 1, "refund": 10}
SIGN_ERROR, TOKEN_ERROR, APP_ERROR, PARAM_ERROR, BUSINESS_ERROR, UNAVAILABLE = 24, 25, 26, 40, 50, 500
CHANGE_INCREASE, CHANGE_DECREASE = 1, 2  # as our client assumes; unconfirmed on the real platform


def encrypt(plaintext: bytes, msg_secret: str) -> bytes:
    """AES-CBC with key = base64decode(msgSecret), 16 zero bytes IV, PKCS#7; base64 text."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(base64.b64decode(msg_secret)), modes.CBC(bytes(16))).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize())


class KuaishouSimulator(PlatformSimulator):
    platform = "kuaishou"
    single_line_orders = True

    def __init__(
        self,
        *,
        msg_secret: str,
        heartbeat_interval: float | None = None,
        push_workers: int = 1,
        push_retries: int = 3,
        push_retry_delay: float = 0.2,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        base64.b64decode(msg_secret, validate=True)
        self.msg_secret = msg_secret
        self.heartbeat_interval = heartbeat_interval
        self.pusher: Pusher | None = None
        if self.push_url:
            self.pusher = Pusher(
                self.push_url, self._acked, self.stopping, self.spawn, workers=push_workers, retries=push_retries,
                retry_delay=push_retry_delay,
            )  # fmt: skip
        self._heartbeats = 0

    def start(self) -> KuaishouSimulator:
        super().start()
        if self.pusher:
            self.pusher.start()
            if self.heartbeat_interval:
                self.spawn(self._heartbeat_loop, name="kuaishou-sim-heartbeat")
        return self

    def stop(self) -> None:
        if self.pusher:
            self.pusher.stop()
        super().stop()

    def new_order_id(self, rng: random.Random) -> str:
        return f"26{rng.randint(10**13, 10**14 - 1)}"

    def new_line_id(self, order_id: str, index: int) -> str:
        return order_id

    def new_message_id(self, rng: random.Random) -> str:
        return f"{rng.randint(10, 99)}_{rng.randint(10**12, 10**13 - 1)}"

    # --- pushes ---------------------------------------------------------------------------------

    @staticmethod
    def _acked(status: int, body: bytes) -> bool:
        try:
            answer = json.loads(body)
        except ValueError:
            return False
        return isinstance(answer, dict) and answer.get("result") == 1

    def message(self, event: ShowEvent, order: SimOrder) -> dict[str, Any]:
        oid = int(order.order_id)
        at_ms = int(event.at * 1000)
        if event.kind == "created":
            info: dict[str, Any] = {
                "oid": oid,
                "sellerId": int(self.shop_id),
                "openId": order.buyer.open_id,
                "buyerOpenId": order.buyer.open_id,
                "createTime": int(order.created_at * 1000),
            }
        else:
            info = {"oid": oid, "sellerId": int(self.shop_id), "status": STATUS_OF[event.kind], "updateTime": at_ms}
        return {
            "eventId": f"{random.randint(100, 999)}_{event.message_id}",  # noqa: S311 - simulated
            "msgId": event.message_id, "bizId": oid, "userId": int(self.shop_id), "openId": order.buyer.open_id,
            "appKey": self.app_key, "event": EVENT_OF[event.kind], "info": json.dumps(info, separators=(",", ":")),
            "status": 2, "createTime": int(order.created_at * 1000), "updateTime": at_ms, "test": False,
        }  # fmt: skip

    def send_message(self, message: dict[str, Any]) -> None:
        if self.pusher is None:
            raise RuntimeError("no push URL configured")
        body = encrypt(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode(), self.msg_secret)
        self.pusher.send(body, {"Content-Type": "text/plain; charset=utf-8"}, [str(message["msgId"])])

    def emit(self, event: ShowEvent, order: SimOrder) -> None:
        self.send_message(self.message(event, order))

    def aftersale_message(self, sale: SimAfterSale, order: SimOrder) -> dict[str, Any]:
        oid = int(order.order_id)
        at_ms = int(sale.updated_at * 1000)
        first = sale.phase == "requested" and sale.created_at == sale.updated_at
        info = {"orderId": oid, "refundId": int(sale.refund_id), "handlingWay": HANDLING_WAY[sale.kind],
                "status": REFUND_STATUS[sale.phase], "refundFee": sale.amount_fen,
                "createTime": int(sale.created_at * 1000), "updateTime": at_ms}  # fmt: skip
        return {
            "eventId": f"{random.randint(100, 999)}_{sale.message_id}",  # noqa: S311 - simulated
            "msgId": sale.message_id, "bizId": oid, "userId": int(self.shop_id), "openId": order.buyer.open_id,
            "appKey": self.app_key,
            "event": "kwaishop_aftersales_addRefund" if first else "kwaishop_aftersales_updateRefund",
            "info": json.dumps(info, separators=(",", ":")), "status": 2,
            "createTime": int(sale.created_at * 1000), "updateTime": at_ms, "test": False,
        }  # fmt: skip

    def emit_aftersale(self, sale: SimAfterSale, order: SimOrder) -> None:
        self.send_message(self.aftersale_message(sale, order))

    def send_heartbeat(self) -> None:
        self._heartbeats += 1
        now_ms = int(time.time() * 1000)
        heartbeat_id = f"hb_{now_ms}_{self._heartbeats}"
        self.send_message(
            {"eventId": heartbeat_id, "msgId": heartbeat_id, "bizId": 0, "userId": int(self.shop_id),
             "appKey": self.app_key, "event": "", "info": "", "status": 0, "createTime": now_ms,
             "updateTime": now_ms, "test": True}
        )  # fmt: skip

    def _heartbeat_loop(self) -> None:
        while self.heartbeat_interval and not self.stopping.wait(self.heartbeat_interval):
            self.send_heartbeat()

    def wait_idle(self, timeout: float) -> None:
        if self.pusher and not self.pusher.wait_idle(timeout):
            raise TimeoutError("pushes still pending")

    def extra_state(self) -> dict[str, Any]:
        return self.pusher.summary() if self.pusher else {}

    # --- API --------------------------------------------------------------------------------------

    def api_method_of(self, request: ApiRequest) -> str:
        return request.path.strip("/").replace("/", ".")

    def error_body(self, message: str) -> bytes:
        return self._error(UNAVAILABLE, message).body

    def _error(self, result: int, message: str) -> Reply:
        return Reply.of({"result": result, "error_msg": message, "code": str(result), "msg": message,
                         "request_id": str(int(time.time() * 1000))})  # fmt: skip

    def _ok(self, data: Any = None) -> Reply:
        return Reply.of({"result": 1, "msg": "success", "request_id": str(int(time.time() * 1000)), "data": data})

    def _verify(self, request: ApiRequest, params: dict[str, str]) -> Reply | None:
        required = ("appkey", "method", "version", "param", "access_token", "timestamp", "signMethod", "sign")
        if any(not params.get(k) for k in required):
            return self._error(PARAM_ERROR, "缺少公共参数")
        if params["method"] != self.api_method_of(request):
            return self._error(PARAM_ERROR, "method 与路径不符")
        if params["appkey"] != self.app_key:
            return self._error(APP_ERROR, "appkey 无效")
        text = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign") + f"&signSecret={self.app_secret}"
        if params["signMethod"] == "MD5":
            expected = hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - the platform's recipe
        elif params["signMethod"] == "HMAC_SHA256":
            digest = hmac.new(self.app_secret.encode(), text.encode(), hashlib.sha256).digest()
            expected = base64.b64encode(digest).decode()
        else:
            return self._error(PARAM_ERROR, "signMethod 无效")
        if not hmac.compare_digest(expected, params["sign"]):
            return self._error(SIGN_ERROR, "签名验证失败")
        if params["access_token"] != self.access_token:
            return self._error(TOKEN_ERROR, "access_token 无效")
        if self.timestamp_tolerance is not None:
            stamp = params["timestamp"]
            if not stamp.isdigit() or abs(time.time() - int(stamp) / 1000) > self.timestamp_tolerance:
                return self._error(PARAM_ERROR, "timestamp 无效")
        return None

    def api(self, request: ApiRequest) -> Reply:
        params = {**request.query, **request.form}
        method = self.api_method_of(request)
        kind = {"open.order.detail": "detail", "open.item.sku.stock.update": "stock",
                "open.seller.order.goods.deliver": "ship"}.get(method, "other")  # fmt: skip
        try:
            param = json.loads(params.get("param") or "{}")
        except ValueError:
            param = None
        refused = self._verify(request, params)
        if refused is not None:
            self.record(kind, method, param or {}, accepted=False, error=json.loads(refused.body)["error_msg"])
            return refused
        if not isinstance(param, dict):
            return self._error(PARAM_ERROR, "param 不是 JSON 对象")
        handler = {"detail": self._detail, "stock": self._stock, "ship": self._ship}.get(kind)
        reply = handler(param) if handler else self._error(PARAM_ERROR, "未知 method")
        answer = json.loads(reply.body)
        self.record(kind, method, param, accepted=answer["result"] == 1, error=answer.get("error_msg"))
        return reply

    def _detail(self, param: dict[str, Any]) -> Reply:
        with self.lock:
            order = self.orders.get(str(param.get("oid")))
            if order is None:
                return self._error(BUSINESS_ERROR, "订单不存在")
            return self._ok(self.render_detail(order))

    def render_detail(self, order: SimOrder) -> dict[str, Any]:
        b, (line,) = order.buyer, order.lines
        return {
            "orderBaseInfo": {
                "oid": int(order.order_id), "status": STATUS_OF[order.status], "buyerOpenId": b.open_id,
                "buyerNick": b.nick, "sellerOpenId": f"seller_{self.shop_id}", "sellerNick": "快手小店",
                "totalFee": order.goods_fen, "expressFee": order.freight_fen, "discountFee": 0,
                "createTime": int(order.created_at * 1000), "payTime": int((order.paid_at or 0) * 1000),
                "sendTime": int((order.shipped_at or 0) * 1000), "updateTime": int(order.updated_at * 1000),
                "remark": "", "payType": 1,
            },
            "orderItemInfo": {
                "skuId": int(line.sku.sku_id), "relSkuId": 0, "itemId": int(line.sku.item_id), "relItemId": 0,
                "skuNick": line.sku.code, "goodsCode": "", "num": line.quantity, "price": line.sku.price_fen,
                "originalPrice": line.sku.price_fen, "itemTitle": f"直播间爆款 {line.sku.code}",
            },
            "orderAddress": {
                "encryptedConsignee": "#" + base64.b64encode(hashlib.sha256(b.name.encode()).digest()[:16]).decode(),
                "encryptedMobile": "#" + base64.b64encode(hashlib.sha256(b.mobile.encode()).digest()[:16]).decode(),
                "encryptedAddress": "#" + base64.b64encode(hashlib.sha256(b.detail.encode()).digest()[:24]).decode(),
                "desensitiseConsignee": b.masked_name, "desensitiseMobile": b.masked_mobile,
                "desensitiseAddress": f"{b.street}****", "province": b.province, "city": b.city,
                "district": b.district, "town": "",
            },
            "orderLogisticsInfo": [{"expressCode": int(order.waybill[0]), "expressNo": order.waybill[1]}]
            if order.waybill else [],
        }  # fmt: skip

    def _stock(self, param: dict[str, Any]) -> Reply:
        sku_id, change, change_type = param.get("skuId"), param.get("skuChangeStock"), param.get("changeType")
        if (not param.get("kwaiItemId") or not sku_id or isinstance(change, bool) or not isinstance(change, int)
                or change <= 0 or change_type not in (CHANGE_INCREASE, CHANGE_DECREASE)):  # fmt: skip
            return self._error(PARAM_ERROR, "kwaiItemId/skuId/skuChangeStock/changeType 无效")
        with self.lock:
            known = self.skus.get(str(sku_id))
            key = known.code if known else str(sku_id)
            current = self.stock.get(key, 0)
            new = current + change if change_type == CHANGE_INCREASE else current - change
            if new < 0:
                return self._error(BUSINESS_ERROR, "库存不足")
            self.stock[key] = new
        return self._ok()

    def _ship(self, param: dict[str, Any]) -> Reply:
        code, waybill = param.get("expressCode"), param.get("expressNo")
        if isinstance(code, bool) or not isinstance(code, int) or not waybill:
            return self._error(PARAM_ERROR, "expressCode/expressNo 无效")
        with self.lock:
            order = self.orders.get(str(param.get("orderId")))
            if order is None:
                return self._error(BUSINESS_ERROR, "订单不存在")
            if order.status == "shipped" and order.waybill == (str(code), str(waybill)):
                return self._ok()
            if order.status != "paid":
                return self._error(BUSINESS_ERROR, "订单状态不允许发货")
            order.status, order.shipped_at, order.waybill = "shipped", time.time(), (str(code), str(waybill))
            order.updated_at = order.shipped_at
        return self._ok()
