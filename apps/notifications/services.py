"""SMS writes: accounts, templates and opt-outs (validated before the first write), the outbox
(one message per order and event, enqueued after commit), and sending it with retries.

A message is recorded in its own short transaction after the order change it reports has
committed; its send is queued (django-q2) after that commits. The provider is called only outside
any transaction and only for a message claimed by a conditional UPDATE, so the first-attempt task
and concurrent sweeps never send one twice. Every outcome is written under the message's row lock.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.core.phone import normalize_cn_mobile, normalize_phone
from apps.orders.models import PLATFORM_CHANNELS, Order, OrderStatus
from apps.orders.placement.links import status_path

from . import enabled, ratelimit, selectors
from .errors import InvalidSmsSettings
from .models import Provider, SmsAccount, SmsEvent, SmsMessage, SmsOptOut, SmsStatus, SmsTemplate
from .providers.aliyun import SmsError

log = logging.getLogger(__name__)
S = OrderStatus
EVENT_OF_STATUS: dict[str, str] = {
    S.PAID.value: SmsEvent.PAID.value,
    S.SHIPPED.value: SmsEvent.SHIPPED.value,
    S.DELIVERED.value: SmsEvent.DELIVERED.value,
}
# Waits after the 1st, 2nd, ... failed attempt (then the last one repeats), each ±10% jitter.
BACKOFF_SECONDS = (30, 120, 600, 1800, 3600)
MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=2)  # a claimed message is not due again for this long (a crashed worker)
_url = URLValidator(schemes=["http", "https"])


class SentInsideTransaction(RuntimeError):
    """An SMS must only report what is committed: never sent from inside a transaction."""


# --- accounts, templates, opt-outs ------------------------------------------------------------------
def _invalid(field: str, message: str) -> InvalidSmsSettings:
    return InvalidSmsSettings(message, extra={"field": field})


def _invalidate_after_commit(merchant_id: int) -> None:
    transaction.on_commit(lambda: enabled.invalidate(merchant_id))


def sms_account_validate(account: SmsAccount) -> None:
    """The rules of an account about to be saved: a known provider, an AccessKey pair, a sign
    name, an http(s) base URL or none, one account per merchant. Normalises what it checks.
    Raises InvalidSmsSettings (``invalid``, ``extra.field``)."""
    if account.provider not in Provider.values:
        raise _invalid("provider", _("provider must be one of: %(allowed)s") % {"allowed": ", ".join(Provider.values)})
    for name in ("access_key_id", "access_key_secret", "sign_name", "api_base_url"):
        setattr(account, name, str(getattr(account, name) or "").strip())
    for name in ("access_key_id", "access_key_secret", "sign_name"):
        if not getattr(account, name):
            raise _invalid(name, _("%(field)s is required") % {"field": name})
    if account.sign_name.startswith("【") or account.sign_name.startswith("["):
        account.sign_name = account.sign_name.strip("【】[]")
    if account.api_base_url:
        try:
            _url(account.api_base_url)
        except ValidationError:
            raise _invalid("api_base_url", _("api_base_url must be an http:// or https:// URL")) from None
        account.api_base_url = account.api_base_url.rstrip("/")
    others = SmsAccount.objects.filter(merchant_id=account.merchant_id)
    if account.pk is not None:
        others = others.exclude(pk=account.pk)
    if others.exists():
        raise _invalid("provider", _("this merchant already has an SMS account: change that one"))


@transaction.atomic
def sms_account_save(*, account: SmsAccount) -> SmsAccount:
    """Validate and save an account (new or changed). Its secret is encrypted by its field."""
    sms_account_validate(account)
    account.save()
    _invalidate_after_commit(account.merchant_id)
    return account


def sms_template_validate(template: SmsTemplate) -> None:
    template.template_code = (template.template_code or "").strip()
    if template.event not in SmsEvent.values:
        raise _invalid("event", _("event must be one of: %(allowed)s") % {"allowed": ", ".join(SmsEvent.values)})
    if not template.template_code:
        raise _invalid("template_code", _("template_code is required"))
    others = SmsTemplate.objects.filter(merchant_id=template.merchant_id, event=template.event)
    if template.pk is not None:
        others = others.exclude(pk=template.pk)
    if others.exists():
        raise _invalid("event", _("this event already has a template: change that one"))


@transaction.atomic
def sms_template_save(*, template: SmsTemplate) -> SmsTemplate:
    sms_template_validate(template)
    template.save()
    _invalidate_after_commit(template.merchant_id)
    return template


@transaction.atomic
def sms_settings_delete(*, obj: SmsAccount | SmsTemplate) -> None:
    merchant_id = obj.merchant_id
    type(obj).objects.filter(pk=obj.pk).delete()
    _invalidate_after_commit(merchant_id)


def sms_opt_out_validate(opt_out: SmsOptOut) -> None:
    phone = normalize_phone(opt_out.phone or "")
    if not phone:
        raise _invalid("phone", _("phone is required"))
    opt_out.phone = phone
    others = SmsOptOut.objects.filter(merchant_id=opt_out.merchant_id, phone=phone)
    if opt_out.pk is not None:
        others = others.exclude(pk=opt_out.pk)
    if others.exists():
        raise _invalid("phone", _("this phone has opted out already"))


@transaction.atomic
def sms_opt_out_add(*, merchant_id: int, phone: str, note: str = "") -> SmsOptOut:
    """Stop SMS to ``phone`` (any way written: stored in its one form). Idempotent. Messages of
    the phone still queued are skipped when their turn comes."""
    opt_out = SmsOptOut(merchant_id=merchant_id, phone=phone, note=note[:200])
    try:
        sms_opt_out_validate(opt_out)
    except InvalidSmsSettings:
        existing = SmsOptOut.objects.filter(merchant_id=merchant_id, phone=normalize_phone(phone)).first()
        if existing is None:
            raise
        return existing
    opt_out.save()
    return opt_out


# --- the outbox -------------------------------------------------------------------------------------
def sms_event_of(*, status: str, from_status: str | None, created: bool) -> str | None:
    """The SMS event an order change is, if any (a change of money only is none)."""
    event = EVENT_OF_STATUS.get(status)
    if event is None or (not created and from_status == status):
        return None
    return event


def buyer_mobile(order: Order) -> str | None:
    """Where the buyer's SMS goes: the buyer's phone, else the recipient's, as a mainland mobile
    (11 digits); None when neither is one."""
    for phone in (order.buyer.phone, (order.shipping_address or {}).get("phone", "")):
        mobile = normalize_cn_mobile(str(phone or ""))
        if mobile:
            return mobile
    return None


def template_params(order: Order, event: str) -> dict[str, str]:
    """The template's variables: ``order_no``, ``url`` (the buyer's status page; absolute when
    ``PUBLIC_BASE_URL`` is set) and for ``shipped`` ``carrier`` and ``waybill_no`` where the order
    has them (left out when it has not: a template that needs them is refused by the provider)."""
    base = (getattr(settings, "PUBLIC_BASE_URL", "") or "").rstrip("/")
    params = {"order_no": order.public_id, "url": base + status_path(order)}
    if event == SmsEvent.SHIPPED:
        if order.carrier:
            params["carrier"] = order.carrier
        if order.tracking_number:
            params["waybill_no"] = order.tracking_number
    return params


def message_enqueue(*, order: Order, event: str, now: datetime | None = None) -> SmsMessage | None:
    """Record the SMS of ``event`` for ``order`` and queue its send after commit. None when there
    is nothing to send: no enabled account or template for the event, an order a sales platform
    sold (the platform tells its buyers), no mainland mobile to send to. An opted-out phone gets a
    ``skipped`` message (so the outbox says why). Idempotent: an (order, event) that has a
    message already returns it and queues nothing."""
    existing = SmsMessage.objects.filter(order_id=order.pk, event=event).first()
    if existing is not None:
        return existing
    if order.channel in PLATFORM_CHANNELS:
        return None
    account = selectors.account_for(merchant_id=order.merchant_id)
    template = selectors.template_for(merchant_id=order.merchant_id, event=event)
    if account is None or not account.enabled or template is None:
        return None
    phone = buyer_mobile(order)
    if phone is None:
        return None
    now = now or timezone.now()
    opted_out = selectors.is_opted_out(merchant_id=order.merchant_id, phone=phone)
    fields: dict[str, Any] = {
        "merchant_id": order.merchant_id,
        "phone": phone,
        "template_code": template.template_code,
        "params": template_params(order, event),
        "status": SmsStatus.SKIPPED if opted_out else SmsStatus.QUEUED,
        "next_attempt_at": None if opted_out else now,
        "error_code": "opted_out" if opted_out else "",
        "error": "the buyer opted out of SMS" if opted_out else "",
    }
    try:
        with transaction.atomic():
            message, created = SmsMessage.objects.get_or_create(order_id=order.pk, event=event, defaults=fields)
            if created and message.status == SmsStatus.QUEUED:
                pk = message.pk
                transaction.on_commit(lambda: _enqueue([pk]))
    except IntegrityError:  # a concurrent announcement of the same change won
        return SmsMessage.objects.filter(order_id=order.pk, event=event).first()
    return message


def _enqueue(ids: list[int]) -> None:
    from django_q.tasks import async_task

    for pk in ids:
        try:
            async_task("apps.notifications.tasks.deliver", pk, q_options={"task_name": f"sms {pk}"})
        except Exception:  # noqa: BLE001 - the retry sweep sends what could not be queued
            log.warning("sms not queued; the sweep will send it", extra={"sms": pk}, exc_info=True)


# --- sending ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    status: str  # SmsStatus: sent, failed, skipped, or queued (retry / deferred)
    biz_id: str = ""
    error_code: str = ""
    error: str = ""
    retry_at: datetime | None = None
    counts_attempt: bool = True  # a deferral by our own rate limit is not an attempt


def retry_window() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "SMS_RETRY_WINDOW_SECONDS", 6 * 3600)))


def next_retry(*, attempts: int, created_at: datetime, now: datetime) -> datetime | None:
    """When to try again after ``attempts`` failed ones; None once attempts or the window are
    used up (an SMS about a payment is no use a day later)."""
    deadline = created_at + retry_window()
    if attempts >= MAX_ATTEMPTS or now >= deadline:
        return None
    wait = BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1] * random.uniform(0.9, 1.1)
    at = now + timedelta(seconds=wait)
    return at if at <= deadline else None


def message_attempt(*, message_id: int, now: datetime | None = None, **client_options: Any) -> SmsMessage | None:
    """Send a due message. Returns None when it is not due (sent, failed, skipped, not yet time,
    or claimed by another worker). Must run outside any transaction. ``client_options`` go to the
    provider's client (tests: ``timeout``)."""
    if connection.in_atomic_block:
        raise SentInsideTransaction("SMS are never sent inside a transaction")
    now = now or timezone.now()
    m = SmsMessage.objects.filter(pk=message_id).first()
    if m is None or m.status != SmsStatus.QUEUED or m.next_attempt_at is None or m.next_attempt_at > now:
        return None
    claimed = SmsMessage.objects.filter(
        pk=m.pk, status=SmsStatus.QUEUED, attempts=m.attempts, next_attempt_at=m.next_attempt_at
    ).update(next_attempt_at=now + LEASE)
    if not claimed:
        return None
    return _record(m.pk, _send(m, now, client_options), now=now)


def _send(m: SmsMessage, now: datetime, client_options: dict[str, Any]) -> Outcome:
    account = selectors.account_for(merchant_id=m.merchant_id)
    if account is None or not account.enabled:
        return Outcome(SmsStatus.SKIPPED, error_code="account_disabled", error="no enabled SMS account")
    if selectors.is_opted_out(merchant_id=m.merchant_id, phone=m.phone):
        return Outcome(SmsStatus.SKIPPED, error_code="opted_out", error="the buyer opted out of SMS")
    if now >= m.created_at + retry_window():
        return Outcome(SmsStatus.FAILED, error_code="expired", error="not sent within the retry window")
    verdict = ratelimit.take(merchant_id=m.merchant_id, phone=m.phone, now=now)
    if verdict.limit == "phone_day":
        return Outcome(
            SmsStatus.SKIPPED, error_code="phone_daily_limit", error=f"daily SMS limit of this phone ({verdict.source})"
        )
    if not verdict.allowed:
        return Outcome(
            SmsStatus.QUEUED,
            error_code=f"rate_limited_{verdict.limit}",
            error=f"held by our {verdict.limit} limit ({verdict.source}); sent when it frees up",
            retry_at=now + timedelta(seconds=max(verdict.wait_seconds, 1.0)),
            counts_attempt=False,
        )
    try:
        with account.client(**client_options) as client:
            result = client.send_sms(
                phone=m.phone,
                sign_name=account.sign_name,
                template_code=m.template_code,
                template_params=m.params,
                out_id=m.out_id,
            )
    except SmsError as exc:
        if not exc.outcome_unknown:  # not accepted: the send does not count against the limits
            ratelimit.give_back(merchant_id=m.merchant_id, phone=m.phone, verdict=verdict)
        retry = next_retry(attempts=m.attempts + 1, created_at=m.created_at, now=now) if exc.retryable else None
        return Outcome(
            SmsStatus.QUEUED if retry else SmsStatus.FAILED,
            error_code=exc.code[:64],
            error=exc.message[:500],
            retry_at=retry,
        )
    except Exception as exc:  # noqa: BLE001 - any other failure is a failed attempt, retried in its window
        log.warning("sms send failed unexpectedly", extra={"sms": m.pk}, exc_info=True)
        ratelimit.give_back(merchant_id=m.merchant_id, phone=m.phone, verdict=verdict)
        retry = next_retry(attempts=m.attempts + 1, created_at=m.created_at, now=now)
        return Outcome(
            SmsStatus.QUEUED if retry else SmsStatus.FAILED,
            error_code="error",
            error=f"{type(exc).__name__}: {exc}"[:500],
            retry_at=retry,
        )
    return Outcome(SmsStatus.SENT, biz_id=result.biz_id[:64])


@transaction.atomic
def _record(message_id: int, outcome: Outcome, *, now: datetime) -> SmsMessage:
    m = SmsMessage.objects.select_for_update().get(pk=message_id)
    if outcome.counts_attempt:
        m.attempts += 1
    m.status = outcome.status
    m.error_code, m.error = outcome.error_code, outcome.error
    m.next_attempt_at = outcome.retry_at if outcome.status == SmsStatus.QUEUED else None
    if outcome.status == SmsStatus.SENT:
        m.biz_id, m.sent_at = outcome.biz_id, now
    m.save()
    return m


def messages_retry_due(*, now: datetime | None = None, limit: int = 1000) -> int:
    """The sweep (every minute): attempt every due message, each in its own task. Safe to run
    concurrently: each message is claimed before it is sent."""
    from django_q.tasks import async_task

    ids = selectors.messages_due_ids(now=now or timezone.now(), limit=limit)
    for pk in ids:
        async_task("apps.notifications.tasks.deliver", pk, now, q_options={"task_name": f"sms retry {pk}"})
    return len(ids)


def messages_catch_up(
    *, now: datetime | None = None, window: timedelta = timedelta(hours=1), settle: timedelta = timedelta(seconds=30)
) -> int:
    """Record the messages the after-commit hook missed (the process died between the commit and
    the hook), from the order ledger: every paid / shipped / delivered change between ``window``
    and ``settle`` ago of a merchant with SMS enabled whose (order, event) has no message yet.
    Returns how many it recorded."""
    from apps.orders.models import OrderEvent

    now = now or timezone.now()
    recorded = 0
    merchant_ids = SmsAccount.objects.filter(enabled=True).values_list("merchant_id", flat=True)
    for merchant_id in sorted(merchant_ids):
        events = enabled.enabled_events(merchant_id)
        statuses = [s for s, e in EVENT_OF_STATUS.items() if e in events]
        if not statuses:
            continue
        changes = set(
            OrderEvent.objects.filter(
                merchant_id=merchant_id,
                to_status__in=statuses,
                created_at__gte=now - window,
                created_at__lt=now - settle,
            ).values_list("order_id", "to_status")
        )
        if not changes:
            continue
        seen = set(SmsMessage.objects.filter(order_id__in={o for o, _ in changes}).values_list("order_id", "event"))
        for order_id, status in sorted(changes):
            event = EVENT_OF_STATUS[status]
            if (order_id, event) in seen:
                continue
            order = Order.objects.select_related("buyer").filter(pk=order_id).first()
            if order is not None and message_enqueue(order=order, event=event) is not None:
                recorded += 1
    return recorded
