"""Inbound messages: Douyin signed JSON-array pushes, Kuaishou AES-encrypted pushes (vectors made
with the openssl command line, not with our code), Taobao TMC messages."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from apps.platforms.protocol import douyin, kuaishou, taobao
from apps.platforms.protocol.base import Credentials, MalformedPayload, SignatureInvalid, UndecryptableBody

CREDS = Credentials(app_key="7001", app_secret="dy-secret", access_token="t", shop_id="1234567")
DOC_PAID = (
    b'[{"tag":"101","msg_id":"7012345678901234567","data":"{\\"p_id\\":4812345678901234567,\\"s_ids\\":'
    b'[4812345678901234567],\\"shop_id\\":1234567,\\"order_status\\":105,\\"order_type\\":0,\\"biz\\":2,'
    b'\\"pay_type\\":1,\\"pay_time\\":1700000000,\\"pay_amount\\":9900}"}]'
)
VERIFICATION = b'[{"tag":"0","msg_id":"0","data":"2020-09-10T16:27:56.52842897+08:00"}]'


def _md5(body: bytes) -> str:
    return hashlib.md5(b"7001" + body + b"dy-secret").hexdigest()


def _flip_last(text: str) -> str:
    return text[:-1] + ("0" if text[-1] != "0" else "1")


def test_douyin_verify_push_md5_case_insensitive() -> None:
    douyin.verify_push({"app-id": "7001", "event-sign": _md5(DOC_PAID)}, DOC_PAID, CREDS)
    douyin.verify_push({"Event-Sign": _md5(DOC_PAID).upper()}, DOC_PAID, CREDS)


def test_douyin_verify_push_hmac_variant() -> None:
    sig = hmac.new(b"dy-secret", b"7001" + DOC_PAID + b"dy-secret", hashlib.sha256).hexdigest()
    douyin.verify_push({"event-sign": sig}, DOC_PAID, CREDS)
    douyin.verify_push({"event-sign": sig, "sign-method": "hmac-sha256"}, DOC_PAID, CREDS)
    douyin.verify_push({"event-sign": sig}, DOC_PAID, CREDS, sign_method="hmac-sha256")
    with pytest.raises(SignatureInvalid):
        douyin.verify_push({"event-sign": sig, "sign-method": "md5"}, DOC_PAID, CREDS)
    with pytest.raises(SignatureInvalid):
        douyin.verify_push({"event-sign": sig}, DOC_PAID, CREDS, sign_method="md5")


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"event-sign": _flip_last(_md5(DOC_PAID))}, DOC_PAID),
        ({"event-sign": _md5(DOC_PAID)}, DOC_PAID.replace(b"9900", b"9901")),
        ({}, DOC_PAID),
        ({"event-sign": _md5(DOC_PAID), "app-id": "7002"}, DOC_PAID),
    ],
    ids=["one-char-sign", "one-char-body", "no-header", "other-app"],
)
def test_douyin_verify_push_refuses(headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(SignatureInvalid):
        douyin.verify_push(headers, body, CREDS)


def test_douyin_parse_documented_paid_push() -> None:
    (event,) = douyin.parse_push(DOC_PAID)
    assert event.message_id == "7012345678901234567"
    assert event.kind == "paid" and event.topic == "doudian_trade_TradePaid"
    assert event.order_id == "4812345678901234567"  # beyond 2**53: kept exact
    assert event.shop_id == "1234567"
    assert event.status == "105"
    assert event.amount == Decimal("99.00")
    assert event.occurred_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_douyin_parse_verification_push_and_exact_reply() -> None:
    (event,) = douyin.parse_push(VERIFICATION)
    assert event.kind == "verification" and event.order_id is None
    assert douyin.push_ack_body() == b'{"code":0,"msg":"success"}'
    assert json.loads(douyin.push_failure_body("bad sign")) == {"code": 40041, "msg": "bad sign"}


def test_douyin_parse_accepts_msgId_and_several_elements() -> None:
    body = json.dumps(
        [
            {"tag": "100", "msgId": "a", "data": json.dumps({"p_id": 1, "shop_id": 9, "order_status": 1,
                                                              "create_time": 1700000000})},
            {"tag": 106, "msg_id": "b", "data": json.dumps({"p_id": 1, "shop_id": 9, "cancel_time": 1700000100})},
            {"tag": "206", "msg_id": "c", "data": json.dumps({"p_id": 1, "s_id": 2, "aftersale_status": 12,
                                                              "refund_amount": 500, "success_time": 1700000200})},
            {"tag": "999", "msg_id": "d", "data": "{}"},
        ]
    )  # fmt: skip
    events = douyin.parse_push(body)
    assert [(e.message_id, e.kind) for e in events] == [
        ("a", "created"),
        ("b", "cancelled"),
        ("c", "refund"),
        ("d", "other"),
    ]
    assert events[2].amount == Decimal("5.00") and events[2].status == "12"
    assert events[1].occurred_at == datetime.fromtimestamp(1700000100, UTC)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"{}", b"[]", b'[{"msg_id":"1","data":"{}"}]', b'[{"tag":"101","data":"{}"}]',
     b'[{"tag":"101","msg_id":"1","data":"{not json"}]', b'[{"tag":"101","msg_id":"1","data":"[1]"}]',
     b'[{"tag":"101","msg_id":"1","data":"{\\"p_id\\":1,\\"pay_amount\\":99.5}"}]'],
)  # fmt: skip
def test_douyin_parse_refuses_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        douyin.parse_push(body)


# --- Kuaishou -------------------------------------------------------------------------------------

MSG_SECRET = "a3NfbXNnX3NlY3JldF8xNg=="  # base64 of b"ks_msg_secret_16"
# openssl enc -aes-128-cbc -K 6b735f6d73675f7365637265745f3136 -iv 0*32 -base64 -A of the PLATFORMS.md sample
PAY_SUCCESS = (
    "Jzegsv59MaAXiPVeK63Yk+RjzkDGmZurfvRCNV79uRCJL9jQdupho1WtG4H7Xveb9L91LxvOtmrWhpTj+o2lsa6F4mNrjuxmtT9EtaaOEWuFeQbRxr"
    "yXnpbN5uCtsjkfFj3vpfOWSsbDV3gyTL/DsJDwxgYFvnCS3STlxJNy916ywmguXMoAP9PYIsATzHzyihe07nHVQ0QGnBevHkO1GzpejlIT5O3qnlej"
    "8PLfBY0Vu6ucZO8fiSHYh6jFK9eoWtoPR4zPugYCKb/eOnirbUdIePDCMkyQCVnXUgADc7XUeYHN2xCvousQILhwyezzPClQHst6UlYlwMSzvns87E"
    "wfLR5SrahO0E7LPfD1xWeeeCUz5xy59dkU80iSjpJJg4lzX8ZczvpHKcr70zOldzaJmgmYh6vd6Qr00SIvvVcEAK0EXciKqrT4sPD8EB5LApN9b4XY"
    "nWHRCjcl0f9WWLlGLaa4c8pQd2OfRCt2T0UFsTdbAaCgBwZ0Maj/i8K4"
)
HEARTBEAT = (
    "x3tKqZ+UG27IGxEj0FCMSZdmkMV502lbeJwLTKFwZ/s5sVdDjo5qqogOPCFGB1OhN2/UZkQVQePbyGv13J+jD0ADZm9A2kxFAadVABiY6E0="
)


def test_kuaishou_decrypts_the_openssl_vector() -> None:
    event = kuaishou.decrypt_push(PAY_SUCCESS.encode(), MSG_SECRET)
    assert event.message_id == "84_2375715766425"
    assert event.kind == "paid" and event.topic == "kwaishop_order_paySuccess"
    assert event.order_id == "2607602240240301"
    assert event.shop_id == "2161524184"
    assert event.status == "30"
    assert event.occurred_at == datetime(2026, 3, 17, 12, 35, 45, 776000, tzinfo=UTC)
    assert event.test is False
    assert kuaishou.push_ack_body() == b'{"result":1}'
    assert json.loads(kuaishou.push_failure_body("no"))["result"] != 1


def test_kuaishou_heartbeat() -> None:
    event = kuaishou.decrypt_push(HEARTBEAT, MSG_SECRET)
    assert event.kind == "heartbeat" and event.test is True and event.order_id is None


@pytest.mark.parametrize(
    ("body", "secret"),
    [
        (PAY_SUCCESS, base64.b64encode(b"another_key_16by").decode()),  # wrong key: bad padding or garbage
        (PAY_SUCCESS[:-8], MSG_SECRET),  # truncated
        ("not base64 at all!", MSG_SECRET),
        (PAY_SUCCESS, "not base64!"),
        (PAY_SUCCESS, base64.b64encode(b"short").decode()),
        ("", MSG_SECRET),
        (base64.b64encode(bytes(16)).decode(), MSG_SECRET),  # one block of garbage
    ],
)
def test_kuaishou_undecryptable(body: str, secret: str) -> None:
    with pytest.raises(UndecryptableBody):
        kuaishou.decrypt_push(body, secret)


def test_kuaishou_one_flipped_ciphertext_char_is_refused_or_garbled() -> None:
    raw = bytearray(base64.b64decode(PAY_SUCCESS))
    raw[-1] ^= 0x01  # the last block's padding breaks
    with pytest.raises(UndecryptableBody):
        kuaishou.decrypt_push(base64.b64encode(bytes(raw)), MSG_SECRET)


def test_kuaishou_refund_event_uses_orderId() -> None:
    event = kuaishou.event_from_message(
        {"msgId": "m1", "event": "kwaishop_aftersales_addRefund", "userId": 5, "test": False,
         "info": json.dumps({"orderId": 77, "refundId": 88, "status": 10, "createTime": 1773750945000})}
    )  # fmt: skip
    assert (event.kind, event.order_id, event.status) == ("refund", "77", "10")


# --- Taobao ---------------------------------------------------------------------------------------


def test_taobao_tmc_message() -> None:
    message = {
        "id": 2201234567890,
        "topic": "taobao_trade_TradeBuyerPay",
        "pub_app_key": "12497914",
        "pub_time": "2024-05-01 20:00:05",
        "user_id": 141786152,
        "user_nick": "shop",
        "content": '{"tid":1234567890123,"oid":1234567890123,"seller_nick":"shop","buyer_nick":"b***",'
        '"buyer_open_uid":"AAH","payment":"99.00","status":"TradeBuyerPay","type":"guarantee_trade"}',
    }
    event = taobao.parse_tmc_message(message)
    assert event.message_id == "2201234567890"
    assert event.kind == "paid"
    assert event.order_id == "1234567890123"
    assert event.shop_id == "shop"
    assert event.amount == Decimal("99.00")
    assert event.status == "TradeBuyerPay"
    assert event.occurred_at == datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    "message",
    [{"topic": "x"}, {"id": 1, "content": "{bad"}, {"id": 1, "content": '{"tid":1,"payment":99.0}'},
     {"id": 1, "content": '{"tid":1.5}'}],
)  # fmt: skip
def test_taobao_tmc_malformed(message: dict[str, object]) -> None:
    with pytest.raises(MalformedPayload):
        taobao.parse_tmc_message(message)
