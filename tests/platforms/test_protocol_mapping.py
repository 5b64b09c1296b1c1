"""Mapping tables: platform statuses, money units and times to ours; order details to canonical
orders (fields as documented in PLATFORMS.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from apps.platforms.protocol import douyin, kuaishou, taobao
from apps.platforms.protocol.base import (
    DOUYIN_ORDER_STATUS,
    KUAISHOU_ORDER_STATUS,
    ORDER_STATUSES,
    TAOBAO_TRADE_STATUS,
    MalformedPayload,
    cny_to_fen,
    cny_to_yuan,
    fen_to_cny,
    from_epoch_ms,
    from_gmt8_string,
    from_unix_seconds,
    map_status,
    to_gmt8_string,
    yuan_to_cny,
)

STATUS_CASES = [
    (DOUYIN_ORDER_STATUS, 1, "pending_payment"),
    (DOUYIN_ORDER_STATUS, 103, "pending_payment"),
    (DOUYIN_ORDER_STATUS, 105, "paid"),
    (DOUYIN_ORDER_STATUS, 2, "paid"),
    (DOUYIN_ORDER_STATUS, 101, "paid"),
    (DOUYIN_ORDER_STATUS, 3, "shipped"),
    (DOUYIN_ORDER_STATUS, 4, "cancelled"),
    (DOUYIN_ORDER_STATUS, 5, "completed"),
    (DOUYIN_ORDER_STATUS, 21, "refunded"),
    (DOUYIN_ORDER_STATUS, 22, "refunded"),
    (DOUYIN_ORDER_STATUS, 39, "refunded"),
    (KUAISHOU_ORDER_STATUS, 10, "pending_payment"),
    (KUAISHOU_ORDER_STATUS, 30, "paid"),
    (KUAISHOU_ORDER_STATUS, 40, "shipped"),
    (KUAISHOU_ORDER_STATUS, 50, "delivered"),
    (KUAISHOU_ORDER_STATUS, 70, "completed"),
    (KUAISHOU_ORDER_STATUS, 80, "cancelled"),
    (TAOBAO_TRADE_STATUS, "TRADE_NO_CREATE_PAY", "pending_payment"),
    (TAOBAO_TRADE_STATUS, "WAIT_BUYER_PAY", "pending_payment"),
    (TAOBAO_TRADE_STATUS, "PAY_PENDING", "pending_payment"),
    (TAOBAO_TRADE_STATUS, "WAIT_SELLER_SEND_GOODS", "paid"),
    (TAOBAO_TRADE_STATUS, "PAID_FORBID_CONSIGN", "paid"),
    (TAOBAO_TRADE_STATUS, "SELLER_CONSIGNED_PART", "paid"),
    (TAOBAO_TRADE_STATUS, "WAIT_BUYER_CONFIRM_GOODS", "shipped"),
    (TAOBAO_TRADE_STATUS, "TRADE_BUYER_SIGNED", "delivered"),
    (TAOBAO_TRADE_STATUS, "TRADE_FINISHED", "completed"),
    (TAOBAO_TRADE_STATUS, "TRADE_CLOSED", "refunded"),
    (TAOBAO_TRADE_STATUS, "TRADE_CLOSED_BY_TAOBAO", "cancelled"),
]


@pytest.mark.parametrize(("table", "value", "expected"), STATUS_CASES)
def test_status_tables(table: dict[object, str], value: object, expected: str) -> None:
    assert map_status(table, value, platform="x") == expected  # type: ignore[arg-type]


def test_status_tables_are_fully_covered_and_canonical() -> None:
    for table in (DOUYIN_ORDER_STATUS, KUAISHOU_ORDER_STATUS, TAOBAO_TRADE_STATUS):
        covered = {value for t, value, _ in STATUS_CASES if t is table}
        assert covered == set(table)
        assert set(table.values()) <= set(ORDER_STATUSES)


@pytest.mark.parametrize(
    ("table", "value"),
    [(DOUYIN_ORDER_STATUS, 999), (KUAISHOU_ORDER_STATUS, "30"), (TAOBAO_TRADE_STATUS, "trade_finished"),
     (TAOBAO_TRADE_STATUS, None)],
)  # fmt: skip
def test_unknown_status_is_malformed_not_guessed(table: dict[object, str], value: object) -> None:
    with pytest.raises(MalformedPayload):
        map_status(table, value, platform="x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fen", "cny"),
    [
        (0, "0.00"),
        (1, "0.01"),
        (9900, "99.00"),
        (20007, "200.07"),
        (-150, "-1.50"),
        (12345678901234, "123456789012.34"),
    ],
)
def test_fen_to_cny(fen: int, cny: str) -> None:
    value = fen_to_cny(fen)
    assert value == Decimal(cny) and str(value) == cny
    assert cny_to_fen(value) == fen


@pytest.mark.parametrize("bad", [99.0, "9900", True, None, Decimal("99")])
def test_fen_to_cny_refuses_non_integers(bad: object) -> None:
    with pytest.raises(MalformedPayload):
        fen_to_cny(bad)


@pytest.mark.parametrize(("yuan", "cny"), [("200.07", "200.07"), ("99", "99.00"), ("0.5", "0.50"), ("0", "0.00"),
                                           ("-3.10", "-3.10")])  # fmt: skip
def test_yuan_to_cny(yuan: str, cny: str) -> None:
    value = yuan_to_cny(yuan)
    assert str(value) == cny
    assert cny_to_yuan(value) == cny


@pytest.mark.parametrize("bad", [99.0, 99, "99.001", "1e3", " 1.00", "1,00", "", "NaN", "01.00", None])
def test_yuan_to_cny_refuses_floats_and_bad_strings(bad: object) -> None:
    with pytest.raises(MalformedPayload):
        yuan_to_cny(bad)


def test_cny_to_fen_refuses_fractions_of_a_fen() -> None:
    with pytest.raises(ValueError, match="fen"):
        cny_to_fen(Decimal("1.005"))


@pytest.mark.parametrize(
    ("convert", "value", "expected"),
    [
        (from_unix_seconds, 1700000000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        (from_epoch_ms, 1773750945776, datetime(2026, 3, 17, 12, 35, 45, 776000, tzinfo=UTC)),
        (from_gmt8_string, "2024-05-01 08:00:00", datetime(2024, 5, 1, 0, 0, 0, tzinfo=UTC)),
        (from_gmt8_string, "2024-01-01 07:59:59", datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_times_to_utc(convert: object, value: object, expected: datetime) -> None:
    result = convert(value)  # type: ignore[operator]
    assert result == expected and result.tzinfo is UTC


@pytest.mark.parametrize(
    ("convert", "bad"),
    [(from_unix_seconds, 1.5), (from_unix_seconds, "1700000000"), (from_unix_seconds, -1), (from_epoch_ms, True),
     (from_gmt8_string, "2024-05-01T08:00:00"), (from_gmt8_string, 1700000000)],
)  # fmt: skip
def test_times_refuse_other_shapes(convert: object, bad: object) -> None:
    with pytest.raises(MalformedPayload):
        convert(bad)  # type: ignore[operator]


def test_to_gmt8_string() -> None:
    assert to_gmt8_string(datetime(2013, 5, 6, 5, 52, 3, tzinfo=UTC)) == "2013-05-06 13:52:03"


# --- order details --------------------------------------------------------------------------------

DOUYIN_DETAIL = {
    "order_id": "6920000000000000001",
    "shop_id": 1234567,
    "order_status": 105,
    "doudian_open_id": "1##encrypted-open-id",
    "order_amount": 20800,
    "pay_amount": 20800,
    "post_amount": 800,
    "create_time": 1700000000,
    "pay_time": 1700000030,
    "update_time": 1700000031,
    "encrypt_post_receiver": "#张##abc#",
    "encrypt_post_tel": "$138$def$",
    "mask_post_receiver": "张*",
    "mask_post_tel": "138****5678",
    "post_addr": {"province": {"name": "浙江省"}, "city": {"name": "杭州市"}, "town": {"name": "西湖区"},
                  "street": {"name": "文新街道", "id": "1"}, "detail": "#文一西路##xyz#"},
    "sku_order_list": [
        {"order_id": "6920000000000000002", "parent_order_id": "6920000000000000001", "sku_id": 1750000000001,
         "product_id": 3600000000001, "code": "TEE-RED-M", "item_num": 2, "goods_price": 5000, "origin_amount": 10000,
         "sum_amount": 10000},
        {"order_id": "6920000000000000003", "parent_order_id": "6920000000000000001", "sku_id": 1750000000002,
         "product_id": 3600000000002, "code": "", "out_sku_id": "MUG-01", "item_num": 1, "sum_amount": 10000},
    ],
}  # fmt: skip


@pytest.mark.parametrize("wrapped", [True, False])
def test_douyin_order_detail(wrapped: bool) -> None:
    data = {"shop_order_detail": DOUYIN_DETAIL} if wrapped else DOUYIN_DETAIL
    order = douyin.order_from_detail(data, shop_id="1234567")
    assert (order.platform, order.order_id, order.status, order.platform_status) == (
        "douyin", "6920000000000000001", "paid", "105"
    )  # fmt: skip
    assert order.total == Decimal("208.00") and order.freight == Decimal("8.00")
    assert [(ln.merchant_sku_code, ln.quantity, ln.unit_price, ln.amount) for ln in order.lines] == [
        ("TEE-RED-M", 2, Decimal("50.00"), Decimal("100.00")),
        ("MUG-01", 1, Decimal("100.00"), Decimal("100.00")),
    ]
    assert order.lines[0].platform_sku_id == "1750000000001" and order.lines[0].platform_item_id == "3600000000001"
    assert order.buyer_id == "1##encrypted-open-id"
    assert order.receiver["mask_post_tel"] == "138****5678"
    assert order.receiver["post_addr"]["detail"] == "#文一西路##xyz#"
    assert "post_amount" not in order.receiver
    assert order.created_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert order.paid_at == datetime(2023, 11, 14, 22, 13, 50, tzinfo=UTC)


def test_douyin_unpaid_order_has_no_paid_at() -> None:
    order = douyin.order_from_detail({**DOUYIN_DETAIL, "order_status": 1, "pay_time": 0}, shop_id="1")
    assert order.status == "pending_payment" and order.paid_at is None


KUAISHOU_DETAIL = {
    "orderBaseInfo": {"oid": 2607602240240301, "status": 30, "buyerOpenId": "f1b6", "buyerNick": "快手用户",
                      "sellerOpenId": "s1", "totalFee": 9900, "expressFee": 0, "discountFee": 0,
                      "createTime": 1773750943589, "payTime": 1773750945776, "updateTime": 1773750945776},
    "orderItemInfo": {"skuId": 101, "relSkuId": 0, "itemId": 201, "relItemId": 0, "skuNick": "TEE-RED-M",
                      "num": 3, "price": 3300, "originalPrice": 3900},
    "orderAddress": {"encryptedConsignee": "#enc#", "encryptedMobile": "#enc2#", "desensitiseConsignee": "李**",
                     "desensitiseMobile": "139****0000", "province": "广东省", "city": "深圳市", "district": "南山区"},
}  # fmt: skip


def test_kuaishou_order_detail() -> None:
    order = kuaishou.order_from_detail(KUAISHOU_DETAIL, shop_id="2161524184")
    assert (order.order_id, order.status, order.buyer_id) == ("2607602240240301", "paid", "f1b6")
    (line,) = order.lines
    assert (line.merchant_sku_code, line.quantity, line.unit_price, line.amount) == (
        "TEE-RED-M", 3, Decimal("33.00"), Decimal("99.00")
    )  # fmt: skip
    assert order.total == Decimal("99.00") and order.freight == Decimal("0.00")
    assert order.receiver == KUAISHOU_DETAIL["orderAddress"]
    assert order.paid_at == datetime(2026, 3, 17, 12, 35, 45, 776000, tzinfo=UTC)


TAOBAO_TRADE = {
    "tid": 1234567890123, "tid_str": "1234567890123", "status": "WAIT_SELLER_SEND_GOODS", "seller_nick": "shop",
    "buyer_nick": "b***", "buyer_open_uid": "AAH", "payment": "206.07", "total_fee": "200.07", "post_fee": "6.00",
    "created": "2024-05-01 20:00:00", "pay_time": "2024-05-01 20:00:09", "modified": "2024-05-01 20:00:09",
    "receiver_name": "王*", "receiver_mobile": "*******5678", "receiver_state": "上海", "receiver_city": "上海市",
    "receiver_district": "浦东新区", "receiver_address": "**路**号",
    "orders": {"order": [
        {"oid": 1234567890124, "num_iid": 600000000001, "sku_id": "5000000001", "outer_sku_id": "TEE-RED-M",
         "num": 3, "price": "66.69", "total_fee": "200.07", "payment": "200.07"},
    ]},
}  # fmt: skip


@pytest.mark.parametrize("wrapped", [True, False])
def test_taobao_trade(wrapped: bool) -> None:
    trade = TAOBAO_TRADE if wrapped else {**TAOBAO_TRADE, "orders": TAOBAO_TRADE["orders"]["order"]}  # type: ignore[index]
    order = taobao.order_from_trade(trade, shop_id="shop")
    assert (order.order_id, order.status, order.buyer_id) == ("1234567890123", "paid", "AAH")
    assert order.total == Decimal("206.07") and order.freight == Decimal("6.00")
    (line,) = order.lines
    assert (line.line_id, line.merchant_sku_code, line.quantity, line.unit_price, line.amount) == (
        "1234567890124", "TEE-RED-M", 3, Decimal("66.69"), Decimal("200.07")
    )  # fmt: skip
    assert order.created_at == datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert order.receiver["receiver_mobile"] == "*******5678"


@pytest.mark.parametrize(
    ("mapper", "data"),
    [
        (lambda d: douyin.order_from_detail(d, shop_id="1"), {**DOUYIN_DETAIL, "pay_amount": 208.0}),
        (lambda d: douyin.order_from_detail(d, shop_id="1"), {**DOUYIN_DETAIL, "sku_order_list": []}),
        (lambda d: kuaishou.order_from_detail(d, shop_id="1"), {"orderBaseInfo": {}}),
        (lambda d: taobao.order_from_trade(d, shop_id="1"), {**TAOBAO_TRADE, "payment": 206.07}),
        (lambda d: taobao.order_from_trade(d, shop_id="1"), {**TAOBAO_TRADE, "status": "NEW_STATUS"}),
    ],
)
def test_order_mapping_refuses_malformed(mapper: object, data: dict[str, object]) -> None:
    with pytest.raises(MalformedPayload):
        mapper(data)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("body", "retryable"),
    [
        ({"error_response": {"code": 7, "msg": "App Call Limited"}}, True),
        ({"error_response": {"code": 15, "msg": "Remote service error", "sub_code": "isp.top-remote-unknown"}}, True),
        ({"error_response": {"code": 15, "msg": "Remote service error", "sub_code": "isv.trade-not-exist"}}, False),
        ({"error_response": {"code": 25, "msg": "Invalid signature"}}, False),
    ],
)
def test_taobao_error_envelope_retryability(body: dict[str, object], retryable: bool) -> None:
    from apps.platforms.protocol.base import PlatformRejected

    with pytest.raises(PlatformRejected) as refused:
        taobao.check_envelope("taobao.trade.fullinfo.get", body)
    assert refused.value.retryable is retryable
