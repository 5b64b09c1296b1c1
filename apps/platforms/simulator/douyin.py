"""Douyin 抖店 simulator: the open API gateway (signature checked on every call, written here
from the platform's side, independently of ``protocol.douyin``), order details in the documented
shape, stock and shipment calls recorded, and signed JSON-array pushes to a push URL.

Error codes in its envelopes are illustrative (the real catalogue is not in our sources):
30001 bad access token, 30002 bad signature, 40004 bad parameters, 50002 business refusal,
20000 service unavailable (the one the client treats as transient).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
from datetime import datetime
from typing import Any

from .core import ApiRequest, PlatformSimulator, Reply
from .delivery import Pusher
from .traffic import ShowEvent, SimAfterSale, SimOrder

TAG_OF = {"created": "100", "paid": "101", "cancelled": "106"}
STATUS_OF = {"pending_payment": 1, "paid": 2, "cancelled": 4, "shipped": 3, "refunded": 4}
MAIN_STATUS_OF = {"refunded": 39}
# After-sales: the tag of each step (PLATFORMS.md) and an ``aftersale_status`` value for it (the
# platform's catalogue of those values is not in our sources: illustrative).
AFTERSALE_TAG = {"requested": "200", "agreed": "201", "return_agreed": "202", "goods_returned": "203",
                 "refused": "204", "succeeded": "206", "closed": "207", "modified": "208"}  # fmt: skip
AFTERSALE_STATUS = {"requested": 6, "agreed": 12, "return_agreed": 11, "goods_returned": 7, "refused": 27,
                    "succeeded": 12, "closed": 28, "modified": 6}  # fmt: skip
SIGN_ERROR, TOKEN_ERROR, PARAM_ERROR, BUSINESS_ERROR, UNAVAILABLE = 30002, 30001, 40004, 50002, 20000


def _cipher(value: str, secret: str) -> str:
    return base64.b64encode(hashlib.sha256((secret + value).encode()).digest()[:18]).decode()


class DouyinSimulator(PlatformSimulator):
    platform = "douyin"

    def __init__(
        self,
        *,
        push_sign_method: str = "md5",
        wrap_detail: bool = True,
        push_workers: int = 1,
        push_retries: int = 3,
        push_retry_delay: float = 0.2,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.push_sign_method = push_sign_method
        self.wrap_detail = wrap_detail
        self.idempotent_ids: dict[str, dict[str, Any]] = {}
        self.pusher: Pusher | None = None
        if self.push_url:
            self.pusher = Pusher(
                self.push_url, self._acked, self.stopping, self.spawn, workers=push_workers, retries=push_retries,
                retry_delay=push_retry_delay,
            )  # fmt: skip

    def start(self) -> DouyinSimulator:
        super().start()
        if self.pusher:
            self.pusher.start()
        return self

    # --- ids ------------------------------------------------------------------------------------

    def new_order_id(self, rng: random.Random) -> str:
        return f"69{rng.randint(10**15, 10**16 - 1)}0"

    def new_message_id(self, rng: random.Random) -> str:
        return f"70{rng.randint(10**16, 10**17 - 1)}"

    # --- pushes ---------------------------------------------------------------------------------

    @staticmethod
    def _acked(status: int, body: bytes) -> bool:
        try:
            answer = json.loads(body)
        except ValueError:
            return False
        return status == 200 and isinstance(answer, dict) and answer.get("code") == 0

    def push_headers(self, body: bytes) -> dict[str, str]:
        text = self.app_key.encode() + body + self.app_secret.encode()
        if self.push_sign_method == "hmac-sha256":
            sign = hmac.new(self.app_secret.encode(), text, hashlib.sha256).hexdigest()
            return {"app-id": self.app_key, "event-sign": sign, "sign-method": "hmac-sha256",
                    "Content-Type": "application/json"}  # fmt: skip
        sign = hashlib.md5(text).hexdigest()  # noqa: S324 - the platform's recipe
        return {"app-id": self.app_key, "event-sign": sign, "Content-Type": "application/json"}

    def push_message(self, event: ShowEvent, order: SimOrder) -> dict[str, Any]:
        data: dict[str, Any] = {
            "p_id": int(order.order_id),
            "s_ids": [int(line.line_id) for line in order.lines],
            "shop_id": int(self.shop_id),
        }
        if event.kind == "created":
            data |= {"order_status": 1, "order_type": 0, "biz": 2, "create_time": int(order.created_at)}
        elif event.kind == "paid":
            data |= {"order_status": 105, "order_type": 0, "biz": 2, "pay_type": 1, "pay_time": int(event.at),
                     "pay_amount": order.total_fen}  # fmt: skip
        else:
            data |= {"order_status": 4, "cancel_reason": "买家取消", "cancel_time": int(event.at)}
        return {"tag": TAG_OF[event.kind], "msg_id": event.message_id, "data": json.dumps(data, separators=(",", ":"))}

    def emit(self, event: ShowEvent, order: SimOrder) -> None:
        self.send_push([self.push_message(event, order)])

    def aftersale_message(self, sale: SimAfterSale, order: SimOrder) -> dict[str, Any]:
        tag = AFTERSALE_TAG[sale.phase]
        if sale.phase == "refused" and sale.kind == "return":
            tag = "205"  # ReturnApplyRefused
        data: dict[str, Any] = {
            "aftersale_id": int(sale.refund_id), "aftersale_status": AFTERSALE_STATUS[sale.phase],
            # 0 return, 1 refund after shipping, 2 the whole order before shipping (jinritemai-go)
            "aftersale_type": 0 if sale.kind == "return" else (1 if order.shipped_at else 2),
            "s_id": int(sale.line_id or order.order_id), "p_id": int(order.order_id), "shop_id": int(self.shop_id),
            "refund_amount": sale.amount_fen, "refund_post_amount": 0, "reason_code": 1,
            "apply_time": int(sale.created_at), "update_time": int(sale.updated_at),
        }  # fmt: skip
        if sale.phase == "succeeded":
            data["success_time"] = int(sale.updated_at)
        return {"tag": tag, "msg_id": sale.message_id, "data": json.dumps(data, separators=(",", ":"))}

    def emit_aftersale(self, sale: SimAfterSale, order: SimOrder) -> None:
        self.send_push([self.aftersale_message(sale, order)])

    def send_push(self, messages: list[dict[str, Any]]) -> None:
        if self.pusher is None:
            raise RuntimeError("no push URL configured")
        body = json.dumps(messages, separators=(",", ":"), ensure_ascii=False).encode()
        self.pusher.send(body, self.push_headers(body), [str(m.get("msg_id")) for m in messages])

    def send_verification(self) -> None:
        """The URL-verification push (tag "0"); the receiver must answer ``{"code":0,"msg":"success"}``."""
        self.send_push([{"tag": "0", "msg_id": "0", "data": datetime.now().astimezone().isoformat()}])

    def wait_idle(self, timeout: float) -> None:
        if self.pusher and not self.pusher.wait_idle(timeout):
            raise TimeoutError("pushes still pending")

    def extra_state(self) -> dict[str, Any]:
        return self.pusher.summary() if self.pusher else {}

    def stop(self) -> None:
        if self.pusher:
            self.pusher.stop()
        super().stop()

    # --- API --------------------------------------------------------------------------------------

    def api_method_of(self, request: ApiRequest) -> str:
        return request.path.strip("/").replace("/", ".")

    def error_body(self, message: str) -> bytes:
        return self._envelope(UNAVAILABLE, message, "isp.service-unavailable").body

    def _envelope(self, code: int, msg: str, sub_code: str = "", data: Any = None) -> Reply:
        return Reply.of({"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": msg if code != 10000 else "",
                         "log_id": f"{int(time.time() * 1000)}", "data": data if data is not None else {}})  # fmt: skip

    def _verify(self, request: ApiRequest) -> Reply | None:
        q = request.query
        required = ("app_key", "method", "access_token", "timestamp", "v", "sign")
        if any(not q.get(k) for k in required):
            return self._envelope(PARAM_ERROR, "缺少公共参数", "isv.missing-parameter")
        if q["method"] != self.api_method_of(request):
            return self._envelope(PARAM_ERROR, "method 与路径不符", "isv.parameter-invalid")
        if q["app_key"] != self.app_key:
            return self._envelope(SIGN_ERROR, "app_key 不存在", "isv.app-key-invalid")
        text = (
            self.app_secret + "app_key" + q["app_key"] + "method" + q["method"] + "param_json"
            + request.body.decode("utf-8", "replace") + "timestamp" + q["timestamp"] + "v" + q["v"] + self.app_secret
        )  # fmt: skip
        method = q.get("sign_method") or "md5"
        if method == "hmac-sha256":
            expected = hmac.new(self.app_secret.encode(), text.encode(), hashlib.sha256).hexdigest()
        elif method == "md5":
            expected = hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - the platform's recipe
        else:
            return self._envelope(PARAM_ERROR, "sign_method 无效", "isv.parameter-invalid")
        if not hmac.compare_digest(expected, q["sign"].lower()):
            return self._envelope(SIGN_ERROR, "签名校验失败", "isv.sign-check-failure")
        if q["access_token"] != self.access_token:
            return self._envelope(TOKEN_ERROR, "access_token 已过期或无效", "isv.access-token-invalid")
        if self.timestamp_tolerance is not None:
            if not q["timestamp"].isdigit() or abs(time.time() - int(q["timestamp"])) > self.timestamp_tolerance:
                return self._envelope(PARAM_ERROR, "timestamp 无效", "isv.timestamp-invalid")
        return None

    def api(self, request: ApiRequest) -> Reply:
        method = self.api_method_of(request)
        refused = self._verify(request)
        try:
            params = json.loads(request.body or b"{}")
        except ValueError:
            params = {"_raw": request.body.decode("utf-8", "replace")}
        kind = {"order.orderDetail": "detail", "sku.syncStock": "stock", "order.logisticsAdd": "ship"}.get(
            method, "other"
        )
        if refused is not None:
            self.record(kind, method, params, accepted=False, error=json.loads(refused.body)["sub_code"])
            return refused
        if not isinstance(params, dict):
            return self._envelope(PARAM_ERROR, "param_json 不是对象", "isv.parameter-invalid")
        handler = {"detail": self._detail, "stock": self._sync_stock, "ship": self._ship}.get(kind)
        reply = handler(params) if handler else self._envelope(PARAM_ERROR, "未知 method", "isv.method-invalid")
        answer = json.loads(reply.body)
        self.record(kind, method, params, accepted=answer["code"] == 10000, error=answer.get("sub_code") or None)
        return reply

    def _detail(self, params: dict[str, Any]) -> Reply:
        with self.lock:
            order = self.orders.get(str(params.get("shop_order_id")))
            if order is None:
                return self._envelope(BUSINESS_ERROR, "订单不存在", "isv.order-not-found")
            detail = self.render_detail(order)
        return self._envelope(10000, "success", data={"shop_order_detail": detail} if self.wrap_detail else detail)

    def render_detail(self, order: SimOrder) -> dict[str, Any]:
        b = order.buyer
        status = STATUS_OF[order.status]
        addr = {"province": {"name": b.province, "id": "33"}, "city": {"name": b.city, "id": "3301"},
                "town": {"name": b.district, "id": "330106"}, "street": {"name": "", "id": ""}}  # fmt: skip
        return {
            "order_id": order.order_id, "shop_id": int(self.shop_id), "order_status": status,
            "main_status": MAIN_STATUS_OF.get(order.status, status),
            "doudian_open_id": "1@#" + _cipher(b.open_id, self.app_secret), "open_id": "",
            "order_amount": order.total_fen, "pay_amount": order.total_fen, "post_amount": order.freight_fen,
            "create_time": int(order.created_at), "pay_time": int(order.paid_at or 0),
            "update_time": int(order.updated_at), "ship_time": int(order.shipped_at or 0), "finish_time": 0,
            "post_receiver": "", "post_tel": "", "post_addr": addr | {"detail": ""},
            "encrypt_post_receiver": f"#{b.masked_name}#{_cipher(b.name, self.app_secret)}#*#",
            "encrypt_post_tel": f"${b.masked_mobile}${_cipher(b.mobile, self.app_secret)}$*$",
            "encrypt_detail": f"#{b.street}****#{_cipher(b.detail, self.app_secret)}#*#",
            "mask_post_receiver": b.masked_name, "mask_post_tel": b.masked_mobile,
            "mask_post_addr": addr | {"detail": f"{b.street}****"},
            "sku_order_list": [
                {"order_id": line.line_id, "parent_order_id": order.order_id, "sku_id": int(line.sku.sku_id),
                 "product_id": int(line.sku.item_id), "code": line.sku.code, "out_sku_id": "",
                 "item_num": line.quantity,
                 "goods_price": line.sku.price_fen, "origin_amount": line.amount_fen, "sum_amount": line.amount_fen,
                 "pay_amount": line.amount_fen, "order_status": status}
                for line in order.lines
            ],
        }  # fmt: skip

    def _stock_key(self, params: dict[str, Any]) -> str | None:
        if params.get("code"):
            return str(params["code"])
        sku_id = params.get("sku_id") or params.get("out_sku_id")
        if sku_id:
            known = self.skus.get(str(sku_id))
            return known.code if known else str(sku_id)
        return None

    def _sync_stock(self, params: dict[str, Any]) -> Reply:
        key = self._stock_key(params)
        stock_num = params.get("stock_num")
        incremental = params.get("incremental", False)
        if key is None or isinstance(stock_num, bool) or not isinstance(stock_num, int) or stock_num < 0:
            return self._envelope(PARAM_ERROR, "sku_id/code 与 stock_num 必填", "isv.parameter-invalid")
        idempotent_id = params.get("idempotent_id")
        if incremental and not idempotent_id:
            return self._envelope(PARAM_ERROR, "增量更新需要 idempotent_id", "isv.parameter-invalid")
        with self.lock:
            if idempotent_id and idempotent_id in self.idempotent_ids:
                return self._envelope(10000, "success")
            if idempotent_id:
                self.idempotent_ids[idempotent_id] = params
            self.stock[key] = self.stock.get(key, 0) + stock_num if incremental else stock_num
        return self._envelope(10000, "success")

    def _ship(self, params: dict[str, Any]) -> Reply:
        company, waybill = params.get("company_code"), params.get("logistics_code")
        if not company or not waybill:
            return self._envelope(PARAM_ERROR, "company_code 与 logistics_code 必填", "isv.parameter-invalid")
        with self.lock:
            order = self.orders.get(str(params.get("order_id")))
            if order is None:
                return self._envelope(BUSINESS_ERROR, "订单不存在", "isv.order-not-found")
            if order.status == "shipped" and order.waybill == (company, waybill):
                return self._envelope(10000, "success")
            if order.status != "paid":
                return self._envelope(BUSINESS_ERROR, "订单状态不允许发货", "isv.order-status-invalid")
            order.status, order.shipped_at, order.waybill = "shipped", time.time(), (str(company), str(waybill))
            order.updated_at = order.shipped_at
        return self._envelope(10000, "success")
