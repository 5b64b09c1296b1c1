from __future__ import annotations

from collections.abc import Iterator

import pytest

from apps.notifications.models import SmsAccount, SmsTemplate
from apps.notifications.simulator import AliyunSmsSimulator

KEY_ID, SECRET, SIGN = "LTAI-outbox", "outbox-secret", "直播好物"
TEMPLATES = {
    "SMS_PAID": "您的订单${order_no}已付款。查看：${url}",
    "SMS_SHIPPED": "您的订单${order_no}已发货，${carrier}运单号${waybill_no}。查看：${url}",
    "SMS_DELIVERED": "您的订单${order_no}已签收。",
}


@pytest.fixture
def sim() -> Iterator[AliyunSmsSimulator]:
    with AliyunSmsSimulator(
        access_key_id=KEY_ID, access_key_secret=SECRET, sign_names=[SIGN], templates=TEMPLATES
    ) as server:
        yield server


@pytest.fixture
def sms_merchant(merchant, sim, settings):  # type: ignore[no-untyped-def]
    """The merchant with an account on the simulator and a template for each event."""
    settings.PUBLIC_BASE_URL = "https://shop.example.com"
    settings.SMS_PER_PHONE_PER_MINUTE = 0  # these tests send several events to one phone at once
    SmsAccount.objects.create(
        merchant=merchant, access_key_id=KEY_ID, access_key_secret=SECRET, sign_name=SIGN, api_base_url=sim.base_url
    )
    for event, code in (("paid", "SMS_PAID"), ("shipped", "SMS_SHIPPED"), ("delivered", "SMS_DELIVERED")):
        SmsTemplate.objects.create(merchant=merchant, event=event, template_code=code)
    return merchant
