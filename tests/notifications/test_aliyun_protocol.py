"""The Aliyun SMS protocol module against Aliyun's own check values: the SMS documentation's
SendSms example ("HTTP协议及签名", help.aliyun.com/document_detail/56189 and 101343: AccessKeyId
testId, secret testSecret) and the RPC signature page's DescribeRegions example (testid /
testsecret); then answer parsing into typed errors. No network, no database."""

from __future__ import annotations

import json

import pytest

from apps.notifications.providers import aliyun
from apps.notifications.providers.aliyun import (
    AccessKey,
    SmsRateLimited,
    SmsRejected,
    SmsUnavailable,
)

DOC_PARAMS = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
DOC_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123%26PhoneNumbers%3D15300000001"
    "%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4"
    "%25BF%25A1%25E6%25B5%258B%25E8%25AF%2595%25E4%25B8%2593%25E7%2594%25A8%26SignatureMethod%3DHMAC-SHA1"
    "%26SignatureNonce%3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0%26TemplateCode"
    "%3DSMS_71390007%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D%26Timestamp"
    "%3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25"
)


def test_sms_documentation_example_signs_to_its_published_value() -> None:
    assert aliyun.string_to_sign("GET", DOC_PARAMS) == DOC_STRING_TO_SIGN
    assert aliyun.sign("GET", DOC_PARAMS, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_rpc_signature_page_example_signs_to_its_published_value() -> None:
    params = {
        "Format": "XML",
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0",
        "Version": "2014-05-26",
        "Timestamp": "2016-02-23T12:46:24Z",
    }
    assert aliyun.sign("GET", params, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_percent_encoding_follows_aliyuns_special_cases() -> None:
    assert aliyun.percent_encode("a b") == "a%20b"  # not "+"
    assert aliyun.percent_encode("*") == "%2A"
    assert aliyun.percent_encode("~-_.AZaz09") == "~-_.AZaz09"
    assert aliyun.percent_encode("/=&+:") == "%2F%3D%26%2B%3A"
    assert aliyun.percent_encode("派") == "%E6%B4%BE"


def test_build_send_sms_signs_what_it_sends_and_a_signature_covers_every_parameter() -> None:
    key = AccessKey("LTAI-x", "s3cret")
    form = aliyun.build_send_sms(
        key,
        phone="13800000000",
        sign_name="直播好物",
        template_code="SMS_1",
        template_params={"order_no": "o1", "n": 3},
        out_id="lc-sms-9",
        at=1_500_000_000,
        nonce="n-1",
    )
    assert form["Timestamp"] == "2017-07-14T02:40:00Z" and form["Format"] == "JSON"
    assert json.loads(form["TemplateParam"]) == {"order_no": "o1", "n": "3"}  # every value a string
    assert form["OutId"] == "lc-sms-9" and form["Version"] == "2017-05-25" and form["Action"] == "SendSms"
    assert aliyun.verify("POST", form, "s3cret")
    assert not aliyun.verify("POST", form, "other")
    assert not aliyun.verify("POST", {**form, "PhoneNumbers": "13900000000"}, "s3cret")
    assert not aliyun.verify("GET", form, "s3cret")  # the method is signed too
    assert "s3cret" not in repr(key)


def test_parse_ok_answer() -> None:
    body = json.dumps({"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "R1"}).encode()
    result = aliyun.parse_send_answer(200, body)
    assert (result.biz_id, result.request_id) == ("900619746936498440^0", "R1")


@pytest.mark.parametrize(
    ("status", "code", "kind", "retryable"),
    [
        (200, "isv.BUSINESS_LIMIT_CONTROL", SmsRateLimited, True),
        (200, "isv.MOBILE_NUMBER_ILLEGAL", SmsRejected, False),
        (200, "isv.TEMPLATE_MISSING_PARAMETERS", SmsRejected, False),
        (200, "isv.SMS_TEMPLATE_ILLEGAL", SmsRejected, False),
        (200, "isv.SMS_SIGNATURE_ILLEGAL", SmsRejected, False),
        (200, "isv.AMOUNT_NOT_ENOUGH", SmsRejected, False),
        (404, "InvalidAccessKeyId.NotFound", SmsRejected, False),
        (400, "SignatureDoesNotMatch", SmsRejected, False),
        (200, "isp.SYSTEM_ERROR", SmsUnavailable, True),
        (400, "Throttling.User", SmsUnavailable, True),
        (200, "isv.SOMETHING_NEW", SmsRejected, False),  # unknown: never retried blindly
        (503, "ServiceUnavailable", SmsUnavailable, True),
    ],
)
def test_parse_refusals_into_typed_errors(status: int, code: str, kind: type, retryable: bool) -> None:
    body = json.dumps({"Code": code, "Message": "m", "RequestId": "R2"}).encode()
    with pytest.raises(kind) as caught:
        aliyun.parse_send_answer(status, body)
    assert caught.value.code == code and caught.value.retryable is retryable
    assert caught.value.request_id == "R2" and caught.value.http_status == status


def test_parse_something_that_is_not_an_answer() -> None:
    with pytest.raises(SmsUnavailable) as unavailable:
        aliyun.parse_send_answer(502, b"<html>Bad Gateway</html>")
    assert unavailable.value.retryable and unavailable.value.code == "http_502"
    with pytest.raises(SmsRejected) as rejected:
        aliyun.parse_send_answer(200, b"<html>captive portal</html>")
    assert not rejected.value.retryable
