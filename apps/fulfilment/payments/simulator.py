"""The payment provider's refund API, simulated locally (``docs/payment-provider.md``) on
``apps.core.simserver``: it checks our signatures and clock, keeps paid transactions and their
refunds, answers every new refund ``processing``, settles it ``settle_seconds`` later and posts the
signed callback to its ``notify_url``, sent again until answered 2xx (``push_retries`` more times,
``push_backoff`` × attempt seconds apart; each attempt signed afresh).

- ``POST /v1/refunds``: 401 ``signature_invalid`` (unknown ``X-App-Id``, missing or wrong
  signature), 401 ``timestamp_stale``; 400 ``invalid_request`` naming the field; the same
  ``refund_no`` with the same transaction and amount answers that refund, with another one 409
  ``refund_no_conflict``; 404 ``transaction_not_found``; 422 ``amount_exceeds_refundable`` when the
  transaction's non-failed refunds would exceed what was paid; else 200 ``processing``.
- ``GET /v1/refunds/{refund_no}``: the refund, or 404 ``refund_not_found``.

Control paths (besides ``SimServer``'s health and calls): ``POST /_sim/transactions
{"transaction_id", "amount"}`` registers a paid transaction (``GET`` lists them); ``GET
/_sim/refunds`` lists the refunds with their callback attempts; ``POST /_sim/replay/{refund_no}``
sends a settled refund's callback again (the same body); ``POST /_sim/fault {"mode":
"none"|"timeout"|"error"|"reject", "count": N}`` (``DELETE`` = none): the next N API calls hang
``hang`` seconds and answer 504 unapplied (``timeout``) or answer 500 (``error``); the next N new
refunds are accepted and then fail, ``refund.failed`` with a ``failure_reason`` (``reject``).

Illustrative, not any provider's: the refund id's shape and the failure reason's wording.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any, Final, Literal, Unpack, cast, get_args

import httpx

from apps.core.errors import ApplicationError
from apps.core.simserver import ApiRequest, Push, PushingSimServer, PushOptions, Reply
from apps.fulfilment.carriers.base import BEIJING

from .protocol import (
    EVENT_STATUS,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    JSON_TYPE,
    MAX_SKEW_SECONDS,
    PATH_REFUNDS,
    Malformed,
    ProviderCode,
    RefundStatus,
    format_amount,
    read_refund_call,
    sign_request,
    verify_signature,
)

DEMO_ACCOUNT: Final[dict[str, str]] = {
    "app_id": "lc-demo-app",
    "api_secret": "sandbox-refund-secret",  # livecommerce.settings.base.DEV_PAYMENT_API_SECRET
    "webhook_secret": "sandbox-payment-secret",  # DEV_PAYMENT_WEBHOOK_SECRET
}
"""What ``manage.py payment_simulator`` knows by default: the local settings' account."""
DEFAULT_PORT: Final = 8790  # the local settings' PAYMENT_PROVIDER_URL
DEFAULT_FAILURE: Final = "account_abnormal: the payer's account cannot receive refunds"

FaultMode = Literal["none", "timeout", "error", "reject"]
API_CREATE: Final = "refunds.create"
API_QUERY: Final = "refunds.query"


def _beijing(at: float) -> str:
    return datetime.fromtimestamp(int(at), BEIJING).isoformat()


@dataclass
class SimRefund:
    refund_no: str
    refund_id: str
    transaction_id: str
    amount: Decimal
    reason: str
    notify_url: str
    created_at: float
    status: RefundStatus = "processing"
    succeeded_at: float | None = None
    failure_reason: str | None = None
    fails_with: str | None = None  # set by the reject fault: how it will fail
    callback: bytes = b""  # the callback body, fixed when it settles (retries and replays send it as is)

    def answer(self) -> dict[str, Any]:
        return {
            "refund_no": self.refund_no,
            "refund_id": self.refund_id,
            "transaction_id": self.transaction_id,
            "amount": format_amount(self.amount),
            "status": self.status,
            "created_at": _beijing(self.created_at),
            "succeeded_at": _beijing(self.succeeded_at) if self.succeeded_at is not None else None,
            "failure_reason": self.failure_reason,
        }


@dataclass
class _Fault:
    mode: FaultMode
    left: int
    hang: float
    reason: str


class PaymentProviderSimulator(PushingSimServer):
    """The provider for one app (``app_id``, ``api_secret`` for our calls, ``webhook_secret`` for its
    callbacks). ``transactions`` maps a transaction id to its paid amount."""

    service = "payment"
    push_method = "refund.callback"

    def __init__(
        self,
        *,
        app_id: str,
        api_secret: str,
        webhook_secret: str,
        transactions: Mapping[str, Decimal | str] | None = None,
        settle_seconds: float = 0.0,
        fault_hang: float = 30.0,
        max_skew: float = MAX_SKEW_SECONDS,
        **options: Unpack[PushOptions],
    ) -> None:
        if settle_seconds < 0 or fault_hang < 0:
            raise ValueError("settle_seconds and fault_hang must be >= 0")
        super().__init__(**options)
        self.app_id = app_id
        self.api_secret = api_secret
        self.webhook_secret = webhook_secret
        self.settle_seconds = settle_seconds
        self.fault_hang = fault_hang
        self.max_skew = max_skew
        self.transactions: dict[str, Decimal] = {}
        self._refunds: dict[str, SimRefund] = {}
        self._ids = itertools.count(1)
        self._next_fault: _Fault | None = None
        for transaction_id, amount in (transactions or {}).items():
            self.add_transaction(transaction_id, amount)

    # --- what tests and the control API use -----------------------------------------------------

    def add_transaction(self, transaction_id: str, amount: Decimal | str) -> None:
        """A paid transaction refunds may draw on (registered again: its new amount)."""
        paid = Decimal(str(amount))
        if not transaction_id or format_amount(paid) == "0.00":
            raise ValueError("a transaction id and a paid amount > 0 with at most two places are required")
        with self.lock:
            self.transactions[transaction_id] = paid

    def refunds(self) -> list[SimRefund]:
        """Copies of the refunds, oldest first."""
        with self.lock:
            return [replace(refund) for refund in self._refunds.values()]

    def set_next_fault(
        self, mode: FaultMode, *, count: int = 1, hang: float | None = None, reason: str = DEFAULT_FAILURE
    ) -> None:
        """The next ``count`` API calls time out (hang ``hang`` s, then 504 unapplied) or fail (500),
        or the next ``count`` new refunds fail with ``reason`` (``reject``); ``none`` clears it."""
        if mode not in get_args(FaultMode) or count < 1 or (hang is not None and hang < 0):
            raise ValueError("mode must be none, timeout, error or reject; count >= 1; hang >= 0")
        with self.lock:
            self._next_fault = (
                None if mode == "none" else _Fault(mode, count, self.fault_hang if hang is None else hang, reason)
            )

    def replay(self, refund_no: str) -> None:
        """Send a settled refund's callback again, the same body (KeyError: no such refund;
        ValueError: still processing, no callback yet)."""
        with self.lock:
            refund = self._refunds[refund_no]
            if not refund.callback:
                raise ValueError(f"refund {refund_no} is still processing: no callback to replay")
            self._send_callback(refund)

    def attempts(self, refund_no: str) -> list[dict[str, Any]]:
        """The callback attempts made for a refund, in order."""
        return [
            {"at": call.at, "attempt": call.params["attempt"], "http_status": call.params["http_status"],
             "event": call.params["event"], "accepted": call.accepted, "error": call.error}
            for call in self.calls("push") if call.params.get("refund_no") == refund_no
        ]  # fmt: skip

    # --- SimServer ------------------------------------------------------------------------------

    def api_method_of(self, request: ApiRequest) -> str:
        path = request.path.rstrip("/")
        if path == PATH_REFUNDS and request.method == "POST":
            return API_CREATE
        if path.startswith(PATH_REFUNDS + "/") and request.method == "GET":
            return API_QUERY
        return f"{request.method} {path}"

    def error_body(self, message: str) -> bytes:
        return Reply.of({"code": ProviderCode.INTERNAL_ERROR.value, "message": message}).body

    def push_acknowledged(self, response: httpx.Response) -> tuple[bool, str | None]:
        if response.is_success:
            return True, None
        return False, f"HTTP {response.status_code}: {response.text[:200]}"

    def push_headers(self, push: Push) -> Mapping[str, str]:
        timestamp = int(time.time())
        return {
            HEADER_TIMESTAMP: str(timestamp),
            HEADER_SIGNATURE: sign_request(push.body, timestamp, self.webhook_secret),
        }

    def handle(self, request: ApiRequest) -> Reply:
        """``/_sim/fault`` counts calls here (``set_next_fault``) instead of ``SimServer``'s time window."""
        if request.path.rstrip("/") == "/_sim/fault" and request.method in ("POST", "DELETE"):
            try:
                body = request.json() if request.method == "POST" else {"mode": "none"}
                hang = body.get("hang")
                self.set_next_fault(
                    cast(FaultMode, str(body["mode"])),
                    count=int(body.get("count", 1)),
                    hang=float(hang) if hang is not None else None,
                    reason=str(body.get("reason") or DEFAULT_FAILURE),
                )
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                return Reply.of({"error": str(exc)}, 400)
            return Reply.of({"ok": True})
        return super().handle(request)

    def api(self, request: ApiRequest) -> Reply:
        method = self.api_method_of(request)
        faulted = self._call_fault(method)
        if faulted is not None:
            return faulted
        kind = {API_CREATE: "refund", API_QUERY: "query"}.get(method)
        if kind is None:
            return _error(404, ProviderCode.INVALID_REQUEST, f"no such API: {request.method} {request.path}")
        refused = self._authenticate(request)
        if refused is None:
            if method == API_CREATE:
                reply, params = self._create(request.body)
            else:
                refund_no = request.path.rstrip("/").rsplit("/", 1)[1]
                reply, params = self._query(refund_no), {"refund_no": refund_no}
        else:
            reply, params = refused, {}
        error = None if reply.status == 200 else json.loads(reply.body)["code"]
        self.record(kind, method, params, accepted=error is None, error=error)
        return reply

    def control(self, request: ApiRequest) -> Reply | None:
        path, verb = request.path.rstrip("/"), request.method
        if path == "/_sim/transactions" and verb == "POST":
            body = request.json()
            self.add_transaction(str(body["transaction_id"]), str(body["amount"]))
            return Reply.of({"ok": True})
        if path == "/_sim/transactions" and verb == "GET":
            with self.lock:
                return Reply.of({txn: format_amount(paid) for txn, paid in self.transactions.items()})
        if path == "/_sim/refunds" and verb == "GET":
            listed = [
                {**refund.answer(), "reason": refund.reason, "notify_url": refund.notify_url,
                 "callbacks": self.attempts(refund.refund_no)}
                for refund in self.refunds()
            ]  # fmt: skip
            return Reply.of(listed)
        if path.startswith("/_sim/replay/") and verb == "POST":
            try:
                self.replay(path.removeprefix("/_sim/replay/"))
            except KeyError:
                return Reply.of({"error": "no such refund"}, 404)
            except ValueError as exc:
                return Reply.of({"error": str(exc)}, 409)
            return Reply.of({"ok": True}, 202)
        return None

    # --- the API --------------------------------------------------------------------------------

    def _call_fault(self, method: str) -> Reply | None:
        """Take one call of a ``timeout`` / ``error`` fault, if one is set."""
        with self.lock:
            fault = self._next_fault
            if fault is None or fault.mode not in ("timeout", "error"):
                return None
            fault.left -= 1
            if fault.left <= 0:
                self._next_fault = None
        if fault.mode == "timeout":
            self.stopping.wait(fault.hang)
            self.record("fault", method, {}, accepted=False, error="timeout")
            return _error(504, ProviderCode.INTERNAL_ERROR, "simulated timeout: nothing was applied")
        self.record("fault", method, {}, accepted=False, error="error")
        return _error(500, ProviderCode.INTERNAL_ERROR, "simulated payment provider error")

    def _authenticate(self, request: ApiRequest) -> Reply | None:
        if request.headers.get("x-app-id") != self.app_id:
            return _error(401, ProviderCode.SIGNATURE_INVALID, "unknown X-App-Id")
        try:
            verify_signature(
                request.body,
                request.headers.get("x-timestamp"),
                request.headers.get("x-signature"),
                secret=self.api_secret,
                max_skew=self.max_skew,
            )
        except ApplicationError as exc:  # SignatureInvalid / TimestampStale: the protocol's codes
            return _error(401, ProviderCode(exc.code), exc.message)
        return None

    def _create(self, body: bytes) -> tuple[Reply, dict[str, Any]]:
        try:
            call = read_refund_call(body)
        except Malformed as exc:
            return _error(400, ProviderCode.INVALID_REQUEST, str(exc)), {"_raw": body[:500].decode("utf-8", "replace")}
        params = call.payload()
        with self.lock:
            known = self._refunds.get(call.refund_no)
            if known is not None:
                if (known.transaction_id, known.amount) != (call.transaction_id, call.amount):
                    message = (f"refund_no {call.refund_no} is already a refund of {format_amount(known.amount)} "
                               f"on {known.transaction_id}")  # fmt: skip
                    return _error(409, ProviderCode.REFUND_NO_CONFLICT, message), params
                return Reply.of(known.answer()), params
            paid = self.transactions.get(call.transaction_id)
            if paid is None:
                return _error(404, ProviderCode.TRANSACTION_NOT_FOUND, "no such transaction"), params
            taken = sum((r.amount for r in self._refunds.values()
                         if r.transaction_id == call.transaction_id and r.status != "failed"), Decimal(0))  # fmt: skip
            if taken + call.amount > paid:
                message = (f"{format_amount(call.amount)} exceeds what is left to refund "
                           f"({format_amount(paid - taken)} of {format_amount(paid)})")  # fmt: skip
                return _error(422, ProviderCode.AMOUNT_EXCEEDS_REFUNDABLE, message), params
            refund = SimRefund(
                refund_no=call.refund_no,
                refund_id=f"RF{next(self._ids):012d}",
                transaction_id=call.transaction_id,
                amount=call.amount,
                reason=call.reason,
                notify_url=call.notify_url,
                created_at=time.time(),
                fails_with=self._take_reject(),
            )
            self._refunds[refund.refund_no] = refund
            answer = refund.answer()
        # The first step only starts the clock: the refund settles settle_seconds later.
        self.run_steps(f"settle-{refund.refund_no}", [_nothing, partial(self.settle, refund.refund_no)],
                       self.settle_seconds)  # fmt: skip
        return Reply.of(answer), params

    def _take_reject(self) -> str | None:
        """How the new refund will fail, when a ``reject`` fault is set (caller holds the lock)."""
        fault = self._next_fault
        if fault is None or fault.mode != "reject":
            return None
        fault.left -= 1
        if fault.left <= 0:
            self._next_fault = None
        return fault.reason

    def _query(self, refund_no: str) -> Reply:
        with self.lock:
            refund = self._refunds.get(refund_no)
            if refund is None:
                return _error(404, ProviderCode.REFUND_NOT_FOUND, "no such refund")
            return Reply.of(refund.answer())

    def settle(self, refund_no: str) -> None:
        """Complete a processing refund now (succeeded, or failed when a reject fault marked it) and
        send its callback; nothing for one already settled."""
        with self.lock:
            refund = self._refunds[refund_no]
            if refund.status != "processing":
                return
            if refund.fails_with is not None:
                refund.status, refund.failure_reason = "failed", refund.fails_with
            else:
                refund.status, refund.succeeded_at = "succeeded", time.time()
            event = next(name for name, status in EVENT_STATUS.items() if status == refund.status)
            payload = {"event": event, **refund.answer()}
            del payload["created_at"]
            refund.callback = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
            self._send_callback(refund)

    def _send_callback(self, refund: SimRefund) -> None:
        """Queue the refund's callback (caller holds the lock, so callbacks go out in order)."""
        event = f"refund.{refund.status}"
        params = {"refund_no": refund.refund_no, "event": event, "url": refund.notify_url}
        self.enqueue(refund.notify_url, refund.callback, content_type=JSON_TYPE, params=params)


def _nothing() -> None:
    pass


def _error(status: int, code: ProviderCode, message: str) -> Reply:
    return Reply.of({"code": code.value, "message": message}, status)


def make_simulator(**kwargs: Any) -> PaymentProviderSimulator:
    """A (not yet started) simulator with the demo account, overridden by the ``kwargs`` not None."""
    return PaymentProviderSimulator(**{**DEMO_ACCOUNT, **{k: v for k, v in kwargs.items() if v is not None}})


__all__ = ["DEFAULT_PORT", "DEMO_ACCOUNT", "PaymentProviderSimulator", "SimRefund", "make_simulator"]
