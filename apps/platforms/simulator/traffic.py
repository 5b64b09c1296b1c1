"""A live show's order traffic, platform-neutral: buyers with Chinese names, masked phones and
addresses; orders over the show's SKUs; the events a platform sends about them (created, paid,
cancelled), with redelivered duplicates and out-of-order delivery. Deterministic for a seed."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蔡蒋余于杜叶程"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬琳晨宇轩浩然梓涵子怡欣"
PLACES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("浙江省", "杭州市", ("西湖区", "余杭区", "滨江区", "拱墅区")),
    ("广东省", "深圳市", ("南山区", "福田区", "宝安区", "龙岗区")),
    ("广东省", "广州市", ("天河区", "越秀区", "海珠区", "番禺区")),
    ("上海市", "上海市", ("浦东新区", "徐汇区", "静安区", "闵行区")),
    ("北京市", "北京市", ("朝阳区", "海淀区", "丰台区", "东城区")),
    ("江苏省", "南京市", ("鼓楼区", "玄武区", "江宁区", "建邺区")),
    ("四川省", "成都市", ("武侯区", "锦江区", "高新区", "青羊区")),
    ("湖北省", "武汉市", ("洪山区", "江汉区", "武昌区", "汉阳区")),
    ("山东省", "济南市", ("历下区", "市中区", "槐荫区", "天桥区")),
    ("福建省", "厦门市", ("思明区", "湖里区", "集美区", "海沧区")),
)
STREETS = ("文一西路", "科技园路", "人民路", "解放大道", "建设路", "中山路", "长江路", "学院路", "和平街", "滨河路")
MOBILE_PREFIXES = ("130", "135", "138", "139", "150", "152", "158", "166", "176", "180", "186", "188", "199")


@dataclass(frozen=True)
class SimSku:
    """A SKU on air: our merchant code, the platform's SKU and item ids, the price in fen."""

    code: str
    sku_id: str
    item_id: str
    price_fen: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SimSku:
        return cls(
            code=str(data["code"]),
            sku_id=str(data["sku_id"]),
            item_id=str(data["item_id"]),
            price_fen=int(data.get("price_fen", 9900)),
        )


@dataclass(frozen=True)
class Buyer:
    open_id: str
    nick: str
    name: str
    mobile: str
    province: str
    city: str
    district: str
    street: str
    detail: str

    @property
    def masked_name(self) -> str:
        return self.name[0] + "*" * (len(self.name) - 1)

    @property
    def masked_mobile(self) -> str:
        return f"{self.mobile[:3]}****{self.mobile[-4:]}"


@dataclass
class SimLine:
    line_id: str
    sku: SimSku
    quantity: int

    @property
    def amount_fen(self) -> int:
        return self.sku.price_fen * self.quantity


SimStatus = Literal["pending_payment", "paid", "cancelled", "shipped", "refunded"]
AfterSalePhase = Literal[
    "requested", "modified", "agreed", "return_agreed", "goods_returned", "refused", "succeeded", "closed"
]
AFTERSALE_PHASES: tuple[str, ...] = (
    "requested", "modified", "agreed", "return_agreed", "goods_returned", "refused", "succeeded", "closed",
)  # fmt: skip


@dataclass
class SimAfterSale:
    """One after-sales request (售后) on the platform: its id, the step it is at, and the money."""

    refund_id: str
    order_id: str
    kind: Literal["refund", "return"]
    phase: str
    amount_fen: int
    line_id: str | None
    created_at: float
    updated_at: float
    message_id: str = ""


@dataclass
class SimOrder:
    order_id: str
    buyer: Buyer
    lines: list[SimLine]
    freight_fen: int
    created_at: float
    status: SimStatus = "pending_payment"
    paid_at: float | None = None
    cancelled_at: float | None = None
    shipped_at: float | None = None
    updated_at: float = 0.0
    waybill: tuple[str, str] | None = None  # (company code, waybill number)
    aftersales: dict[str, SimAfterSale] = field(default_factory=dict)

    @property
    def goods_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines)

    @property
    def total_fen(self) -> int:
        return self.goods_fen + self.freight_fen


EventKind = Literal["created", "paid", "cancelled"]


@dataclass(frozen=True)
class ShowEvent:
    """One message the platform sends. ``message_id`` repeats for a redelivered duplicate."""

    kind: EventKind
    order_id: str
    message_id: str
    at: float
    duplicate: bool = False
    early: bool = False  # delivered before an event of the same order that happened earlier


@dataclass
class ShowSpec:
    skus: list[SimSku]
    orders: int = 100
    seed: int = 0
    pay_share: float = 0.8
    cancel_share: float = 0.1
    duplicate_share: float = 0.05
    shuffle: float = 0.1
    max_quantity: int = 2
    max_lines: int = 2
    interval: float = 0.0
    freight_fen: int = 0
    start: float = 0.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShowSpec:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "skus"}
        skus = [SimSku.from_dict(s) for s in data.get("skus") or []]
        spec = cls(skus=skus, **known)
        spec.validate()
        return spec

    def validate(self) -> None:
        if not self.skus:
            raise ValueError("skus: at least one SKU is required")
        if self.orders < 0 or self.max_quantity < 1 or self.max_lines < 1:
            raise ValueError("orders >= 0, max_quantity >= 1 and max_lines >= 1 are required")
        for name in ("pay_share", "cancel_share", "duplicate_share", "shuffle"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.pay_share + self.cancel_share > 1:
            raise ValueError("pay_share + cancel_share must be <= 1")


@dataclass
class ShowPlan:
    orders: dict[str, SimOrder]
    events: list[ShowEvent]
    final_status: dict[str, SimStatus] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "orders": list(self.orders),
            "events": len(self.events),
            "duplicates": sum(e.duplicate for e in self.events),
            "out_of_order": sum(e.early for e in self.events),
            "final_status": dict(self.final_status),
        }


def make_buyer(rng: random.Random) -> Buyer:
    name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
    province, city, districts = rng.choice(PLACES)
    street = rng.choice(STREETS)
    return Buyer(
        open_id="".join(rng.choice("0123456789abcdef") for _ in range(32)),
        nick=f"{rng.choice(('小', '大', '阿'))}{name[-1]}{rng.randint(100, 9999)}",
        name=name,
        mobile=rng.choice(MOBILE_PREFIXES) + "".join(str(rng.randint(0, 9)) for _ in range(8)),
        province=province,
        city=city,
        district=rng.choice(districts),
        street=street,
        detail=f"{street}{rng.randint(1, 999)}号{rng.randint(1, 30)}幢{rng.randint(101, 2808)}室",
    )


def plan_show(
    spec: ShowSpec,
    *,
    order_id: Callable[[random.Random], str],
    line_id: Callable[[str, int], str],
    message_id: Callable[[random.Random], str],
    single_line: bool = False,
) -> ShowPlan:
    """Plan ``spec.orders`` orders and their events in delivery order. Each order is created; a
    ``pay_share`` of them is paid a few seconds later, a ``cancel_share`` cancelled unpaid, the rest
    stay unpaid. A ``duplicate_share`` of messages is delivered again later with the same message
    id; for a ``shuffle`` share of orders the later event is delivered before the creation."""
    spec.validate()
    rng = random.Random(spec.seed)
    orders: dict[str, SimOrder] = {}
    timeline: list[ShowEvent] = []
    now = spec.start
    for _ in range(spec.orders):
        now += rng.uniform(0.01, 0.5)
        oid = order_id(rng)
        while oid in orders:
            oid = order_id(rng)
        count = 1 if single_line else rng.randint(1, min(spec.max_lines, len(spec.skus)))
        skus = rng.sample(spec.skus, count)
        lines = [SimLine(line_id(oid, i), sku, rng.randint(1, spec.max_quantity)) for i, sku in enumerate(skus)]
        order = SimOrder(oid, make_buyer(rng), lines, spec.freight_fen, created_at=now, updated_at=now)
        orders[oid] = order
        timeline.append(ShowEvent("created", oid, message_id(rng), now))
        roll = rng.random()
        later = now + rng.uniform(1, 30)
        if roll < spec.pay_share:
            timeline.append(ShowEvent("paid", oid, message_id(rng), later))
        elif roll < spec.pay_share + spec.cancel_share:
            timeline.append(ShowEvent("cancelled", oid, message_id(rng), later))
    timeline.sort(key=lambda e: e.at)
    events = _shuffle(timeline, spec.shuffle, rng)
    events = _duplicate(events, spec.duplicate_share, rng)
    final: dict[str, SimStatus] = dict.fromkeys(orders, "pending_payment")
    for event in timeline:
        if event.kind != "created":
            final[event.order_id] = event.kind
    return ShowPlan(orders=orders, events=events, final_status=final)


def _shuffle(timeline: Sequence[ShowEvent], share: float, rng: random.Random) -> list[ShowEvent]:
    events = list(timeline)
    followers: dict[str, int] = {}
    for index, event in enumerate(events):
        if event.kind != "created":
            followers[event.order_id] = index
    for oid in sorted(followers):
        if rng.random() >= share:
            continue
        later_index = followers[oid]
        created_index = next(i for i, e in enumerate(events) if e.order_id == oid and e.kind == "created")
        if later_index < created_index:
            continue
        later = events.pop(later_index)
        events.insert(created_index, ShowEvent(later.kind, oid, later.message_id, later.at, early=True))
        followers = {e.order_id: i for i, e in enumerate(events) if e.kind != "created"}
    return events


def _duplicate(events: list[ShowEvent], share: float, rng: random.Random) -> list[ShowEvent]:
    result = list(events)
    for event in events:
        if rng.random() < share:
            position = rng.randint(result.index(event) + 1, len(result))
            result.insert(position, ShowEvent(event.kind, event.order_id, event.message_id, event.at, duplicate=True))
    return result


def status_rank(status: SimStatus) -> int:
    return {"pending_payment": 0, "paid": 1, "cancelled": 1, "shipped": 2, "refunded": 3}[status]


def apply_event(order: SimOrder, event: ShowEvent) -> None:
    """Move the store's order forward to what the event says; never back (an event delivered early
    has already happened on the platform)."""
    if event.kind == "paid" and order.status == "pending_payment":
        order.status, order.paid_at = "paid", event.at
    elif event.kind == "cancelled" and order.status == "pending_payment":
        order.status, order.cancelled_at = "cancelled", event.at
    order.updated_at = max(order.updated_at, event.at)
