"""The payment provider's refund API (``docs/payment-provider.md``) as values: the call we make, its
answer and the signed callback; the signatures; strict parsing of all three. No network, no
database, no settings: the client (:mod:`.client`), the simulator (:mod:`.simulator`) and the
after-sales callback view all build on this module.

Money is yuan as a decimal string with exactly two places (``"12.30"``), read into ``Decimal``.
Times are ISO 8601 with an offset, read into aware UTC datetimes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final, Literal, cast

from apps.orders.errors import InvalidOrder
from apps.orders.services.payments import sign, verify_signed

CURRENCY: Final = "CNY"
MAX_SKEW_SECONDS: Final = 300
MAX_AMOUNT: Final = Decimal("9999999999.99")
MAX_REASON: Final = 80
MAX_URL: Final = 512
REFUND_NO: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ID: Final = re.compile(r"^[\x21-\x7e]{1,100}$")  # a provider id: printable ASCII, no spaces
_MONEY: Final = re.compile(r"^(?:0|[1-9][0-9]{0,9})\.[0-9]{2}$")
JSON_TYPE: Final = "application/json; charset=utf-8"

PATH_REFUNDS: Final = "/v1/refunds"
HEADER_APP_ID: Final = "X-App-Id"
HEADER_TIMESTAMP: Final = "X-Timestamp"
HEADER_SIGNATURE: Final = "X-Signature"

RefundStatus = Literal["processing", "succeeded", "failed"]
STATUSES: Final[tuple[RefundStatus, ...]] = ("processing", "succeeded", "failed")
CallbackEvent = Literal["refund.succeeded", "refund.failed"]
EVENT_STATUS: Final[dict[str, RefundStatus]] = {"refund.succeeded": "succeeded", "refund.failed": "failed"}


class ProviderCode(StrEnum):
    """The ``code`` of the provider's error answers (``{"code", "message"}``)."""

    INVALID_REQUEST = "invalid_request"  # 400, the message names the field
    SIGNATURE_INVALID = "signature_invalid"  # 401
    TIMESTAMP_STALE = "timestamp_stale"  # 401
    TRANSACTION_NOT_FOUND = "transaction_not_found"  # 404
    REFUND_NOT_FOUND = "refund_not_found"  # 404
    REFUND_NO_CONFLICT = "refund_no_conflict"  # 409
    AMOUNT_EXCEEDS_REFUNDABLE = "amount_exceeds_refundable"  # 422
    INTERNAL_ERROR = "internal_error"  # 5xx: try again


# --- errors of a call -------------------------------------------------------------------------


class ProviderError(Exception):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ProviderUnavailable(ProviderError):
    """No usable answer (timeout, connection error, 5xx, 408/429, an answer we cannot read): call
    again later with the same ``refund_no``. ``outcome_unknown``: the call may have been applied (a
    timeout after it was sent); the retry answers the refund then."""

    def __init__(self, message: str, *, status: int | None = None, outcome_unknown: bool = False) -> None:
        super().__init__(message, status=status)
        self.outcome_unknown = outcome_unknown


class ProviderNotConfigured(ProviderUnavailable):
    """``PAYMENT_PROVIDER_URL`` / ``PAYMENT_APP_ID`` / ``PAYMENT_API_SECRET`` are not set: nothing was
    sent; the refund waits until they are."""


class ProviderRefused(ProviderError):
    """The provider answered 4xx: ``code`` (a :class:`ProviderCode`, or ``http_<status>`` for an
    answer without the envelope) and its ``message``. The same call will be refused again."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}", status=status)
        self.code = code
        self.message = message


class Malformed(ValueError):
    """A body that is not the protocol's: ``fields`` maps each wrong field to what is wrong."""

    def __init__(self, fields: dict[str, str], *, not_json: bool = False) -> None:
        self.fields = fields
        self.not_json = not_json
        name, problem = next(iter(fields.items()))
        super().__init__(f"{name}: {problem}")


# --- money, times, signatures -----------------------------------------------------------------


def format_amount(amount: Decimal) -> str:
    """``Decimal("12.3")`` -> ``"12.30"``; ValueError for more than two places, < 0 or too large."""
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT or amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"not an amount in yuan with at most two places: {amount}")
    return f"{amount:.2f}"


def format_time(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def sign_request(body: bytes, timestamp: int | str, secret: str) -> str:
    """Hex HMAC-SHA256 of ``f"{timestamp}." + body`` (the raw bytes sent) with ``secret``: our calls
    with the API secret, the provider's callbacks with the webhook secret (as payment notifications)."""
    return sign(body, timestamp, secret)


def request_headers(*, app_id: str, secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers that authenticate one of our calls (``body`` b"" for a GET)."""
    return {
        HEADER_APP_ID: app_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: sign_request(body, timestamp, secret),
    }


def verify_signature(
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    *,
    secret: str,
    now: float | None = None,
    max_skew: float = MAX_SKEW_SECONDS,
) -> None:
    """Check ``X-Timestamp`` / ``X-Signature`` of ``body``: ``SignatureInvalid`` (missing, not unix
    seconds, not matching, no secret configured) or ``TimestampStale`` (more than ``max_skew``
    seconds from ``now``)."""
    verify_signed(
        body=body,
        timestamp=timestamp,
        signature=signature,
        secret=secret,
        now=now,
        max_skew=max_skew,
        unconfigured="refund callbacks are not configured (no secret)",
        stale=f"X-Timestamp is more than {int(max_skew)} seconds away from now",
    )


# --- the values -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RefundCall:
    """``POST /v1/refunds``. ``refund_no`` is ours and the idempotency key: the same call again
    answers the same refund. ValueError when a field is outside the protocol."""

    refund_no: str
    transaction_id: str
    amount: Decimal
    notify_url: str
    reason: str = ""
    currency: str = CURRENCY

    def __post_init__(self) -> None:
        if not REFUND_NO.match(self.refund_no):
            raise ValueError("refund_no: 1-64 letters, digits, '-' or '_'")
        if not _ID.match(self.transaction_id):
            raise ValueError("transaction_id: 1-100 printable ASCII characters")
        try:
            positive = format_amount(self.amount) != "0.00"
        except ValueError as exc:
            raise ValueError(f"amount: {exc}") from None
        if not positive:
            raise ValueError("amount: must be more than 0")
        if len(self.reason) > MAX_REASON:
            raise ValueError(f"reason: at most {MAX_REASON} characters")
        if not self.notify_url.startswith(("https://", "http://")) or len(self.notify_url) > MAX_URL:
            raise ValueError(f"notify_url: an http(s) URL of at most {MAX_URL} characters")
        if self.currency != CURRENCY:
            raise ValueError(f"currency: only {CURRENCY}")

    def payload(self) -> dict[str, str]:
        return {
            "refund_no": self.refund_no,
            "transaction_id": self.transaction_id,
            "amount": format_amount(self.amount),
            "currency": self.currency,
            "reason": self.reason,
            "notify_url": self.notify_url,
        }

    def body(self) -> bytes:
        """The bytes sent and signed (compact JSON, UTF-8 as is)."""
        return json.dumps(self.payload(), ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True, kw_only=True)
class RefundAnswer:
    """The provider's view of one refund (the answer to a create or a query)."""

    refund_no: str
    refund_id: str
    transaction_id: str
    amount: Decimal
    status: RefundStatus
    created_at: datetime
    succeeded_at: datetime | None
    failure_reason: str | None

    @property
    def final(self) -> bool:
        return self.status != "processing"


@dataclass(frozen=True, kw_only=True)
class RefundCallback:
    """A refund's outcome as the provider posts it to ``notify_url``."""

    event: CallbackEvent
    refund_no: str
    refund_id: str
    transaction_id: str
    amount: Decimal
    status: RefundStatus
    succeeded_at: datetime | None
    failure_reason: str | None


# --- parsing ----------------------------------------------------------------------------------


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise Malformed({"body": "not valid JSON"}, not_json=True) from None
    if not isinstance(data, dict):
        raise Malformed({"body": "must be a JSON object"})
    return data


class _Reader:
    """Reads fields of one JSON object, collecting what is wrong instead of stopping at the first."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.errors: dict[str, str] = {}

    def fail(self, name: str, problem: str) -> None:
        self.errors.setdefault(name, problem)

    def text(self, name: str, pattern: re.Pattern[str], problem: str) -> str:
        value = self.data.get(name)
        if not isinstance(value, str) or not pattern.match(value):
            self.fail(name, problem)
            return ""
        return value

    def optional_text(self, name: str, max_length: int) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, str) or len(value) > max_length:
            self.fail(name, f"a string of at most {max_length} characters, or null")
            return None
        return value

    def amount(self, name: str = "amount") -> Decimal:
        value = self.data.get(name)
        if not isinstance(value, str) or not _MONEY.match(value) or Decimal(value) == 0:
            self.fail(name, 'a positive amount in yuan with two decimal places, as a string ("12.30")')
            return Decimal(0)
        return Decimal(value)

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = self.data.get(name)
        if value not in choices:
            self.fail(name, "one of " + ", ".join(choices))
            return choices[0]
        return cast(str, value)

    def when(self, name: str, *, optional: bool = False) -> datetime | None:
        value = self.data.get(name)
        if value is None and optional:
            return None
        try:
            at = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            at = None
        if at is None or at.tzinfo is None:
            self.fail(name, "an ISO 8601 date-time with an offset" + (", or null" if optional else ""))
            return None
        return at.astimezone(UTC)

    def done(self) -> None:
        if self.errors:
            raise Malformed(self.errors)


def read_refund_call(body: bytes) -> RefundCall:
    """The provider's side of ``POST /v1/refunds``: the call in ``body``; :class:`Malformed` naming
    the fields that are wrong (``reason`` may be absent; unknown fields are ignored)."""
    r = _Reader(_json_object(body))
    refund_no = r.text("refund_no", REFUND_NO, "1-64 letters, digits, '-' or '_'")
    transaction_id = r.text("transaction_id", _ID, "1-100 printable ASCII characters")
    amount = r.amount()
    r.choice("currency", (CURRENCY,))
    reason = r.optional_text("reason", MAX_REASON) or ""
    notify_url = r.text("notify_url", re.compile(rf"^https?://\S{{1,{MAX_URL - 8}}}$"), "an http(s) URL")
    r.done()
    return RefundCall(
        refund_no=refund_no, transaction_id=transaction_id, amount=amount, reason=reason, notify_url=notify_url
    )


def _refund_fields(r: _Reader) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "refund_no": r.text("refund_no", REFUND_NO, "1-64 letters, digits, '-' or '_'"),
        "refund_id": r.text("refund_id", _ID, "1-100 printable ASCII characters"),
        "transaction_id": r.text("transaction_id", _ID, "1-100 printable ASCII characters"),
        "amount": r.amount(),
        "status": r.choice("status", STATUSES),
        "succeeded_at": r.when("succeeded_at", optional=True),
        "failure_reason": r.optional_text("failure_reason", 256),
    }
    if fields["status"] == "succeeded" and fields["succeeded_at"] is None:
        r.fail("succeeded_at", "required when status is succeeded")
    return fields


def parse_refund_answer(status: int, body: bytes) -> RefundAnswer:
    """What an answer to a create or a query means: the refund (200), :class:`ProviderRefused` (a
    4xx: its code and message) or :class:`ProviderUnavailable` (5xx, 408, 429, or a body that is
    not the protocol's)."""
    if status >= 500 or status in (408, 429):
        raise ProviderUnavailable(f"the provider answered HTTP {status}", status=status)
    if 400 <= status < 500:
        try:
            data = _json_object(body)
        except Malformed:
            data = {}
        code, message = data.get("code"), data.get("message")
        if isinstance(code, str) and code:
            raise ProviderRefused(code, message if isinstance(message, str) else "", status)
        raise ProviderRefused(f"http_{status}", body[:200].decode("utf-8", "replace"), status)
    if status != 200:
        raise ProviderUnavailable(f"the provider answered HTTP {status}, not 200", status=status)
    try:
        r = _Reader(_json_object(body))
        fields = _refund_fields(r)
        created_at = r.when("created_at")
        r.done()
    except Malformed as exc:
        raise ProviderUnavailable(f"unreadable answer: {exc}", status=status) from None
    assert created_at is not None  # r.done() passed
    return RefundAnswer(created_at=created_at, **fields)


def verify_and_parse_callback(
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    *,
    secret: str,
    now: float | None = None,
    max_skew: float = MAX_SKEW_SECONDS,
) -> RefundCallback:
    """Our side of a refund callback: verify ``X-Timestamp`` / ``X-Signature`` with the webhook
    secret (``SignatureInvalid``, ``TimestampStale``: 401), then read the body (``InvalidOrder``:
    400, code ``malformed_request`` when it is not JSON, else ``invalid`` with ``extra.fields``).
    The event must agree with the status, and a success carry ``succeeded_at``."""
    verify_signature(body, timestamp, signature, secret=secret, now=now, max_skew=max_skew)
    try:
        r = _Reader(_json_object(body))
        event = r.choice("event", tuple(EVENT_STATUS))
        fields = _refund_fields(r)
        if not r.errors and fields["status"] != EVENT_STATUS[event]:
            r.fail("status", f"must be {EVENT_STATUS[event]} for {event}")
        r.done()
    except Malformed as exc:
        if exc.not_json:
            raise InvalidOrder("body is not valid JSON", code="malformed_request") from None
        raise InvalidOrder(str(exc), extra={"fields": exc.fields}) from None
    return RefundCallback(event=cast(CallbackEvent, event), **fields)
