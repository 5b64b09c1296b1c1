"""How many SMS a merchant may send now: per buyer phone (``SMS_PER_PHONE_PER_MINUTE``, default
1, and ``SMS_PER_PHONE_PER_DAY``, default 10 — Aliyun's own default flow control for 验证码
messages, the strictest it applies; for notifications it allows 50 a day per sign and template)
and per merchant (``SMS_PER_MERCHANT_PER_MINUTE``, default 600).

Redis counts (``lua/sms_rate.lua``: one atomic check-and-take, keys ``lc:{sms:m<merchant>}:...``).
Redis may vanish: then the database decides, counting the merchant's messages sent in the last
minute and day (``SmsMessage.sent_at``). That fallback is not atomic across workers (two may both
see room for the last slot); Aliyun's own flow control is the backstop, answered
``isv.BUSINESS_LIMIT_CONTROL`` and retried later. After Redis loses its keys the counters start
again from zero, for the same reason acceptable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from django.conf import settings

from apps.core.redis import LuaScript, is_redis_error

log = logging.getLogger(__name__)
MINUTE = 60
DAY = 86400
_script = LuaScript(Path(__file__).parent / "lua" / "sms_rate.lua", 3)
_release = LuaScript(Path(__file__).parent / "lua" / "sms_rate_release.lua", 3)

Limit = Literal["phone_minute", "phone_day", "merchant_minute"]
_BY_VERDICT: dict[int, Limit] = {1: "phone_minute", 2: "phone_day", 3: "merchant_minute"}


@dataclass(frozen=True)
class Verdict:
    """``limit`` None: the send may go (and is counted). Else the limit that holds it and how
    long until its window ends. ``source`` says who decided (``redis`` or ``database``)."""

    limit: Limit | None
    wait_seconds: float = 0.0
    source: str = "redis"

    @property
    def allowed(self) -> bool:
        return self.limit is None


def limits() -> tuple[int, int, int]:
    return (
        int(getattr(settings, "SMS_PER_PHONE_PER_MINUTE", 1)),
        int(getattr(settings, "SMS_PER_PHONE_PER_DAY", 10)),
        int(getattr(settings, "SMS_PER_MERCHANT_PER_MINUTE", 600)),
    )


def keys(merchant_id: int, phone: str) -> list[str]:
    tag = f"lc:{{sms:m{merchant_id}}}"
    return [f"{tag}:phone:{phone}:minute", f"{tag}:phone:{phone}:day", f"{tag}:minute"]


def take(*, merchant_id: int, phone: str, now: datetime) -> Verdict:
    """Take one send for ``phone`` of ``merchant_id``, or the limit that holds it back."""
    per_minute, per_day, merchant_minute = limits()
    try:
        verdict, wait_ms = _script(keys(merchant_id, phone), [per_minute, per_day, merchant_minute, MINUTE, DAY])
    except Exception as exc:
        if not is_redis_error(exc):
            raise
        log.warning("sms rate limit: Redis unavailable, counting in the database", exc_info=True)
        return _from_database(merchant_id=merchant_id, phone=phone, now=now)
    limit = _BY_VERDICT.get(int(verdict))
    return Verdict(limit, int(wait_ms) / 1000 if limit else 0.0)


def give_back(*, merchant_id: int, phone: str, verdict: Verdict) -> None:
    """Return a send taken from the Redis counters that the provider did not accept. (The
    database fallback counts sent messages only: nothing to return there.)"""
    if verdict.source != "redis" or not verdict.allowed:
        return
    try:
        _release(keys(merchant_id, phone), [])
    except Exception as exc:
        if not is_redis_error(exc):
            raise
        log.warning("sms rate limit: send not given back (Redis unavailable)", exc_info=True)


def _from_database(*, merchant_id: int, phone: str, now: datetime) -> Verdict:
    from .models import SmsMessage, SmsStatus

    per_minute, per_day, merchant_minute = limits()
    sent = SmsMessage.objects.filter(merchant_id=merchant_id, status=SmsStatus.SENT)
    checks: list[tuple[Limit, int, int, dict[str, str]]] = [
        ("phone_minute", per_minute, MINUTE, {"phone": phone}),
        ("phone_day", per_day, DAY, {"phone": phone}),
        ("merchant_minute", merchant_minute, MINUTE, {}),
    ]
    for limit, allowed, window, where in checks:
        if allowed <= 0:
            continue
        since = now - timedelta(seconds=window)
        recent = sent.filter(sent_at__gt=since, **where).order_by("sent_at").values_list("sent_at", flat=True)
        times = [t for t in recent[:allowed] if t is not None]
        if len(times) >= allowed:
            # the window frees up when the oldest send in it leaves it
            wait = (times[0] + timedelta(seconds=window) - now).total_seconds()
            return Verdict(limit, max(wait, 1.0), source="database")
    return Verdict(None, source="database")
