"""Webhook writes: endpoints, events and their deliveries, attempts, retries, replays.

Events are recorded after the change they report has committed (never inside the order's
transaction), in their own short transaction; the deliveries are enqueued after that commits.
HTTP is sent only outside any transaction (``send``) and only for a delivery claimed by a
conditional UPDATE, so concurrent sweeps and the first-attempt task never send one twice.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from . import subscriptions
from .errors import InvalidUrl, TooManyEndpoints, UnknownEventType
from .event_types import EVENT_TYPES
from .models import (
    AttemptTrigger,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    new_event_id,
    new_secret,
)
from .signing import EVENT_ID_HEADER, SIGNATURE_HEADER, signature_header
from .targets import check_resolved, check_url

log = logging.getLogger(__name__)
DUE = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)
# Waits after the 1st, 2nd, ... failed attempt (then the last one repeats), each ±10% jitter,
# never past the retry window (a day after the first attempt): the last try is at its end.
BACKOFF_SECONDS = (60, 300, 1800, 7200, 18000, 36000)
LEASE = timedelta(minutes=5)  # a claimed delivery is not due again for this long (a crashed worker)
BODY_EXCERPT = 2048
MAX_ENDPOINTS = 16


# --- endpoints ------------------------------------------------------------------------------------
def _clean_events(events: Any) -> list[str]:
    if not isinstance(events, list | tuple) or not events or not all(isinstance(e, str) for e in events):
        raise UnknownEventType(_("events: a non-empty list of event types"), extra={"allowed": sorted(EVENT_TYPES)})
    unknown = sorted(set(events) - EVENT_TYPES)
    if unknown:
        raise UnknownEventType(
            _("events: unknown event type %(type)r") % {"type": unknown[0]},
            extra={"unknown": unknown, "allowed": sorted(EVENT_TYPES)},
        )
    return sorted(set(events))


def _invalidate_after_commit(merchant_id: int) -> None:
    transaction.on_commit(lambda: subscriptions.invalidate(merchant_id))


@transaction.atomic
def endpoint_create(*, merchant_id: int, url: str, events: Any, description: str = "") -> WebhookEndpoint:
    """Register an endpoint. Its ``secret`` is on the returned object: show it now, it is not
    shown again. Raises InvalidUrl, UnknownEventType, TooManyEndpoints (all 400)."""
    url = check_url(url)
    cleaned = _clean_events(events)
    if WebhookEndpoint.objects.filter(merchant_id=merchant_id).count() >= MAX_ENDPOINTS:
        raise TooManyEndpoints(_("at most %(max)d endpoints per merchant") % {"max": MAX_ENDPOINTS})
    endpoint = WebhookEndpoint.objects.create(
        merchant_id=merchant_id, url=url, events=cleaned, description=(description or "")[:200]
    )
    _invalidate_after_commit(merchant_id)
    return endpoint


@transaction.atomic
def endpoint_update(*, endpoint: WebhookEndpoint, **changes: Any) -> WebhookEndpoint:
    """Change url, events, description or is_active (validated like ``endpoint_create``)."""
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if "url" in changes:
        locked.url = check_url(changes["url"])
    if "events" in changes:
        locked.events = _clean_events(changes["events"])
    if "description" in changes:
        locked.description = (changes["description"] or "")[:200]
    if "is_active" in changes:
        locked.is_active = bool(changes["is_active"])
    locked.save()
    _invalidate_after_commit(locked.merchant_id)
    return locked


@transaction.atomic
def endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A new signing secret, effective for every request from now on (retries included)."""
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    locked.secret = new_secret()
    locked.save(update_fields=["secret", "updated_at"])
    return locked


@transaction.atomic
def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    merchant_id = endpoint.merchant_id
    WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()
    _invalidate_after_commit(merchant_id)


# --- events ---------------------------------------------------------------------------------------
def event_record(*, merchant_id: int, type: str, source_key: str, data: dict[str, Any]) -> WebhookEvent | None:
    """Record that ``type`` happened (once per ``source_key``) and a delivery to each active
    endpoint that wants it; the deliveries are enqueued after commit. None when no endpoint
    wants it (nothing is written)."""
    endpoints = [
        e for e in WebhookEndpoint.objects.filter(merchant_id=merchant_id, is_active=True) if type in (e.events or [])
    ]
    if not endpoints:
        return None
    now = timezone.now()
    public_id = new_event_id()
    payload = {"id": public_id, "type": type, "created": int(now.timestamp()), "data": data}
    with transaction.atomic():
        event, created = WebhookEvent.objects.get_or_create(
            merchant_id=merchant_id,
            type=type,
            source_key=source_key[:120],
            defaults={"public_id": public_id, "payload": payload},
        )
        if not created:
            return event  # this change was announced before
        deliveries = WebhookDelivery.objects.bulk_create(
            [WebhookDelivery(event=event, endpoint=e, next_attempt_at=now) for e in endpoints]
        )
        ids = [d.pk for d in deliveries]
        transaction.on_commit(lambda: _enqueue(ids))
    return event


def _enqueue(delivery_ids: list[int]) -> None:
    from django_q.tasks import async_task

    for pk in delivery_ids:
        try:
            async_task("apps.webhooks.tasks.deliver", pk, q_options={"task_name": f"webhook delivery {pk}"})
        except Exception:  # noqa: BLE001 - the retry sweep sends what could not be queued
            log.warning("webhook delivery not queued; the sweep will send it", extra={"delivery": pk}, exc_info=True)


# --- sending --------------------------------------------------------------------------------------
class SentInsideTransaction(RuntimeError):
    """A webhook must only report what is committed: never sent from inside a transaction."""


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    status: int | None
    body: str
    error: str
    duration_ms: int


def request_body(event: WebhookEvent) -> bytes:
    return json.dumps(event.payload, ensure_ascii=False, separators=(",", ":")).encode()


def send(*, endpoint: WebhookEndpoint, event: WebhookEvent) -> Outcome:
    """POST the event to the endpoint, signed. 2xx is success; anything else (a status, a
    timeout, a refused connection, a refused address) is a failure with its reason."""
    if connection.in_atomic_block:
        raise SentInsideTransaction("webhooks are never sent inside a transaction")
    body = request_body(event)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "livecommerce-webhooks/1",
        SIGNATURE_HEADER: signature_header(endpoint.secret, body),
        EVENT_ID_HEADER: event.public_id,
    }
    started = time.monotonic()
    try:
        with translation.override("en"):  # the log keeps one language, whatever the worker's
            check_resolved(endpoint.url)
        with httpx.Client(timeout=getattr(settings, "WEBHOOK_TIMEOUT_SECONDS", 10.0), follow_redirects=False) as http:
            response = http.post(endpoint.url, content=body, headers=headers)
        text = response.content[:BODY_EXCERPT].decode("utf-8", errors="replace")
        ok = 200 <= response.status_code < 300
        return Outcome(ok, response.status_code, text, "" if ok else f"HTTP {response.status_code}", _ms(started))
    except InvalidUrl as exc:
        return Outcome(False, None, "", exc.message[:500], _ms(started))
    except httpx.HTTPError as exc:
        return Outcome(False, None, "", f"{type(exc).__name__}: {exc}"[:500], _ms(started))
    except Exception as exc:  # noqa: BLE001 - any other failure is a failed attempt, logged and retried in its window
        log.warning("webhook delivery failed unexpectedly", extra={"endpoint": endpoint.pk}, exc_info=True)
        return Outcome(False, None, "", f"{type(exc).__name__}: {exc}"[:500], _ms(started))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def next_retry(*, attempts: int, first_attempt_at: datetime, now: datetime) -> datetime | None:
    """When to try again after ``attempts`` failed ones; None once the window is over."""
    deadline = first_attempt_at + timedelta(seconds=getattr(settings, "WEBHOOK_RETRY_WINDOW_SECONDS", 86400))
    if now >= deadline:
        return None
    wait = BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1] * random.uniform(0.9, 1.1)
    return min(now + timedelta(seconds=wait), deadline)


@transaction.atomic
def _record(delivery_id: int, outcome: Outcome, *, trigger: str, now: datetime) -> WebhookDelivery:
    """Log the attempt and move the delivery on (under its row lock: attempt numbers stay unique)."""
    d = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
    d.attempts += 1
    WebhookAttempt.objects.create(
        delivery=d,
        number=d.attempts,
        trigger=trigger,
        url=d.endpoint.url,
        succeeded=outcome.succeeded,
        response_status=outcome.status,
        response_body=outcome.body,
        error=outcome.error,
        duration_ms=outcome.duration_ms,
        created_at=now,
    )
    d.first_attempt_at = d.first_attempt_at or now
    d.last_attempt_at = now
    d.response_status, d.response_body, d.error = outcome.status, outcome.body, outcome.error
    d.duration_ms = outcome.duration_ms
    if outcome.succeeded:
        d.status, d.next_attempt_at = DeliveryStatus.SUCCEEDED, None
    elif trigger == AttemptTrigger.AUTOMATIC:
        retry = next_retry(attempts=d.attempts, first_attempt_at=d.first_attempt_at, now=now)
        d.status = DeliveryStatus.FAILED if retry else DeliveryStatus.ABANDONED
        d.next_attempt_at = retry
    # a replay that fails leaves the automatic schedule as it was
    d.save()
    return d


def delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> WebhookDelivery | None:
    """The automatic attempt of a due delivery. Returns None when it is not due (succeeded,
    abandoned, or claimed by another worker). Must run outside any transaction."""
    if connection.in_atomic_block:
        raise SentInsideTransaction("webhooks are never sent inside a transaction")
    now = now or timezone.now()
    d = WebhookDelivery.objects.select_related("event", "endpoint").filter(pk=delivery_id).first()
    if d is None or d.status not in DUE or d.next_attempt_at is None or d.next_attempt_at > now:
        return None
    claimed = WebhookDelivery.objects.filter(
        pk=d.pk, status=d.status, attempts=d.attempts, next_attempt_at=d.next_attempt_at
    ).update(next_attempt_at=now + LEASE)
    if not claimed:
        return None  # another sweep or task has it
    if not d.endpoint.is_active:
        outcome = Outcome(False, None, "", "endpoint disabled", 0)
    else:
        outcome = send(endpoint=d.endpoint, event=d.event)
    return _record(d.pk, outcome, trigger=AttemptTrigger.AUTOMATIC, now=now)


def deliveries_due(*, now: datetime | None = None, limit: int = 1000) -> list[int]:
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(status__in=DUE, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def deliveries_retry_due(*, now: datetime | None = None, limit: int = 1000) -> int:
    """The sweep (every minute): attempt every due delivery, each in its own task. Safe to run
    concurrently: each delivery is claimed before it is sent."""
    from django_q.tasks import async_task

    ids = deliveries_due(now=now, limit=limit)
    for pk in ids:
        async_task("apps.webhooks.tasks.deliver", pk, now, q_options={"task_name": f"webhook retry {pk}"})
    return len(ids)


def delivery_replay(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send the delivery's event to its endpoint again, now, whatever its status (a new attempt,
    logged as a replay). Success marks it succeeded; a failure leaves its status and schedule.
    Must run outside any transaction."""
    d = WebhookDelivery.objects.select_related("event", "endpoint").get(pk=delivery.pk)
    outcome = send(endpoint=d.endpoint, event=d.event)
    return _record(d.pk, outcome, trigger=AttemptTrigger.REPLAY, now=timezone.now())
