"""The payment provider's refund API (``docs/payment-provider.md``): the signatures against values
computed with openssl, ``RefundClient`` against ``PaymentProviderSimulator`` over real sockets (a
refund end to end, idempotency, each refusal as its code, faults), the signed callbacks at a local
receiver that verifies them with ``verify_and_parse_callback`` (retried until 2xx, replayed
identically), and what that function refuses. No database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from django.conf import settings

from apps.fulfilment.payments.client import RefundClient, refund_client
from apps.fulfilment.payments.protocol import (
    ProviderNotConfigured,
    ProviderRefused,
    ProviderUnavailable,
    RefundCall,
    RefundCallback,
    parse_refund_answer,
    request_headers,
    sign_request,
    verify_and_parse_callback,
)
from apps.fulfilment.payments.simulator import DEFAULT_PORT, DEMO_ACCOUNT, PaymentProviderSimulator
from apps.orders.errors import InvalidOrder, SignatureInvalid, TimestampStale
from apps.orders.services import payments
from livecommerce.settings import base as base_settings

from ..servers import free_port, stop, wait_for_http

APP_ID, API_SECRET, WEBHOOK_SECRET = "sim-app", "test-refund-secret", "test-payment-secret"
NOW = 1767225600  # 2026-01-01T00:00:00Z


# --- signatures -----------------------------------------------------------------------------------

VECTOR_CALL = RefundCall(
    refund_no="RF-1",
    transaction_id="T-100",
    amount=Decimal("12.3"),
    reason="尺码不合适",
    notify_url="https://shop.example.com/hooks/refunds",
)
VECTOR_CALL_BODY = (
    '{"refund_no":"RF-1","transaction_id":"T-100","amount":"12.30","currency":"CNY","reason":"尺码不合适",'
    '"notify_url":"https://shop.example.com/hooks/refunds"}'
).encode()
# printf '%s' '1767225600.<VECTOR_CALL_BODY>' | openssl dgst -sha256 -hmac 'test-refund-secret'
VECTOR_CALL_SIGNATURE = "f7a933dc0fc31392f2b6c65eed0fe2de0f55783d40b8043abc6e0c6df39052b5"
# printf '%s' '1767225600.' | openssl dgst -sha256 -hmac 'test-refund-secret'   (a GET: the empty body)
VECTOR_GET_SIGNATURE = "8b7382a86ee6e0db6893bc8219d99484247681f8c6ff6e0783a637a7529883ee"
VECTOR_CALLBACK = (
    b'{"event":"refund.succeeded","refund_no":"RF-1","refund_id":"RF000000000001","transaction_id":"T-100",'
    b'"amount":"12.30","status":"succeeded","succeeded_at":"2026-01-01T08:00:05+08:00","failure_reason":null}'
)
# printf '%s' '1767225600.<VECTOR_CALLBACK>' | openssl dgst -sha256 -hmac 'test-payment-secret'
VECTOR_CALLBACK_SIGNATURE = "995fefbf90b02349f16f73933794d99c75d2da69f941354eff83d7fcadc8cd3f"


def test_a_refund_call_is_the_documented_bytes_signed_as_openssl_signs_them() -> None:
    assert VECTOR_CALL.body() == VECTOR_CALL_BODY
    assert request_headers(app_id=APP_ID, secret=API_SECRET, body=VECTOR_CALL_BODY, timestamp=NOW) == {
        "X-App-Id": APP_ID,
        "X-Timestamp": "1767225600",
        "X-Signature": VECTOR_CALL_SIGNATURE,
    }
    assert sign_request(b"", NOW, API_SECRET) == VECTOR_GET_SIGNATURE


def test_a_callback_is_signed_as_payment_notifications_are() -> None:
    assert sign_request(VECTOR_CALLBACK, NOW, WEBHOOK_SECRET) == VECTOR_CALLBACK_SIGNATURE
    assert payments.sign(VECTOR_CALLBACK, NOW, WEBHOOK_SECRET) == VECTOR_CALLBACK_SIGNATURE
    callback = verify_and_parse_callback(
        VECTOR_CALLBACK, "1767225600", VECTOR_CALLBACK_SIGNATURE, secret=WEBHOOK_SECRET, now=NOW + 299
    )
    assert callback.event == "refund.succeeded" and callback.status == "succeeded"
    assert callback.amount == Decimal("12.30") and isinstance(callback.amount, Decimal)
    assert callback.succeeded_at is not None and callback.succeeded_at.timestamp() == NOW + 5
    assert (callback.refund_no, callback.refund_id, callback.transaction_id) == ("RF-1", "RF000000000001", "T-100")


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"amount": Decimal("0")}, "amount: must be more than 0"),
        ({"amount": Decimal("12.345")}, "amount:"),
        ({"amount": Decimal("-1.00")}, "amount:"),
        ({"refund_no": "R" * 65}, "refund_no:"),
        ({"refund_no": "RF/1"}, "refund_no:"),
        ({"transaction_id": ""}, "transaction_id:"),
        ({"reason": "长" * 81}, "reason:"),
        ({"notify_url": "ftp://shop.example.com/x"}, "notify_url:"),
        ({"currency": "USD"}, "currency:"),
    ],
)
def test_a_refund_call_outside_the_protocol_is_not_made(fields: dict[str, Any], problem: str) -> None:
    values: dict[str, Any] = {"refund_no": "RF-1", "transaction_id": "T-1", "amount": Decimal("1.00"),
                              "notify_url": "https://x.example/h"} | fields  # fmt: skip
    with pytest.raises(ValueError, match=problem):
        RefundCall(**values)


# --- the callback receiver ------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    callback: RefundCallback | None
    error: Exception | None


@dataclass
class Receiver:
    """Our callback endpoint: verifies each callback with ``verify_and_parse_callback`` and answers
    204, or 500 to the first ``fail_first`` (and 401/400 to one that does not verify)."""

    secret: str = WEBHOOK_SECRET
    fail_first: int = 0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            try:
                callback = verify_and_parse_callback(
                    body, headers.get("x-timestamp"), headers.get("x-signature"), secret=self.secret
                )
            except (SignatureInvalid, TimestampStale, InvalidOrder) as exc:
                self.received.append(Received(headers, body, None, exc))
                return exc.http_status
            self.received.append(Received(headers, body, callback, None))
            return 500 if len(self.received) <= self.fail_first else 204

    def callbacks(self) -> list[RefundCallback]:
        with self.lock:
            return [r.callback for r in self.received if r.callback is not None]


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    """A factory: ``receiver(**fields)`` serves a new :class:`Receiver` on a free port (its ``url``)."""
    servers: list[ThreadingHTTPServer] = []

    def serve(**fields: Any) -> Receiver:
        target = Receiver(**fields)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = target.handle({k.lower(): v for k, v in self.headers.items()}, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        target.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/payments/refunds"
        return target

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def simulator(**options: Any) -> PaymentProviderSimulator:
    """Our test account, one paid transaction T-100 of 100.00, settling at once."""
    fields = {"app_id": APP_ID, "api_secret": API_SECRET, "webhook_secret": WEBHOOK_SECRET,
              "transactions": {"T-100": "100.00"}, "push_backoff": 0.05} | options  # fmt: skip
    return PaymentProviderSimulator(**fields)


@pytest.fixture
def sim() -> Iterator[PaymentProviderSimulator]:
    with simulator() as server:
        yield server


def client(sim: PaymentProviderSimulator, **kw: Any) -> RefundClient:
    kw.setdefault("timeout", 2.0)
    return RefundClient(sim.base_url, kw.pop("app_id", APP_ID), kw.pop("api_secret", API_SECRET), **kw)


def call(url: str, refund_no: str = "RF-1", amount: str = "12.30", transaction_id: str = "T-100") -> RefundCall:
    return RefundCall(refund_no=refund_no, transaction_id=transaction_id, amount=Decimal(amount),
                      reason="尺码不合适", notify_url=url)  # fmt: skip


# --- client <-> simulator -------------------------------------------------------------------------


def test_a_refund_end_to_end_answers_processing_then_calls_back_signed(sim, receiver) -> None:  # type: ignore[no-untyped-def]
    ours = receiver()
    with client(sim) as provider:
        answer = provider.create_refund(call(ours.url))
        assert answer.status == "processing" and not answer.final
        assert answer.refund_no == "RF-1" and answer.refund_id and answer.amount == Decimal("12.30")
        assert answer.succeeded_at is None and answer.created_at.tzinfo is not None
        sim.wait_pushes(10)
        [callback] = ours.callbacks()
        assert callback.event == "refund.succeeded" and callback.status == "succeeded"
        assert (callback.refund_no, callback.refund_id, callback.amount) == ("RF-1", answer.refund_id, Decimal("12.30"))
        now = provider.query_refund("RF-1")
    assert now is not None and now.status == "succeeded" and now.final
    assert now.refund_id == answer.refund_id and now.succeeded_at == callback.succeeded_at
    [attempt] = sim.attempts("RF-1")
    assert attempt["accepted"] and attempt["http_status"] == 204 and attempt["event"] == "refund.succeeded"


def test_the_same_refund_no_again_answers_the_same_refund_once(sim, receiver) -> None:  # type: ignore[no-untyped-def]
    ours = receiver()
    with client(sim) as provider:
        first = provider.create_refund(call(ours.url))
        sim.wait_pushes(10)
        again = provider.create_refund(call(ours.url))
    assert again.refund_id == first.refund_id and again.status == "succeeded"
    assert len(sim.refunds()) == 1
    sim.wait_pushes(10)
    assert len(ours.callbacks()) == 1


@pytest.mark.parametrize(("amount", "transaction_id"), [("12.31", "T-100"), ("12.30", "T-200")])
def test_the_same_refund_no_for_another_amount_or_transaction_is_a_conflict(sim, amount, transaction_id) -> None:  # type: ignore[no-untyped-def]
    sim.add_transaction("T-200", "50.00")
    with client(sim) as provider:
        provider.create_refund(call("http://127.0.0.1:9/h"))
        with pytest.raises(ProviderRefused) as refused:
            provider.create_refund(call("http://127.0.0.1:9/h", amount=amount, transaction_id=transaction_id))
    assert (refused.value.code, refused.value.status) == ("refund_no_conflict", 409)
    assert "RF-1" in refused.value.message
    assert [r.amount for r in sim.refunds()] == [Decimal("12.30")]


def test_refunds_of_a_transaction_never_exceed_what_was_paid_failed_ones_aside(sim, receiver) -> None:  # type: ignore[no-untyped-def]
    ours = receiver()
    with client(sim) as provider:
        provider.create_refund(call(ours.url, "RF-A", "60.00"))
        provider.create_refund(call(ours.url, "RF-B", "40.00"))
        with pytest.raises(ProviderRefused) as refused:
            provider.create_refund(call(ours.url, "RF-C", "0.01"))
        assert (refused.value.code, refused.value.status) == ("amount_exceeds_refundable", 422)
        sim.add_transaction("T-300", "10.00")
        sim.set_next_fault("reject")
        failed = provider.create_refund(call(ours.url, "RF-D", "10.00", "T-300"))
        assert failed.status == "processing"
        sim.wait_pushes(10)
        assert provider.query_refund("RF-D").status == "failed"  # type: ignore[union-attr]
        # the failed refund gave its amount back: the whole 10.00 may be refunded again
        assert provider.create_refund(call(ours.url, "RF-E", "10.00", "T-300")).status == "processing"
    assert {r.refund_no for r in sim.refunds()} == {"RF-A", "RF-B", "RF-D", "RF-E"}


def test_a_rejected_refund_calls_back_refund_failed_with_a_reason(sim, receiver) -> None:  # type: ignore[no-untyped-def]
    ours = receiver()
    httpx.post(f"{sim.base_url}/_sim/fault", json={"mode": "reject", "count": 1}).raise_for_status()
    with client(sim) as provider:
        provider.create_refund(call(ours.url, "RF-1"))
        provider.create_refund(call(ours.url, "RF-2"))
        sim.wait_pushes(10)
    by_no = {c.refund_no: c for c in ours.callbacks()}
    assert by_no["RF-1"].event == "refund.failed" and by_no["RF-1"].status == "failed"
    assert by_no["RF-1"].failure_reason and by_no["RF-1"].succeeded_at is None
    assert by_no["RF-2"].event == "refund.succeeded"  # the fault counted one refund


def test_an_unknown_transaction_or_refund(sim) -> None:  # type: ignore[no-untyped-def]
    with client(sim) as provider:
        with pytest.raises(ProviderRefused) as refused:
            provider.create_refund(call("http://127.0.0.1:9/h", transaction_id="T-404"))
        assert (refused.value.code, refused.value.status) == ("transaction_not_found", 404)
        assert provider.query_refund("RF-404") is None
    assert sim.refunds() == []


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"api_secret": "not-the-secret"}, "signature_invalid"),
        ({"app_id": "someone-else"}, "signature_invalid"),
        ({"clock": lambda: time.time() - 301}, "timestamp_stale"),
    ],
    ids=["wrong-secret", "wrong-app", "stale-clock"],
)
def test_a_call_the_simulator_cannot_verify_is_refused_and_not_applied(sim, overrides, code) -> None:  # type: ignore[no-untyped-def]
    with client(sim, **overrides) as provider:
        with pytest.raises(ProviderRefused) as refused:
            provider.create_refund(call("http://127.0.0.1:9/h"))
        assert (refused.value.code, refused.value.status) == (code, 401)
        with pytest.raises(ProviderRefused):
            provider.query_refund("RF-1")
    assert sim.refunds() == []
    assert [(c.kind, c.accepted, c.error) for c in sim.calls()] == [("refund", False, code), ("query", False, code)]


def test_a_malformed_call_is_refused_naming_the_field(sim) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps({"refund_no": "RF-1", "transaction_id": "T-100", "amount": "12.3", "currency": "CNY",
                       "notify_url": "https://x.example/h"}).encode()  # fmt: skip
    headers = request_headers(app_id=APP_ID, secret=API_SECRET, body=body, timestamp=int(time.time()))
    r = httpx.post(f"{sim.base_url}/v1/refunds", content=body, headers=headers)
    assert r.status_code == 400 and r.json()["code"] == "invalid_request"
    assert r.json()["message"].startswith("amount:")
    assert sim.refunds() == []


def test_a_timeout_is_unavailable_with_an_unknown_outcome_and_the_retry_applies(sim) -> None:  # type: ignore[no-untyped-def]
    sim.set_next_fault("timeout", hang=3.0)
    with client(sim, timeout=0.3) as provider:
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable) as unavailable:
            provider.create_refund(call("http://127.0.0.1:9/h"))
        assert time.monotonic() - started < 2.0
        assert unavailable.value.outcome_unknown
        answer = provider.create_refund(call("http://127.0.0.1:9/h"))  # the fault took one call
    assert answer.refund_no == "RF-1" and len(sim.refunds()) == 1


def test_a_500_is_unavailable_for_as_many_calls_as_the_fault_says(sim) -> None:  # type: ignore[no-untyped-def]
    httpx.post(f"{sim.base_url}/_sim/fault", json={"mode": "error", "count": 2}).raise_for_status()
    with client(sim) as provider:
        for _ in range(2):
            with pytest.raises(ProviderUnavailable) as unavailable:
                provider.create_refund(call("http://127.0.0.1:9/h"))
            assert unavailable.value.status == 500 and not unavailable.value.outcome_unknown
        assert sim.refunds() == []
        assert provider.create_refund(call("http://127.0.0.1:9/h")).status == "processing"
        httpx.post(f"{sim.base_url}/_sim/fault", json={"mode": "error", "count": 5}).raise_for_status()
        httpx.post(f"{sim.base_url}/_sim/fault", json={"mode": "none"}).raise_for_status()
        assert provider.query_refund("RF-1") is not None


def test_a_refused_connection_is_unavailable() -> None:
    with RefundClient(f"http://127.0.0.1:{free_port()}", APP_ID, API_SECRET, timeout=1.0) as provider:
        with pytest.raises(ProviderUnavailable) as unavailable:
            provider.query_refund("RF-1")
    assert not unavailable.value.outcome_unknown


@pytest.mark.parametrize(
    ("status", "body", "error", "code"),
    [
        (200, b"<html>ok</html>", ProviderUnavailable, None),
        (200, b'{"refund_no": "RF-1", "status": "done"}', ProviderUnavailable, None),
        (502, b"Bad Gateway", ProviderUnavailable, None),
        (429, b"{}", ProviderUnavailable, None),
        (404, b"<html>Not Found</html>", ProviderRefused, "http_404"),
        (409, b'{"code": "refund_no_conflict", "message": "taken"}', ProviderRefused, "refund_no_conflict"),
    ],
)
def test_what_an_answer_means(status: int, body: bytes, error: type[Exception], code: str | None) -> None:
    with pytest.raises(error) as raised:
        parse_refund_answer(status, body)
    assert getattr(raised.value, "code", None) == code and getattr(raised.value, "status", None) == status


# --- callbacks ------------------------------------------------------------------------------------


def test_a_callback_is_retried_until_2xx_each_attempt_signed_and_the_same(receiver) -> None:  # type: ignore[no-untyped-def]
    ours = receiver(fail_first=2)
    with simulator(push_backoff=0.05, push_retries=3) as sim:
        with client(sim) as provider:
            provider.create_refund(call(ours.url))
        sim.wait_pushes(10)
        attempts = sim.attempts("RF-1")
    assert [(a["attempt"], a["http_status"], a["accepted"]) for a in attempts] == [
        (1, 500, False),
        (2, 500, False),
        (3, 204, True),
    ]
    assert len(ours.callbacks()) == 3 and len({r.body for r in ours.received}) == 1


def test_a_receiver_that_never_acknowledges_gets_bounded_attempts(receiver) -> None:  # type: ignore[no-untyped-def]
    ours = receiver(fail_first=100)
    with simulator(push_backoff=0.01, push_retries=2) as sim:
        with client(sim) as provider:
            provider.create_refund(call(ours.url))
        sim.wait_pushes(10)
        assert [a["accepted"] for a in sim.attempts("RF-1")] == [False, False, False]


def test_a_replay_sends_the_identical_callback_again(sim, receiver) -> None:  # type: ignore[no-untyped-def]
    ours = receiver()
    with client(sim) as provider:
        provider.create_refund(call(ours.url))
    sim.wait_pushes(10)
    r = httpx.post(f"{sim.base_url}/_sim/replay/RF-1")
    assert r.status_code == 202
    sim.wait_pushes(10)
    first, second = ours.received
    assert first.body == second.body and first.callback == second.callback and second.error is None
    assert httpx.post(f"{sim.base_url}/_sim/replay/RF-404").status_code == 404
    listed = httpx.get(f"{sim.base_url}/_sim/refunds").json()
    assert [(r["refund_no"], r["status"], len(r["callbacks"])) for r in listed] == [("RF-1", "succeeded", 2)]


def test_a_refund_settles_after_settle_seconds(receiver) -> None:  # type: ignore[no-untyped-def]
    ours = receiver()
    with simulator(settle_seconds=0.5) as sim:
        with client(sim) as provider:
            provider.create_refund(call(ours.url))
            assert provider.query_refund("RF-1").status == "processing"  # type: ignore[union-attr]
            assert httpx.post(f"{sim.base_url}/_sim/replay/RF-1").status_code == 409  # nothing to replay yet
            sim.wait_pushes(10)
            assert provider.query_refund("RF-1").status == "succeeded"  # type: ignore[union-attr]
    assert len(ours.callbacks()) == 1


def _signed(body: bytes, *, at: int = NOW, secret: str = WEBHOOK_SECRET) -> tuple[bytes, str, str]:
    return body, str(at), sign_request(body, at, secret)


def _callback(**changes: Any) -> bytes:
    return json.dumps(json.loads(VECTOR_CALLBACK) | changes, ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("message", "error", "match"),
    [
        (_signed(VECTOR_CALLBACK, secret="not-the-secret"), SignatureInvalid, "does not match"),
        (
            (VECTOR_CALLBACK.replace(b"12.30", b"99.30"), "1767225600", VECTOR_CALLBACK_SIGNATURE),
            SignatureInvalid,
            "does not match",
        ),
        ((VECTOR_CALLBACK, "1767225601", VECTOR_CALLBACK_SIGNATURE), SignatureInvalid, "does not match"),
        ((VECTOR_CALLBACK, None, VECTOR_CALLBACK_SIGNATURE), SignatureInvalid, "required"),
        ((VECTOR_CALLBACK, "yesterday", VECTOR_CALLBACK_SIGNATURE), SignatureInvalid, "unix seconds"),
        (_signed(VECTOR_CALLBACK, at=NOW - 301), TimestampStale, "X-Timestamp"),
        (_signed(VECTOR_CALLBACK, at=NOW + 301), TimestampStale, "X-Timestamp"),
    ],
    ids=["wrong-secret", "tampered-body", "tampered-timestamp", "no-timestamp", "bad-timestamp", "stale", "future"],
)
def test_a_callback_that_does_not_verify_is_refused(message: tuple[bytes, Any, Any], error: type, match: str) -> None:
    body, timestamp, signature = message
    with pytest.raises(error, match=match) as refused:
        verify_and_parse_callback(body, timestamp, signature, secret=WEBHOOK_SECRET, now=NOW)
    assert refused.value.http_status == 401 and refused.value.code in ("signature_invalid", "timestamp_stale")


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (b"not json", "malformed_request", None),
        (b"[1, 2]", "invalid", "body"),
        (_callback(amount="12.3"), "invalid", "amount"),
        (_callback(amount=12.3), "invalid", "amount"),
        (_callback(event="refund.maybe"), "invalid", "event"),
        (_callback(status="failed"), "invalid", "status"),
        (_callback(succeeded_at=None), "invalid", "succeeded_at"),
        (_callback(succeeded_at="2026-01-01T08:00:05"), "invalid", "succeeded_at"),
        (_callback(refund_id=""), "invalid", "refund_id"),
    ],
)
def test_a_signed_but_malformed_callback_is_a_400_naming_the_field(body: bytes, code: str, field: str | None) -> None:
    with pytest.raises(InvalidOrder) as refused:
        verify_and_parse_callback(*_signed(body), secret=WEBHOOK_SECRET, now=NOW)
    assert refused.value.http_status == 400 and refused.value.code == code
    if field is not None:
        assert refused.value.message.startswith(f"{field}:") and field in refused.value.extra["fields"]


# --- settings and the command ---------------------------------------------------------------------


def test_refund_client_is_built_from_the_settings(sim, settings) -> None:  # type: ignore[no-untyped-def]
    sim.app_id, sim.api_secret = settings.PAYMENT_APP_ID, settings.PAYMENT_API_SECRET
    settings.PAYMENT_PROVIDER_URL = sim.base_url
    with refund_client() as provider:
        assert provider.create_refund(call("http://127.0.0.1:9/h")).status == "processing"
    settings.PAYMENT_PROVIDER_URL = ""
    with pytest.raises(ProviderNotConfigured, match="PAYMENT_PROVIDER_URL"):
        refund_client()


def test_the_simulators_demo_account_is_the_local_settings() -> None:
    assert DEMO_ACCOUNT["api_secret"] == base_settings.DEV_PAYMENT_API_SECRET
    assert DEMO_ACCOUNT["webhook_secret"] == base_settings.DEV_PAYMENT_WEBHOOK_SECRET
    env = {"DJANGO_SETTINGS_MODULE": "livecommerce.settings.local", "PAYMENT_PROVIDER_URL": "", "PAYMENT_APP_ID": "",
           "PAYMENT_API_SECRET": "", "PAYMENT_WEBHOOK_SECRET": ""}  # fmt: skip
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.PAYMENT_PROVIDER_URL, s.PAYMENT_APP_ID, s.PAYMENT_API_SECRET, s.PAYMENT_WEBHOOK_SECRET)"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=settings.BASE_DIR, env={**os.environ, **env},
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [f"http://127.0.0.1:{DEFAULT_PORT}", DEMO_ACCOUNT["app_id"],
                                DEMO_ACCOUNT["api_secret"], DEMO_ACCOUNT["webhook_secret"]]  # fmt: skip


def test_payment_simulator_command_serves_until_terminated(receiver) -> None:  # type: ignore[no-untyped-def]
    ours = receiver(secret=DEMO_ACCOUNT["webhook_secret"])
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "payment_simulator", "--port", str(port), "--settle-seconds", "0",
         "--transaction", "T-CMD=50.00"],
        cwd=settings.BASE_DIR, start_new_session=True, stdout=subprocess.PIPE,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base_url}/_sim/health", proc, timeout=30)
        assert httpx.get(f"{base_url}/_sim/health").json() == {"service": "payment", "ok": True}
        with RefundClient(base_url, DEMO_ACCOUNT["app_id"], DEMO_ACCOUNT["api_secret"]) as provider:
            answer = provider.create_refund(call(ours.url, amount="50.00", transaction_id="T-CMD"))
            assert answer.status == "processing"
            deadline = time.monotonic() + 10
            while not ours.callbacks() and time.monotonic() < deadline:
                time.sleep(0.05)
        [callback] = ours.callbacks()
        assert callback.refund_id == answer.refund_id and callback.event == "refund.succeeded"
    finally:
        stop(proc)
    assert proc.returncode is not None
