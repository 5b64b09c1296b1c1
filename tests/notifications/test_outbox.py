"""SMS to buyers end to end, against the Aliyun simulator on a free port: an order paid, shipped
and delivered sends one SMS each however often the change is announced; opt-outs, missing
accounts and templates send nothing; a retryable failure is retried with backoff and then sent,
a permanent one recorded; the rate limits hold with Redis and still decide with Redis gone; the
sweep catches up what the after-commit hook missed."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from django.utils import timezone
from redis.backoff import NoBackoff
from redis.retry import Retry

from apps.core import merchant_cache
from apps.core.redis import get_client
from apps.notifications import enabled, ratelimit, services
from apps.notifications.models import SmsAccount, SmsMessage, SmsTemplate
from apps.notifications.receivers import on_order_changed
from apps.notifications.services import message_attempt, messages_catch_up, messages_retry_due, sms_opt_out_add
from apps.orders.hooks import order_changed
from apps.orders.models import Buyer, Order
from apps.orders.services.transitions import order_transition

from ..factories import make_listing
from ..realtime.conftest import pay, place
from ..servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def paid_order(merchant, buyer: str = "b1"):  # type: ignore[no-untyped-def]
    order = place(make_listing(merchant, quota=5, limit=5), buyer=buyer)
    pay(order)
    return Order.objects.select_related("buyer").get(pk=order.pk)


def announce(order: Order, from_status: str) -> None:
    """The change announced again (a replayed signal, a second worker)."""
    order_changed.send_robust(sender=Order, order=order, from_status=from_status, created=False)


def test_paid_shipped_and_delivered_each_send_one_sms_even_when_announced_twice(sms_merchant, sim) -> None:
    order = paid_order(sms_merchant)
    announce(order, "pending_payment")
    order = order_transition(order=order, to="confirmed", actor="merchant")
    order = order_transition(
        order=order, to="shipped", actor="merchant", carrier="中通快递", tracking_number="78000001"
    )
    announce(order, "confirmed")
    order = order_transition(order=order, to="delivered", actor="carrier")
    announce(order, "shipped")
    announce(order, "shipped")

    messages = list(SmsMessage.objects.order_by("id"))
    assert [(m.event, m.status, m.attempts) for m in messages] == [
        ("paid", "sent", 1),
        ("shipped", "sent", 1),
        ("delivered", "sent", 1),
    ]
    assert all(m.phone == "13800000000" and m.biz_id for m in messages)
    texts = [m.text for m in sim.messages()]
    assert len(texts) == 3
    assert texts[0].startswith(
        f"【直播好物】您的订单{order.public_id}已付款。查看：https://shop.example.com/o/{order.public_id}/?t="
    )
    assert texts[1].startswith(f"【直播好物】您的订单{order.public_id}已发货，中通快递运单号78000001。")
    assert [m.out_id for m in sim.messages()] == [m.out_id for m in messages]


def test_a_phone_that_opted_out_gets_nothing_and_the_outbox_says_why(sms_merchant, sim) -> None:
    sms_opt_out_add(merchant_id=sms_merchant.pk, phone="+86 138-0000-0000")  # written any way
    order = paid_order(sms_merchant)
    message = SmsMessage.objects.get(order=order)
    assert (message.status, message.error_code, message.attempts) == ("skipped", "opted_out", 0)
    assert sim.messages() == []


def test_an_opt_out_after_queueing_is_honoured_at_send_time(sms_merchant, sim) -> None:
    sim.refuse("isp.SYSTEM_ERROR")
    order = paid_order(sms_merchant)
    message = SmsMessage.objects.get(order=order)
    assert message.status == "queued"
    sms_opt_out_add(merchant_id=sms_merchant.pk, phone="13800000000")
    message = message_attempt(message_id=message.pk, now=message.next_attempt_at)
    assert (message.status, message.error_code) == ("skipped", "opted_out")
    assert sim.messages() == []


def test_no_account_no_template_or_a_disabled_one_sends_nothing(merchant, sim, django_assert_num_queries) -> None:
    order = paid_order(merchant)  # no account at all
    assert not SmsMessage.objects.exists()
    with django_assert_num_queries(0):  # the answer is cached: a merchant without SMS costs nothing
        on_order_changed(Order, order=order, from_status="pending_payment")
    account = SmsAccount.objects.create(
        merchant=merchant, access_key_id="k", access_key_secret="s", sign_name="x", api_base_url=sim.base_url
    )
    SmsTemplate.objects.create(merchant=merchant, event="shipped", template_code="SMS_SHIPPED")
    enabled.invalidate(merchant.pk)
    paid_order(merchant, buyer="b2")  # an account, but no template for "paid"
    SmsTemplate.objects.create(merchant=merchant, event="paid", template_code="SMS_PAID", enabled=False)
    enabled.invalidate(merchant.pk)
    paid_order(merchant, buyer="b3")  # a disabled template
    SmsTemplate.objects.filter(event="paid").update(enabled=True)
    SmsAccount.objects.filter(pk=account.pk).update(enabled=False)
    enabled.invalidate(merchant.pk)
    paid_order(merchant, buyer="b4")  # a disabled account
    assert not SmsMessage.objects.exists()
    assert sim.calls() == []


def test_orders_a_platform_sold_are_left_to_the_platform(sms_merchant, sim) -> None:
    order = place(make_listing(sms_merchant, quota=5))
    Order.objects.filter(pk=order.pk).update(channel="douyin")
    order = Order.objects.get(pk=order.pk)
    assert services.message_enqueue(order=order, event="paid") is None


def test_a_retryable_failure_is_retried_with_backoff_then_sent(sms_merchant, sim) -> None:
    sim.refuse("isp.SYSTEM_ERROR", count=2)
    before = timezone.now()
    order = paid_order(sms_merchant)
    message = SmsMessage.objects.get(order=order)
    assert (message.status, message.attempts, message.error_code) == ("queued", 1, "isp.SYSTEM_ERROR")
    wait = (message.next_attempt_at - before).total_seconds()
    assert 27 <= wait <= 40  # the first backoff, 30 s ± 10%
    assert message_attempt(message_id=message.pk, now=message.next_attempt_at - timedelta(seconds=1)) is None

    second = message.next_attempt_at
    assert messages_retry_due(now=second) == 1  # the sweep (tasks run inline in tests)
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("queued", 2)
    assert (message.next_attempt_at - second).total_seconds() >= 108  # the second backoff, 120 s ± 10%

    message = message_attempt(message_id=message.pk, now=message.next_attempt_at)
    assert (message.status, message.attempts, message.error_code) == ("sent", 3, "")
    assert message.biz_id and len(sim.messages()) == 1
    assert message_attempt(message_id=message.pk, now=message.next_attempt_at or timezone.now()) is None


def test_a_timeout_is_retried_later(sms_merchant, sim, monkeypatch) -> None:
    sim.set_fault("timeout", 5, hang=2)
    monkeypatch.setattr(SmsAccount, "client", _short_timeout_client(SmsAccount.client))
    order = paid_order(sms_merchant)
    message = SmsMessage.objects.get(order=order)
    assert (message.status, message.error_code, message.attempts) == ("queued", "sms_timeout", 1)


def _short_timeout_client(original):  # type: ignore[no-untyped-def]
    def client(self, **options):  # type: ignore[no-untyped-def]
        return original(self, **{**options, "timeout": 0.3})

    return client


def test_a_permanent_failure_is_recorded_and_never_retried(sms_merchant, sim) -> None:
    SmsTemplate.objects.filter(event="paid").update(template_code="SMS_NOT_APPROVED")
    order = paid_order(sms_merchant)
    message = SmsMessage.objects.get(order=order)
    assert (message.status, message.attempts, message.error_code) == ("failed", 1, "isv.SMS_TEMPLATE_ILLEGAL")
    assert message.next_attempt_at is None
    assert messages_retry_due(now=timezone.now() + timedelta(hours=1)) == 0
    assert sim.messages() == []


def test_a_message_not_sent_within_the_retry_window_fails(sms_merchant, sim) -> None:
    sim.refuse("isp.SYSTEM_ERROR")
    order = paid_order(sms_merchant)
    message = SmsMessage.objects.get(order=order)
    late = message.created_at + services.retry_window()
    message = message_attempt(message_id=message.pk, now=late)
    assert (message.status, message.error_code) == ("failed", "expired")


def test_per_phone_limits_hold_with_redis(sms_merchant, sim, settings) -> None:
    settings.SMS_PER_PHONE_PER_MINUTE = 1
    settings.SMS_PER_PHONE_PER_DAY = 2
    first = SmsMessage.objects.get(order=paid_order(sms_merchant, buyer="b1"))
    second = SmsMessage.objects.get(order=paid_order(sms_merchant, buyer="b2"))  # the same phone
    assert first.status == "sent"
    assert (second.status, second.attempts, second.error_code) == ("queued", 0, "rate_limited_phone_minute")
    assert 50 <= (second.next_attempt_at - timezone.now()).total_seconds() <= 61
    other = place(make_listing(sms_merchant, quota=5), buyer="b3")
    Buyer.objects.filter(pk=other.buyer_id).update(phone="13900000000")
    pay(other)
    assert SmsMessage.objects.get(order=other).status == "sent"  # another phone is not held by the first's limit

    redis_client = get_client()
    redis_client.delete(ratelimit.keys(sms_merchant.pk, "13800000000")[0])  # the minute has passed
    second = message_attempt(message_id=second.pk, now=second.next_attempt_at)
    assert second.status == "sent"
    fourth = SmsMessage.objects.get(order=paid_order(sms_merchant, buyer="b4"))
    assert (fourth.status, fourth.error_code) == ("queued", "rate_limited_phone_minute")
    redis_client.delete(ratelimit.keys(sms_merchant.pk, "13800000000")[0])
    fourth = message_attempt(message_id=fourth.pk, now=fourth.next_attempt_at)
    assert (fourth.status, fourth.error_code) == ("skipped", "phone_daily_limit")  # 2 a day: tomorrow is too late
    assert len(sim.messages("13800000000")) == 2


def test_with_redis_gone_the_database_decides_and_messages_still_go(sms_merchant, sim, settings, monkeypatch) -> None:
    settings.SMS_PER_PHONE_PER_MINUTE = 1
    first = SmsMessage.objects.get(order=paid_order(sms_merchant, buyer="b1"))
    assert first.status == "sent"

    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.2, socket_timeout=0.2, retry=Retry(NoBackoff(), 0))
    real_script, real_release = ratelimit._script, ratelimit._release
    monkeypatch.setattr(ratelimit, "_script", lambda keys, args: real_script(keys, args, client=dead))
    monkeypatch.setattr(ratelimit, "_release", lambda keys, args: real_release(keys, args, client=dead))
    monkeypatch.setattr(merchant_cache, "get_client", lambda: dead)  # the settings cache reads Redis there
    enabled.clear_local()

    second = SmsMessage.objects.get(order=paid_order(sms_merchant, buyer="b2"))  # the same phone, a second later
    assert (second.status, second.error_code) == ("queued", "rate_limited_phone_minute")
    assert "database" in second.error
    assert 20 <= (second.next_attempt_at - timezone.now()).total_seconds() <= 61

    other = place(make_listing(sms_merchant, quota=5), buyer="b3")
    Buyer.objects.filter(pk=other.buyer_id).update(phone="13900000000")
    pay(other)
    assert SmsMessage.objects.get(order=other).status == "sent"  # another phone: sent, Redis or not
    second = message_attempt(message_id=second.pk, now=second.next_attempt_at)
    assert second.status == "sent"
    assert len(sim.messages()) == 3


def test_the_sweep_catches_up_what_the_after_commit_hook_missed(sms_merchant, sim) -> None:
    order_changed.disconnect(dispatch_uid="notifications.order_changed")
    try:
        order = paid_order(sms_merchant)  # the process "died" before the hook ran
    finally:
        order_changed.connect(on_order_changed, dispatch_uid="notifications.order_changed")
    assert not SmsMessage.objects.exists()
    assert messages_catch_up(now=timezone.now() + timedelta(seconds=60)) == 1
    assert messages_catch_up(now=timezone.now() + timedelta(seconds=60)) == 0  # once
    message = SmsMessage.objects.get(order=order)
    assert (message.event, message.status) == ("paid", "sent")
