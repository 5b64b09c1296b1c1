"""Outbound signing: each check value of PLATFORMS.md is reproduced, and a one-character change of
any input changes the signature."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from apps.platforms.protocol import douyin, kuaishou, taobao
from apps.platforms.protocol.base import Credentials

DOUYIN_VECTOR = {
    "app_key": "app-key",
    "app_secret": "secret",
    "method": "order.searchList",
    "param_json": '{"a":1,"nested":{"a":1,"z":2},"z":2}',
    "timestamp": "1700000000",
}
DOUYIN_HMAC = "53e8b7af0b657637e8a8013bb6b2a2c41b5da7f0dff35d98de3e9ae3e9c0a442"

KUAISHOU_PARAMS = {
    "access_token": "token",
    "appkey": "ks123",
    "method": "open.seller.order.list",
    "param": '{"title":"短袖"}',
    "timestamp": "1583271919000",
    "version": "1",
}
KUAISHOU_HMAC = "ZpPrG0oB1g/T93FyyVD+VCzRey41yqxZoCqcGg7upYM="
KUAISHOU_MD5 = "6005da269b372ff10945e565ef37a4c6"

TAOBAO_PARAMS = {
    "app_key": "test",
    "fields": "nick",
    "format": "xml",
    "method": "taobao.user.seller.get",
    "session": "test",
    "sign_method": "md5",
    "timestamp": "2013-05-06 13:52:03",
    "v": "2.0",
}
TAOBAO_MD5 = "72CB4D809B375A54502C09360D879C64"


def test_douyin_param_json_sorts_keys_recursively_and_is_compact() -> None:
    assert douyin.param_json({"z": 2, "nested": {"z": 2, "a": 1}, "a": 1}) == DOUYIN_VECTOR["param_json"]
    assert douyin.param_json({"title": "短袖"}) == '{"title":"短袖"}'


def test_douyin_hmac_sha256_check_value() -> None:
    assert douyin.sign(**DOUYIN_VECTOR, sign_method="hmac-sha256") == DOUYIN_HMAC


def test_douyin_md5_is_md5_of_the_same_string() -> None:
    text = "secretapp_keyapp-keymethodorder.searchListparam_json" + DOUYIN_VECTOR["param_json"]
    text += "timestamp1700000000v2secret"
    assert douyin.sign_string(**DOUYIN_VECTOR) == text
    assert douyin.sign(**DOUYIN_VECTOR, sign_method="md5") == hashlib.md5(text.encode()).hexdigest()
    assert douyin.sign(**DOUYIN_VECTOR, sign_method="md5") == "5f08e7797594a10d0b49bcb0fb0a1282"


@pytest.mark.parametrize("field", sorted(DOUYIN_VECTOR))
def test_douyin_one_char_change_changes_the_signature(field: str) -> None:
    changed = {**DOUYIN_VECTOR, field: DOUYIN_VECTOR[field][:-1] + "X"}
    assert douyin.sign(**changed, sign_method="hmac-sha256") != DOUYIN_HMAC


def test_douyin_signed_request_carries_the_documented_query() -> None:
    creds = Credentials(app_key="app-key", app_secret="secret", access_token="tok", shop_id="1")
    path, query, body = douyin.signed_request(
        creds, "order.searchList", {"z": 2, "a": 1, "nested": {"z": 2, "a": 1}}, timestamp=1700000000,
        sign_method="hmac-sha256",
    )  # fmt: skip
    assert path == "/order/searchList"
    assert body.decode() == DOUYIN_VECTOR["param_json"]
    assert query == {
        "app_key": "app-key",
        "method": "order.searchList",
        "access_token": "tok",
        "timestamp": "1700000000",
        "v": "2",
        "sign_method": "hmac-sha256",
        "sign": DOUYIN_HMAC,
    }


@pytest.mark.parametrize(("method", "expected"), [("HMAC_SHA256", KUAISHOU_HMAC), ("MD5", KUAISHOU_MD5)])
def test_kuaishou_check_values(method: kuaishou.SignMethod, expected: str) -> None:
    params = {**KUAISHOU_PARAMS, "signMethod": method}
    assert kuaishou.sign_string(params, "sign-secret") == (
        'access_token=token&appkey=ks123&method=open.seller.order.list&param={"title":"短袖"}'
        f"&signMethod={method}&timestamp=1583271919000&version=1&signSecret=sign-secret"
    )
    assert kuaishou.sign(params, "sign-secret", method) == expected
    # ``sign`` itself never takes part
    assert kuaishou.sign({**params, "sign": "whatever"}, "sign-secret", method) == expected


@pytest.mark.parametrize("field", [*sorted(KUAISHOU_PARAMS), "secret"])
def test_kuaishou_one_char_change_changes_the_signature(field: str) -> None:
    params = {**KUAISHOU_PARAMS, "signMethod": "HMAC_SHA256"}
    secret = "sign-secret"
    if field == "secret":
        secret = "sign-secreT"
    else:
        params[field] = params[field][:-1] + "X"
    assert kuaishou.sign(params, secret, "HMAC_SHA256") != KUAISHOU_HMAC


def test_kuaishou_signed_params_reproduce_the_check_value() -> None:
    creds = Credentials(app_key="ks123", app_secret="sign-secret", access_token="token", shop_id="1")
    params = kuaishou.signed_params(
        creds, "open.seller.order.list", {"title": "短袖"}, timestamp_ms=1583271919000, sign_method="HMAC_SHA256"
    )
    assert params["sign"] == KUAISHOU_HMAC
    assert params["param"] == '{"title":"短袖"}'


def test_taobao_md5_check_value() -> None:
    assert taobao.sign_string(TAOBAO_PARAMS) == (
        "app_keytestfieldsnickformatxmlmethodtaobao.user.seller.getsessiontestsign_methodmd5"
        "timestamp2013-05-06 13:52:03v2.0"
    )
    assert taobao.sign(TAOBAO_PARAMS, "test", "md5") == TAOBAO_MD5


def test_taobao_skips_empty_values_and_sign() -> None:
    params = {**TAOBAO_PARAMS, "empty": "", "sign": "ANY"}
    assert taobao.sign(params, "test", "md5") == TAOBAO_MD5


def test_taobao_hmac_is_uppercase_hmac_md5_and_sha256_variant() -> None:
    text = taobao.sign_string(TAOBAO_PARAMS).encode()
    assert taobao.sign(TAOBAO_PARAMS, "test", "hmac") == hmac.new(b"test", text, hashlib.md5).hexdigest().upper()
    assert taobao.sign(TAOBAO_PARAMS, "test", "hmac-sha256") == (
        hmac.new(b"test", text, hashlib.sha256).hexdigest().upper()
    )


@pytest.mark.parametrize("field", sorted(TAOBAO_PARAMS))
def test_taobao_one_char_change_changes_the_signature(field: str) -> None:
    changed = {**TAOBAO_PARAMS, field: TAOBAO_PARAMS[field][:-1] + "X"}
    assert taobao.sign(changed, "test", "md5") != TAOBAO_MD5


def test_taobao_signed_params_reproduce_the_worked_example() -> None:
    creds = Credentials(app_key="test", app_secret="test", access_token="test", shop_id="shop")
    params = taobao.signed_params(
        creds,
        "taobao.user.seller.get",
        {"fields": "nick", "format": "xml", "skipped": None},
        timestamp=datetime(2013, 5, 6, 5, 52, 3, tzinfo=UTC),  # 13:52:03 in GMT+8
    )
    assert params["timestamp"] == "2013-05-06 13:52:03"
    assert "skipped" not in params
    assert params["sign"] == TAOBAO_MD5


def test_taobao_response_key() -> None:
    assert taobao.response_key("taobao.trade.fullinfo.get") == "trade_fullinfo_get_response"
    assert taobao.response_key("taobao.tmc.messages.consume") == "tmc_messages_consume_response"
